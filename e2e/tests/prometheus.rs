//! A real Prometheus (built by `e2e/k8s-binaries.sh` from the Go module proxy) scrapes a running
//! `prodready run` — the controller and the webhook, whose metrics share the admin port — on the
//! bare control plane, with the shipped alert rules loaded as they are. Every query of the
//! shipped Grafana dashboard (template variables substituted) returns data from it, and
//! ProdreadyNoLeader is driven to firing (the API server stopped: no replica can renew the
//! Lease) and back (the API server started again). Every wait is bounded.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::{
    Binaries, ControlPlane, OperatorProcess, PRODREADY_JOB as JOB, Prometheus, apply_yaml,
    free_port, install_crd_file, operator_scrape_config, query, repo_root, tail_lines, wait_for,
    webhook_by_url,
};
use serde_json::Value;

const CRD_FILE: &str = "crds/productionpolicies.prodready.dev.yaml";
/// What the dashboard's `$__rate_interval` becomes with a 1 s scrape interval.
const RATE_INTERVAL: &str = "30s";

/// Every query of the shipped dashboard on one cluster: the template variables substituted,
/// `$cluster` as the dashboard's `All` (`.*`), which must match series without the label.
fn dashboard_queries() -> Vec<(String, String)> {
    e2e::dashboard_queries(&|e: &str| {
        e.replace("$__rate_interval", RATE_INTERVAL)
            .replace("$cluster", ".*")
            .replace("$job", JOB)
            .replace("$policy", ".*")
            .replace("$namespace", ".*")
    })
}

fn api(prometheus: SocketAddr, path: &str) -> Result<Value, String> {
    e2e::prometheus_api(prometheus, path)
}

