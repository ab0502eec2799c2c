//! Issue 18's 100,000-workload scenario: 80,000 Deployments and 20,000 CronJobs (one Job
//! each) over 2,000 namespaces, a Service for every third Deployment and a PDB for the
//! replicated ones among them, on the same local control plane as the other scenarios, with
//! the operator run with the chart's flags. One run gives: the memory per workload (with a
//! 0- and a 10,000-workload point on their own fresh control planes, to check it is linear),
//! the LIST floor, the cold start to the exact status, churn at a fixed rate, and the idle
//! API requests.
//!
//! The Event backlog after a cold start (one Event per violating workload, at the chart's 50
//! per second) takes tens of minutes at this size, so the churn and idle windows run while it
//! drains; idle requests are therefore counted without the `events` resource, and the Events
//! created meanwhile are reported beside them.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use kube::api::ListParams;

use super::*;

/// The 100,000-workload cluster.
pub const LARGE: Size = Size {
    deployments: 80_000,
    cronjobs: 20_000,
    namespaces: 2_000,
};

/// The large scenario's figures.
#[derive(Clone, Debug, Default)]
pub struct LargeRun {
    /// The memory points at 0 and 10,000 workloads (fresh control planes).
    pub small: Vec<MemoryPoint>,
    /// Objects created, by kind, and how long that took (not a figure).
    pub objects: usize,
    /// Seconds creating them.
    pub create_s: f64,
    /// The expected summary.
    pub expected: Expected,
    /// Paged LIST of the two workload kinds (Deployments, CronJobs), seconds per run.
    pub list_workloads_s: Vec<f64>,
    /// Paged LIST of every kind the operator's caches hold objects of here, seconds per run.
    pub list_all_s: Vec<f64>,
    /// Objects and bytes the last run of the full LIST read.
    pub list_all_size: (usize, u64),
    /// The same collections as streaming lists, seconds per run.
    pub stream_all_s: Vec<f64>,
    /// Seconds from the operator's start to the exact status.
    pub converged_s: f64,
    /// Operator CPU seconds until then.
    pub converged_cpu_s: f64,
    /// VmRSS / VmHWM 5 s after convergence, KiB.
    pub rss_kib: (u64, u64),
    /// The heap profile then.
    pub heap: Option<serde_json::Value>,
    /// Churn figures.
    pub churn: Churn,
    /// Idle window: API server requests with the operator running minus the background,
    /// `events` excluded, and the Events created meanwhile.
    pub idle_requests: f64,
    /// The background over a window of the same length before the operator started.
    pub background_requests: f64,
    /// Event creations during the idle window (the backlog draining).
    pub idle_events: f64,
    /// Idle window length, seconds.
    pub idle_s: f64,
    /// Operator CPU during the idle window, seconds.
    pub idle_cpu_s: f64,
    /// Load averages: before the floor, at convergence, at the end.
    pub load: [String; 3],
}

/// The collections the operator's caches fill from, by LIST path: the two workload kinds
/// first, then the context.
pub const WORKLOAD_LISTS: [&str; 2] = ["/apis/apps/v1/deployments", "/apis/batch/v1/cronjobs"];
/// The context kinds this cluster holds objects of (Leases, HPAs, NetworkPolicies and
/// monitors are empty here).
pub const CONTEXT_LISTS: [&str; 4] = [
    "/apis/batch/v1/jobs",
    "/api/v1/services",
    "/apis/policy/v1/poddisruptionbudgets",
    "/api/v1/namespaces",
];

/// The LIST floor's page size: kube's default (`watcher::Config::page_size`), the fastest here.
/// When the API server does not support streaming lists the operator reads smaller pages
/// (`prodready::controller::LIST_PAGE`, for memory), so the floor is what a plain client pays,
/// not what the operator chose to pay.
pub const PAGE: usize = 500;

