//! The validating admission webhook: `POST /validate` over TLS on its own port.
//!
//! [`review`] holds the decision, a pure function of the request, the policies, the context
//! and the instant; [`server`] only decodes, calls it and encodes; [`tls`] provides the
//! certificate (self-managed in a Secret with CA injection and rotation, or mounted files)
//! and hot-reloads it; [`certs`] generates certificates. The review path reads the
//! [`SharedSnapshot`] the controller publishes and never calls the API server.
//!
//! Until the snapshot is synced (every store has listed once) the webhook admits everything
//! without warnings and counts it in `prodready_admission_not_ready_total`: a half-filled
//! context would produce wrong cross-object verdicts, and the configuration's `Ignore`
//! failure policy already means "admit when prodready cannot judge".
//!
//! A webhook without a certificate (its Secret's namespace missing, RBAC not granted yet)
//! does not stop the process: it logs one sentence saying what to do, keeps
//! `prodready_webhook_ready` at 0 and retries with capped, jittered backoff, while the
//! controller keeps reconciling; once the cause is fixed it starts serving without a restart.

pub mod args;
pub mod certs;
pub mod metrics;
pub mod review;
pub mod server;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::Categorized;
use crate::kubeapi::ApiCalls;
use crate::owner::Owner;
use crate::snapshot::SharedSnapshot;

pub use args::WebhookArgs;
pub use metrics::{AdmissionMetrics, WebhookMetrics, kind_label};
pub use review::{Decision, Review, review, review_detailed};

/// How the webhook reaches the API server (for its certificate Secret and the CA bundle
/// injection only; reviews never call it).
#[derive(Clone)]
pub struct WebhookApi {
    /// The client.
    pub client: kube::Client,
    /// Timeouts, retries and dependency metrics for every call.
    pub calls: ApiCalls,
    /// What the self-managed certificate Secret belongs to (`--owner-deployment`).
    pub owner: Option<Arc<Owner>>,
}

/// Why the webhook stopped or could not start. Not having a certificate is not among them:
/// the webhook then waits and retries ([`tls::obtain`]) while the controller keeps running.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The port could not be bound.
    #[error(
        "the admission webhook cannot listen on {addr}: {source}; choose another address with --webhook-addr, or turn the webhook off with --webhook-enabled=false"
    )]
    Listen {
        /// The address from `--webhook-addr`.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The server failed.
    #[error("the admission webhook server failed: {0}")]
    Serve(#[source] std::io::Error),
}

impl Categorized for WebhookError {
    fn category(&self) -> &'static str {
        match self {
            WebhookError::Listen { .. } => "listen",
            WebhookError::Serve(_) => "serve",
        }
    }
}

/// Serves the webhook on `args.webhook_addr` until `shutdown` (or forever when disabled:
/// then it only waits for `shutdown`).
pub async fn serve(
    args: WebhookArgs,
    api: WebhookApi,
    snapshot: SharedSnapshot,
    metrics: WebhookMetrics,
    shutdown: CancellationToken,
) -> Result<(), WebhookError> {
    if !args.webhook_enabled {
        shutdown.cancelled().await;
        return Ok(());
    }
    let listener =
        std::net::TcpListener::bind(args.webhook_addr).map_err(|source| WebhookError::Listen {
            addr: args.webhook_addr,
            source,
        })?;
    serve_on(listener, args, api, snapshot, metrics, shutdown).await
}

/// [`serve`] on a listener the caller bound (tests bind port 0 and read the address).
pub async fn serve_on(
    listener: std::net::TcpListener,
    args: WebhookArgs,
    api: WebhookApi,
    snapshot: SharedSnapshot,
    metrics: WebhookMetrics,
    shutdown: CancellationToken,
) -> Result<(), WebhookError> {
    let addr = listener.local_addr().unwrap_or(args.webhook_addr);
    listener
        .set_nonblocking(true)
        .map_err(|source| WebhookError::Listen { addr, source })?;
    metrics.admission.ready(false);
    let Some((config, refresher)) =
        tls::obtain(&args, api, metrics.admission.clone(), shutdown.clone()).await
    else {
        return Ok(());
    };
    metrics.admission.ready(true);
    let admission_metrics = metrics.admission.clone();
    let refresh_task = tokio::spawn(refresher);
    let router = server::router(server::WebhookState::new(
        snapshot,
        metrics,
        args.webhook_max_body_bytes,
    ));
    let handle = axum_server::Handle::new();
    let on_shutdown = handle.clone();
    let token = shutdown.clone();
    tokio::spawn(async move {
        token.cancelled().await;
        // In-flight reviews finish; the API server times out after a few seconds anyway.
        on_shutdown.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    tracing::info!(%addr, "admission webhook listening");
    // Reviews are small request/response exchanges: never let Nagle hold a response back.
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
        .acceptor(axum_server::accept::NoDelayAcceptor::new());
    let result = axum_server::from_tcp(listener)
        .map_err(WebhookError::Serve)?
        .acceptor(acceptor)
        .handle(handle)
        .serve(router.into_make_service())
        .await
        .map_err(WebhookError::Serve);
    admission_metrics.ready(false);
    refresh_task.abort();
    result
}