/// The alerts Prometheus holds right now: (name, state).
fn alerts(prometheus: SocketAddr) -> Result<Vec<(String, String)>, String> {
    let data = api(prometheus, "/api/v1/alerts")?;
    Ok(data["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["labels"]["alertname"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                a["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

/// A Deployment that passes the test policy's rules, or (`violating`) has no readinessProbe
/// (high) and a password as a literal env value (critical).
fn deployment(name: &str, violating: bool) -> String {
    let extra = if violating {
        "\n          env: [{name: DB_PASSWORD, value: hunter2}]"
    } else {
        "\n          readinessProbe: {httpGet: {path: /health/ready, port: 8080}}"
    };
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: app
          image: registry.example/web:1.0
          ports: [{{name: http, containerPort: 8080}}]
          livenessProbe: {{httpGet: {{path: /health/live, port: 8080}}}}{extra}
          resources: {{requests: {{cpu: 100m, memory: 128Mi}}, limits: {{memory: 256Mi}}}}
          lifecycle: {{preStop: {{sleep: {{seconds: 5}}}}}}
"#
    )
}

#[tokio::test]
async fn prometheus_scrapes_the_operator_answers_the_dashboard_and_fires_an_alert() {
    let bins = Binaries::locate().unwrap_or_else(|e| panic!("{e}"));
    // Private: the test stops its API server.
    let cp = ControlPlane::start().await.expect("private control plane");
    let client = cp.client().await.expect("client");
    install_crd_file(&client, repo_root().join(CRD_FILE))
        .await
        .expect("install the ProductionPolicy CRD");
    let ns = cp.temp_namespace("prom").await.expect("namespace");
    let dir = tempfile::tempdir().expect("temp dir");

    let webhook_port = free_port().expect("a free port");
    let configuration = format!("prodready-{}", ns.name());
    apply_yaml(
        &client,
        None,
        &webhook_by_url(&configuration, ns.name(), webhook_port),
    )
    .await
    .expect("register the webhook");
    apply_yaml(
        &client,
        None,
        &format!(
            "apiVersion: prodready.dev/v1alpha1\nkind: ProductionPolicy\nmetadata: {{name: shop}}\nspec:\n  match: {{namespaces: [{ns}]}}\n  enforcement: {{action: Warn}}\n  rules: {{serviceMonitor: {{enabled: false}}, disruptionBudget: {{enabled: false}}}}\n",
            ns = ns.name()
        ),
    )
    .await
    .expect("apply the policy");

    let admin: SocketAddr = format!("127.0.0.1:{}", free_port().expect("a free port"))
        .parse()
        .expect("address");
    let args: Vec<String> = [
        "run",
        "--kubeconfig",
        &cp.kubeconfig().display().to_string(),
        "--admin-addr",
        &admin.to_string(),
        "--identity",
        "prom-0",
        "--lease-name",
        "prodready-prom",
        "--lease-namespace",
        ns.name(),
        "--lease-duration",
        "4s",
        "--lease-retry-period",
        "500ms",
        "--debounce",
        "200ms",
        "--resync-interval",
        "4s",
        "--api-timeout",
        "3s",
        "--log-format",
        "json",
        "--webhook-addr",
        &format!("127.0.0.1:{webhook_port}"),
        "--webhook-namespace",
        ns.name(),
        "--webhook-extra-san",
        "127.0.0.1",
        "--webhook-configuration-name",
        &configuration,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let op = OperatorProcess::start(
        Path::new(env!("CARGO_BIN_EXE_prodready-operator")),
        &args,
        &[],
        &dir.path().join("operator.log"),
    )
    .expect("start prodready run");
    op.wait_ready(Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let Prometheus {
        mut server,
        addr: prometheus,
    } = Prometheus::start(
        &bins,
        dir.path(),
        "prometheus",
        &operator_scrape_config(admin, None),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));

    // The shipped rules, loaded as they are and evaluating without errors.
    let rules = api(prometheus, "/api/v1/rules").expect("rules");
    let loaded: Vec<&Value> = rules["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(loaded.len(), 11, "the shipped rules: {rules}");

    // Workloads through the webhook: one compliant, one failing a high and a critical rule.
    for (name, violating) in [("web", false), ("api", true)] {
        let out = cp
            .kubectl_with_stdin(
                ["apply", "-n", ns.name(), "-f", "-"],
                Some(&deployment(name, violating)),
            )
            .await
            .expect("run kubectl");
        assert!(out.success(), "kubectl apply {name}: {}", out.stderr);
    }

    // Every dashboard query returns data. Admission traffic keeps flowing meanwhile (a server
    // dry run of a new Deployment per attempt: kubectl sends nothing for an unchanged one), so
    // the webhook's rates and quantiles are numbers, not NaN.
    let queries = dashboard_queries();
    let started = Instant::now();
    let attempt = std::sync::atomic::AtomicUsize::new(0);
    let missing = wait_for(
        Duration::from_secs(90),
        "every dashboard query returns data",
        || async {
            let n = attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = cp
                .kubectl_with_stdin(
                    ["apply", "-n", ns.name(), "-f", "-", "--dry-run=server"],
                    Some(&deployment(&format!("dry-run-{n}"), true)),
                )
                .await;
            let mut missing = Vec::new();
            for (what, q) in &queries {
                match query(prometheus, q) {
                    Ok(samples) if !samples.is_empty() => {}
                    Ok(_) => missing.push(format!("{what}: no data from {q}")),
                    Err(e) => missing.push(format!("{what}: {e}")),
                }
            }
            if missing.is_empty() {
                Ok(())
            } else {
                Err(missing.join("\n"))
            }
        },
    )
    .await;
    if let Err(e) = missing {
        panic!(
            "{e}\n--- operator metrics ---\n{}\n--- operator log ---\n{}",
            op.metrics(),
            tail_lines(&op.logs(), 30)
        );
    }
    eprintln!(
        "{} dashboard queries returned data after {:?}",
        queries.len(),
        started.elapsed()
    );
    // The critical violation is counted (the label set is bounded: policy and rule).
    let critical = query(
        prometheus,
        &format!(
            r#"sum by (policy, rule) (prodready_violations{{job="{JOB}", severity="critical"}})"#
        ),
    )
    .expect("query");
    assert_eq!(critical.len(), 1, "{critical:?}");
    assert_eq!(critical[0].0["rule"], "secret-literal-env");
    assert!((critical[0].1 - 1.0).abs() < f64::EPSILON, "{critical:?}");

    // Rule evaluation is healthy and nothing but the new-violation alert is pending or firing.
    let rules = api(prometheus, "/api/v1/rules").expect("rules");
    for r in rules["groups"][0]["rules"].as_array().into_iter().flatten() {
        assert_eq!(r["health"], "ok", "{r}");
    }
    let now = alerts(prometheus).expect("alerts");
    assert!(
        now.iter()
            .all(|(name, _)| name == "ProdreadyCriticalViolationsAppeared"),
        "{now:?}"
    );

    // No leader: the API server stops, the Lease cannot be renewed, prodready_leader drops to
    // 0 and, after the rule's `for: 1m`, ProdreadyNoLeader fires.
    // Timed from before the stop: the API server's graceful shutdown takes a few seconds, and
    // renewals fail from its start.
    let stopped = Instant::now();
    cp.stop_apiserver().expect("stop the API server");
    eprintln!("the API server stopped in {:?}", stopped.elapsed());
    wait_for(
        Duration::from_secs(150),
        "ProdreadyNoLeader firing",
        || async {
            let now = alerts(prometheus)?;
            if now
                .iter()
                .any(|(n, s)| n == "ProdreadyNoLeader" && s == "firing")
            {
                Ok(())
            } else {
                Err(format!("alerts now: {now:?}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", tail_lines(&op.logs(), 20)));
    let fired_after = stopped.elapsed();
    assert!(
        fired_after >= Duration::from_secs(60),
        "fired after {fired_after:?}, before its `for: 1m`"
    );
    eprintln!("ProdreadyNoLeader fired {fired_after:?} after the API server stopped");

    // And back: the API server returns, the operator takes the Lease again, the alert resolves.
    let restarted = Instant::now();
    cp.start_apiserver().await.expect("start the API server");
    wait_for(
        Duration::from_secs(60),
        "ProdreadyNoLeader resolved",
        || async {
            let now = alerts(prometheus)?;
            if now.iter().any(|(n, _)| n == "ProdreadyNoLeader") {
                Err(format!("alerts now: {now:?}"))
            } else {
                Ok(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", tail_lines(&op.logs(), 20)));
    eprintln!(
        "ProdreadyNoLeader resolved {:?} after the API server was started",
        restarted.elapsed()
    );
    assert_eq!(
        query(prometheus, &format!(r#"prodready_leader{{job="{JOB}"}}"#))
            .expect("query")
            .first()
            .map(|s| s.1),
        Some(1.0)
    );
    assert!(server.exited().is_none(), "{}", server.log_tail(30));
    server.stop(Duration::from_secs(5));
}
