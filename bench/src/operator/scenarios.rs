//! The cluster, the operator process, the policy status as watched, and the scenarios
//! (2: cold start, 3: policy edit, 4: churn, 6: memory) that measure them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use e2e::{
    Binaries, ControlPlane, OperatorProcess, apply_yaml, free_port, install_crd_file, repo_root,
};
use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use prodready::api::ProductionPolicy;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::*;

// ---------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------

/// A fresh control plane with the CRD, the baseline policy and a dedicated operator user.
pub struct Cluster {
    /// The control plane.
    pub cp: ControlPlane,
    /// An admin client.
    pub client: Client,
    /// The operator's kubeconfig (a service-account token of [`OPERATOR_USER`]).
    pub operator_kubeconfig: PathBuf,
    /// Seconds it took to create the workloads (not part of any figure).
    pub create_seconds: f64,
    /// Objects created (namespaces excluded).
    pub objects: usize,
    /// Objects by kind.
    pub by_kind: BTreeMap<String, usize>,
}

impl Cluster {
    /// Starts a control plane and fills it with `size` workloads and the policy.
    pub async fn start(size: Size, concurrency: usize) -> anyhow::Result<Cluster> {
        let cp = ControlPlane::start().await?;
        let client = cp.client().await?;
        install_crd_file(&client, CRD_FILE).await?;
        let operator_kubeconfig = operator_user(&cp, &client).await?;
        let (namespaces, objects) = generate(size);
        let mut by_kind = BTreeMap::new();
        for o in &objects {
            *by_kind
                .entry(o["kind"].as_str().unwrap_or("?").to_owned())
                .or_insert(0) += 1;
        }
        let started = Instant::now();
        create_all(&client, namespaces, concurrency).await?;
        let n = create_all(&client, objects, concurrency).await?;
        let create_seconds = started.elapsed().as_secs_f64();
        let policy = std::fs::read_to_string(repo_root().join(POLICY_FILE))?;
        apply_yaml(&client, None, &policy).await?;
        Ok(Cluster {
            cp,
            client,
            operator_kubeconfig,
            create_seconds,
            objects: n,
            by_kind,
        })
    }

    /// The API server's own count of the requests it served: the sum of every
    /// `apiserver_request_total` series in its `/metrics` (watch starts included).
    pub async fn apiserver_requests(&self) -> anyhow::Result<f64> {
        let text = self
            .client
            .request_text(http::Request::get("/metrics").body(Vec::new())?)
            .await?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with("apiserver_request_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// Runs `kubectl get <kinds> -A -o json > /dev/null` and returns its wall time.
    pub fn time_list(&self, kinds: &str) -> anyhow::Result<f64> {
        let kubectl = Binaries::locate()?.kubectl();
        let dir = self
            .cp
            .dir()
            .context("local control plane")?
            .join("bench-kubectl-cache");
        let started = Instant::now();
        let status = Command::new(kubectl)
            .args(["get", kinds, "-A", "-o", "json"])
            .env("KUBECONFIG", self.cp.kubeconfig())
            .env("KUBECACHEDIR", &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()?;
        let elapsed = started.elapsed().as_secs_f64();
        if !status.success() {
            bail!("kubectl get {kinds} failed: {status}");
        }
        Ok(elapsed)
    }
}

/// Creates the service account `kube-system/default` (no controller-manager creates it here),
/// binds it to cluster-admin, and writes a kubeconfig with a token for it.
async fn operator_user(cp: &ControlPlane, client: &Client) -> anyhow::Result<PathBuf> {
    let sa: ServiceAccount = serde_json::from_value(
        json!({"metadata": {"name": "default", "namespace": "kube-system"}}),
    )?;
    match Api::<ServiceAccount>::namespaced(client.clone(), "kube-system")
        .create(&PostParams::default(), &sa)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let crb: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "prodready-bench-operator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"}],
    }))?;
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &crb)
        .await?;
    let out = cp
        .kubectl([
            "create",
            "token",
            "default",
            "-n",
            "kube-system",
            "--duration",
            "24h",
        ])
        .await?
        .ok()?;
    let admin: Value = serde_json::from_str(&std::fs::read_to_string(cp.kubeconfig())?)?;
    let ca = admin["clusters"][0]["cluster"]["certificate-authority"].clone();
    let config = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "bench", "cluster": {"server": cp.apiserver_url(), "certificate-authority": ca}}],
        "users": [{"name": "operator", "user": {"token": out.stdout.trim()}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "operator"}}],
        "current-context": "bench",
    });
    let path = cp
        .dir()
        .context("local control plane")?
        .join("operator.kubeconfig");
    std::fs::write(&path, serde_json::to_string_pretty(&config)?)?;
    Ok(path)
}

