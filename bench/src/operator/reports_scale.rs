//! Issue 15 at scale: the operator's cold start with the official OpenReports CRDs installed
//! before it starts (`--reports openreports`, the default). Measures the time from process
//! start until every matched workload's report equals what the engine builds (and the policy
//! status is exact), the report writes, the API server's request count while idle after
//! convergence, the report objects in storage (the API server's `apiserver_resource_objects`,
//! the JSON as served, and the etcd data file before and after) and the operator's memory.
//!
//! The reports are followed through a watch held by this tool (started before the operator,
//! so its cost is part of the background window subtracted from the idle count).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use prodready::reports::Report;

use super::*;

/// The figures of the reports scenario.
#[derive(Clone, Debug, Default)]
pub struct ReportsColdStart {
    /// The expected policy status (engine).
    pub expected: Expected,
    /// Reports the engine says must exist (one per matched workload with a result to report).
    pub reports: usize,
    /// Seconds from process start to the policy status showing `expected` exactly.
    pub status_s: f64,
    /// Seconds from process start to every report being exactly the engine's (and no other).
    pub converged_s: f64,
    /// Operator CPU seconds until then.
    pub converged_cpu_s: f64,
    /// Report writes (`prodready_report_writes_total`, every op and result) until then.
    pub writes_at_convergence: f64,
    /// Report writes from start to the end of the idle window.
    pub writes_total: f64,
    /// Seconds after convergence until the operator's request rate settled (Event backlog).
    pub settle_s: f64,
    /// The idle window, seconds.
    pub idle_s: f64,
    /// Requests the API server served in the idle window with the operator running…
    pub idle_requests: f64,
    /// …and in a window of the same length before the operator started.
    pub background_requests: f64,
    /// The operator's own count of its (non-watch) requests in the idle window.
    pub idle_requests_self: f64,
    /// Report writes in the idle window.
    pub idle_writes: f64,
    /// The API server's count of stored reports ([`OBJECTS_METRIC`]) before the operator
    /// started and after the idle window.
    pub storage_objects: (f64, f64),
    /// `apiserver_storage_size_bytes` (the whole etcd database as the API server reads it;
    /// 0 when this build does not serve it), at the same two points.
    pub storage_size_bytes: (f64, f64),
    /// The etcd data file (`member/snap/db`) in bytes before the operator started and after
    /// the idle window (it also holds the Events written meanwhile and the status).
    pub etcd_db_bytes: (u64, u64),
    /// Report objects listed after the idle window, and their JSON size as served
    /// (managedFields included; custom resources are stored as JSON).
    pub listed: (usize, usize),
    /// VmRSS and VmHWM after the idle window, KiB.
    pub rss_kib: (u64, u64),
    /// Load average before and after.
    pub load: (String, String),
}

type Key = (String, String);

fn key_of(r: &Report) -> Key {
    (
        r.metadata.namespace.clone().unwrap_or_default(),
        r.metadata.name.clone().unwrap_or_default(),
    )
}

/// The keys of the reports that are not yet what the engine expects (expected but missing
/// or different, or held but not expected), kept by a watch as events arrive, so checking
/// for convergence costs nothing while 12,000 reports are being written.
struct HeldReports {
    wrong: Arc<Mutex<Option<HashSet<Key>>>>,
    /// The watch task, stopped when this is dropped (before the control plane goes).
    task: tokio::task::AbortHandle,
}

