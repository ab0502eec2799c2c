//! The webhook's serving certificate and its lifecycle.
//!
//! Self-managed (the default): every replica converges on one Secret holding a CA and a
//! serving certificate. The first replica creates it; a replica that loses the create race
//! (409) re-reads and uses the winner's. Renewal (after two thirds of the serving lifetime)
//! is a replace with the Secret's resourceVersion, so two replicas renewing at once cannot
//! both win: the loser re-reads. Every replica re-reads the Secret periodically, hot-reloads a
//! changed certificate into rustls (open connections keep theirs), and injects the CA bundle
//! into the ValidatingWebhookConfiguration with a strategic-merge patch by webhook name.
//!
//! Mounted files (`--tls-cert-file`/`--tls-key-file`, e.g. from cert-manager): re-read when
//! their modification time changes.
//!
//! Every API call goes through [`ApiCalls`]: a timeout per attempt, retries with backoff and
//! jitter for transient failures.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

use super::certs::{self, Ca, CertError, Serving};
use super::{AdmissionMetrics, WebhookArgs};
use crate::kubeapi::{ApiCalls, ApiError};

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
const FIELD_MANAGER: &str = "prodready-webhook";

/// Why no certificate could be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// An API call failed (after retries).
    #[error("webhook certificate: {0}")]
    Api(#[from] ApiError),
    /// Generating a certificate failed.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// rustls refused the certificate or key.
    #[error("rustls rejected the serving certificate: {0}")]
    Rustls(String),
    /// A mounted file could not be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Another replica kept winning the race for the Secret.
    #[error("the webhook certificate Secret kept changing under us; giving up for now")]
    Contended,
}

impl TlsError {
    /// A bounded category.
    pub fn category(&self) -> &'static str {
        match self {
            TlsError::Api(e) => e.category(),
            TlsError::Cert(_) => "certificate",
            TlsError::Rustls(_) => "rustls",
            TlsError::File { .. } => "file",
            TlsError::Contended => "contended",
        }
    }
}

/// A background task that keeps the certificate fresh until shutdown.
pub type Refresher = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Builds a rustls server configuration (ring, HTTP/2 and HTTP/1.1) from PEM.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Rustls(format!("certificate PEM: {e}")))?;
    if chain.is_empty() {
        return Err(TlsError::Rustls("no certificate in the PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| TlsError::Rustls(format!("key PEM: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Obtains the first certificate and returns the TLS configuration to serve with, plus the
/// task that keeps it fresh.
pub async fn start(
    args: &WebhookArgs,
    client: Client,
    calls: ApiCalls,
    metrics: AdmissionMetrics,
    shutdown: CancellationToken,
) -> Result<(RustlsConfig, Refresher), TlsError> {
    match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert), Some(key)) => {
            let files = Files {
                cert: cert.clone(),
                key: key.clone(),
            };
            let (config, stamp) = files.load()?;
            metrics.reload(true, None);
            let rustls = RustlsConfig::from_config(config);
            let refresher = Box::pin(files.watch(
                rustls.clone(),
                stamp,
                args.tls_reload_interval,
                metrics,
                shutdown,
            ));
            Ok((rustls, refresher))
        }
        _ => {
            let namespace = args.namespace();
            let manager = SelfManaged {
                secrets: Api::namespaced(client.clone(), &namespace),
                configurations: Api::all(client),
                calls,
                secret_name: args.webhook_secret_name.clone(),
                namespace: namespace.clone(),
                configuration: args.webhook_configuration_name.clone(),
                sans: certs::service_sans(
                    &args.webhook_service_name,
                    &namespace,
                    &args.webhook_extra_san,
                ),
                validity: args.webhook_cert_validity,
                ca_validity: args.webhook_ca_validity,
                check_interval: args.webhook_cert_check_interval,
            };
            let bundle = manager.ensure(Timestamp::now()).await?;
            let config = server_config(
                bundle.serving.cert_pem.as_bytes(),
                bundle.serving.key_pem.as_bytes(),
            )?;
            metrics.reload(true, Some(bundle.serving.not_after.as_second()));
            tracing::info!(secret = %manager.secret_name, namespace = %namespace, not_after = %bundle.serving.not_after, "webhook serving certificate loaded");
            if let Err(e) = manager.inject(&bundle).await {
                tracing::warn!(error = %e, configuration = %manager.configuration, "cannot inject the CA bundle yet; will retry");
            }
            let rustls = RustlsConfig::from_config(config);
            let refresher = Box::pin(manager.watch(rustls.clone(), bundle, metrics, shutdown));
            Ok((rustls, refresher))
        }
    }
}

