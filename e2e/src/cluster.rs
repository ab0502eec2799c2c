//! A real single-node Kubernetes cluster for the in-cluster suite: etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler, containerd + runc + the CNI plugins, the kubelet
//! and kube-proxy (iptables), all inside one network namespace the harness creates.
//!
//! What it takes on this kind of machine (Debian, cgroup v1, PID 1 not systemd, root without
//! CAP_SYS_RESOURCE, no image registry), and why each setting differs from upstream:
//!
//! - kubelet `failCgroupV1: false` (v1.37 refuses cgroup v1 hosts otherwise) and
//!   `cgroupDriver: cgroupfs` (PID 1 is not systemd). Pods live under a cgroup root of their own,
//!   `/prodready-e2e-<pid>`, so teardown removes exactly what this cluster created.
//! - kubelet and kube-proxy `oomScoreAdj: 0`, containerd `restrict_oom_score_adj`: without
//!   CAP_SYS_RESOURCE, lowering an oom_score_adj fails and every sandbox dies with runc's
//!   misleading "can't get final child's PID from pipe: EOF".
//! - Images are imported, never pulled ([`Cluster::import_image`]); containerd runs with a
//!   proxy on a closed loopback port so an accidental pull fails at once. The pod sandbox image
//!   is the suite's own test program (`testapp pause`).
//! - The node address sits on a port-less bridge (the kernel has no dummy interfaces) and the
//!   Service range is routed to a second one; no default route, no outside interface.
//! - Everything containerd, runc, the CNI plugins and the kubelet write goes under the run
//!   directory (state, root, runc root, CNI config and IPAM data, pod network-namespace mounts,
//!   the kubelet's root and pod logs), except containerd's shim sockets, which it always puts
//!   in `/run/containerd/s`: teardown removes the ones this run created.
//!
//! Tests in the root namespace reach the API server through a relay on 127.0.0.1
//! ([`crate::netns::Relay`]); [`Cluster::plane`] is a [`ControlPlane`] view of it with kubectl
//! and helm. Dropping the cluster tears it down ([`teardown`]) and leaves no process, mount,
//! network namespace, iptables rule, cgroup or veth behind; a run that was killed is cleaned up
//! by the next one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Node;
use kube::Api;

use crate::binaries::Binaries;
use crate::control_plane::{ControlPlane, readyz, write_kubeconfig_files};
use crate::netns::{NetNs, Relay};
use crate::oci;
use crate::pki::{self, ClusterPki};
use crate::process::{Managed, pid_alive, tail, temp_base};
use crate::wait::{Probe, poll_until};

/// The node's name.
pub const NODE_NAME: &str = "prodready-node";
/// The node's address inside the cluster's namespace (on the `node0` bridge).
pub const NODE_IP: &str = "10.123.0.2";
/// The pod range (the CNI bridge `cni0`, host-local IPAM).
pub const POD_CIDR: &str = "10.244.0.0/24";
/// The Service range, routed to the port-less `svc0` bridge so kube-proxy's rules see it.
pub const SERVICE_CIDR: &str = "10.96.0.0/24";
/// The `kubernetes` Service's ClusterIP (first address of the range).
const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";
/// The API server's port inside the namespace (on the node address and 127.0.0.1).
const APISERVER_PORT: u16 = 6443;
const ETCD_PORT: u16 = 2379;
const ETCD_PEER_PORT: u16 = 2380;

/// The sandbox ("pause") image containerd runs for every pod.
pub const PAUSE_IMAGE: &str = "localhost/prodready-e2e/pause:1";
/// The suite's test program (`testapp serve|lease|job`), see `e2e/images/testapp`.
pub const TESTAPP_IMAGE: &str = "localhost/prodready-e2e/testapp:1";

const START_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_GRACE: Duration = Duration::from_secs(10);
const LOG_TAIL_LINES: usize = 30;
/// Where containerd puts shim sockets whatever its configuration says.
const SHIM_SOCKET_DIR: &str = "/run/containerd/s";

/// Time taken by each phase of [`Cluster::start`].
#[derive(Debug, Clone, Default)]
pub struct StartTimings {
    /// From the call to the API server answering `/readyz`.
    pub control_plane: Duration,
    /// From the call to the Node being Ready (images imported, CNI up).
    pub node_ready: Duration,
}

/// The binaries of the node (built by `e2e/k8s-binaries.sh`) and the Debian tools it uses.
#[derive(Debug, Clone)]
struct NodeBinaries {
    dir: PathBuf,
}

