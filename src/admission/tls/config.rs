//! The rustls side of the webhook: a server configuration (ring, TLS 1.2/1.3, HTTP/2 and
//! HTTP/1.1 by ALPN) from a PEM certificate chain and key.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::error::PemError;

/// Builds a rustls server configuration (ring, HTTP/2 and HTTP/1.1) from PEM. The error says
/// which half is wrong; the caller names where it came from (files or Secret).
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, PemError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| PemError::Cert(e.to_string()))?;
    if chain.is_empty() {
        return Err(PemError::NoCert);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| PemError::Key(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PemError::Rejected(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| PemError::Rejected(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_pem_says_which_half_is_wrong() {
        let e = server_config(b"nope", b"nope").err();
        assert!(matches!(e, Some(PemError::NoCert)), "{e:?}");
        assert_eq!(
            e.map(|e| e.to_string()).unwrap_or_default(),
            "holds no PEM certificate (no -----BEGIN CERTIFICATE----- block)"
        );
    }
}