impl Drop for HeldReports {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HeldReports {
    fn watch(client: &kube::Client, expected: &[Report]) -> HeldReports {
        let want: HashMap<Key, Report> = expected.iter().map(|r| (key_of(r), r.clone())).collect();
        let wrong_keys = Arc::new(Mutex::new(None));
        let api: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &prodready::controller::reports::api_resource(
                prodready::reports::ReportApi::OpenReports,
            ),
        );
        let wrong = wrong_keys.clone();
        let task = tokio::spawn(async move {
            let decode = |o: DynamicObject| -> Option<Report> {
                serde_json::from_value(serde_json::to_value(o).ok()?).ok()
            };
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            let mut initial: HashSet<Key> = want.keys().cloned().collect();
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(watcher::Event::Init) => initial = want.keys().cloned().collect(),
                    Ok(watcher::Event::InitApply(o)) => {
                        if let Some(r) = decode(o) {
                            let k = key_of(&r);
                            match want.get(&k) {
                                Some(w) if w.same_content(&r) => initial.remove(&k),
                                _ => initial.insert(k),
                            };
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        *wrong.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(std::mem::take(&mut initial));
                    }
                    Ok(watcher::Event::Apply(o)) => {
                        if let Some(r) = decode(o) {
                            let k = key_of(&r);
                            let ok = want.get(&k).is_some_and(|w| w.same_content(&r));
                            if let Some(set) =
                                wrong.lock().unwrap_or_else(|e| e.into_inner()).as_mut()
                            {
                                if ok {
                                    set.remove(&k);
                                } else {
                                    set.insert(k);
                                }
                            }
                        }
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        if let Some(r) = decode(o) {
                            let k = key_of(&r);
                            if let Some(set) =
                                wrong.lock().unwrap_or_else(|e| e.into_inner()).as_mut()
                            {
                                if want.contains_key(&k) {
                                    set.insert(k);
                                } else {
                                    set.remove(&k);
                                }
                            }
                        }
                    }
                    Err(e) => eprintln!("  watch of reports: {e}"),
                }
            }
        });
        HeldReports {
            wrong: wrong_keys,
            task: task.abort_handle(),
        }
    }

    /// Reports not yet exact (`None` before the watch's first list completed).
    fn wrong(&self) -> Option<usize> {
        self.wrong
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(HashSet::len)
    }
}

/// Sums the series of `name` in a Prometheus text whose line satisfies `pick`.
fn metric_sum_with(text: &str, name: &str, pick: impl Fn(&str) -> bool) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && pick(l))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

/// The API server's count of stored OpenReports reports: `apiserver_resource_objects`
/// (`group="openreports.io",resource="reports"`, since Kubernetes 1.34), or the deprecated
/// `apiserver_storage_objects` (`resource="reports.openreports.io"`) where that is absent.
fn report_objects(metrics: &str) -> f64 {
    let pick = |l: &str| {
        l.contains("resource=\"reports.openreports.io\"")
            || (l.contains("group=\"openreports.io\"") && l.contains("resource=\"reports\""))
    };
    let served = |name: &str| {
        metrics
            .lines()
            .any(|l| l.starts_with(name) && l[name.len()..].starts_with('{') && pick(l))
    };
    let name = if served(OBJECTS_METRIC) {
        OBJECTS_METRIC
    } else {
        "apiserver_storage_objects"
    };
    metric_sum_with(metrics, name, pick)
}

/// The metric the figures name.
pub const OBJECTS_METRIC: &str = "apiserver_resource_objects";

async fn apiserver_metrics(cluster: &Cluster) -> anyhow::Result<String> {
    Ok(cluster
        .client
        .request_text(http::Request::get("/metrics").body(Vec::new())?)
        .await?)
}

fn etcd_db_bytes(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("etcd/member/snap/db")).map_or(0, |m| m.len())
}

