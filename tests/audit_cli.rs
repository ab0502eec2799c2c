//! `prodready audit` end to end: the real binary, real files, exact exit codes and texts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_prodready"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    bin()
        .current_dir(root())
        .args(args)
        .output()
        .expect("prodready runs")
}

fn run_stdin(args: &[&str], input: &str) -> Output {
    let mut child = bin()
        .current_dir(root())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prodready starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("prodready runs")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write fixture");
    p
}

const GOOD: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: good, namespace: ok}
spec:
  replicas: 2
  selector: {matchLabels: {app: good}}
  template:
    metadata: {labels: {app: good}}
    spec:
      containers:
        - name: app
          image: "good:1.0"
          ports: [{name: metrics, containerPort: 9090}]
          livenessProbe: {httpGet: {path: /live, port: 9090}}
          readinessProbe: {httpGet: {path: /ready, port: 9090}}
          lifecycle: {preStop: {sleep: {seconds: 5}}}
          resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 128Mi}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: good, namespace: ok}
spec: {maxUnavailable: 1, selector: {matchLabels: {app: good}}}
---
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata: {name: good, namespace: ok}
spec:
  selector: {matchLabels: {app: good}}
  podMetricsEndpoints: [{port: metrics}]
"#;

#[test]
fn examples_report_and_exit_one() {
    let out = run(&["audit", "examples/", "--color", "never"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}");
    assert!(stdout.contains("Deployment shop/checkout"), "{stdout}");
    assert!(stdout.contains("secret-literal-env"), "{stdout}");
    assert!(stdout.contains("Summary: 4 workloads"), "{stdout}");
    // One footer line names where every rule's page is; the table stays free of links.
    assert_eq!(
        stdout
            .matches("https://github.com/prodready/prodready/blob/main/docs/rules/RULE.md")
            .count(),
        1,
        "{stdout}"
    );
    assert!(
        !stdout.contains("sk_live_do_not_commit_me"),
        "a secret value leaked:\n{stdout}"
    );
}

#[test]
fn examples_json_shape() {
    let out = run(&["audit", "examples/", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert_eq!(v["version"], 1);
    let summary = &v["summary"];
    assert_eq!(summary["workloads"], 4);
    assert_eq!(
        summary["compliant"].as_u64().unwrap_or(0)
            + summary["violating"].as_u64().unwrap_or(0)
            + summary["exempt"].as_u64().unwrap_or(0)
            + summary["unknown"].as_u64().unwrap_or(0),
        4
    );
    let findings = v["findings"].as_array().expect("findings array");
    let f = findings
        .iter()
        .find(|f| f["rule"] == "image-pinned" && f["name"] == "checkout")
        .expect("checkout fails image-pinned");
    for key in [
        "rule",
        "result",
        "severity",
        "kind",
        "namespace",
        "name",
        "container",
        "message",
        "remediation",
        "policy",
        "source",
    ] {
        assert!(f.get(key).is_some(), "finding lacks {key}: {f}");
    }
    assert_eq!(f["result"], "fail");
    assert_eq!(f["severity"], "high");
    assert_eq!(f["kind"], "Deployment");
    assert_eq!(f["namespace"], "shop");
    assert_eq!(f["container"], "app");
    assert_eq!(f["policy"], "baseline");
    assert_eq!(f["source"]["file"], "examples/violating-app.yaml");
    assert_eq!(f["source"]["document"], 0);
    assert!(v["errors"].as_array().is_some_and(Vec::is_empty));
    // The single-runner worker's Lease cannot be verified offline: unknown, never a pass.
    assert!(
        findings
            .iter()
            .any(|f| f["rule"] == "leader-lease" && f["result"] == "unknown")
    );
}

#[test]
fn compliant_input_exits_zero_and_fail_on_none_never_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write(dir.path(), "good.yaml", GOOD);
    let out = run(&["audit", good.to_str().unwrap_or_default(), "-o", "json"]);
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["summary"]["compliant"], 1);
    let out = run(&["audit", "examples/", "--fail-on", "none"]);
    assert_eq!(out.status.code(), Some(0));
    let out = run(&["audit", "examples/", "--fail-on", "critical", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "secret-literal-env is critical");
}

#[test]
fn missing_metadata_namespace_is_default() {
    let out = run_stdin(
        &["audit", "-", "-o", "json"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: 'a:latest'}]\n",
    );
    let v = json_of(&out);
    assert!(
        v["findings"]
            .as_array()
            .is_some_and(|f| f.iter().all(|f| f["namespace"] == "default"))
    );
}

#[test]
fn malformed_yaml_names_file_document_and_line_and_audits_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = write(
        dir.path(),
        "broken.yaml",
        &format!(
            "{GOOD}---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: [unclosed\n"
        ),
    );
    let out = run(&["audit", broken.to_str().unwrap_or_default(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let v = json_of(&out);
    let e = &v["errors"][0];
    assert!(
        e["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("broken.yaml")),
        "{e}"
    );
    assert_eq!(e["document"], 3);
    assert!(
        e["line"].as_u64().is_some_and(|l| l >= 34),
        "line should point into the 4th document: {e}"
    );
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("invalid YAML")),
        "{e}"
    );
    assert_eq!(
        v["summary"]["workloads"], 1,
        "the good document is still audited"
    );
    // The table names it on stdout too.
    let out = run(&[
        "audit",
        broken.to_str().unwrap_or_default(),
        "--color",
        "never",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("broken.yaml document 3 line"), "{stdout}");
}

#[test]
fn wrong_types_removed_api_versions_and_documents_that_are_not_objects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(
        dir.path(),
        "bad.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n---\nmetadata: {name: nokind}\n---\napiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: old}\n---\n- just\n- a list\n",
    );
    let out = run(&["audit", f.to_str().unwrap_or_default(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let v = json_of(&out);
    let msgs: Vec<&str> = v["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs[0].starts_with("invalid Deployment:"), "{msgs:?}");
    assert!(
        msgs[0].contains("replicas") || msgs[0].contains("invalid type"),
        "{msgs:?}"
    );
    assert_eq!(
        msgs[1],
        "Deployment apps/v1beta1 was removed in Kubernetes 1.16; use apps/v1 (`kubectl convert` or an edit of apiVersion, plus the fields the new version requires)"
    );
    // A mapping without a kind and a bare list are not Kubernetes objects: counted and
    // named as skipped, not errors.
    let skipped = &v["inputs"]["skipped"];
    assert_eq!(skipped.as_array().map(Vec::len), Some(2), "{skipped:#}");
    assert_eq!(skipped[0]["document"], 1);
    assert_eq!(skipped[0]["line"], 6);
    assert_eq!(
        skipped[0]["reason"],
        "not a Kubernetes object (no apiVersion and kind)"
    );
    assert_eq!(skipped[1]["document"], 3);
}

#[test]
fn twenty_megabyte_file_is_handled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blob = "x".repeat(20 * 1024 * 1024);
    let big = write(
        dir.path(),
        "big.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big}}\ndata:\n  blob: \"{blob}\"\n---\n{GOOD}"
        ),
    );
    let out = run(&["audit", big.to_str().unwrap_or_default(), "-o", "json"]);
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{}", v["errors"]);
    assert_eq!(v["summary"]["workloads"], 1);
}

#[test]
fn directory_without_manifests_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "README.md", "# nothing here\n");
    let out = run(&["audit", dir.path().to_str().unwrap_or_default()]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("directory holds no manifests (*.yaml, *.yml, *.json)"),
        "{stdout}"
    );
}

#[test]
fn missing_file_is_an_error() {
    let out = run(&["audit", "does/not/exist.yaml", "-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let v = json_of(&out);
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("cannot read"))
    );
}

#[test]
fn invalid_policy_file_is_reported_and_other_inputs_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = write(
        dir.path(),
        "policy.yaml",
        "apiVersion: prodready.dev/v1alpha1\nkind: ProductionPolicy\nmetadata: {name: broken}\nspec:\n  exemptions:\n    - rules: [no-such-rule]\n      reason: \"\"\n",
    );
    let out = run(&[
        "audit",
        "--policy",
        policy.to_str().unwrap_or_default(),
        "examples/",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let v = json_of(&out);
    let m = v["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(m.contains("policy broken is invalid"), "{m}");
    assert!(m.contains("exemptions[0]: reason is required"), "{m}");
    assert!(m.contains("unknown rule id `no-such-rule`"), "{m}");
}

#[test]
fn policy_file_with_exemption_applies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = write(
        dir.path(),
        "policy.yaml",
        "apiVersion: prodready.dev/v1alpha1\nkind: ProductionPolicy\nmetadata: {name: team}\nspec:\n  rules:\n    replicasHa: {enabled: false}\n  exemptions:\n    - rules: [\"*\"]\n      names: [checkout]\n      reason: legacy, rewrite planned\n      expires: \"2099-01-01T00:00:00Z\"\n",
    );
    let out = run(&[
        "audit",
        "--policy",
        policy.to_str().unwrap_or_default(),
        "examples/",
        "-o",
        "json",
    ]);
    let v = json_of(&out);
    let findings = v["findings"].as_array().expect("findings");
    assert!(findings.iter().all(|f| f["policy"] == "team"));
    let checkout: Vec<_> = findings
        .iter()
        .filter(|f| f["name"] == "checkout")
        .collect();
    assert!(!checkout.is_empty());
    assert!(
        checkout.iter().all(|f| f["result"] == "exempt"),
        "{checkout:?}"
    );
    assert_eq!(
        checkout[0]["exemption"]["reason"],
        "legacy, rewrite planned"
    );
    assert_eq!(checkout[0]["exemption"]["expires"], "2099-01-01T00:00:00Z");
    assert!(findings.iter().all(|f| f["rule"] != "replicas-ha"));
    // An exemption evaluated after its expiry no longer applies.
    let out = run(&[
        "audit",
        "--policy",
        policy.to_str().unwrap_or_default(),
        "examples/",
        "-o",
        "json",
        "--now",
        "2099-01-02T00:00:00Z",
    ]);
    let v = json_of(&out);
    assert!(
        v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["name"] == "checkout" && f["result"] == "fail")
    );
}

#[test]
fn helm_template_on_stdin_keeps_source() {
    let input = format!("---\n# Source: shop/templates/deployment.yaml\n{GOOD}");
    let out = run_stdin(&["audit", "-", "-o", "json", "--show-passed"], &input);
    let v = json_of(&out);
    let f = &v["findings"][0];
    assert_eq!(f["source"]["file"], "-");
    assert_eq!(f["source"]["helmSource"], "shop/templates/deployment.yaml");
    assert_eq!(f["result"], "pass");
}

#[test]
fn kind_list_items_are_audited() {
    let input = r#"{"apiVersion": "v1", "kind": "List", "items": [
      {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": "x:latest"}]}}}},
      {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "b"}, "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}}}
    ]}"#;
    let out = run_stdin(&["audit", "-", "-o", "json"], input);
    let v = json_of(&out);
    assert_eq!(v["summary"]["workloads"], 2);
    assert!(
        v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["source"]["item"] == 1)
    );
}

