//! Many clusters through the engines teams already run (issue 27, docs/many-clusters.md): two
//! control planes, each with its own `prodready run --cluster-name` (webhook on) and its own
//! Prometheus (external label `cluster`), and one global Prometheus federating both with the
//! shipped alert rules loaded. Every dashboard query, filtered by `cluster`, answers on the global Prometheus
//! what the cluster's own Prometheus answers without the label (`cluster=~".*"`), one alert
//! fires for the cluster that broke and not for the other (on the global Prometheus with the
//! label, on each cluster's without it), and `prodready audit --cluster` over both kubeconfig
//! contexts (and one that cannot be reached) reports the union of the two operators' reports,
//! every finding naming its cluster, the unreachable context an error (exit code 2) that names
//! it; every Event an operator publishes carries its cluster's name. Loopback only; every wait
//! is bounded; every process is stopped on drop.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use e2e::{
    Binaries, CRD_FILE, ControlPlane, Operator, PRODREADY_JOB as JOB, Prometheus, RULES_FILE,
    apply_yaml, dashboard_queries, deployment, documents, free_port, install_crd_file,
    install_openreports_crds, operator_scrape_config, policy_yaml, repo_root, wait_for,
    webhook_by_url,
};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, ListParams};
use prodready::controller::events::{CLUSTER_ANNOTATION, REPORTER};
use prodready::controller::reports::api_resource;
use prodready::reports::{CLUSTER_LABEL, ReportApi};
use serde_json::Value;

/// What the dashboard's `$__rate_interval` becomes with a 1 s scrape interval.
const RATE_INTERVAL: &str = "30s";
/// The alert driven here: it has no `for`, so it fires at the first evaluation.
const ALERT: &str = "ProdreadyCriticalViolationsAppeared";

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_prodready-operator"))
}

/// A Deployment in `shop` with a password as a literal env value (critical) and no probes.
fn leaking(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n        - name: app\n          image: example.org/app:1.0\n          env: [{{name: DB_PASSWORD, value: hunter2}}]\n"
    )
}

/// One cluster of the fleet: its control plane, operator and Prometheus.
struct Member {
    name: &'static str,
    cp: ControlPlane,
    operator: Operator,
    prometheus: Prometheus,
}

/// Starts a cluster named `name` holding `web` (compliant) and `extra` workloads in `shop`,
/// its operator (`--cluster-name name`) and its Prometheus (external label `cluster: name`,
/// the shipped rules loaded).
async fn member(
    bins: &Binaries,
    dir: &Path,
    name: &'static str,
    cp: ControlPlane,
    extra: &[String],
) -> Member {
    let client = cp.client().await.expect("client");
    install_crd_file(&client, repo_root().join(CRD_FILE))
        .await
        .expect("install the ProductionPolicy CRD");
    install_openreports_crds(&client)
        .await
        .expect("install the OpenReports CRDs");
    apply_yaml(
        &client,
        None,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
    )
    .await
    .expect("namespace shop");
    apply_yaml(
        &client,
        None,
        &policy_yaml(
            "shop",
            "{namespaces: [shop]}",
            &["livenessProbe", "readinessProbe", "secretLiteralEnv"],
            "",
        ),
    )
    .await
    .expect("policy");
    apply_yaml(&client, Some("shop"), &deployment("web", 2, true, ""))
        .await
        .expect("web");
    for w in extra {
        apply_yaml(&client, Some("shop"), w)
            .await
            .expect("workload");
    }
    // The webhook too, registered by URL, so the admission panels have data to agree on.
    let webhook_port = free_port().expect("a free port");
    let configuration = format!("prodready-{name}");
    apply_yaml(
        &client,
        None,
        &webhook_by_url(&configuration, "shop", webhook_port),
    )
    .await
    .expect("register the webhook");
    let operator = Operator::start(
        program(),
        cp.kubeconfig(),
        &format!("{name}-0"),
        "prodready-fleet",
        &[
            "--cluster-name",
            name,
            "--webhook-enabled",
            "true",
            "--webhook-addr",
            &format!("127.0.0.1:{webhook_port}"),
            "--webhook-namespace",
            "default",
            "--webhook-extra-san",
            "127.0.0.1",
            "--webhook-configuration-name",
            &configuration,
        ],
    );
    operator.wait_ready(Duration::from_secs(60)).await;
    let config = operator_scrape_config(operator.admin(), Some(name));
    let prometheus = Prometheus::start(bins, dir, name, &config)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    Member {
        name,
        cp,
        operator,
        prometheus,
    }
}

