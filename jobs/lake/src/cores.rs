//! CPU-bound work over independent items, spread over every core.

/// `f` over each of `items`, in order, on one thread per core. For steps
/// whose items need nothing from each other, such as enriching independent
/// record batches.
pub fn map_on_cores<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    shares_on_cores(items, |share| share.iter().map(&f).collect::<Vec<R>>()).into_iter().flatten().collect()
}

/// `f` over one contiguous share of `items` per core, in order: for work that
/// keeps state across the items of a share (builders, scratch buffers).
pub fn shares_on_cores<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores == 1 || items.len() < 2 {
        return vec![f(items)];
    }
    std::thread::scope(|scope| {
        let f = &f;
        let workers: Vec<_> = items.chunks(items.len().div_ceil(cores)).map(|share| scope.spawn(move || f(share))).collect();
        workers.into_iter().map(|worker| worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_order_of_the_items() {
        let items: Vec<u32> = (0..1001).collect();
        assert_eq!(map_on_cores(&items, |i| i * 2), items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(map_on_cores(&[] as &[u32], |i| *i), Vec::<u32>::new());
    }

    #[test]
    fn shares_cover_every_item_once_in_order() {
        let items: Vec<u32> = (0..1001).collect();
        let shares = shares_on_cores(&items, |share| share.to_vec());
        assert!(!shares.is_empty() && shares.iter().all(|s| !s.is_empty()));
        assert_eq!(shares.concat(), items);
    }
}
