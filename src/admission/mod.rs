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

pub mod certs;
pub mod review;
pub mod server;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::api::WorkloadKind;
use crate::kubeapi::ApiCalls;
use crate::metrics::HttpMetrics;
use crate::run::parse_duration;
use crate::snapshot::SharedSnapshot;

pub use review::{Decision, Review, review, review_detailed};

/// Flags of the admission webhook (part of `prodready run`). Every flag can also be set by
/// its environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Serve the validating admission webhook.
    #[arg(long, env = "PRODREADY_WEBHOOK_ENABLED", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub webhook_enabled: bool,

    /// Address of the webhook's HTTPS server (`POST /validate`).
    #[arg(long, env = "PRODREADY_WEBHOOK_ADDR", default_value = "0.0.0.0:8443")]
    pub webhook_addr: SocketAddr,

    /// Largest AdmissionReview body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "PRODREADY_WEBHOOK_MAX_BODY_BYTES", default_value_t = server::DEFAULT_MAX_BODY_BYTES)]
    pub webhook_max_body_bytes: usize,

    /// Serving certificate file (PEM), e.g. from cert-manager. With `--tls-key-file` it
    /// replaces the self-managed certificate; both files are re-read when they change.
    #[arg(
        long,
        env = "PRODREADY_TLS_CERT_FILE",
        value_name = "FILE",
        requires = "tls_key_file"
    )]
    pub tls_cert_file: Option<PathBuf>,

    /// Private key file (PEM) of `--tls-cert-file`.
    #[arg(
        long,
        env = "PRODREADY_TLS_KEY_FILE",
        value_name = "FILE",
        requires = "tls_cert_file"
    )]
    pub tls_key_file: Option<PathBuf>,

    /// How often mounted certificate files are checked for changes.
    #[arg(long, env = "PRODREADY_TLS_RELOAD_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub tls_reload_interval: Duration,

    /// Name of the webhook's Service: the self-managed certificate is issued for
    /// NAME.NAMESPACE.svc (and the other forms of the name).
    #[arg(
        long,
        env = "PRODREADY_WEBHOOK_SERVICE_NAME",
        default_value = "prodready-webhook"
    )]
    pub webhook_service_name: String,

    /// Namespace of the webhook Service and of the certificate Secret (default:
    /// $POD_NAMESPACE, else prodready-system).
    #[arg(long, env = "PRODREADY_WEBHOOK_NAMESPACE")]
    pub webhook_namespace: Option<String>,

    /// Extra subject alternative names (DNS names or IP addresses) for the self-managed
    /// certificate, comma-separated.
    #[arg(long, env = "PRODREADY_WEBHOOK_EXTRA_SAN", value_delimiter = ',')]
    pub webhook_extra_san: Vec<String>,

    /// Secret that holds the self-managed CA and serving certificate (shared by replicas).
    #[arg(
        long,
        env = "PRODREADY_WEBHOOK_SECRET_NAME",
        default_value = "prodready-webhook-tls"
    )]
    pub webhook_secret_name: String,

    /// ValidatingWebhookConfiguration whose `caBundle`s the self-managed CA is injected into;
    /// empty to leave registration to someone else (e.g. cert-manager's CA injector).
    #[arg(
        long,
        env = "PRODREADY_WEBHOOK_CONFIGURATION_NAME",
        default_value = "prodready"
    )]
    pub webhook_configuration_name: String,

    /// Validity of the self-managed serving certificate; it is renewed after two thirds.
    #[arg(long, env = "PRODREADY_WEBHOOK_CERT_VALIDITY", default_value = "2160h", value_parser = parse_duration)]
    pub webhook_cert_validity: Duration,

    /// Validity of the self-managed CA; renewed when less than twice the serving validity is
    /// left (the old CA stays in the bundle until it expires).
    #[arg(long, env = "PRODREADY_WEBHOOK_CA_VALIDITY", default_value = "87600h", value_parser = parse_duration)]
    pub webhook_ca_validity: Duration,

    /// How often each replica re-reads the certificate Secret (to pick up a renewal made by
    /// another replica) and re-checks the injected CA bundle.
    #[arg(long, env = "PRODREADY_WEBHOOK_CERT_CHECK_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    pub webhook_cert_check_interval: Duration,
}

impl WebhookArgs {
    /// The namespace of the Service and Secret.
    pub fn namespace(&self) -> String {
        self.webhook_namespace
            .clone()
            .or_else(|| {
                std::env::var("POD_NAMESPACE")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| "prodready-system".to_owned())
    }
}

/// Labels of `prodready_admission_reviews_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    /// The workload kind, or `other`.
    pub kind: &'static str,
    /// CREATE, UPDATE, DELETE, CONNECT, or `unknown` when the review could not be read.
    pub operation: &'static str,
    /// allowed, warned, denied or error.
    pub decision: &'static str,
}

