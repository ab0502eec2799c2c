//! The operator scenarios of issue 7 (2: cold start at scale, 3: policy edit to status,
//! 4: churn, 6: memory growth) against a real control plane (the `e2e` crate's etcd +
//! kube-apiserver), with the operator as a subprocess.
//!
//! Every figure is checked against the truth: the expected `summary` is computed with the
//! prodready engine over the very objects the API server returns (listed back after creation,
//! so server-side defaults are included), in the context the operator builds (leases known,
//! ServiceMonitor/PodMonitor CRDs absent).

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use e2e::{Binaries, ControlPlane, apply_yaml, install_crd_file, repo_root};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, Resource};
use prodready::api::ProductionPolicy;
use prodready::engine::{CompiledPolicy, Context, Workload, WorkloadVerdict};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// The policy every scenario uses (`config/samples/baseline.yaml`).
pub const POLICY_FILE: &str = "config/samples/baseline.yaml";
/// Its name.
pub const POLICY: &str = "baseline";
const CRD_FILE: &str = "crds/productionpolicies.prodready.dev.yaml";
/// The rule the churn scenario breaks, one Deployment at a time (every generated workload
/// passes it, so its count rises by exactly one per change).
pub const CHURN_RULE: &str = "liveness-probe";
/// The user the operator authenticates as (a token of its own, so nothing else is it).
pub const OPERATOR_USER: &str = "system:serviceaccount:kube-system:default";

// ---------------------------------------------------------------------------------------
// The workloads
// ---------------------------------------------------------------------------------------

/// How many objects to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    /// Deployments.
    pub deployments: usize,
    /// CronJobs.
    pub cronjobs: usize,
    /// Namespaces they spread over.
    pub namespaces: usize,
}

impl Size {
    /// Issue 7's cluster (10,000 Deployments, 2,000 CronJobs, 500 namespaces) times `scale`.
    pub fn scaled(scale: f64) -> Size {
        let n = |base: f64| ((base * scale).round() as usize).max(1);
        Size {
            deployments: n(10_000.0),
            cronjobs: n(2_000.0),
            namespaces: n(500.0),
        }
    }

    /// `workloads` in all, five Deployments per CronJob, 24 workloads per namespace.
    pub fn workloads(workloads: usize) -> Size {
        let cronjobs = workloads / 6;
        Size {
            deployments: workloads - cronjobs,
            cronjobs,
            namespaces: workloads.div_ceil(24).max(1),
        }
    }

    /// Deployments + CronJobs.
    pub fn total(&self) -> usize {
        self.deployments + self.cronjobs
    }
}

fn namespace_of(i: usize, size: Size) -> String {
    format!("bench-{:03}", i % size.namespaces.max(1))
}

/// The name of the `i`-th Deployment and its namespace.
pub fn deployment_name(i: usize, size: Size) -> (String, String) {
    (namespace_of(i, size), format!("web-{i:05}"))
}

/// The generated objects: namespaces, then Deployments (with a Service and, when replicated,
/// a PodDisruptionBudget for every third), then CronJobs. Deterministic: a mix of compliant
/// and violating settings drawn from a fixed seed; every workload has its liveness probe.
pub fn generate(size: Size) -> (Vec<Value>, Vec<Value>) {
    let mut rng = prodready::corpus::Rng::new(7);
    let namespaces = (0..size.namespaces)
        .map(|n| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("bench-{n:03}")}}))
        .collect();
    let mut objects = Vec::with_capacity(size.total() * 2);
    for i in 0..size.deployments {
        let (ns, name) = deployment_name(i, size);
        let good = rng.chance(60);
        let defect = |rng: &mut prodready::corpus::Rng, p| !good && rng.chance(p);
        let replicas = if defect(&mut rng, 25) { 1 } else { 2 + i % 2 };
        let tag = if defect(&mut rng, 25) {
            "latest".to_owned()
        } else {
            format!("1.{}.{}", i % 30, i % 7)
        };
        let mut container = json!({
            "name": "app",
            "image": format!("registry.example.com/team/app:{tag}"),
            "ports": [{"name": "http", "containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/health/live", "port": "http"}, "periodSeconds": 10},
        });
        if !defect(&mut rng, 30) {
            container["readinessProbe"] =
                json!({"httpGet": {"path": "/health/ready", "port": "http"}});
        }
        if !defect(&mut rng, 30) {
            let mut resources = json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}});
            if i % 4 == 0 {
                resources["limits"]["cpu"] = json!("500m");
            }
            container["resources"] = resources;
        }
        if !defect(&mut rng, 30) {
            container["lifecycle"] = json!({"preStop": {"sleep": {"seconds": 5}}});
        }
        objects.push(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name, "team": format!("t{}", i % 17)}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"terminationGracePeriodSeconds": 30, "containers": [container]},
                },
            },
        }));
        if i % 3 == 0 {
            objects.push(json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": ns},
                // Headless: the test control plane's service range is a /24.
                "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
            }));
            if replicas > 1 {
                objects.push(json!({
                    "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": name}}},
                }));
            }
        }
    }
    for j in 0..size.cronjobs {
        let ns = namespace_of(j, size);
        let name = format!("job-{j:05}");
        let policy = if rng.chance(70) { "Forbid" } else { "Allow" };
        let mut container = json!({
            "name": "job",
            "image": format!("registry.example.com/team/job:2.{}.0", j % 13),
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        });
        if rng.chance(10) {
            container["image"] = json!("registry.example.com/team/job:latest");
        }
        objects.push(json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "schedule": format!("{} 3 * * *", j % 60),
                "concurrencyPolicy": policy,
                "startingDeadlineSeconds": 300,
                "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [container]}}}},
            },
        }));
    }
    (namespaces, objects)
}

