//! Failures of the harness that a test may want to tell apart; everything else is an
//! `anyhow::Error` with context.

use std::path::PathBuf;
use std::time::Duration;

/// A harness failure with a category of its own.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The control-plane binaries are not built (or built for other versions than pinned).
    #[error(
        "Kubernetes test binaries are missing or stale in {dir}: {problems}. \
         Run `bash e2e/k8s-binaries.sh` (it builds them into the cache and prints \
         PRODREADY_K8S_BIN=<dir>), or point PRODREADY_K8S_BIN at a directory that has them"
    )]
    BinariesMissing { dir: PathBuf, problems: String },

    /// etcd or kube-apiserver did not come up.
    #[error("{component} did not start: {reason}\n--- last lines of {log} ---\n{tail}")]
    StartFailed {
        component: &'static str,
        reason: String,
        log: PathBuf,
        tail: String,
    },

    /// A [`crate::wait_for`] deadline passed.
    #[error(
        "timed out after {:.1} s waiting for {what}; last observation: {last}",
        after.as_secs_f64()
    )]
    Timeout {
        what: String,
        after: Duration,
        last: String,
    },

    /// A wait ended early because waiting longer could not help (e.g. the process exited).
    #[error("gave up waiting for {what}: {reason}")]
    GaveUp { what: String, reason: String },

    /// The operation needs a control plane this harness started itself.
    #[error("{0} needs a control plane started by the harness, not an external cluster")]
    NotLocal(&'static str),
}
