//! Child processes that cannot outlive the test binary.
//!
//! Every child is put in its own process group and gets `PR_SET_PDEATHSIG(SIGKILL)`. The kernel
//! delivers that signal when the *thread* that forked the child exits, not the process — and a
//! test thread exits as soon as its test ends. So all children are forked by one spawner thread
//! that lives as long as the process: when the test binary exits (normally, by panic or by
//! SIGKILL) the kernel kills etcd and kube-apiserver too, even for a shared control plane that is
//! never dropped. [`Managed`] also kills its process group when dropped.
//!
//! Temporary directories are named after the owning pid, so directories left by dead test
//! binaries (a shared control plane's is never dropped) are removed by the next run.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

fn spawner() -> io::Result<&'static Mutex<mpsc::Sender<SpawnRequest>>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    if let Some(tx) = SPAWNER.get() {
        return Ok(tx);
    }
    let (tx, rx) = mpsc::channel::<SpawnRequest>();
    std::thread::Builder::new()
        .name("e2e-spawner".into())
        .spawn(move || {
            // The sender lives in a static, so this loop ends only with the process.
            for (mut cmd, reply) in rx {
                let _ = reply.send(cmd.spawn());
            }
        })?;
    // If another thread won the race, its spawner is used and ours idles harmlessly.
    Ok(SPAWNER.get_or_init(|| Mutex::new(tx)))
}

/// Spawns `cmd` from the long-lived spawner thread, in a new process group, to be killed
/// when this process dies.
fn spawn(mut cmd: Command) -> io::Result<Child> {
    let parent = std::process::id();
    // SAFETY: the closure only calls async-signal-safe functions (setpgid, prctl, getppid).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::other("parent exited during spawn"));
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner()?
        .lock()
        .map_err(|_| io::Error::other("spawner lock poisoned"))?
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("spawner thread is gone"))?
}

/// A running child whose output goes to a log file; its process group is killed on drop.
#[derive(Debug)]
pub(crate) struct Managed {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Managed {
    /// Starts `program args…`, appending stdout and stderr to `log`.
    pub(crate) fn start(
        name: &'static str,
        program: &Path,
        args: &[String],
        log: &Path,
    ) -> anyhow::Result<Self> {
        let out = OpenOptions::new().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        let child = spawn(cmd)
            .map_err(|e| anyhow::anyhow!("spawning {name} ({}): {e}", program.display()))?;
        Ok(Self {
            name,
            child,
            log: log.to_path_buf(),
        })
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// `Some(status)` once the process has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM to the group, then SIGKILL after `grace`; always reaps the child. Returns the
    /// exit status if the process exited within `grace` (`None`: it had to be killed).
    pub(crate) fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.exited() {
            return Some(status);
        }
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        None
    }

    /// SIGKILL to the group and reap the child.
    pub(crate) fn kill(&mut self) {
        if self.exited().is_none() {
            self.signal(libc::SIGKILL);
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    fn signal(&self, sig: libc::c_int) {
        if let Ok(pgid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: plain syscall; the group is the child's own (setpgid in pre_exec).
            unsafe {
                libc::killpg(pgid, sig);
            }
        }
    }
}

/// A long-running program a test starts (e.g. the release binary as `prodready run`): output
/// to a log file, killed with its process group when dropped or when the test binary dies.
#[derive(Debug)]
pub struct Daemon(Managed);

impl Daemon {
    /// Starts `program args…`, its stdout and stderr appended to `log`.
    pub fn start(
        name: &'static str,
        program: &Path,
        args: &[String],
        log: &Path,
    ) -> anyhow::Result<Self> {
        Managed::start(name, program, args, log).map(Self)
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.0.exited()
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(self.0.log(), lines)
    }

    /// SIGTERM, then SIGKILL after `grace`: the exit status, or `None` if it had to be killed.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.0.stop(grace)
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `lines` lines of a log file (empty if unreadable).
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    const MAX: u64 = 64 * 1024;
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if file.seek(SeekFrom::Start(len.saturating_sub(MAX))).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    if file.read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The parent of all control-plane temp dirs.
pub(crate) fn temp_base() -> PathBuf {
    std::env::temp_dir().join("prodready-e2e")
}

/// Creates `<temp>/prodready-e2e/<pid>-XXXX`, first removing directories of dead pids.
pub(crate) fn new_temp_dir() -> io::Result<tempfile::TempDir> {
    let base = temp_base();
    std::fs::create_dir_all(&base)?;
    reap_stale(&base);
    tempfile::Builder::new()
        .prefix(&format!("{}-", std::process::id()))
        .tempdir_in(&base)
}

fn reap_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        if !pid_alive(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether a process with this pid exists (signal 0; only "no such process" counts as gone).
pub(crate) fn pid_alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let found = unsafe { libc::kill(pid, 0) } == 0;
    found || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// A free loopback TCP port (for an address a test gives a process it starts).
pub fn free_port() -> io::Result<u16> {
    free_ports::<1>().map(|[port]| port)
}

/// Free loopback TCP ports, distinct from each other (held open together while choosing).
pub(crate) fn free_ports<const N: usize>() -> io::Result<[u16; N]> {
    let mut listeners = Vec::with_capacity(N);
    let mut ports = [0u16; N];
    for port in &mut ports {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        *port = listener.local_addr()?.port();
        listeners.push(listener);
    }
    Ok(ports)
}