fn resource_of(kind: &str) -> anyhow::Result<ApiResource> {
    Ok(match kind {
        "Namespace" => ApiResource::erase::<Namespace>(&()),
        "Deployment" => ApiResource::erase::<Deployment>(&()),
        "CronJob" => ApiResource::erase::<CronJob>(&()),
        "Service" => ApiResource::erase::<Service>(&()),
        "PodDisruptionBudget" => ApiResource::erase::<PodDisruptionBudget>(&()),
        other => bail!("no resource for kind {other}"),
    })
}

/// Creates the objects with `concurrency` requests in flight; returns how many were created.
pub async fn create_all(
    client: &Client,
    objects: Vec<Value>,
    concurrency: usize,
) -> anyhow::Result<usize> {
    let n = objects.len();
    futures::stream::iter(objects.into_iter().map(|v| {
        let client = client.clone();
        async move {
            let kind = v["kind"].as_str().unwrap_or_default().to_owned();
            let ar = resource_of(&kind)?;
            let obj: DynamicObject = serde_json::from_value(v)?;
            let api: Api<DynamicObject> = match obj.metadata.namespace.as_deref() {
                Some(ns) => Api::namespaced_with(client, ns, &ar),
                None => Api::all_with(client, &ar),
            };
            let name = obj.metadata.name.clone().unwrap_or_default();
            api.create(&PostParams::default(), &obj)
                .await
                .with_context(|| format!("creating {kind} {name}"))?;
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(concurrency.max(1))
    .try_collect::<Vec<()>>()
    .await?;
    Ok(n)
}

async fn list_all<K>(client: &Client) -> anyhow::Result<Vec<K>>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    let mut out = Vec::new();
    let mut lp = ListParams::default().limit(500);
    loop {
        let page = api.list(&lp).await?;
        out.extend(page.items);
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => return Ok(out),
        }
    }
}

/// The summary the status must show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// `summary.matched`.
    pub matched: u32,
    /// `summary.violating`.
    pub violating: u32,
    /// `summary.compliant`.
    pub compliant: u32,
    /// `summary.unknown`.
    pub unknown: u32,
    /// `rules[CHURN_RULE].violations`.
    pub churn_rule: u32,
}

/// Evaluates the policy as it is in the API server over the workloads as they are there, in
/// the operator's context (leases known; ServiceMonitor/PodMonitor CRDs not installed).
pub async fn expected(client: &Client) -> anyhow::Result<(Expected, i64)> {
    let policy = Api::<ProductionPolicy>::all(client.clone())
        .get(POLICY)
        .await?;
    let generation = policy.metadata.generation.unwrap_or_default();
    let compiled = CompiledPolicy::compile(&policy, &prodready::rules::CATALOG)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut ctx = Context::default();
    ctx.set_leases_known();
    ctx.set_service_monitors_unavailable("not installed");
    ctx.set_pod_monitors_unavailable("not installed");
    for ns in Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await?
    {
        let labels = ns.metadata.labels.clone().unwrap_or_default();
        ctx.add_namespace(ns.metadata.name.unwrap_or_default(), labels);
    }
    for s in list_all::<Service>(client).await? {
        ctx.add_service(Arc::new(s));
    }
    for p in list_all::<PodDisruptionBudget>(client).await? {
        ctx.add_pdb(Arc::new(p));
    }
    let mut workloads: Vec<Workload> = list_all::<Deployment>(client)
        .await?
        .into_iter()
        .map(Workload::from)
        .collect();
    workloads.extend(
        list_all::<CronJob>(client)
            .await?
            .into_iter()
            .map(Workload::from),
    );
    let now = Timestamp::now();
    let mut e = Expected::default();
    for w in &workloads {
        if !compiled.matches(w, &ctx) {
            continue;
        }
        e.matched += 1;
        let eval = compiled.evaluate(w, &ctx, now);
        match eval.verdict() {
            WorkloadVerdict::Violating => e.violating += 1,
            WorkloadVerdict::Compliant => e.compliant += 1,
            WorkloadVerdict::Unknown => e.unknown += 1,
            WorkloadVerdict::Exempt => {}
        }
        if eval.results.iter().any(|r| {
            r.rule.id == CHURN_RULE && matches!(r.outcome, prodready::engine::Outcome::Fail(_))
        }) {
            e.churn_rule += 1;
        }
    }
    Ok((e, generation))
}

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

/// A running `prodready run`; killed on drop.
pub struct Operator {
    child: Child,
    /// Its admin address (`/metrics`, `/health/ready`).
    pub admin: SocketAddr,
    /// When it was spawned.
    pub started: Instant,
    /// Its log file.
    pub log: PathBuf,
}

impl Operator {
    /// Starts `prodready run` with the production defaults (webhook off: it is measured
    /// on its own in scenario 5).
    pub fn start(cmd: &OperatorCmd, kubeconfig: &Path, dir: &Path) -> anyhow::Result<Operator> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let admin: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let log = dir.join("operator.log");
        let file = std::fs::File::create(&log)?;
        let started = Instant::now();
        let child = Command::new(&cmd.program)
            .args(["run", "--kubeconfig"])
            .arg(kubeconfig)
            .args([
                "--admin-addr",
                &admin.to_string(),
                "--identity",
                "bench",
                "--lease-namespace",
                "default",
            ])
            .args(["--webhook-enabled", "false", "--log-format", "json"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .with_context(|| format!("starting {}", cmd.program.display()))?;
        Ok(Operator {
            child,
            admin,
            started,
            log,
        })
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if it has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            bail!(
                "the operator exited with {status}; log tail:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
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
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(self.admin)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        Ok(body
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// The 1-, 5- and 15-minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
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

/// Median of a slice (0 when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() { 0.0 } else { s[s.len() / 2] }
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
    let dir = cluster.cp.dir().context("local control plane")?;
    let before = cluster.apiserver_requests().await?;
    let mut op = Operator::start(cmd, &cluster.operator_kubeconfig, dir)?;
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
    // Idle: nothing changes. First the Event backlog drains (one Event per violating
    // workload, at `--max-events-per-second`): wait until the operator's own request counter
    // grows by at most 1/s over 5 s (at most 15 minutes), then count.
    let settle0 = Instant::now();
    let mut last = op.metric_sum("dependency_requests_total")?;
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = op.metric_sum("dependency_requests_total")?;
        if now - last <= 5.0 || settle0.elapsed() > Duration::from_secs(900) {
            break;
        }
        last = now;
    }
    r.settle_s = settle0.elapsed().as_secs_f64();
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
    /// Load average before and after.
    pub load: (String, String),
}

/// Percentile (0..=100) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
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
    let final_count = status.all().last().map_or(0, |o| o.churn_rule);
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
        load: (load0, loadavg()),
    })
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
    let dir = cluster.cp.dir().context("local control plane")?;
    let mut op = Operator::start(cmd, &cluster.operator_kubeconfig, dir)?;
    let timeout = Duration::from_secs(60 + (workloads / 200) as u64);
    let reached = status
        .wait(op.started, timeout, |o| reflects(o, &expected, generation))
        .await;
    op.check_alive()?;
    let reached = reached?;
    tokio::time::sleep(settle).await;
    let (rss_kib, hwm_kib) = op.rss_kib()?;
    Ok(MemoryPoint {
        workloads: size.total(),
        others: cluster.objects - size.total(),
        converged_s: reached.at.duration_since(op.started).as_secs_f64(),
        rss_kib,
        hwm_kib,
        load: loadavg(),
    })
}

// ---------------------------------------------------------------------------------------
// RESULTS.md
// ---------------------------------------------------------------------------------------

/// Replaces the text between `<!-- {marker}:begin -->` and `<!-- {marker}:end -->` in
/// `path` (appending the section when the markers are absent).
pub fn update_section(path: &Path, marker: &str, body: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (begin, end) = (
        format!("<!-- {marker}:begin -->"),
        format!("<!-- {marker}:end -->"),
    );
    let section = format!("{begin}\n{}\n{end}", body.trim_end());
    let new = match (text.find(&begin), text.find(&end)) {
        (Some(b), Some(e)) if e > b => format!("{}{section}{}", &text[..b], &text[e + end.len()..]),
        _ => format!("{}\n{section}\n", text.trim_end()),
    };
    std::fs::write(path, new)?;
    Ok(())
}
