//! Why the webhook has no certificate to serve. Every message names the file, flag or Secret
//! involved and what to do; [`super::retry::explain`] adds that the webhook retries.

use std::path::PathBuf;

use crate::admission::certs::CertError;
use crate::error::Categorized;
use crate::kubeapi::ApiError;

/// Why no certificate could be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// An API call failed (after retries); its message names the Secret or configuration.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Generating a certificate failed.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// A mounted file could not be read.
    #[error(
        "cannot read {} given by {flag}: {source}; check that the file exists and prodready may read it, or point {flag} at another file",
        path.display()
    )]
    File {
        /// `--tls-cert-file` or `--tls-key-file`.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A mounted file is not the PEM it should be.
    #[error(
        "{} given by {flag} {reason}; point {flag} at a PEM file holding the {holding}",
        path.display(),
        holding = if *flag == CERT_FILE_FLAG { "certificate chain (e.g. tls.crt)" } else { "certificate's private key (e.g. tls.key)" }
    )]
    NotPem {
        /// `--tls-cert-file` or `--tls-key-file`.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: PemError,
    },
    /// The two mounted files do not make a pair rustls can serve.
    #[error(
        "the certificate {} (--tls-cert-file) and the key {} (--tls-key-file) cannot be served together: {reason}; give the key that belongs to the certificate (tls.crt and tls.key of the same Secret)",
        cert.display(),
        key.display()
    )]
    Pair {
        /// `--tls-cert-file`.
        cert: PathBuf,
        /// `--tls-key-file`.
        key: PathBuf,
        /// What rustls said.
        reason: PemError,
    },
    /// The self-managed Secret holds a certificate that cannot be served.
    #[error(
        "the certificate in Secret {namespace}/{name} cannot be served: {reason}; delete the Secret (kubectl delete secret -n {namespace} {name}) and prodready issues a new one"
    )]
    Secret {
        /// `--webhook-namespace`.
        namespace: String,
        /// `--webhook-secret-name`.
        name: String,
        /// What is wrong with it.
        reason: PemError,
    },
    /// The CA bundle could not be encoded into the patch of the webhook configuration.
    #[error("cannot encode the CA bundle for the ValidatingWebhookConfiguration: {0}")]
    Encode(#[source] serde_json::Error),
    /// Other writers kept replacing the Secret between this replica's read and write.
    #[error(
        "the webhook certificate Secret {namespace}/{name} was replaced by another writer each of the {attempts} times this replica tried to update it; if no other prodready replica is starting, find what else writes it (kubectl get secret -n {namespace} {name} --show-managed-fields -o yaml)"
    )]
    Contended {
        /// `--webhook-namespace`.
        namespace: String,
        /// `--webhook-secret-name`.
        name: String,
        /// How many read-and-write rounds were tried.
        attempts: u32,
    },
}

/// The flag of the mounted certificate file.
pub const CERT_FILE_FLAG: &str = "--tls-cert-file";
/// The flag of the mounted key file.
pub const KEY_FILE_FLAG: &str = "--tls-key-file";

/// What is wrong with a PEM certificate chain and key, as the end of a sentence that names
/// where they came from.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// The certificate text is not PEM.
    #[error("is not a PEM certificate chain ({0})")]
    Cert(String),
    /// No certificate block at all.
    #[error("holds no PEM certificate (no -----BEGIN CERTIFICATE----- block)")]
    NoCert,
    /// The key text is not a PEM private key.
    #[error("is not a PEM private key ({0})")]
    Key(String),
    /// rustls refused the pair (the key does not match, an unsupported algorithm).
    #[error("rustls does not accept them ({0})")]
    Rejected(String),
}

impl PemError {
    /// Which file is at fault: the certificate's, the key's, or neither alone (the pair).
    pub fn flag(&self) -> Option<&'static str> {
        match self {
            PemError::Cert(_) | PemError::NoCert => Some(CERT_FILE_FLAG),
            PemError::Key(_) => Some(KEY_FILE_FLAG),
            PemError::Rejected(_) => None,
        }
    }
}

impl Categorized for TlsError {
    fn category(&self) -> &'static str {
        match self {
            TlsError::Api(e) => e.category(),
            TlsError::Cert(_) => "certificate",
            TlsError::NotPem { .. } | TlsError::Pair { .. } | TlsError::Secret { .. } => "rustls",
            TlsError::Encode(_) => "encode",
            TlsError::File { .. } => "file",
            TlsError::Contended { .. } => "contended",
        }
    }
}
