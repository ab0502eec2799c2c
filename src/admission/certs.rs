//! The webhook's certificates, generated with rcgen: a CA and a serving certificate it signs,
//! and when the serving certificate is due for renewal. Pure apart from key generation: the
//! instant comes in as an argument, nothing here talks to the API server.

use std::time::Duration;

use crate::error::Categorized;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The CA's common name (also how a serving certificate names its issuer).
pub const CA_COMMON_NAME: &str = "prodready-webhook-ca";

/// Clock skew tolerated between replicas and the API server: certificates start this early.
const SKEW: Duration = Duration::from_secs(60);

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused (bad SAN, bad key…).
    #[error(
        "the webhook certificate cannot be generated: {0}; check the names it is issued for (--webhook-service-name, --webhook-namespace, --webhook-extra-san), or delete the certificate Secret (--webhook-secret-name) if its CA key is damaged"
    )]
    Rcgen(#[from] rcgen::Error),
    /// A validity flag puts an instant out of range.
    #[error(
        "the certificate validity given by {flag} is out of range ({reason}); choose a shorter {flag} (the defaults are 2160h for --webhook-cert-validity, 87600h for --webhook-ca-validity)"
    )]
    Range {
        /// `--webhook-cert-validity` or `--webhook-ca-validity`.
        flag: &'static str,
        /// What was out of range.
        reason: String,
    },
}

/// A CA: its certificate and key, PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ca {
    /// The certificate (what goes into the webhook configuration's `caBundle`).
    pub cert_pem: String,
    /// The private key that signs serving certificates; stored only in the Secret.
    pub key_pem: String,
    /// When the CA expires.
    pub not_after: Timestamp,
}

/// A serving certificate and key, PEM, with the instants rotation is computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Serving {
    /// The leaf certificate, for the webhook Service's names (and `--webhook-extra-san`).
    pub cert_pem: String,
    /// Its private key, generated anew with every issue (rcgen's default algorithm).
    pub key_pem: String,
    /// When it was issued (its `notBefore` is [`SKEW`] earlier).
    pub issued_at: Timestamp,
    /// When it expires.
    pub not_after: Timestamp,
}

/// The flag of the CA's validity, named when it is out of range.
pub const CA_VALIDITY_FLAG: &str = "--webhook-ca-validity";
/// The flag of the serving certificate's validity.
pub const CERT_VALIDITY_FLAG: &str = "--webhook-cert-validity";

impl CertError {
    /// A validity out of range, blamed on `flag`.
    pub fn range(flag: &'static str, reason: impl std::fmt::Display) -> Self {
        CertError::Range {
            flag,
            reason: reason.to_string(),
        }
    }
}

fn offset(t: Timestamp, flag: &'static str) -> Result<time::OffsetDateTime, CertError> {
    time::OffsetDateTime::from_unix_timestamp(t.as_second()).map_err(|e| CertError::range(flag, e))
}

fn add(t: Timestamp, d: Duration, flag: &'static str) -> Result<Timestamp, CertError> {
    let d = SignedDuration::try_from(d).map_err(|e| CertError::range(flag, e))?;
    t.checked_add(d).map_err(|e| CertError::range(flag, e))
}

fn sub(t: Timestamp, d: Duration, flag: &'static str) -> Result<Timestamp, CertError> {
    let d = SignedDuration::try_from(d).map_err(|e| CertError::range(flag, e))?;
    t.checked_sub(d).map_err(|e| CertError::range(flag, e))
}

fn ca_params() -> Result<CertificateParams, CertError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    p.distinguished_name
        .push(DnType::OrganizationName, "prodready");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

/// Generates a CA valid from `now` for `validity`.
pub fn generate_ca(now: Timestamp, validity: Duration) -> Result<Ca, CertError> {
    let key = KeyPair::generate()?;
    let mut params = ca_params()?;
    let flag = CA_VALIDITY_FLAG;
    let not_after = add(now, validity, flag)?;
    params.not_before = offset(sub(now, SKEW, flag)?, flag)?;
    params.not_after = offset(not_after, flag)?;
    let cert = params.self_signed(&key)?;
    Ok(Ca {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after,
    })
}

/// Issues a serving certificate for `sans` (DNS names or IP addresses), signed by the CA
/// whose key is `ca_key_pem`, valid from `now` for `validity`.
pub fn issue_serving(
    ca_key_pem: &str,
    sans: &[String],
    now: Timestamp,
    validity: Duration,
) -> Result<Serving, CertError> {
    let issuer = Issuer::new(ca_params()?, KeyPair::from_pem(ca_key_pem)?);
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(sans.to_vec())?;
    params.distinguished_name.push(
        DnType::CommonName,
        sans.first().map_or("prodready-webhook", String::as_str),
    );
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let flag = CERT_VALIDITY_FLAG;
    let not_after = add(now, validity, flag)?;
    params.not_before = offset(sub(now, SKEW, flag)?, flag)?;
    params.not_after = offset(not_after, flag)?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Serving {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        issued_at: now,
        not_after,
    })
}

