//! prodready's packaging against the real API server: the Helm chart lints and renders with
//! default values and with every option on, every rendered object (and the kustomize tree)
//! passes a server-side dry run, the container arguments are flags `prodready run` accepts,
//! the chart's CRD and the kustomize tree agree with the sources they copy, the dashboard is
//! the one the chart ships, and the chart passes prodready's own strict audit. The release
//! (`hack/package.sh`): the image goes through a real OCI registry, its binary runs as the
//! operator, and it audits the packaged chart with default values: zero failures.
//!
//! The RBAC the chart grants is exercised by a live operator in `tests/rbac.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use clap::Parser as _;
use e2e::{
    CRD_FILE, ControlPlane, Daemon, Output, Registry, apply_yaml, chart_dir, chart_plane, crane,
    documents, free_port, helm_template, helm_template_chart, install_crd_file, object_key,
    repo_root, run_program,
};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// What `helm template` needs to render what the Prometheus Operator CRDs enable (helm
/// install sees the cluster's API versions itself).
const WITH_MONITORING: &str = "--api-versions=monitoring.coreos.com/v1/ServiceMonitor";

/// Every option of values.yaml switched on (or away from its default).
fn every_option() -> Vec<String> {
    [
        WITH_MONITORING,
        "certManager.enabled=true",
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.labels.release=kube-prometheus",
        "grafanaDashboard.enabled=true",
        "grafanaDashboard.annotations.grafana_folder=Platform",
        "policies.baseline.enabled=true",
        "policies.baseline.action=Enforce",
        "networkPolicy.enabled=true",
        "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name=monitoring",
        "webhook.excludeNamespaces={team-sandbox}",
        "webhook.failurePolicy=Fail",
        "image.tag=9.9.9",
        &format!("image.digest={DIGEST}"),
        "imagePullSecrets[0].name=regcred",
        "serviceAccount.annotations.owner=platform",
        "priorityClassName=system-cluster-critical",
        "podAnnotations.team=platform",
        "podLabels.tier=control",
        "commonLabels.cost-center=platform",
        "operator.logFormat=text",
        "operator.extraArgs={--webhook-cert-check-interval=30s}",
        "operator.extraEnv[0].name=OTEL_SERVICE_NAME",
        "operator.extraEnv[0].value=prodready",
        "leaderElection.leaseName=custom-leader",
        "replicaCount=3",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// cert-manager is not installed in the e2e control plane. Its Certificate and Issuer are
/// checked against stand-in CRDs of the same group, version, kinds and scope (schemaless),
/// so the dry run proves the objects are well-formed Kubernetes objects in the right
/// namespace; the field names are asserted client-side in `every_option_renders…`.
const CERT_MANAGER_STUB_CRDS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: certificates.cert-manager.io}
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {plural: certificates, singular: certificate, kind: Certificate, listKind: CertificateList}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: issuers.cert-manager.io}
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {plural: issuers, singular: issuer, kind: Issuer, listKind: IssuerList}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#;

/// The shared control plane with our CRD, the Prometheus Operator CRDs and the cert-manager
/// stand-ins installed.
async fn plane() -> &'static ControlPlane {
    static PLANE: OnceCell<&'static ControlPlane> = OnceCell::const_new();
    PLANE
        .get_or_init(|| async {
            let cp = chart_plane()
                .await
                .expect("control plane with the chart's CRDs");
            let client = cp.client().await.expect("client");
            let dir = tempfile::tempdir().expect("temp dir");
            for (i, doc) in CERT_MANAGER_STUB_CRDS.split("\n---\n").enumerate() {
                let path = dir.path().join(format!("stub-{i}.yaml"));
                std::fs::write(&path, doc).expect("write stub CRD");
                install_crd_file(&client, &path)
                    .await
                    .expect("install a cert-manager stand-in CRD");
            }
            cp
        })
        .await
}

fn find<'a>(docs: &'a [Value], kind: &str, name_suffix: &str) -> &'a Value {
    docs.iter()
        .find(|d| {
            d["kind"] == kind
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(name_suffix))
        })
        .unwrap_or_else(|| {
            let keys: Vec<String> = docs.iter().map(object_key).collect();
            panic!("no {kind} named *{name_suffix} in {keys:?}")
        })
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    k.sort();
    k
}

