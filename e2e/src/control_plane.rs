//! etcd + kube-apiserver on loopback ports, in the manner of controller-runtime's envtest.

use std::ffi::OsStr;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::sync::OnceCell;

use crate::binaries::Binaries;
use crate::error::Error;
use crate::namespace::{TempNamespace, unique_name};
use crate::pki::{self, PkiFiles};
use crate::process::{Managed, tail};
use crate::tools::{self, Output};
use crate::wait::{Probe, poll_until};

/// Environment variable: use the cluster of this kubeconfig instead of starting one.
pub const KUBECONFIG_ENV: &str = "PRODREADY_E2E_KUBECONFIG";

const ETCD_START_TIMEOUT: Duration = Duration::from_secs(30);
const APISERVER_START_TIMEOUT: Duration = Duration::from_secs(90);
const APISERVER_STOP_GRACE: Duration = Duration::from_secs(10);
const LOG_TAIL_LINES: usize = 40;

/// A Kubernetes control plane for tests: either etcd + kube-apiserver started by the harness
/// (killed, and their temp dir removed, on drop) or an existing cluster from
/// `PRODREADY_E2E_KUBECONFIG`.
///
/// A `kube::Client` is bound to the tokio runtime that created it, and every `#[tokio::test]`
/// has its own runtime, so the control plane hands out a fresh client per call of
/// [`ControlPlane::client`] instead of holding one.
#[derive(Debug)]
pub struct ControlPlane {
    kubeconfig: PathBuf,
    /// kubectl/helm; for an external cluster, `None` until a tool is first needed.
    binaries: Option<Binaries>,
    local: Option<Local>,
}

#[derive(Debug)]
struct Local {
    apiserver: Mutex<Option<Managed>>,
    etcd: Mutex<Option<Managed>>,
    apiserver_args: Vec<String>,
    apiserver_url: String,
    apiserver_log: PathBuf,
    // Last, so it is removed after the processes are gone (fields drop in order).
    dir: tempfile::TempDir,
}