/// The global Prometheus: federates every member's prodready series (their external label
/// `cluster` comes along) and evaluates the shipped rules over them.
async fn global(bins: &Binaries, dir: &Path, members: &[&Member]) -> Prometheus {
    let targets: Vec<String> = members
        .iter()
        .map(|m| format!("\"{}\"", m.prometheus.addr))
        .collect();
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
         rule_files: [{rules:?}]\n\
         scrape_configs:\n  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    params: {{'match[]': ['{{job=\"{JOB}\"}}']}}\n    static_configs: [{{targets: [{targets}]}}]\n",
        rules = repo_root().join(RULES_FILE).display().to_string(),
        targets = targets.join(", "),
    );
    Prometheus::start(bins, dir, "global", &config)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// The dashboard's queries with `$cluster` as `cluster` (a name, or `.*` for All).
fn queries_for(cluster: &str) -> Vec<(String, String)> {
    dashboard_queries(&|e: &str| {
        e.replace("$__rate_interval", RATE_INTERVAL)
            .replace("$cluster", cluster)
            .replace("$job", JOB)
            .replace("$policy", ".*")
            .replace("$namespace", ".*")
    })
}

/// Samples as comparable text: labels but `cluster`, and the value.
fn without_cluster(samples: &[(Value, f64)]) -> BTreeSet<String> {
    samples
        .iter()
        .map(|(labels, v)| {
            let mut labels = labels.clone();
            if let Some(m) = labels.as_object_mut() {
                m.remove("cluster");
            }
            format!("{labels} {v}")
        })
        .collect()
}

/// One pass of the dashboard check for `m`: every query on the global Prometheus filtered by
/// `cluster="<m>"` answers what `m`'s own Prometheus answers with `cluster=~".*"` (gauges
/// value for value, rates by their series), carries no other cluster's label, and returns data.
fn dashboard_agrees(global: &Prometheus, m: &Member) -> Result<usize, String> {
    let filtered = queries_for(m.name);
    let unfiltered = queries_for(".*");
    let mut problems = Vec::new();
    for ((what, gq), (_, lq)) in filtered.iter().zip(&unfiltered) {
        let g = global.query(gq)?;
        let l = m.prometheus.query(lq)?;
        if what == "variable cluster" {
            // The one query that lists the clusters: every one on the global Prometheus, one
            // series without the label on the cluster's own.
            let names: BTreeSet<&str> = g
                .iter()
                .filter_map(|(l, _)| l["cluster"].as_str())
                .collect();
            if names != ["a", "b"].into() || l.len() != 1 || l[0].0.get("cluster").is_some() {
                problems.push(format!("{what}: global {g:?}, the cluster's own {l:?}"));
            }
            continue;
        }
        if let Some((labels, _)) = g
            .iter()
            .find(|(labels, _)| labels.get("cluster").is_some_and(|c| c != m.name))
        {
            problems.push(format!("{what}: another cluster's series {labels} in {gq}"));
        }
        if g.is_empty() || l.is_empty() {
            problems.push(format!(
                "{what}: no data (global {} samples, cluster {} samples) from {gq}",
                g.len(),
                l.len()
            ));
            continue;
        }
        let rate = gq.contains("rate(") || gq.contains("increase(");
        let same = if rate {
            g.len() == l.len()
        } else {
            without_cluster(&g) == without_cluster(&l)
        };
        if !same {
            problems.push(format!(
                "{what}: global (cluster {}) {:?} != the cluster's own {:?}",
                m.name,
                without_cluster(&g),
                without_cluster(&l)
            ));
        }
    }
    if problems.is_empty() {
        Ok(filtered.len())
    } else {
        Err(problems.join("\n"))
    }
}

