//! The self-managed certificate as data: the [`Bundle`] a Secret holds (CA, previous CA,
//! serving certificate and the names it was issued for), its Secret form, and the pure
//! renewal plan — whether to keep the stored bundle, what to write instead, and when to look
//! again. Nothing here calls the API server or reads the clock.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use crate::admission::certs::{self, Ca, CertError, Serving};

/// Secret key of the CA certificate.
pub const CA_CERT_KEY: &str = "ca.crt";
/// Secret key of the CA private key.
pub const CA_KEY_KEY: &str = "ca.key";
/// Secret key of the previous CA certificate, kept in the bundle after a CA rotation.
pub const PREVIOUS_CA_KEY: &str = "ca-previous.crt";
/// Secret key of the serving certificate.
pub const TLS_CERT_KEY: &str = "tls.crt";
/// Secret key of the serving private key.
pub const TLS_KEY_KEY: &str = "tls.key";
const ANN_ISSUED: &str = "prodready.dev/serving-issued-at";
const ANN_NOT_AFTER: &str = "prodready.dev/serving-not-after";
const ANN_CA_NOT_AFTER: &str = "prodready.dev/ca-not-after";
const ANN_SANS: &str = "prodready.dev/serving-sans";

/// What the Secret holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// The CA that signs new serving certificates (`ca.crt`, `ca.key`).
    pub ca: Ca,
    /// The previous CA's certificate, still trusted after a CA rotation.
    pub previous_ca: Option<String>,
    /// The certificate and key the webhook serves (`tls.crt`, `tls.key`), with the instants
    /// renewal is planned from.
    pub serving: Serving,
    /// The SANs the serving certificate was issued for.
    pub sans: Vec<String>,
}

impl Bundle {
    /// The PEM to put in `caBundle`.
    pub fn ca_bundle(&self) -> String {
        let mut pem = self.ca.cert_pem.clone();
        if let Some(prev) = &self.previous_ca {
            if !pem.ends_with('\n') {
                pem.push('\n');
            }
            pem.push_str(prev);
        }
        pem
    }

    /// Reads a bundle from a Secret, or `None` when it is incomplete.
    pub fn from_secret(secret: &Secret) -> Option<Bundle> {
        let data = secret.data.as_ref()?;
        let text = |k: &str| {
            data.get(k)
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
                .filter(|s| !s.trim().is_empty())
        };
        let ann = secret.metadata.annotations.as_ref()?;
        let instant = |k: &str| ann.get(k).and_then(|v| v.parse::<Timestamp>().ok());
        Some(Bundle {
            ca: Ca {
                cert_pem: text(CA_CERT_KEY)?,
                key_pem: text(CA_KEY_KEY)?,
                not_after: instant(ANN_CA_NOT_AFTER)?,
            },
            previous_ca: text(PREVIOUS_CA_KEY),
            serving: Serving {
                cert_pem: text(TLS_CERT_KEY)?,
                key_pem: text(TLS_KEY_KEY)?,
                issued_at: instant(ANN_ISSUED)?,
                not_after: instant(ANN_NOT_AFTER)?,
            },
            sans: ann
                .get(ANN_SANS)
                .map(|s| s.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
        })
    }

    /// The Secret that stores this bundle.
    pub fn to_secret(&self, name: &str, namespace: &str) -> Secret {
        let mut data = BTreeMap::from([
            (
                CA_CERT_KEY.to_owned(),
                ByteString(self.ca.cert_pem.clone().into_bytes()),
            ),
            (
                CA_KEY_KEY.to_owned(),
                ByteString(self.ca.key_pem.clone().into_bytes()),
            ),
            (
                TLS_CERT_KEY.to_owned(),
                ByteString(self.serving.cert_pem.clone().into_bytes()),
            ),
            (
                TLS_KEY_KEY.to_owned(),
                ByteString(self.serving.key_pem.clone().into_bytes()),
            ),
        ]);
        if let Some(prev) = &self.previous_ca {
            data.insert(
                PREVIOUS_CA_KEY.to_owned(),
                ByteString(prev.clone().into_bytes()),
            );
        }
        Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                labels: Some(BTreeMap::from([
                    ("app.kubernetes.io/name".to_owned(), "prodready".to_owned()),
                    (
                        "app.kubernetes.io/component".to_owned(),
                        "webhook".to_owned(),
                    ),
                ])),
                annotations: Some(BTreeMap::from([
                    (ANN_ISSUED.to_owned(), self.serving.issued_at.to_string()),
                    (ANN_NOT_AFTER.to_owned(), self.serving.not_after.to_string()),
                    (ANN_CA_NOT_AFTER.to_owned(), self.ca.not_after.to_string()),
                    (ANN_SANS.to_owned(), self.sans.join(",")),
                ])),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".to_owned()),
            data: Some(data),
            ..Secret::default()
        }
    }
}