impl NodeBinaries {
    fn locate(bin: &Binaries) -> anyhow::Result<Self> {
        let dir = bin.dir().to_path_buf();
        let mut missing = Vec::new();
        for name in [
            "kubelet",
            "kube-proxy",
            "kube-controller-manager",
            "kube-scheduler",
            "containerd",
            "containerd-shim-runc-v2",
            "ctr",
            "testapp",
        ] {
            if !dir.join(name).is_file() {
                missing.push(dir.join(name).display().to_string());
            }
        }
        for tool in [
            "/usr/sbin/runc",
            "/usr/lib/cni/bridge",
            "/usr/lib/cni/host-local",
            "/usr/lib/cni/loopback",
            "/usr/lib/cni/portmap",
            "/usr/sbin/iptables",
            "/usr/sbin/conntrack",
            "/usr/bin/nsenter",
            "/usr/sbin/ip",
        ] {
            if !Path::new(tool).exists() {
                missing.push(tool.to_string());
            }
        }
        if !missing.is_empty() {
            bail!(
                "the real cluster cannot start: {} missing. Run `bash e2e/k8s-binaries.sh` \
                 (it builds the node binaries and installs runc, the CNI plugins, iptables and \
                 conntrack with apt-get)",
                missing.join(", ")
            );
        }
        Ok(Self { dir })
    }

