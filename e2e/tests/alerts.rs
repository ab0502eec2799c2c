//! The shipped alert rules (charts/prodready/files/prometheus-rules.yaml): `promtool check rules`
//! accepts them, `promtool test rules` (e2e/alerts/prometheus-rules.test.yaml) proves every alert
//! fires and stays silent where it should, every alert has its runbook in docs/alerts.md, the
//! chart and config/prometheus ship the same rules, and every metric they read is one the
//! operator exports. promtool comes from `bash e2e/k8s-binaries.sh`, like the control plane.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use e2e::{
    Binaries, ControlPlane, apply_yaml, chart_dir, documents, helm_template,
    install_monitoring_crds, repo_root, run_program,
};
use serde_json::Value;

const RULES: &str = "charts/prodready/files/prometheus-rules.yaml";
const UNIT_TESTS: &str = "e2e/alerts/prometheus-rules.test.yaml";
const RUNBOOKS: &str = "docs/alerts.md";
const RUNBOOK_BASE: &str = "https://github.com/prodready/prodready/blob/main/docs/alerts.md#";

fn path(relative: &str) -> PathBuf {
    repo_root().join(relative)
}

fn yaml(relative: &str) -> Value {
    let text = std::fs::read_to_string(path(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"));
    let mut docs = documents(&text).unwrap_or_else(|e| panic!("{relative} is not YAML: {e:#}"));
    assert_eq!(docs.len(), 1, "{relative} holds one document");
    docs.remove(0)
}

/// The alerting rules of the shipped file, by alert name.
fn alerts() -> BTreeMap<String, Value> {
    let rules = yaml(RULES);
    let mut out = BTreeMap::new();
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let name = rule["alert"]
                .as_str()
                .expect("alerting rules only")
                .to_owned();
            assert!(
                out.insert(name.clone(), rule.clone()).is_none(),
                "{name} twice"
            );
        }
    }
    out
}

fn promtool() -> PathBuf {
    Binaries::locate()
        .unwrap_or_else(|e| panic!("{e}"))
        .promtool()
}

#[tokio::test]
async fn promtool_checks_the_shipped_rules() {
    let out = run_program(
        &promtool(),
        ["check", "rules", &path(RULES).to_string_lossy()],
    )
    .await
    .expect("run promtool");
    assert!(
        out.success(),
        "promtool check rules:\n{}{}",
        out.stdout,
        out.stderr
    );
    let want = format!("SUCCESS: {} rules found", alerts().len());
    assert!(out.stdout.contains(&want), "{}", out.stdout);
}

#[tokio::test]
async fn promtool_unit_tests_pass_and_cover_every_alert_firing_and_silent() {
    let out = run_program(
        &promtool(),
        ["test", "rules", &path(UNIT_TESTS).to_string_lossy()],
    )
    .await
    .expect("run promtool");
    assert!(
        out.success(),
        "promtool test rules {UNIT_TESTS}:\n{}{}",
        out.stdout,
        out.stderr
    );

    let tests = yaml(UNIT_TESTS);
    let (mut fires, mut silent) = (BTreeSet::new(), BTreeSet::new());
    for test in tests["tests"].as_array().expect("tests") {
        for t in test["alert_rule_test"].as_array().into_iter().flatten() {
            let name = t["alertname"].as_str().expect("alertname").to_owned();
            let firing = t["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
            if firing { &mut fires } else { &mut silent }.insert(name);
        }
    }
    for name in alerts().keys() {
        assert!(fires.contains(name), "no unit test where {name} fires");
        assert!(
            silent.contains(name),
            "no unit test where {name} stays silent"
        );
    }
}

#[test]
fn every_alert_has_a_severity_a_summary_and_a_runbook_section() {
    let doc = std::fs::read_to_string(path(RUNBOOKS)).expect("docs/alerts.md");
    let headings: BTreeSet<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(str::trim)
        .collect();
    for (name, rule) in alerts() {
        assert!(
            matches!(
                rule["labels"]["severity"].as_str(),
                Some("critical" | "warning")
            ),
            "{name}: severity critical or warning"
        );
        for a in ["summary", "description"] {
            assert!(
                rule["annotations"][a]
                    .as_str()
                    .is_some_and(|s| s.ends_with('.')),
                "{name}: {a} is a sentence"
            );
        }
        assert_eq!(
            rule["annotations"]["runbook_url"].as_str(),
            Some(format!("{RUNBOOK_BASE}{}", name.to_lowercase()).as_str()),
            "{name}: runbook_url"
        );
        assert!(
            headings.contains(name.as_str()),
            "{RUNBOOKS} has no `### {name}` section"
        );
        let section = doc
            .split(&format!("### {name}\n"))
            .nth(1)
            .and_then(|s| s.split("\n### ").next())
            .unwrap_or_default();
        for part in ["**What it means.**", "**What to do.**"] {
            assert!(section.contains(part), "{name}'s runbook has no {part}");
        }
    }
    assert_eq!(
        headings.len(),
        alerts().len(),
        "{RUNBOOKS} has a section for each alert and no other `###` heading"
    );
}

/// Helm's own labels, which config/ does not carry.
fn without_helm_labels(mut v: Value) -> Value {
    if let Some(labels) = v
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        for k in [
            "helm.sh/chart",
            "app.kubernetes.io/managed-by",
            "app.kubernetes.io/version",
        ] {
            labels.remove(k);
        }
    }
    v
}