/// Decides whether the stored bundle can be kept, or returns the one to write instead. Pure
/// apart from key generation.
pub fn plan(
    existing: Option<&Bundle>,
    sans: &[String],
    now: Timestamp,
    validity: Duration,
    ca_validity: Duration,
) -> Result<Option<Bundle>, CertError> {
    let serving_life = k8s_openapi::jiff::SignedDuration::try_from(validity)
        .map_err(|e| CertError::range(certs::CERT_VALIDITY_FLAG, e))?;
    let (ca, previous_ca, new_ca) = match existing {
        // The CA must outlive at least two serving certificates, or it is replaced; the old
        // one stays in the bundle so certificates it signed keep verifying meanwhile.
        Some(b) if b.ca.not_after.duration_since(now) > serving_life * 2 => {
            (b.ca.clone(), b.previous_ca.clone(), false)
        }
        Some(b) => (
            certs::generate_ca(now, ca_validity)?,
            (b.ca.not_after > now).then(|| b.ca.cert_pem.clone()),
            true,
        ),
        None => (certs::generate_ca(now, ca_validity)?, None, true),
    };
    let keep_serving = existing.is_some_and(|b| {
        !new_ca
            && same_names(&b.sans, sans)
            && now < certs::renew_at(b.serving.issued_at, b.serving.not_after)
    });
    if keep_serving {
        return Ok(None);
    }
    let serving = certs::issue_serving(&ca.key_pem, sans, now, validity)?;
    Ok(Some(Bundle {
        ca,
        previous_ca,
        serving,
        sans: sans.to_vec(),
    }))
}

