//! Cutting the rows of one set-based statement (a multi-row INSERT, an UPDATE joined to a
//! derived table of values) into statements of bounded size, so a batch of long texts never
//! exceeds the server's `max_allowed_packet` (4 MiB by default on MySQL 5.7).

/// The most text one batched statement carries (bytes, summed over its rows); a single row
/// longer than this still goes, alone.
pub(super) const STATEMENT_BYTES: usize = 1 << 20;

/// `items` in consecutive runs whose `size` sums to at most [`STATEMENT_BYTES`] (a run holds
/// at least one item); nothing for no items.
pub(super) fn by_bytes<T>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let n = size(item);
        if i > start && bytes + n > STATEMENT_BYTES {
            runs.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += n;
    }
    if start < items.len() {
        runs.push(&items[start..]);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_bounded_and_keep_every_item_in_order() {
        let items = [10, STATEMENT_BYTES, 1, 2, STATEMENT_BYTES - 3, 5];
        let runs = by_bytes(&items, |n| *n);
        let flat: Vec<usize> = runs.iter().flat_map(|r| r.iter().copied()).collect();
        assert_eq!(flat, items);
        assert_eq!(runs.len(), 4, "{runs:?}");
        for run in &runs {
            assert!(run.len() == 1 || run.iter().sum::<usize>() <= STATEMENT_BYTES);
        }
        assert!(by_bytes(&[] as &[usize], |n| *n).is_empty());
    }
}
