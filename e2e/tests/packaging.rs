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
use std::path::{Path, PathBuf};
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
        "crds.keep=false",
        "rbac.aggregateToEdit=true",
        "image.architectures={amd64}",
        "nodeSelector.pool=system",
        "deploymentAnnotations.owner=platform",
        "updateStrategy.rollingUpdate.maxSurge=2",
        "webhook.service.annotations.team=platform",
        "metrics.service.annotations.team=platform",
        "extraVolumes[0].name=corp-ca",
        "extraVolumes[0].configMap.name=corp-ca",
        "extraVolumeMounts[0].name=corp-ca",
        "extraVolumeMounts[0].mountPath=/etc/corp-ca",
        "extraVolumeMounts[0].readOnly=true",
        "webhook.objectSelector.matchExpressions[0].key=prodready.dev/skip",
        "webhook.objectSelector.matchExpressions[0].operator=DoesNotExist",
        "webhook.namespaceSelectorExpressions[0].key=tier",
        "webhook.namespaceSelectorExpressions[0].operator=In",
        "webhook.namespaceSelectorExpressions[0].values={production}",
        "webhook.matchConditions[0].name=not-node-users",
        "webhook.matchConditions[0].expression=!request.userInfo.username.startsWith('system:node:')",
        "hostNetwork=true",
        "podDisruptionBudget.minAvailable=1",
        "reports.api=policyreport",
        "reports.includePasses=true",
        "clusterName=eu-west-1-prod",
        "metrics.serviceMonitor.scrapeTimeout=10s",
        "metrics.serviceMonitor.namespace=monitoring",
        "metrics.serviceMonitor.relabelings[0].targetLabel=cluster",
        "metrics.serviceMonitor.relabelings[0].replacement=prod",
        "metrics.serviceMonitor.metricRelabelings[0].action=drop",
        "metrics.serviceMonitor.metricRelabelings[0].sourceLabels={__name__}",
        "metrics.serviceMonitor.metricRelabelings[0].regex=go_.*",
        "resources.limits.cpu=1",
        "prometheusRule.enabled=true",
        "prometheusRule.namespace=monitoring",
        "prometheusRule.labels.release=kube-prometheus",
        "prometheusRule.job=prodready",
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
            // Where `every_option` puts the ServiceMonitor.
            apply_yaml(
                &client,
                None,
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: monitoring}\n",
            )
            .await
            .expect("create the monitoring namespace");
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
    // A Linux image for amd64 and arm64: only such nodes.
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    assert_eq!(
        pod.pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms"),
        Some(&json!([{"matchExpressions": [
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]}
        ]}]))
    );
    assert_eq!(
        d["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
    );
    assert!(pod.get("hostNetwork").is_none() && pod.get("dnsPolicy").is_none());
    let crd = find(
        &docs,
        "CustomResourceDefinition",
        "productionpolicies.prodready.dev",
    );
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    // Namespace users holding `view` read the policies; nobody gets write by aggregation.
    let view = find(&docs, "ClusterRole", "prodready-view");
    assert_eq!(
        view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"],
        "true"
    );
    assert_eq!(
        grants(view),
        [
            "prodready.dev/productionpolicies/*:get",
            "prodready.dev/productionpolicies/*:list",
            "prodready.dev/productionpolicies/*:watch",
            "prodready.dev/productionpolicies/status/*:get",
            "prodready.dev/productionpolicies/status/*:list",
            "prodready.dev/productionpolicies/status/*:watch",
        ]
    );

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

    // `helm install` against the API server (dry run) and the NOTES it prints. The shared
    // control plane already has the CRD, applied without Helm's ownership metadata (as by
    // every suite here), so this install leaves it alone; the chart's own CRD lifecycle is
    // tested on a control plane of its own (`helm_upgrade_applies_…`).
    let chart = chart_dir();
    let out = cp
        .helm([
            "install",
            "prodready",
            &chart.to_string_lossy(),
            "--namespace",
            ns.name(),
            "--dry-run=server",
            "--set",
            "crds.enabled=false",
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
        "garbage collected with it",
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
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "CustomResourceDefinition",
            "Deployment",
            "Issuer",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "ProductionPolicy",
            "PrometheusRule",
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
    let rule = find(&docs, "PrometheusRule", "prodready");
    assert_eq!(rule["metadata"]["namespace"], "monitoring");
    assert_eq!(rule["metadata"]["labels"]["release"], "kube-prometheus");
    assert!(rule["spec"].to_string().contains(r#"job=\"prodready\""#));

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

    // The knobs of issue 16, each where the API server reads it.
    assert_eq!(sm["metadata"]["namespace"], "monitoring");
    assert_eq!(
        sm["spec"]["namespaceSelector"]["matchNames"],
        json!([ns.name()])
    );
    let endpoint = &sm["spec"]["endpoints"][0];
    assert_eq!(endpoint["scrapeTimeout"], "10s");
    assert_eq!(
        endpoint["relabelings"],
        json!([{"targetLabel": "cluster", "replacement": "prod"}])
    );
    assert_eq!(
        endpoint["metricRelabelings"],
        json!([{"action": "drop", "sourceLabels": ["__name__"], "regex": "go_.*"}])
    );
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(
        pod["nodeSelector"],
        json!({"kubernetes.io/os": "linux", "pool": "system"})
    );
    assert_eq!(
        pod.pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchExpressions/0/values"),
        Some(&json!(["amd64"]))
    );
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
    assert_eq!(d["metadata"]["annotations"]["owner"], "platform");
    assert_eq!(
        d["metadata"]["annotations"]["prodready.dev/single-runner"],
        "true"
    );
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], 2);
    assert_eq!(c["resources"]["limits"]["cpu"], 1);
    assert_eq!(
        c["volumeMounts"][1],
        json!({"name": "corp-ca", "mountPath": "/etc/corp-ca", "readOnly": true})
    );
    assert_eq!(
        pod["volumes"][1],
        json!({"name": "corp-ca", "configMap": {"name": "corp-ca"}})
    );
    let hook = &vwc["webhooks"][0];
    assert_eq!(
        hook["namespaceSelector"]["matchExpressions"][1],
        json!({"key": "tier", "operator": "In", "values": ["production"]})
    );
    assert_eq!(
        hook["objectSelector"],
        json!({"matchExpressions": [{"key": "prodready.dev/skip", "operator": "DoesNotExist"}]})
    );
    assert_eq!(
        hook["matchConditions"],
        json!([{"name": "not-node-users",
                "expression": "!request.userInfo.username.startsWith('system:node:')"}])
    );
    for svc in ["prodready-webhook", "prodready-metrics"] {
        assert_eq!(
            find(&docs, "Service", svc)["metadata"]["annotations"]["team"],
            "platform"
        );
    }
    let pdb = find(&docs, "PodDisruptionBudget", "prodready");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert!(pdb["spec"].get("maxUnavailable").is_none());
    let edit = find(&docs, "ClusterRole", "prodready-edit");
    assert_eq!(
        edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
        "true"
    );
    let crd = find(
        &docs,
        "CustomResourceDefinition",
        "productionpolicies.prodready.dev",
    );
    assert!(
        crd["metadata"].get("annotations").is_none(),
        "crds.keep=false: no resource policy"
    );
}

#[tokio::test]
async fn the_chart_and_kustomize_copies_of_the_crd_are_the_generated_one() {
    let root = repo_root();
    let top = std::fs::read(root.join(CRD_FILE)).expect("top-level CRD");
    for copy in [
        "charts/prodready/files/productionpolicies.prodready.dev.yaml",
        "config/crd/productionpolicies.prodready.dev.yaml",
    ] {
        let bytes = std::fs::read(root.join(copy)).unwrap_or_else(|e| panic!("{copy}: {e}"));
        assert!(
            bytes == top,
            "{copy} differs from {CRD_FILE}: copy it again (`make crd` regenerates them)"
        );
    }
}

/// The chart's CRD is a template over `files/` (so `helm upgrade` applies a changed schema):
/// what it renders is the generated CRD with only Helm's labels and, by default, the `keep`
/// resource policy added; `crds.enabled=false` renders none.
#[tokio::test]
async fn the_chart_renders_the_generated_crd_with_only_metadata_added() {
    let cp = plane().await;
    let generated = std::fs::read_to_string(repo_root().join(CRD_FILE)).expect("CRD file");
    let generated = documents(&generated).expect("CRD parses");
    assert_eq!(generated.len(), 1);
    let crd_of = |docs: &[Value]| -> Option<Value> {
        docs.iter()
            .find(|d| d["kind"] == "CustomResourceDefinition")
            .cloned()
    };
    for (sets, keep) in [(vec![], true), (vec!["crds.keep=false"], false)] {
        let yaml = helm_template(cp, "prodready", "prodready-system", &sets)
            .await
            .expect("render");
        let mut crd = crd_of(&documents(&yaml).expect("parses")).expect("a CRD");
        let meta = crd["metadata"].as_object_mut().expect("metadata");
        let labels = meta.remove("labels").expect("labels");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm");
        let annotations = meta.remove("annotations");
        assert_eq!(
            annotations,
            keep.then(|| json!({"helm.sh/resource-policy": "keep"})),
            "{sets:?}"
        );
        assert_eq!(
            crd, generated[0],
            "{sets:?}: the CRD differs from {CRD_FILE}"
        );
    }
    let yaml = helm_template(cp, "prodready", "prodready-system", &["crds.enabled=false"])
        .await
        .expect("render");
    assert_eq!(crd_of(&documents(&yaml).expect("parses")), None);
}

/// `helm template` of the chart with `sets` (what `helm install` renders; `helm lint` only
/// logs a template's `fail` as INFO): whether it rendered, and helm's error if not.
async fn lint_with(cp: &ControlPlane, sets: &[&str]) -> (bool, String) {
    match helm_template(cp, "prodready", "prodready-system", sets).await {
        Ok(_) => (true, String::new()),
        Err(e) => (false, format!("{e:#}")),
    }
}

/// The schema traps of issue 16: a number where Kubernetes takes a quantity is fine; a
/// duration cert-manager cannot parse, and a preStop sleep the grace period cannot hold,
/// are refused before anything reaches the cluster, with a sentence that says why.
#[tokio::test]
async fn the_values_schema_accepts_numbers_and_refuses_what_the_cluster_would() {
    let cp = plane().await;
    for ok in [
        "resources.limits.cpu=1",
        "resources.requests.cpu=0.5",
        "resources.limits.memory=268435456",
        "certManager.duration=2160h30m",
        "podDisruptionBudget.maxUnavailable=50%",
        "preStopSleepSeconds=20",
    ] {
        let (passed, out) = lint_with(cp, &[ok]).await;
        assert!(passed, "--set {ok} must be accepted:\n{out}");
    }
    for bad in [
        "certManager.duration=90d",
        "certManager.renewBefore=1 week",
        "resources.limits.cpu=lots",
        "podDisruptionBudget.minAvailable=half",
        "webhook.objectSelector.matchExpressions[0].operator=Maybe",
        "dnsPolicy=Sometimes",
        "image.architectures={sparc}",
    ] {
        let (passed, out) = lint_with(cp, &[bad]).await;
        assert!(!passed, "--set {bad} must be refused:\n{out}");
    }
    let (passed, out) = lint_with(cp, &["preStopSleepSeconds=40"]).await;
    assert!(
        !passed,
        "a preStop sleep longer than the grace period:\n{out}"
    );
    assert!(
        out.contains(
            "preStopSleepSeconds (40) must be less than terminationGracePeriodSeconds (30)"
        ),
        "{out}"
    );
    let (passed, out) = lint_with(
        cp,
        &["preStopSleepSeconds=40", "terminationGracePeriodSeconds=60"],
    )
    .await;
    assert!(passed, "raising the grace period fixes it:\n{out}");
    let (passed, out) = lint_with(cp, &["podDisruptionBudget.minAvailable=2"]).await;
    assert!(
        !passed,
        "minAvailable = replicas blocks every drain:\n{out}"
    );
    assert!(
        out.contains("podDisruptionBudget.minAvailable (2) must be less than replicaCount (2)"),
        "{out}"
    );
}

/// Every leaf of values.yaml: its path, with `.` between keys. A map is a leaf when the
/// schema gives it no `properties` (free-form: labels, resources, security contexts).
fn value_paths(values: &Value, schema: &Value, prefix: &str, out: &mut Vec<String>) {
    let props = schema.get("properties").and_then(Value::as_object);
    match (values.as_object(), props) {
        (Some(map), Some(props)) if !map.is_empty() => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                let sub = props.get(k).unwrap_or_else(|| {
                    panic!("values.yaml has {path}, values.schema.json does not")
                });
                value_paths(v, sub, &path, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

/// The value names of docs/install.md's Values table: the backquoted names of each row's
/// first cell, where `.x` after `a.b` means `a.x`.
fn documented_values(doc: &str) -> Vec<String> {
    let start = doc
        .find("### Values")
        .expect("docs/install.md has ### Values");
    let mut names = Vec::new();
    for line in doc[start..].lines().skip(1) {
        if line.starts_with("#") {
            break;
        }
        let Some(cell) = line.strip_prefix("| `") else {
            continue;
        };
        let cell = cell.split(" |").next().unwrap_or_default();
        let mut parent = String::new();
        for name in cell.split('`').step_by(2) {
            let name = name.trim();
            if name.is_empty() || name.contains(' ') {
                continue;
            }
            let full = match name.strip_prefix('.') {
                Some(rest) => format!("{parent}{rest}"),
                None => name.to_owned(),
            };
            parent = full
                .rfind('.')
                .map_or(String::new(), |i| full[..=i].to_owned());
            names.push(full);
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Every value in values.yaml is typed by the schema and documented in docs/install.md, and
/// the docs name no value the chart does not have.
#[test]
fn every_value_is_in_the_schema_and_in_docs_install() {
    let chart = chart_dir();
    let values = std::fs::read_to_string(chart.join("values.yaml")).expect("values.yaml");
    let values: Value = serde_saphyr::from_str(&values).expect("values.yaml parses");
    let schema = std::fs::read_to_string(chart.join("values.schema.json")).expect("schema");
    let schema: Value = serde_json::from_str(&schema).expect("schema is JSON");
    let mut paths = Vec::new();
    value_paths(&values, &schema, "", &mut paths);
    assert!(paths.len() > 60, "{paths:?}");
    let doc = std::fs::read_to_string(repo_root().join("docs/install.md")).expect("install.md");
    let documented = documented_values(&doc);
    let missing: Vec<&String> = paths.iter().filter(|p| !documented.contains(p)).collect();
    assert!(
        missing.is_empty(),
        "values.yaml has these, the Values table of docs/install.md does not: {missing:?}"
    );
    let unknown: Vec<&String> = documented.iter().filter(|d| !paths.contains(d)).collect();
    assert!(
        unknown.is_empty(),
        "docs/install.md documents values the chart does not have: {unknown:?}"
    );
}

/// `text` without the YAML block of the mapping key `key` (its line and every line indented
/// deeper below it): a CRD one schema property older.
fn without_yaml_block(text: &str, key: &str) -> String {
    let mut out = String::new();
    let mut skipping: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(level) = skipping {
            if line.trim().is_empty() || indent > level {
                continue;
            }
            skipping = None;
        }
        if line.trim_start() == format!("{key}:") {
            skipping = Some(indent);
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `kubectl get KIND NAME -n NAMESPACE -o json`, or `None` when it does not exist.
async fn get_json(cp: &ControlPlane, kind: &str, name: &str, namespace: &str) -> Option<Value> {
    let out = cp
        .kubectl(["get", kind, name, "-n", namespace, "-o", "json"])
        .await
        .expect("run kubectl");
    if !out.success() {
        assert!(
            out.stderr.contains("NotFound"),
            "kubectl get {kind} {name}: {}",
            out.stderr
        );
        return None;
    }
    Some(serde_json::from_str(&out.stdout).expect("kubectl JSON"))
}

/// The chart's lifecycle on a control plane of its own, as docs/install.md describes it:
/// `helm install` of a previous chart version whose CRD lacks a property, then the released
/// chart archive (no checkout needed) as the upgrade. The operator, run with the chart's own
/// container arguments but without `--owner-deployment` (as a version before it), takes the
/// Lease and fills the webhook Secret; run again with them, it gives both an owner reference
/// to the chart's Deployment. `helm upgrade` to this chart applies the new CRD schema and
/// leaves what the operator wrote alone; `helm uninstall` removes the chart's objects and
/// keeps the CRD; with no garbage collector here, the Lease and the Secret stay, naming the
/// gone Deployment, and docs/install.md's by-hand command removes them.
#[tokio::test]
async fn helm_upgrade_applies_a_changed_crd_and_uninstall_leaves_what_the_docs_say() {
    const NS: &str = "prodready-system";
    const CRD: &str = "productionpolicies.prodready.dev";
    const PROPERTY: &str = "allowAnnotationExemptions";
    let plane = ControlPlane::start()
        .await
        .expect("a control plane of its own");
    let cp = &plane;
    let dir = tempfile::tempdir().expect("temp dir");

    // The previous chart version: the same chart, version 0.0.9, one CRD property fewer.
    let previous = dir.path().join("prodready");
    let copied = run_program(
        Path::new("cp"),
        ["-R".as_ref(), chart_dir().as_os_str(), previous.as_os_str()],
    )
    .await
    .and_then(Output::ok);
    copied.expect("copy the chart");
    let crd_file = previous.join("files/productionpolicies.prodready.dev.yaml");
    let text = std::fs::read_to_string(&crd_file).expect("the chart's CRD");
    let older = without_yaml_block(&text, PROPERTY);
    assert!(older.len() < text.len(), "{PROPERTY} is in the CRD");
    std::fs::write(&crd_file, older).expect("write the older CRD");
    let chart_yaml = previous.join("Chart.yaml");
    let meta = std::fs::read_to_string(&chart_yaml).expect("Chart.yaml");
    let meta = meta.replace("\nversion: 0.1.0\n", "\nversion: 0.0.9\n");
    assert!(meta.contains("\nversion: 0.0.9\n"), "{meta}");
    std::fs::write(&chart_yaml, meta).expect("write Chart.yaml");

    let helm = |args: Vec<String>| async move {
        let out = cp.helm(&args).await.expect("run helm");
        assert!(
            out.success(),
            "helm {}:\n{}\n{}",
            args.join(" "),
            out.stdout,
            out.stderr
        );
        out.stdout
    };
    let args = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
    let previous = previous.to_string_lossy().into_owned();
    // This version: the chart as released (`hack/package.sh`'s .tgz, image by digest).
    let current = released().await.chart.to_string_lossy().into_owned();
    helm(args(&[
        "install",
        "prodready",
        &previous,
        "--namespace",
        NS,
        "--create-namespace",
    ]))
    .await;
    let properties = |crd: &Value| -> Vec<String> {
        crd.pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    };
    let crd = get_json(cp, "crd", CRD, NS)
        .await
        .expect("the CRD is installed");
    assert!(
        !properties(&crd).contains(&PROPERTY.to_owned()),
        "{:?}",
        properties(&crd)
    );

    // The operator, with the arguments the chart gives its container (on loopback ports).
    let yaml = helm_template_chart(cp, Path::new(&current), "prodready", NS, &[])
        .await
        .expect("render");
    let docs = documents(&yaml).expect("parses");
    let deployment = find(&docs, "Deployment", "prodready");
    let [admin, webhook] = [free_port().expect("port"), free_port().expect("port")];
    let mut run: Vec<String> = deployment
        .pointer("/spec/template/spec/containers/0/args")
        .and_then(Value::as_array)
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .filter(|a| !a.starts_with("--admin-addr=") && !a.starts_with("--webhook-addr="))
        .map(str::to_owned)
        .collect();
    run.extend([
        format!("--kubeconfig={}", cp.kubeconfig().display()),
        format!("--admin-addr=127.0.0.1:{admin}"),
        format!("--webhook-addr=127.0.0.1:{webhook}"),
        "--identity=prodready-0".to_owned(),
    ]);
    let program = Path::new(env!("CARGO_BIN_EXE_prodready-operator"));
    let start = |args: &[String], log: &str| {
        e2e::OperatorProcess::start(
            program,
            args,
            &[("POD_NAMESPACE", NS), ("POD_NAME", "prodready-0")],
            &dir.path().join(log),
        )
        .expect("start the operator")
    };
    let owners = |obj: &Option<Value>| -> Vec<Value> {
        obj.as_ref()
            .and_then(|o| o.pointer("/metadata/ownerReferences"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    // First as a version before `--owner-deployment` wrote them: Lease and Secret unowned.
    assert!(
        run.iter().any(|a| a == "--owner-deployment=prodready"),
        "the chart names the owner: {run:?}"
    );
    let older: Vec<String> = run
        .iter()
        .filter(|a| !a.starts_with("--owner-deployment"))
        .cloned()
        .collect();
    let operator = start(&older, "older.log");
    let filled = e2e::wait_for(
        Duration::from_secs(60),
        "the Lease held and the Secret filled",
        || {
            let cp = &cp;
            let exited = operator.exited();
            async move {
                if let Some(status) = exited {
                    return Err(format!("the operator exited: {status}"));
                }
                let lease = get_json(cp, "lease", "prodready-leader", NS).await;
                let secret = get_json(cp, "secret", "prodready-webhook-tls", NS).await;
                let holder = lease
                    .as_ref()
                    .and_then(|l| l.pointer("/spec/holderIdentity").cloned());
                let has_key = secret
                    .as_ref()
                    .is_some_and(|s| s.pointer("/data/ca.key").is_some());
                if holder == Some(json!("prodready-0")) && has_key {
                    Ok(())
                } else {
                    Err(format!(
                        "holder {holder:?}, ca.key in the Secret: {has_key}"
                    ))
                }
            }
        },
    )
    .await;
    if let Err(e) = filled {
        panic!("{e}\n--- operator log ---\n{}", operator.log_tail(40));
    }
    for kind in ["lease", "secret"] {
        let name = if kind == "lease" {
            "prodready-leader"
        } else {
            "prodready-webhook-tls"
        };
        assert_eq!(
            owners(&get_json(cp, kind, name, NS).await),
            Vec::<Value>::new()
        );
    }
    drop(operator);
    // Then as the chart runs it: both are adopted by the Deployment (uninstall removes them).
    let uid = get_json(cp, "deployment", "prodready", NS)
        .await
        .and_then(|d| d.pointer("/metadata/uid").cloned())
        .expect("the chart's Deployment has a uid");
    let want = vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "prodready", "uid": uid}),
    ];
    let operator = start(&run, "operator.log");
    let adopted = e2e::wait_for(
        Duration::from_secs(60),
        "the Lease and the Secret owned by the Deployment",
        || {
            let (cp, want, owners) = (&cp, &want, &owners);
            let exited = operator.exited();
            async move {
                if let Some(status) = exited {
                    return Err(format!("the operator exited: {status}"));
                }
                let lease = owners(&get_json(cp, "lease", "prodready-leader", NS).await);
                let secret = owners(&get_json(cp, "secret", "prodready-webhook-tls", NS).await);
                if &lease == want && &secret == want {
                    Ok(())
                } else {
                    Err(format!("Lease owners {lease:?}, Secret owners {secret:?}"))
                }
            }
        },
    )
    .await;
    if let Err(e) = adopted {
        panic!("{e}\n--- operator log ---\n{}", operator.log_tail(40));
    }
    let ca_key = get_json(cp, "secret", "prodready-webhook-tls", NS)
        .await
        .and_then(|s| s.pointer("/data/ca.key").cloned());

    // Upgrade: the new schema is applied; what the operator wrote is left alone.
    helm(args(&["upgrade", "prodready", &current, "--namespace", NS])).await;
    let crd = get_json(cp, "crd", CRD, NS).await.expect("the CRD");
    assert!(
        properties(&crd).contains(&PROPERTY.to_owned()),
        "helm upgrade did not apply the new CRD schema: {:?}",
        properties(&crd)
    );
    assert_eq!(
        crd["metadata"]["labels"]["helm.sh/chart"],
        "prodready-0.1.0"
    );
    let secret = get_json(cp, "secret", "prodready-webhook-tls", NS)
        .await
        .expect("Secret");
    assert_eq!(
        secret.pointer("/data/ca.key").cloned(),
        ca_key,
        "the upgrade kept the CA"
    );
    let lease = get_json(cp, "lease", "prodready-leader", NS)
        .await
        .expect("Lease");
    assert!(lease.pointer("/spec/holderIdentity").is_some(), "{lease}");
    drop(operator);

    // Uninstall: what is left is exactly what docs/install.md#uninstall lists.
    helm(args(&[
        "uninstall",
        "prodready",
        "--namespace",
        NS,
        "--wait",
    ]))
    .await;
    for (kind, name) in [
        ("validatingwebhookconfiguration", "prodready"),
        ("deployment", "prodready"),
        ("clusterrole", "prodready"),
        ("clusterrole", "prodready-view"),
    ] {
        assert_eq!(
            get_json(cp, kind, name, NS).await,
            None,
            "{kind}/{name} is left after helm uninstall"
        );
    }
    assert!(
        get_json(cp, "crd", CRD, NS).await.is_some(),
        "the CRD is kept"
    );
    // No garbage collector on a bare API server: the Secret and the Lease are still there,
    // naming the gone Deployment (a real cluster's collector removes them: the in-cluster
    // suite checks that). docs/install.md's by-hand command, verbatim, removes them.
    for (kind, name) in [
        ("lease", "prodready-leader"),
        ("secret", "prodready-webhook-tls"),
    ] {
        assert_eq!(
            owners(&get_json(cp, kind, name, NS).await),
            want,
            "{kind}/{name} is owned by the uninstalled Deployment"
        );
    }
    let by_hand = install_md_block("delete them by hand:");
    assert_eq!(
        by_hand.len(),
        1,
        "docs/install.md's by-hand delete: {by_hand:?}"
    );
    let by_hand = &by_hand[0];
    let words: Vec<&str> = by_hand.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"kubectl"), "{by_hand}");
    for cmd in [words[1..].to_vec(), vec!["delete", "crd", CRD]] {
        let out = cp.kubectl(&cmd).await.expect("run kubectl");
        assert!(out.success(), "kubectl {cmd:?}: {}", out.stderr);
    }
    assert_eq!(get_json(cp, "lease", "prodready-leader", NS).await, None);
    assert_eq!(
        get_json(cp, "secret", "prodready-webhook-tls", NS).await,
        None
    );
    assert_eq!(get_json(cp, "crd", CRD, NS).await, None);
}

/// docs/install.md#upgrade, from a chart that still shipped the CRD in `crds/` (Helm created
/// the CRD without its ownership metadata): a plain `helm upgrade` to the released chart is
/// refused, `--take-ownership` adopts the CRD into the release, which then keeps it on
/// uninstall.
#[tokio::test]
async fn upgrading_from_a_chart_with_crds_dir_takes_the_crd_over_with_take_ownership() {
    const NS: &str = "prodready-system";
    const CRD: &str = "productionpolicies.prodready.dev";
    let plane = ControlPlane::start()
        .await
        .expect("a control plane of its own");
    let cp = &plane;
    let dir = tempfile::tempdir().expect("temp dir");
    // The old layout: the CRD in crds/, no CRD template.
    let old = dir.path().join("prodready");
    run_program(
        Path::new("cp"),
        ["-R".as_ref(), chart_dir().as_os_str(), old.as_os_str()],
    )
    .await
    .and_then(Output::ok)
    .expect("copy the chart");
    std::fs::remove_file(old.join("templates/crd.yaml")).expect("remove the CRD template");
    std::fs::create_dir_all(old.join("crds")).expect("crds/");
    std::fs::copy(
        repo_root().join(CRD_FILE),
        old.join("crds/productionpolicies.prodready.dev.yaml"),
    )
    .expect("copy the CRD into crds/");
    let old = old.to_string_lossy().into_owned();
    let released = released().await.chart.to_string_lossy().into_owned();
    let helm = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        async move { cp.helm(&args).await.expect("run helm") }
    };
    let off = "webhook.enabled=false";
    let out = helm(&[
        "install",
        "prodready",
        &old,
        "-n",
        NS,
        "--create-namespace",
        "--set",
        off,
    ])
    .await;
    assert!(out.success(), "install the old chart: {}", out.stderr);
    let crd = get_json(cp, "crd", CRD, NS)
        .await
        .expect("crds/ installed the CRD");
    assert!(crd["metadata"]["annotations"]["meta.helm.sh/release-name"].is_null());

    let out = helm(&["upgrade", "prodready", &released, "-n", NS, "--set", off]).await;
    assert!(
        !out.success() && out.stderr.contains("invalid ownership metadata"),
        "a plain upgrade must refuse to adopt the CRD:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    // docs/install.md#upgrade, with the release archive in place of the OCI reference.
    let out = helm(&[
        "upgrade",
        "prodready",
        &released,
        "-n",
        NS,
        "--take-ownership",
        "--set",
        off,
    ])
    .await;
    assert!(
        out.success(),
        "helm upgrade --take-ownership: {}",
        out.stderr
    );
    let crd = get_json(cp, "crd", CRD, NS).await.expect("the CRD");
    assert_eq!(
        crd["metadata"]["annotations"]["meta.helm.sh/release-name"],
        "prodready"
    );
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let out = helm(&["uninstall", "prodready", "-n", NS, "--wait"]).await;
    assert!(out.success(), "helm uninstall: {}", out.stderr);
    assert!(
        get_json(cp, "crd", CRD, NS).await.is_some(),
        "the adopted CRD is kept"
    );
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

/// Runs a linux/arm64 binary with `args`: directly on arm64, else under qemu user-mode
/// emulation ([`e2e::arm64_runner`]).
async fn run_arm64(binary: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let runner = e2e::arm64_runner()?;
    let (program, mut argv): (PathBuf, Vec<std::ffi::OsString>) = match runner.split_first() {
        Some((qemu, rest)) => (
            qemu.clone(),
            rest.iter()
                .map(|a| a.clone().into_os_string())
                .chain([binary.as_os_str().to_owned()])
                .collect(),
        ),
        None => (binary.to_path_buf(), Vec::new()),
    };
    argv.extend(args.iter().map(Into::into));
    run_program(&program, &argv).await
}

/// `hack/package.sh`'s output, made once for every test of this binary that needs it.
async fn released() -> &'static e2e::Package {
    static RELEASED: OnceCell<(tempfile::TempDir, e2e::Package)> = OnceCell::const_new();
    let (_, pkg) = RELEASED
        .get_or_init(|| async {
            let binary = e2e::release_binary().expect("the static release binary");
            let arm64 = e2e::release_binary_arm64().expect("the static linux/arm64 release binary");
            let dir = tempfile::tempdir().expect("temp dir");
            let pkg = e2e::package(&binary, &arm64, &dir.path().join("dist"))
                .await
                .expect("hack/package.sh");
            (dir, pkg)
        })
        .await;
    pkg
}

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
    let arm64 = e2e::release_binary_arm64().expect("the static linux/arm64 release binary");
    let dist = tempfile::tempdir().expect("temp dir");
    let pkg = released().await;
    let hex = pkg.digest.strip_prefix("sha256:").unwrap_or_default();
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{pkg:?}"
    );
    // Reproducible: the same commit and binary give the same image, byte for byte.
    let again = e2e::package(&binary, &arm64, &dist.path().join("b"))
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

    // One OCI image index: linux/amd64 and linux/arm64.
    let index = crane_ok("manifest", crane(["manifest", &by_digest]).await);
    let index: Value = serde_json::from_str(&index.stdout).expect("index JSON");
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let platforms: Vec<&Value> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| &m["platform"])
        .collect();
    assert_eq!(
        platforms,
        [
            &json!({"architecture": "amd64", "os": "linux"}),
            &json!({"architecture": "arm64", "os": "linux", "variant": "v8"})
        ],
        "{index}"
    );
    let arm_config = crane_ok(
        "config",
        crane(["config", "--platform", "linux/arm64", &by_digest]).await,
    );
    let arm_config: Value = serde_json::from_str(&arm_config.stdout).expect("config JSON");
    assert_eq!(
        (&arm_config["os"], &arm_config["architecture"]),
        (&json!("linux"), &json!("arm64"))
    );
    // The arm64 image's binary is an arm64 executable and runs (emulated here) as prodready.
    let arm_fs = dist.path().join("arm64-fs.tar");
    crane_ok(
        "export",
        crane([
            "export".as_ref(),
            "--platform".as_ref(),
            "linux/arm64".as_ref(),
            by_digest.as_ref(),
            arm_fs.as_os_str(),
        ])
        .await,
    );
    let arm_root = dist.path().join("arm64-rootfs");
    std::fs::create_dir_all(&arm_root).expect("dir");
    run_program(
        Path::new("tar"),
        [
            "-xf".as_ref(),
            arm_fs.as_os_str(),
            "-C".as_ref(),
            arm_root.as_os_str(),
        ],
    )
    .await
    .and_then(Output::ok)
    .expect("tar -x the arm64 image");
    let arm_binary = arm_root.join("prodready");
    let elf = std::fs::read(&arm_binary).expect("the arm64 image's binary");
    assert_eq!(
        (&elf[..4], u16::from_le_bytes([elf[18], elf[19]])),
        (&b"\x7fELF"[..], 0xB7),
        "an AArch64 ELF"
    );
    let version = run_arm64(&arm_binary, &["--version"])
        .await
        .and_then(Output::ok)
        .expect("the arm64 binary runs");
    assert_eq!(version.stdout.trim(), format!("prodready {}", pkg.version));

    // The image's configuration is the Dockerfile's runtime stage.
    let config = crane_ok(
        "config",
        crane(["config", "--platform", "linux/amd64", &by_digest]).await,
    );
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
        crane([
            "export".as_ref(),
            "--platform".as_ref(),
            "linux/amd64".as_ref(),
            by_digest.as_ref(),
            fs.as_os_str(),
        ])
        .await,
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

    // `docker run --rm -i IMAGE audit - < manifests`: the image's entrypoint with `audit -`.
    let entrypoint = c["Entrypoint"][0].as_str().expect("an entrypoint");
    let program = root.join(entrypoint.trim_start_matches('/'));
    let (code, out, err) = sh(
        &program,
        &["audit", "-"],
        dist.path(),
        &[],
        Some(BAD_DEPLOYMENT),
    );
    assert_eq!(code, 1, "audit - of a bad Deployment exits 1:\n{out}{err}");
    assert!(out.contains("readiness-probe"), "{out}");

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

// ---------------------------------------------------------------------------------------
// Adoption: the CLI tarballs, `docker run IMAGE audit -`, the CI action, the krew plugin and
// the pre-commit hook, each run the way a user runs it, from the packaged release.
// ---------------------------------------------------------------------------------------

/// A Deployment with no probes, no resources and a `latest` image: fails the baseline.
const BAD_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: app
          image: nginx:latest
";

/// `program args…` in `cwd` with `env` added and `stdin` fed: (exit code, stdout, stderr).
fn sh(
    program: &Path,
    args: &[&str],
    cwd: &Path,
    env: &[(&str, std::ffi::OsString)],
    stdin: Option<&str>,
) -> (i32, String, String) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Unpacks the CLI tarball for `arch` into `into`; returns the directory it holds.
fn unpack_cli(pkg: &e2e::Package, arch: &str, into: &Path) -> PathBuf {
    std::fs::create_dir_all(into).expect("dir");
    let tarball = pkg.tarball(arch);
    let (code, _, err) = sh(
        Path::new("tar"),
        &[
            "-xzf",
            &tarball.to_string_lossy(),
            "-C",
            &into.to_string_lossy(),
        ],
        into,
        &[],
        None,
    );
    assert_eq!(code, 0, "tar -xzf {}: {err}", tarball.display());
    into.join(format!("prodready-{}-linux-{arch}", pkg.version))
}

/// PATH with `dirs` first.
fn path_with(dirs: &[&Path]) -> std::ffi::OsString {
    let old = std::env::var_os("PATH").unwrap_or_default();
    let paths = dirs
        .iter()
        .map(|d| d.to_path_buf())
        .chain(std::env::split_paths(&old));
    std::env::join_paths(paths).expect("PATH")
}

#[tokio::test]
async fn the_cli_tarballs_match_their_checksums_and_run_on_both_architectures() {
    let pkg = released().await;
    let (code, out, err) = sh(
        Path::new("sha256sum"),
        &["-c", "SHA256SUMS"],
        &pkg.dir,
        &[],
        None,
    );
    assert_eq!(code, 0, "sha256sum -c SHA256SUMS:\n{out}{err}");
    let v = &pkg.version;
    for want in [
        format!("prodready-{v}-linux-amd64.tar.gz: OK"),
        format!("prodready-{v}-linux-arm64.tar.gz: OK"),
        format!("prodready-{v}.tgz: OK"),
        "image/index.json: OK".to_owned(),
    ] {
        assert!(out.lines().any(|l| l == want), "{want:?} not in:\n{out}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    for arch in ["amd64", "arm64"] {
        let tarball = pkg.tarball(arch);
        let (code, list, err) = sh(
            Path::new("tar"),
            &["-tzf", &tarball.to_string_lossy()],
            dir.path(),
            &[],
            None,
        );
        assert_eq!(code, 0, "{err}");
        let name = format!("prodready-{v}-linux-{arch}");
        assert_eq!(
            list.lines().collect::<Vec<_>>(),
            [
                format!("{name}/"),
                format!("{name}/LICENSE"),
                format!("{name}/README.md"),
                format!("{name}/prodready"),
            ],
            "{arch} tarball"
        );
        let cli = unpack_cli(pkg, arch, &dir.path().join(arch)).join("prodready");
        let version = if arch == "amd64" {
            run_program(&cli, ["--version"]).await
        } else {
            run_arm64(&cli, &["--version"]).await
        }
        .and_then(Output::ok)
        .unwrap_or_else(|e| panic!("the {arch} CLI: {e:#}"));
        assert_eq!(version.stdout.trim(), format!("prodready {v}"), "{arch}");
    }
}

/// The composite action's `run` steps, in order, executed by bash with the env each step
/// declares (its `${{ inputs.x }}` expressions evaluated), as the GitHub runner does, against
/// the packaged release served from a file:// URL laid out like GitHub's release downloads.
#[tokio::test]
async fn the_ci_action_installs_the_released_cli_audits_and_writes_sarif() {
    let pkg = released().await;
    let action = std::fs::read_to_string(repo_root().join("action.yml")).expect("action.yml");
    let action: Value = serde_saphyr::from_str(&action).expect("action.yml parses");
    assert_eq!(action["runs"]["using"], "composite");
    let work = tempfile::tempdir().expect("temp dir");
    // The release, as `RELEASE_URL/vVERSION/FILE`.
    let release = work.path().join("releases");
    let tag_dir = release.join(format!("v{}", pkg.version));
    std::fs::create_dir_all(&tag_dir).expect("dir");
    for f in [
        "SHA256SUMS".to_owned(),
        format!("prodready-{}-linux-amd64.tar.gz", pkg.version),
    ] {
        std::fs::copy(pkg.dir.join(&f), tag_dir.join(&f)).expect("copy release file");
    }
    let repo = work.path().join("repo");
    std::fs::create_dir_all(repo.join("k8s")).expect("dir");
    std::fs::write(repo.join("k8s/web.yaml"), BAD_DEPLOYMENT).expect("write manifest");
    // Not a Kubernetes object: skipped, not an input error (exit 2).
    std::fs::create_dir_all(repo.join(".github/workflows")).expect("dir");
    std::fs::write(
        repo.join(".github/workflows/ci.yml"),
        "on: push\njobs: {audit: {runs-on: ubuntu-latest, steps: [{uses: prodready/prodready@v0.1.0}]}}\n",
    )
    .expect("write workflow");
    let github_path = work.path().join("github_path");
    std::fs::write(&github_path, "").expect("GITHUB_PATH");

    let run_action = |inputs: &[(&str, &str)]| -> Vec<(String, i32, String)> {
        let mut values: BTreeMap<String, String> = action["inputs"]
            .as_object()
            .expect("inputs")
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v["default"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        values.insert("version".into(), pkg.version.clone());
        values.insert(
            "release-url".into(),
            format!("file://{}", release.display()),
        );
        for (k, v) in inputs {
            assert!(values.contains_key(*k), "action.yml has no input {k}");
            values.insert((*k).to_owned(), (*v).to_owned());
        }
        let expr = |text: &str| -> String {
            let mut out = text.to_owned();
            for (k, v) in &values {
                out = out.replace(&format!("${{{{ inputs.{k} }}}}"), v);
            }
            assert!(
                !out.contains("${{"),
                "an expression the test cannot evaluate: {text}"
            );
            out
        };
        std::fs::write(&github_path, "").expect("reset GITHUB_PATH");
        let mut results = Vec::new();
        for step in action["runs"]["steps"].as_array().expect("steps") {
            let Some(script) = step["run"].as_str() else {
                // `uses:` steps (the SARIF upload) belong to GitHub.
                assert_eq!(step["uses"], "github/codeql-action/upload-sarif@v3");
                continue;
            };
            assert_eq!(step["shell"], "bash");
            let added: Vec<PathBuf> = std::fs::read_to_string(&github_path)
                .expect("GITHUB_PATH")
                .lines()
                .map(PathBuf::from)
                .collect();
            let added: Vec<&Path> = added.iter().map(PathBuf::as_path).collect();
            let mut env: Vec<(String, std::ffi::OsString)> = vec![
                ("GITHUB_PATH".into(), github_path.clone().into_os_string()),
                ("GITHUB_ACTION_PATH".into(), repo_root().into_os_string()),
                (
                    "RUNNER_TEMP".into(),
                    work.path().join("tmp").into_os_string(),
                ),
                ("PATH".into(), path_with(&added)),
            ];
            for (k, v) in step["env"].as_object().into_iter().flatten() {
                env.push((k.clone(), expr(v.as_str().unwrap_or_default()).into()));
            }
            let env: Vec<(&str, std::ffi::OsString)> =
                env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            let (code, out, err) = sh(Path::new("bash"), &["-e", "-c", script], &repo, &env, None);
            let name = step["name"].as_str().unwrap_or_default().to_owned();
            let stop = code != 0;
            results.push((name, code, format!("{out}{err}")));
            if stop {
                break;
            }
        }
        results
    };

    // The default: the baseline profile over the whole checkout. The step fails on the
    // findings, and the SARIF report is written for the upload step (which runs `always()`).
    let results = run_action(&[]);
    assert_eq!(results.len(), 2, "{results:?}");
    let (install, code, log) = &results[0];
    assert_eq!((install.as_str(), *code), ("Install prodready", 0), "{log}");
    assert!(log.contains(&format!("prodready {}", pkg.version)), "{log}");
    let (audit, code, log) = &results[1];
    assert_eq!((audit.as_str(), *code), ("Audit", 1), "{log}");
    assert!(log.contains("readiness-probe"), "{log}");
    let sarif: Value = serde_json::from_str(
        &std::fs::read_to_string(repo.join("prodready.sarif")).expect("the SARIF report"),
    )
    .expect("SARIF is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    assert!(
        sarif.to_string().contains("readiness-probe"),
        "the SARIF report has the finding"
    );
    // Only critical findings fail: the same manifest passes (and the workflow file beside it
    // was skipped, not an input error).
    let results = run_action(&[("fail-on", "critical"), ("sarif-file", "out.sarif")]);
    assert!(results.iter().all(|(_, code, _)| *code == 0), "{results:?}");
    assert!(repo.join("out.sarif").is_file());
    // A tampered tarball is refused by the checksum.
    let tarball = tag_dir.join(format!("prodready-{}-linux-amd64.tar.gz", pkg.version));
    let mut bytes = std::fs::read(&tarball).expect("tarball");
    bytes.push(0);
    std::fs::write(&tarball, bytes).expect("tamper");
    let results = run_action(&[]);
    assert_eq!(results.len(), 1, "{results:?}");
    assert_ne!(
        results[0].1, 0,
        "a tampered tarball must fail the install: {results:?}"
    );
}

/// The krew manifest as `kubectl krew install --manifest=… --archive=…` uses it: the
/// platform for linux/amd64, the tarball's sha256, its `files` moved into the plugin
/// directory, `kubectl-prodready` linked to `bin`; then the real kubectl finds the plugin
/// and `kubectl prodready audit -` audits. (krew itself is not built here; these are the
/// steps it documents.)
#[tokio::test]
async fn the_krew_plugin_runs_as_kubectl_prodready() {
    let pkg = released().await;
    let text = std::fs::read_to_string(pkg.dir.join("krew/prodready.yaml")).expect("manifest");
    let manifest: Value = serde_saphyr::from_str(&text).expect("krew manifest parses");
    assert_eq!(manifest["kind"], "Plugin");
    assert_eq!(manifest["metadata"]["name"], "prodready");
    assert_eq!(
        manifest["spec"]["version"],
        format!("v{}", pkg.version).as_str()
    );
    let platforms = manifest["spec"]["platforms"].as_array().expect("platforms");
    assert_eq!(platforms.len(), 2);
    let sha = |p: &Path| -> String {
        let (code, out, err) = sh(
            Path::new("sha256sum"),
            &[&p.to_string_lossy()],
            &pkg.dir,
            &[],
            None,
        );
        assert_eq!(code, 0, "{err}");
        out.split_whitespace().next().unwrap_or_default().to_owned()
    };
    let work = tempfile::tempdir().expect("temp dir");
    let mut amd64 = None;
    for p in platforms {
        let arch = p["selector"]["matchLabels"]["arch"].as_str().expect("arch");
        assert_eq!(p["selector"]["matchLabels"]["os"], "linux");
        let uri = p["uri"].as_str().expect("uri");
        let file = pkg.tarball(arch);
        let name = file.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(uri.ends_with(&format!("/v{}/{name}", pkg.version)), "{uri}");
        assert_eq!(
            p["sha256"].as_str(),
            Some(sha(&file).as_str()),
            "{arch} checksum"
        );
        if arch == "amd64" {
            amd64 = Some(p.clone());
        }
    }
    let p = amd64.expect("a linux/amd64 platform");
    // Install: unpack, move `files`, link the bin.
    let unpacked = work.path().join("download");
    unpack_cli(pkg, "amd64", &unpacked);
    let install = work.path().join("store/prodready");
    std::fs::create_dir_all(&install).expect("dir");
    for f in p["files"].as_array().expect("files") {
        let from = unpacked.join(f["from"].as_str().expect("from"));
        assert_eq!(f["to"], ".");
        let to = install.join(from.file_name().expect("file name"));
        std::fs::rename(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
    let bin_dir = work.path().join("bin");
    std::fs::create_dir_all(&bin_dir).expect("dir");
    let bin = install.join(p["bin"].as_str().expect("bin"));
    std::os::unix::fs::symlink(&bin, bin_dir.join("kubectl-prodready")).expect("link");
    // The real kubectl discovers and runs it.
    let kubectl = e2e::Binaries::locate().expect("the e2e binaries").kubectl();
    let env = [("PATH", path_with(&[&bin_dir]))];
    let (code, out, err) = sh(&kubectl, &["plugin", "list"], work.path(), &env, None);
    assert!(
        code == 0 && out.contains("kubectl-prodready"),
        "kubectl plugin list:\n{out}{err}"
    );
    let (code, out, err) = sh(
        &kubectl,
        &["prodready", "--version"],
        work.path(),
        &env,
        None,
    );
    assert_eq!(
        (code, out.trim()),
        (0, format!("prodready {}", pkg.version).as_str()),
        "{err}"
    );
    let (code, out, err) = sh(
        &kubectl,
        &["prodready", "audit", "-"],
        work.path(),
        &env,
        Some(BAD_DEPLOYMENT),
    );
    assert_eq!(
        code, 1,
        "kubectl prodready audit - exits 1 on findings:\n{out}{err}"
    );
    assert!(out.contains("readiness-probe"), "{out}");
}

/// `.pre-commit-hooks.yaml` through the real pre-commit (PyPI, `make pre-commit-tool`), with
/// the released CLI on PATH: `pre-commit try-repo` runs this repository's hook in a sample
/// repository. A bad manifest fails the hook; a file that holds no Kubernetes object and a
/// manifest that is fine pass.
#[tokio::test]
async fn the_pre_commit_hook_audits_the_changed_manifests() {
    let pkg = released().await;
    let pre_commit = std::env::var_os("PRODREADY_PRE_COMMIT")
        .map(PathBuf::from)
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            Some(PathBuf::from(home).join(".cache/prodready/pre-commit-4.7.0/bin/pre-commit"))
        })
        .filter(|p| p.is_file())
        .expect("pre-commit: run `make pre-commit-tool` (or set PRODREADY_PRE_COMMIT)");
    let work = tempfile::tempdir().expect("temp dir");
    let cli = unpack_cli(pkg, "amd64", &work.path().join("cli"));
    let repo = work.path().join("sample");
    std::fs::create_dir_all(repo.join("k8s")).expect("dir");
    let env = [
        ("PATH", path_with(&[&cli])),
        (
            "PRE_COMMIT_HOME",
            work.path().join("cache").into_os_string(),
        ),
        ("GIT_AUTHOR_NAME", "t".into()),
        ("GIT_AUTHOR_EMAIL", "t@example.com".into()),
        ("GIT_COMMITTER_NAME", "t".into()),
        ("GIT_COMMITTER_EMAIL", "t@example.com".into()),
    ];
    let git = |args: &[&str]| {
        let (code, out, err) = sh(Path::new("git"), args, &repo, &env, None);
        assert_eq!(code, 0, "git {args:?}: {out}{err}");
    };
    git(&["init", "-q"]);
    std::fs::write(repo.join("k8s/web.yaml"), BAD_DEPLOYMENT).expect("write");
    std::fs::write(
        repo.join("k8s/settings.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: fast}\n",
    )
    .expect("write");
    std::fs::write(repo.join("notes.yaml"), "owner: platform\nnotes: [a, b]\n").expect("write");
    git(&["add", "-A"]);
    let root = repo_root();
    let try_repo = |files: &[&str]| {
        let mut args = vec![
            "try-repo",
            root.to_str().expect("utf-8 path"),
            "prodready-audit",
            "--files",
        ];
        args.extend(files);
        sh(&pre_commit, &args, &repo, &env, None)
    };
    let (code, out, err) = try_repo(&["k8s/settings.yaml", "notes.yaml"]);
    assert_eq!(code, 0, "no workload, nothing to fail:\n{out}{err}");
    assert!(
        out.contains("prodready audit") && out.contains("Passed"),
        "{out}"
    );
    let (code, out, err) = try_repo(&["k8s/web.yaml", "k8s/settings.yaml"]);
    assert_eq!(code, 1, "the bad Deployment fails the hook:\n{out}{err}");
    assert!(
        out.contains("Failed") && out.contains("readiness-probe"),
        "{out}"
    );
}

/// The first `sh` block after `anchor` in docs/install.md, one command per line.
fn install_md_block(anchor: &str) -> Vec<String> {
    e2e::doc_sh_block("docs/install.md", anchor).unwrap_or_else(|e| panic!("{e:#}"))
}

/// docs/install.md's release commands as a user runs them, with the public hosts replaced
/// by local stand-ins (no internet here): the "Releasing" block's `crane push` and `helm
/// push` into a throwaway OCI registry (`ghcr.io` → `127.0.0.1:<port>`, `--plain-http` for
/// helm); "From a release"'s `helm install oci://…` from it, its checksum line and its
/// archive install; "Upgrade"'s `helm upgrade oci://…`; and the CLI block's `curl`
/// downloads from a local copy of the GitHub release (`https://github.com/…/releases/download`
/// → `file://…`), checksum, unpack, `install` into a temporary bin directory (instead of
/// `sudo install` into /usr/local/bin) and `prodready audit k8s/`. Each line runs in bash as
/// written apart from those substitutions. `kubectl rollout status` needs a kubelet: the
/// in-cluster suite runs it.
#[tokio::test]
async fn the_documented_registry_and_download_commands_install_the_release() {
    const NS: &str = "prodready-system";
    let pkg = released().await;
    let plane = ControlPlane::start()
        .await
        .expect("a control plane of its own");
    let registry = Registry::start().await.expect("OCI registry");
    let bins = e2e::Binaries::locate().expect("the e2e binaries");
    let work = tempfile::tempdir().expect("temp dir");
    let helm_home = work.path().join("helm");
    let bin = work.path().join("bin");
    std::fs::create_dir_all(&bin).expect("dir");
    let env: Vec<(&str, std::ffi::OsString)> = vec![
        ("KUBECONFIG", plane.kubeconfig().as_os_str().to_owned()),
        ("HELM_CACHE_HOME", helm_home.join("cache").into_os_string()),
        (
            "HELM_CONFIG_HOME",
            helm_home.join("config").into_os_string(),
        ),
        ("HELM_DATA_HOME", helm_home.join("data").into_os_string()),
        ("PATH", path_with(&[&bin, bins.dir()])),
    ];
    let host = registry.host();
    let local = |line: &str| -> String {
        let line = line.replace("ghcr.io/", &format!("{host}/"));
        if line.starts_with("helm ") && line.contains("oci://") {
            // Helm speaks HTTPS to a registry unless told otherwise; the local one is plain.
            match line.split_once(" #") {
                Some((cmd, _)) => format!("{} --plain-http", cmd.trim_end()),
                None => format!("{line} --plain-http"),
            }
        } else {
            line
        }
    };
    let bash = |line: &str, cwd: &Path| -> (i32, String, String) {
        sh(Path::new("bash"), &["-e", "-c", line], cwd, &env, None)
    };
    let must = |line: &str, cwd: &Path| -> String {
        let (code, out, err) = bash(line, cwd);
        assert_eq!(
            code,
            0,
            "`{line}` (in {}):\n{out}\n{err}\nregistry log:\n{}",
            cwd.display(),
            registry.log()
        );
        out
    };

    // Releasing: publish the image, then the chart, from the directory holding `dist/`.
    let release_root = pkg.dir.parent().expect("dist has a parent");
    assert!(pkg.dir.ends_with("dist"), "{}", pkg.dir.display());
    let publish = install_md_block("Publish the image first, then the chart");
    assert_eq!(publish.len(), 2, "{publish:?}");
    for line in &publish {
        must(&local(line), release_root);
    }
    let served = crane([
        "digest",
        &format!("{host}/prodready/prodready:{}", pkg.version),
    ])
    .await
    .and_then(Output::ok)
    .expect("crane digest");
    assert_eq!(
        served.stdout.trim(),
        pkg.digest,
        "the registry serves the stamped digest"
    );

    // From a release: the OCI install, the checksum check, then (after an uninstall) the
    // archive install; `kubectl get productionpolicies` answers.
    let downloads = work.path().join("downloads");
    std::fs::create_dir_all(&downloads).expect("dir");
    for f in [
        "SHA256SUMS".to_owned(),
        format!("prodready-{}.tgz", pkg.version),
    ] {
        std::fs::copy(pkg.dir.join(&f), downloads.join(&f)).expect("copy a release file");
    }
    let install = install_md_block("## From a release (no checkout)");
    let mut ran = Vec::new();
    for line in &install {
        let line = local(line);
        if line.starts_with("kubectl -n prodready-system rollout status") {
            continue;
        }
        if line.starts_with("helm install prodready prodready-") {
            must(
                &format!("helm uninstall prodready -n {NS} --wait"),
                &downloads,
            );
        }
        let out = must(&line, &downloads);
        ran.push(
            line.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        );
        if line.starts_with("helm install prodready oci://") {
            let image = must(
                &format!(
                    "kubectl -n {NS} get deployment prodready -o jsonpath={{.spec.template.spec.containers[0].image}}"
                ),
                &downloads,
            );
            assert_eq!(image, format!("ghcr.io/prodready/prodready@{}", pkg.digest));
        }
        if line.starts_with("sha256sum") {
            assert!(
                out.contains(&format!("prodready-{}.tgz: OK", pkg.version)),
                "{out}"
            );
        }
    }
    assert_eq!(
        ran,
        [
            "helm install prodready",
            "sha256sum -c SHA256SUMS",
            "helm install prodready",
            "kubectl get productionpolicies"
        ],
        "docs/install.md's From a release block changed: update this test"
    );

    // Upgrade from the registry.
    let upgrade = install_md_block("## Upgrade");
    assert_eq!(upgrade.len(), 1, "{upgrade:?}");
    let out = must(&local(&upgrade[0]), work.path());
    assert!(out.contains("has been upgraded"), "{out}");
    let revision = must(
        &format!("helm -n {NS} history prodready -o json"),
        work.path(),
    );
    let history: Value = serde_json::from_str(&revision).expect("helm history JSON");
    assert_eq!(history.as_array().map(Vec::len), Some(2), "{history}");

    // The CLI: downloaded from the release, verified, unpacked, installed, run.
    let release = work.path().join("github");
    let tag_dir = release.join(format!("releases/download/v{}", pkg.version));
    std::fs::create_dir_all(&tag_dir).expect("dir");
    for f in [
        "SHA256SUMS".to_owned(),
        format!("prodready-{}-linux-amd64.tar.gz", pkg.version),
    ] {
        std::fs::copy(pkg.dir.join(&f), tag_dir.join(&f)).expect("copy a release file");
    }
    let laptop = work.path().join("laptop");
    std::fs::create_dir_all(laptop.join("k8s")).expect("dir");
    std::fs::write(laptop.join("k8s/web.yaml"), BAD_DEPLOYMENT).expect("write a manifest");
    let cli = install_md_block("The CLI, for CI and laptops");
    assert_eq!(cli.len(), 6, "{cli:?}");
    let github = "https://github.com/prodready/prodready";
    let mut outputs = Vec::new();
    for line in &cli {
        let line = line
            .replace(github, &format!("file://{}", release.display()))
            .replace("sudo install", "install")
            .replace("/usr/local/bin/", &format!("{}/", bin.display()));
        assert!(!line.contains("https://"), "{line}");
        outputs.push(bash(&line, &laptop));
    }
    for (line, (code, out, err)) in cli.iter().zip(&outputs).take(5) {
        assert_eq!(*code, 0, "`{line}`:\n{out}\n{err}");
    }
    assert!(bin.join("prodready").is_file(), "the CLI is installed");
    let (code, out, err) = &outputs[5];
    assert_eq!(
        *code, 1,
        "the audit finds the violating Deployment:\n{out}\n{err}"
    );
    assert!(out.contains("web"), "{out}");
}

/// A documented command line without its trailing comment, and its words with the
/// repository's paths made absolute (the suite does not run from the repository root).
fn doc_command(line: &str) -> (&str, Vec<String>) {
    let root = e2e::repo_root();
    let command = line.split(" #").next().unwrap_or(line).trim();
    let words = command
        .split_whitespace()
        .map(|w| {
            if !w.starts_with('-') && root.join(w).exists() {
                root.join(w).display().to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    (command, words)
}

/// docs/install.md's "Helm from the source tree" block as written, on a fresh control plane
/// that has never seen the CRD: `helm install … --set policies.baseline.enabled=true` must
/// install the policy of the same release (a post-install hook, after the CRD), and `kubectl
/// get productionpolicies` shows it. A `helm upgrade` with the same value re-creates the hook
/// instead of failing on "already exists". `rollout status` is not run here: a bare API
/// server has no kubelet, so no pod becomes ready; e2e/tests/cluster.rs runs it on a node.
#[tokio::test]
async fn the_source_tree_install_with_the_baseline_policy_works_on_a_fresh_cluster() {
    let plane = ControlPlane::start()
        .await
        .expect("a control plane of its own");
    let lines = install_md_block("## Helm from the source tree");
    let mut ran = 0;
    for line in &lines {
        let (command, words) = doc_command(line);
        match words.first().map(String::as_str) {
            Some("helm") => {
                let out = plane.helm(&words[1..]).await.expect("helm runs");
                assert!(out.success(), "`{command}`: {}", out.stderr);
            }
            Some("kubectl") if words.iter().any(|w| w == "rollout") => continue,
            Some("kubectl") => {
                let out = plane.kubectl(&words[1..]).await.expect("kubectl runs");
                assert!(out.success(), "`{command}`: {}", out.stderr);
                if words.iter().any(|w| w == "productionpolicies") {
                    assert!(
                        out.stdout.contains("baseline") && out.stdout.contains("Warn"),
                        "`{command}` does not show the baseline policy: {}",
                        out.stdout
                    );
                }
            }
            _ => panic!(
                "docs/install.md's source-tree block has a command this test does not know: {command}"
            ),
        }
        ran += 1;
    }
    assert_eq!(ran, 2, "helm install and kubectl get ran: {lines:?}");
    let chart = chart_dir().display().to_string();
    let upgrade = plane
        .helm([
            "upgrade",
            "prodready",
            chart.as_str(),
            "-n",
            "prodready-system",
            "--set",
            "policies.baseline.enabled=true",
        ])
        .await
        .expect("helm runs");
    assert!(upgrade.success(), "helm upgrade: {}", upgrade.stderr);
    let policy = get_json(&plane, "productionpolicy", "baseline", "prodready-system").await;
    assert!(
        policy.is_some(),
        "the baseline policy is gone after helm upgrade"
    );
}

/// docs/alerts.md's "Turn them on" block as written, on a fresh control plane with the
/// Prometheus Operator CRDs and the release namespace: the Helm line and the kustomize line
/// each leave the PrometheusRule in prodready-system.
#[tokio::test]
async fn the_documented_alert_installs_create_the_prometheus_rule() {
    let plane = ControlPlane::start()
        .await
        .expect("a control plane of its own");
    let client = plane.client().await.expect("client");
    e2e::install_monitoring_crds(&client)
        .await
        .expect("the Prometheus Operator CRDs");
    let ns = plane
        .kubectl(["create", "namespace", "prodready-system"])
        .await
        .expect("kubectl runs");
    assert!(ns.success(), "{}", ns.stderr);
    let lines = e2e::doc_sh_block("docs/alerts.md", "# Alerts and runbooks")
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut ran = 0;
    for line in &lines {
        let (command, words) = doc_command(line);
        let out = match words.first().map(String::as_str) {
            Some("helm") => plane.helm(&words[1..]).await,
            Some("kubectl") => plane.kubectl(&words[1..]).await,
            _ => panic!("docs/alerts.md has a command this test does not know: {command}"),
        }
        .expect("the tool runs");
        assert!(out.success(), "`{command}`: {}", out.stderr);
        let rules = plane
            .kubectl([
                "get",
                "prometheusrules",
                "-n",
                "prodready-system",
                "-o",
                "name",
            ])
            .await
            .expect("kubectl runs");
        assert!(
            rules.stdout.trim() == "prometheusrule.monitoring.coreos.com/prodready",
            "after `{command}`: {} {}",
            rules.stdout,
            rules.stderr
        );
        ran += 1;
    }
    assert_eq!(ran, 2, "{lines:?}");
}