/// The clusters an alert fires for on `prometheus` (`-` for an alert without the label).
fn firing(prometheus: &Prometheus, alert: &str) -> Result<BTreeSet<String>, String> {
    Ok(prometheus
        .alerts()?
        .into_iter()
        .filter(|(labels, state)| labels["alertname"] == alert && state == "firing")
        .map(|(labels, _)| labels["cluster"].as_str().unwrap_or("-").to_owned())
        .collect())
}

/// A kubeconfig with one context per member, named after it, and `gone`: the first member's
/// credentials at a loopback port where nothing listens.
fn fleet_kubeconfig(dir: &Path, members: &[&Member]) -> PathBuf {
    let mut clusters = Vec::new();
    let mut users = Vec::new();
    let mut contexts = Vec::new();
    for m in members {
        let text = std::fs::read_to_string(m.cp.kubeconfig()).expect("kubeconfig");
        let kc: Value = serde_json::from_str(&text).expect("the suite writes JSON kubeconfigs");
        clusters.push(serde_json::json!({"name": m.name, "cluster": kc["clusters"][0]["cluster"]}));
        users.push(serde_json::json!({"name": m.name, "user": kc["users"][0]["user"]}));
        contexts.push(
            serde_json::json!({"name": m.name, "context": {"cluster": m.name, "user": m.name}}),
        );
    }
    let mut gone = clusters[0]["cluster"].clone();
    gone["server"] = Value::String(format!(
        "https://127.0.0.1:{}",
        free_port().expect("a free port")
    ));
    clusters.push(serde_json::json!({"name": "gone", "cluster": gone}));
    contexts.push(serde_json::json!({"name": "gone", "context": {"cluster": "gone", "user": members[0].name}}));
    let config = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": clusters, "users": users, "contexts": contexts,
        "current-context": members[0].name,
    });
    let path = dir.join("fleet-kubeconfig");
    std::fs::write(&path, config.to_string()).expect("write the fleet kubeconfig");
    path
}

/// Runs `prodready audit ARGS` in-process (the CLI's own code path, on a thread of its own:
/// the scans start a runtime): the exit code and stdout.
fn audit(args: &[&str]) -> (i32, String) {
    let argv: Vec<String> = std::iter::once("prodready")
        .chain(std::iter::once("audit"))
        .chain(args.iter().copied())
        .map(str::to_owned)
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

/// A policy report as compared: (its cluster label, namespace, name, results).
fn report_key(r: &Value) -> String {
    let m = &r["metadata"];
    format!(
        "{} {}/{} {}",
        m["labels"][CLUSTER_LABEL].as_str().unwrap_or("-"),
        m["namespace"].as_str().unwrap_or_default(),
        m["name"].as_str().unwrap_or_default(),
        r["results"]
    )
}

/// The reports the operators wrote, in every member.
async fn operators_reports(members: &[&Member]) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for m in members {
        let client = m.cp.client().await.map_err(|e| e.to_string())?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(client, "shop", &api_resource(ReportApi::OpenReports));
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("{}: {e}", m.name))?;
        for r in list {
            out.insert(report_key(
                &serde_json::to_value(&r).map_err(|e| e.to_string())?,
            ));
        }
    }
    Ok(out)
}

