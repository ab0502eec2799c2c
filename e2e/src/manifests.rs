//! The workloads and policies the operator suite applies, as YAML.

/// Every baseline rule off except those named (camelCase ids) — so counts are exact.
pub fn policy_yaml(name: &str, matching: &str, rules: &[&str], extra: &str) -> String {
    const ALL: [&str; 22] = [
        "livenessProbe",
        "readinessProbe",
        "distinctProbes",
        "startupProbe",
        "resourceRequests",
        "memoryLimit",
        "cpuLimit",
        "imagePinned",
        "imageDigest",
        "allowedRegistries",
        "cronjobSingleRunner",
        "cronjobHealth",
        "leaderLease",
        "serviceMonitor",
        "gracefulShutdown",
        "replicasHa",
        "disruptionBudget",
        "topologySpread",
        "rolloutHistory",
        "secretLiteralEnv",
        "securityContext",
        "networkPolicy",
    ];
    let mut lines = String::new();
    for r in ALL {
        let on = rules.contains(&r);
        lines.push_str(&format!("    {r}: {{enabled: {on}}}\n"));
    }
    format!(
        "apiVersion: prodready.dev/v1alpha1\nkind: ProductionPolicy\nmetadata: {{name: {name}}}\nspec:\n  match: {matching}\n  enforcement: {{action: Audit}}\n  rules:\n{lines}{extra}"
    )
}

/// A Deployment with one container (`example.org/app:1.0`, a `metrics` port) and, when
/// `probes`, liveness and readiness probes.
pub fn deployment(name: &str, replicas: i32, probes: bool, annotations: &str) -> String {
    let probes = if probes {
        "\n          livenessProbe: {httpGet: {path: /live, port: 8080}}\n          readinessProbe: {httpGet: {path: /ready, port: 8080}}"
    } else {
        ""
    };
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  annotations: {{{annotations}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: app
          image: example.org/app:1.0
          ports: [{{name: metrics, containerPort: 9090}}]{probes}
"#
    )
}

/// A CronJob every five minutes; `single_runner` sets Forbid and a starting deadline.
pub fn cronjob(name: &str, single_runner: bool) -> String {
    let policy = if single_runner {
        "concurrencyPolicy: Forbid\n  startingDeadlineSeconds: 60\n  "
    } else {
        ""
    };
    format!(
        r#"apiVersion: batch/v1
kind: CronJob
metadata: {{name: {name}}}
spec:
  schedule: "*/5 * * * *"
  {policy}jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{{name: job, image: "example.org/job:1.0"}}]
"#
    )
}

/// A ValidatingWebhookConfiguration `name` that sends Deployment creates and updates in
/// namespace `ns` to a local `prodready run` serving its webhook on `127.0.0.1:port` (by URL: the
/// operator runs as a process, not behind a Service), failurePolicy Ignore.
pub fn webhook_by_url(name: &str, ns: &str, port: u16) -> String {
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {{name: {name}}}
webhooks:
  - name: validate.prodready.dev
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Ignore
    timeoutSeconds: 3
    clientConfig:
      url: https://127.0.0.1:{port}/validate
    namespaceSelector:
      matchExpressions:
        - {{key: kubernetes.io/metadata.name, operator: In, values: [{ns}]}}
    rules:
      - {{apiGroups: [apps], apiVersions: [v1], resources: [deployments], operations: [CREATE, UPDATE], scope: Namespaced}}
"#
    )
}
