//! `prodready audit --cluster` on a real API server: the scan reports exactly what the
//! operator's policy status and its OpenReports say for the same objects, live-only rules
//! included (a held and a stale Lease, a CronJob whose runs fail, ServiceMonitors before and
//! after their CRD is installed); it runs with only the read-only ClusterRole the docs apply;
//! a missing rule, and an unreachable API server, are exit code 2 and a sentence.

use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::{
    CRD_FILE, ControlPlane, Operator, apply_yaml, cronjob, deployment, documents, free_port,
    install_crd_file, install_monitoring_crds, install_openreports_crds, policy_yaml, repo_root,
    status_of, wait_for,
};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use prodready::api::ProductionPolicyStatus;
use prodready::controller::reports::api_resource;
use prodready::reports::ReportApi;
use serde_json::{Value, json};

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_prodready-operator"))
}

const SETTLE: Duration = Duration::from_secs(60);

/// Runs `prodready audit --cluster ARGS` in-process (the CLI's own code path; the scan starts
/// a runtime of its own, so on a thread of its own): the exit code and stdout.
fn audit_cluster(args: &[&str]) -> (i32, String) {
    let argv: Vec<String> = ["prodready", "audit", "--cluster"]
        .iter()
        .chain(args)
        .map(|s| (*s).to_owned())
        .collect();
    std::thread::spawn(move || {
        use clap::Parser as _;
        let cli = prodready::cli::Cli::try_parse_from(&argv).expect("audit arguments");
        let prodready::cli::Command::Audit(args) = cli.command else {
            panic!("not an audit")
        };
        let mut out = Vec::new();
        let code = prodready::cli::run_audit(&args, &mut out).expect("audit runs");
        (code, String::from_utf8_lossy(&out).into_owned())
    })
    .join()
    .expect("the audit thread")
}

/// A finding: `(kind/namespace/name, rule, container, message)`.
type Found = (String, String, String, String);

/// What the operator's status says: counts (matched, compliant, violating, exempt, unknown)
/// and its violations, sorted.
fn from_status(s: &ProductionPolicyStatus) -> ((u64, u64, u64, u64, u64), Vec<Found>) {
    let c = s.summary.clone().unwrap_or_default();
    let counts = (
        u64::from(c.matched),
        u64::from(c.compliant),
        u64::from(c.violating),
        u64::from(c.exempt),
        u64::from(c.unknown),
    );
    assert!(!s.violations_truncated, "all violations listed");
    let mut found: Vec<Found> = s
        .violations
        .iter()
        .map(|v| {
            (
                format!("{}/{}/{}", v.kind.as_str(), v.namespace, v.name),
                v.rule.clone(),
                v.container.clone().unwrap_or_default(),
                v.message.clone(),
            )
        })
        .collect();
    found.sort();
    (counts, found)
}

/// The same from the JSON report of a scan.
fn from_report(report: &Value) -> ((u64, u64, u64, u64, u64), Vec<Found>) {
    let s = &report["summary"];
    let n = |k: &str| s[k].as_u64().unwrap_or(u64::MAX);
    let counts = (
        n("workloads"),
        n("compliant"),
        n("violating"),
        n("exempt"),
        n("unknown"),
    );
    let str_of = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    // The status lists one violation per workload and rule: the first (its container and
    // message), "(and N more)" for the rest; the report lists each, in the rule's order.
    let mut found: Vec<(Found, usize)> = Vec::new();
    for f in report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["result"] == "fail")
    {
        let workload = format!(
            "{}/{}/{}",
            str_of(&f["kind"]),
            str_of(&f["namespace"]),
            str_of(&f["name"])
        );
        let rule = str_of(&f["rule"]);
        match found
            .iter_mut()
            .find(|((w, r, _, _), _)| *w == workload && *r == rule)
        {
            Some((_, more)) => *more += 1,
            None => found.push((
                (
                    workload,
                    rule,
                    str_of(&f["container"]),
                    str_of(&f["message"]),
                ),
                0,
            )),
        }
    }
    let mut found: Vec<Found> = found
        .into_iter()
        .map(|((w, r, c, m), more)| {
            let m = if more > 0 {
                format!("{m} (and {more} more)")
            } else {
                m
            };
            (w, r, c, m)
        })
        .collect();
    found.sort();
    (counts, found)
}