#[test]
fn sarif_is_valid_for_code_scanning() {
    let out = run(&["audit", "examples/", "-o", "sarif"]);
    let v = json_of(&out);
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "prodready");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), prodready::rules::CATALOG.len());
    assert!(
        rules
            .iter()
            .all(|r| r["help"]["text"].as_str().is_some_and(|t| !t.is_empty()))
    );
    // Every rule links its page in docs/rules/, which exists in the repository.
    for r in rules {
        let id = r["id"].as_str().unwrap_or_default();
        assert_eq!(
            r["helpUri"].as_str(),
            Some(
                format!("https://github.com/prodready/prodready/blob/main/docs/rules/{id}.md")
                    .as_str()
            )
        );
        let page = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/rules")
            .join(format!("{id}.md"));
        assert!(page.is_file(), "{} is missing", page.display());
    }
    let results = run["results"].as_array().expect("results");
    assert!(!results.is_empty());
    for r in results {
        let idx = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"]);
        let loc = &r["locations"][0]["physicalLocation"];
        assert!(
            loc["artifactLocation"]["uri"]
                .as_str()
                .is_some_and(|u| u.starts_with("examples/"))
        );
        assert!(loc["region"]["startLine"].as_u64().is_some_and(|l| l >= 1));
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap_or("")));
    }
}