impl ControlPlane {
    /// Starts a new etcd and kube-apiserver, waits for `/readyz`, and writes a kubeconfig with
    /// an admin (`system:masters`) client certificate. Always local, whatever
    /// `PRODREADY_E2E_KUBECONFIG` says: use this for tests that stop the API server.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(&[]).await
    }

    /// [`ControlPlane::start`] with `extra` kube-apiserver flags (e.g. a feature gate turned
    /// off, to test how prodready copes with an API server that lacks a feature).
    pub async fn start_with(extra: &[&str]) -> anyhow::Result<Self> {
        let binaries = Binaries::locate()?;
        let dir = crate::process::new_temp_dir().context("creating the control-plane dir")?;
        let root = dir.path().to_path_buf();
        let pki = pki::write(&root.join("pki")).context("generating certificates")?;
        let [etcd_port, peer_port, api_port] =
            crate::process::free_ports::<3>().context("choosing ports")?;

        let etcd_log = root.join("etcd.log");
        let etcd = start_etcd(&binaries, &root, etcd_port, peer_port, &etcd_log).await?;

        let apiserver_url = format!("https://127.0.0.1:{api_port}");
        let kubeconfig = root.join("kubeconfig");
        write_kubeconfig(&kubeconfig, &apiserver_url, &pki)?;
        let mut apiserver_args = apiserver_args(&root, &pki, api_port, etcd_port);
        apiserver_args.extend(extra.iter().map(|a| (*a).to_owned()));
        let apiserver_log = root.join("kube-apiserver.log");

        let cp = Self {
            kubeconfig,
            binaries: Some(binaries),
            local: Some(Local {
                apiserver: Mutex::new(None),
                etcd: Mutex::new(Some(etcd)),
                apiserver_args,
                apiserver_url,
                apiserver_log,
                dir,
            }),
        };
        cp.start_apiserver().await?;
        Ok(cp)
    }

    /// Uses an existing cluster through its kubeconfig; nothing is started or stopped.
    pub fn external(kubeconfig: impl Into<PathBuf>) -> Self {
        Self {
            kubeconfig: kubeconfig.into(),
            binaries: Binaries::locate().ok(),
            local: None,
        }
    }

    /// The control plane shared by all tests of this test binary: the cluster named by
    /// `PRODREADY_E2E_KUBECONFIG` if set, else one started on first use.
    ///
    /// It is never dropped; its processes die with the test binary (see the process module)
    /// and its temp dir is removed by the next run. A failed start is remembered, so every test
    /// fails at once with the same message instead of retrying.
    pub async fn shared() -> anyhow::Result<&'static ControlPlane> {
        static SHARED: OnceCell<Result<ControlPlane, String>> = OnceCell::const_new();
        let result = SHARED
            .get_or_init(|| async {
                match std::env::var_os(KUBECONFIG_ENV) {
                    Some(path) if !path.is_empty() => Ok(Self::external(PathBuf::from(path))),
                    _ => Self::start().await.map_err(|e| format!("{e:#}")),
                }
            })
            .await;
        result
            .as_ref()
            .map_err(|e| anyhow::anyhow!("the shared control plane failed to start: {e}"))
    }

    /// Whether the harness started this control plane (as opposed to an external cluster).
    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }

    /// The kubeconfig file (admin credentials).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The control plane's working directory (certificates, logs, etcd data), if local.
    pub fn dir(&self) -> Option<&Path> {
        self.local.as_ref().map(|l| l.dir.path())
    }

    /// The API server URL, e.g. `https://127.0.0.1:41234`, if local.
    pub fn apiserver_url(&self) -> Option<&str> {
        self.local.as_ref().map(|l| l.apiserver_url.as_str())
    }

    /// The last `lines` lines of the API server's log (empty for an external cluster).
    pub fn apiserver_log_tail(&self, lines: usize) -> String {
        self.local
            .as_ref()
            .map(|l| tail(&l.apiserver_log, lines))
            .unwrap_or_default()
    }

    /// A new client for the calling test's runtime, built from the kubeconfig.
    pub async fn client(&self) -> anyhow::Result<Client> {
        client_from(&self.kubeconfig).await
    }

    fn binaries(&self) -> anyhow::Result<Binaries> {
        match &self.binaries {
            Some(b) => Ok(b.clone()),
            None => Ok(Binaries::locate()?),
        }
    }

    /// Runs the real `kubectl` with this control plane's kubeconfig.
    pub async fn kubectl<I, S>(&self, args: I) -> anyhow::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.kubectl_with_stdin(args, None).await
    }

    /// Runs `kubectl` feeding `stdin` (e.g. `kubectl apply -f -`).
    pub async fn kubectl_with_stdin<I, S>(
        &self,
        args: I,
        stdin: Option<&str>,
    ) -> anyhow::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let kubectl = self.binaries()?.kubectl();
        let cache = self.tool_home().join("kubectl-cache");
        let envs = [
            ("KUBECONFIG", self.kubeconfig.as_os_str()),
            ("KUBECACHEDIR", cache.as_os_str()),
        ];
        tools::run(&kubectl, args, &envs, stdin.map(str::as_bytes)).await
    }

    /// Runs the real `helm` with this control plane's kubeconfig and private helm directories.
    pub async fn helm<I, S>(&self, args: I) -> anyhow::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let helm = self.binaries()?.helm();
        let home = self.tool_home().join("helm");
        let (cache, config, data) = (home.join("cache"), home.join("config"), home.join("data"));
        let envs = [
            ("KUBECONFIG", self.kubeconfig.as_os_str()),
            ("HELM_CACHE_HOME", cache.as_os_str()),
            ("HELM_CONFIG_HOME", config.as_os_str()),
            ("HELM_DATA_HOME", data.as_os_str()),
        ];
        tools::run(&helm, args, &envs, None).await
    }

    /// Where kubectl and helm keep caches: inside the local dir, else a shared temp dir.
    fn tool_home(&self) -> PathBuf {
        match &self.local {
            Some(local) => local.dir.path().join("tools"),
            None => crate::process::temp_base().join("external-tools"),
        }
    }

    /// Creates a namespace with a unique name starting with `prefix`; it is deleted on drop.
    pub async fn temp_namespace(&self, prefix: &str) -> anyhow::Result<TempNamespace> {
        let kubectl = self.binaries()?.kubectl();
        let client = self.client().await?;
        let name = unique_name(prefix);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("prodready.dev/e2e".to_string(), "true".to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client)
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(TempNamespace::new(name, kubectl, self.kubeconfig.clone()))
    }

    /// Stops kube-apiserver (SIGTERM, then SIGKILL after 10 s); etcd keeps running.
    /// Only for a control plane of your own ([`ControlPlane::start`]): a shared one serves
    /// other tests at the same time.
    pub fn stop_apiserver(&self) -> Result<(), Error> {
        let local = self
            .local
            .as_ref()
            .ok_or(Error::NotLocal("stop_apiserver"))?;
        let taken = lock(&local.apiserver).take();
        if let Some(mut apiserver) = taken {
            apiserver.stop(APISERVER_STOP_GRACE);
        }
        Ok(())
    }

    /// (Re)starts kube-apiserver with the same port, certificates and etcd, and waits for
    /// `/readyz`. Does nothing if it is running.
    pub async fn start_apiserver(&self) -> anyhow::Result<()> {
        let local = self
            .local
            .as_ref()
            .ok_or(Error::NotLocal("start_apiserver"))?;
        {
            let mut slot = lock(&local.apiserver);
            if let Some(running) = slot.as_mut()
                && running.exited().is_none()
            {
                return Ok(());
            }
            let binaries = self.binaries()?;
            *slot = Some(Managed::start(
                "kube-apiserver",
                &binaries.kube_apiserver(),
                &local.apiserver_args,
                &local.apiserver_log,
            )?);
        }
        self.wait_ready(local).await
    }

    async fn wait_ready(&self, local: &Local) -> anyhow::Result<()> {
        let client = self.client().await?;
        let ready = poll_until(APISERVER_START_TIMEOUT, "kube-apiserver /readyz", || {
            let client = client.clone();
            let exited = lock(&local.apiserver).as_mut().and_then(Managed::exited);
            async move {
                match exited {
                    Some(status) => Probe::Fatal(format!("kube-apiserver exited with {status}")),
                    None => readyz(&client).await,
                }
            }
        })
        .await;
        match ready {
            Ok(()) => Ok(()),
            Err(e) => {
                let reason = e.to_string();
                let mut slot = lock(&local.apiserver);
                if let Some(mut apiserver) = slot.take() {
                    apiserver.kill();
                }
                Err(start_failed("kube-apiserver", reason, &local.apiserver_log).into())
            }
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Some(local) = &self.local {
            // The API server first, so it does not spin on a vanished etcd.
            if let Some(mut p) = lock(&local.apiserver).take() {
                p.kill();
            }
            if let Some(mut p) = lock(&local.etcd).take() {
                p.kill();
            }
        }
    }
}

