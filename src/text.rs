//! Text cut to a byte limit: admission warnings (256 bytes each) and Event notes must fit the
//! API server's limits, and a cut must never split a character.

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let ellipsis = '…';
    let mut end = max.saturating_sub(ellipsis.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push(ellipsis);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_stays_within_the_limit_including_the_ellipsis() {
        assert_eq!(truncate("x".repeat(1000), 1000).len(), 1000);
        assert_eq!(truncate("x".repeat(1001), 1000).len(), 1000);
        assert!(truncate("x".repeat(1001), 1000).ends_with('…'));
    }
}