    fn get(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The processes of a running cluster, stopped in reverse order of start.
#[derive(Debug, Default)]
struct Processes {
    etcd: Option<Managed>,
    apiserver: Option<Managed>,
    controller_manager: Option<Managed>,
    scheduler: Option<Managed>,
    containerd: Option<Managed>,
    kubelet: Option<Managed>,
    kube_proxy: Option<Managed>,
}

/// A running single-node cluster; torn down on drop.
#[derive(Debug)]
pub struct Cluster {
    plane: ControlPlane,
    netns: NetNs,
    relay: Option<Relay>,
    processes: Mutex<Processes>,
    binaries: NodeBinaries,
    k8s: Binaries,
    run: RunDir,
    etcd_args: Vec<String>,
    apiserver_args: Vec<String>,
    timings: StartTimings,
    // Last: removed after teardown (fields drop in declaration order; Drop runs first).
    dir: Option<tempfile::TempDir>,
}

/// The paths of one cluster's run directory.
#[derive(Debug, Clone)]
struct RunDir {
    root: PathBuf,
    pid: u32,
}

impl RunDir {
    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    fn netns(&self) -> NetNs {
        NetNs::named(&format!("prodready-{}", self.pid))
    }
    /// The kubelet's cgroup root (relative to each cgroup v1 hierarchy).
    fn cgroup_root(&self) -> String {
        format!("prodready-e2e-{}", self.pid)
    }
    fn containerd_socket(&self) -> PathBuf {
        self.path("containerd/containerd.sock")
    }
}

impl Cluster {
    /// Brings a cluster up: network namespace, PKI, etcd, kube-apiserver, controller-manager,
    /// scheduler, containerd (with the pause and test images imported), kubelet and kube-proxy;
    /// returns once the Node is Ready. Needs root. Fails, with the log tail of the component
    /// that did not come up, rather than skip.
    pub async fn start() -> anyhow::Result<Self> {
        let began = Instant::now();
        // SAFETY: plain syscall.
        if unsafe { libc::geteuid() } != 0 {
            bail!(
                "the real cluster needs root (network namespaces, cgroups, mounts, containerd); \
                 run the suite as root"
            );
        }
        let k8s = Binaries::locate()?;
        let binaries = NodeBinaries::locate(&k8s)?;
        reap_stale();

        std::fs::create_dir_all(temp_base())?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("cluster-{}-", std::process::id()))
            .tempdir_in(temp_base())
            .context("creating the cluster's run directory")?;
        let run = RunDir {
            root: dir.path().to_path_buf(),
            pid: std::process::id(),
        };
        record_shim_sockets(&run)?;
        let netns = run.netns();
        if netns.exists() {
            netns.delete()?;
        }
        let netns = NetNs::create(netns.name())?;
        let mut cluster = Self {
            plane: ControlPlane::external(run.path("kubeconfig")),
            netns,
            relay: None,
            processes: Mutex::new(Processes::default()),
            binaries,
            k8s,
            etcd_args: Vec::new(),
            apiserver_args: Vec::new(),
            timings: StartTimings::default(),
            run,
            dir: Some(dir),
        };
        cluster.bring_up(began).await?;
        Ok(cluster)
    }

    async fn bring_up(&mut self, began: Instant) -> anyhow::Result<()> {
        self.network()?;
        let pki = pki::write_cluster(
            &self.run.path("pki"),
            &[
                NODE_IP,
                KUBERNETES_SERVICE_IP,
                "kubernetes.default",
                "kubernetes.default.svc.cluster.local",
            ],
            NODE_NAME,
        )
        .context("generating the cluster's certificates")?;
        let inside = format!("https://127.0.0.1:{APISERVER_PORT}");
        for (name, client) in [
            ("admin", (&pki.base.admin_cert, &pki.base.admin_key)),
            (
                "controller-manager",
                (&pki.controller_manager.cert, &pki.controller_manager.key),
            ),
            ("scheduler", (&pki.scheduler.cert, &pki.scheduler.key)),
            ("kubelet", (&pki.kubelet.cert, &pki.kubelet.key)),
            ("kube-proxy", (&pki.kube_proxy.cert, &pki.kube_proxy.key)),
        ] {
            write_kubeconfig_files(
                &self.run.path(&format!("{name}.kubeconfig")),
                &inside,
                &pki.base.ca_cert,
                client.0,
                client.1,
            )?;
        }

        // etcd and the API server.
        self.etcd_args = etcd_args(&self.run);
        self.start_etcd().await?;
        let policy = self.run.path("audit-policy.yaml");
        std::fs::write(&policy, AUDIT_POLICY)
            .with_context(|| format!("writing {}", policy.display()))?;
        self.apiserver_args = apiserver_args(&self.run, &pki);
        let relay = Relay::start(
            &self.netns,
            SocketAddr::from(([127, 0, 0, 1], APISERVER_PORT)),
        )?;
        write_kubeconfig_files(
            &self.run.path("kubeconfig"),
            &format!("https://127.0.0.1:{}", relay.port()),
            &pki.base.ca_cert,
            &pki.base.admin_cert,
            &pki.base.admin_key,
        )?;
        self.relay = Some(relay);
        self.start_apiserver().await?;
        self.timings.control_plane = began.elapsed();

        // Controllers.
        let cm = self.daemon(
            "kube-controller-manager",
            &self.binaries.get("kube-controller-manager"),
            &controller_manager_args(&self.run, &pki),
            &[],
        )?;
        let scheduler = self.daemon(
            "kube-scheduler",
            &self.binaries.get("kube-scheduler"),
            &[
                format!(
                    "--kubeconfig={}",
                    self.run.path("scheduler.kubeconfig").display()
                ),
                "--leader-elect=false".into(),
                "--secure-port=0".into(),
            ],
            &[],
        )?;
        {
            let mut p = lock(&self.processes);
            p.controller_manager = Some(cm);
            p.scheduler = Some(scheduler);
        }

        // The runtime and the images.
        self.start_containerd().await?;
        self.import_image(
            &oci::single_binary_image(
                &self.binaries.get("testapp"),
                PAUSE_IMAGE,
                &["/testapp", "pause"],
            )?,
            None,
        )
        .await?;
        self.import_image(
            &oci::single_binary_image(&self.binaries.get("testapp"), TESTAPP_IMAGE, &["/testapp"])?,
            None,
        )
        .await?;

        // The node.
        write_cni_config(&self.run)?;
        self.start_kubelet(&pki)?;
        self.start_kube_proxy()?;
        self.wait_node_ready().await?;
        self.timings.node_ready = began.elapsed();
        Ok(())
    }

    /// The bridges and routes of the namespace, and the sysctls kube-proxy and the CNI
    /// bridge rely on (all of them the namespace's own).
    fn network(&self) -> anyhow::Result<()> {
        let ns = &self.netns;
        ns.ip(&["link", "add", "node0", "type", "bridge"])?;
        ns.ip(&["addr", "add", &format!("{NODE_IP}/24"), "dev", "node0"])?;
        ns.ip(&["link", "set", "node0", "up"])?;
        ns.ip(&["link", "add", "svc0", "type", "bridge"])?;
        ns.ip(&["link", "set", "svc0", "up"])?;
        ns.ip(&["route", "add", SERVICE_CIDR, "dev", "svc0"])?;
        for (key, value) in [
            ("net/ipv4/ip_forward", "1"),
            ("net/bridge/bridge-nf-call-iptables", "1"),
        ] {
            let (program, args) = ns.command(
                Path::new("/bin/sh"),
                &["-c".into(), format!("echo {value} > /proc/sys/{key}")],
            );
            let out = std::process::Command::new(&program).args(&args).output()?;
            if !out.status.success() {
                bail!(
                    "setting {key}={value} in the cluster's namespace failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        Ok(())
    }

    /// Starts `program args…` inside the namespace with its log in the run directory.
    fn daemon(
        &self,
        name: &'static str,
        program: &Path,
        args: &[String],
        env: &[(&str, String)],
    ) -> anyhow::Result<Managed> {
        let (nsenter, all) = self.netns.command(program, args);
        let log = self.run.path(&format!("{name}.log"));
        if env.is_empty() {
            return Managed::start(name, &nsenter, &all, &log);
        }
        // `env` is the portable way to set variables for the program nsenter execs.
        let mut with_env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        with_env.push(nsenter.display().to_string());
        with_env.extend(all);
        Managed::start(name, Path::new("/usr/bin/env"), &with_env, &log)
    }

    async fn start_etcd(&self) -> anyhow::Result<()> {
        let etcd = self.daemon("etcd", &self.k8s.etcd(), &self.etcd_args, &[])?;
        lock(&self.processes).etcd = Some(etcd);
        let ns = self.netns.clone();
        self.wait_up(
            "etcd",
            |p| &mut p.etcd,
            move || {
                connected(ns.connect(
                    SocketAddr::from(([127, 0, 0, 1], ETCD_PORT)),
                    Duration::from_secs(1),
                ))
            },
        )
        .await
    }

    /// Waits until `probe` says ready, failing early (with the log tail) if the process exits.
    async fn wait_up<Fut>(
        &self,
        name: &'static str,
        slot: fn(&mut Processes) -> &mut Option<Managed>,
        probe: impl Fn() -> Fut,
    ) -> anyhow::Result<()>
    where
        Fut: std::future::Future<Output = Probe<()>>,
    {
        let log = self.run.path(&format!("{name}.log"));
        let result = poll_until(START_TIMEOUT, name, || {
            let exited = slot(&mut lock(&self.processes))
                .as_mut()
                .and_then(Managed::exited);
            let probe = probe();
            async move {
                match exited {
                    Some(status) => Probe::Fatal(format!("{name} exited with {status}")),
                    None => probe.await,
                }
            }
        })
        .await;
        result.map_err(|e| {
            anyhow::anyhow!(
                "{name} did not come up: {e}\n--- last lines of {} ---\n{}",
                log.display(),
                tail(&log, LOG_TAIL_LINES)
            )
        })
    }

    /// Stops etcd (SIGTERM, SIGKILL after 10 s); the API server keeps running without it.
    pub fn stop_etcd(&self) {
        if let Some(mut etcd) = lock(&self.processes).etcd.take() {
            etcd.stop(STOP_GRACE);
        }
    }

    /// Starts etcd again on the same data directory and waits for its port.
    pub async fn restart_etcd(&self) -> anyhow::Result<()> {
        self.stop_etcd();
        self.start_etcd().await
    }

    /// Stops kube-apiserver (SIGTERM, SIGKILL after 10 s).
    pub fn stop_apiserver(&self) {
        if let Some(mut apiserver) = lock(&self.processes).apiserver.take() {
            apiserver.stop(STOP_GRACE);
        }
    }

    /// Starts kube-apiserver (again) and waits for `/readyz` through the relay.
    pub async fn start_apiserver(&self) -> anyhow::Result<()> {
        let apiserver = self.daemon(
            "kube-apiserver",
            &self.k8s.kube_apiserver(),
            &self.apiserver_args,
            &[],
        )?;
        lock(&self.processes).apiserver = Some(apiserver);
        let client = self.plane.client().await?;
        self.wait_up("kube-apiserver", |p| &mut p.apiserver, || readyz(&client))
            .await
    }

    async fn start_containerd(&self) -> anyhow::Result<()> {
        let config = self.run.path("containerd/config.toml");
        std::fs::create_dir_all(self.run.path("containerd"))?;
        std::fs::write(&config, containerd_config(&self.run))?;
        let path = format!(
            "{}:/usr/sbin:/usr/bin:/sbin:/bin",
            self.binaries.dir.display()
        );
        let containerd = self.daemon(
            "containerd",
            &self.binaries.get("containerd"),
            &[format!("--config={}", config.display())],
            &[
                ("PATH", path),
                // No registry is reachable: an accidental pull fails at once.
                ("HTTP_PROXY", "http://127.0.0.1:9".into()),
                ("HTTPS_PROXY", "http://127.0.0.1:9".into()),
                ("NO_PROXY", String::new()),
            ],
        )?;
        lock(&self.processes).containerd = Some(containerd);
        let socket = self.run.containerd_socket();
        self.wait_up(
            "containerd",
            |p| &mut p.containerd,
            move || connected(std::os::unix::net::UnixStream::connect(&socket)),
        )
        .await
    }

    /// Runs `ctr` against this cluster's containerd, in its `k8s.io` namespace; its stdout.
    pub async fn ctr<I, S>(&self, args: I, stdin: Option<&[u8]>) -> anyhow::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut all: Vec<std::ffi::OsString> = vec![
            "--address".into(),
            self.run.containerd_socket().into_os_string(),
            "--namespace".into(),
            "k8s.io".into(),
        ];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        let out = crate::tools::run(&self.binaries.get("ctr"), all, &[], stdin)
            .await?
            .ok()?;
        Ok(out.stdout)
    }

    /// Imports an OCI archive into containerd's `k8s.io` namespace (where the kubelet looks).
    /// `base_name` names an archive whose index carries only a tag (`hack/package.sh`'s
    /// release image).
    pub async fn import_image(
        &self,
        archive: &[u8],
        base_name: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut args = vec!["images".to_string(), "import".into()];
        if let Some(base) = base_name {
            args.push(format!("--base-name={base}"));
        }
        args.push("-".into());
        self.ctr(&args, Some(archive)).await.map(drop)
    }

    /// Imports the release image layout `hack/package.sh` wrote (`dist/image`) as
    /// `repository:<tag>`, and names it `repository@digest` too: that is the name the kubelet
    /// asks for when the chart pins the image by digest (a registry pull records both names).
    pub async fn import_layout(
        &self,
        layout: &Path,
        repository: &str,
        digest: &str,
    ) -> anyhow::Result<()> {
        let archive = oci::layout_archive(layout)?;
        self.import_image(&archive, Some(repository)).await?;
        let names = self.ctr(["images", "ls", "-q"], None).await?;
        let tagged = names
            .lines()
            .find(|n| {
                n.strip_prefix(repository)
                    .is_some_and(|rest| rest.starts_with(':'))
            })
            .with_context(|| format!("the import created no {repository}:<tag> image: {names}"))?
            .to_string();
        let by_digest = format!("{repository}@{digest}");
        self.ctr(["images", "tag", "--force", &tagged, &by_digest], None)
            .await
            .map(drop)
    }

    fn start_kubelet(&self, pki: &ClusterPki) -> anyhow::Result<()> {
        let config = self.run.path("kubelet/config.yaml");
        std::fs::create_dir_all(self.run.path("kubelet"))?;
        std::fs::write(self.run.path("resolv.conf"), "nameserver 127.0.0.1\n")?;
        std::fs::write(&config, kubelet_config(&self.run, pki))?;
        // The kubelet expects its cgroup root to exist in every hierarchy.
        for hierarchy in cgroup_hierarchies() {
            let dir = hierarchy.join(self.run.cgroup_root());
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating cgroup {}", dir.display()))?;
        }
        let kubelet = self.daemon(
            "kubelet",
            &self.binaries.get("kubelet"),
            &[
                format!("--config={}", config.display()),
                format!(
                    "--kubeconfig={}",
                    self.run.path("kubelet.kubeconfig").display()
                ),
                format!("--root-dir={}", self.run.path("kubelet/root").display()),
                format!("--node-ip={NODE_IP}"),
                format!("--hostname-override={NODE_NAME}"),
                "--v=1".into(),
            ],
            &[("PATH", "/usr/sbin:/usr/bin:/sbin:/bin".into())],
        )?;
        lock(&self.processes).kubelet = Some(kubelet);
        Ok(())
    }

    fn start_kube_proxy(&self) -> anyhow::Result<()> {
        let config = self.run.path("kube-proxy.yaml");
        // kube-proxy exits whenever its config file is written, even with equal content:
        // it is written once, before the start.
        std::fs::write(&config, kube_proxy_config(&self.run))?;
        let proxy = self.daemon(
            "kube-proxy",
            &self.binaries.get("kube-proxy"),
            &[
                format!("--config={}", config.display()),
                format!("--hostname-override={NODE_NAME}"),
            ],
            &[("PATH", "/usr/sbin:/usr/bin:/sbin:/bin".into())],
        )?;
        lock(&self.processes).kube_proxy = Some(proxy);
        Ok(())
    }

    async fn wait_node_ready(&self) -> anyhow::Result<()> {
        let nodes: Api<Node> = Api::all(self.plane.client().await?);
        let log = self.run.path("kubelet.log");
        let result = poll_until(START_TIMEOUT, "node Ready", || {
            let nodes = nodes.clone();
            let exited = {
                let mut p = lock(&self.processes);
                [
                    p.kubelet
                        .as_mut()
                        .and_then(Managed::exited)
                        .map(|s| ("kubelet", s)),
                    p.kube_proxy
                        .as_mut()
                        .and_then(Managed::exited)
                        .map(|s| ("kube-proxy", s)),
                    p.containerd
                        .as_mut()
                        .and_then(Managed::exited)
                        .map(|s| ("containerd", s)),
                ]
                .into_iter()
                .flatten()
                .next()
            };
            async move {
                if let Some((name, status)) = exited {
                    return Probe::Fatal(format!("{name} exited with {status}"));
                }
                match nodes.get_opt(NODE_NAME).await {
                    Ok(Some(node)) => {
                        let ready = node
                            .status
                            .and_then(|s| s.conditions)
                            .unwrap_or_default()
                            .into_iter()
                            .find(|c| c.type_ == "Ready");
                        match ready {
                            Some(c) if c.status == "True" => Probe::Ready(()),
                            Some(c) => Probe::NotYet(format!(
                                "Ready={}: {}",
                                c.status,
                                c.message.unwrap_or_default()
                            )),
                            None => Probe::NotYet("no Ready condition yet".into()),
                        }
                    }
                    Ok(None) => Probe::NotYet("the node has not registered".into()),
                    Err(e) => Probe::NotYet(e.to_string()),
                }
            }
        })
        .await;
        result.map_err(|e| {
            anyhow::anyhow!(
                "the node did not become Ready: {e}\n--- last lines of {} ---\n{}\n--- containerd ---\n{}\n--- kube-proxy ---\n{}",
                log.display(),
                tail(&log, LOG_TAIL_LINES),
                tail(&self.run.path("containerd.log"), 15),
                tail(&self.run.path("kube-proxy.log"), 10),
            )
        })
    }

    /// kubectl, helm and clients for this cluster (through the relay).
    pub fn plane(&self) -> &ControlPlane {
        &self.plane
    }

    /// How long the start took, by phase.
    pub fn timings(&self) -> &StartTimings {
        &self.timings
    }

    /// The run directory (logs of every component, configs, certificates).
    pub fn dir(&self) -> &Path {
        &self.run.root
    }

    /// The API server's audit log (requests to ProductionPolicies and Leases, see
    /// [`AUDIT_POLICY`]).
    pub fn audit_log(&self) -> PathBuf {
        self.run.path("audit.log")
    }

    /// An HTTP GET to `addr` inside the cluster's namespace (a pod IP, the node address):
    /// `(status, body)`. Works while the API server is down.
    pub fn http_get(&self, addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
        let stream = self
            .netns
            .connect(addr, Duration::from_secs(2))
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        crate::http::http_get_on(stream, addr, path)
    }

    /// The last lines of a component's log (`kubelet`, `containerd`, `kube-apiserver`, …).
    pub fn log_tail(&self, component: &str, lines: usize) -> String {
        tail(&self.run.path(&format!("{component}.log")), lines)
    }

    /// Bytes free on the filesystem holding the cluster's directory (the kubelet's nodefs).
    pub fn free_disk(&self) -> anyhow::Result<u64> {
        free_bytes(&self.run.path("."))
    }

    /// What a person needs when a phase fails: free disk, the node's conditions and taints,
    /// every pod's phase and conditions, recent Events, and the kubelet's last lines. Each
    /// part that cannot be read says why instead.
    pub async fn diagnose(&self) -> String {
        let mut out = String::new();
        match self.free_disk() {
            Ok(free) => out.push_str(&format!(
                "free disk under the cluster directory: {:.1} GiB\n",
                free as f64 / f64::from(1u32 << 30)
            )),
            Err(e) => out.push_str(&format!("free disk: unknown ({e})\n")),
        }
        let views: [&[&str]; 4] = [
            &["describe", "nodes"],
            &["get", "pods", "-A", "-o", "wide"],
            &["describe", "pods", "-n", "prodready-system"],
            &["get", "events", "-A", "--sort-by=.lastTimestamp"],
        ];
        for args in views {
            out.push_str(&format!("\n$ kubectl {}\n", args.join(" ")));
            match self.plane().kubectl(args.iter().copied()).await {
                Ok(o) => {
                    out.push_str(&o.stdout);
                    out.push_str(&o.stderr);
                }
                Err(e) => out.push_str(&format!("(not run: {e:#})\n")),
            }
        }
        out.push_str("\n$ tail kubelet.log\n");
        out.push_str(&self.log_tail("kubelet", 40));
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let processes = std::mem::take(&mut *lock(&self.processes));
        teardown(&self.run, processes, &self.binaries);
        self.relay = None;
        if let Some(dir) = self.dir.take()
            && let Err(e) = dir.close()
        {
            eprintln!("cluster teardown: removing the run directory failed: {e}");
        }
    }
}

/// Bytes free to unprivileged writers on the filesystem holding `path`, from `df`.
fn free_bytes(path: &Path) -> anyhow::Result<u64> {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()
        .context("running df")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("df printed no size for {}: {text}", path.display()))
}

/// A connection attempt as a start-up probe: ready once it connects.
fn connected<T>(attempt: std::io::Result<T>) -> std::future::Ready<Probe<()>> {
    std::future::ready(match attempt {
        Ok(_) => Probe::Ready(()),
        Err(e) => Probe::NotYet(e.to_string()),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The cgroup v1 hierarchies mounted under `/sys/fs/cgroup` (not the unified one).
fn cgroup_hierarchies() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists() && !p.ends_with("unified"))
        .collect();
    dirs.sort();
    dirs
}

/// Every cgroup under `root` (deepest first), in every hierarchy.
fn cgroups_under(root: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out);
                }
            }
        }
        out.push(dir.to_path_buf());
    }
    let mut out = Vec::new();
    for hierarchy in cgroup_hierarchies() {
        let dir = hierarchy.join(root);
        if dir.is_dir() {
            walk(&dir, &mut out);
        }
    }
    out
}

