//! Label selector matching, as Kubernetes defines it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// Labels a selector can be matched against: a map, or [`Pairs`].
pub trait Labels {
    /// The value of label `key`, if set.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A small label map as a sorted slice: a `BTreeMap<String, String>` allocates a whole B-tree
/// leaf (≈ 0.5 KiB) for a single pair, which is what most selectors hold. Held by the
/// controller's compact records, one per Service and PDB in the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pairs(Box<[(String, String)]>);

impl Pairs {
    /// The pairs, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<BTreeMap<String, String>> for Pairs {
    fn from(map: BTreeMap<String, String>) -> Self {
        // A BTreeMap iterates in key order: the slice is sorted.
        Pairs(map.into_iter().collect())
    }
}

impl Labels for Pairs {
    fn label(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }
}

/// A `metav1.LabelSelector` held compactly ([`Pairs`] for `matchLabels`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selector {
    match_labels: Pairs,
    match_expressions: Box<[LabelSelectorRequirement]>,
}

impl From<LabelSelector> for Selector {
    fn from(s: LabelSelector) -> Self {
        Selector {
            match_labels: s.match_labels.unwrap_or_default().into(),
            match_expressions: s.match_expressions.unwrap_or_default().into(),
        }
    }
}

impl Selector {
    /// Whether `labels` satisfy it ([`matches`]).
    pub fn matches(&self, labels: &impl Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.label(k) == Some(v))
            && self
                .match_expressions
                .iter()
                .all(|e| expression_holds(e, labels))
    }
}

/// Whether `labels` satisfy a `metav1.LabelSelector`. An empty selector (`{}`) matches
/// everything; an unknown operator matches nothing (Kubernetes rejects such selectors, so
/// failing closed never hides a real match).
pub fn matches(selector: &LabelSelector, labels: &impl Labels) -> bool {
    selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.label(k) == Some(v.as_str()))
        && selector
            .match_expressions
            .iter()
            .flatten()
            .all(|e| expression_holds(e, labels))
}

fn expression_holds(expr: &LabelSelectorRequirement, labels: &impl Labels) -> bool {
    let value = labels.label(&expr.key);
    let values = expr.values.as_deref().unwrap_or_default();
    match expr.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// Whether a selector selects nothing by construction (no criteria at all is "everything",
/// so this is only true for an absent selector where absence means "nothing").
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

/// Whether a Service-style selector (a plain map; every pair must match) selects `labels`.
/// An empty map selects nothing: a Service without a selector has hand-managed endpoints.
pub fn map_matches(selector: &Pairs, labels: &impl Labels) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.label(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(matches(&LabelSelector::default(), &labels(&[])));
        assert!(matches(&LabelSelector::default(), &labels(&[("a", "b")])));
    }

    #[test]
    fn match_labels_must_all_hold() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web"), ("tier", "fe")])),
            ..Default::default()
        };
        assert!(matches(
            &sel,
            &labels(&[("app", "web"), ("tier", "fe"), ("x", "y")])
        ));
        assert!(!matches(&sel, &labels(&[("app", "web")])));
    }

    #[test]
    fn expressions() {
        let l = labels(&[("env", "prod")]);
        let sel = |e| LabelSelector {
            match_expressions: Some(vec![e]),
            ..Default::default()
        };
        assert!(matches(&sel(expr("env", "In", &["prod", "stage"])), &l));
        assert!(!matches(&sel(expr("env", "NotIn", &["prod"])), &l));
        assert!(matches(&sel(expr("team", "NotIn", &["a"])), &l));
        assert!(matches(&sel(expr("env", "Exists", &[])), &l));
        assert!(!matches(&sel(expr("env", "DoesNotExist", &[])), &l));
        assert!(!matches(&sel(expr("env", "Bogus", &[])), &l));
    }

    #[test]
    fn service_selector_empty_selects_nothing() {
        let pairs = |kv: &[(&str, &str)]| Pairs::from(labels(kv));
        assert!(!map_matches(&pairs(&[]), &labels(&[("a", "b")])));
        assert!(map_matches(
            &pairs(&[("a", "b")]),
            &labels(&[("a", "b"), ("c", "d")])
        ));
        assert!(!map_matches(
            &pairs(&[("a", "b"), ("c", "e")]),
            &pairs(&[("a", "b"), ("c", "d")])
        ));
    }

    /// The compact selector decides exactly as the API's type does, and sorted pairs find
    /// every key.
    #[test]
    fn a_compact_selector_agrees_with_the_label_selector() {
        let sel = |e| LabelSelector {
            match_expressions: Some(vec![e]),
            ..Default::default()
        };
        let l = labels(&[("app", "web"), ("env", "prod"), ("tier", "front")]);
        let as_pairs = Pairs::from(l.clone());
        for (k, v) in &l {
            assert_eq!(as_pairs.label(k), Some(v.as_str()));
        }
        assert_eq!(as_pairs.label("zone"), None);
        let mut with_labels = sel(expr("env", "In", &["prod"]));
        with_labels.match_labels = Some(labels(&[("app", "web")]));
        for s in [
            LabelSelector::default(),
            with_labels,
            sel(expr("env", "NotIn", &["prod"])),
            sel(expr("team", "DoesNotExist", &[])),
            sel(expr("env", "Bogus", &[])),
        ] {
            let compact = Selector::from(s.clone());
            for candidate in [&l, &labels(&[]), &labels(&[("app", "web")])] {
                assert_eq!(compact.matches(candidate), matches(&s, candidate), "{s:?}");
                assert_eq!(
                    compact.matches(&Pairs::from(candidate.clone())),
                    matches(&s, candidate)
                );
            }
        }
    }
}