/// Labels of `prodready_admission_unknown_results_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    /// The rule id (the catalog is fixed, so the label is bounded).
    pub rule: &'static str,
}

/// Labels of `prodready_webhook_certificate_reloads_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `ok` or `error`.
    pub result: &'static str,
}

/// The webhook's own metric families.
#[derive(Clone, Debug)]
pub struct AdmissionMetrics {
    reviews: Family<ReviewLabels, Counter>,
    unknown: Family<RuleLabels, Counter>,
    not_ready: Counter,
    reloads: Family<ReloadLabels, Counter>,
    cert_expiry: Gauge,
}

impl AdmissionMetrics {
    /// Registers the admission families.
    pub fn register(registry: &mut Registry) -> Self {
        let m = AdmissionMetrics {
            reviews: Family::default(),
            unknown: Family::default(),
            not_ready: Counter::default(),
            reloads: Family::default(),
            cert_expiry: Gauge::default(),
        };
        registry.register(
            "prodready_admission_reviews",
            "Admission reviews, by workload kind, operation and decision",
            m.reviews.clone(),
        );
        registry.register(
            "prodready_admission_unknown_results",
            "Rule results at admission that could not decide (returned no warning), by rule",
            m.unknown.clone(),
        );
        registry.register(
            "prodready_admission_not_ready",
            "Reviews admitted unjudged because the policy and context snapshot was not synced yet",
            m.not_ready.clone(),
        );
        registry.register(
            "prodready_webhook_certificate_reloads",
            "Serving certificate (re)loads into the TLS server, by result",
            m.reloads.clone(),
        );
        registry.register(
            "prodready_webhook_certificate_expiry_timestamp_seconds",
            "When the serving certificate in use expires (Unix seconds; 0 when unknown)",
            m.cert_expiry.clone(),
        );
        m
    }

    /// Records one review.
    pub fn review(&self, kind: &str, operation: &'static str, decision: Decision) {
        self.reviews
            .get_or_create(&ReviewLabels {
                kind: kind_label(kind),
                operation,
                decision: decision.as_str(),
            })
            .inc();
    }

    /// Records rules that could not decide.
    pub fn unknown(&self, rules: &[&'static str]) {
        for rule in rules {
            self.unknown.get_or_create(&RuleLabels { rule }).inc();
        }
    }

    /// Records a review admitted while not synced.
    pub fn not_ready(&self) {
        self.not_ready.inc();
    }

    /// Records a certificate (re)load.
    pub fn reload(&self, ok: bool, not_after_unix: Option<i64>) {
        self.reloads
            .get_or_create(&ReloadLabels {
                result: if ok { "ok" } else { "error" },
            })
            .inc();
        if let Some(t) = not_after_unix {
            self.cert_expiry.set(t);
        }
    }
}

/// Bounds a kind to the workload kinds plus `other`.
pub fn kind_label(kind: &str) -> &'static str {
    WorkloadKind::parse(kind).map_or("other", WorkloadKind::as_str)
}

/// The metric handles the webhook records into.
#[derive(Clone, Debug)]
pub struct WebhookMetrics {
    /// Admission families.
    pub admission: AdmissionMetrics,
    /// `http_server_*` families (shared with the admin server).
    pub http: HttpMetrics,
}

/// Why the webhook stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// No certificate could be obtained.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The server failed.
    #[error("webhook server failed: {0}")]
    Serve(#[source] std::io::Error),
}

impl WebhookError {
    /// A bounded category for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            WebhookError::Listen { .. } => "listen",
            WebhookError::Tls(e) => e.category(),
            WebhookError::Serve(_) => "serve",
        }
    }
}

/// Serves the webhook on `args.webhook_addr` until `shutdown` (or forever when disabled:
/// then it only waits for `shutdown`).
pub async fn serve(
    args: WebhookArgs,
    client: kube::Client,
    calls: ApiCalls,
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
    serve_on(listener, args, client, calls, snapshot, metrics, shutdown).await
}

/// [`serve`] on a listener the caller bound (tests bind port 0 and read the address).
pub async fn serve_on(
    listener: std::net::TcpListener,
    args: WebhookArgs,
    client: kube::Client,
    calls: ApiCalls,
    snapshot: SharedSnapshot,
    metrics: WebhookMetrics,
    shutdown: CancellationToken,
) -> Result<(), WebhookError> {
    let addr = listener.local_addr().unwrap_or(args.webhook_addr);
    listener
        .set_nonblocking(true)
        .map_err(|source| WebhookError::Listen { addr, source })?;
    let (config, refresher) = tls::start(
        &args,
        client,
        calls,
        metrics.admission.clone(),
        shutdown.clone(),
    )
    .await?;
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
    refresh_task.abort();
    result
}