/// Remembers which shim sockets existed before this run, so teardown removes only its own.
fn record_shim_sockets(run: &RunDir) -> anyhow::Result<()> {
    let existing: Vec<String> = std::fs::read_dir(SHIM_SOCKET_DIR)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    std::fs::write(run.path("shim-sockets-before"), existing.join("\n"))
        .context("recording the shim sockets")
}

/// Stops everything a cluster started and removes what it left: processes (the daemons, then
/// every process in the cluster's cgroups, then containerd's shims for this run's socket, by
/// PID), mounts under the run directory, the cgroups, the network namespace (and with it every
/// bridge, veth, route and iptables rule) and the shim sockets. Idempotent; also used on the
/// run directory of a dead test process.
fn teardown(run: &RunDir, mut processes: Processes, binaries: &NodeBinaries) {
    // The kubelet first so it does not restart what is being stopped.
    for slot in [
        &mut processes.kubelet,
        &mut processes.kube_proxy,
        &mut processes.scheduler,
        &mut processes.controller_manager,
    ] {
        if let Some(mut p) = slot.take() {
            p.stop(STOP_GRACE);
        }
    }
    kill_cgroup_processes(&run.cgroup_root());
    if let Some(mut containerd) = processes.containerd.take() {
        containerd.stop(STOP_GRACE);
    }
    kill_shims(run, binaries);
    for slot in [&mut processes.apiserver, &mut processes.etcd] {
        if let Some(mut p) = slot.take() {
            p.stop(STOP_GRACE);
        }
    }
    unmount_under(&run.root);
    for cgroup in cgroups_under(&run.cgroup_root()) {
        let _ = std::fs::remove_dir(&cgroup);
    }
    if let Err(e) = run.netns().delete() {
        eprintln!("cluster teardown: {e:#}");
    }
    remove_new_shim_sockets(run);
}

