//! The rustls side of the webhook: a server configuration (ring, TLS 1.2/1.3, HTTP/2 and
//! HTTP/1.1 by ALPN) from a PEM certificate chain and key.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Categorized as _;

    #[test]
    fn garbage_pem_is_a_clear_error() {
        let e = server_config(b"nope", b"nope").expect_err("invalid");
        assert_eq!(e.category(), "rustls");
    }
}