/// One page of a LIST as read for the floor: only what paging needs is decoded.
#[derive(serde::Deserialize)]
struct Page {
    metadata: PageMeta,
    items: Vec<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct PageMeta {
    #[serde(rename = "continue", default)]
    next: Option<String>,
}

/// Reads every collection in `paths` at the same time with `read` (objects and bytes of one
/// collection). Returns seconds until the last one ended, and the objects and bytes of all.
async fn timed_at_once<F, Fut>(paths: &[&str], read: F) -> anyhow::Result<(f64, usize, u64)>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(usize, u64)>>,
{
    let started = Instant::now();
    let results = futures::future::join_all(paths.iter().map(|p| read((*p).to_owned()))).await;
    let (mut objects, mut bytes) = (0, 0);
    for r in results {
        let (o, b) = r?;
        objects += o;
        bytes += b;
    }
    Ok((started.elapsed().as_secs_f64(), objects, bytes))
}

impl Cluster {
    /// The LIST floor: every collection in `paths` read to its end at the same time, in pages
    /// of `page` (kube's reflectors read pages of 500 by default), the bytes received but not
    /// decoded into objects (only each page's continue token). Returns seconds, objects and
    /// bytes.
    pub async fn time_paged_list(
        &self,
        paths: &[&str],
        page: usize,
    ) -> anyhow::Result<(f64, usize, u64)> {
        let one = |path: String| async move {
            let (mut objects, mut bytes) = (0usize, 0u64);
            let request = kube::core::Request::new(&path);
            let mut lp = ListParams::default().limit(u32::try_from(page)?);
            loop {
                let list = request.list(&lp)?;
                let uri = list.uri().to_string();
                let body = self
                    .client
                    .request_text(list)
                    .await
                    .with_context(|| format!("LIST {uri}"))?;
                bytes += body.len() as u64;
                let page: Page = serde_json::from_str(&body)
                    .with_context(|| format!("LIST {uri}: not a list"))?;
                objects += page.items.len();
                match page.metadata.next.filter(|c| !c.is_empty()) {
                    Some(c) => lp = lp.continue_token(&c),
                    None => return anyhow::Ok((objects, bytes)),
                }
            }
        };
        timed_at_once(paths, one).await
    }

    /// The streaming-list floor: every collection in `paths` read at the same time as a
    /// streaming list (`sendInitialEvents`, what the operator does on an API server that
    /// supports it), each to the bookmark that ends its initial events; the bytes received but
    /// not decoded. Returns seconds, objects and bytes.
    pub async fn time_streaming_list(&self, paths: &[&str]) -> anyhow::Result<(f64, usize, u64)> {
        use futures::{AsyncBufReadExt as _, TryStreamExt as _};
        let one = |path: String| async move {
            let (mut objects, mut bytes) = (0usize, 0u64);
            let request = kube::core::Request::new(&path)
                .watch(&kube::api::WatchParams::streaming_lists().timeout(290), "0")?;
            let uri = request.uri().to_string();
            let mut lines = std::pin::pin!(
                self.client
                    .request_stream(request)
                    .await
                    .with_context(|| format!("WATCH {uri}"))?
                    .lines()
            );
            while let Some(line) = lines
                .try_next()
                .await
                .with_context(|| format!("WATCH {uri}"))?
            {
                bytes += line.len() as u64 + 1;
                if line.starts_with(r#"{"type":"BOOKMARK""#) {
                    if line.contains(r#""k8s.io/initial-events-end":"true""#) {
                        return anyhow::Ok((objects, bytes));
                    }
                } else {
                    objects += 1;
                }
            }
            anyhow::bail!("WATCH {uri} ended before the bookmark that ends its initial events")
        };
        timed_at_once(paths, one).await
    }

