//! The union of intervals: what "unique watch time" and retention coverage
//! are made of.

/// Sorted, disjoint union of intervals (touching intervals merge).
pub fn merge_intervals(intervals: &mut [(f64, f64)]) -> Vec<(f64, f64)> {
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(intervals.len());
    for &(s, e) in intervals.iter() {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// Length of the union of intervals.
pub fn union_length(intervals: &mut [(f64, f64)]) -> f64 {
    merge_intervals(intervals).iter().map(|(s, e)| e - s).sum()
}

/// Flattened `[start, end, start, end, …]` pairs, as the tables store them.
pub fn flatten(intervals: &[(f64, f64)]) -> Vec<f64> {
    intervals.iter().flat_map(|&(a, b)| [a, b]).collect()
}

pub fn pairs(flat: &[f64]) -> Vec<(f64, f64)> {
    flat.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_merges_overlaps_and_touching_intervals() {
        let mut v = vec![(5.0, 10.0), (0.0, 3.0), (3.0, 4.0), (9.0, 12.0)];
        assert_eq!(merge_intervals(&mut v), vec![(0.0, 4.0), (5.0, 12.0)]);
        assert_eq!(union_length(&mut v), 11.0);
        assert_eq!(pairs(&flatten(&[(1.0, 2.0)])), vec![(1.0, 2.0)]);
    }
}