/// One look at the API server's `/readyz` (5 s at most).
pub(crate) async fn readyz(client: &Client) -> Probe<()> {
    let request = match http::Request::get("/readyz").body(Vec::new()) {
        Ok(r) => r,
        Err(e) => return Probe::Fatal(e.to_string()),
    };
    match tokio::time::timeout(Duration::from_secs(5), client.request_text(request)).await {
        Ok(Ok(body)) if body.trim() == "ok" => Probe::Ready(()),
        Ok(Ok(body)) => Probe::NotYet(body),
        Ok(Err(e)) => Probe::NotYet(e.to_string()),
        Err(_) => Probe::NotYet("request timed out".into()),
    }
}

/// Waits for Ctrl-C or SIGTERM (the by-hand `control-plane` and `cluster` binaries).
pub async fn until_signalled() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves the Option valid; keep going.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn start_failed(component: &'static str, reason: String, log: &Path) -> Error {
    Error::StartFailed {
        component,
        reason,
        log: log.to_path_buf(),
        tail: tail(log, LOG_TAIL_LINES),
    }
}

async fn client_from(kubeconfig: &Path) -> anyhow::Result<Client> {
    let config = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading kubeconfig {}", kubeconfig.display()))?;
    let config = Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading kubeconfig {}", kubeconfig.display()))?;
    Client::try_from(config).context("building a kube client")
}

