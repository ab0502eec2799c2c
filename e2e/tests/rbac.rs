//! The chart's RBAC is exactly enough, proven against the real API server (which runs with
//! `--authorization-mode=RBAC`): the chart's ServiceAccount, ClusterRole, Role and bindings
//! are applied, a token is minted for the ServiceAccount (TokenRequest, `kubectl create
//! token`), and `prodready run` — with the container arguments the chart renders — runs
//! with a kubeconfig holding only that token.
//!
//! - With the chart's rules, the operator scenario (policy status, Events, the leader Lease)
//!   and the webhook scenario (self-managed TLS Secret, CA bundle injection, a warning at
//!   `kubectl apply`) pass, and the log has no `403`/`forbidden`. The dashboard's queries
//!   name only metrics this operator's `/metrics` shows.
//! - With one rule removed (list/watch Deployments), the operator says so — readiness 503
//!   naming the cache, a log line naming the verb and resource — keeps running, and becomes
//!   ready once the rule is back.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::{
    ControlPlane, OperatorProcess, apply_yaml, chart_dir, chart_plane, documents, free_port,
    helm_template, install_openreports_crds, status_of, tail_lines, wait_for, wait_for_events,
};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use serde_json::{Value, json};

const SETTLE: Duration = Duration::from_secs(45);

// ---------------------------------------------------------------------------------------
// The operator process (the e2e crate's `prodready-operator`: `prodready run` that also
// stops when its stdin closes)
// ---------------------------------------------------------------------------------------

/// The suite's `prodready-operator` with `args`, logging to `dir/operator.log`.
fn start_operator(args: &[String], env: &[(&str, &str)], dir: &Path) -> OperatorProcess {
    OperatorProcess::start(
        Path::new(env!("CARGO_BIN_EXE_prodready-operator")),
        args,
        env,
        &dir.join("operator.log"),
    )
    .expect("start prodready-operator")
}

// ---------------------------------------------------------------------------------------
// The chart's identity: RBAC, token, kubeconfig, arguments
// ---------------------------------------------------------------------------------------

async fn plane() -> &'static ControlPlane {
    chart_plane()
        .await
        .expect("control plane with the chart's CRDs")
}

/// The chart rendered for `release` in `namespace`.
struct Rendered {
    docs: Vec<Value>,
}

impl Rendered {
    async fn new(cp: &ControlPlane, release: &str, namespace: &str, sets: &[&str]) -> Rendered {
        let yaml = helm_template(cp, release, namespace, sets)
            .await
            .expect("helm template");
        Rendered {
            docs: documents(&yaml).expect("rendered YAML"),
        }
    }

    /// The one object of `kind` the operator runs with (the `-view`/`-edit` ClusterRoles the
    /// chart aggregates into the built-in roles are for people, not for the operator).
    fn one(&self, kind: &str) -> Value {
        let aggregated = |d: &Value| {
            d["metadata"]["labels"].as_object().is_some_and(|l| {
                l.keys()
                    .any(|k| k.starts_with("rbac.authorization.k8s.io/aggregate-to-"))
            })
        };
        let found: Vec<&Value> = self
            .docs
            .iter()
            .filter(|d| d["kind"] == kind && !aggregated(d))
            .collect();
        assert_eq!(found.len(), 1, "one {kind} in the chart");
        found[0].clone()
    }

    /// The ServiceAccount, ClusterRole, Role and their bindings, exactly as rendered.
    fn rbac(&self) -> Vec<Value> {
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
        ]
        .iter()
        .map(|k| self.one(k))
        .collect()
    }

    fn container_args(&self) -> Vec<String> {
        self.one("Deployment")
            .pointer("/spec/template/spec/containers/0/args")
            .and_then(Value::as_array)
            .expect("container args")
            .iter()
            .map(|a| a.as_str().expect("string arg").to_owned())
            .collect()
    }
}

async fn apply_objects(client: &Client, objects: &[Value]) {
    for o in objects {
        apply_yaml(client, None, &o.to_string())
            .await
            .unwrap_or_else(|e| panic!("apply {o}: {e:#}"));
    }
}

