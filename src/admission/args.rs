//! The flags of the admission webhook (part of `prodready run`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::server::DEFAULT_MAX_BODY_BYTES;
use crate::flags::{self, parse_duration};

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
    #[arg(long, env = "PRODREADY_WEBHOOK_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
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
    /// The namespace of the Service and Secret: the flag, else `$POD_NAMESPACE`, else
    /// `prodready-system`.
    pub fn namespace(&self) -> String {
        flags::namespace_from_env(self.webhook_namespace.as_deref())
    }
}