// ---------------------------------------------------------------------------------------
// The policy status, as observed through a watch
// ---------------------------------------------------------------------------------------

/// One observed status of the policy.
#[derive(Clone, Copy, Debug)]
pub struct Observed {
    /// When the watch delivered it.
    pub at: Instant,
    /// `metadata.generation`.
    pub generation: i64,
    /// `status.observedGeneration`.
    pub observed_generation: i64,
    /// `status.summary.matched`.
    pub matched: u32,
    /// `status.summary.violating`.
    pub violating: u32,
    /// `status.rules[CHURN_RULE].violations` (0 when absent).
    pub churn_rule: u32,
}

/// Every status of the policy since the watch started.
#[derive(Clone, Default)]
pub struct StatusLog {
    seen: Arc<Mutex<Vec<Observed>>>,
    changed: Arc<Notify>,
}

impl StatusLog {
    /// Watches the policy in the background (until the runtime ends).
    pub async fn watch(client: &Client) -> StatusLog {
        let log = StatusLog::default();
        let api: Api<ProductionPolicy> = Api::all(client.clone());
        let cfg = watcher::Config::default().fields(&format!("metadata.name={POLICY}"));
        let (seen, changed) = (log.seen.clone(), log.changed.clone());
        tokio::spawn(async move {
            let mut stream = watcher(api, cfg).boxed();
            while let Some(ev) = stream.next().await {
                let at = Instant::now();
                let p = match ev {
                    Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => p,
                    _ => continue,
                };
                let status = p.status.unwrap_or_default();
                let summary = status.summary.unwrap_or_default();
                let obs = Observed {
                    at,
                    generation: p.metadata.generation.unwrap_or_default(),
                    observed_generation: status.observed_generation.unwrap_or(-1),
                    matched: summary.matched,
                    violating: summary.violating,
                    churn_rule: status
                        .rules
                        .iter()
                        .find(|r| r.rule == CHURN_RULE)
                        .map_or(0, |r| r.violations),
                };
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(obs);
                changed.notify_waiters();
            }
        });
        log
    }

    /// The statuses seen so far.
    pub fn all(&self) -> Vec<Observed> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits for the first status at or after `since` satisfying `ok`.
    pub async fn wait(
        &self,
        since: Instant,
        timeout: Duration,
        ok: impl Fn(&Observed) -> bool,
    ) -> anyhow::Result<Observed> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let all = self.all();
            if let Some(o) = all.iter().find(|o| o.at >= since && ok(o)) {
                return Ok(*o);
            }
            if Instant::now() >= deadline {
                bail!(
                    "status not reached within {timeout:?}; last seen: {:?}",
                    all.last()
                );
            }
            let _ = tokio::time::timeout_at(deadline.into(), notified).await;
        }
    }
}

/// Whether a status shows exactly `e` for generation `generation`.
pub fn reflects(o: &Observed, e: &Expected, generation: i64) -> bool {
    o.observed_generation == generation
        && o.generation == generation
        && o.matched == e.matched
        && o.violating == e.violating
        && o.churn_rule == e.churn_rule
}

// ---------------------------------------------------------------------------------------
// The operator process
// ---------------------------------------------------------------------------------------

/// How to start the operator: a program and the arguments before `run`'s flags.
#[derive(Clone, Debug)]
pub struct OperatorCmd {
    /// The program (the release `prodready`, or the smoke test's `bench-prodready`).
    pub program: PathBuf,
}

