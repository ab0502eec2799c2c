//! The operator benchmarks of issue 7 on a fresh local control plane (etcd + kube-apiserver
//! from `e2e/k8s-binaries.sh`), with the release `prodready run` as a subprocess:
//!
//! ```sh
//! cargo build --release --locked && bash e2e/k8s-binaries.sh
//! cargo run --release -p bench --bin operator-bench -- cold-start --update-results   # 2
//! cargo run --release -p bench --bin operator-bench -- policy-edit --update-results  # 2 + 3
//! cargo run --release -p bench --bin operator-bench -- churn --update-results        # 2 + 4
//! cargo run --release -p bench --bin operator-bench -- cluster --update-results      # 2 + 3 + 4
//! cargo run --release -p bench --bin operator-bench -- memory --update-results       # 6
//! cargo run --release -p bench --bin operator-bench -- reports --update-results      # issue 15
//! cargo run --release -p bench --bin operator-bench -- audit-cluster --update-results # issue 29
//! ```
//!
//! Scenarios 3 and 4 need scenario 2's cluster and operator, so they run after it (and its
//! figures are reported too). `--scale 0.01` is the CI smoke size.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bench::operator::{
    self, Churn, Cluster, ColdStart, MemoryPoint, OperatorCmd, PolicyEdit, ReportsColdStart, Size,
    StatusLog, median, percentile,
};

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(about = "prodready operator benchmarks (issue 7, scenarios 2, 3, 4 and 6)")]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
    /// Size of the cluster relative to issue 7's (10,000 Deployments, 2,000 CronJobs, 500
    /// namespaces).
    #[arg(long, default_value_t = 1.0, global = true)]
    scale: f64,
    /// The operator binary (default: target/release/prodready of this workspace).
    #[arg(long, global = true)]
    operator: Option<PathBuf>,
    /// Concurrent create requests while filling the cluster.
    #[arg(long, default_value_t = 32, global = true)]
    concurrency: usize,
    /// Seconds of the idle window (API requests and CPU when nothing changes).
    #[arg(long, default_value_t = 60, global = true)]
    idle_seconds: u64,
    /// Timed runs of each LIST floor (kubectl in scenario 2; paged reads in `large`).
    #[arg(long, default_value_t = 3, global = true)]
    list_runs: usize,
    /// Churn: Deployment updates per second.
    #[arg(long, default_value_t = 100, global = true)]
    rate: u64,
    /// Churn: seconds.
    #[arg(long, default_value_t = 60, global = true)]
    churn_seconds: u64,
    /// Memory: the workload counts (a run with no workload gives the base).
    #[arg(long, value_delimiter = ',', default_values_t = [0usize, 1000, 10_000, 50_000], global = true)]
    sizes: Vec<usize>,
    /// audit-cluster: an extra flag for `prodready audit --cluster` (repeatable), e.g.
    /// `--scan-arg=--initial-list=pages`.
    #[arg(
        long = "scan-arg",
        value_name = "FLAG",
        global = true,
        allow_hyphen_values = true
    )]
    scan_args: Vec<String>,
    /// Write the figures into bench/RESULTS.md between the scenario's markers.
    #[arg(long, global = true)]
    update_results: bool,
}

#[derive(Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// 2. Operator cold start at scale.
    ColdStart,
    /// 2 then 3. Policy edit to status.
    PolicyEdit,
    /// 2 then 4. Churn.
    Churn,
    /// 2, 3 and 4 on one cluster.
    Cluster,
    /// 6. Memory growth.
    Memory,
    /// Issue 15: cold start with the OpenReports CRDs installed; reports converge exactly.
    Reports,
    /// Issue 18: 100,000 workloads (80,000 Deployments, 20,000 CronJobs, 2,000 namespaces):
    /// memory (with 0 and 10,000 on their own clusters), LIST floor, cold start, churn, idle.
    Large,
    /// Issue 29: `prodready audit --cluster` on scenario 2's cluster against its LIST floor
    /// (--list-runs runs of each).
    AuditCluster,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(run(args));
    // Do not wait for stray blocking tasks of the clients (seen to hang the exit).
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("operator-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!(
        "cargo run --release -p bench --bin operator-bench -- {}",
        args.join(" ")
    )
}

