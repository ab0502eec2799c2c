//! What the webhook does while it has no certificate: wait a capped, jittered, growing delay
//! and try again, and tell a person in one sentence what failed, why and what to do. The
//! controller does not depend on the webhook, so it keeps reconciling meanwhile.

use std::time::Duration;

use super::error::TlsError;

/// The first wait after a failed attempt.
pub const RETRY_BASE: Duration = Duration::from_secs(1);
/// The longest wait between attempts: how long a fixed cause (a namespace created, RBAC
/// granted) may go unnoticed.
pub const RETRY_CAP: Duration = Duration::from_secs(30);

/// The wait before attempt `attempt + 1` (0-based): `min(cap, base · 2^attempt)`, of which
/// the upper half is jittered by `unit` (a random number in `[0, 1)`), so replicas that
/// failed together do not retry together and the wait never collapses to zero.
pub fn retry_delay(attempt: u32, unit: f64) -> Duration {
    let ceiling = RETRY_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(RETRY_CAP);
    let half = ceiling / 2;
    // NaN (never produced by `random_unit`, but cheap to rule out) would panic in mul_f64.
    let unit = if unit.is_nan() {
        0.0
    } else {
        unit.clamp(0.0, 1.0)
    };
    half + half.mul_f64(unit)
}

/// One sentence for the log: what failed, why, and what to do. `namespace` and `secret`
/// name where the self-managed certificate is kept.
pub fn explain(error: &TlsError, namespace: &str, secret: &str, retry_in: Duration) -> String {
    let retry = format!(
        "the controller keeps running and the webhook retries in {}s",
        retry_in.as_secs().max(1)
    );
    match error {
        TlsError::Api(e) if e.code() == Some(404) && e.op() == "create_webhook_secret" => format!(
            "The admission webhook cannot store its certificate in Secret {namespace}/{secret} because namespace \"{namespace}\" does not exist; create it (kubectl create namespace {namespace}) or set --webhook-namespace to an existing namespace (or --webhook-enabled=false); {retry}."
        ),
        TlsError::Api(e) if e.code() == Some(403) => format!(
            "The admission webhook may not manage its certificate Secret {namespace}/{secret} ({e}); grant the operator the Secret permissions listed in docs/operator.md or set --webhook-namespace; {retry}."
        ),
        other => format!(
            "The admission webhook cannot obtain its serving certificate: {other}; {retry}."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubeapi::ApiError;
    use kube::core::Status;

    fn api(op: &'static str, code: u16, reason: &str, message: &str) -> TlsError {
        TlsError::Api(ApiError::Kube {
            op,
            source: kube::Error::Api(Box::new(Status {
                code,
                reason: reason.into(),
                message: message.into(),
                ..Status::default()
            })),
        })
    }

    #[test]
    fn delays_grow_to_the_cap_and_stay_in_the_upper_half() {
        assert_eq!(retry_delay(0, 0.0), Duration::from_millis(500));
        assert_eq!(retry_delay(0, 1.0), Duration::from_secs(1));
        assert_eq!(retry_delay(3, 0.0), Duration::from_secs(4));
        assert!(retry_delay(3, 0.999_999) < Duration::from_secs(8));
        for attempt in 5..40 {
            assert!(retry_delay(attempt, 1.0) <= RETRY_CAP);
            assert!(retry_delay(attempt, 0.0) >= RETRY_CAP / 2);
        }
        assert_eq!(retry_delay(1, f64::NAN), Duration::from_secs(1));
    }

    #[test]
    fn a_missing_namespace_says_what_to_create() {
        let e = api(
            "create_webhook_secret",
            404,
            "NotFound",
            "namespaces \"prodready-system\" not found",
        );
        let s = explain(
            &e,
            "prodready-system",
            "prodready-webhook-tls",
            Duration::from_secs(4),
        );
        assert_eq!(
            s,
            "The admission webhook cannot store its certificate in Secret prodready-system/prodready-webhook-tls because namespace \"prodready-system\" does not exist; create it (kubectl create namespace prodready-system) or set --webhook-namespace to an existing namespace (or --webhook-enabled=false); the controller keeps running and the webhook retries in 4s."
        );
        assert!(!s.contains('{') && !s.contains("Status"), "{s}");
    }

    #[test]
    fn forbidden_and_other_errors_are_one_readable_sentence() {
        let e = api(
            "get_webhook_secret",
            403,
            "Forbidden",
            "secrets \"t\" is forbidden: User \"x\" cannot get resource \"secrets\"",
        );
        let s = explain(&e, "ops", "t", Duration::from_millis(300));
        assert!(s.starts_with("The admission webhook may not manage"), "{s}");
        assert!(
            s.contains("the API server answered 403 Forbidden: secrets"),
            "{s}"
        );
        assert!(s.ends_with("retries in 1s."), "{s}");
        assert!(!s.contains("Status {"), "{s}");

        let contended = TlsError::Contended {
            namespace: "ops".into(),
            name: "t".into(),
            attempts: 5,
        };
        let s = explain(&contended, "ops", "t", Duration::from_secs(2));
        assert_eq!(
            s,
            "The admission webhook cannot obtain its serving certificate: the webhook certificate Secret ops/t was replaced by another writer each of the 5 times this replica tried to update it; if no other prodready replica is starting, find what else writes it (kubectl get secret -n ops t --show-managed-fields -o yaml); the controller keeps running and the webhook retries in 2s."
        );
        assert!(!s.contains("giving up"), "{s}");
    }
}