/// `(name, summary, results)` of reports, sorted by name.
fn report_triples(reports: impl IntoIterator<Item = Value>) -> Vec<(String, Value, Value)> {
    let mut out: Vec<(String, Value, Value)> = reports
        .into_iter()
        .map(|r| {
            (
                r["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                r["summary"].clone(),
                r.get("results").cloned().unwrap_or(json!([])),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The OpenReports the operator wrote in `ns`.
async fn cluster_reports(client: &Client, ns: &str) -> Vec<(String, Value, Value)> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &api_resource(ReportApi::OpenReports));
    let list = api.list(&Default::default()).await.expect("list reports");
    report_triples(
        list.items
            .into_iter()
            .map(|o| serde_json::to_value(o).unwrap_or_default()),
    )
}

/// Waits until the scan (JSON and OpenReports) equals the operator's status and reports for
/// `policy` in `ns`; returns the scan's JSON report.
async fn scan_equals_operator(
    cp: &ControlPlane,
    client: &Client,
    policy: &str,
    ns: &str,
    op: &Operator,
) -> Value {
    let kubeconfig = cp.kubeconfig().display().to_string();
    let r = wait_for(
        SETTLE,
        "the scan equal to the operator's status and reports",
        || {
            let kubeconfig = kubeconfig.clone();
            async move {
                let status = status_of(client, policy)
                    .await
                    .ok_or("no status yet".to_owned())?;
                let (code, json_out) = audit_cluster(&[
                    "--kubeconfig",
                    &kubeconfig,
                    "-o",
                    "json",
                    "--fail-on",
                    "none",
                ]);
                if code != 0 {
                    return Err(format!("exit {code}: {json_out}"));
                }
                let report: Value = serde_json::from_str(&json_out).map_err(|e| e.to_string())?;
                let (live, scanned) = (from_status(&status), from_report(&report));
                if live != scanned {
                    return Err(format!("status {live:?}\nscan {scanned:?}"));
                }
                let (code, yaml) = audit_cluster(&[
                    "--kubeconfig",
                    &kubeconfig,
                    "--namespace",
                    ns,
                    "-o",
                    "openreports",
                    "--fail-on",
                    "none",
                ]);
                if code != 0 {
                    return Err(format!("openreports exit {code}"));
                }
                let scanned = report_triples(documents(&yaml).map_err(|e| e.to_string())?);
                let written = cluster_reports(client, ns).await;
                if scanned != written {
                    return Err(format!("reports written {written:?}\nscanned {scanned:?}"));
                }
                Ok(report)
            }
        },
    )
    .await;
    r.unwrap_or_else(|e| panic!("{e}\n{}", op.log_tail(30)))
}

/// The fail/unknown findings of one rule on one workload, as `(result, message)`.
fn findings_of(report: &Value, name: &str, rule: &str) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["name"] == name && f["rule"] == rule)
        .map(|f| {
            (
                f["result"].as_str().unwrap_or_default().to_owned(),
                f["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn lease(name: &str, renewed: Timestamp, seconds: i32) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": "worker-0", "leaseDurationSeconds": seconds,
                 "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(renewed)},
    })
}

/// Web's Service (port `metrics`) and PDB.
fn web_service_and_pdb() -> &'static str {
    "apiVersion: v1\nkind: Service\nmetadata: {name: web, labels: {app: web}}\nspec:\n  selector: {app: web}\n  ports: [{name: metrics, port: 9090, targetPort: metrics}]\n---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec:\n  minAvailable: 1\n  selector: {matchLabels: {app: web}}\n"
}

#[tokio::test]
async fn a_cluster_scan_reports_what_the_operator_says_live_only_rules_included() {
    let cp = ControlPlane::start().await.expect("private control plane");
    let client = cp.client().await.expect("client");
    install_crd_file(&client, repo_root().join(CRD_FILE))
        .await
        .expect("install the ProductionPolicy CRD");
    install_openreports_crds(&client)
        .await
        .expect("install the OpenReports CRDs");
    let op = Operator::start(program(), cp.kubeconfig(), "scan-operator", "scan", &[]);
    op.wait_ready(Duration::from_secs(60)).await;
    let ns = cp.temp_namespace("scan").await.expect("namespace");
    let ns = ns.name().to_owned();

    // Workloads: a served Deployment with Service and PDB, one with nothing, two single
    // runners (Lease held and renewed / stale), a CronJob whose runs fail.
    let objects = [
        deployment("web", 2, true, ""),
        web_service_and_pdb().to_owned(),
        deployment("bad", 1, false, ""),
        deployment(
            "held",
            2,
            true,
            "prodready.dev/single-runner: \"true\", prodready.dev/lease: held-lock",
        ),
        deployment(
            "stale",
            2,
            true,
            "prodready.dev/single-runner: \"true\", prodready.dev/lease: stale-lock",
        ),
        cronjob("nightly", true).replace("\"*/5 * * * *\"", "\"0 3 * * *\""),
    ];
    apply_yaml(&client, Some(&ns), &objects.join("\n---\n"))
        .await
        .expect("apply the workloads");
    let pp = PatchParams::apply("e2e").force();
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), &ns);
    let now = Timestamp::now();
    for (name, renewed) in [
        ("held-lock", now),
        ("stale-lock", now - SignedDuration::from_hours(1)),
    ] {
        leases
            .patch(name, &pp, &Patch::Apply(&lease(name, renewed, 3600 * 24)))
            .await
            .expect("apply the Lease");
    }
    // The stale one's duration is short: it was renewed an hour ago.
    leases
        .patch(
            "stale-lock",
            &pp,
            &Patch::Apply(&lease(
                "stale-lock",
                now - SignedDuration::from_hours(1),
                10,
            )),
        )
        .await
        .expect("apply the stale Lease");
    // The CronJob last succeeded five days ago; its latest Job failed.
    let crons: Api<CronJob> = Api::namespaced(client.clone(), &ns);
    let five_days_ago = (now - SignedDuration::from_hours(120)).to_string();
    crons
        .patch_status(
            "nightly",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"lastScheduleTime": five_days_ago, "lastSuccessfulTime": five_days_ago}})),
        )
        .await
        .expect("CronJob status");
    let uid = crons
        .get("nightly")
        .await
        .expect("CronJob")
        .metadata
        .uid
        .expect("uid");
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "nightly-1", "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "uid": uid,
            "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "job", "image": "example.org/job:1.0"}]}}}
    });
    jobs.patch("nightly-1", &pp, &Patch::Apply(&job))
        .await
        .expect("create the Job");
    let t = now.to_string();
    let start = (now - SignedDuration::from_secs(60)).to_string();
    jobs.patch_status(
        "nightly-1",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "startTime": start, "active": 0, "failed": 1, "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "lastTransitionTime": t, "lastProbeTime": t},
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "lastTransitionTime": t, "lastProbeTime": t}]}})),
    )
    .await
    .expect("the Job failed");
    let policy = policy_yaml(
        "scan",
        &format!("{{namespaces: [{ns}]}}"),
        &[
            "livenessProbe",
            "readinessProbe",
            "replicasHa",
            "disruptionBudget",
            "leaderLease",
            "cronjobSingleRunner",
            "cronjobHealth",
            "serviceMonitor",
        ],
        "",
    );
    apply_yaml(&client, None, &policy)
        .await
        .expect("apply the policy");

    // Without the monitoring CRDs: service-monitor is unknown, as the operator says.
    let report = scan_equals_operator(&cp, &client, "scan", &ns, &op).await;
    assert_eq!(report["policies"], json!(["scan"]));
    assert_eq!(report["summary"]["workloads"], 5);
    let stale = findings_of(&report, "stale", "leader-lease");
    assert!(
        stale.len() == 1 && stale[0].0 == "fail" && stale[0].1.contains("was last renewed at"),
        "{stale:?}"
    );
    assert!(findings_of(&report, "held", "leader-lease").is_empty());
    let nightly = findings_of(&report, "nightly", "cronjob-health");
    assert!(
        nightly
            .iter()
            .any(|(r, m)| r == "fail" && m.contains("no run has succeeded since")),
        "{nightly:?}"
    );
    let web = findings_of(&report, "web", "service-monitor");
    assert!(
        web.len() == 1 && web[0].0 == "unknown" && web[0].1.contains("CRD"),
        "{web:?}"
    );
    assert!(findings_of(&report, "web", "disruption-budget").is_empty());

    // The CRDs and a ServiceMonitor for web appear: the operator and the scan agree again.
    install_monitoring_crds(&client)
        .await
        .expect("install the monitoring CRDs");
    let monitor = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  endpoints: [{port: metrics}]\n";
    wait_for(SETTLE, "the ServiceMonitor applied", || {
        let client = client.clone();
        let ns = ns.clone();
        async move {
            apply_yaml(&client, Some(&ns), monitor)
                .await
                .map_err(|e| format!("{e:#}"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    wait_for(SETTLE, "the operator sees the monitors", || async {
        let s = status_of(&client, "scan").await.ok_or("no status")?;
        match s.summary {
            Some(c) if c.unknown == 0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", op.log_tail(30)));
    let report = scan_equals_operator(&cp, &client, "scan", &ns, &op).await;
    assert!(findings_of(&report, "web", "service-monitor").is_empty());
    let bad = findings_of(&report, "bad", "service-monitor");
    assert!(bad.len() == 1 && bad[0].0 == "fail", "{bad:?}");

    // --profile given: the built-in profile instead of the cluster's policy.
    let (code, out) = audit_cluster(&[
        "--kubeconfig",
        &cp.kubeconfig().display().to_string(),
        "--namespace",
        &ns,
        "--profile",
        "baseline",
        "-o",
        "json",
    ]);
    assert_eq!(code, 1, "baseline finds high failures: {out}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(report["policies"], json!(["baseline"]));
    assert_eq!(report["summary"]["workloads"], 5, "the namespace only");
}

/// A kubeconfig for the same API server that authenticates with only `token`.
fn token_kubeconfig(cp: &ControlPlane, token: &str, path: &Path) {
    let text = std::fs::read_to_string(cp.kubeconfig()).expect("admin kubeconfig");
    let mut config: Value = serde_saphyr::from_str(&text).expect("kubeconfig YAML");
    for u in config["users"].as_array_mut().expect("users") {
        u["user"] = json!({ "token": token });
    }
    std::fs::write(path, config.to_string()).expect("write kubeconfig");
}

async fn token(cp: &ControlPlane, namespace: &str, sa: &str) -> String {
    let out = cp
        .kubectl(["create", "token", sa, "--namespace", namespace])
        .await
        .expect("run kubectl")
        .ok()
        .expect("kubectl create token");
    out.stdout.trim().to_owned()
}

#[tokio::test]
async fn the_documented_read_only_role_is_enough_and_a_missing_rule_is_named() {
    let cp = ControlPlane::start().await.expect("private control plane");
    let client = cp.client().await.expect("client");
    install_crd_file(&client, repo_root().join(CRD_FILE))
        .await
        .expect("install the ProductionPolicy CRD");
    install_monitoring_crds(&client)
        .await
        .expect("install the monitoring CRDs");
    apply_yaml(
        &client,
        Some("default"),
        &[deployment("web", 2, true, ""), cronjob("nightly", true)].join("\n---\n"),
    )
    .await
    .expect("apply the workloads");

    // The commands of docs/audit-cluster.md, as written (paths from the repository root).
    let lines = e2e::doc_sh_block("docs/audit-cluster.md", "## RBAC: read-only")
        .unwrap_or_else(|e| panic!("{e:#}"));
    for line in &lines {
        let words: Vec<String> = line
            .split_whitespace()
            .skip(1)
            .map(|w| {
                if w.starts_with("config/") {
                    repo_root().join(w).display().to_string()
                } else {
                    w.to_owned()
                }
            })
            .collect();
        assert!(line.starts_with("kubectl "), "{line}");
        let out = cp.kubectl(&words).await.expect("run kubectl");
        assert!(out.success(), "{line}: {}", out.stderr);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let ci = dir.path().join("ci.kubeconfig");
    token_kubeconfig(&cp, &token(&cp, "ci", "prodready-audit").await, &ci);
    let admin = audit_cluster(&[
        "--kubeconfig",
        &cp.kubeconfig().display().to_string(),
        "-o",
        "json",
    ]);
    let scoped = audit_cluster(&["--kubeconfig", &ci.display().to_string(), "-o", "json"]);
    assert_eq!(scoped.0, admin.0, "{}", scoped.1);
    let summary = |out: &str| -> Value {
        serde_json::from_str::<Value>(out).expect("JSON")["summary"].clone()
    };
    assert_eq!(summary(&scoped.1), summary(&admin.1));
    assert_eq!(summary(&scoped.1)["workloads"], 2);

    // Without cronjobs: the scan stops and names the verb, the resource and the role.
    let partial = std::fs::read_to_string(repo_root().join("config/rbac/audit_role.yaml"))
        .expect("the role")
        .replace("name: prodready-audit", "name: prodready-audit-partial")
        .replace("  - cronjobs\n", "");
    apply_yaml(&client, None, &partial)
        .await
        .expect("the partial role");
    for args in [
        vec!["create", "serviceaccount", "partial", "--namespace", "ci"],
        vec![
            "create",
            "clusterrolebinding",
            "partial",
            "--clusterrole=prodready-audit-partial",
            "--serviceaccount=ci:partial",
        ],
    ] {
        let out = cp.kubectl(&args).await.expect("run kubectl");
        assert!(out.success(), "{}", out.stderr);
    }
    let partial_config = dir.path().join("partial.kubeconfig");
    token_kubeconfig(&cp, &token(&cp, "ci", "partial").await, &partial_config);
    let args: prodready::scan::ClusterArgs = cluster_args(&partial_config);
    let err = prodready::scan::scan(&args, None, None, Timestamp::now(), false)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("may not list and watch cronjobs.batch")
            && err.contains("config/rbac/audit_role.yaml"),
        "{err}"
    );
    let (code, _) = audit_cluster(&["--kubeconfig", &partial_config.display().to_string()]);
    assert_eq!(code, 2);
}

/// The `--cluster` flags for `kubeconfig`, as parsed.
fn cluster_args(kubeconfig: &Path) -> prodready::scan::ClusterArgs {
    use clap::Parser as _;
    let cli = prodready::cli::Cli::try_parse_from([
        "prodready",
        "audit",
        "--cluster",
        "--kubeconfig",
        &kubeconfig.display().to_string(),
        "--api-timeout",
        "2s",
    ])
    .expect("arguments");
    let prodready::cli::Command::Audit(args) = cli.command else {
        panic!("not an audit")
    };
    args.live
}

#[tokio::test]
async fn an_unreachable_api_server_is_exit_2_and_a_sentence() {
    // A kubeconfig naming a port nothing listens on.
    let cp = ControlPlane::shared().await.expect("shared control plane");
    let text = std::fs::read_to_string(cp.kubeconfig()).expect("kubeconfig");
    let mut config: Value = serde_saphyr::from_str(&text).expect("kubeconfig YAML");
    let port = free_port().expect("a free port");
    let server = format!("https://127.0.0.1:{port}");
    for c in config["clusters"].as_array_mut().expect("clusters") {
        c["cluster"]["server"] = json!(server);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path: PathBuf = dir.path().join("gone.kubeconfig");
    std::fs::write(&path, config.to_string()).expect("write");
    let err = prodready::scan::scan(&cluster_args(&path), None, None, Timestamp::now(), false)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with(&format!("cannot reach the API server at {server}/")),
        "{err}"
    );
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("check that the cluster is running"), "{err}");
    // As a user runs it: exit code 2, the sentence on stderr, nothing on stdout, quickly.
    let started = std::time::Instant::now();
    let out = e2e::run_program(
        program(),
        [
            "audit",
            "--cluster",
            "--kubeconfig",
            &path.display().to_string(),
            "--api-timeout",
            "2s",
        ],
    )
    .await
    .expect("run prodready audit --cluster");
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "no report: {}", out.stdout);
    assert!(
        out.stderr.starts_with(&format!(
            "prodready: cannot reach the API server at {server}/"
        )),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // Paths and --cluster do not mix.
    let (code, _) = audit_cluster(&["--kubeconfig", &path.display().to_string(), "x.yaml"]);
    assert_eq!(code, 2);
}