/// A kubeconfig for the same API server that authenticates with only `token`.
fn token_kubeconfig(cp: &ControlPlane, token: &str, path: &Path) {
    let text = std::fs::read_to_string(cp.kubeconfig()).expect("admin kubeconfig");
    let mut config: Value = serde_saphyr::from_str(&text).expect("kubeconfig YAML");
    let users = config["users"].as_array_mut().expect("users");
    for u in users {
        u["user"] = json!({ "token": token });
    }
    std::fs::write(path, config.to_string()).expect("write kubeconfig");
}

/// Mints a token for the chart's ServiceAccount with the TokenRequest API.
/// A kubeconfig in `dir` that authenticates as the chart's ServiceAccount (in `namespace`)
/// with a TokenRequest token.
async fn chart_account_kubeconfig(
    cp: &ControlPlane,
    rendered: &Rendered,
    namespace: &str,
    dir: &Path,
) -> std::path::PathBuf {
    let sa = rendered.one("ServiceAccount")["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let token = mint_token(cp, namespace, &sa).await;
    let kubeconfig = dir.join("kubeconfig");
    token_kubeconfig(cp, &token, &kubeconfig);
    kubeconfig
}

async fn mint_token(cp: &ControlPlane, namespace: &str, sa: &str) -> String {
    let out = cp
        .kubectl([
            "create",
            "token",
            sa,
            "--namespace",
            namespace,
            "--duration",
            "1h",
        ])
        .await
        .expect("run kubectl")
        .ok()
        .expect("kubectl create token");
    let token = out.stdout.trim().to_owned();
    assert!(token.split('.').count() == 3, "a JWT: {token}");
    token
}

/// The chart's container arguments, with local addresses and short timings substituted for
/// the values that only make sense in a cluster, plus the kubeconfig.
fn operator_args(rendered: &Rendered, kubeconfig: &Path, admin: u16, webhook: u16) -> Vec<String> {
    let overrides = [
        ("--admin-addr", format!("127.0.0.1:{admin}")),
        ("--webhook-addr", format!("127.0.0.1:{webhook}")),
        ("--lease-duration", "4s".to_owned()),
        ("--lease-retry-period", "500ms".to_owned()),
        ("--debounce", "200ms".to_owned()),
        ("--resync-interval", "4s".to_owned()),
        ("--discovery-interval", "2s".to_owned()),
        ("--api-timeout", "3s".to_owned()),
    ];
    let mut args: Vec<String> = rendered
        .container_args()
        .into_iter()
        .map(|a| {
            let key = a.split('=').next().unwrap_or_default().to_owned();
            overrides
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(a, |(k, v)| format!("{k}={v}"))
        })
        .collect();
    assert!(
        args.iter().any(|a| a.starts_with("--admin-addr=")),
        "{args:?}"
    );
    args.push(format!("--kubeconfig={}", kubeconfig.display()));
    args
}

/// Whether `line` has the number 403 on its own (not inside a timestamp or another number).
fn has_403(line: &str) -> bool {
    line.match_indices("403").any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + 3..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit() || c == '.')
            && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

fn assert_no_forbidden(log: &str) {
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| has_403(l) || l.to_ascii_lowercase().contains("forbidden"))
        .collect();
    assert!(
        bad.is_empty(),
        "the chart's RBAC is not enough:\n{}",
        bad.join("\n")
    );
}

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: NAME}
spec:
  replicas: 2
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec:
      containers:
        - name: app
          image: registry.example/web:1.0
          resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}
"#;

// ---------------------------------------------------------------------------------------
// Metric names
// ---------------------------------------------------------------------------------------

/// Sample names in an OpenMetrics/Prometheus text exposition.
fn exported_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// The metric names a PromQL expression selects: identifiers directly followed by a label
/// matcher `{`, and every identifier with one of the operator's metric prefixes.
fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c == '"' {
            in_string = !in_string;
            i += 1;
            continue;
        }
        if in_string || !(c.is_ascii_alphabetic() || c == '_' || c == ':') {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len()
            && ((bytes[i] as char).is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
        {
            i += 1;
        }
        let word = &expr[start..i];
        let braces = expr[i..].trim_start().starts_with('{');
        let prefixed = ["prodready_", "dependency_", "http_server_"]
            .iter()
            .any(|p| word.starts_with(p));
        let variable = start > 0 && bytes[start - 1] == b'$';
        if !variable && (braces || prefixed) {
            names.insert(word.to_owned());
        }
    }
    names
}

