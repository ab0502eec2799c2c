//! `prodready audit` over repositories as teams hold them: Helm charts and kustomizations
//! rendered by the real `helm` and `kubectl` (the binaries `bash e2e/k8s-binaries.sh` builds,
//! which `make test` builds first), YAML that is not Kubernetes counted and skipped, removed
//! API versions and misspelt policy fields refused, `.prodready.yaml` found upward and equal
//! to the same settings given as flags, and inline ignores reported as exempt.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory of the e2e binaries (helm, kubectl), as `e2e/k8s-binaries.sh` reports it.
fn k8s_bin() -> PathBuf {
    let out = Command::new("bash")
        .arg(root().join("e2e/k8s-binaries.sh"))
        .arg("--print-env")
        .output()
        .expect("bash runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = text
        .lines()
        .find_map(|l| l.strip_prefix("PRODREADY_K8S_BIN="))
        .map(PathBuf::from)
        .expect("k8s-binaries.sh --print-env names the directory");
    for tool in ["helm", "kubectl"] {
        assert!(
            dir.join(tool).is_file(),
            "{} is missing: run `bash e2e/k8s-binaries.sh` (make test does) first",
            dir.join(tool).display()
        );
    }
    dir
}

/// `prodready` in `cwd`, with only the e2e binaries' directory and the system's on PATH (so
/// the helm and kubectl used are the pinned ones).
fn prodready(cwd: &Path, args: &[&str]) -> Output {
    let path = format!("{}:/usr/bin:/bin", k8s_bin().display());
    Command::new(env!("CARGO_BIN_EXE_prodready"))
        .current_dir(cwd)
        .env("PATH", path)
        .env_remove("KUBECONFIG")
        .args(args)
        .output()
        .expect("prodready runs")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(p, text).expect("write fixture");
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prodready-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The messages of a JSON report's input errors, in order.
fn error_messages(report: &Value) -> Vec<&str> {
    report["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str())
        .collect()
}

/// The workloads a JSON report judged, as `Kind/namespace/name`.
fn workloads(report: &Value) -> Vec<String> {
    let mut out: Vec<String> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| format!("{}/{}/{}", f["kind"], f["namespace"], f["name"]).replace('"', ""))
        .collect();
    out.dedup();
    out
}

#[test]
fn the_projects_own_chart_is_rendered_and_judged() {
    let out = prodready(&root(), &["audit", "charts/prodready", "-o", "json"]);
    let code = out.status.code();
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}: {}", text(&out));
    let report = json(&out);
    assert_eq!(report["errors"], Value::Array(vec![]), "{report:#}");
    assert_eq!(
        report["inputs"]["rendered"],
        serde_json::json!([{"dir": "charts/prodready", "by": "helm"}])
    );
    let deployment = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["kind"] == "Deployment")
        .unwrap_or_else(|| panic!("the chart's Deployment is judged: {report:#}"));
    assert_eq!(
        deployment["source"]["helmSource"],
        "prodready/templates/deployment.yaml"
    );
    assert_eq!(deployment["source"]["renderedBy"], "helm");
    // The ServiceMonitor renders (monitoring.coreos.com/v1 is offered by default) and covers
    // the operator's metrics port: no service-monitor finding.
    assert!(
        !report["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["rule"] == "service-monitor" && f["result"] == "fail"),
        "{report:#}"
    );
    // SARIF points at the template, not the rendered stream.
    let sarif = json(&prodready(
        &root(),
        &["audit", "charts/prodready", "-o", "sarif", "--show-passed"],
    ));
    for r in sarif["runs"][0]["results"].as_array().into_iter().flatten() {
        let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap_or_default();
        assert!(uri.starts_with("charts/prodready/templates/"), "{uri}");
    }
}

#[test]
fn the_repository_root_is_audited_without_input_errors() {
    let out = prodready(&root(), &["audit", ".", "-o", "json", "--fail-on", "none"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["errors"], Value::Array(vec![]), "{report:#}");
    let rendered: Vec<String> = report["inputs"]["rendered"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| format!("{} {}", r["by"], r["dir"]).replace('"', ""))
        .collect();
    assert!(
        rendered.contains(&"helm ./charts/prodready".to_owned()),
        "{rendered:?}"
    );
    assert!(
        rendered.contains(&"kustomize ./config/default".to_owned()),
        "{rendered:?}"
    );
    // GitHub's action metadata and the alert rules' unit test are YAML, not Kubernetes.
    let skipped: Vec<&str> = report["inputs"]["skipped"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["file"].as_str())
        .collect();
    assert!(skipped.contains(&"./action.yml"), "{skipped:?}");
    // The chart's templates and values are never read as manifests.
    assert!(
        !skipped.iter().any(|f| f.contains("charts/prodready/")),
        "{skipped:?}"
    );
    assert!(
        workloads(&report).contains(&"Deployment/prodready-system/prodready".to_owned()),
        "{:?}",
        workloads(&report)
    );
    // The table names what was not audited and says how to list it.
    let table = text(&prodready(&root(), &["audit", ".", "--fail-on", "none"]));
    assert!(
        table.contains("not Kubernetes objects (skipped)"),
        "{table}"
    );
    assert!(table.contains("--verbose lists them"), "{table}");
    let verbose = text(&prodready(
        &root(),
        &["audit", ".", "-v", "--fail-on", "none"],
    ));
    assert!(
        verbose.contains("skipped ./action.yml document 0 line 11: not a Kubernetes object"),
        "{verbose}"
    );
}

#[test]
fn removed_api_versions_are_errors_naming_the_replacement() {
    let dir = temp("removed-api");
    write(
        &dir,
        "legacy.yaml",
        "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: old}\nspec:\n  template:\n    spec:\n      containers: [{name: app, image: app:1}]\n---\napiVersion: extensions/v1beta1\nkind: DaemonSet\nmetadata: {name: agent}\nspec: {}\n---\napiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: nightly}\nspec: {}\n---\napiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: pdb}\nspec: {}\n---\napiVersion: networking.k8s.io/v1beta1\nkind: Ingress\nmetadata: {name: web}\n---\napiVersion: policy/v1beta1\nkind: PodSecurityPolicy\nmetadata: {name: restricted}\n",
    );
    let out = prodready(&dir, &["audit", "legacy.yaml", "-o", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let report = json(&out);
    let messages = error_messages(&report);
    assert_eq!(
        messages,
        [
            "Deployment extensions/v1beta1 was removed in Kubernetes 1.16; use apps/v1 (`kubectl convert` or an edit of apiVersion, plus the fields the new version requires)",
            "DaemonSet extensions/v1beta1 was removed in Kubernetes 1.16; use apps/v1 (`kubectl convert` or an edit of apiVersion, plus the fields the new version requires)",
            "CronJob batch/v1beta1 was removed in Kubernetes 1.25; use batch/v1 (`kubectl convert` or an edit of apiVersion, plus the fields the new version requires)",
            "PodDisruptionBudget policy/v1beta1 was removed in Kubernetes 1.25; use policy/v1 (`kubectl convert` or an edit of apiVersion, plus the fields the new version requires)",
            "Ingress networking.k8s.io/v1beta1 was removed in Kubernetes 1.22; use networking.k8s.io/v1 (`kubectl convert` or an edit of apiVersion, plus the fields the new version requires)",
            "PodSecurityPolicy policy/v1beta1 was removed in Kubernetes 1.25; it has no successor: enforce pod security with Pod Security Admission (namespace labels pod-security.kubernetes.io/enforce), and remove it",
        ]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_policy_with_an_unknown_field_is_refused_naming_the_closest() {
    let dir = temp("policy-typo");
    write(
        &dir,
        "policy.yaml",
        "apiVersion: prodready.dev/v1alpha1\nkind: ProductionPolicy\nmetadata: {name: shop}\nspec:\n  match: {excludeNamespace: [shop]}\n  rules: {replicasHA: {minReplicas: 5}}\n",
    );
    write(&dir, "app.yaml", GOOD);
    let out = prodready(&dir, &["audit", "--policy", "policy.yaml", "app.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("ProductionPolicy shop: unknown field `spec.match.excludeNamespace`; did you mean `excludeNamespaces`?; unknown field `spec.rules.replicasHA`; did you mean `replicasHa`?"),
        "{t}"
    );
    // The same document among the audited manifests is refused the same way.
    let out = prodready(&dir, &["audit", "policy.yaml", "app.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("did you mean `excludeNamespaces`?"));
    // An unknown rule in an exemption, and in --enable, names the closest rule too.
    write(
        &dir,
        "exempt.yaml",
        "apiVersion: prodready.dev/v1alpha1\nkind: ProductionPolicy\nmetadata: {name: ex}\nspec:\n  exemptions: [{rules: [replica-ha], reason: by design}]\n",
    );
    let t = text(&prodready(
        &dir,
        &["audit", "--policy", "exempt.yaml", "app.yaml"],
    ));
    assert!(
        t.contains("unknown rule id `replica-ha`; did you mean `replicas-ha`?"),
        "{t}"
    );
    let out = prodready(&dir, &["audit", "--enable", "cpu-limits", "app.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("--enable cpu-limits: no such rule; did you mean `cpu-limit`?"),
        "{}",
        text(&out)
    );
    std::fs::remove_dir_all(&dir).ok();
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
          livenessProbe: {httpGet: {path: /live, port: 8080}}
          readinessProbe: {httpGet: {path: /ready, port: 8080}}
          resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 128Mi}}
"#;

/// A repository as teams hold one: a chart, a kustomize base and overlay, plain manifests,
/// a legacy directory, test fixtures, and YAML that is not Kubernetes.
fn repository(dir: &Path) {
    write(
        dir,
        "charts/shop/Chart.yaml",
        "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
    );
    write(
        dir,
        "charts/shop/values.yaml",
        "replicas: 1\nimage: shop:1.0\nmonitoring: false\n",
    );
    write(
        dir,
        "charts/shop/templates/deployment.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-shop
  namespace: {{ .Release.Namespace }}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers:
        - name: shop
          image: {{ .Values.image | quote }}
          {{- if .Values.probes }}
          livenessProbe: {httpGet: {path: /live, port: 8080}}
          readinessProbe: {httpGet: {path: /ready, port: 8080}}
          {{- end }}
          resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 128Mi}}
"#,
    );
    write(dir, "values-ci.yaml", "replicas: 3\nprobes: true\n");
    write(
        dir,
        "deploy/base/kustomization.yaml",
        "resources: [worker.yaml]\n",
    );
    write(
        dir,
        "deploy/base/worker.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: worker}
spec:
  replicas: 1
  selector: {matchLabels: {app: worker}}
  template:
    metadata:
      labels: {app: worker}
      annotations:
        prodready.dev/exempt: replicas-ha,disruption-budget
        prodready.dev/exempt-reason: a queue consumer; one replica by design
    spec:
      containers:
        - {name: worker, image: "worker:2.1"}
"#,
    );
    write(
        dir,
        "deploy/overlays/prod/kustomization.yaml",
        "namespace: prod\nresources: [../../base]\n",
    );
    write(
        dir,
        "legacy/old.yaml",
        "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: old}\nspec: {}\n",
    );
    write(
        dir,
        "tests/fixtures/broken.yaml",
        "kind: Deployment\n  bad: [\n",
    );
    write(
        dir,
        "docker-compose.yml",
        "services:\n  web: {image: web:1}\n",
    );
    write(dir, ".github/workflows/ci.yaml", "on: push\njobs: {}\n");
    write(dir, "k8s/app.yaml", GOOD);
}

#[test]
fn a_config_file_two_directories_up_equals_the_same_settings_as_flags() {
    let dir = temp("config");
    repository(&dir);
    write(
        &dir,
        ".prodready.yaml",
        r#"# yaml-language-server: $schema=https://raw.githubusercontent.com/prodready/prodready/main/docs/prodready-config.schema.json
profile: baseline
rules:
  cpuLimit: {enabled: true}
  gracefulShutdown: {enabled: false}
allowAnnotationExemptions: true
exclude: [legacy, tests/fixtures]
failOn: medium
chart:
  values: [values-ci.yaml]
  namespace: shop
"#,
    );
    let cwd = dir.join("deploy/overlays");
    let from_file = prodready(&cwd, &["audit", "../..", "-o", "json"]);
    let from_flags = prodready(
        &cwd,
        &[
            "audit",
            "../..",
            "-o",
            "json",
            "--no-config",
            "--profile",
            "baseline",
            "--enable",
            "cpu-limit",
            "--disable",
            "graceful-shutdown",
            "--allow-annotation-exemptions",
            "--exclude",
            "legacy",
            "--exclude",
            "fixtures",
            "--fail-on",
            "medium",
            "--values",
            "../../values-ci.yaml",
            "--release-namespace",
            "shop",
        ],
    );
    let a = json(&from_file);
    let b = json(&from_flags);
    assert_eq!(a["errors"], Value::Array(vec![]), "{a:#}");
    assert_eq!(a, b, "config file and flags disagree");
    assert_eq!(from_file.status.code(), from_flags.status.code());
    assert_eq!(
        workloads(&a),
        [
            "Deployment/shop/shop-shop",
            "Deployment/default/worker",
            "Deployment/prod/worker",
            "Deployment/ok/good"
        ]
        .map(String::from)
    );
    // The chart was rendered with values-ci.yaml: 3 replicas, probes on.
    let shop: Vec<&Value> = a["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["name"] == "shop-shop")
        .collect();
    assert!(
        !shop
            .iter()
            .any(|f| f["rule"] == "liveness-probe" || f["rule"] == "replicas-ha"),
        "{shop:#?}"
    );
    // cpu-limit switched on, graceful-shutdown off.
    assert!(shop.iter().any(|f| f["rule"] == "cpu-limit"), "{shop:#?}");
    assert!(
        !a["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["rule"] == "graceful-shutdown")
    );
    // The worker's own annotation exempts it, reported as exempt with its reason.
    let exempt: Vec<&Value> = a["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["name"] == "worker" && f["result"] == "exempt")
        .collect();
    assert!(
        exempt.iter().any(|f| f["rule"] == "replicas-ha"
            && f["exemption"]["reason"] == "a queue consumer; one replica by design"
            && f["exemption"]["source"] == "annotation"),
        "{exempt:#?}"
    );
    // Excludes are listed, not silent; the compose file and the workflow are skipped.
    let excluded = a["inputs"]["excluded"].to_string();
    assert!(
        excluded.contains("legacy") && excluded.contains("fixtures"),
        "{excluded}"
    );
    let skipped = a["inputs"]["skipped"].to_string();
    assert!(
        skipped.contains("docker-compose.yml") && !skipped.contains(".github"),
        "{skipped}"
    );
    // failOn medium: the findings (cpu-limit is low, worker's missing probes are high) fail.
    assert_eq!(from_file.status.code(), Some(1), "{}", text(&from_file));
    // SARIF: the annotation exemption is a suppression carrying its reason.
    let sarif = json(&prodready(&cwd, &["audit", "../..", "-o", "sarif"]));
    let suppressed = sarif["runs"][0]["results"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["ruleId"] == "replicas-ha" && r["suppressions"].is_array())
        .unwrap_or_else(|| panic!("a suppressed replicas-ha result: {sarif:#}"));
    assert_eq!(
        suppressed["suppressions"][0]["justification"],
        "a queue consumer; one replica by design"
    );
    // Without the config (and without the flag), the annotation is not honoured, the
    // excluded broken fixture and legacy manifest are read: exit 2.
    let bare = prodready(&cwd, &["audit", "../..", "--no-config", "-o", "json"]);
    assert_eq!(bare.status.code(), Some(2), "{}", text(&bare));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_config_file_with_an_unknown_key_is_an_error_naming_the_closest() {
    let dir = temp("config-typo");
    write(&dir, "app.yaml", GOOD);
    write(
        &dir,
        ".prodready.yaml",
        "excludes: [x]\nchart: {value: [v.yaml]}\n",
    );
    let out = prodready(&dir, &["audit", "app.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    assert!(
        t.contains("unknown field `excludes`; did you mean `exclude`?")
            && t.contains("unknown field `chart.value`; did you mean `values`?"),
        "{t}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_missing_renderer_is_one_sentence_naming_the_chart_and_what_to_do() {
    let dir = temp("no-helm");
    write(
        &dir,
        "chart/Chart.yaml",
        "apiVersion: v2\nname: c\nversion: 0.1.0\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_prodready"))
        .current_dir(&dir)
        .env("PATH", "/nonexistent")
        .args(["audit", "chart"])
        .output()
        .expect("prodready runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("chart: cannot render the Helm chart chart: `helm` is not on PATH; install helm, pass --helm PATH, or render it yourself: `helm template chart | prodready audit -`"),
        "{}",
        text(&out)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_published_config_schema_is_what_the_code_generates() {
    let committed = std::fs::read_to_string(root().join(prodready::audit::config::SCHEMA_PATH))
        .unwrap_or_default();
    assert!(
        committed == prodready::audit::config::schema_text(),
        "{} is stale: run `make config-schema`",
        prodready::audit::config::SCHEMA_PATH
    );
}

/// The commands of the first `sh` block after `anchor` in a repository file, one per line.
fn sh_block(file: &str, anchor: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(file)).expect("doc exists");
    let after = text
        .split_once(anchor)
        .unwrap_or_else(|| panic!("{file} has no {anchor:?}"))
        .1;
    let block = after
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .unwrap_or_else(|| panic!("{file}: no sh block after {anchor:?}"))
        .0;
    block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Lines not run, each with its reason.
const NOT_RUN: &[(&str, &str)] = &[(
    "cargo install --locked --path .",
    "installs the binary this test already runs (built by cargo test); a release build here would take minutes",
)];

/// Every audit command of the README's quick start and audit section and of docs/audit.md's
/// inputs, run as written by bash from the repository root, with the built `prodready` and the
/// pinned helm and kubectl on PATH. A trailing `# exits N` comment is the expected exit code;
/// otherwise 0 or 1 (findings are the command working), never 2.
#[test]
fn the_documented_audit_commands_run_as_written() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_prodready"));
    let bin_dir = exe.parent().expect("binary directory");
    let path = format!(
        "{}:{}:/usr/bin:/bin",
        bin_dir.display(),
        k8s_bin().display()
    );
    let mut blocks = Vec::new();
    blocks.extend(sh_block("README.md", "**3. The audit in CI.**"));
    blocks.extend(sh_block("README.md", "## The audit command (CI)"));
    blocks.extend(sh_block("docs/audit.md", "## Inputs"));
    let mut ran = 0;
    for line in &blocks {
        let command = line.split(" # ").next().unwrap_or(line).trim();
        if NOT_RUN.iter().any(|(c, _)| *c == command) {
            continue;
        }
        let expected: Option<i32> = line
            .split_once("# exits ")
            .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok());
        let out = Command::new("bash")
            .args(["-c", command])
            .current_dir(root())
            .env("PATH", &path)
            .env_remove("KUBECONFIG")
            .output()
            .expect("bash runs");
        let code = out.status.code();
        match expected {
            Some(n) => assert_eq!(code, Some(n), "`{command}`: {}", text(&out)),
            None => assert!(
                matches!(code, Some(0 | 1)),
                "`{command}` exited {code:?}: {}",
                text(&out)
            ),
        }
        ran += 1;
    }
    for f in ["prodready.sarif", "prodready.xml"] {
        let _ = std::fs::remove_file(root().join(f));
    }
    assert!(ran >= 9, "only {ran} commands ran: {blocks:?}");
}

/// Shapes met in public example repositories: a placeholder where a number belongs (the error
/// names the field, in a list item too), an empty JSON file (nothing, as an empty YAML file),
/// a ReplicationController (counted among the kinds not judged).
#[test]
fn unreadable_fields_are_named_and_empty_files_are_nothing() {
    let dir = temp("shapes");
    write(
        &dir,
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: fc}\nspec:\n  containers: [{name: app, image: app:1}]\n  volumes:\n    - name: data\n      fc: {lun: \"<ADD LUN ID Here>\", targetWWNs: [a]}\n",
    );
    write(
        &dir,
        "list.json",
        r#"{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": "two"}}]}"#,
    );
    write(&dir, "empty.json", "\n");
    write(
        &dir,
        "rc.yaml",
        "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: legacy}\nspec: {replicas: 1}\n",
    );
    let out = prodready(&dir, &["audit", ".", "-o", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let report = json(&out);
    let messages = error_messages(&report);
    assert_eq!(
        messages,
        [
            "items[0]: invalid Deployment: spec.replicas: invalid type: string \"two\", expected i32",
            "invalid Pod: spec.volumes[0].fc.lun: invalid type: string \"<ADD LUN ID Here>\", expected i32",
        ]
    );
    assert_eq!(report["inputs"]["notJudged"]["v1/ReplicationController"], 1);
    std::fs::remove_dir_all(&dir).ok();
}
