//! A `prodready run` that an e2e test started: the suite's `prodready-operator` binary (which
//! stops when its stdin closes, so it never outlives the test binary), its log, and its admin
//! port (health and metrics).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;

use crate::http::http_get;
use crate::process::tail;
use crate::wait::wait_for;

/// A running operator process; killed and reaped on drop.
#[derive(Debug)]
pub struct OperatorProcess {
    child: Mutex<Child>,
    admin: SocketAddr,
    log: PathBuf,
}

impl OperatorProcess {
    /// Starts `program args…` with `env` added (and `KUBECONFIG` removed: the arguments name
    /// the kubeconfig), stderr to `log`, stdin a pipe held open until drop. The admin address
    /// comes from the `--admin-addr` argument (`--admin-addr=ADDR` or `--admin-addr ADDR`), else
    /// from `PRODREADY_ADMIN_ADDR` in `env` (a documented command line run verbatim).
    pub fn start(
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        log: &Path,
    ) -> anyhow::Result<Self> {
        let admin = args
            .iter()
            .enumerate()
            .find_map(|(i, a)| match a.strip_prefix("--admin-addr") {
                Some("") => args.get(i + 1).map(String::as_str),
                Some(rest) => rest.strip_prefix('='),
                None => None,
            })
            .or_else(|| {
                env.iter()
                    .find(|(k, _)| *k == "PRODREADY_ADMIN_ADDR")
                    .map(|(_, v)| *v)
            })
            .context(
                "no --admin-addr in the operator's arguments or PRODREADY_ADMIN_ADDR in its env",
            )?
            .parse()
            .context("--admin-addr is not an address")?;
        let file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Self {
            child: Mutex::new(child),
            admin,
            log: log.to_path_buf(),
        })
    }

    /// The admin address (health and metrics), e.g. for a Prometheus to scrape.
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        let child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        i32::try_from(child.id()).unwrap_or(i32::MAX)
    }

    /// Sends `sig` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, sig: i32) -> std::io::Result<()> {
        // SAFETY: kill(2) on our own child's pid.
        if unsafe { libc::kill(self.pid(), sig) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&self) -> Option<ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        child.try_wait().ok().flatten()
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }

    /// `(status, body)` of a GET on the admin port.
    pub fn get(&self, path: &str) -> Result<(u16, String), String> {
        http_get(self.admin, path)
    }

    /// The `/metrics` text (empty if the GET failed).
    pub fn metrics(&self) -> String {
        self.get("/metrics").map(|(_, b)| b).unwrap_or_default()
    }

    /// Waits until `/health/ready` answers 200; the error says what was last seen, with the
    /// tail of the log.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        wait_for(timeout, "operator ready", || async {
            if let Some(status) = self.exited() {
                return Err(format!("exited with {status}"));
            }
            match self.get("/health/ready") {
                Ok((200, _)) => Ok(()),
                Ok((code, body)) => Err(format!("{code} {body}")),
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(|e| format!("{e}\n--- operator log ---\n{}", self.log_tail(40)))
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The last `n` lines of `s`.
pub fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The value of the first sample whose line starts with `series` (name plus labels).
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}