/// When a certificate issued at `issued_at` and expiring at `not_after` is renewed: after
/// two thirds of its lifetime, which leaves a third for retries and for every replica to
/// pick the new one up.
pub fn renew_at(issued_at: Timestamp, not_after: Timestamp) -> Timestamp {
    let life = not_after.duration_since(issued_at);
    issued_at.checked_add(life * 2 / 3).unwrap_or(not_after)
}

/// The DNS names a webhook Service is reached by from the API server, plus extra SANs.
pub fn service_sans(service: &str, namespace: &str, extra: &[String]) -> Vec<String> {
    let mut sans = vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        format!("{service}.{namespace}"),
        service.to_owned(),
    ];
    for s in extra {
        let s = s.trim();
        if !s.is_empty() && !sans.iter().any(|x| x == s) {
            sans.push(s.to_owned());
        }
    }
    sans
}

impl Categorized for CertError {
    fn category(&self) -> &'static str {
        match self {
            CertError::Rcgen(_) => "rcgen",
            CertError::Range { .. } => "range",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    fn t(s: &str) -> Timestamp {
        s.parse().expect("instant")
    }

    #[test]
    fn a_validity_out_of_range_names_its_flag() {
        let now = t("2026-01-01T00:00:00Z");
        let huge = Duration::from_secs(u64::MAX / 4);
        let e = generate_ca(now, huge)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with(
                "the certificate validity given by --webhook-ca-validity is out of range ("
            ),
            "{e}"
        );
        assert!(e.contains("choose a shorter --webhook-ca-validity"), "{e}");
        let e = issue_serving("not a key", &["hook".into()], now, huge)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with("the webhook certificate cannot be generated: "),
            "{e}"
        );
    }

    #[test]
    fn renewal_is_at_two_thirds_of_the_lifetime() {
        assert_eq!(
            renew_at(t("2026-01-01T00:00:00Z"), t("2026-01-01T00:00:30Z")),
            t("2026-01-01T00:00:20Z")
        );
        assert_eq!(
            renew_at(t("2026-01-01T00:00:00Z"), t("2026-04-01T00:00:00Z")),
            t("2026-03-02T00:00:00Z")
        );
    }

    #[test]
    fn sans_cover_the_service_names_and_extras_once() {
        let s = service_sans(
            "hook",
            "ops",
            &["127.0.0.1".into(), "hook".into(), " ".into()],
        );
        assert_eq!(
            s,
            [
                "hook.ops.svc",
                "hook.ops.svc.cluster.local",
                "hook.ops",
                "hook",
                "127.0.0.1"
            ]
        );
    }

    #[test]
    fn serving_certificate_chains_to_the_ca_and_loads_into_rustls() {
        let now = t("2026-11-23T00:00:00Z");
        let ca = generate_ca(now, Duration::from_secs(3600 * 24 * 365)).expect("ca");
        let sans = service_sans("hook", "ops", &["127.0.0.1".into()]);
        let serving =
            issue_serving(&ca.key_pem, &sans, now, Duration::from_secs(90)).expect("serving");
        assert_eq!(serving.not_after, t("2026-11-23T00:01:30Z"));

        let ca_der = CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).expect("ca pem");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_der).expect("root");
        let leaf = CertificateDer::from_pem_slice(serving.cert_pem.as_bytes()).expect("leaf pem");
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider.clone(),
        )
        .build()
        .expect("verifier");
        let name = rustls::pki_types::ServerName::try_from("hook.ops.svc").expect("name");
        let at = rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(now.as_second() + 10).expect("positive"),
        ));
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], at)
            .expect("leaf verifies against the CA");
        let ip = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("ip");
        verifier
            .verify_server_cert(&leaf, &[], &ip, &[], at)
            .expect("IP SAN verifies");
        // Expired after its validity.
        let later = rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(now.as_second() + 120).expect("positive"),
        ));
        assert!(
            verifier
                .verify_server_cert(&leaf, &[], &name, &[], later)
                .is_err()
        );

        let key = PrivateKeyDer::from_pem_slice(serving.key_pem.as_bytes()).expect("key");
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![leaf], key)
            .expect("rustls accepts the pair");
    }

    #[test]
    fn a_second_serving_certificate_from_the_same_ca_key_also_chains() {
        let now = t("2026-11-23T00:00:00Z");
        let ca = generate_ca(now, Duration::from_secs(86400)).expect("ca");
        let a = issue_serving(&ca.key_pem, &["a".into()], now, Duration::from_secs(60)).expect("a");
        let b = issue_serving(&ca.key_pem, &["a".into()], now, Duration::from_secs(60)).expect("b");
        assert_ne!(a.cert_pem, b.cert_pem);
        assert_ne!(a.key_pem, b.key_pem);
    }
}
