//! The operator suite's `prodready run`: the `prodready-operator` binary with the suite's
//! fast timings (lease 4 s, debounce 200 ms, resync 4 s), its own admin port and log, killed on
//! drop.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::operator_process::{OperatorProcess, metric_value};
use crate::process::free_port;

/// A running `prodready run`. Killed on drop; exits by itself when the test binary dies
/// (its stdin closes).
pub struct Operator {
    process: OperatorProcess,
    /// Its identity in the Lease and on Events.
    pub identity: String,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Operator {
    type Target = OperatorProcess;
    fn deref(&self) -> &OperatorProcess {
        &self.process
    }
}

impl Operator {
    /// Starts `program run` against `kubeconfig` with the suite's fast timings and `extra`
    /// arguments (the webhook off: its suite serves it in-process).
    pub fn start(
        program: &Path,
        kubeconfig: &Path,
        identity: &str,
        lease: &str,
        extra: &[&str],
    ) -> Operator {
        Operator::start_with_env(program, kubeconfig, identity, lease, extra, &[])
    }

    /// [`Operator::start`] with `env` added to its environment.
    pub fn start_with_env(
        program: &Path,
        kubeconfig: &Path,
        identity: &str,
        lease: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Operator {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("operator.log");
        let port = free_port().expect("a free port");
        let admin: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let mut args: Vec<String> = [
            "run",
            "--kubeconfig",
            &kubeconfig.display().to_string(),
            "--admin-addr",
            &admin.to_string(),
            "--identity",
            identity,
            "--lease-name",
            lease,
            "--lease-namespace",
            "default",
            "--lease-duration",
            "4s",
            "--lease-retry-period",
            "500ms",
            "--debounce",
            "200ms",
            "--resync-interval",
            "4s",
            "--discovery-interval",
            "2s",
            "--api-timeout",
            "3s",
            "--log-format",
            "json",
            "--log-level",
            "info",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        // The webhook has its own suite (tests/webhook.rs); several operators run at once here.
        // A test that wants it (tests/fleet.rs) says `--webhook-enabled true` itself.
        if !extra.iter().any(|a| a.starts_with("--webhook-enabled")) {
            args.extend(["--webhook-enabled".to_owned(), "false".to_owned()]);
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let process =
            OperatorProcess::start(program, &args, env, &log).expect("start prodready-operator");
        Operator {
            process,
            identity: identity.to_owned(),
            _dir: dir,
        }
    }

    /// Waits for `/health/ready`; panics (test-only) with the log tail if it never comes.
    pub async fn wait_ready(&self, timeout: Duration) {
        if let Err(e) = self.process.wait_ready(timeout).await {
            panic!("{e}");
        }
    }

    /// Whether its `prodready_leader` gauge is 1.
    pub fn is_leader(&self) -> bool {
        metric_value(&self.metrics(), "prodready_leader") == Some(1.0)
    }
}