#[tokio::test]
async fn two_clusters_one_view_through_federation_and_one_fleet_audit() {
    let started = Instant::now();
    let bins = Binaries::locate().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = tokio::join!(ControlPlane::start(), ControlPlane::start());
    let (a, b) = (a.expect("control plane a"), b.expect("control plane b"));
    // a breaks: a workload with a password in its env (critical); b holds a workload without
    // probes (high) only.
    let a = member(&bins, dir.path(), "a", a, &[leaking("api")]).await;
    let b = member(
        &bins,
        dir.path(),
        "b",
        b,
        &[deployment("worker", 1, false, "")],
    )
    .await;
    let members = [&a, &b];
    let global = global(&bins, dir.path(), &members).await;
    eprintln!("fleet up in {:?}", started.elapsed());

    // Every dashboard query, filtered by cluster on the global Prometheus, answers what the
    // cluster's own Prometheus answers without the label.
    let attempt = std::sync::atomic::AtomicUsize::new(0);
    for m in members {
        let checked = wait_for(
            Duration::from_secs(90),
            &format!("the dashboard of cluster {} agrees", m.name),
            || async {
                // Admission traffic keeps flowing meanwhile (a server dry run of a new
                // Deployment per attempt), so the webhook's rates and quantiles are numbers.
                let n = attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ =
                    m.cp.kubectl_with_stdin(
                        ["apply", "-n", "shop", "-f", "-", "--dry-run=server"],
                        Some(&leaking(&format!("dry-run-{n}"))),
                    )
                    .await;
                dashboard_agrees(&global, m)
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- operator log ---\n{}", m.operator.log_tail(20)));
        eprintln!(
            "{checked} dashboard queries of cluster {} agree ({:?})",
            m.name,
            started.elapsed()
        );
    }
    // And the two clusters' answers differ where their data does.
    let severity = |c: &str| {
        queries_for(c)
            .into_iter()
            .find(|(what, _)| what.contains("Violations by severity"))
            .map(|(_, q)| global.query(&q).map(|s| without_cluster(&s)))
            .expect("the panel")
            .expect("query")
    };
    assert_ne!(severity("a"), severity("b"));

    // The alert fires for the cluster that broke, and not for the other: on the global
    // Prometheus with the label, on each cluster's own without it.
    wait_for(
        Duration::from_secs(60),
        "the alert fires for cluster a only",
        || async {
            let global_now = firing(&global, ALERT)?;
            let (on_a, on_b) = (firing(&a.prometheus, ALERT)?, firing(&b.prometheus, ALERT)?);
            let want: BTreeSet<String> = ["a".to_owned()].into();
            let local: BTreeSet<String> = ["-".to_owned()].into();
            if global_now == want && on_a == local && on_b.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{ALERT} firing: global {global_now:?}, a {on_a:?}, b {on_b:?}"
                ))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{ALERT} fires for a only ({:?})", started.elapsed());

    // The fleet audit over both contexts and one that cannot be reached: the union of the
    // operators' reports, every finding naming its cluster, the unreachable context an error
    // naming it, exit code 2 after the full report.
    let kubeconfig = fleet_kubeconfig(dir.path(), &members);
    let kubeconfig = kubeconfig.display().to_string();
    let fleet = |output: &'static str| {
        let kubeconfig = kubeconfig.clone();
        move || {
            audit(&[
                "--cluster",
                "--kubeconfig",
                &kubeconfig,
                "--context",
                "a",
                "--context",
                "gone",
                "--context",
                "b",
                "--api-timeout",
                "3s",
                "-o",
                output,
            ])
        }
    };
    let audited = wait_for(
        Duration::from_secs(60),
        "the fleet audit equals the union of the operators' reports",
        || async {
            let (code, out) = fleet("openreports")();
            if code != 2 {
                return Err(format!("exit code {code}, not 2 (one context unreachable)"));
            }
            let docs = documents(&out).map_err(|e| format!("{e:#}"))?;
            let audited: BTreeSet<String> = docs.iter().map(report_key).collect();
            let written = operators_reports(&members).await?;
            if audited == written && !audited.is_empty() {
                Ok(audited)
            } else {
                Err(format!("audit {audited:#?}\noperators {written:#?}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        audited
            .iter()
            .any(|r| r.starts_with("a shop/prodready-deployment-api"))
    );
    assert!(
        audited
            .iter()
            .any(|r| r.starts_with("b shop/prodready-deployment-worker"))
    );

    let (code, out) = fleet("json")();
    assert_eq!(code, 2, "{out}");
    let report: Value = serde_json::from_str(&out).expect("JSON report");
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let clusters: BTreeSet<&str> = findings
        .iter()
        .map(|f| f["cluster"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(clusters, ["a", "b"].into(), "{out}");
    assert!(
        findings
            .iter()
            .any(|f| f["cluster"] == "a" && f["rule"] == "secret-literal-env"),
        "{out}"
    );
    assert!(
        !findings
            .iter()
            .any(|f| f["cluster"] == "b" && f["rule"] == "secret-literal-env"),
        "{out}"
    );
    let errors = report["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors.len(), 1, "{out}");
    assert_eq!(errors[0]["file"], "cluster:gone", "{out}");
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("context \"gone\"") && message.contains("cannot reach the API server"),
        "{message}"
    );
    assert_eq!(report["summary"]["workloads"], 4, "{out}");

    let (code, table) = fleet("table")();
    assert_eq!(code, 2);
    let (first, rest) = table
        .split_once("Cluster b")
        .expect("a heading for cluster b");
    assert!(
        first.contains("Cluster a") && first.contains("Deployment shop/api"),
        "{table}"
    );
    assert!(rest.contains("Deployment shop/worker"), "{table}");
    assert!(
        table.contains("cluster:gone: cannot reach the API server"),
        "{table}"
    );

    // docs/many-clusters.md's fleet audit lines as written, against a kubeconfig whose two
    // contexts carry the doc's names (the one difference: `--kubeconfig` is added instead
    // of setting KUBECONFIG in this process; the redirect is done by the test).
    let documented = e2e::doc_sh_block(
        "docs/many-clusters.md",
        "## A fleet audit from a laptop or CI",
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let renamed = dir.path().join("documented-kubeconfig");
    let mut kc: Value =
        serde_json::from_str(&std::fs::read_to_string(&kubeconfig).expect("fleet kubeconfig"))
            .expect("JSON kubeconfig");
    let names = ["eu-west-1-prod", "us-east-1-prod"];
    if let Some(contexts) = kc["contexts"].as_array_mut() {
        contexts.retain(|c| c["name"] != "gone");
        for (c, name) in contexts.iter_mut().zip(names) {
            c["name"] = Value::String(name.to_owned());
        }
    }
    kc["current-context"] = Value::String(names[0].to_owned());
    std::fs::write(&renamed, kc.to_string()).expect("write the renamed kubeconfig");
    let renamed = renamed.display().to_string();
    assert_eq!(documented.len(), 2, "{documented:?}");
    for line in &documented {
        let (command, redirect) = match line.split_once(" > ") {
            Some((c, file)) => (c, Some(file.trim())),
            None => (line.as_str(), None),
        };
        let words: Vec<&str> = command.split_whitespace().collect();
        assert_eq!(words[..2], ["prodready", "audit"], "{line}");
        let mut args = words[2..].to_vec();
        args.extend(["--kubeconfig", renamed.as_str()]);
        let (code, out) = audit(&args);
        assert!(matches!(code, 0 | 1), "`{line}` exited {code}: {out}");
        for name in names {
            assert!(out.contains(name), "`{line}` does not name {name}: {out}");
        }
        if let Some(file) = redirect {
            assert_eq!(file, "fleet.sarif");
            let sarif: Value = serde_json::from_str(&out).expect("SARIF");
            assert_eq!(sarif["version"], "2.1.0", "{out}");
        }
    }

    // Each operator's Events say which cluster they come from.
    for m in members {
        let client = m.cp.client().await.expect("client");
        let events: Api<Event> = Api::namespaced(client, "shop");
        wait_for(
            Duration::from_secs(30),
            &format!("an Event of cluster {} annotated with its name", m.name),
            || async {
                let list = events
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| e.to_string())?;
                let ours: Vec<&Event> = list
                    .items
                    .iter()
                    .filter(|e| e.reporting_controller.as_deref() == Some(REPORTER))
                    .collect();
                let named = |e: &&Event| {
                    e.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(CLUSTER_ANNOTATION))
                        .map(String::as_str)
                        == Some(m.name)
                };
                if !ours.is_empty() && ours.iter().all(named) {
                    Ok(())
                } else {
                    Err(format!("prodready's Events: {ours:?}"))
                }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }

    for m in members {
        assert!(m.operator.exited().is_none(), "{}", m.operator.log_tail(20));
    }
    eprintln!("fleet test done in {:?}", started.elapsed());
}
