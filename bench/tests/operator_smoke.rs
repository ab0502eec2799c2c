//! The operator benchmarks (issue 7, scenarios 2, 3, 4 and 6; issue 15's reports) at 1/100 scale on a real
//! control plane, so they cannot rot. The figures are not checked against the goals (CI
//! machines vary); the scenarios' own checks are: the status converges to exactly what the
//! engine computes, the policy edit and every churned change reach the status, the API
//! server's request counter for the operator's user moves.
//!
//! Needs the binaries of `e2e/k8s-binaries.sh`; without them these tests fail (never skip).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bench::operator::{self, Cluster, OperatorCmd, Size, StatusLog};

fn operator_cmd() -> OperatorCmd {
    OperatorCmd {
        program: PathBuf::from(env!("CARGO_BIN_EXE_bench-prodready")),
    }
}

/// Runs `f` on its own runtime and does not wait for stray blocking tasks at the end (the
/// benchmark binary was seen to hang there).
fn run<F: std::future::Future<Output = ()>>(f: F) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(f);
    rt.shutdown_timeout(Duration::from_secs(2));
}

#[test]
fn cold_start_policy_edit_and_churn_at_one_hundredth() {
    run(cold_start_policy_edit_and_churn());
}

async fn cold_start_policy_edit_and_churn() {
    let t = Instant::now();
    let size = Size::scaled(0.01);
    assert_eq!(
        size,
        Size {
            deployments: 100,
            cronjobs: 20,
            namespaces: 5
        }
    );
    let cluster = Cluster::start(size, 16)
        .await
        .expect("control plane with workloads");
    assert_eq!(cluster.by_kind.get("Deployment"), Some(&100));
    assert_eq!(cluster.by_kind.get("CronJob"), Some(&20));
    assert!(cluster.by_kind.get("Service").copied().unwrap_or(0) >= 30);
    // The large scenario's LIST floor reads every page (7 objects a page here).
    let (_, objects, bytes) = cluster
        .time_paged_list(&operator::WORKLOAD_LISTS, 7)
        .await
        .expect("paged LIST of the workloads");
    assert_eq!(objects, 120, "every Deployment and CronJob, once");
    assert!(bytes > 120 * 500, "{bytes} bytes for 120 objects");
    // Its streaming-list floor reads the same objects, each once, to the end bookmark.
    let (_, streamed, stream_bytes) = cluster
        .time_streaming_list(&operator::WORKLOAD_LISTS)
        .await
        .expect("streaming list of the workloads");
    assert_eq!(streamed, 120, "every Deployment and CronJob, once");
    assert!(
        stream_bytes > 120 * 500,
        "{stream_bytes} bytes for 120 objects"
    );
    let status = StatusLog::watch(&cluster.client).await;

    // 2. Cold start: converges to the engine's exact figures; the floor and idle counts work.
    let (cold, op) = operator::cold_start(
        &cluster,
        &operator_cmd(),
        &status,
        1,
        Duration::from_secs(12),
        Duration::from_secs(60),
    )
    .await
    .expect("cold start converges");
    eprintln!(
        "cold start {:.2} s; Event backlog drained in {:.0} s; idle: {} requests by the operator's own count in {:.1} s",
        cold.converged_s, cold.settle_s, cold.idle_requests_self, cold.idle_s
    );
    assert_eq!(cold.expected.matched, 120);
    assert!(
        cold.expected.violating > 0 && cold.expected.violating < 120,
        "a mix: {:?}",
        cold.expected
    );
    assert!(cold.converged_s > 0.0 && cold.converged_s < 60.0);
    assert!(cold.list_workloads_s[0] > 0.0 && cold.list_all_s[0] > 0.0);
    assert!(cold.rss_kib > 1024, "RSS read: {} KiB", cold.rss_kib);
    assert!(
        cold.startup_requests > 0.0 && cold.idle_requests > 0.0,
        "the API server's request counter moves: {cold:?}"
    );
    assert!(cold.idle_s >= 12.0);
    // Issue 7: at most one API request per second when nothing changes (lease renewals,
    // the readiness probe of the API server, CRD discovery), once the Events are out.
    assert!(
        cold.idle_requests_self / cold.idle_s <= 1.0,
        "idle API requests: {} in {:.1} s",
        cold.idle_requests_self,
        cold.idle_s
    );

    // Issue 29: `audit --cluster` on the same cluster applies the cluster's policy and says
    // what the engine (and so the converged status) says; its time against the floor is
    // `operator-bench audit-cluster`.
    let (scan_s, report) = operator::time_scan(&operator_cmd().program, &cluster, &[])
        .await
        .expect("audit --cluster runs");
    operator::scan_matches(&report, &cold.expected).expect("the scan equals the engine");
    eprintln!("audit --cluster: {scan_s:.2} s for {}", report["summary"]);

    // 3. Policy edit: cpu-limit on makes more workloads violate; the status follows.
    let edit = operator::policy_edit(&cluster, &status, cold.expected)
        .await
        .expect("the policy edit reaches the status");
    assert!(
        edit.after.violating > edit.before.violating,
        "cpu-limit adds violations: {edit:?}"
    );
    assert!(edit.seconds < 30.0);

    // 4. Churn: 20 updates/s for 3 s; every change reaches the status.
    let churn = operator::churn(&cluster, &op, &status, size, 20, Duration::from_secs(3))
        .await
        .expect("the status catches up with the churn");
    assert_eq!(churn.changes, 60);
    assert_eq!(churn.missing, 0, "{churn:?}");
    assert_eq!(churn.lags.len(), 60);
    assert_eq!(churn.final_count.0, churn.final_count.1);
    assert_eq!(
        churn.final_count.1, 60,
        "every generated workload had its liveness probe"
    );
    assert!(churn.cpu_s > 0.0);
    // Issue 18: the churn's rounds were incremental (each evaluated only the changed
    // workloads, far fewer than a full pass would), and what they left in the status equals
    // the engine's full evaluation of the same objects.
    eprintln!(
        "churn rounds: {} incremental, {} full, {} workloads evaluated",
        churn.rounds.0, churn.rounds.1, churn.evaluated_workloads
    );
    assert!(churn.rounds.0 >= 1.0, "{churn:?}");
    assert!(
        churn.evaluated_workloads < (churn.rounds.0 + churn.rounds.1) * 120.0,
        "incremental rounds evaluate only what changed: {churn:?}"
    );
    assert_eq!(churn.final_summary.0, churn.final_summary.1, "{churn:?}");

    // Issue 15: the OpenReports CRDs appear; every matched workload gets exactly the report
    // the engine computes, and idle stays idle.
    let mut op = op;
    let rep = operator::reports(
        &cluster,
        &mut op,
        Duration::from_secs(12),
        Duration::from_secs(60),
    )
    .await
    .expect("the reports converge to the engine's");
    eprintln!(
        "reports: {} in {:.2} s, {} writes, {} objects, {} bytes; idle {} requests in {:.1} s, {} writes",
        rep.reports,
        rep.converged_s,
        rep.writes,
        rep.objects,
        rep.bytes,
        rep.idle_requests_self,
        rep.idle_s,
        rep.idle_writes
    );
    assert_eq!(rep.reports, 120, "one per matched workload");
    assert_eq!(rep.objects, 120);
    assert_eq!(rep.writes, 120.0, "one write per report, no rewrites");
    assert_eq!(rep.idle_writes, 0.0);
    assert!(
        rep.idle_requests_self / rep.idle_s <= 1.0,
        "idle API requests with reports on: {} in {:.1} s",
        rep.idle_requests_self,
        rep.idle_s
    );
    drop(op);
    eprintln!(
        "scenarios 2, 3, 4 at 1/100 scale: {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

#[test]
fn reports_cold_start_at_one_hundredth() {
    run(reports_cold_start());
}

/// Issue 15's scale scenario (`operator-bench reports`) at 1/100: the OpenReports CRDs are
/// installed before the operator starts; every matched workload's report converges exactly to
/// the engine's with one write each, storage holds exactly those objects, and idle stays idle.
async fn reports_cold_start() {
    let t = Instant::now();
    let size = Size::scaled(0.01);
    let cluster = Cluster::start(size, 16)
        .await
        .expect("control plane with workloads");
    let status = StatusLog::watch(&cluster.client).await;
    let (rep, op) = operator::reports_cold_start(
        &cluster,
        &operator_cmd(),
        &status,
        Duration::from_secs(12),
        Duration::from_secs(90),
    )
    .await
    .expect("the reports converge to the engine's");
    drop(op);
    eprintln!("reports cold start: {rep:?}");
    assert_eq!(rep.expected.matched, 120);
    assert_eq!(rep.reports, 120, "one per matched workload");
    assert!(rep.converged_s > 0.0 && rep.converged_s < 90.0);
    assert!(rep.status_s > 0.0 && rep.status_s < 90.0);
    assert_eq!(
        rep.writes_at_convergence, 120.0,
        "one write per report, no rewrites"
    );
    assert_eq!(rep.writes_total, 120.0);
    assert_eq!(rep.idle_writes, 0.0);
    assert_eq!(rep.storage_objects.0, 0.0);
    assert_eq!(
        rep.storage_objects.1, 120.0,
        "the API server's storage count"
    );
    assert_eq!(rep.listed.0, 120);
    assert!(rep.listed.1 > 120 * 1024, "about 2 KiB per report: {rep:?}");
    assert!(rep.etcd_db_bytes.1 >= rep.etcd_db_bytes.0 && rep.etcd_db_bytes.0 > 0);
    assert!(rep.idle_s >= 12.0);
    assert!(
        rep.idle_requests_self / rep.idle_s <= 1.0,
        "idle API requests with reports on: {} in {:.1} s",
        rep.idle_requests_self,
        rep.idle_s
    );
    assert!(
        (rep.idle_requests - rep.background_requests) / rep.idle_s <= 1.0,
        "idle API requests by the API server's count: {} − {} in {:.1} s",
        rep.idle_requests,
        rep.background_requests,
        rep.idle_s
    );
    assert!(rep.rss_kib.0 > 1024);
    eprintln!(
        "reports scenario at 1/100 scale: {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

#[test]
fn memory_points_at_one_hundredth() {
    run(memory_points());
}

async fn memory_points() {
    let t = Instant::now();
    let mut rss = Vec::new();
    // Issue 7's 1k/10k/50k at 1/100, plus the base.
    for n in [0, 100, 500] {
        let p = operator::memory_point(&operator_cmd(), n, 16, Duration::from_millis(500))
            .await
            .expect("converges");
        assert_eq!(p.workloads, n);
        assert!(p.rss_kib > 1024 && p.hwm_kib >= p.rss_kib, "{p:?}");
        rss.push(p.rss_kib);
    }
    eprintln!(
        "scenario 6 at 1/100 scale: {:.1} s, RSS {rss:?} KiB",
        t.elapsed().as_secs_f64()
    );
}

#[test]
fn results_sections_are_replaced_between_markers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("RESULTS.md");
    std::fs::write(
        &path,
        "# R\n\n<!-- x:begin -->\nold\n<!-- x:end -->\ntail\n",
    )
    .unwrap();
    operator::update_section(&path, "x", "new\n").unwrap();
    operator::update_section(&path, "y", "added").unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "# R\n\n<!-- x:begin -->\nnew\n<!-- x:end -->\ntail\n<!-- y:begin -->\nadded\n<!-- y:end -->\n"
    );
}