async fn run(args: Args) -> anyhow::Result<()> {
    let cmd = args
        .operator
        .clone()
        .map_or_else(OperatorCmd::release, |program| OperatorCmd { program });
    anyhow::ensure!(
        cmd.program.is_file(),
        "{} not found: run `cargo build --release --locked` first",
        cmd.program.display()
    );
    let results = e2e::repo_root().join("bench/RESULTS.md");
    let header = header(&args, &cmd);
    if args.scenario == Scenario::Memory {
        let started = now();
        let mut points = Vec::new();
        for &n in &args.sizes {
            let workloads = ((n as f64) * args.scale).round() as usize;
            eprintln!("memory: {workloads} workloads…");
            let p =
                operator::memory_point(&cmd, workloads, args.concurrency, Duration::from_secs(5))
                    .await?;
            eprintln!("  {p:?}");
            points.push(p);
        }
        let text = format!(
            "{header}\n**Run:** {started} to {}.\n\n{}",
            now(),
            render_memory(&points)
        );
        println!("{text}");
        if args.update_results {
            operator::update_section(&results, "operator-memory", &text)?;
        }
        return Ok(());
    }

    if args.scenario == Scenario::Reports {
        return run_reports(&args, &cmd, &header, &results).await;
    }
    if args.scenario == Scenario::Large {
        let started = now();
        let r = operator::large(
            &cmd,
            args.concurrency,
            args.list_runs,
            Duration::from_secs(args.idle_seconds),
            args.rate,
            Duration::from_secs(args.churn_seconds),
        )
        .await?;
        let text = format!(
            "{header}\n**Run:** {started} to {}.\n\n{}",
            now(),
            render_large(&r)
        );
        println!("{text}");
        if args.update_results {
            operator::update_section(&results, "operator-large", &text)?;
        }
        return Ok(());
    }

    let size = Size::scaled(args.scale);
    let started = now();
    if args.scenario == Scenario::AuditCluster {
        let (cluster, _) = fresh_cluster(size, args.concurrency).await?;
        let extra: Vec<&str> = args.scan_args.iter().map(String::as_str).collect();
        let r = operator::audit_scan(&cmd.program, &cluster, args.list_runs, &extra).await?;
        eprintln!("  {r:?}");
        let text = format!(
            "{}\n**Run:** {started} to {}; {}.\n\n{}",
            header.replace(
                " (the operator: `prodready run` with the flags",
                " (the scan: `prodready audit --cluster --kubeconfig <the operator's> -o json --fail-on none`, which applies the cluster's policy; the operator's flags, unused here:"
            ),
            now(),
            cluster_line(&cluster, size, args.concurrency),
            render_audit_scan(&r)
        );
        println!("{text}");
        if args.update_results {
            operator::update_section(&results, "audit-cluster", &text)?;
        }
        return Ok(());
    }
    let (cluster, status) = fresh_cluster(size, args.concurrency).await?;
    let idle = Duration::from_secs(args.idle_seconds);
    let timeout = Duration::from_secs(120 + size.total() as u64 / 100);
    let (cold, op) =
        operator::cold_start(&cluster, &cmd, &status, args.list_runs, idle, timeout).await?;
    eprintln!("  {cold:?}");
    let cold_text = format!(
        "{header}\n**Run:** {started}; {}.\n\n{}",
        cluster_line(&cluster, size, args.concurrency),
        render_cold(&cold, &cluster)
    );
    println!("{cold_text}");
    if args.update_results {
        operator::update_section(&results, "operator-cold-start", &cold_text)?;
    }
    let mut current = cold.expected;
    if matches!(args.scenario, Scenario::PolicyEdit | Scenario::Cluster) {
        let edit = operator::policy_edit(&cluster, &status, current).await?;
        eprintln!("  {edit:?}");
        current = edit.after;
        let text = format!(
            "{header}\n**Run:** {started}, on scenario 2's cluster and operator right after its idle window; {}.\n\n{}",
            cluster_line(&cluster, size, args.concurrency),
            render_edit(&edit)
        );
        println!("{text}");
        if args.update_results {
            operator::update_section(&results, "operator-policy-edit", &text)?;
        }
    }
    let _ = current;
    if matches!(args.scenario, Scenario::Churn | Scenario::Cluster) {
        let c = operator::churn(
            &cluster,
            &op,
            &status,
            size,
            args.rate,
            Duration::from_secs(args.churn_seconds),
        )
        .await?;
        eprintln!(
            "  churn: {} changes, {} lags, missing {}",
            c.changes,
            c.lags.len(),
            c.missing
        );
        let text = format!(
            "{header}\n**Run:** {started}, on scenario 2's cluster and operator{}; {}.\n\n{}",
            if args.scenario == Scenario::Cluster {
                " after scenario 3 (cpu-limit on)"
            } else {
                ""
            },
            cluster_line(&cluster, size, args.concurrency),
            render_churn(&c)
        );
        println!("{text}");
        if args.update_results {
            operator::update_section(&results, "operator-churn", &text)?;
        }
    }
    drop(op);
    Ok(())
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%MZ")
        .to_string()
}

