//! The network namespace the real cluster lives in, and the relay that lets tests in the root
//! namespace reach its API server.
//!
//! The cluster's node address, pod and Service ranges, bridges and kube-proxy's iptables rules
//! exist only inside a namespace this harness creates (`ip netns add`), so nothing is routed,
//! NATed or masqueraded anywhere else, and deleting the namespace removes all of it. Daemons
//! run in it through `nsenter --net=…` (not `ip netns exec`, which also remounts `/sys` and
//! hides the cgroup mounts from the kubelet).
//!
//! Network namespaces are per thread: a thread that `setns`es into the namespace creates
//! sockets there, and a socket stays in the namespace it was created in whichever thread uses
//! it later. [`NetNs::connect`] uses that to open connections into the cluster from the test
//! process, and [`Relay`] to forward `127.0.0.1:PORT` in the root namespace to an address
//! inside, one pair of copying threads per connection.

use std::fs::File;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// Where `ip netns` keeps its namespaces.
const NETNS_DIR: &str = "/run/netns";

/// A network namespace created by the harness; deleted on [`NetNs::delete`] (not on drop:
/// the cluster deletes it after every process in it is gone).
#[derive(Debug, Clone)]
pub(crate) struct NetNs {
    name: String,
}

impl NetNs {
    /// `ip netns add NAME`, then `lo` up.
    pub(crate) fn create(name: &str) -> anyhow::Result<Self> {
        run("ip", &["netns", "add", name])?;
        let ns = Self {
            name: name.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace of this name, whether or not it exists (for teardown of a dead run).
    pub(crate) fn named(name: &str) -> Self {
        Self {
            name: name.to_string(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`, the file `nsenter --net=` and `setns` take.
    pub(crate) fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    pub(crate) fn exists(&self) -> bool {
        self.path().exists()
    }

    /// Runs `ip ARGS…` inside the namespace.
    pub(crate) fn ip(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// The program and arguments that run `program args…` inside the namespace.
    pub(crate) fn command(&self, program: &Path, args: &[String]) -> (PathBuf, Vec<String>) {
        let mut all = vec![
            format!("--net={}", self.path().display()),
            "--".to_string(),
            program.display().to_string(),
        ];
        all.extend(args.iter().cloned());
        (PathBuf::from("nsenter"), all)
    }

    /// Opens a TCP connection to `addr` inside the namespace.
    pub(crate) fn connect(&self, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        let path = self.path();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    enter(&path)?;
                    TcpStream::connect_timeout(&addr, timeout)
                })
                .join()
                .map_err(|_| io::Error::other("the namespace thread panicked"))?
        })
    }

    /// `ip netns del NAME`; nothing if it does not exist.
    pub(crate) fn delete(&self) -> anyhow::Result<()> {
        if !self.exists() {
            return Ok(());
        }
        run("ip", &["netns", "del", &self.name])
    }
}

/// Moves the calling thread into the network namespace at `path`.
fn enter(path: &Path) -> io::Result<()> {
    let file = File::open(path)?;
    // SAFETY: plain syscall on a valid descriptor; it changes only this thread's namespace.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs a system tool and fails with its stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Forwards `127.0.0.1:<port>` in the root namespace to an address inside a [`NetNs`] until
/// dropped.
#[derive(Debug)]
pub(crate) struct Relay {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Relay {
    /// Listens on a free loopback port and forwards every connection to `target` in `ns`.
    pub(crate) fn start(ns: &NetNs, target: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).context("binding the relay port")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let (ns, flag) = (ns.clone(), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("e2e-relay".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(client) = conn else { continue };
                    let ns = ns.clone();
                    let _ = std::thread::Builder::new()
                        .name("e2e-relay-conn".into())
                        .spawn(move || forward(&ns, client, target));
                }
            })
            .context("starting the relay thread")?;
        Ok(Self { port, stop })
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_millis(200),
        );
    }
}

/// Copies bytes both ways between `client` and a new connection to `target` inside `ns`.
fn forward(ns: &NetNs, client: TcpStream, target: SocketAddr) {
    let Ok(server) = ns.connect(target, Duration::from_secs(5)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(mut client_r), Ok(mut server_w)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let upstream = std::thread::spawn(move || {
        let _ = io::copy(&mut client_r, &mut server_w);
        let _ = server_w.shutdown(Shutdown::Write);
    });
    let (mut server_r, mut client_w) = (server, client);
    let _ = io::copy(&mut server_r, &mut client_w);
    let _ = client_w.shutdown(Shutdown::Write);
    let _ = upstream.join();
}