// ── Mounted files ─────────────────────────────────────────────────────────────────────────

struct Files {
    cert: PathBuf,
    key: PathBuf,
}

type Stamp = (Option<SystemTime>, Option<SystemTime>);

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::File {
        path: path.to_owned(),
        source,
    })
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Files {
    fn stamp(&self) -> Stamp {
        (mtime(&self.cert), mtime(&self.key))
    }

    fn load(&self) -> Result<(Arc<rustls::ServerConfig>, Stamp), TlsError> {
        let stamp = self.stamp();
        let config = server_config(&read(&self.cert)?, &read(&self.key)?)?;
        Ok((config, stamp))
    }

    async fn watch(
        self,
        rustls: RustlsConfig,
        mut stamp: Stamp,
        interval: Duration,
        metrics: AdmissionMetrics,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval.max(Duration::from_millis(100))) => {}
            }
            let now = self.stamp();
            if now == stamp {
                continue;
            }
            match self.load() {
                Ok((config, new_stamp)) => {
                    rustls.reload_from_config(config);
                    stamp = new_stamp;
                    metrics.reload(true, None);
                    tracing::info!(cert = %self.cert.display(), "webhook certificate files changed; reloaded");
                }
                Err(e) => {
                    // Keep serving the old pair; a half-written rotation settles by the next poll.
                    metrics.reload(false, None);
                    tracing::warn!(error = %e, "webhook certificate files changed but cannot be loaded; keeping the previous certificate");
                }
            }
        }
    }
}

// ── Self-managed ─────────────────────────────────────────────────────────────────────────

/// What the Secret holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// The current CA.
    pub ca: Ca,
    /// The previous CA's certificate, still trusted after a CA rotation.
    pub previous_ca: Option<String>,
    /// The serving certificate.
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
        .map_err(|e| CertError::Range(e.to_string()))?;
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

struct SelfManaged {
    secrets: Api<Secret>,
    configurations: Api<ValidatingWebhookConfiguration>,
    calls: ApiCalls,
    secret_name: String,
    namespace: String,
    configuration: String,
    sans: Vec<String>,
    validity: Duration,
    ca_validity: Duration,
    check_interval: Duration,
}

fn conflict(e: &ApiError) -> bool {
    matches!(e.code(), Some(409))
}