async fn start_etcd(
    binaries: &Binaries,
    root: &Path,
    port: u16,
    peer_port: u16,
    log: &Path,
) -> anyhow::Result<Managed> {
    let client_url = format!("http://127.0.0.1:{port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let args = vec![
        "--name=e2e".to_string(),
        format!("--data-dir={}", root.join("etcd").display()),
        format!("--listen-client-urls={client_url}"),
        format!("--advertise-client-urls={client_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=e2e={peer_url}"),
        // Test data need not survive a power cut; fsync dominates etcd latency otherwise.
        "--unsafe-no-fsync=true".to_string(),
        "--log-level=warn".to_string(),
    ];
    let mut etcd = Managed::start("etcd", &binaries.etcd(), &args, log)?;
    let up = poll_until(ETCD_START_TIMEOUT, "etcd client port", || {
        let exited = etcd.exited();
        async move {
            if let Some(status) = exited {
                return Probe::Fatal(format!("etcd exited with {status}"));
            }
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(_) => Probe::Ready(()),
                Err(e) => Probe::NotYet(e.to_string()),
            }
        }
    })
    .await;
    match up {
        Ok(()) => Ok(etcd),
        Err(e) => {
            etcd.kill();
            Err(start_failed(etcd.name(), e.to_string(), etcd.log()).into())
        }
    }
}

fn apiserver_args(root: &Path, pki: &PkiFiles, port: u16, etcd_port: u16) -> Vec<String> {
    let p = |path: &Path| path.display().to_string();
    vec![
        "--advertise-address=127.0.0.1".into(),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={port}"),
        format!("--cert-dir={}", root.join("apiserver-certs").display()),
        format!("--tls-cert-file={}", p(&pki.serving_cert)),
        format!("--tls-private-key-file={}", p(&pki.serving_key)),
        format!("--client-ca-file={}", p(&pki.ca_cert)),
        format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
        "--service-cluster-ip-range=10.0.0.0/24".into(),
        format!("--service-account-issuer=https://127.0.0.1:{port}"),
        format!("--service-account-key-file={}", p(&pki.sa_pub)),
        format!("--service-account-signing-key-file={}", p(&pki.sa_key)),
        "--authorization-mode=RBAC".into(),
        // Without a controller-manager no ServiceAccount objects get created, so the
        // ServiceAccount plugin would reject every Pod (envtest disables it for the same reason).
        "--disable-admission-plugins=ServiceAccount".into(),
        // The lease reconciler refuses loopback advertise addresses; nothing here needs the
        // `kubernetes` Service's endpoints.
        "--endpoint-reconciler-type=none".into(),
        "--allow-privileged=true".into(),
        // Fewer background goroutines on a small machine; tests do not need fairness queues.
        "--enable-priority-and-fairness=false".into(),
        "--profiling=false".into(),
    ]
}

/// Writes a kubeconfig that refers to the PEM files (they live as long as the control plane).
fn write_kubeconfig(path: &Path, server: &str, pki: &PkiFiles) -> anyhow::Result<()> {
    write_kubeconfig_files(path, server, &pki.ca_cert, &pki.admin_cert, &pki.admin_key)
}

/// Writes a kubeconfig for `server` with the CA and client certificate files given.
pub(crate) fn write_kubeconfig_files(
    path: &Path,
    server: &str,
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> anyhow::Result<()> {
    // JSON is valid YAML, and kubectl and kube both read it.
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": {
            "server": server,
            "certificate-authority": ca,
        }}],
        "users": [{"name": "e2e-user", "user": {
            "client-certificate": cert,
            "client-key": key,
        }}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "e2e-user"}}],
        "current-context": "e2e",
    });
    let text = serde_json::to_string_pretty(&config)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
