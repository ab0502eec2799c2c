//! The name of a cluster in a fleet, as prodready writes it: `--cluster-name` of the operator
//! (on policy reports and Events) and of `prodready audit --cluster` (on every finding), or the
//! kubeconfig context a fleet audit read. Whether it can also be a label value decides whether
//! a report gets the label or only the property.

/// Whether `s` is a valid Kubernetes label value: at most 63 characters, empty, or
/// alphanumerics with `-`, `_` and `.` inside.
pub fn is_label_value(s: &str) -> bool {
    let b = s.as_bytes();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
    b.len() <= 63
        && (b.is_empty()
            || (b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(inner)))
}

/// Why a `--cluster-name` cannot be used (clap puts the flag before the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{name:?} is not a valid label value (at most 63 characters: letters, digits, '-', '_' and '.', starting and ending with a letter or digit); choose a name such as the cluster's external label in Prometheus, e.g. eu-west-1-prod"
)]
pub struct InvalidClusterName {
    /// The name given.
    pub name: String,
}

/// `--cluster-name`: empty means none; anything else must be a label value, since it becomes
/// a label of every policy report.
pub fn parse(name: &str) -> Result<String, InvalidClusterName> {
    if is_label_value(name) {
        Ok(name.to_owned())
    } else {
        Err(InvalidClusterName {
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_told_apart() {
        for ok in ["", "a", "eu-west-1", "prod.cluster_2", &"x".repeat(63)] {
            assert!(is_label_value(ok), "{ok}");
        }
        for bad in [
            "-a",
            "a-",
            "arn:aws:eks:eu-west-1:1:cluster/prod",
            "with space",
            &"x".repeat(64),
        ] {
            assert!(!is_label_value(bad), "{bad}");
        }
    }

    #[test]
    fn an_invalid_name_is_refused_with_a_sentence() {
        assert_eq!(parse("eu-1").as_deref(), Ok("eu-1"));
        let e = parse("gke_proj_zone_c/1").err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.starts_with("\"gke_proj_zone_c/1\" is not a valid label value")),
            "{e:?}"
        );
    }
}