#[test]
fn junit_has_one_testcase_per_workload_and_rule() {
    let out = run(&["audit", "examples/", "-o", "junit"]);
    let xml = String::from_utf8_lossy(&out.stdout);
    let enabled = prodready::engine::CompiledPolicy::builtin(
        prodready::api::Profile::Baseline,
        &prodready::rules::CATALOG,
    )
    .rules
    .len();
    assert_eq!(xml.matches("<testcase ").count(), 4 * enabled, "{xml}");
    assert!(xml.contains("<failure message="));
    assert!(xml.starts_with("<?xml"));
    let mut reader = quick_xml::Reader::from_str(&xml);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("JUnit output is not well-formed XML: {e}"),
        }
    }
}

#[test]
fn rules_and_explain() {
    let out = run(&["rules"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for r in prodready::rules::CATALOG {
        assert!(stdout.contains(r.id), "rules lacks {}", r.id);
    }
    let out = run(&["explain", "leader-lease"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Why it matters:") && stdout.contains("Example fix:"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(
            "Read more: https://github.com/prodready/prodready/blob/main/docs/rules/leader-lease.md\n"
        ),
        "{stdout}"
    );
    let out = run(&["explain", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown rule `nope`"));
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(run(&["audit"]).status.code(), Some(2));
    assert_eq!(
        run(&["audit", "-o", "xml", "examples/"]).status.code(),
        Some(2)
    );
    assert_eq!(
        run(&["audit", "--fail-on", "sometimes", "examples/"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn cluster_flags_are_checked_before_any_cluster_is_read() {
    let stderr = |out: &Output| String::from_utf8_lossy(&out.stderr).into_owned();
    // Paths and --cluster do not mix: a sentence, exit 2, no report.
    let out = run(&["audit", "--cluster", "examples/"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out).trim(),
        "prodready: --cluster audits the live cluster and takes no PATH (got examples/); give either paths or --cluster"
    );
    // The cluster flags need --cluster.
    let out = run(&["audit", "--context", "prod", "examples/"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--cluster"), "{}", stderr(&out));
    // A kubeconfig that cannot be read: named, with what to do.
    let out = run(&["audit", "--cluster", "--kubeconfig", "no/such/kubeconfig"]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.starts_with("prodready: cannot use the kubeconfig no/such/kubeconfig: ")
            && e.contains("give --kubeconfig FILE"),
        "{e}"
    );
    // --profile stays optional for files (baseline) and exclusive with --policy.
    assert_eq!(run(&["audit", "examples/"]).status.code(), Some(1));
    assert_eq!(
        run(&[
            "audit",
            "--profile",
            "strict",
            "--policy",
            "x.yaml",
            "examples/"
        ])
        .status
        .code(),
        Some(2)
    );
}

/// The (name, rule, result, message) of every finding of `rules` in a JSON report.
fn findings_of(v: &Value, rules: &[&str]) -> Vec<(String, String, String, String)> {
    let mut out: Vec<_> = v["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .filter(|f| rules.iter().any(|r| f["rule"] == *r))
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (s("name"), s("rule"), s("result"), s("message"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn hpa_managed_deployments_are_judged_by_their_autoscaler() {
    let out = run(&["audit", "tests/fixtures/hpa/", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert!(v["errors"].as_array().is_some_and(Vec::is_empty), "{v}");
    assert_eq!(v["summary"]["workloads"], 5);
    // web (minReplicas 3, no replicas) and the live cart (replicas defaulted to 1 by the API
    // server, minReplicas 3) pass both rules: neither appears.
    assert_eq!(
        findings_of(&v, &["replicas-ha", "disruption-budget"]),
        vec![
            (
                "api".to_owned(),
                "replicas-ha".to_owned(),
                "fail".to_owned(),
                "scales down to minReplicas 1 of HorizontalPodAutoscaler \"api\": a node drain or crash takes it down".to_owned()
            ),
            (
                "blocked".to_owned(),
                "disruption-budget".to_owned(),
                "fail".to_owned(),
                "PodDisruptionBudget \"blocked\" has minAvailable 3 with minReplicas 3 of HorizontalPodAutoscaler \"blocked\": no pod can ever be evicted, node drains hang".to_owned()
            ),
            (
                "cart".to_owned(),
                "disruption-budget".to_owned(),
                "fail".to_owned(),
                "no PodDisruptionBudget selects the pods of Deployment/cart: a node drain may evict every replica at once".to_owned()
            ),
            (
                "pinned".to_owned(),
                "disruption-budget".to_owned(),
                "fail".to_owned(),
                "no PodDisruptionBudget selects the pods of Deployment/pinned: a node drain may evict every replica at once".to_owned()
            ),
            (
                "pinned".to_owned(),
                "replicas-ha".to_owned(),
                "fail".to_owned(),
                "sets replicas: 4 while HorizontalPodAutoscaler \"pinned\" scales it: every apply resets the count the autoscaler chose".to_owned()
            ),
        ]
    );
    // Without the autoscalers, the Deployments without replicas read as one replica.
    let dir = tempfile::tempdir().expect("tempdir");
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/hpa/manifests.yaml")).expect("fixture");
    let without: Vec<&str> = text
        .split("\n---\n")
        .filter(|d| !d.contains("kind: HorizontalPodAutoscaler"))
        .collect();
    let file = write(dir.path(), "no-hpa.yaml", &without.join("\n---\n"));
    let v = json_of(&run(&[
        "audit",
        file.to_str().unwrap_or_default(),
        "-o",
        "json",
    ]));
    let ha: Vec<String> = findings_of(&v, &["replicas-ha"])
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(ha, ["api", "blocked", "web"]);
}

#[test]
fn serving_without_ports_and_private_keys_in_any_armour_are_found_in_files() {
    let out = run(&["audit", "tests/fixtures/serving/", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert!(v["errors"].as_array().is_some_and(Vec::is_empty), "{v}");
    let found = findings_of(&v, &["graceful-shutdown", "secret-literal-env"]);
    let short: Vec<(&str, &str, &str)> = found
        .iter()
        .map(|f| (f.0.as_str(), f.1.as_str(), f.2.as_str()))
        .collect();
    assert_eq!(
        short,
        [
            ("behind-service", "graceful-shutdown", "fail"),
            ("keyed", "secret-literal-env", "fail"),
            ("probed", "graceful-shutdown", "fail"),
            ("worker", "graceful-shutdown", "fail"),
        ]
    );
    assert_eq!(
        found[1].3,
        "container \"app\" has literal secrets in env: \"TLS_MATERIAL\" (PEM private key)"
    );
    assert_eq!(
        found[3].3,
        "container \"app\" preStop sleeps 30s but terminationGracePeriodSeconds is 30s: the app is SIGKILLed before it can drain"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout)
            .contains("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"),
        "the key leaked"
    );
}

#[test]
fn a_container_exemption_in_a_policy_file_exempts_that_container_only() {
    let out = run(&[
        "audit",
        "--policy",
        "tests/fixtures/container-exemption/policy.yaml",
        "tests/fixtures/container-exemption/meshed.yaml",
        "-o",
        "json",
    ]);
    let v = json_of(&out);
    assert!(v["errors"].as_array().is_some_and(Vec::is_empty), "{v}");
    let mut found: Vec<(String, String, String, String)> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (s("name"), s("rule"), s("result"), s("container"))
        })
        .collect();
    found.sort();
    let want: Vec<(String, String, String, String)> = [
        ("api", "liveness-probe", "exempt", "istio-proxy"),
        ("api", "memory-limit", "exempt", "istio-proxy"),
        ("api", "readiness-probe", "exempt", "istio-proxy"),
        ("api", "readiness-probe", "fail", "app"),
        ("api", "resource-requests", "exempt", "istio-proxy"),
        ("web", "liveness-probe", "exempt", "istio-proxy"),
        ("web", "memory-limit", "exempt", "istio-proxy"),
        ("web", "readiness-probe", "exempt", "istio-proxy"),
        ("web", "resource-requests", "exempt", "istio-proxy"),
    ]
    .iter()
    .map(|(a, b, c, d)| ((*a).into(), (*b).into(), (*c).into(), (*d).into()))
    .collect();
    assert_eq!(found, want, "{v}");
    assert_eq!(v["summary"]["violating"], 1);
    assert_eq!(v["summary"]["exempt"], 1);
}

/// The mixed case (api's readiness-probe: the app fails, the exempt sidecar too) in every
/// format: the app's finding fails, the sidecar's reads exempt with its reason and expiry.
#[test]
fn a_failing_rule_shows_its_exempt_sidecar_in_every_format() {
    let args = |format: &'static str| {
        [
            "audit",
            "--policy",
            "tests/fixtures/container-exemption/policy.yaml",
            "tests/fixtures/container-exemption/meshed.yaml",
            "-o",
            format,
        ]
    };
    let reason = "injected by the mesh; probed and sized by its own operator";
    let out = run(&args("json"));
    assert_eq!(out.status.code(), Some(1), "api's app still fails");
    let v = json_of(&out);
    let sidecar: Vec<&Value> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["name"] == "api" && f["rule"] == "readiness-probe")
        .collect();
    assert_eq!(sidecar.len(), 2, "{v}");
    assert_eq!(sidecar[0]["result"], "fail", "failures first");
    assert_eq!(sidecar[0]["container"], "app");
    assert!(sidecar[0].get("exemption").is_none());
    assert_eq!(sidecar[1]["result"], "exempt");
    assert_eq!(sidecar[1]["container"], "istio-proxy");
    assert_eq!(sidecar[1]["exemption"]["reason"], reason);
    assert_eq!(sidecar[1]["exemption"]["expires"], "2099-01-01T00:00:00Z");
    assert_eq!(sidecar[1]["exemption"]["source"], "policy");

    let table = String::from_utf8_lossy(&run(&args("table")).stdout).into_owned();
    let flat = table.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("FAIL"), "{table}");
    assert!(flat.contains("EXEMPT"), "{table}");
    assert!(flat.contains("until 2099-01-01T00:00:00Z"), "{table}");

    let sarif: Value = serde_json::from_slice(&run(&args("sarif")).stdout).expect("SARIF is JSON");
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    let suppressed: Vec<&Value> = results
        .iter()
        .filter(|r| {
            r["ruleId"] == "readiness-probe"
                && r["message"]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("istio-proxy"))
        })
        .collect();
    assert!(!suppressed.is_empty(), "{sarif}");
    assert!(
        suppressed
            .iter()
            .all(|r| r["suppressions"][0]["justification"]
                .as_str()
                .is_some_and(|j| j.contains(reason) && j.contains("2099-01-01"))),
        "{sarif}"
    );

    let junit = String::from_utf8_lossy(&run(&args("junit")).stdout).into_owned();
    let case = junit
        .split("<testcase ")
        .find(|c| c.contains("Deployment/mesh/api") && c.contains("name=\"readiness-probe\""))
        .unwrap_or_else(|| panic!("no testcase for api readiness-probe:\n{junit}"));
    assert!(case.contains("<failure"), "{case}");
    assert!(
        case.contains("exempt: container &quot;istio-proxy&quot;")
            || case.contains("exempt: container \"istio-proxy\""),
        "{case}"
    );

    let reports = reports_of(&run(&args("openreports")));
    let api = reports
        .iter()
        .find(|r| r["scope"]["name"] == "api")
        .expect("a report for api");
    let readiness: Vec<(&str, &str)> = api["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["rule"] == "readiness-probe")
        .map(|r| {
            (
                r["result"].as_str().unwrap_or_default(),
                r["properties"]["containers"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        readiness,
        [("fail", "app"), ("skip", "istio-proxy")],
        "{api}"
    );
    let skip = api["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["rule"] == "readiness-probe" && r["result"] == "skip")
        .expect("skip result");
    assert_eq!(skip["properties"]["exemptionReason"], reason);
    assert_eq!(
        skip["properties"]["exemptionExpires"],
        "2099-01-01T00:00:00Z"
    );
    assert_eq!(
        skip["properties"]["exemptionSource"],
        "policy spec.exemptions[0]"
    );
}

/// Workloads another operator controls are judged on their own, as the webhook and the
/// controller judge them (the same file is read by their unit tests); Pods and ReplicaSets of
/// judged workloads are left to those.
#[test]
fn workloads_another_operator_controls_are_judged_on_their_own() {
    let out = run(&[
        "audit",
        "tests/fixtures/owned/operator-owned.yaml",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert!(v["errors"].as_array().is_some_and(Vec::is_empty), "{v}");
    assert_eq!(v["summary"]["workloads"], 3, "{}", v["summary"]);
    let mut judged: Vec<String> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|w| {
            format!(
                "{}/{}",
                w["kind"].as_str().unwrap_or_default(),
                w["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    judged.sort();
    judged.dedup();
    assert_eq!(
        judged,
        [
            "CronJob/db-backup",
            "Deployment/kafka-exporter",
            "StatefulSet/db"
        ]
    );
    assert!(
        findings_of(&v, &["readiness-probe"]).contains(&(
            "kafka-exporter".to_owned(),
            "readiness-probe".to_owned(),
            "fail".to_owned(),
            "container \"exporter\" has no readinessProbe".to_owned()
        )),
        "{v}"
    );
}

#[test]
fn scrape_annotations_count_as_coverage_only_where_the_policy_accepts_them() {
    let scraped = |policy: Option<&str>| {
        let mut args = vec!["audit"];
        if let Some(p) = policy {
            args.extend(["--policy", p]);
        }
        args.extend([
            "tests/fixtures/scrape-annotations/workloads.yaml",
            "-o",
            "json",
        ]);
        let v = json_of(&run(&args));
        assert!(v["errors"].as_array().is_some_and(Vec::is_empty), "{v}");
        findings_of(&v, &["service-monitor"])
            .into_iter()
            .map(|f| f.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        scraped(Some("tests/fixtures/scrape-annotations/policy.yaml")),
        ["bare"]
    );
    assert_eq!(scraped(None), ["annotated", "bare", "behind-service"]);
}

/// `--jobs`: files parsed and workloads judged in parallel give the one-thread report byte for
/// byte, in every format, on a generated corpus of 2,000 workloads in one file per document
/// (a seed of its own), with a broken file and a broken document among them (errors keep
/// their place) and two `kind: List` files.
#[test]
fn parallel_audit_reports_exactly_what_one_thread_reports() {
    use prodready::corpus::{Spec, generate};
    let dir = tempfile::tempdir().expect("temp dir");
    let mut n = 0usize;
    for g in generate(Spec {
        workloads: 2_000,
        namespaces: 40,
        seed: 20_261_130,
    }) {
        for d in g.documents {
            n += 1;
            // Directories too, so the walk order (sorted) is part of what is compared.
            let sub = dir.path().join(format!("{}", n % 7));
            std::fs::create_dir_all(&sub).expect("dir");
            write(&sub, &format!("{n:06}-{}.yaml", g.name), &d);
        }
    }
    write(dir.path(), "0-broken.yaml", "kind: [unclosed\n");
    write(
        dir.path(),
        "3/000100-half.yaml",
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: half, namespace: x}\n---\nkind: {\n",
    );
    write(
        dir.path(),
        "list.json",
        r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"in-list","namespace":"team-001"},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"x:1"}]}}}}]}"#,
    );
    let path = dir.path().to_string_lossy().into_owned();
    for format in ["json", "table", "sarif", "junit"] {
        let one = run(&[
            "audit",
            &path,
            "-o",
            format,
            "--jobs",
            "1",
            "--now",
            "2026-11-30T00:00:00Z",
        ]);
        assert_eq!(one.status.code(), Some(2), "input errors: exit 2");
        for jobs in ["2", "8"] {
            let many = run(&[
                "audit",
                &path,
                "-o",
                format,
                "--jobs",
                jobs,
                "--now",
                "2026-11-30T00:00:00Z",
            ]);
            assert_eq!(many.status.code(), one.status.code());
            assert!(
                many.stdout == one.stdout,
                "-o {format} --jobs {jobs} differs from --jobs 1"
            );
            assert_eq!(many.stderr, one.stderr);
        }
    }
    let report = json_of(&run(&[
        "audit",
        &path,
        "-o",
        "json",
        "--now",
        "2026-11-30T00:00:00Z",
    ]));
    assert_eq!(
        report["summary"]["workloads"], 2_001,
        "{}",
        report["summary"]
    );
    assert_eq!(
        report["errors"].as_array().map(Vec::len),
        Some(2),
        "{}",
        report["errors"]
    );
}

#[test]
fn jobs_must_be_a_positive_number() {
    let out = run(&["audit", "examples/", "--jobs", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--jobs"), "{err}");
}

/// The YAML documents of a report stream, as JSON values.
fn reports_of(out: &Output) -> Vec<Value> {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("stdout is not a YAML stream ({e}):\n{text}"))
}

#[test]
fn openreports_has_one_report_per_workload_with_the_json_verdicts() {
    let out = run(&["audit", "examples/", "-o", "openreports"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "same exit code as the other formats"
    );
    let reports = reports_of(&out);
    assert_eq!(reports.len(), 4, "one per workload");
    let json = json_of(&run(&["audit", "examples/", "-o", "json"]));
    // Every (workload, policy, rule, result) of the JSON findings, with OpenReports' names.
    let mut want: Vec<(String, String, String, String)> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let result = match f["result"].as_str().unwrap_or_default() {
                "unknown" => "error",
                "exempt" => "skip",
                other => other,
            };
            (
                format!(
                    "{}/{}/{}",
                    f["kind"].as_str().unwrap_or_default(),
                    f["namespace"].as_str().unwrap_or_default(),
                    f["name"].as_str().unwrap_or_default()
                ),
                f["policy"].as_str().unwrap_or_default().to_owned(),
                f["rule"].as_str().unwrap_or_default().to_owned(),
                result.to_owned(),
            )
        })
        .collect();
    want.sort();
    want.dedup(); // JSON has one finding per container, a report one result per rule
    let mut got = Vec::new();
    for r in &reports {
        assert_eq!(r["apiVersion"], "openreports.io/v1alpha1");
        assert_eq!(r["kind"], "Report");
        assert_eq!(r["source"], "prodready");
        assert_eq!(
            r["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "prodready"
        );
        assert!(
            r["metadata"].get("ownerReferences").is_none(),
            "no uid offline"
        );
        let scope = &r["scope"];
        assert_eq!(r["metadata"]["namespace"], scope["namespace"]);
        let key = format!(
            "{}/{}/{}",
            scope["kind"].as_str().unwrap_or_default(),
            scope["namespace"].as_str().unwrap_or_default(),
            scope["name"].as_str().unwrap_or_default()
        );
        let results = r["results"].as_array().cloned().unwrap_or_default();
        for (field, name) in [
            ("fail", "fail"),
            ("error", "error"),
            ("skip", "skip"),
            ("pass", "pass"),
        ] {
            let n = results.iter().filter(|x| x["result"] == name).count();
            assert_eq!(
                r["summary"][field].as_u64(),
                Some(n as u64),
                "{key} {field}"
            );
        }
        for x in results {
            assert_eq!(x["source"], "prodready");
            assert!(x["category"].as_str().is_some_and(|c| !c.is_empty()));
            got.push((
                key.clone(),
                x["policy"].as_str().unwrap_or_default().to_owned(),
                x["rule"].as_str().unwrap_or_default().to_owned(),
                x["result"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    got.sort();
    assert_eq!(got, want);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("sk_live_do_not_commit_me"),
        "a secret value leaked"
    );
}

#[test]
fn openreports_passes_on_request_and_policyreport_maps_critical() {
    let plain = reports_of(&run(&["audit", "examples/", "-o", "openreports"]));
    let passed = reports_of(&run(&[
        "audit",
        "examples/",
        "-o",
        "openreports",
        "--show-passed",
    ]));
    let passes = |rs: &[Value]| {
        rs.iter()
            .map(|r| r["summary"]["pass"].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert_eq!(passes(&plain), 0);
    assert!(passes(&passed) > 0);
    let old = reports_of(&run(&["audit", "examples/", "-o", "policyreport"]));
    assert_eq!(old.len(), 4);
    let results: Vec<&Value> = old
        .iter()
        .flat_map(|r| r["results"].as_array().into_iter().flatten())
        .collect();
    assert!(
        old.iter()
            .all(|r| r["apiVersion"] == "wgpolicyk8s.io/v1alpha2" && r["kind"] == "PolicyReport")
    );
    let secret = results
        .iter()
        .find(|x| x["rule"] == "secret-literal-env")
        .expect("the checkout Deployment has a literal secret");
    assert_eq!(secret["severity"], "high");
    assert_eq!(secret["properties"]["severity"], "critical");
    assert!(results.iter().all(|x| x["severity"] != "critical"));
}

/// `kubectl get cronjobs,jobs -o yaml` of one namespace, as of 2026-06-01: a healthy CronJob,
/// one with no success for five nights, one whose last three runs failed, one that is
/// suspended, and a Job of the healthy one (a run, not a workload).
const CLUSTER_CRONJOBS: &str = r#"apiVersion: v1
kind: List
items:
- apiVersion: batch/v1
  kind: CronJob
  metadata: {name: healthy, namespace: ops, creationTimestamp: "2026-01-01T00:00:00Z"}
  spec:
    schedule: "0 3 * * *"
    timeZone: Europe/Berlin
    concurrencyPolicy: Forbid
    startingDeadlineSeconds: 300
    jobTemplate: {spec: {template: {spec: {restartPolicy: OnFailure, containers: [{name: job, image: "job:1.0"}]}}}}
  status: {lastScheduleTime: "2026-05-31T01:00:00Z", lastSuccessfulTime: "2026-05-31T01:04:00Z"}
- apiVersion: batch/v1
  kind: CronJob
  metadata: {name: stale, namespace: ops, creationTimestamp: "2026-01-01T00:00:00Z"}
  spec:
    schedule: "0 3 * * *"
    concurrencyPolicy: Forbid
    startingDeadlineSeconds: 300
    jobTemplate: {spec: {template: {spec: {restartPolicy: OnFailure, containers: [{name: job, image: "job:1.0"}]}}}}
  status: {lastScheduleTime: "2026-05-31T03:00:00Z", lastSuccessfulTime: "2026-05-26T03:04:00Z"}
- apiVersion: batch/v1
  kind: CronJob
  metadata: {name: failing, namespace: ops, creationTimestamp: "2026-01-01T00:00:00Z"}
  spec:
    schedule: "0 * * * *"
    concurrencyPolicy: Forbid
    startingDeadlineSeconds: 300
    failedJobsHistoryLimit: 3
    jobTemplate: {spec: {template: {spec: {restartPolicy: OnFailure, containers: [{name: job, image: "job:1.0"}]}}}}
  status: {lastScheduleTime: "2026-05-31T23:00:00Z", lastSuccessfulTime: "2026-05-31T20:02:00Z"}
- apiVersion: batch/v1
  kind: CronJob
  metadata: {name: paused, namespace: ops, creationTimestamp: "2026-01-01T00:00:00Z"}
  spec:
    schedule: "0 3 * * *"
    suspend: true
    concurrencyPolicy: Forbid
    startingDeadlineSeconds: 300
    jobTemplate: {spec: {template: {spec: {restartPolicy: OnFailure, containers: [{name: job, image: "job:1.0"}]}}}}
  status: {lastScheduleTime: "2026-05-31T03:00:00Z", lastSuccessfulTime: "2026-05-31T03:04:00Z"}
- apiVersion: batch/v1
  kind: Job
  metadata:
    name: healthy-29100000
    namespace: ops
    creationTimestamp: "2026-05-31T01:00:00Z"
    ownerReferences: [{apiVersion: batch/v1, kind: CronJob, name: healthy, uid: u1, controller: true}]
  spec: {template: {spec: {restartPolicy: OnFailure, containers: [{name: job, image: "job:latest"}]}}}
  status: {completionTime: "2026-05-31T01:04:00Z", conditions: [{type: Complete, status: "True"}]}
- apiVersion: batch/v1
  kind: Job
  metadata:
    name: failing-21
    namespace: ops
    creationTimestamp: "2026-05-31T21:00:00Z"
    ownerReferences: [{apiVersion: batch/v1, kind: CronJob, name: failing, uid: u2, controller: true}]
  spec: {template: {spec: {restartPolicy: OnFailure, containers: [{name: job, image: "job:1.0"}]}}}
  status: {conditions: [{type: Failed, status: "True", lastTransitionTime: "2026-05-31T21:05:00Z"}]}
- apiVersion: batch/v1
  kind: Job
  metadata:
    name: failing-22
    namespace: ops
    creationTimestamp: "2026-05-31T22:00:00Z"
    ownerReferences: [{apiVersion: batch/v1, kind: CronJob, name: failing, uid: u2, controller: true}]
  spec: {template: {spec: {restartPolicy: OnFailure, containers: [{name: job, image: "job:1.0"}]}}}
  status: {conditions: [{type: Failed, status: "True", lastTransitionTime: "2026-05-31T22:05:00Z"}]}
- apiVersion: batch/v1
  kind: Job
  metadata:
    name: failing-23
    namespace: ops
    creationTimestamp: "2026-05-31T23:00:00Z"
    ownerReferences: [{apiVersion: batch/v1, kind: CronJob, name: failing, uid: u2, controller: true}]
  spec: {template: {spec: {restartPolicy: OnFailure, containers: [{name: job, image: "job:1.0"}]}}}
  status: {conditions: [{type: Failed, status: "True", lastTransitionTime: "2026-05-31T23:05:00Z"}]}
"#;

/// The findings of one rule in a JSON report, as `(name, result, message)`, sorted.
fn rule_findings(report: &Value, rule: &str) -> Vec<(String, String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let mut out: Vec<(String, String, String)> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["rule"] == rule)
        .map(|f| (text(&f["name"]), text(&f["result"]), text(&f["message"])))
        .collect();
    out.sort();
    out
}

#[test]
fn cronjob_health_is_decided_from_the_status_and_jobs_of_a_cluster_dump() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "cronjobs.yaml", CLUSTER_CRONJOBS);
    let file = file.to_string_lossy().into_owned();
    let args = [
        "audit",
        &file,
        "-o",
        "json",
        "--now",
        "2026-06-01T00:00:00Z",
    ];
    let out = run(&[&args[..], &["--fail-on", "none"]].concat());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&out);
    // Four CronJobs; the Jobs of CronJobs are runs, not workloads (the healthy one's Job has
    // an unpinned image, which nobody reports).
    assert_eq!(report["summary"]["workloads"], 4, "{report}");
    assert!(
        rule_findings(&report, "image-pinned").is_empty(),
        "{report}"
    );
    let health = rule_findings(&report, "cronjob-health");
    let messages = |name: &str| -> Vec<&str> {
        health
            .iter()
            .filter(|(n, r, _)| n == name && r == "fail")
            .map(|(_, _, m)| m.as_str())
            .collect()
    };
    assert!(messages("healthy").is_empty(), "{health:?}");
    assert_eq!(health.len(), 4, "{health:?}");
    // The failing one: its three runs failed, and no success since three hourly schedules.
    assert_eq!(
        messages("failing"),
        vec![
            "its last 3 runs all failed (Jobs failing-21, failing-22, failing-23)",
            "no run has succeeded since 2026-05-31T20:02:00Z (its last success); the runs scheduled for 2026-05-31T21:00:00Z, 2026-05-31T22:00:00Z, 2026-05-31T23:00:00Z should have by now",
        ]
    );
    assert_eq!(
        messages("paused"),
        vec!["the CronJob is suspended, so none of its scheduled runs start"]
    );
    assert_eq!(
        messages("stale"),
        vec![
            "no run has succeeded since 2026-05-26T03:04:00Z (its last success); the runs scheduled for 2026-05-27T03:00:00Z, 2026-05-28T03:00:00Z, 2026-05-29T03:00:00Z should have by now"
        ]
    );
    // The failing CronJob fails the CI gate at high.
    let out = run(&[&args[..], &["--fail-on", "high"]].concat());
    assert_eq!(out.status.code(), Some(1));

    // The healthy CronJob as written in a repository (no status): unknown, never a pass.
    let manifest = write(
        dir.path(),
        "manifest.yaml",
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: healthy, namespace: ops}\nspec:\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: Forbid\n  startingDeadlineSeconds: 300\n  jobTemplate: {spec: {template: {spec: {restartPolicy: OnFailure, containers: [{name: job, image: \"job:1.0\"}]}}}}\n",
    );
    let out = run(&[
        "audit",
        &manifest.to_string_lossy(),
        "-o",
        "json",
        "--fail-on",
        "none",
    ]);
    let report = json_of(&out);
    let health = rule_findings(&report, "cronjob-health");
    assert_eq!(health.len(), 1);
    assert_eq!(health[0].1, "unknown");
    assert!(
        health[0].2.contains("kubectl get cronjobs,jobs -o yaml"),
        "{}",
        health[0].2
    );
}

#[test]
fn owned_pods_replicasets_and_jobs_are_left_to_their_owner() {
    let input = r#"apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: bare, namespace: a}
  spec: {containers: [{name: c, image: "c:latest"}]}
- apiVersion: v1
  kind: Pod
  metadata:
    name: web-1
    namespace: a
    ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web, uid: u, controller: true}]
  spec: {containers: [{name: c, image: "c:latest"}]}
- apiVersion: apps/v1
  kind: ReplicaSet
  metadata:
    name: web
    namespace: a
    ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: u, controller: true}]
  spec: {selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: "c:latest"}]}}}
- apiVersion: apps/v1
  kind: ReplicaSet
  metadata: {name: loose, namespace: a}
  spec: {selector: {matchLabels: {app: l}}, template: {metadata: {labels: {app: l}}, spec: {containers: [{name: c, image: "c:latest"}]}}}
- apiVersion: batch/v1
  kind: Job
  metadata: {name: adhoc, namespace: a}
  spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: "c:latest"}]}}}
"#;
    let out = run_stdin(&["audit", "-", "-o", "json", "--fail-on", "none"], input);
    let report = json_of(&out);
    let mut judged: Vec<String> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            format!(
                "{}/{}",
                f["kind"].as_str().unwrap_or_default(),
                f["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    judged.sort();
    judged.dedup();
    assert_eq!(
        judged,
        vec!["Job/adhoc", "Pod/bare", "ReplicaSet/loose"],
        "{report}"
    );
    assert_eq!(report["summary"]["workloads"], 3);
}