fn dashboard_metric_names() -> BTreeSet<String> {
    let text = std::fs::read_to_string(chart_dir().join("dashboards/prodready.json"))
        .expect("dashboard file");
    let dash: Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut names = BTreeSet::new();
    let panels = dash["panels"].as_array().cloned().unwrap_or_default();
    for p in &panels {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                names.extend(promql_metric_names(e));
            }
        }
    }
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = v["definition"].as_str() {
            names.extend(promql_metric_names(q));
        }
    }
    names
}

#[test]
fn a_403_is_found_but_not_inside_timestamps() {
    assert!(has_403("watch list error with 403: Api(..)"));
    assert!(has_403("status=403"));
    assert!(!has_403("\"timestamp\":\"2026-11-23T06:12:43.403512Z\""));
    assert!(!has_403("port 14030"));
}

#[test]
fn promql_names_are_extracted() {
    assert_eq!(
        promql_metric_names(
            r#"histogram_quantile(0.99, sum by (le) (rate(http_server_request_duration_seconds_bucket{job=~"$job", route="/validate"}[$__rate_interval])))"#
        ),
        BTreeSet::from(["http_server_request_duration_seconds_bucket".to_owned()])
    );
    assert_eq!(
        promql_metric_names("label_values(prodready_leader, job)"),
        BTreeSet::from(["prodready_leader".to_owned()])
    );
    assert_eq!(
        promql_metric_names(r#"up{job="x"} + prodready_typo"#),
        BTreeSet::from(["prodready_typo".to_owned(), "up".to_owned()])
    );
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_charts_rbac_is_enough_for_the_operator_and_the_webhook() {
    let cp = plane().await;
    let admin = cp.client().await.expect("client");
    let system = cp.temp_namespace("rbac-system").await.expect("namespace");
    let work = cp.temp_namespace("rbac-work").await.expect("namespace");
    let release = "prodready-rbac";
    let rendered = Rendered::new(cp, release, system.name(), &[]).await;
    apply_objects(&admin, &rendered.rbac()).await;
    // The chart writes OpenReports reports by default: with their CRD installed, its RBAC must
    // cover creating, listing, watching and patching them.
    install_openreports_crds(&admin)
        .await
        .expect("install the OpenReports CRDs");

    // The chart's webhook configuration, but called by URL (no Service routing here) and for
    // the test's namespace only; no caBundle: the operator must inject it.
    let webhook_port = free_port().expect("a free port");
    let mut vwc = rendered.one("ValidatingWebhookConfiguration");
    let vwc_name = vwc["metadata"]["name"].as_str().expect("name").to_owned();
    vwc["webhooks"][0]["clientConfig"] =
        json!({"url": format!("https://127.0.0.1:{webhook_port}/validate")});
    vwc["webhooks"][0]["namespaceSelector"] = json!({"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [work.name()]}]});
    apply_objects(&admin, &[vwc]).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = chart_account_kubeconfig(cp, &rendered, system.name(), dir.path()).await;
    let mut args = operator_args(
        &rendered,
        &kubeconfig,
        free_port().expect("a free port"),
        webhook_port,
    );
    args.push("--webhook-extra-san=127.0.0.1".to_owned());
    args.push("--webhook-cert-check-interval=1s".to_owned());
    let identity = "prodready-rbac-0";
    let started = Instant::now();
    let op = start_operator(
        &args,
        &[("POD_NAME", identity), ("POD_NAMESPACE", system.name())],
        dir.path(),
    );
    op.wait_ready(Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("operator ready after {:?}", started.elapsed());

    // The webhook: the certificate Secret (create, get) and the CA bundle (get, patch).
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(admin.clone());
    wait_for(SETTLE, "the CA bundle injected", || async {
        let v = vwcs.get(&vwc_name).await.map_err(|e| e.to_string())?;
        let injected = v.webhooks.iter().flatten().all(|w| {
            w.client_config
                .ca_bundle
                .as_ref()
                .is_some_and(|b| !b.0.is_empty())
        });
        injected.then_some(()).ok_or("no caBundle yet".to_owned())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", tail_lines(&op.logs(), 30)));
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), system.name());
    let secret = secrets
        .get(&format!("{release}-webhook-tls"))
        .await
        .expect("the webhook's certificate Secret");
    assert!(secret.data.is_some_and(|d| d.contains_key("tls.crt")));

    // A policy for the work namespace, warning at admission.
    let policy = work.name().to_owned();
    apply_yaml(
        &admin,
        None,
        &format!(
            "apiVersion: prodready.dev/v1alpha1\nkind: ProductionPolicy\nmetadata: {{name: {policy}}}\nspec:\n  match: {{namespaces: [{policy}]}}\n  enforcement: {{action: Warn}}\n  rules: {{serviceMonitor: {{enabled: false}}, disruptionBudget: {{enabled: false}}}}\n"
        ),
    )
    .await
    .expect("apply the policy");

    // The API server calls the webhook once its configuration cache has the new
    // configuration and the webhook has the policy: server-side dry runs of a Deployment
    // that is never stored (each one a CREATE) until one comes back with our warning.
    wait_for(SETTLE, "the API server calls the webhook", || async {
        let out = cp
            .kubectl_with_stdin(
                ["apply", "--dry-run=server", "-n", work.name(), "-f", "-"],
                Some(&DEPLOYMENT.replace("NAME", "probe")),
            )
            .await
            .map_err(|e| e.to_string())?;
        if out.success() && out.stderr.contains("Warning: prodready[") {
            Ok(())
        } else {
            Err(format!("no warning yet: {}", out.stderr))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", tail_lines(&op.logs(), 30)));
    // The real apply warns.
    let out = cp
        .kubectl_with_stdin(
            ["apply", "-n", work.name(), "-f", "-"],
            Some(&DEPLOYMENT.replace("NAME", "web")),
        )
        .await
        .expect("run kubectl");
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stdout.contains("created"), "{}", out.stdout);
    assert!(
        out.stderr.contains("deployment/web") && out.stderr.contains("(liveness-probe)"),
        "{}",
        out.stderr
    );

    // The controller: status (productionpolicies/status patch), Events, the Lease.
    wait_for(SETTLE, "the policy status", || async {
        let s = status_of(&admin, &policy)
            .await
            .ok_or("no status".to_owned())?;
        let sum = s.summary.clone().unwrap_or_default();
        if (sum.matched, sum.violating) == (1, 1) {
            Ok(())
        } else {
            Err(format!("summary {:?}", s.summary))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", tail_lines(&op.logs(), 30)));
    wait_for_events(
        &admin,
        work.name(),
        "web",
        "ProductionReadinessViolation",
        SETTLE,
        |e| !e.is_empty(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", tail_lines(&op.logs(), 30)));
    // The workload's policy report (openreports.io reports: create/patch, list, watch).
    let reports: Api<kube::api::DynamicObject> = Api::namespaced_with(
        admin.clone(),
        work.name(),
        &prodready::controller::reports::api_resource(prodready::reports::ReportApi::OpenReports),
    );
    wait_for(SETTLE, "the workload's report", || async {
        reports
            .get_opt("prodready-deployment-web")
            .await
            .map_err(|e| e.to_string())?
            .map(|_| ())
            .ok_or_else(|| "no report yet".to_owned())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", tail_lines(&op.logs(), 30)));
    let leases: Api<Lease> = Api::namespaced(admin.clone(), system.name());
    let lease = leases
        .get(&format!("{release}-leader"))
        .await
        .expect("the leader Lease");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some(identity)
    );

    // Two more resyncs with nothing forbidden in between.
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(op.exited().is_none(), "the operator exited");
    assert_no_forbidden(&op.logs());

    // The dashboard asks only for metrics this operator exports (after a review, an
    // evaluation and a leader election, every family it charts has samples).
    let (code, metrics) = op.get("/metrics").expect("scrape /metrics");
    assert_eq!(code, 200);
    let exported = exported_names(&metrics);
    let wanted = dashboard_metric_names();
    assert!(wanted.len() >= 10, "{wanted:?}");
    let missing: Vec<&String> = wanted.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the operator does not export: {missing:?}\nexported: {exported:?}"
    );
    drop(op);
    let _ = cp
        .kubectl(["delete", "validatingwebhookconfiguration", &vwc_name])
        .await;
}

#[tokio::test]
async fn a_missing_rule_is_reported_clearly_and_the_operator_keeps_running() {
    let cp = plane().await;
    let admin = cp.client().await.expect("client");
    let system = cp.temp_namespace("rbac-neg").await.expect("namespace");
    let rendered = Rendered::new(
        cp,
        "prodready-neg",
        system.name(),
        &["webhook.enabled=false"],
    )
    .await;
    let full = rendered.rbac();
    // Remove `deployments` from the apps list/watch rule.
    let crippled: Vec<Value> = full
        .iter()
        .cloned()
        .map(|mut o| {
            if o["kind"] == "ClusterRole" {
                for rule in o["rules"].as_array_mut().expect("rules") {
                    if rule["apiGroups"] == json!(["apps"]) {
                        rule["resources"] = json!(["daemonsets", "replicasets", "statefulsets"]);
                    }
                }
            }
            o
        })
        .collect();
    assert_ne!(crippled, full, "the apps rule was found and changed");
    apply_objects(&admin, &crippled).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = chart_account_kubeconfig(cp, &rendered, system.name(), dir.path()).await;
    let args = operator_args(
        &rendered,
        &kubeconfig,
        free_port().expect("a free port"),
        free_port().expect("a free port"),
    );
    assert!(args.iter().any(|a| a == "--webhook-enabled=false"));
    let op = start_operator(
        &args,
        &[
            ("POD_NAME", "prodready-neg-0"),
            ("POD_NAMESPACE", system.name()),
        ],
        dir.path(),
    );

    // Readiness names the cache that cannot sync, and a log line names verb and resource.
    let body = wait_for(SETTLE, "readiness 503 naming only Deployment", || async {
        if let Some(status) = op.exited() {
            return Err(format!("exited with {status}"));
        }
        let line = op
            .logs()
            .lines()
            .find(|l| denied_listing(l) && l.contains("deployments"))
            .map(str::to_owned);
        match op.get("/health/ready") {
            // Every other cache syncs: only Deployment is left.
            Ok((503, body))
                if body.contains("Deployment")
                    && !body.contains("StatefulSet")
                    && !body.contains("Lease")
                    && line.is_some() =>
            {
                Ok(body)
            }
            Ok((code, body)) => Err(format!("{code} {body}; log line: {line:?}")),
            Err(e) => Err(e),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", tail_lines(&op.logs(), 30)));
    assert!(body.contains("caches not synced"), "{body}");
    let logs = op.logs();
    // prodready's own line names the cache (kind) and carries the API server's message
    // (verb and resource).
    let ours = logs
        .lines()
        .find(|l| {
            l.contains("the Deployment watch is forbidden")
                && l.contains("grant the operator list and watch on that resource")
                && l.contains("\"kind\":\"Deployment\"")
                && denied_listing(l)
                && l.contains("deployments")
        })
        .map(str::to_owned);
    assert!(
        ours.is_some(),
        "no `the Deployment watch is forbidden` line naming the verb and resource:\n{}",
        tail_lines(&logs, 30)
    );

    // No crash loop: it keeps running, live, not ready, for several retry rounds.
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        assert!(
            op.exited().is_none(),
            "the operator exited:\n{}",
            tail_lines(&op.logs(), 20)
        );
        assert_eq!(op.get("/health/live").map(|r| r.0), Ok(200));
        assert_eq!(op.get("/health/ready").map(|r| r.0), Ok(503));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The rule back: ready without a restart.
    apply_objects(&admin, &full).await;
    op.wait_ready(SETTLE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Whether a log line carries the API server's refusal to list a resource: `list` for a paged
/// initial list, `watch` for a streaming one (what the operator uses where the API server
/// supports it, as this one does).
fn denied_listing(line: &str) -> bool {
    line.contains("cannot list resource") || line.contains("cannot watch resource")
}