fn sh(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn header(args: &Args, cmd: &OperatorCmd) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let root = e2e::repo_root();
    let root = root.to_string_lossy();
    let commit = sh("git", &["-C", &root, "rev-parse", "--short", "HEAD"]);
    let dirty = !sh(
        "git",
        &["-C", &root, "status", "--porcelain", "--untracked-files=no"],
    )
    .is_empty();
    let version = sh(&cmd.program.to_string_lossy(), &["--version"]);
    format!(
        "**Machine:** {cpus} CPUs ({model}), {:.1} GiB RAM, Linux {}.\n\n\
         **Versions:** {version} (`{}`, commit {commit}{}), {}; kube-apiserver {}, etcd {} (built by `e2e/k8s-binaries.sh`, etcd `--unsafe-no-fsync`).\n\n\
         **Command:** `{}` (the operator: `prodready run` with the flags the Helm chart renders at its default values, `bench::operator::chart_flags`: webhook on with its self-managed certificate and registered for every namespace but `default` and `kube-system`, reports `openreports` (CRD absent), debounce 500ms, resync 5m, lease 15s/2s, 50 Events/s; its own kubeconfig, a token of {}).",
        mem_kib / 1024.0 / 1024.0,
        sh("uname", &["-r"]),
        cmd.program
            .strip_prefix(e2e::repo_root())
            .unwrap_or(&cmd.program)
            .display(),
        if dirty {
            ", with uncommitted changes"
        } else {
            ""
        },
        sh("rustc", &["-V"]),
        e2e::pinned_version("K8S_VERSION").unwrap_or("?"),
        e2e::pinned_version("ETCD_VERSION").unwrap_or("?"),
        command_line(),
        operator::OPERATOR_USER,
    ) + &format!(" Scale {}.\n", args.scale)
}

fn cluster_line(c: &Cluster, size: Size, concurrency: usize) -> String {
    let kinds: Vec<String> = c
        .by_kind
        .iter()
        .map(|(k, n)| format!("{} {k}", thousands(*n as f64)))
        .collect();
    format!(
        "{} workloads in {} namespaces ({}), created in {:.1} s with {} concurrent requests (not part of any figure), one policy (`{}`)",
        thousands(size.total() as f64),
        size.namespaces,
        kinds.join(", "),
        c.create_seconds,
        concurrency,
        operator::POLICY_FILE
    )
}

fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn verdict(ok: bool, miss: String) -> String {
    if ok {
        "met".into()
    } else {
        format!("**MISSED** ({miss})")
    }
}

fn render_cold(r: &ColdStart, _c: &Cluster) -> String {
    let floor_w = median(&r.list_workloads_s);
    let floor_a = median(&r.list_all_s);
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let rss_mib = r.rss_kib as f64 / 1024.0;
    let operator_requests = (r.idle_requests - r.background_requests).max(0.0);
    let idle_rate = operator_requests / r.idle_s;
    let ratio = r.converged_s / floor_a;
    format!(
        "## 2. Operator cold start at scale\n\n\
         Expected status (prodready engine over the objects as listed back from the API server, in the operator's context): matched {}, violating {}, compliant {}, unknown {}.\n\n\
         | figure | value | goal | |\n| --- | ---: | --- | --- |\n\
         | process start → status exactly right (observedGeneration, matched, violating) | **{:.2} s** (operator CPU {:.2} s) | ≤ 10 s | {} |\n\
         | LIST floor: `kubectl get deployments,cronjobs -A -o json > /dev/null` (runs) | {:.2} s median ({}) | | |\n\
         | LIST floor: `kubectl get deployments,cronjobs,services,poddisruptionbudgets -A -o json > /dev/null` (runs) | {:.2} s median ({}) | | |\n\
         | cold start / floor (all four kinds; the operator lists these and more) | **{:.2}×** ({:.2}× the workloads-only LIST) | ≤ 2× | {} |\n\
         | VmRSS after convergence + {:.0} s idle (VmHWM peak) | **{:.1} MiB** ({:.1} MiB) | ≤ 64 MiB | {} |\n\
         | Event backlog (one Event per violating workload) drained after convergence in | {:.0} s | | |\n\
         | API requests while idle, {:.0} s window: API server count with the operator − without it (operator's own count) | **{:.2}/s** ({} − {} = {}; {} by `dependency_requests_total`) | ≤ 1/s | {} |\n\
         | operator CPU while idle | {:.3} s in {:.0} s | | |\n\
         | requests served by the API server from the operator's start to convergence (all clients) | {} | | |\n\n\
         Load average {} before the LIST floor, {} after the idle window.\n\n\
         **How API requests are counted:** the API server's own counter: the sum of every `apiserver_request_total` series in its `/metrics` (every request it served, watch starts included, by verb/resource/code), read before and after a window of {:.0} s with the operator idle, minus the same sum over a window of the same length right before the operator started (the API server's own loopback controllers and this tool's scrapes; nothing else talks to this private control plane). The operator also runs with its own identity (a token of `{}`, bound to cluster-admin). `apiserver_authenticated_user_requests`, which would split by user, is not served by this kube-apiserver build (absent from `/metrics`). `dependency_requests_total` is the operator's own count of its non-watch requests, for comparison.\n",
        thousands(r.expected.matched as f64),
        thousands(r.expected.violating as f64),
        thousands(r.expected.compliant as f64),
        thousands(r.expected.unknown as f64),
        r.converged_s,
        r.converged_cpu_s,
        verdict(
            r.converged_s <= 10.0,
            format!("{:.1}× the goal", r.converged_s / 10.0)
        ),
        floor_w,
        fmt(&r.list_workloads_s),
        floor_a,
        fmt(&r.list_all_s),
        ratio,
        r.converged_s / floor_w,
        verdict(ratio <= 2.0, format!("{:.2}× over 2×", ratio / 2.0)),
        r.idle_s,
        rss_mib,
        r.hwm_kib as f64 / 1024.0,
        verdict(rss_mib <= 64.0, format!("{:.1}× the goal", rss_mib / 64.0)),
        r.settle_s,
        r.idle_s,
        idle_rate,
        r.idle_requests,
        r.background_requests,
        operator_requests,
        r.idle_requests_self,
        verdict(idle_rate <= 1.0, format!("{idle_rate:.2}/s")),
        r.idle_cpu_s,
        r.idle_s,
        r.startup_requests,
        r.load.0,
        r.load.1,
        r.idle_s,
        operator::OPERATOR_USER,
    )
}