impl OperatorCmd {
    /// The release binary of this workspace.
    pub fn release() -> OperatorCmd {
        OperatorCmd {
            program: repo_root().join("target/release/prodready"),
        }
    }
}

/// A running `prodready run` (an [`e2e::OperatorProcess`]: killed on drop, stdin held open).
pub struct Operator {
    process: OperatorProcess,
    /// Its admin address (`/metrics`, `/health/ready`).
    pub admin: SocketAddr,
    /// When it was spawned.
    pub started: Instant,
    /// Its log file.
    pub log: PathBuf,
}

impl Operator {
    /// Starts `prodready run` with the flags the Helm chart sets at its default values
    /// ([`chart_flags`]): the admission webhook on, with its self-managed certificate, and
    /// registered in a ValidatingWebhookConfiguration as the chart registers it (every
    /// namespace but the operator's and kube-system, failurePolicy Ignore), so the API server
    /// calls it for every workload write, as in a real cluster.
    pub async fn start(cmd: &OperatorCmd, cluster: &Cluster) -> anyhow::Result<Operator> {
        let dir = cluster.cp.dir().context("local control plane")?;
        let webhook_port = free_port()?;
        register_webhook(&cluster.client, webhook_port).await?;
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let log = dir.join("operator.log");
        let args = chart_flags(&cluster.operator_kubeconfig, admin, webhook_port);
        let started = Instant::now();
        let process = OperatorProcess::start(&cmd.program, &args, &[], &log)?;
        Ok(Operator {
            process,
            admin,
            started,
            log,
        })
    }

    /// Waits until the Event backlog has drained (one Event per violating workload, sent at
    /// `--max-events-per-second`): until the operator's own request counter grows by at most
    /// 1/s over 5 s, at most 15 minutes; returns the seconds waited.
    pub async fn settle_event_backlog(&self) -> anyhow::Result<f64> {
        let settle0 = Instant::now();
        let mut last = self.metric_sum("dependency_requests_total")?;
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let now = self.metric_sum("dependency_requests_total")?;
            if now - last <= 5.0 || settle0.elapsed() > Duration::from_secs(900) {
                break;
            }
            last = now;
        }
        Ok(settle0.elapsed().as_secs_f64())
    }

    /// The operator's heap by part (`GET /debug/memory`), as JSON.
    pub fn heap_profile(&self) -> anyhow::Result<Value> {
        let (code, body) = self
            .process
            .get("/debug/memory")
            .map_err(|e| anyhow::anyhow!("GET /debug/memory: {e}"))?;
        if code != 200 {
            bail!("GET /debug/memory answered {code}: {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        u32::try_from(self.process.pid()).unwrap_or(0)
    }

    /// Fails if it has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.process.exited() {
            bail!(
                "the operator exited with {status}; log tail:\n{}",
                self.process.log_tail(20)
            );
        }
        Ok(())
    }

    /// VmRSS and VmHWM in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        Ok((field("VmRSS:"), field("VmHWM:")))
    }

    /// User + system CPU seconds so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.pid())
    }

    /// The sum of a metric's series from the operator's `/metrics`.
    pub fn metric_sum(&self, name: &str) -> anyhow::Result<f64> {
        let (code, body) = self
            .process
            .get("/metrics")
            .map_err(|e| anyhow::anyhow!("GET /metrics: {e}"))?;
        if code != 200 {
            bail!("GET /metrics answered {code}");
        }
        Ok(body
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }
}

/// The name of the ValidatingWebhookConfiguration the chart creates (and the operator's
/// `--webhook-configuration-name` default).
pub const WEBHOOK_CONFIGURATION: &str = "prodready";

