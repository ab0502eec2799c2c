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
//!
//! [`bundle`] is the Secret model and its pure renewal plan, [`self_managed`] the loop that
//! applies it, [`files`] the mounted-files watcher, [`config`] the rustls configuration.

mod bundle;
mod config;
mod error;
mod files;
pub mod retry;
mod self_managed;

use std::future::Future;
use std::pin::Pin;

use axum_server::tls_rustls::RustlsConfig;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use tokio_util::sync::CancellationToken;

pub use bundle::{
    Bundle, CA_CERT_KEY, CA_KEY_KEY, PREVIOUS_CA_KEY, TLS_CERT_KEY, TLS_KEY_KEY, next_check, plan,
};
pub use config::server_config;
pub use error::{PemError, TlsError};

use super::WebhookApi;
use super::args::WebhookArgs;
use super::certs;
use super::metrics::AdmissionMetrics;
use crate::error::Categorized;
use crate::kubeapi;
use files::Files;
use self_managed::SelfManaged;

/// A background task that keeps the certificate fresh until shutdown.
pub type Refresher = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Obtains the first certificate and returns the TLS configuration to serve with, plus the
/// task that keeps it fresh.
pub async fn start(
    args: &WebhookArgs,
    api: WebhookApi,
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
            let WebhookApi {
                client,
                calls,
                owner,
            } = api;
            let manager = SelfManaged {
                secrets: Api::namespaced(client.clone(), &namespace),
                configurations: Api::all(client),
                calls,
                owner,
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
            )
            .map_err(|reason| TlsError::Secret {
                namespace: namespace.clone(),
                name: manager.secret_name.clone(),
                reason,
            })?;
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

/// Obtains the first certificate, retrying with [`retry::retry_delay`] until it succeeds or
/// `shutdown` comes (then `None`). Each failure is logged as one sentence
/// ([`retry::explain`]); the caller keeps `prodready_webhook_ready` at 0 meanwhile.
pub async fn obtain(
    args: &WebhookArgs,
    api: WebhookApi,
    metrics: AdmissionMetrics,
    shutdown: CancellationToken,
) -> Option<(RustlsConfig, Refresher)> {
    let mut attempt = 0u32;
    loop {
        match start(args, api.clone(), metrics.clone(), shutdown.clone()).await {
            Ok(served) => {
                if attempt > 0 {
                    tracing::info!(
                        failed_attempts = attempt,
                        "the admission webhook obtained its certificate and is serving"
                    );
                }
                return Some(served);
            }
            Err(e) => {
                let wait = retry::retry_delay(attempt, kubeapi::random_unit());
                let sentence =
                    retry::explain(&e, &args.namespace(), &args.webhook_secret_name, wait);
                tracing::warn!(category = e.category(), attempt = attempt + 1, "{sentence}");
                attempt = attempt.saturating_add(1);
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}
