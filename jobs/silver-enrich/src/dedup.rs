//! Deduplication, as a pure function of the copies of each event: copies of
//! one viewer's event id whose times lie within the horizon of each other
//! (chained) are one event, and the first by (source object, line) is kept.
//! Given this window's copies and every stored copy within reach of them,
//! it says which rows enter `silver/events`, which leave it for
//! `silver/duplicates`, and which copies were seen before.

use crate::columns::{Content, RowRef};

/// One delivered copy of an event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Copy<'a> {
    /// `event_key`: the stored hash of (customer_id, event_id).
    pub event_key: i64,
    pub customer_id: &'a str,
    pub event_id: &'a str,
    pub time: i64,
    pub rank: (&'a str, i64),
    pub origin: Origin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A row of this window's candidates.
    Candidate(RowRef),
    /// The kept copy of its group, in `silver/events`.
    Kept(RowRef),
    /// A copy in `silver/duplicates`.
    Lost,
}

#[derive(Debug, Default, PartialEq)]
pub struct Resolution {
    /// Candidate rows that become the kept copy of their event.
    pub new_kept: Vec<RowRef>,
    /// Candidate rows that lost to another copy.
    pub new_lost: Vec<RowRef>,
    /// Rows of `silver/events` that an earlier (or bridging) copy displaced.
    pub displaced: Vec<RowRef>,
    /// Candidates that are copies stored before (a rerun of the window).
    pub already_present: u64,
    pub conflicts: u64,
    /// Some groups reach the edge of the time range that was read: more
    /// copies may chain beyond it; this range must be read.
    pub needs: Option<(i64, i64)>,
}

/// Resolves the groups that hold at least one candidate. `read` is the time
/// range within which every stored copy of the candidates' ids was read;
/// `content` gives the content of a candidate or kept row, for counting
/// copies that disagree.
pub fn resolve<'a>(copies: &[Copy<'a>], horizon: i64, read: (i64, i64), content: impl Fn(Origin) -> Option<Content<'a>>) -> Resolution {
    // One sort brings each event's copies together in time order: by the
    // event key first, which is cheap to compare, then by the ids
    // themselves, so the order is fixed whatever the input's.
    let mut order: Vec<(i64, u32)> = copies.iter().enumerate().map(|(i, c)| (c.event_key, i as u32)).collect();
    order.sort_unstable_by(|a, b| {
        let (x, y) = (&copies[a.1 as usize], &copies[b.1 as usize]);
        a.0.cmp(&b.0)
            .then_with(|| (x.customer_id, x.event_id).cmp(&(y.customer_id, y.event_id)))
            .then_with(|| (x.time, x.rank, stored_first(x.origin)).cmp(&(y.time, y.rank, stored_first(y.origin))))
    });
    let mut out = Resolution::default();
    let mut group: Vec<Copy<'a>> = Vec::new();
    let same_event = |a: &(i64, u32), b: &(i64, u32)| {
        let (x, y) = (&copies[a.1 as usize], &copies[b.1 as usize]);
        a.0 == b.0 && x.customer_id == y.customer_id && x.event_id == y.event_id
    };
    for event in order.chunk_by(same_event) {
        group.clear();
        group.extend(event.iter().map(|(_, i)| copies[*i as usize]));
        resolve_event(&mut group, horizon, read, &content, &mut out);
    }
    out
}

/// Resolves the copies of one (viewer, event id), sorted by time.
fn resolve_event<'a>(
    group: &mut Vec<Copy<'a>>,
    horizon: i64,
    read: (i64, i64),
    content: &impl Fn(Origin) -> Option<Content<'a>>,
    out: &mut Resolution,
) {
    // A candidate that is a stored copy again (same landed line) is that copy.
    if group.len() > 1 {
        let stored: Vec<(&str, i64)> = group.iter().filter(|c| !matches!(c.origin, Origin::Candidate(_))).map(|c| c.rank).collect();
        group.retain(|c| {
            let repeat = matches!(c.origin, Origin::Candidate(_)) && stored.contains(&c.rank);
            out.already_present += u64::from(repeat);
            !repeat
        });
    }
    for component in chained(group, horizon) {
        if !component.iter().any(|c| matches!(c.origin, Origin::Candidate(_))) {
            continue;
        }
        let (first, last) = (component[0].time, component[component.len() - 1].time);
        if first - horizon < read.0 || last + horizon > read.1 {
            let (lo, hi) = out.needs.unwrap_or(read);
            out.needs = Some((lo.min(first - horizon), hi.max(last + horizon)));
            continue;
        }
        let winner = *component.iter().min_by_key(|c| (c.rank, stored_first(c.origin))).expect("a non-empty component");
        if component.len() > 1 {
            let kept_content = content(winner.origin);
            for copy in component.iter().filter(|c| **c != winner) {
                let differs = content(copy.origin).zip(kept_content).is_some_and(|(a, b)| a != b);
                match copy.origin {
                    Origin::Candidate(row) => {
                        out.new_lost.push(row);
                        out.conflicts += u64::from(differs);
                    }
                    Origin::Kept(row) => {
                        out.displaced.push(row);
                        out.conflicts += u64::from(differs);
                    }
                    Origin::Lost => {}
                }
            }
        }
        if let Origin::Candidate(row) = winner.origin {
            out.new_kept.push(row);
        }
    }
}