/// SIGKILLs every process in the cluster's cgroups (the containers and their sandboxes).
fn kill_cgroup_processes(root: &str) {
    for _ in 0..5 {
        let mut any = false;
        for cgroup in cgroups_under(root) {
            let Ok(procs) = std::fs::read_to_string(cgroup.join("cgroup.procs")) else {
                continue;
            };
            for pid in procs
                .lines()
                .filter_map(|l| l.trim().parse::<libc::pid_t>().ok())
            {
                any = true;
                // SAFETY: plain syscall on a pid read from this cluster's own cgroup.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        if !any {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGKILLs the runc shims that serve this run's containerd (their command line names its
/// socket), found by scanning /proc.
fn kill_shims(run: &RunDir, binaries: &NodeBinaries) {
    let socket = run.containerd_socket().display().to_string();
    let shim = binaries.get("containerd-shim-runc-v2");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_shim = args
            .first()
            .is_some_and(|a| Path::new(a) == shim || a.ends_with("containerd-shim-runc-v2"));
        if is_shim && args.iter().any(|a| a == &socket) {
            // SAFETY: plain syscall on a shim this run's containerd started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// Unmounts every mount point under `root`, deepest first (overlay rootfs, volumes, shm,
/// pod network namespaces).
fn unmount_under(root: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(root))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    for point in points {
        let Ok(c) = std::ffi::CString::new(point.as_os_str().as_encoded_bytes()) else {
            continue;
        };
        // SAFETY: plain syscall; MNT_DETACH so a busy mount is still taken out of the tree.
        unsafe {
            libc::umount2(c.as_ptr(), libc::MNT_DETACH);
        }
    }
}

fn remove_new_shim_sockets(run: &RunDir) {
    let Ok(before) = std::fs::read_to_string(run.path("shim-sockets-before")) else {
        return;
    };
    let before: std::collections::HashSet<&str> = before.lines().collect();
    if let Ok(entries) = std::fs::read_dir(SHIM_SOCKET_DIR) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !before.contains(name.to_string_lossy().as_ref()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Tears down clusters whose test process died (their run directory is named after its pid).
fn reap_stale() {
    let Ok(entries) = std::fs::read_dir(temp_base()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("cluster-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if libc::pid_t::try_from(pid).map_or(true, pid_alive) {
            continue;
        }
        let run = RunDir {
            root: entry.path(),
            pid,
        };
        let binaries = NodeBinaries {
            dir: PathBuf::new(),
        };
        teardown(&run, Processes::default(), &binaries);
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

fn etcd_args(run: &RunDir) -> Vec<String> {
    let client = format!("http://127.0.0.1:{ETCD_PORT}");
    let peer = format!("http://127.0.0.1:{ETCD_PEER_PORT}");
    vec![
        "--name=node".into(),
        format!("--data-dir={}", run.path("etcd").display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=node={peer}"),
        "--unsafe-no-fsync=true".into(),
        "--log-level=warn".into(),
    ]
}

/// The API server's audit policy: who wrote ProductionPolicy status and the Leases, and
/// nothing else (the failover test checks that no two leaders ever wrote at once).
pub const AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [create, update, patch]
    resources:
      - group: prodready.dev
        resources: [productionpolicies, productionpolicies/status]
      - group: coordination.k8s.io
        resources: [leases]
  - level: None
"#;

fn apiserver_args(run: &RunDir, pki: &ClusterPki) -> Vec<String> {
    let p = |path: &Path| path.display().to_string();
    let policy = run.path("audit-policy.yaml");
    vec![
        format!("--advertise-address={NODE_IP}"),
        "--bind-address=0.0.0.0".into(),
        format!("--secure-port={APISERVER_PORT}"),
        format!("--cert-dir={}", run.path("apiserver-certs").display()),
        format!("--tls-cert-file={}", p(&pki.base.serving_cert)),
        format!("--tls-private-key-file={}", p(&pki.base.serving_key)),
        format!("--client-ca-file={}", p(&pki.base.ca_cert)),
        format!("--etcd-servers=http://127.0.0.1:{ETCD_PORT}"),
        format!("--service-cluster-ip-range={SERVICE_CIDR}"),
        "--service-account-issuer=https://kubernetes.default.svc".into(),
        format!("--service-account-key-file={}", p(&pki.base.sa_pub)),
        format!("--service-account-signing-key-file={}", p(&pki.base.sa_key)),
        "--authorization-mode=Node,RBAC".into(),
        "--enable-admission-plugins=NodeRestriction".into(),
        format!(
            "--kubelet-client-certificate={}",
            p(&pki.apiserver_kubelet.cert)
        ),
        format!("--kubelet-client-key={}", p(&pki.apiserver_kubelet.key)),
        "--kubelet-preferred-address-types=InternalIP".into(),
        format!("--requestheader-client-ca-file={}", p(&pki.front_proxy_ca)),
        "--requestheader-allowed-names=front-proxy-client".into(),
        "--requestheader-username-headers=X-Remote-User".into(),
        "--requestheader-group-headers=X-Remote-Group".into(),
        "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
        format!(
            "--proxy-client-cert-file={}",
            p(&pki.front_proxy_client.cert)
        ),
        format!("--proxy-client-key-file={}", p(&pki.front_proxy_client.key)),
        format!("--audit-policy-file={}", policy.display()),
        format!("--audit-log-path={}", run.path("audit.log").display()),
        "--audit-log-format=json".into(),
        "--allow-privileged=true".into(),
        "--enable-priority-and-fairness=false".into(),
        "--profiling=false".into(),
    ]
}

fn controller_manager_args(run: &RunDir, pki: &ClusterPki) -> Vec<String> {
    let p = |path: &Path| path.display().to_string();
    vec![
        format!(
            "--kubeconfig={}",
            run.path("controller-manager.kubeconfig").display()
        ),
        format!("--service-account-private-key-file={}", p(&pki.base.sa_key)),
        format!("--root-ca-file={}", p(&pki.base.ca_cert)),
        "--use-service-account-credentials=true".into(),
        "--leader-elect=false".into(),
        "--secure-port=0".into(),
        "--allocate-node-cidrs=false".into(),
        // Pods of a deleted node are not our concern; one node never goes away.
        "--controllers=*,-bootstrapsigner,-tokencleaner".into(),
    ]
}

fn containerd_config(run: &RunDir) -> String {
    let p = |rel: &str| run.path(rel).display().to_string();
    format!(
        r#"version = 3
root = "{root}"
state = "{state}"

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  # Without CAP_SYS_RESOURCE a lower oom_score_adj cannot be set; keep the daemon's.
  restrict_oom_score_adj = true
  # Pod network namespaces under the state directory, so teardown finds them.
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "{runc_root}"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{cni_conf}"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{pause}"

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"#,
        root = p("containerd/root"),
        state = p("containerd/state"),
        socket = p("containerd/containerd.sock"),
        runc_root = p("containerd/runc"),
        cni_conf = p("cni/net.d"),
        pause = PAUSE_IMAGE,
    )
}

fn write_cni_config(run: &RunDir) -> anyhow::Result<()> {
    let dir = run.path("cni/net.d");
    std::fs::create_dir_all(&dir)?;
    let config = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "prodready-e2e",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                // Nothing leaves the namespace, so nothing is masqueraded.
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": run.path("cni/ipam").display().to_string(),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    });
    std::fs::write(
        dir.join("10-prodready-e2e.conflist"),
        serde_json::to_string_pretty(&config)?,
    )?;
    Ok(())
}

fn kubelet_config(run: &RunDir, pki: &ClusterPki) -> String {
    let p = |rel: &str| run.path(rel).display().to_string();
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine is cgroup v1 (v1.37 refuses it unless told) and PID 1 is not systemd.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /{cgroup_root}
# Without CAP_SYS_RESOURCE the kubelet cannot lower its own oom_score_adj.
oomScoreAdj: 0
containerRuntimeEndpoint: unix://{socket}
podLogsDir: {pod_logs}
resolvConf: {resolv}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {ca}}}
authorization:
  mode: Webhook
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
failSwapOn: false
# A test node on a shared disk that cargo builds fill: evict only when really full (an
# absolute floor, since 1% of a large disk is gigabytes, and a percentage tainted the node
# DiskPressure in CI once), never garbage-collect images (they are imported, and cannot be
# pulled again).
evictionHard:
  memory.available: 100Mi
  nodefs.available: 256Mi
  imagefs.available: 256Mi
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
staticPodPath: ""
maxPods: 60
"#,
        cgroup_root = run.cgroup_root(),
        socket = p("containerd/containerd.sock"),
        pod_logs = p("kubelet/pod-logs"),
        resolv = p("resolv.conf"),
        ca = pki.base.ca_cert.display(),
    )
}

fn kube_proxy_config(run: &RunDir) -> String {
    format!(
        r#"apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: {kubeconfig}
clusterCIDR: {POD_CIDR}
hostnameOverride: {NODE_NAME}
# Without CAP_SYS_RESOURCE kube-proxy cannot lower its own oom_score_adj.
oomScoreAdj: 0
# Leave the conntrack table's size alone (a network-namespace sysctl it may not set).
conntrack:
  maxPerCore: 0
  min: 0
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
"#,
        kubeconfig = run.path("kube-proxy.kubeconfig").display(),
    )
}