fn same_names(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

/// How long to wait before the next look at the Secret: the check interval, but no later than
/// the renewal instant of `current`; after a failed look between 1 s and 10 s; never below
/// 200 ms (a burst of failures must not spin).
pub fn next_check(
    current: &Bundle,
    now: Timestamp,
    check_interval: Duration,
    failed: bool,
) -> Duration {
    let until_renewal = certs::renew_at(current.serving.issued_at, current.serving.not_after)
        .duration_since(now)
        .try_into()
        .unwrap_or(Duration::ZERO);
    let mut wait = check_interval.min(until_renewal);
    if failed {
        wait = wait
            .max(Duration::from_secs(1))
            .min(Duration::from_secs(10));
    }
    wait.max(Duration::from_millis(200))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("instant")
    }

    const DAY: Duration = Duration::from_secs(86400);

    fn sans() -> Vec<String> {
        certs::service_sans("hook", "ops", &[])
    }

    #[test]
    fn first_plan_issues_a_ca_and_a_serving_certificate() {
        let b = plan(
            None,
            &sans(),
            t("2026-01-01T00:00:00Z"),
            90 * DAY,
            3650 * DAY,
        )
        .expect("plan")
        .expect("new bundle");
        assert_eq!(b.sans, sans());
        assert_eq!(b.previous_ca, None);
        assert_eq!(b.ca_bundle(), b.ca.cert_pem);
        assert!(
            super::super::config::server_config(
                b.serving.cert_pem.as_bytes(),
                b.serving.key_pem.as_bytes()
            )
            .is_ok()
        );
    }

    #[test]
    fn bundle_round_trips_through_the_secret() {
        let b = plan(
            None,
            &sans(),
            t("2026-01-01T00:00:00Z"),
            90 * DAY,
            3650 * DAY,
        )
        .expect("plan")
        .expect("bundle");
        let secret = b.to_secret("hook-tls", "ops");
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(Bundle::from_secret(&secret), Some(b));
        let mut broken = secret.clone();
        broken.data.as_mut().expect("data").remove(TLS_KEY_KEY);
        assert_eq!(Bundle::from_secret(&broken), None);
    }

    #[test]
    fn keeps_a_fresh_certificate_and_renews_after_two_thirds() {
        let start = t("2026-01-01T00:00:00Z");
        let b = plan(None, &sans(), start, 90 * DAY, 3650 * DAY)
            .expect("plan")
            .expect("bundle");
        let day59 = t("2026-03-01T00:00:00Z");
        assert_eq!(
            plan(Some(&b), &sans(), day59, 90 * DAY, 3650 * DAY).expect("plan"),
            None
        );
        let day61 = t("2026-03-03T00:00:00Z");
        let renewed = plan(Some(&b), &sans(), day61, 90 * DAY, 3650 * DAY)
            .expect("plan")
            .expect("renewed");
        assert_eq!(renewed.ca, b.ca, "the CA is kept");
        assert_ne!(renewed.serving, b.serving);
        assert_eq!(renewed.serving.issued_at, day61);
    }

    #[test]
    fn changed_names_reissue_the_serving_certificate() {
        let start = t("2026-01-01T00:00:00Z");
        let b = plan(None, &sans(), start, 90 * DAY, 3650 * DAY)
            .expect("plan")
            .expect("bundle");
        let more = certs::service_sans("hook", "ops", &["127.0.0.1".into()]);
        let r = plan(Some(&b), &more, start, 90 * DAY, 3650 * DAY)
            .expect("plan")
            .expect("reissued");
        assert_eq!(r.sans, more);
        assert_eq!(r.ca, b.ca);
    }

    #[test]
    fn next_check_waits_the_interval_but_not_past_renewal() {
        let start = t("2026-01-01T00:00:00Z");
        let b = plan(None, &sans(), start, 90 * DAY, 3650 * DAY)
            .expect("plan")
            .expect("bundle");
        let minute = Duration::from_secs(60);
        assert_eq!(next_check(&b, start, minute, false), minute);
        // Renewal at two thirds of 90 days: day 60. Ten seconds before it, wait ten seconds.
        let renew = certs::renew_at(b.serving.issued_at, b.serving.not_after);
        let before = renew - k8s_openapi::jiff::SignedDuration::from_secs(10);
        assert_eq!(
            next_check(&b, before, minute, false),
            Duration::from_secs(10)
        );
        // Past renewal: the floor, so a loop that cannot renew does not spin.
        assert_eq!(
            next_check(&b, renew, minute, false),
            Duration::from_millis(200)
        );
        // After a failure: at least 1 s, at most 10 s.
        assert_eq!(next_check(&b, start, minute, true), Duration::from_secs(10));
        assert_eq!(next_check(&b, renew, minute, true), Duration::from_secs(1));
    }

    #[test]
    fn an_expiring_ca_is_replaced_and_the_old_one_stays_in_the_bundle() {
        let start = t("2026-01-01T00:00:00Z");
        let b = plan(None, &sans(), start, 10 * DAY, 25 * DAY)
            .expect("plan")
            .expect("bundle");
        // 6 days later the CA has 19 days left, less than two serving lifetimes (20).
        let later = t("2026-01-07T00:00:00Z");
        let r = plan(Some(&b), &sans(), later, 10 * DAY, 25 * DAY)
            .expect("plan")
            .expect("rotated");
        assert_ne!(r.ca, b.ca);
        assert_eq!(r.previous_ca.as_deref(), Some(b.ca.cert_pem.as_str()));
        assert!(r.ca_bundle().contains(&b.ca.cert_pem) && r.ca_bundle().contains(&r.ca.cert_pem));
    }
}