async fn chart_rule(cp: &ControlPlane, release: &str, sets: &[&str]) -> Value {
    let mut all = vec!["prometheusRule.enabled=true"];
    all.extend_from_slice(sets);
    let rendered = helm_template(cp, release, "prodready-system", &all)
        .await
        .expect("helm template");
    let docs = documents(&rendered).expect("the chart renders YAML");
    let mut rules: Vec<Value> = docs
        .into_iter()
        .filter(|d| d["kind"] == "PrometheusRule")
        .collect();
    assert_eq!(rules.len(), 1, "one PrometheusRule");
    rules.remove(0)
}

#[tokio::test]
async fn the_chart_and_config_prometheus_ship_the_same_rules() {
    let cp = ControlPlane::shared().await.expect("control plane");
    let client = cp.client().await.expect("client");
    install_monitoring_crds(&client)
        .await
        .expect("install the Prometheus Operator CRDs");

    // Off by default.
    let default = helm_template(cp, "prodready", "prodready-system", &[])
        .await
        .expect("helm template");
    assert!(!default.contains("kind: PrometheusRule"));

    // Release `prodready`: the file's groups as they are.
    let chart = chart_rule(cp, "prodready", &[]).await;
    assert_eq!(chart["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(
        chart["spec"],
        yaml(RULES),
        "the chart renders the rule file as its spec"
    );

    // config/prometheus is the same object (Helm's labels aside).
    let out = cp
        .kubectl(["kustomize", &path("config/prometheus").to_string_lossy()])
        .await
        .expect("run kubectl");
    assert!(out.success(), "kubectl kustomize: {}", out.stderr);
    let kustomized = documents(&out.stdout).expect("kustomize output parses");
    assert_eq!(kustomized.len(), 1);
    assert_eq!(
        kustomized[0],
        without_helm_labels(chart.clone()),
        "config/prometheus/prometheusrule.yaml differs from the chart's: run `make prometheus-rules`"
    );

    // Another release selects its own metrics Service's job; `prometheusRule.job` overrides it.
    let text =
        serde_json::to_string(&chart_rule(cp, "shop", &[]).await["spec"]).unwrap_or_default();
    assert!(text.contains(r#"job=\"shop-prodready-metrics\""#), "{text}");
    assert!(!text.contains(r#"job=\"prodready-metrics\""#), "{text}");
    let custom = chart_rule(
        cp,
        "prodready",
        &[
            "prometheusRule.job=kubernetes-pods",
            "prometheusRule.namespace=monitoring",
            "prometheusRule.labels.release=kube-prometheus-stack",
        ],
    )
    .await;
    let text = serde_json::to_string(&custom["spec"]).unwrap_or_default();
    assert!(text.contains(r#"job=\"kubernetes-pods\""#), "{text}");
    assert_eq!(custom["metadata"]["namespace"], "monitoring");
    assert_eq!(
        custom["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    assert!(chart_dir().join("files/prometheus-rules.yaml").is_file());

    // The Prometheus Operator's own CRD accepts the object.
    let ns = cp.temp_namespace("rules").await.expect("namespace");
    let mut object = chart;
    object["metadata"]["namespace"] = Value::from(ns.name());
    let applied = apply_yaml(&client, Some(ns.name()), &object.to_string())
        .await
        .expect("the API server accepts the PrometheusRule");
    assert_eq!(applied.len(), 1);
}

/// Metric names a PromQL expression reads: identifiers followed by a label matcher.
fn selected_metrics(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find('{') {
        let before = &rest[..i];
        let name: String = before
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if !name.is_empty() {
            names.insert(name);
        }
        rest = rest[i + 1..].split_once('}').map_or("", |(_, r)| r);
    }
    names
}

#[tokio::test]
async fn every_metric_the_rules_read_is_one_the_operator_exports() {
    use prodready::controller::metrics::{ControllerMetrics, ViolationLabels, WorkloadLabels};
    use prometheus_client::registry::Registry;
    // The registry `prodready run` builds, with one series in each family (an empty family
    // is not exposed).
    let mut registry = Registry::default();
    let deps = prodready::kubeapi::DependencyMetrics::register(&mut registry);
    let calls = prodready::kubeapi::ApiCalls::new(deps);
    let _ = calls
        .once("get_version", async { Ok::<(), kube::Error>(()) })
        .await;
    let http = prodready::metrics::HttpMetrics::register(&mut registry);
    drop(http.timer("/validate", "POST"));
    http.count("/validate", "POST", 200);
    let controller = ControllerMetrics::register(&mut registry);
    controller.reconciled("success", None);
    drop(controller.timer(std::time::Duration::ZERO));
    let violation = ViolationLabels {
        policy: "p".into(),
        namespace: "n".into(),
        rule: "secret-literal-env",
        severity: "critical",
    };
    let workload = WorkloadLabels {
        policy: "p".into(),
        result: "compliant",
    };
    controller.publish(&[(violation, 1)], &[(workload, 1)], &mut Default::default());
    prodready::leader::LeaderMetrics::register(&mut registry);
    let admission = prodready::admission::AdmissionMetrics::register(&mut registry);
    admission.review(
        "Deployment",
        "CREATE",
        prodready::admission::Decision::Warned,
    );
    admission.reload(true, Some(1));
    prodready::admin::Health::new(std::sync::Arc::default()).register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    let families: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_owned(), t.to_owned()))
        .collect();

    let mut read = BTreeSet::new();
    for (name, rule) in alerts() {
        let expr = rule["expr"].as_str().expect("expr");
        let names = selected_metrics(expr);
        assert!(!names.is_empty(), "{name}: no metric found in {expr}");
        read.extend(names);
    }
    for metric in read.iter().filter(|m| *m != "up") {
        let family = [("_total", "counter"), ("_bucket", "histogram")]
            .iter()
            .find_map(|(suffix, kind)| {
                let base = metric.strip_suffix(suffix)?;
                (families.get(base).map(String::as_str) == Some(kind)).then_some(base)
            })
            .unwrap_or(metric);
        assert!(
            families.contains_key(family),
            "the rules read {metric}, which the operator does not export (it exports {:?})",
            families.keys()
        );
    }
    assert!(read.contains("prodready_ready"), "{read:?}");
}

#[test]
fn metric_names_are_found_in_expressions() {
    assert_eq!(
        selected_metrics(r#"max by (job) (up{job="a"}) < 1 or absent(x_total{job="a", s=~"b|c"})"#),
        BTreeSet::from(["up".to_owned(), "x_total".to_owned()])
    );
}