/// `kubectl apply --dry-run=server` of `yaml`; panics with kubectl's output when refused.
async fn server_dry_run(cp: &ControlPlane, yaml: &str) -> String {
    let out = cp
        .kubectl_with_stdin(["apply", "--dry-run=server", "-f", "-"], Some(yaml))
        .await
        .expect("run kubectl");
    assert!(
        out.success(),
        "the API server refused the manifests:\n{}\n{}",
        out.stderr,
        out.stdout
    );
    out.stdout
}

/// The container's args parse as `prodready run` flags (exactly the flags the binary has).
fn assert_args_parse(deployment: &Value) -> prodready::run::RunArgs {
    let args: Vec<String> = deployment
        .pointer("/spec/template/spec/containers/0/args")
        .and_then(Value::as_array)
        .expect("container args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_owned())
        .collect();
    let cli = prodready::cli::Cli::try_parse_from(
        std::iter::once("prodready".to_owned()).chain(args.iter().cloned()),
    )
    .unwrap_or_else(|e| panic!("`prodready {}` does not parse: {e}", args.join(" ")));
    match cli.command {
        prodready::cli::Command::Run(run) => *run,
        other => panic!("the container does not run `prodready run`: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn helm_lint_passes_with_defaults_and_every_option() {
    let cp = plane().await;
    let chart = chart_dir();
    let chart = chart.to_string_lossy();
    let out = cp
        .helm(["lint", "--strict", chart.as_ref()])
        .await
        .expect("run helm");
    assert!(out.success(), "helm lint:\n{}\n{}", out.stdout, out.stderr);
    let mut args = vec!["lint".to_owned(), "--strict".to_owned(), chart.to_string()];
    for s in every_option().into_iter().filter(|s| !s.starts_with("--")) {
        args.extend(["--set".to_owned(), s]);
    }
    let out = cp.helm(&args).await.expect("run helm");
    assert!(
        out.success(),
        "helm lint (every option):\n{}\n{}",
        out.stdout,
        out.stderr
    );
    // The schema rejects what the chart does not know.
    let out = cp
        .helm([
            "lint",
            chart.as_ref(),
            "--set",
            "webhook.failurePolicy=Sometimes",
        ])
        .await
        .expect("run helm");
    assert!(!out.success(), "values.schema.json must reject a bad enum");
    let out = cp
        .helm(["lint", chart.as_ref(), "--set", "replicaCont=2"])
        .await
        .expect("run helm");
    assert!(
        !out.success(),
        "values.schema.json must reject unknown keys"
    );
}

#[tokio::test]
async fn default_values_render_a_safe_install_the_api_server_accepts() {
    let cp = plane().await;
    let ns = cp.temp_namespace("chart-default").await.expect("namespace");
    let yaml = helm_template(cp, "prodready", ns.name(), &[])
        .await
        .expect("render");
    let docs = documents(&yaml).expect("rendered YAML parses");
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "Deployment",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "Service",
            "ServiceAccount",
            "ValidatingWebhookConfiguration",
        ]
    );
    let out = server_dry_run(cp, &yaml).await;
    assert_eq!(
        out.lines().count(),
        docs.len(),
        "one line per object:\n{out}"
    );

    let d = find(&docs, "Deployment", "prodready");
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "ghcr.io/prodready/prodready:0.1.0");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health/live");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/health/ready");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "admin");
    let admin = c["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == "admin")
        .expect("admin port");
    assert_eq!(admin["containerPort"], 8080);
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(
        c["securityContext"],
        json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
               "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}})
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let grace = pod["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("grace");
    let sleep = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_i64()
        .expect("preStop sleep");
    // The sleep, then the operator's own shutdown (Lease release: a few seconds) fit.
    assert!(
        sleep > 0 && sleep + 10 <= grace,
        "preStop {sleep}s vs grace {grace}s"
    );
    let env: BTreeMap<&str, &str> = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default(),
                e.pointer("/valueFrom/fieldRef/fieldPath")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(env.get("POD_NAME"), Some(&"metadata.name"));
    assert_eq!(env.get("POD_NAMESPACE"), Some(&"metadata.namespace"));
    assert!(
        pod["topologySpreadConstraints"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(pod["affinity"]["podAntiAffinity"].is_object());

    let run = assert_args_parse(d);
    assert_eq!(run.admin_addr.port(), 8080);
    assert_eq!(run.lease_name, "prodready-leader");
    assert!(run.webhook.webhook_enabled);
    assert_eq!(run.webhook.webhook_service_name, "prodready-webhook");
    assert_eq!(run.webhook.webhook_secret_name, "prodready-webhook-tls");
    assert_eq!(run.webhook.webhook_configuration_name, "prodready");
    assert!(run.webhook.tls_cert_file.is_none());

    let vwc = find(&docs, "ValidatingWebhookConfiguration", "prodready");
    let hook = &vwc["webhooks"][0];
    assert_eq!(hook["failurePolicy"], "Ignore");
    assert_eq!(hook["timeoutSeconds"], 3);
    assert_eq!(hook["sideEffects"], "None");
    assert_eq!(hook["clientConfig"]["service"]["name"], "prodready-webhook");
    assert_eq!(hook["clientConfig"]["service"]["namespace"], ns.name());
    assert_eq!(
        hook["namespaceSelector"]["matchExpressions"][0]["values"],
        json!([ns.name(), "kube-system"])
    );
    let svc = find(&docs, "Service", "prodready-webhook");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "webhook");
    let pdb = find(&docs, "PodDisruptionBudget", "prodready");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);

    // `helm install` against the API server (dry run) and the NOTES it prints.
    let chart = chart_dir();
    let out = cp
        .helm([
            "install",
            "prodready",
            &chart.to_string_lossy(),
            "--namespace",
            ns.name(),
            "--dry-run=server",
        ])
        .await
        .expect("run helm");
    assert!(
        out.success(),
        "helm install --dry-run=server: {}",
        out.stderr
    );
    let notes = out
        .stdout
        .split_once("NOTES:")
        .map(|(_, n)| n)
        .unwrap_or_default();
    for want in [
        "rollout status deployment/prodready",
        "get lease prodready-leader",
        "caBundle",
        "config/samples/baseline.yaml",
        "kubectl get productionpolicies",
        "set image.digest",
    ] {
        assert!(notes.contains(want), "NOTES lack {want:?}:\n{notes}");
    }
}

#[tokio::test]
async fn every_option_renders_and_the_api_server_accepts_it() {
    let cp = plane().await;
    let ns = cp.temp_namespace("chart-all").await.expect("namespace");
    let sets = every_option();
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let yaml = helm_template(cp, "prodready", ns.name(), &sets)
        .await
        .expect("render");
    let docs = documents(&yaml).expect("rendered YAML parses");
    assert_eq!(
        kinds(&docs),
        [
            "Certificate",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "CustomResourceDefinition",
            "Deployment",
            "Issuer",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "ProductionPolicy",
            "Role",
            "RoleBinding",
            "Service",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
            "ValidatingWebhookConfiguration",
        ]
    );
    server_dry_run(cp, &yaml).await;

    let d = find(&docs, "Deployment", "prodready");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    // The digest wins over the tag.
    assert_eq!(
        c["image"],
        format!("ghcr.io/prodready/prodready@{DIGEST}").as_str()
    );
    let run = assert_args_parse(d);
    assert_eq!(run.lease_name, "custom-leader");
    assert_eq!(
        d["metadata"]["annotations"]["prodready.dev/lease"],
        "custom-leader"
    );
    // cert-manager: mounted files, and prodready leaves the CA bundle to the cainjector.
    assert_eq!(
        run.webhook.tls_cert_file.as_deref(),
        Some(Path::new("/tls/tls.crt"))
    );
    assert_eq!(
        run.webhook.tls_key_file.as_deref(),
        Some(Path::new("/tls/tls.key"))
    );
    assert_eq!(run.webhook.webhook_configuration_name, "");
    let cert = find(&docs, "Certificate", "prodready-webhook");
    assert_eq!(cert["spec"]["secretName"], "prodready-webhook-tls");
    assert_eq!(
        cert["spec"]["dnsNames"][0],
        format!("prodready-webhook.{}.svc", ns.name()).as_str()
    );
    assert_eq!(cert["spec"]["issuerRef"]["kind"], "Issuer");
    let issuer = find(&docs, "Issuer", "selfsigned");
    assert_eq!(
        cert["spec"]["issuerRef"]["name"],
        issuer["metadata"]["name"]
    );
    assert!(issuer["spec"]["selfSigned"].is_object());
    let mount = &c["volumeMounts"][0];
    assert_eq!(mount["mountPath"], "/tls");
    let vol = &d["spec"]["template"]["spec"]["volumes"][0];
    assert_eq!(vol["secret"]["secretName"], "prodready-webhook-tls");
    let vwc = find(&docs, "ValidatingWebhookConfiguration", "prodready");
    assert_eq!(
        vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!("{}/prodready-webhook", ns.name()).as_str()
    );
    assert_eq!(vwc["webhooks"][0]["failurePolicy"], "Fail");
    assert_eq!(
        vwc["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["values"],
        json!([ns.name(), "kube-system", "team-sandbox"])
    );
    // No Secret or webhook-configuration rights are needed with cert-manager.
    let cluster_role = find(&docs, "ClusterRole", "prodready");
    let role = find(&docs, "Role", "prodready");
    let text = format!("{cluster_role}{role}");
    assert!(
        !text.contains("secrets") && !text.contains("validatingwebhookconfigurations"),
        "{text}"
    );

    let cm = find(&docs, "ConfigMap", "prodready-dashboard");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let shipped = std::fs::read_to_string(chart_dir().join("dashboards/prodready.json"))
        .expect("dashboard file");
    assert_eq!(
        cm["data"]["prodready.json"].as_str().map(str::trim_end),
        Some(shipped.trim_end()),
        "the ConfigMap carries the dashboard file"
    );
    let sm = find(&docs, "ServiceMonitor", "prodready");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    let policy = find(&docs, "ProductionPolicy", "baseline");
    assert_eq!(policy["spec"]["enforcement"]["action"], "Enforce");
}

#[tokio::test]
async fn the_chart_and_kustomize_copies_of_the_crd_are_the_generated_one() {
    let root = repo_root();
    let top = std::fs::read(root.join(CRD_FILE)).expect("top-level CRD");
    for copy in [
        "charts/prodready/crds/productionpolicies.prodready.dev.yaml",
        "config/crd/productionpolicies.prodready.dev.yaml",
    ] {
        let bytes = std::fs::read(root.join(copy)).unwrap_or_else(|e| panic!("{copy}: {e}"));
        assert!(
            bytes == top,
            "{copy} differs from {CRD_FILE}: copy it again (`make crd` regenerates them)"
        );
    }
}

/// An object with the labels only Helm adds removed, for comparing with kustomize.
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

/// The rules of a (Cluster)Role as a sorted set of (group, resource, name, verb) grants, so
/// two roles compare equal exactly when they grant the same things.
fn grants(role: &Value) -> Vec<String> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for rule in role["rules"].as_array().into_iter().flatten() {
        let names = strings(&rule["resourceNames"]);
        let names = if names.is_empty() {
            vec!["*".to_owned()]
        } else {
            names
        };
        for g in strings(&rule["apiGroups"]) {
            for r in strings(&rule["resources"]) {
                for n in &names {
                    for v in strings(&rule["verbs"]) {
                        out.push(format!("{g}/{r}/{n}:{v}"));
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[tokio::test]
async fn kustomize_renders_the_same_install_as_the_chart() {
    let cp = plane().await;
    let out = cp
        .kubectl([
            "kustomize",
            &repo_root().join("config/default").to_string_lossy(),
        ])
        .await
        .expect("run kubectl");
    assert!(out.success(), "kubectl kustomize: {}", out.stderr);
    let kustomized = documents(&out.stdout).expect("kustomize output parses");
    let chart = helm_template(cp, "prodready", "prodready-system", &[])
        .await
        .expect("render");
    let chart = documents(&chart).expect("chart parses");

    // RBAC: exactly the same grants, object by object.
    for kind in ["ClusterRole", "Role"] {
        let k = find(&kustomized, kind, "prodready");
        let h = find(&chart, kind, "prodready");
        assert_eq!(grants(k), grants(h), "{kind} rules differ");
        assert!(!grants(h).is_empty());
        assert!(
            !grants(h)
                .iter()
                .any(|g| g.starts_with("*/") || g.contains("/*/*") || g.ends_with(":*")),
            "no wildcard groups, resources or verbs: {:?}",
            grants(h)
        );
    }
    // Everything else too: the same objects, field for field (Helm's own labels aside; the
    // CRD is compared byte for byte with its source above, and YAML parsers disagree on
    // numbers like `1.0` in its schema).
    let index = |docs: &[Value]| -> BTreeMap<String, Value> {
        docs.iter()
            .filter(|d| d["kind"] != "Namespace" && d["kind"] != "CustomResourceDefinition")
            .map(|d| (object_key(d), without_helm_labels(d.clone())))
            .collect()
    };
    let (k, h) = (index(&kustomized), index(&chart));
    assert_eq!(
        k.keys().collect::<Vec<_>>(),
        h.keys().collect::<Vec<_>>(),
        "the same objects"
    );
    for (key, obj) in &h {
        assert!(
            &k[key] == obj,
            "{key} differs between config/ and the chart:\nconfig/: {}\nchart: {}",
            serde_json::to_string_pretty(&k[key]).unwrap_or_default(),
            serde_json::to_string_pretty(obj).unwrap_or_default()
        );
    }

    // And the API server accepts the kustomize install as a whole.
    let client = cp.client().await.expect("client");
    apply_yaml(
        &client,
        None,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: prodready-system}\n",
    )
    .await
    .expect("create prodready-system");
    server_dry_run(cp, &out.stdout).await;
}

/// `prodready audit` arguments, before the file: the strict profile, failing on any finding.
const STRICT_AUDIT: [&str; 7] = [
    "audit",
    "--profile",
    "strict",
    "--fail-on",
    "low",
    "--output",
    "json",
];

/// The rule ids of the failing findings of an audit's JSON report of the rendered chart,
/// after checking that it judged one workload (the Deployment) and had no input errors.
fn failing_rules(report: &Value) -> Vec<String> {
    assert_eq!(report["summary"]["workloads"], 1, "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["result"] == "fail")
        .filter_map(|f| f["rule"].as_str().map(str::to_owned))
        .collect()
}

/// `prodready audit --profile strict --fail-on low` of the chart rendered with `sets`:
/// the exit code and the rule ids of the failing findings.
async fn strict_audit(cp: &ControlPlane, sets: &[&str]) -> (i32, Vec<String>, String) {
    let yaml = helm_template(cp, "prodready", "prodready-system", sets)
        .await
        .expect("render");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("chart.yaml");
    std::fs::write(&file, &yaml).expect("write rendered chart");
    let file = file.to_string_lossy();
    let argv = std::iter::once("prodready")
        .chain(STRICT_AUDIT)
        .chain([file.as_ref()]);
    let cli = prodready::cli::Cli::try_parse_from(argv).expect("audit args");
    let prodready::cli::Command::Audit(args) = cli.command else {
        panic!("not an audit")
    };
    let mut out = Vec::new();
    let code = prodready::cli::run_audit(&args, &mut out).expect("audit runs");
    let report: Value = serde_json::from_slice(&out).expect("JSON report");
    let failing = failing_rules(&report);
    let pretty = serde_json::to_string_pretty(&report).unwrap_or_default();
    (code, failing, pretty)
}

#[tokio::test]
async fn the_chart_passes_prodreadys_own_strict_audit() {
    let cp = plane().await;
    let digest = format!("image.digest={DIGEST}");
    // Pinned by digest, in a cluster with the Prometheus Operator: zero failures.
    let (code, failing, report) = strict_audit(cp, &[WITH_MONITORING, &digest]).await;
    assert_eq!(
        (code, failing.as_slice()),
        (0, &[][..]),
        "prodready's own chart fails its strict profile:\n{report}"
    );
    let every = every_option();
    let every: Vec<&str> = every.iter().map(String::as_str).collect();
    let (code, failing, report) = strict_audit(cp, &every).await;
    assert_eq!(
        (code, failing.as_slice()),
        (0, &[][..]),
        "with every option:\n{report}"
    );
    // The source tree's literally default values: the only finding is the digest that
    // `hack/package.sh` writes into a release (a made-up default digest would not pull;
    // the released chart is checked with zero failures below).
    let (code, failing, report) = strict_audit(cp, &[WITH_MONITORING]).await;
    assert_eq!(
        (code, failing.as_slice()),
        (1, &["image-digest".to_owned()][..]),
        "{report}"
    );
}

#[test]
fn the_dashboard_is_valid_grafana_json_with_queries() {
    let text = std::fs::read_to_string(chart_dir().join("dashboards/prodready.json"))
        .expect("dashboard file");
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dash["uid"], "prodready");
    let panels = dash["panels"].as_array().expect("panels");
    let mut ids: Vec<i64> = panels.iter().filter_map(|p| p["id"].as_i64()).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "panel ids are unique");
    let exprs: Vec<&str> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() >= 15, "{exprs:?}");
    for title in [
        "Violations by policy",
        "Violations by namespace",
        "Violations by rule",
        "Violations by severity",
        "Compliant ratio",
        "Reconcile latency",
        "Reconciles by result",
        "Admission decisions",
        "Admission latency",
        "Leader",
    ] {
        assert!(
            panels.iter().any(|p| p["title"] == title),
            "no panel {title:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The release: hack/package.sh
// ---------------------------------------------------------------------------------------

/// The release step end to end. `hack/package.sh` builds the image (an OCI image layout) from
/// the static release binary and packages the chart with the image's digest as its default.
/// The image then goes through a real OCI registry with crane (push, digest, config, export),
/// and the binary taken out of the pulled image audits the packaged chart, rendered with its
/// default values, under the strict profile: zero failures — prodready's dog-fooding with
/// literally default values.
#[tokio::test]
async fn the_released_image_audits_the_released_chart_strict_with_zero_failures() {
    let cp = plane().await;
    let binary = e2e::release_binary().expect("the static release binary");
    let dist = tempfile::tempdir().expect("temp dir");
    let pkg = e2e::package(&binary, &dist.path().join("a"))
        .await
        .expect("hack/package.sh");
    let hex = pkg.digest.strip_prefix("sha256:").unwrap_or_default();
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{pkg:?}"
    );
    // Reproducible: the same commit and binary give the same image, byte for byte.
    let again = e2e::package(&binary, &dist.path().join("b"))
        .await
        .expect("hack/package.sh, again");
    assert_eq!(again.digest, pkg.digest, "the image is not reproducible");

    // Through a real registry: the digest it serves is the digest stamped in the chart.
    let registry = Registry::start().await.expect("OCI registry");
    let tag = format!("{}/prodready:{}", registry.host(), pkg.version);
    let by_digest = format!("{}/prodready@{}", registry.host(), pkg.digest);
    let crane_ok = |what: &str, r: anyhow::Result<Output>| {
        r.and_then(Output::ok)
            .unwrap_or_else(|e| panic!("crane {what}: {e:#}\nregistry log:\n{}", registry.log()))
    };
    let pushed = crane_ok(
        "push",
        crane(["push".as_ref(), pkg.image.as_os_str(), tag.as_ref()]).await,
    );
    assert_eq!(pushed.stdout.trim(), by_digest, "crane push printed");
    let served = crane_ok("digest", crane(["digest", &tag]).await);
    assert_eq!(served.stdout.trim(), pkg.digest);

    // The image's configuration is the Dockerfile's runtime stage.
    let config = crane_ok("config", crane(["config", &by_digest]).await);
    let config: Value = serde_json::from_str(&config.stdout).expect("image config JSON");
    assert_eq!(
        (&config["os"], &config["architecture"]),
        (&json!("linux"), &json!("amd64"))
    );
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532", "{config}");
    assert_eq!(c["Entrypoint"], json!(["/prodready"]), "{config}");
    assert_eq!(c["Cmd"], json!(["run"]), "{config}");
    assert_eq!(
        c["ExposedPorts"],
        json!({"8080/tcp": {}, "8443/tcp": {}}),
        "{config}"
    );
    assert_eq!(
        c["Labels"]["org.opencontainers.image.version"],
        json!(pkg.version)
    );

    // Its filesystem, as a runtime would unpack it: only /prodready, which runs.
    let fs = dist.path().join("fs.tar");
    crane_ok(
        "export",
        crane(["export".as_ref(), by_digest.as_ref(), fs.as_os_str()]).await,
    );
    let tar = Path::new("tar");
    let list = run_program(tar, ["-tvf".as_ref(), fs.as_os_str()])
        .await
        .and_then(Output::ok)
        .expect("tar -t");
    let entries: Vec<&str> = list.stdout.lines().collect();
    assert!(
        entries.len() == 1
            && entries[0].starts_with("-rwxr-xr-x")
            && entries[0].ends_with(" prodready"),
        "the image holds exactly /prodready, 0755:\n{}",
        list.stdout
    );
    let root = dist.path().join("rootfs");
    std::fs::create_dir_all(&root).expect("rootfs dir");
    run_program(
        tar,
        [
            "-xf".as_ref(),
            fs.as_os_str(),
            "-C".as_ref(),
            root.as_os_str(),
        ],
    )
    .await
    .and_then(Output::ok)
    .expect("tar -x");
    let image_binary = root.join("prodready");
    let version = run_program(&image_binary, ["--version"])
        .await
        .and_then(Output::ok)
        .expect("the image's binary runs");
    assert_eq!(version.stdout.trim(), format!("prodready {}", pkg.version));

    // The image's binary is the operator: `prodready run` (static glibc, rustls on ring)
    // against the real API server becomes ready, takes the Lease, exports its metrics and
    // shuts down cleanly on SIGTERM.
    let lease_ns = cp.temp_namespace("release-run").await.expect("namespace");
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], free_port().expect("a free port")));
    let args: Vec<String> = [
        "run".to_owned(),
        format!("--kubeconfig={}", cp.kubeconfig().display()),
        format!("--admin-addr={admin}"),
        "--webhook-enabled=false".to_owned(),
        format!("--lease-namespace={}", lease_ns.name()),
        "--identity=release-image-0".to_owned(),
        "--lease-duration=4s".to_owned(),
        "--lease-retry-period=500ms".to_owned(),
    ]
    .into();
    let mut daemon = Daemon::start(
        "prodready",
        &image_binary,
        &args,
        &dist.path().join("run.log"),
    )
    .expect("start the image's prodready run");
    let leader = e2e::wait_for(Duration::from_secs(60), "ready and leading", || {
        let exited = daemon.exited();
        async move {
            if let Some(status) = exited {
                return Err(format!("exited with {status}"));
            }
            match (
                e2e::http_get(admin, "/health/ready"),
                e2e::http_get(admin, "/metrics"),
            ) {
                (Ok((200, _)), Ok((200, metrics)))
                    if metrics.lines().any(|l| l == "prodready_leader 1") =>
                {
                    Ok(())
                }
                (ready, _) => Err(format!("/health/ready: {ready:?}")),
            }
        }
    })
    .await;
    if let Err(e) = leader {
        panic!("{e}\n--- log ---\n{}", daemon.log_tail(40));
    }
    let status = daemon.stop(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "`prodready run` from the image did not exit 0 on SIGTERM ({status:?}):\n{}",
        daemon.log_tail(40)
    );

    // The packaged chart with its default values: the image by the digest, accepted by the
    // API server, and zero findings from the image's own strict audit.
    let ns = cp.temp_namespace("chart-release").await.expect("namespace");
    let yaml = helm_template_chart(cp, &pkg.chart, "prodready", ns.name(), &[WITH_MONITORING])
        .await
        .expect("render the packaged chart");
    let docs = documents(&yaml).expect("rendered YAML parses");
    let image = find(&docs, "Deployment", "prodready")
        .pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    assert_eq!(image, format!("ghcr.io/prodready/prodready@{}", pkg.digest));
    server_dry_run(cp, &yaml).await;
    let rendered = dist.path().join("chart.yaml");
    std::fs::write(&rendered, &yaml).expect("write the rendered chart");
    let args = STRICT_AUDIT
        .iter()
        .map(|a| a.as_ref())
        .chain([rendered.as_os_str()]);
    let audit = run_program(&image_binary, args)
        .await
        .expect("run the image's prodready audit");
    let report: Value = serde_json::from_str(&audit.stdout)
        .unwrap_or_else(|e| panic!("audit JSON: {e}\n{}\n{}", audit.stdout, audit.stderr));
    let failing = failing_rules(&report);
    assert!(
        audit.status.success() && failing.is_empty(),
        "the released chart fails its strict profile with default values ({}, {failing:?}):\n{}",
        audit.status,
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
}