impl SelfManaged {
    /// Reads the Secret, creating or renewing it if needed; converges with other replicas.
    async fn ensure(&self, now: Timestamp) -> Result<Bundle, TlsError> {
        for _ in 0..5 {
            let current = self
                .calls
                .call("get_webhook_secret", || {
                    self.secrets.get_opt(&self.secret_name)
                })
                .await?;
            let existing = current.as_ref().and_then(Bundle::from_secret);
            let Some(next) = plan(
                existing.as_ref(),
                &self.sans,
                now,
                self.validity,
                self.ca_validity,
            )?
            else {
                if let Some(b) = existing {
                    return Ok(b);
                }
                continue;
            };
            let mut secret = next.to_secret(&self.secret_name, &self.namespace);
            let post = PostParams::default();
            let written = match &current {
                None => {
                    self.calls
                        .call("create_webhook_secret", || {
                            self.secrets.create(&post, &secret)
                        })
                        .await
                }
                Some(old) => {
                    // Optimistic concurrency: only replace the version we read.
                    secret.metadata.resource_version = old.metadata.resource_version.clone();
                    self.calls
                        .call("replace_webhook_secret", || {
                            self.secrets.replace(&self.secret_name, &post, &secret)
                        })
                        .await
                }
            };
            match written {
                Ok(_) => {
                    tracing::info!(secret = %self.secret_name, namespace = %self.namespace, not_after = %next.serving.not_after, created = current.is_none(), "webhook certificate issued");
                    return Ok(next);
                }
                // Another replica won the race: use what it wrote.
                Err(e) if conflict(&e) => {
                    tracing::debug!(secret = %self.secret_name, "another replica wrote the webhook certificate first; re-reading");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(TlsError::Contended)
    }

    /// Puts the CA bundle into every webhook of the configuration, where it differs.
    async fn inject(&self, bundle: &Bundle) -> Result<bool, TlsError> {
        if self.configuration.is_empty() {
            return Ok(false);
        }
        let Some(vwc) = self
            .calls
            .call("get_webhook_configuration", || {
                self.configurations.get_opt(&self.configuration)
            })
            .await?
        else {
            tracing::warn!(configuration = %self.configuration, "ValidatingWebhookConfiguration not found; the CA bundle will be injected once it exists");
            return Ok(false);
        };
        let want = bundle.ca_bundle().into_bytes();
        let stale: Vec<String> = vwc
            .webhooks
            .iter()
            .flatten()
            .filter(|w| w.client_config.ca_bundle.as_ref().map(|b| &b.0) != Some(&want))
            .map(|w| w.name.clone())
            .collect();
        if stale.is_empty() {
            return Ok(false);
        }
        let encoded =
            serde_json::to_value(ByteString(want)).map_err(|e| TlsError::Rustls(e.to_string()))?;
        // Strategic merge by webhook name touches only caBundle, whatever else the
        // configuration holds (and whichever API version wrote it).
        let patch = serde_json::json!({
            "webhooks": stale
                .iter()
                .map(|name| serde_json::json!({"name": name, "clientConfig": {"caBundle": encoded}}))
                .collect::<Vec<_>>()
        });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let patch = Patch::Strategic(&patch);
        self.calls
            .call("patch_webhook_configuration", || {
                self.configurations
                    .patch(&self.configuration, &params, &patch)
            })
            .await?;
        tracing::info!(configuration = %self.configuration, webhooks = stale.len(), "CA bundle injected");
        Ok(true)
    }

    async fn watch(
        self,
        rustls: RustlsConfig,
        mut current: Bundle,
        metrics: AdmissionMetrics,
        shutdown: CancellationToken,
    ) {
        let mut failed = false;
        loop {
            let now = Timestamp::now();
            let until_renewal =
                certs::renew_at(current.serving.issued_at, current.serving.not_after)
                    .duration_since(now)
                    .try_into()
                    .unwrap_or(Duration::ZERO);
            let mut wait = self.check_interval.min(until_renewal);
            if failed {
                wait = wait
                    .max(Duration::from_secs(1))
                    .min(Duration::from_secs(10));
            }
            let wait = wait.max(Duration::from_millis(200));
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            match self.ensure(Timestamp::now()).await {
                Ok(bundle) => {
                    failed = false;
                    if bundle.serving.cert_pem != current.serving.cert_pem {
                        match server_config(
                            bundle.serving.cert_pem.as_bytes(),
                            bundle.serving.key_pem.as_bytes(),
                        ) {
                            Ok(config) => {
                                // New handshakes get the new certificate; open connections
                                // keep theirs.
                                rustls.reload_from_config(config);
                                metrics.reload(true, Some(bundle.serving.not_after.as_second()));
                                tracing::info!(not_after = %bundle.serving.not_after, "webhook serving certificate rotated");
                            }
                            Err(e) => {
                                metrics.reload(false, None);
                                tracing::error!(error = %e, "renewed webhook certificate cannot be loaded; keeping the previous one");
                            }
                        }
                    }
                    if let Err(e) = self.inject(&bundle).await {
                        tracing::warn!(error = %e, configuration = %self.configuration, "cannot inject the CA bundle; will retry");
                    }
                    current = bundle;
                }
                Err(e) => {
                    failed = true;
                    tracing::warn!(error = %e, category = e.category(), "cannot refresh the webhook certificate; will retry");
                }
            }
        }
    }
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
        assert!(server_config(b.serving.cert_pem.as_bytes(), b.serving.key_pem.as_bytes()).is_ok());
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

    #[test]
    fn garbage_pem_is_a_clear_error() {
        let e = server_config(b"nope", b"nope").expect_err("invalid");
        assert_eq!(e.category(), "rustls");
    }
}
