//! Why the webhook has no certificate to serve.

use std::path::PathBuf;

use crate::admission::certs::CertError;
use crate::error::Categorized;
use crate::kubeapi::ApiError;

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
        /// `--tls-cert-file` or `--tls-key-file`.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// Another replica kept winning the race for the Secret.
    #[error("the webhook certificate Secret kept changing under us; giving up for now")]
    Contended,
}

impl Categorized for TlsError {
    fn category(&self) -> &'static str {
        match self {
            TlsError::Api(e) => e.category(),
            TlsError::Cert(_) => "certificate",
            TlsError::Rustls(_) => "rustls",
            TlsError::File { .. } => "file",
            TlsError::Contended => "contended",
        }
    }
}