/// `prodready run`'s arguments as `charts/prodready/templates/deployment.yaml` renders them
/// with the chart's default values (self-managed webhook certificate; `--owner-deployment`
/// left out: no Deployment of the operator exists here), on local addresses, with the
/// operator's own kubeconfig and the Lease and the webhook Secret in `default`.
pub fn chart_flags(kubeconfig: &Path, admin: SocketAddr, webhook_port: u16) -> Vec<String> {
    [
        "run".to_owned(),
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--admin-addr={admin}"),
        "--identity=bench".to_owned(),
        "--lease-name=prodready-leader".to_owned(),
        "--lease-namespace=default".to_owned(),
        "--lease-duration=15s".to_owned(),
        "--lease-retry-period=2s".to_owned(),
        "--log-format=json".to_owned(),
        "--log-level=info".to_owned(),
        "--resync-interval=5m".to_owned(),
        "--debounce=500ms".to_owned(),
        "--max-violations=100".to_owned(),
        "--max-events-per-second=50".to_owned(),
        "--api-timeout=10s".to_owned(),
        "--discovery-interval=30s".to_owned(),
        "--reports=openreports".to_owned(),
        "--webhook-enabled=true".to_owned(),
        format!("--webhook-addr=127.0.0.1:{webhook_port}"),
        "--webhook-service-name=prodready-webhook".to_owned(),
        "--webhook-namespace=default".to_owned(),
        // The API server reaches the webhook by URL here, not through a Service.
        "--webhook-extra-san=127.0.0.1".to_owned(),
        "--webhook-secret-name=prodready-webhook-tls".to_owned(),
        format!("--webhook-configuration-name={WEBHOOK_CONFIGURATION}"),
        "--webhook-cert-validity=2160h".to_owned(),
    ]
    .to_vec()
}

/// Registers the webhook as the chart does, by URL (no Service routing without kube-proxy);
/// the operator injects its CA bundle.
async fn register_webhook(client: &Client, port: u16) -> anyhow::Result<()> {
    let yaml = format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {{name: {WEBHOOK_CONFIGURATION}}}
webhooks:
  - name: validate.prodready.dev
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Ignore
    timeoutSeconds: 3
    matchPolicy: Equivalent
    clientConfig:
      url: https://127.0.0.1:{port}/validate
    namespaceSelector:
      matchExpressions:
        - {{key: kubernetes.io/metadata.name, operator: NotIn, values: [default, kube-system]}}
    rules:
      - {{apiGroups: [apps], apiVersions: [v1], resources: [deployments, statefulsets, daemonsets, replicasets], operations: [CREATE, UPDATE], scope: Namespaced}}
      - {{apiGroups: [batch], apiVersions: [v1], resources: [jobs, cronjobs], operations: [CREATE, UPDATE], scope: Namespaced}}
      - {{apiGroups: [""], apiVersions: [v1], resources: [pods], operations: [CREATE, UPDATE], scope: Namespaced}}
"#
    );
    apply_yaml(client, None, &yaml).await?;
    Ok(())
}

/// User + system CPU seconds of a process, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("stat format")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command: state(0) ... utime(11) stime(12).
    let ticks: f64 = fields.get(11).context("utime")?.parse::<f64>()?
        + fields.get(12).context("stime")?.parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok(ticks / if hz > 0 { hz as f64 } else { 100.0 })
}

// ---------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------

/// Scenario 2's figures.
#[derive(Clone, Debug, Default)]
pub struct ColdStart {
    /// The expected summary (engine).
    pub expected: Expected,
    /// Seconds from process start to the first status showing exactly `expected`.
    pub converged_s: f64,
    /// Operator CPU seconds spent until then.
    pub converged_cpu_s: f64,
    /// kubectl LIST of deployments,cronjobs: each timed run.
    pub list_workloads_s: Vec<f64>,
    /// kubectl LIST of deployments,cronjobs,services,poddisruptionbudgets: each timed run.
    pub list_all_s: Vec<f64>,
    /// VmRSS after convergence and the idle window, KiB.
    pub rss_kib: u64,
    /// VmHWM (peak RSS), KiB.
    pub hwm_kib: u64,
    /// Seconds after convergence until the Event backlog had drained (the idle window
    /// starts then).
    pub settle_s: f64,
    /// Idle window, seconds.
    pub idle_s: f64,
    /// Requests the API server served during the idle window with the operator running…
    pub idle_requests: f64,
    /// …and during a window of the same length just before the operator started (the API
    /// server's own background requests and the bench's scrapes).
    pub background_requests: f64,
    /// The operator's own count of its API requests (not watch streams) in the same window.
    pub idle_requests_self: f64,
    /// Operator CPU seconds during the idle window.
    pub idle_cpu_s: f64,
    /// Requests the API server served from the operator's start to convergence.
    pub startup_requests: f64,
    /// Load average before and after.
    pub load: (String, String),
}