/// Stored copies sort before candidates of the same rank.
fn stored_first(origin: Origin) -> u8 {
    u8::from(matches!(origin, Origin::Candidate(_)))
}

/// Splits copies sorted by time wherever two neighbours are further apart
/// than the horizon.
fn chained<'c, 'a>(sorted: &'c [Copy<'a>], horizon: i64) -> impl Iterator<Item = &'c [Copy<'a>]> {
    sorted.chunk_by(move |a, b| b.time - a.time <= horizon)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;
    const H: i64 = 7 * DAY;
    const ALL: (i64, i64) = (i64::MIN / 2, i64::MAX / 2);

    fn copy(object: &'static str, time_days: i64, origin: Origin) -> Copy<'static> {
        Copy { event_key: 1, customer_id: "c", event_id: "e", time: time_days * DAY, rank: (object, 1), origin }
    }

    fn none(_: Origin) -> Option<Content<'static>> {
        None
    }

    #[test]
    fn the_first_copy_by_object_and_line_is_kept_and_a_later_earlier_copy_displaces_it() {
        // Stored: b kept. Arriving: a (earlier object) and c.
        let copies = [copy("b", 0, Origin::Kept((0, 0))), copy("a", 1, Origin::Candidate((1, 0))), copy("c", 2, Origin::Candidate((1, 1)))];
        let r = resolve(&copies, H, ALL, none);
        assert_eq!(r.new_kept, vec![(1, 0)]);
        assert_eq!(r.displaced, vec![(0, 0)]);
        assert_eq!(r.new_lost, vec![(1, 1)]);
    }

    #[test]
    fn copies_further_apart_than_the_horizon_are_distinct_events_unless_a_copy_bridges_them() {
        let apart = [copy("a", 0, Origin::Kept((0, 0))), copy("b", 12, Origin::Candidate((1, 0)))];
        let r = resolve(&apart, H, ALL, none);
        assert_eq!((r.new_kept, r.displaced), (vec![(1, 0)], vec![]));
        // A lost copy at day 6 chains a (day 0) and the candidate (day 12).
        let chained = [copy("a", 0, Origin::Kept((0, 0))), copy("m", 6, Origin::Lost), copy("b", 12, Origin::Candidate((1, 0)))];
        let r = resolve(&chained, H, ALL, none);
        assert_eq!((r.new_kept, r.new_lost), (vec![], vec![(1, 0)]));
        // A candidate bridging two kept copies merges their groups.
        let bridge = [copy("b", 0, Origin::Kept((0, 0))), copy("a", 6, Origin::Candidate((1, 0))), copy("c", 12, Origin::Kept((0, 1)))];
        let r = resolve(&bridge, H, ALL, none);
        assert_eq!((r.new_kept, r.displaced), (vec![(1, 0)], vec![(0, 0), (0, 1)]));
    }

    #[test]
    fn a_rerun_sees_its_own_copies_and_changes_nothing() {
        let copies = [
            copy("a", 0, Origin::Kept((0, 0))),
            copy("a", 0, Origin::Candidate((1, 0))),
            copy("b", 0, Origin::Lost),
            copy("b", 0, Origin::Candidate((1, 1))),
        ];
        let r = resolve(&copies, H, ALL, none);
        assert_eq!(r.already_present, 2);
        assert!(r.new_kept.is_empty() && r.new_lost.is_empty() && r.displaced.is_empty());
    }

    #[test]
    fn viewers_reusing_an_id_do_not_meet_and_incomplete_groups_are_reported() {
        let mut other = copy("z", 0, Origin::Candidate((1, 1)));
        other.customer_id = "d";
        let copies = [copy("a", 0, Origin::Kept((0, 0))), other];
        let r = resolve(&copies, H, ALL, none);
        assert_eq!(r.new_kept, vec![(1, 1)], "the other viewer's event is its own");
        let r = resolve(&[copy("a", 10, Origin::Candidate((1, 0)))], H, (5 * DAY, 20 * DAY), none);
        assert_eq!(r.needs, Some((3 * DAY, 20 * DAY)));
        assert!(r.new_kept.is_empty());
    }

    #[test]
    fn copies_that_differ_from_the_kept_one_are_counted() {
        let copies = [copy("a", 0, Origin::Candidate((1, 0))), copy("b", 0, Origin::Candidate((1, 1))), copy("c", 0, Origin::Candidate((1, 2)))];
        let content = |origin: Origin| match origin {
            Origin::Candidate((_, 2)) => Some(("t", "s", "pause", 5, None)),
            _ => Some(("t", "s", "start", 0, None)),
        };
        assert_eq!(resolve(&copies, H, ALL, content).conflicts, 1);
    }
}