    /// The API server's request count without the requests on `resource` (and that count).
    pub async fn apiserver_requests_split(&self, resource: &str) -> anyhow::Result<(f64, f64)> {
        let text = self
            .client
            .request_text(http::Request::get("/metrics").body(Vec::new())?)
            .await?;
        let needle = format!("resource=\"{resource}\"");
        let (mut rest, mut on) = (0.0, 0.0);
        for l in text
            .lines()
            .filter(|l| l.starts_with("apiserver_request_total{"))
        {
            let Some(v) = l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            if l.contains(&needle) {
                on += v;
            } else {
                rest += v;
            }
        }
        Ok((rest, on))
    }
}

/// Runs the whole scenario. `list_runs` timed runs of each LIST; `idle` and `churn` windows.
pub async fn large(
    cmd: &OperatorCmd,
    concurrency: usize,
    list_runs: usize,
    idle: Duration,
    rate: u64,
    churn_for: Duration,
) -> anyhow::Result<LargeRun> {
    let mut r = LargeRun::default();
    for n in [0, 10_000] {
        eprintln!("large: memory point at {n} workloads…");
        let p = memory_point(cmd, n, concurrency, Duration::from_secs(5)).await?;
        eprintln!("  {} KiB", p.rss_kib);
        r.small.push(p);
    }
    eprintln!("large: filling a fresh control plane with {LARGE:?}…");
    let cluster = Cluster::start(LARGE, concurrency).await?;
    r.objects = cluster.objects;
    r.create_s = cluster.create_seconds;
    eprintln!(
        "  {} objects in {:.0} s",
        cluster.objects, cluster.create_seconds
    );
    let status = StatusLog::watch(&cluster.client).await;
    let (expected, generation) = expected(&cluster.client).await?;
    r.expected = expected;
    r.load[0] = loadavg();
    let all: Vec<&str> = WORKLOAD_LISTS
        .iter()
        .chain(&CONTEXT_LISTS)
        .copied()
        .collect();
    cluster.time_paged_list(&all, PAGE).await?; // warm the API server's watch cache and the page path
    for _ in 0..list_runs.max(1) {
        r.list_workloads_s
            .push(cluster.time_paged_list(&WORKLOAD_LISTS, PAGE).await?.0);
        let (s, objects, bytes) = cluster.time_paged_list(&all, PAGE).await?;
        r.list_all_s.push(s);
        r.list_all_size = (objects, bytes);
        r.stream_all_s
            .push(cluster.time_streaming_list(&all).await?.0);
    }
    eprintln!(
        "  floor {:?} / {:?}; streaming {:?}",
        r.list_workloads_s, r.list_all_s, r.stream_all_s
    );
    let (bg0, _) = cluster.apiserver_requests_split("events").await?;
    tokio::time::sleep(idle).await;
    r.background_requests = cluster.apiserver_requests_split("events").await?.0 - bg0;

    let mut op = Operator::start(cmd, &cluster).await?;
    let timeout = Duration::from_secs(120 + LARGE.total() as u64 / 100);
    let reached = tokio::select! {
        r = status.wait(op.started, timeout, |o| reflects(o, &expected, generation)) => r,
        () = async {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if op.check_alive().is_err() { break; }
            }
        } => Err(anyhow::anyhow!("the operator exited")),
    };
    op.check_alive()?;
    let reached = reached.context("the operator did not converge")?;
    r.converged_s = reached.at.duration_since(op.started).as_secs_f64();
    r.converged_cpu_s = op.cpu_seconds()?;
    r.load[1] = loadavg();
    eprintln!("  converged in {:.1} s", r.converged_s);
    tokio::time::sleep(Duration::from_secs(5)).await;
    r.rss_kib = op.rss_kib()?;
    r.heap = op.heap_profile().ok();

    r.churn = churn(&cluster, &op, &status, LARGE, rate, churn_for).await?;
    eprintln!(
        "  churn: {} changes, p99 {:.3} s",
        r.churn.changes,
        percentile(&r.churn.lags, 99.0)
    );
    // Idle: wait for the churn's rounds to end, then count.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ((req0, ev0), cpu0, t0) = (
        cluster.apiserver_requests_split("events").await?,
        op.cpu_seconds()?,
        Instant::now(),
    );
    tokio::time::sleep(idle).await;
    let (req1, ev1) = cluster.apiserver_requests_split("events").await?;
    r.idle_requests = req1 - req0;
    r.idle_events = ev1 - ev0;
    r.idle_cpu_s = op.cpu_seconds()? - cpu0;
    r.idle_s = t0.elapsed().as_secs_f64();
    op.check_alive()?;
    r.load[2] = loadavg();
    Ok(r)
}