/// Scenario 2 on a filled cluster: LIST floor, then the operator's cold start, RSS and idle
/// API requests. Returns the running operator for the next scenarios.
pub async fn cold_start(
    cluster: &Cluster,
    cmd: &OperatorCmd,
    status: &StatusLog,
    list_runs: usize,
    idle: Duration,
    converge_timeout: Duration,
) -> anyhow::Result<(ColdStart, Operator)> {
    let mut r = ColdStart {
        load: (loadavg(), String::new()),
        ..ColdStart::default()
    };
    let (expected, generation) = expected(&cluster.client).await?;
    r.expected = expected;
    // The floor, in the same run: one warm-up (kubectl's discovery cache), then timed runs.
    cluster.time_list("deployments,cronjobs,services,poddisruptionbudgets")?;
    for _ in 0..list_runs.max(1) {
        r.list_workloads_s
            .push(cluster.time_list("deployments,cronjobs")?);
        r.list_all_s
            .push(cluster.time_list("deployments,cronjobs,services,poddisruptionbudgets")?);
    }
    // The API server's background: its own loopback controllers and our two scrapes.
    let bg0 = cluster.apiserver_requests().await?;
    tokio::time::sleep(idle).await;
    r.background_requests = cluster.apiserver_requests().await? - bg0;
    let before = cluster.apiserver_requests().await?;
    let mut op = Operator::start(cmd, cluster).await?;
    let reached = tokio::select! {
        r = status.wait(op.started, converge_timeout, |o| reflects(o, &expected, generation)) => r,
        () = async {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if op.check_alive().is_err() { break; }
            }
        } => Err(anyhow::anyhow!("the operator exited")),
    };
    op.check_alive()?;
    let reached = reached?;
    r.converged_s = reached.at.duration_since(op.started).as_secs_f64();
    r.converged_cpu_s = op.cpu_seconds()?;
    r.startup_requests = cluster.apiserver_requests().await? - before;
    // Idle: nothing changes. First the Event backlog drains, then count.
    r.settle_s = op.settle_event_backlog().await?;
    let (req0, self0, cpu0, t0) = (
        cluster.apiserver_requests().await?,
        op.metric_sum("dependency_requests_total")?,
        op.cpu_seconds()?,
        Instant::now(),
    );
    tokio::time::sleep(idle).await;
    r.idle_requests = cluster.apiserver_requests().await? - req0;
    r.idle_requests_self = op.metric_sum("dependency_requests_total")? - self0;
    r.idle_cpu_s = op.cpu_seconds()? - cpu0;
    r.idle_s = t0.elapsed().as_secs_f64();
    (r.rss_kib, r.hwm_kib) = op.rss_kib()?;
    op.check_alive()?;
    r.load.1 = loadavg();
    Ok((r, op))
}

/// Scenario 3's figures.
#[derive(Clone, Debug, Default)]
pub struct PolicyEdit {
    /// Before and after.
    pub before: Expected,
    /// After the edit.
    pub after: Expected,
    /// Seconds from the PATCH's response to the status showing the new generation and counts.
    pub seconds: f64,
    /// Seconds from sending the PATCH.
    pub seconds_from_send: f64,
    /// Load average.
    pub load: String,
}

/// Scenario 3: turn `cpu-limit` on (off in the baseline profile) and time the status.
pub async fn policy_edit(
    cluster: &Cluster,
    status: &StatusLog,
    before: Expected,
) -> anyhow::Result<PolicyEdit> {
    let load = loadavg();
    let api: Api<ProductionPolicy> = Api::all(cluster.client.clone());
    let sent = Instant::now();
    let patched = api
        .patch(
            POLICY,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"rules": {"cpuLimit": {"enabled": true}}}})),
        )
        .await?;
    let done = Instant::now();
    let generation = patched.metadata.generation.unwrap_or_default();
    let (after, _) = expected(&cluster.client).await?;
    let o = status
        .wait(sent, Duration::from_secs(60), |o| {
            reflects(o, &after, generation)
        })
        .await?;
    Ok(PolicyEdit {
        before,
        after,
        seconds: o.at.saturating_duration_since(done).as_secs_f64(),
        seconds_from_send: o.at.duration_since(sent).as_secs_f64(),
        load,
    })
}