fn render_edit(e: &PolicyEdit) -> String {
    format!(
        "## 3. Policy edit to status\n\n\
         `kubectl patch`-equivalent merge patch of the policy: `{{\"spec\":{{\"rules\":{{\"cpuLimit\":{{\"enabled\":true}}}}}}}}` (a rule the baseline profile leaves off). Expected (engine): violating {} → {} of {} matched.\n\n\
         | figure | value | goal | |\n| --- | ---: | --- | --- |\n\
         | PATCH response → status with the new observedGeneration and exact counts (watch) | **{:.3} s** | ≤ 1 s | {} |\n\
         | PATCH sent → same | {:.3} s | | |\n\n\
         Load average {} at the edit.\n",
        thousands(e.before.violating as f64),
        thousands(e.after.violating as f64),
        thousands(e.after.matched as f64),
        e.seconds,
        verdict(e.seconds <= 1.0, format!("{:.2}× the goal", e.seconds)),
        e.seconds_from_send,
        e.load,
    )
}

fn render_churn(c: &Churn) -> String {
    let max = c.lags.last().copied().unwrap_or(f64::NAN);
    format!(
        "## 4. Churn\n\n\
         {} Deployment updates at a target {} per second (achieved {:.1}/s over {:.1} s), each a strategic merge patch that removes one Deployment's liveness probe, so `status.rules[liveness-probe].violations` rises by exactly one per change. The lag of the k-th committed change (PATCH responses in order) is the time until the watched status first shows at least k such violations.\n\n\
         | figure | value | goal | |\n| --- | ---: | --- | --- |\n\
         | lag p50 / p99 / max | {:.3} s / {:.3} s / **{:.3} s** | never > 2 s | {} |\n\
         | changes never reflected | {} | 0 | |\n\
         | operator CPU during the churn (until the status caught up) | {:.2} s in {:.1} s = {:.2} cores | | |\n\
         | evaluations (`prodready_reconcile_total`) / status updates seen | {} / {} | | |\n\
         | final `liveness-probe` violations: status / engine | {} / {} | equal | {} |\n\n\
         Load average {} before, {} after.\n",
        c.changes,
        c.rate,
        c.achieved_rate,
        c.seconds,
        percentile(&c.lags, 50.0),
        percentile(&c.lags, 99.0),
        max,
        verdict(c.missing == 0 && max <= 2.0, format!("max {max:.2} s")),
        c.missing,
        c.cpu_s,
        c.wall_s,
        c.cpu_s / c.wall_s,
        c.evaluations,
        c.status_updates,
        c.final_count.0,
        c.final_count.1,
        if c.final_count.0 == c.final_count.1 {
            "ok"
        } else {
            "**differ**"
        },
        c.load.0,
        c.load.1,
    )
}

fn render_memory(points: &[MemoryPoint]) -> String {
    let base = points.iter().find(|p| p.workloads == 0).map(|p| p.rss_kib);
    let mut rows = String::new();
    let mut worst: f64 = 0.0;
    for p in points {
        let per = match base {
            Some(b) if p.workloads > 0 => {
                let v = (p.rss_kib as f64 - b as f64) / p.workloads as f64;
                worst = worst.max(v);
                format!("{v:.2} KiB")
            }
            _ => "—".into(),
        };
        rows.push_str(&format!(
            "| {} | {} | {:.2} s | {:.1} MiB | {:.1} MiB | {per} | {} |\n",
            thousands(p.workloads as f64),
            thousands(p.others as f64),
            p.converged_s,
            p.rss_kib as f64 / 1024.0,
            p.hwm_kib as f64 / 1024.0,
            p.load
        ));
    }
    format!(
        "## 6. Memory growth\n\n\
         One fresh control plane per size (five Deployments per CronJob, 24 workloads per namespace, a Service and, when replicated, a PDB for every third Deployment), the operator started after the objects exist, VmRSS read 5 s after the status shows every workload exactly. Per-workload cost = (RSS − RSS with no workload) / workloads.\n\n\
         | workloads | other objects | converged | VmRSS | VmHWM (peak) | per workload above base | load average |\n| ---: | ---: | ---: | ---: | ---: | ---: | --- |\n{rows}\n\
         Goal ≤ 2 KiB per workload above the base (issue 18): {}. Goal RSS ≤ 64 MiB at 12,000 workloads: {}.\n{}",
        verdict(worst <= 2.0, format!("{worst:.2} KiB at worst")),
        points.iter().find(|p| p.workloads == 12_000).map_or(
            "not measured (no 12,000 point)".to_owned(),
            |p| {
                let mib = p.rss_kib as f64 / 1024.0;
                verdict(
                    mib <= 64.0,
                    format!("{mib:.1} MiB, {:.2}× the goal", mib / 64.0),
                )
            }
        ),
        render_heap(points)
    )
}

