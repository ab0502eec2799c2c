//! Mounted certificate files (`--tls-cert-file`/`--tls-key-file`): loaded at start and
//! re-read when either file's modification time changes. A pair that cannot be loaded (a
//! rotation half written) leaves the previous certificate in use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;
use tokio_util::sync::CancellationToken;

use super::TlsError;
use super::config::server_config;
use super::error::{CERT_FILE_FLAG, KEY_FILE_FLAG};
use crate::admission::metrics::AdmissionMetrics;

/// A certificate and key mounted as files (e.g. by cert-manager).
pub(super) struct Files {
    /// The PEM certificate chain.
    pub(super) cert: PathBuf,
    /// The PEM private key.
    pub(super) key: PathBuf,
}

/// The modification times of the two files: a change of either means "reload".
pub(super) type Stamp = (Option<SystemTime>, Option<SystemTime>);

fn read(path: &Path, flag: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::File {
        flag,
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

    /// Reads both files into a server configuration, with the stamp they had.
    pub(super) fn load(&self) -> Result<(Arc<rustls::ServerConfig>, Stamp), TlsError> {
        let stamp = self.stamp();
        let cert = read(&self.cert, CERT_FILE_FLAG)?;
        let key = read(&self.key, KEY_FILE_FLAG)?;
        let config = server_config(&cert, &key).map_err(|reason| match reason.flag() {
            Some(flag) => TlsError::NotPem {
                flag,
                path: if flag == CERT_FILE_FLAG {
                    self.cert.clone()
                } else {
                    self.key.clone()
                },
                reason,
            },
            None => TlsError::Pair {
                cert: self.cert.clone(),
                key: self.key.clone(),
                reason,
            },
        })?;
        Ok((config, stamp))
    }

    /// Reloads the pair whenever a file changes, until `shutdown`.
    pub(super) async fn watch(
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