/// Scenario 4's figures.
#[derive(Clone, Debug, Default)]
pub struct Churn {
    /// Changes made (Deployments updated).
    pub changes: usize,
    /// Target rate, per second.
    pub rate: u64,
    /// Seconds of churn.
    pub seconds: f64,
    /// Achieved update rate (changes / seconds).
    pub achieved_rate: f64,
    /// Lag from each change's commit (PATCH response) to the status reflecting it, seconds,
    /// sorted.
    pub lags: Vec<f64>,
    /// Changes the status never reflected within the timeout.
    pub missing: usize,
    /// Operator CPU seconds during the churn (until the status caught up).
    pub cpu_s: f64,
    /// Wall seconds of the same window.
    pub wall_s: f64,
    /// Policy evaluations during the window (`prodready_reconcile_total`).
    pub evaluations: f64,
    /// Status updates seen by the watch during the window.
    pub status_updates: usize,
    /// Final count of the churned rule, and the engine's.
    pub final_count: (u32, u32),
    /// Final `(matched, violating)` of the status, and the engine's full evaluation's.
    pub final_summary: ((u32, u32), (u32, u32)),
    /// Evaluation rounds during the window: (incremental, full).
    pub rounds: (f64, f64),
    /// Workloads those rounds evaluated.
    pub evaluated_workloads: f64,
    /// Load average before and after.
    pub load: (String, String),
}

/// Scenario 4: `rate` Deployment updates per second for `duration`, each removing one
/// Deployment's liveness probe (so `rules[liveness-probe]` rises by one per change).
pub async fn churn(
    cluster: &Cluster,
    op: &Operator,
    status: &StatusLog,
    size: Size,
    rate: u64,
    duration: Duration,
) -> anyhow::Result<Churn> {
    let load0 = loadavg();
    let (base, generation) = expected(&cluster.client).await?;
    let wanted = (rate as f64 * duration.as_secs_f64()).round() as usize;
    let changes = wanted.min(size.deployments);
    let start_obs = status.all().len();
    let cpu0 = op.cpu_seconds()?;
    let evals0 = op.metric_sum("prodready_reconcile_total")?;
    let rounds0 = rounds(op)?;
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(changes);
    for i in 0..changes {
        ticker.tick().await;
        let (ns, name) = deployment_name(i, size);
        let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), &ns);
        tasks.push(tokio::spawn(async move {
            let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "livenessProbe": null}]}}}});
            api.patch(&name, &PatchParams::default(), &Patch::Strategic(patch)).await?;
            anyhow::Ok(Instant::now())
        }));
    }
    let mut done = Vec::with_capacity(changes);
    for t in tasks {
        done.push(t.await??);
    }
    let churn_s = started.elapsed().as_secs_f64();
    done.sort();
    let target = base.churn_rule + changes as u32;
    let caught_up = status
        .wait(started, Duration::from_secs(60), |o| {
            o.churn_rule >= target && o.generation == generation
        })
        .await;
    let wall_s = started.elapsed().as_secs_f64();
    let cpu_s = op.cpu_seconds()? - cpu0;
    let evaluations = op.metric_sum("prodready_reconcile_total")? - evals0;
    let rounds1 = rounds(op)?;
    let seen: Vec<Observed> = status.all().into_iter().skip(start_obs).collect();
    let mut lags = Vec::with_capacity(changes);
    let mut missing = 0;
    for (k, at) in done.iter().enumerate() {
        let need = base.churn_rule + k as u32 + 1;
        // Counts only rise, so the first status with enough violations is the one; it can
        // precede the PATCH response by a hair (lag 0).
        match seen.iter().find(|o| o.churn_rule >= need) {
            Some(o) => lags.push(o.at.saturating_duration_since(*at).as_secs_f64()),
            None => missing += 1,
        }
    }
    lags.sort_by(f64::total_cmp);
    let (after, _) = expected(&cluster.client).await?;
    let last = status.all().last().cloned();
    let final_count = last.as_ref().map_or(0, |o| o.churn_rule);
    let final_summary = (
        last.as_ref().map_or((0, 0), |o| (o.matched, o.violating)),
        (after.matched, after.violating),
    );
    caught_up.context("the status did not catch up with the churn")?;
    Ok(Churn {
        changes,
        rate,
        seconds: churn_s,
        achieved_rate: changes as f64 / churn_s,
        lags,
        missing,
        cpu_s,
        wall_s,
        evaluations,
        status_updates: seen.len(),
        final_count: (final_count, after.churn_rule),
        final_summary,
        rounds: (rounds1.0 - rounds0.0, rounds1.1 - rounds0.1),
        evaluated_workloads: rounds1.2 - rounds0.2,
        load: (load0, loadavg()),
    })
}

