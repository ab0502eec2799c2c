//! Label selector matching, as Kubernetes defines it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `labels` satisfy a `metav1.LabelSelector`. An empty selector (`{}`) matches
/// everything; an unknown operator matches nothing (Kubernetes rejects such selectors, so
/// failing closed never hides a real match).
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if let Some(required) = &selector.match_labels {
        for (k, v) in required {
            if labels.get(k) != Some(v) {
                return false;
            }
        }
    }
    for expr in selector.match_expressions.iter().flatten() {
        let value = labels.get(&expr.key);
        let values = expr.values.as_deref().unwrap_or_default();
        let ok = match expr.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
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
pub fn map_matches(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

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
        assert!(!map_matches(&labels(&[]), &labels(&[("a", "b")])));
        assert!(map_matches(
            &labels(&[("a", "b")]),
            &labels(&[("a", "b"), ("c", "d")])
        ));
    }
}
