//! Text cut to a byte limit: admission warnings (256 bytes each) and Event notes must fit the
//! API server's limits, and a cut must never split a character. And the closest name to a
//! misspelt one, for "did you mean" in errors about unknown fields and rule ids.

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

/// The candidate closest to `word` when it is close enough to be a likely typo: the same
/// word but for case, or at most a third of its letters apart.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lower = word.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = if c.eq_ignore_ascii_case(word) {
            0
        } else {
            strsim::levenshtein(&lower, &c.to_ascii_lowercase()).max(1)
        };
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    (d <= (word.chars().count() / 3).max(2)).then(|| c.to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn closest_prefers_case_only_differences() {
        assert_eq!(
            super::closest("replicasHA", ["replicasHa", "replicas"]).as_deref(),
            Some("replicasHa")
        );
        assert_eq!(super::closest("x", ["abcdef"]), None);
    }

    use super::*;

    #[test]
    fn a_cut_stays_within_the_limit_including_the_ellipsis() {
        assert_eq!(truncate("x".repeat(1000), 1000).len(), 1000);
        assert_eq!(truncate("x".repeat(1001), 1000).len(), 1000);
        assert!(truncate("x".repeat(1001), 1000).ends_with('…'));
    }
}