/// The operator's rounds so far: (incremental, full, workloads evaluated).
fn rounds(op: &Operator) -> anyhow::Result<(f64, f64, f64)> {
    Ok((
        op.metric_sum("prodready_rounds_total{pass=\"incremental\"}")?,
        op.metric_sum("prodready_rounds_total{pass=\"full\"}")?,
        op.metric_sum("prodready_round_evaluated_workloads_total")?,
    ))
}

/// Scenario 6's figures for one size.
#[derive(Clone, Debug, Default)]
pub struct MemoryPoint {
    /// Workloads.
    pub workloads: usize,
    /// Other objects (Services, PDBs).
    pub others: usize,
    /// Seconds to converge.
    pub converged_s: f64,
    /// VmRSS after convergence, KiB.
    pub rss_kib: u64,
    /// VmHWM, KiB.
    pub hwm_kib: u64,
    /// Load average.
    pub load: String,
    /// The operator's heap by part (`/debug/memory`) right after the RSS was read.
    pub heap: Option<Value>,
}

/// Scenario 6 at one size: a fresh cluster with `workloads`, the operator, RSS after
/// convergence and `settle`.
pub async fn memory_point(
    cmd: &OperatorCmd,
    workloads: usize,
    concurrency: usize,
    settle: Duration,
) -> anyhow::Result<MemoryPoint> {
    let size = if workloads == 0 {
        Size {
            deployments: 0,
            cronjobs: 0,
            namespaces: 1,
        }
    } else {
        Size::workloads(workloads)
    };
    let cluster = Cluster::start(size, concurrency).await?;
    let status = StatusLog::watch(&cluster.client).await;
    let (expected, generation) = expected(&cluster.client).await?;
    let mut op = Operator::start(cmd, &cluster).await?;
    let timeout = Duration::from_secs(60 + (workloads / 200) as u64);
    let reached = status
        .wait(op.started, timeout, |o| reflects(o, &expected, generation))
        .await;
    op.check_alive()?;
    let reached = reached?;
    tokio::time::sleep(settle).await;
    let (rss_kib, hwm_kib) = op.rss_kib()?;
    let heap = op.heap_profile().ok();
    Ok(MemoryPoint {
        workloads: size.total(),
        others: cluster.objects - size.total(),
        converged_s: reached.at.duration_since(op.started).as_secs_f64(),
        rss_kib,
        hwm_kib,
        load: loadavg(),
        heap,
    })
}

/// The policy reports scenario's figures (issue 15).
#[derive(Clone, Debug, Default)]
pub struct ReportsRun {
    /// Reports the engine says must exist (one per matched workload).
    pub reports: usize,
    /// Seconds from the OpenReports CRDs' install to every report being exactly the engine's.
    pub converged_s: f64,
    /// Report writes (server-side applies and deletes) the operator made meanwhile.
    pub writes: f64,
    /// Report objects in the API server (so in etcd) at the end.
    pub objects: usize,
    /// Their size as JSON, as the API server returns them (custom resources are stored as
    /// JSON in etcd; managedFields included).
    pub bytes: usize,
    /// Requests by the operator's own count while idle with reports on, and over how long.
    pub idle_requests_self: f64,
    /// The idle window.
    pub idle_s: f64,
    /// Report writes during the idle window.
    pub idle_writes: f64,
    /// Load average before and after.
    pub load: (String, String),
}

