//! Issue 29 item 4: `prodready audit --cluster` (the read-only live scan) against the LIST
//! floor of the same control plane. The cluster is scenario 2's (10,000 Deployments and 2,000
//! CronJobs at scale 1, with their Jobs, Services and PDBs, and the baseline policy); the scan
//! runs as a subprocess with the operator's kubeconfig, applies the cluster's policy, and its
//! report must equal the engine's evaluation of the same objects ([`expected`]) before its
//! time counts.

use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::*;

/// The scan's figures.
#[derive(Clone, Debug, Default)]
pub struct AuditScan {
    /// What the engine says over the objects as the API server returns them.
    pub expected: Expected,
    /// The paged LIST floor (every collection the scan fills its stores from that holds
    /// objects here, read at once, pages of [`PAGE`]), seconds per run.
    pub list_all_s: Vec<f64>,
    /// Objects and bytes the floor read.
    pub list_all_size: (usize, u64),
    /// The same collections as streaming lists, seconds per run.
    pub stream_all_s: Vec<f64>,
    /// Scenario 2's floor for the same kinds: `kubectl get <kinds> -A -o json > /dev/null`
    /// (decoding and printing included), seconds per run.
    pub kubectl_s: Vec<f64>,
    /// `prodready audit --cluster -o json`, wall seconds per run (process start to exit).
    pub scan_s: Vec<f64>,
    /// The last scan's summary.
    pub summary: Value,
}

/// The kinds of the floor, as `kubectl get` names them.
pub const KUBECTL_KINDS: &str =
    "deployments,cronjobs,jobs,services,poddisruptionbudgets,namespaces";

/// Runs `program audit --cluster` against `cluster` with the operator's kubeconfig and
/// `extra` flags: wall seconds and the JSON report.
pub async fn time_scan(
    program: &std::path::Path,
    cluster: &Cluster,
    extra: &[&str],
) -> anyhow::Result<(f64, Value)> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(["audit", "--cluster", "--kubeconfig"])
        .arg(&cluster.operator_kubeconfig)
        .args(["-o", "json", "--fail-on", "none"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let out = cmd
        .output()
        .await
        .with_context(|| format!("run {}", program.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "{} audit --cluster failed ({}): {}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report: Value =
        serde_json::from_slice(&out.stdout).context("audit --cluster: not a JSON report")?;
    Ok((seconds, report))
}

/// Whether a scan's JSON report says what the engine says.
pub fn scan_matches(report: &Value, e: &Expected) -> anyhow::Result<()> {
    let s = &report["summary"];
    let n = |k: &str| {
        s[k].as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(u32::MAX)
    };
    let got = (n("workloads"), n("compliant"), n("violating"), n("unknown"));
    let want = (e.matched, e.compliant, e.violating, e.unknown);
    if got != want {
        bail!(
            "the scan says (workloads, compliant, violating, unknown) = {got:?}, the engine {want:?}"
        );
    }
    if report["policies"] != serde_json::json!([POLICY]) {
        bail!(
            "the scan applied {} instead of the cluster's policy",
            report["policies"]
        );
    }
    Ok(())
}

/// Times the floor and `runs` scans on `cluster` (already filled), each scan checked against
/// the engine.
pub async fn audit_scan(
    program: &std::path::Path,
    cluster: &Cluster,
    runs: usize,
    extra: &[&str],
) -> anyhow::Result<AuditScan> {
    let mut r = AuditScan::default();
    let (expected, _) = expected(&cluster.client).await?;
    r.expected = expected;
    let all: Vec<&str> = WORKLOAD_LISTS
        .iter()
        .chain(&CONTEXT_LISTS)
        .copied()
        .collect();
    // Warm the API server's watch cache and page path, and the scan's binary.
    cluster.time_paged_list(&all, PAGE).await?;
    time_scan(program, cluster, extra).await?;
    for _ in 0..runs.max(1) {
        let (s, objects, bytes) = cluster.time_paged_list(&all, PAGE).await?;
        r.list_all_s.push(s);
        r.list_all_size = (objects, bytes);
        r.stream_all_s
            .push(cluster.time_streaming_list(&all).await?.0);
        r.kubectl_s.push(cluster.time_list(KUBECTL_KINDS)?);
        let (s, report) = time_scan(program, cluster, extra).await?;
        scan_matches(&report, &r.expected)?;
        r.scan_s.push(s);
        r.summary = report["summary"].clone();
    }
    Ok(r)
}