/// The reports scenario on a filled cluster (no operator yet): installs the OpenReports CRDs,
/// measures a background window, starts the operator and measures. Returns the operator.
pub async fn reports_cold_start(
    cluster: &Cluster,
    cmd: &OperatorCmd,
    status: &StatusLog,
    idle: Duration,
    converge_timeout: Duration,
) -> anyhow::Result<(ReportsColdStart, Operator)> {
    let mut r = ReportsColdStart {
        load: (loadavg(), String::new()),
        ..ReportsColdStart::default()
    };
    e2e::install_openreports_crds(&cluster.client).await?;
    let (expected_status, generation) = expected(&cluster.client).await?;
    r.expected = expected_status;
    let expected = expected_reports(&cluster.client).await?;
    r.reports = expected.len();
    let held = HeldReports::watch(&cluster.client, &expected);
    let dir = cluster.cp.dir().context("local control plane")?;
    // The background: the API server's own loopback controllers, this tool's scrapes and its
    // watches of the policy and the reports.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bg0 = cluster.apiserver_requests().await?;
    tokio::time::sleep(idle).await;
    r.background_requests = cluster.apiserver_requests().await? - bg0;
    let m = apiserver_metrics(cluster).await?;
    r.storage_objects.0 = report_objects(&m);
    r.storage_size_bytes.0 = metric_sum_with(&m, "apiserver_storage_size_bytes", |_| true);
    r.etcd_db_bytes.0 = etcd_db_bytes(dir);

    let mut op = Operator::start(cmd, cluster).await?;
    let mut status_at: Option<f64> = None;
    loop {
        op.check_alive()?;
        if status_at.is_none()
            && let Some(o) = status
                .all()
                .iter()
                .find(|o| o.at >= op.started && reflects(o, &r.expected, generation))
        {
            status_at = Some(o.at.duration_since(op.started).as_secs_f64());
        }
        if held.wrong() == Some(0) {
            r.converged_s = op.started.elapsed().as_secs_f64();
            r.converged_cpu_s = op.cpu_seconds()?;
            r.writes_at_convergence = op.metric_sum("prodready_report_writes_total")?;
            break;
        }
        if op.started.elapsed() > converge_timeout {
            bail!(
                "reports did not converge in {converge_timeout:?}: {} of {} expected reports missing, different or extra",
                held.wrong()
                    .map_or_else(|| "(watch not listed)".to_owned(), |n| n.to_string()),
                expected.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status_wait = converge_timeout.saturating_sub(op.started.elapsed());
    r.status_s = match status_at {
        Some(s) => s,
        None => {
            let o = status
                .wait(op.started, status_wait, |o| {
                    reflects(o, &r.expected, generation)
                })
                .await?;
            o.at.duration_since(op.started).as_secs_f64()
        }
    };
    eprintln!(
        "  reports exact after {:.2} s ({} writes), status after {:.2} s",
        r.converged_s, r.writes_at_convergence, r.status_s
    );
    // Settle as scenario 2 does: the Event backlog drains at `--max-events-per-second`.
    r.settle_s = op.settle_event_backlog().await?;
    let (req0, self0, writes0, t0) = (
        cluster.apiserver_requests().await?,
        op.metric_sum("dependency_requests_total")?,
        op.metric_sum("prodready_report_writes_total")?,
        Instant::now(),
    );
    tokio::time::sleep(idle).await;
    r.idle_requests = cluster.apiserver_requests().await? - req0;
    r.idle_requests_self = op.metric_sum("dependency_requests_total")? - self0;
    let writes1 = op.metric_sum("prodready_report_writes_total")?;
    r.idle_writes = writes1 - writes0;
    r.writes_total = writes1;
    r.idle_s = t0.elapsed().as_secs_f64();
    r.rss_kib = op.rss_kib()?;
    let (listed, bytes) = list_reports(&cluster.client).await?;
    r.listed = (listed.len(), bytes);
    // The API server refreshes its storage object counts periodically (about once a minute):
    // read until the count is the listed one, for at most 90 s.
    let read0 = Instant::now();
    loop {
        let m = apiserver_metrics(cluster).await?;
        r.storage_objects.1 = report_objects(&m);
        r.storage_size_bytes.1 = metric_sum_with(&m, "apiserver_storage_size_bytes", |_| true);
        if r.storage_objects.1 as usize == r.listed.0 || read0.elapsed() > Duration::from_secs(90) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    r.etcd_db_bytes.1 = etcd_db_bytes(dir);
    drop(held);
    if r.storage_objects.1 as usize != r.listed.0 {
        let m = apiserver_metrics(cluster).await?;
        let lines: Vec<&str> = m
            .lines()
            .filter(|l| l.contains("_objects{") && l.contains("report"))
            .collect();
        eprintln!(
            "  {OBJECTS_METRIC} did not reach {} in 90 s; the report series: {lines:?}",
            r.listed.0
        );
    }
    let wrong = report_mismatches(&expected_reports(&cluster.client).await?, &listed);
    if wrong != 0 {
        bail!("{wrong} reports drifted from the engine's while idle");
    }
    op.check_alive()?;
    r.load.1 = loadavg();
    Ok((r, op))
}
