//! Running the real `kubectl` and `helm` against a control plane.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt as _;

/// How long one kubectl or helm invocation may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// The result of a kubectl or helm run.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// `Ok(self)` when the command exited 0, else an error carrying its stderr.
    pub fn ok(self) -> anyhow::Result<Self> {
        if self.success() {
            Ok(self)
        } else {
            anyhow::bail!(
                "command failed ({}):\nstdout: {}\nstderr: {}",
                self.status,
                self.stdout,
                self.stderr
            )
        }
    }
}

/// Runs `program args…` with the given environment, feeding `stdin` if any. Async so a test can
/// serve a webhook on its own runtime while kubectl calls it.
pub(crate) async fn run<I, S>(
    program: &Path,
    args: I,
    envs: &[(&str, &OsStr)],
    stdin: Option<&[u8]>,
) -> anyhow::Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let shown = format!(
        "{} {}",
        program.display(),
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&args)
        .envs(envs.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().with_context(|| format!("spawning {shown}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input)
            .await
            .with_context(|| format!("writing stdin of {shown}"))?;
        drop(pipe);
    }
    let out = tokio::time::timeout(TOOL_TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| format!("{shown} took longer than {TOOL_TIMEOUT:?}"))?
        .with_context(|| format!("running {shown}"))?;
    Ok(Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs `program args…` (no extra environment, no stdin) with the same timeout as kubectl and
/// helm: for the other programs a test drives (a script, `tar`, a built binary).
pub async fn run_program<I, S>(program: &Path, args: I) -> anyhow::Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(program, args, &[], None).await
}