/// Lists every report, decoded, with the total JSON size.
pub(crate) async fn list_reports(
    client: &Client,
) -> anyhow::Result<(Vec<prodready::reports::Report>, usize)> {
    let api: Api<kube::api::DynamicObject> = Api::all_with(
        client.clone(),
        &prodready::controller::reports::api_resource(prodready::reports::ReportApi::OpenReports),
    );
    let mut out = Vec::new();
    let mut bytes = 0;
    let mut lp = kube::api::ListParams::default().limit(500);
    loop {
        let page = api.list(&lp).await?;
        for o in page.items {
            let v = serde_json::to_value(&o)?;
            bytes += serde_json::to_vec(&v)?.len();
            out.push(serde_json::from_value(v)?);
        }
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    Ok((out, bytes))
}

/// How many expected reports the cluster does not hold exactly (missing or different), plus
/// the reports it holds that are not expected.
pub(crate) fn report_mismatches(
    expected: &[prodready::reports::Report],
    held: &[prodready::reports::Report],
) -> usize {
    let key =
        |r: &prodready::reports::Report| (r.metadata.namespace.clone(), r.metadata.name.clone());
    let by_key: BTreeMap<_, _> = held.iter().map(|r| (key(r), r)).collect();
    let wrong = expected
        .iter()
        .filter(|e| !by_key.get(&key(e)).is_some_and(|h| e.same_content(h)))
        .count();
    wrong + held.len().saturating_sub(expected.len())
}

/// Installs the official OpenReports CRDs into a cluster whose operator already converged
/// (its `--reports openreports` default waiting for them), then times the reports until they
/// equal the engine's, counts the writes, the objects and their bytes, and the idle traffic.
pub async fn reports(
    cluster: &Cluster,
    op: &mut Operator,
    idle: Duration,
    timeout: Duration,
) -> anyhow::Result<ReportsRun> {
    let mut r = ReportsRun {
        load: (loadavg(), String::new()),
        ..ReportsRun::default()
    };
    let writes0 = op.metric_sum("prodready_report_writes_total")?;
    e2e::install_openreports_crds(&cluster.client).await?;
    let installed = Instant::now();
    let expected = expected_reports(&cluster.client).await?;
    r.reports = expected.len();
    loop {
        op.check_alive()?;
        let (held, bytes) = list_reports(&cluster.client).await?;
        let wrong = report_mismatches(&expected, &held);
        if wrong == 0 {
            r.converged_s = installed.elapsed().as_secs_f64();
            r.objects = held.len();
            r.bytes = bytes;
            break;
        }
        if installed.elapsed() > timeout {
            bail!(
                "reports did not converge in {timeout:?}: {wrong} of {} expected reports missing or different ({} held)",
                expected.len(),
                held.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    r.writes = op.metric_sum("prodready_report_writes_total")? - writes0;
    // Idle with reports on: the watch on reports is quiet, resyncs write nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (self0, writes1, t0) = (
        op.metric_sum("dependency_requests_total")?,
        op.metric_sum("prodready_report_writes_total")?,
        Instant::now(),
    );
    tokio::time::sleep(idle).await;
    r.idle_requests_self = op.metric_sum("dependency_requests_total")? - self0;
    r.idle_writes = op.metric_sum("prodready_report_writes_total")? - writes1;
    r.idle_s = t0.elapsed().as_secs_f64();
    let (held, _) = list_reports(&cluster.client).await?;
    let wrong = report_mismatches(&expected_reports(&cluster.client).await?, &held);
    if wrong != 0 {
        bail!("{wrong} reports drifted from the engine's while idle");
    }
    op.check_alive()?;
    r.load.1 = loadavg();
    Ok(r)
}