/// The heap by part (`/debug/memory`) at each size, one column per size.
fn render_heap(points: &[MemoryPoint]) -> String {
    let with: Vec<(&MemoryPoint, &serde_json::Value)> = points
        .iter()
        .filter_map(|p| p.heap.as_ref().map(|h| (p, h)))
        .collect();
    if with.is_empty() {
        return String::new();
    }
    let mib = |v: Option<f64>| v.map_or("—".to_owned(), |b| format!("{:.2} MiB", b / 1048576.0));
    let num = |h: &serde_json::Value, ptr: &str| h.pointer(ptr).and_then(serde_json::Value::as_f64);
    let mut names: Vec<String> = Vec::new();
    for (_, h) in &with {
        for part in h["parts"].as_array().into_iter().flatten() {
            let name = part["part"].as_str().unwrap_or("?").to_owned();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let head: Vec<String> = with
        .iter()
        .map(|(p, _)| format!("{} workloads", thousands(p.workloads as f64)))
        .collect();
    let mut out = format!(
        "\n### Where the memory goes (`GET /debug/memory` of the operator, right after VmRSS was read)\n\n\
         Bytes counted by the operator's allocator wrapper (`prodready::memory`): a stored object's share is what a deep copy of it allocates, plus its `Arc`, its key and its table slot; objects shared with the webhook's context are counted once, in their store. Objects in parentheses.\n\n\
         | part | {} |\n| --- |{}\n",
        head.join(" | "),
        " ---: |".repeat(with.len())
    );
    for name in &names {
        let cells: Vec<String> = with
            .iter()
            .map(|(_, h)| {
                h["parts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|x| x["part"].as_str() == Some(name))
                    .map_or("—".to_owned(), |x| {
                        format!(
                            "{} ({})",
                            mib(x["bytes"].as_f64()),
                            thousands(x["objects"].as_f64().unwrap_or(0.0))
                        )
                    })
            })
            .collect();
        out.push_str(&format!("| {name} | {} |\n", cells.join(" | ")));
    }
    type Row<'a> = (&'a str, Box<dyn Fn(&serde_json::Value) -> Option<f64> + 'a>);
    let rows: [Row<'_>; 7] = [
        (
            "**sum of the parts**",
            Box::new(|h: &serde_json::Value| {
                Some(
                    h["parts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|x| x["bytes"].as_f64())
                        .sum(),
                )
            }),
        ),
        (
            "live heap (every allocation the operator holds: the parts, plus TLS, HTTP clients, metrics, tracing, runtime)",
            Box::new(move |h| num(h, "/heapLiveBytes")),
        ),
        (
            "latest evaluation round's peak above its start (decoded workloads, status builders, failing sets)",
            Box::new(move |h| num(h, "/lastRoundPeakBytes")),
        ),
        (
            "glibc: in use (blocks with their headers, mmapped included)",
            Box::new(move |h| num(h, "/malloc/in_use_bytes")),
        ),
        (
            "glibc: free but kept in its arenas (retention)",
            Box::new(move |h| num(h, "/malloc/free_bytes")),
        ),
        ("VmRSS", Box::new(move |h| num(h, "/rssBytes"))),
        (
            "VmRSS − glibc arenas and mmapped blocks (code, stacks, kernel-side)",
            Box::new(move |h| {
                Some(
                    num(h, "/rssBytes")?
                        - num(h, "/malloc/arena_bytes")?
                        - num(h, "/malloc/mmapped_bytes")?,
                )
            }),
        ),
    ];
    for (label, f) in rows {
        let cells: Vec<String> = with.iter().map(|(_, h)| mib(f(h))).collect();
        out.push_str(&format!("| {label} | {} |\n", cells.join(" | ")));
    }
    out
}

fn render_large(r: &operator::LargeRun) -> String {
    let n = operator::LARGE.total() as f64;
    let base = r.small.iter().find(|p| p.workloads == 0).map(|p| p.rss_kib);
    let ten = r.small.iter().find(|p| p.workloads == 10_000);
    let per = |kib: u64, w: f64| base.map(|b| (kib as f64 - b as f64) / w);
    let per_large = per(r.rss_kib.0, n);
    let per_ten = ten.and_then(|p| per(p.rss_kib, 10_000.0));
    let slope = ten.map(|p| (r.rss_kib.0 as f64 - p.rss_kib as f64) / (n - 10_000.0));
    let floor_a = median(&r.list_all_s);
    let floor_w = median(&r.list_workloads_s);
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let p99 = percentile(&r.churn.lags, 99.0);
    let churn_cores = r.churn.cpu_s / r.churn.wall_s;
    let idle_rate = (r.idle_requests - r.background_requests).max(0.0) / r.idle_s;
    let kib = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.2} KiB"));
    let mut memory_rows = String::new();
    for p in &r.small {
        memory_rows.push_str(&format!(
            "| {} | {:.2} s | {:.1} MiB | {} |\n",
            thousands(p.workloads as f64),
            p.converged_s,
            p.rss_kib as f64 / 1024.0,
            kib(per(p.rss_kib, p.workloads as f64).filter(|_| p.workloads > 0)),
        ));
    }
    memory_rows.push_str(&format!(
        "| {} | {:.2} s | {:.1} MiB | {} |\n",
        thousands(n),
        r.converged_s,
        r.rss_kib.0 as f64 / 1024.0,
        kib(per_large)
    ));
    let heap_point = MemoryPoint {
        workloads: operator::LARGE.total(),
        rss_kib: r.rss_kib.0,
        hwm_kib: r.rss_kib.1,
        heap: r.heap.clone(),
        ..MemoryPoint::default()
    };
    let mut heap_points: Vec<MemoryPoint> = r.small.clone();
    heap_points.push(heap_point);
    format!(
        "## 9. 100,000 workloads (issue 18)\n\n\
         80,000 Deployments and 20,000 CronJobs (one Job each) in 2,000 namespaces, a Service for every third Deployment and a PDB for the replicated ones among those: {} objects, created in {:.0} s (not a figure). Expected status (engine): matched {}, violating {}, compliant {}, unknown {}. The 0 and 10,000 points ran first, each on its own fresh control plane (scenario 6's generator).\n\n\
         | workloads | converged | VmRSS (5 s after) | per workload above base |\n| ---: | ---: | ---: | ---: |\n{memory_rows}\n\
         | figure | value | goal | |\n| --- | ---: | --- | --- |\n\
         | memory per workload above base at 100,000 (slope from 10,000 to 100,000) | **{}** ({}) | ≤ 2 KiB, linear from 10,000 | {} |\n\
         | process start → status exactly right | **{:.2} s** (operator CPU {:.2} s) | ≤ 15 s | {} |\n\
         | LIST floor, workloads: Deployments and CronJobs read to the end at once, in pages of {} (kube's default; the operator streams here, and reads pages of {} where the API server cannot stream), not decoded (runs) | {:.2} s median ({}) | | |\n\
         | LIST floor, everything the caches hold here: also Jobs, Services, PDBs, Namespaces ({} objects, {:.1} MB) (runs) | {:.2} s median ({}) | | |\n\
         | streaming-list floor, everything: the same collections as streaming lists (`sendInitialEvents`, how the operator reads them here), each to the bookmark that ends its initial events, not decoded (runs) | {:.2} s median ({}) | | |\n\
         | cold start / floor (everything) | **{:.2}×** ({:.2}× the workloads-only LIST; {:.2}× the streaming-list floor) | ≤ 2× | {} |\n\
         | churn: {} Deployment updates at {}/s (achieved {:.1}/s), lag p50 / p99 / max | {:.3} s / **{:.3} s** / {:.3} s | p99 ≤ 1 s | {} |\n\
         | churn: changes never reflected; evaluations / status updates | {}; {} / {} | 0 | |\n\
         | churn: rounds incremental / full; workloads they evaluated; final (matched, violating) of the status / of the engine's full evaluation | {:.0} / {:.0}; {:.0}; {:?} / {:?} | equal | {} |\n\
         | churn: operator CPU (webhook reviews of every update and the Event backlog included) | {:.1} s in {:.1} s = **{:.2} cores** | ≤ 0.5 core | {} |\n\
         | idle API requests, {:.0} s window, `events` excluded: with the operator − background | **{:.2}/s** ({:.0} − {:.0}); {:.0} Events created meanwhile (the cold start's backlog draining at 50/s) | ≤ 1/s | {} |\n\
         | operator CPU while idle (Event backlog draining) | {:.2} s in {:.0} s | | |\n\n\
         Load average {} before the LIST floor, {} at convergence, {} at the end.\n{}",
        thousands(r.objects as f64),
        r.create_s,
        thousands(r.expected.matched as f64),
        thousands(r.expected.violating as f64),
        thousands(r.expected.compliant as f64),
        thousands(r.expected.unknown as f64),
        kib(per_large),
        slope.map_or("—".to_owned(), |s| format!(
            "{s:.2} KiB per added workload; {} at 10,000",
            kib(per_ten)
        )),
        per_large.map_or("not measured".to_owned(), |v| verdict(
            v <= 2.0,
            format!("{v:.2} KiB")
        )),
        r.converged_s,
        r.converged_cpu_s,
        verdict(
            r.converged_s <= 15.0,
            format!("{:.1}× the goal", r.converged_s / 15.0)
        ),
        operator::PAGE,
        prodready::controller::LIST_PAGE,
        floor_w,
        fmt(&r.list_workloads_s),
        thousands(r.list_all_size.0 as f64),
        r.list_all_size.1 as f64 / 1e6,
        floor_a,
        fmt(&r.list_all_s),
        median(&r.stream_all_s),
        fmt(&r.stream_all_s),
        r.converged_s / floor_a,
        r.converged_s / floor_w,
        r.converged_s / median(&r.stream_all_s),
        verdict(
            r.converged_s / floor_a <= 2.0,
            format!("{:.2}×", r.converged_s / floor_a)
        ),
        r.churn.changes,
        r.churn.rate,
        r.churn.achieved_rate,
        percentile(&r.churn.lags, 50.0),
        p99,
        r.churn.lags.last().copied().unwrap_or(f64::NAN),
        verdict(
            r.churn.missing == 0 && p99 <= 1.0,
            format!("p99 {p99:.2} s")
        ),
        r.churn.missing,
        r.churn.evaluations,
        r.churn.status_updates,
        r.churn.rounds.0,
        r.churn.rounds.1,
        r.churn.evaluated_workloads,
        r.churn.final_summary.0,
        r.churn.final_summary.1,
        verdict(
            r.churn.final_summary.0 == r.churn.final_summary.1,
            "differs".to_owned()
        ),
        r.churn.cpu_s,
        r.churn.wall_s,
        churn_cores,
        verdict(churn_cores <= 0.5, format!("{churn_cores:.2} cores")),
        r.idle_s,
        idle_rate,
        r.idle_requests,
        r.background_requests,
        r.idle_events,
        verdict(idle_rate <= 1.0, format!("{idle_rate:.2}/s")),
        r.idle_cpu_s,
        r.idle_s,
        r.load[0],
        r.load[1],
        r.load[2],
        render_heap(&heap_points),
    )
}

fn render_audit_scan(r: &operator::AuditScan) -> String {
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (scan, floor, stream, kubectl) = (
        median(&r.scan_s),
        median(&r.list_all_s),
        median(&r.stream_all_s),
        median(&r.kubectl_s),
    );
    let ratio = scan / floor.max(f64::EPSILON);
    format!(
        "| figure | value |\n| --- | --- |\n\
         | LIST floor: every non-empty collection the scan reads (Deployments, CronJobs, Jobs, Services, PDBs, Namespaces), at once, pages of {page} | median **{floor:.2} s** (runs: {}), {} objects, {:.1} MiB |\n\
         | the same as streaming lists | median {stream:.2} s (runs: {}) |\n\
         | scenario 2's floor for the same kinds: `kubectl get {} -A -o json > /dev/null` | median {kubectl:.2} s (runs: {}) |\n\
         | `prodready audit --cluster -o json` (process start to exit: connect, discovery, every watch synced, evaluation, report) | median **{scan:.2} s** (runs: {}) |\n\
         | scan / LIST floor (goal ≤ 2×) | **{ratio:.2}×** the paged LIST floor: {}; {:.2}× the kubectl floor: {} |\n\
         | the scan's summary (equal to the engine over the same objects, checked each run) | {} |\n",
        fmt(&r.list_all_s),
        thousands(r.list_all_size.0 as f64),
        r.list_all_size.1 as f64 / 1024.0 / 1024.0,
        fmt(&r.stream_all_s),
        operator::KUBECTL_KINDS,
        fmt(&r.kubectl_s),
        fmt(&r.scan_s),
        verdict(ratio <= 2.0, format!("{ratio:.2}× > 2×")),
        scan / kubectl.max(f64::EPSILON),
        verdict(scan <= 2.0 * kubectl, "over 2×".to_owned()),
        r.summary,
        page = operator::PAGE,
    )
}

/// A fresh control plane filled with `size`, and a log of the policy's status watched on it.
async fn fresh_cluster(size: Size, concurrency: usize) -> anyhow::Result<(Cluster, StatusLog)> {
    eprintln!("filling a fresh control plane: {size:?}…");
    let cluster = Cluster::start(size, concurrency).await?;
    eprintln!(
        "  {} objects in {:.1} s: {:?}",
        cluster.objects, cluster.create_seconds, cluster.by_kind
    );
    let status = StatusLog::watch(&cluster.client).await;
    Ok((cluster, status))
}

// ---------------------------------------------------------------------------------------
// Issue 15: policy reports at scale
// ---------------------------------------------------------------------------------------

async fn run_reports(
    args: &Args,
    cmd: &OperatorCmd,
    header: &str,
    results: &std::path::Path,
) -> anyhow::Result<()> {
    let size = Size::scaled(args.scale);
    let started = now();
    let (cluster, status) = fresh_cluster(size, args.concurrency).await?;
    let idle = Duration::from_secs(args.idle_seconds);
    let timeout = Duration::from_secs(120 + size.total() as u64 / 20);
    let (r, op) = operator::reports_cold_start(&cluster, cmd, &status, idle, timeout).await?;
    eprintln!("  {r:?}");
    drop(op);
    let text = format!(
        "{header}\n**Run:** {started}; {}.\n\n{}",
        cluster_line(&cluster, size, args.concurrency),
        render_reports(&r)
    );
    println!("{text}");
    if args.update_results {
        operator::update_section(results, "operator-reports", &text)?;
    }
    Ok(())
}

fn render_reports(r: &ReportsColdStart) -> String {
    let operator_requests = (r.idle_requests - r.background_requests).max(0.0);
    let idle_rate = operator_requests / r.idle_s;
    let objects = r.storage_objects.1 - r.storage_objects.0;
    format!(
        "## 8. Policy reports at scale (issue 15)\n\n\
         The official OpenReports CRDs (`github.com/openreports/reports-api`, `config/crd/`, from the Go module cache) are installed before the operator starts, so `--reports openreports` (the default) writes from its first round. Expected (engine over the objects as listed back, through `prodready::reports::build`): {} reports for {} matched workloads (status: violating {}, compliant {}, unknown {}). The tool follows the reports through its own watch and compares every one with `Report::same_content`.\n\n\
         | figure | value | goal | |\n| --- | ---: | --- | --- |\n\
         | process start → every report exactly the engine's, none extra | **{:.2} s** (operator CPU {:.2} s) | | |\n\
         | process start → policy status exact | {:.2} s | | |\n\
         | report writes to get there (`prodready_report_writes_total`) | **{}** | one per report | {} |\n\
         | report writes from start to the end of the idle window | {} | | |\n\
         | `apiserver_resource_objects{{group=\"openreports.io\",resource=\"reports\"}}` (the API server's count of stored reports) before → after | {} → {} (+{}) | | |\n\
         | report JSON as served by a LIST after the idle window (managedFields included) | {} objects, **{:.1} MB** ({:.2} KiB each) | | |\n\
         | etcd data file (`member/snap/db`) before the operator → after the idle window (also holds the Events and status written meanwhile) | {:.1} MB → {:.1} MB | | |\n\
         | `apiserver_storage_size_bytes` (the etcd database as the API server sees it) before → after | {} | | |\n\
         | API requests while idle, {:.0} s window after the Event backlog drained ({:.0} s): API server count with the operator − without it (operator's own count) | **{:.2}/s** ({} − {} = {}; {} by `dependency_requests_total`) | ≤ 1/s | {} |\n\
         | report writes while idle | {} | 0 | {} |\n\
         | operator VmRSS after the idle window (VmHWM peak) | **{:.1} MiB** ({:.1} MiB) | | |\n\n\
         Load average {} before the operator, {} after the idle window. Requests are counted as in scenario 2 (the API server's `apiserver_request_total`, minus a window of the same length right before the operator started, this tool's watches of the policy and the reports running in both).\n",
        thousands(r.reports as f64),
        thousands(r.expected.matched as f64),
        thousands(r.expected.violating as f64),
        thousands(r.expected.compliant as f64),
        thousands(r.expected.unknown as f64),
        r.converged_s,
        r.converged_cpu_s,
        r.status_s,
        thousands(r.writes_at_convergence),
        if r.writes_at_convergence as usize == r.reports {
            "met"
        } else {
            "**differs**"
        },
        thousands(r.writes_total),
        thousands(r.storage_objects.0),
        thousands(r.storage_objects.1),
        thousands(objects),
        thousands(r.listed.0 as f64),
        r.listed.1 as f64 / 1e6,
        r.listed.1 as f64 / 1024.0 / (r.listed.0.max(1) as f64),
        r.etcd_db_bytes.0 as f64 / 1e6,
        r.etcd_db_bytes.1 as f64 / 1e6,
        if r.storage_size_bytes.1 > 0.0 {
            format!(
                "{:.1} MB → {:.1} MB",
                r.storage_size_bytes.0 / 1e6,
                r.storage_size_bytes.1 / 1e6
            )
        } else {
            "not served by this build".to_owned()
        },
        r.idle_s,
        r.settle_s,
        idle_rate,
        r.idle_requests,
        r.background_requests,
        operator_requests,
        r.idle_requests_self,
        verdict(idle_rate <= 1.0, format!("{idle_rate:.2}/s")),
        r.idle_writes,
        if r.idle_writes == 0.0 {
            "met"
        } else {
            "**MISSED**"
        },
        r.rss_kib.0 as f64 / 1024.0,
        r.rss_kib.1 as f64 / 1024.0,
        r.load.0,
        r.load.1,
    )
}
