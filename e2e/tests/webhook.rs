//! The admission webhook against the real API server, with the real kubectl as the client.
//!
//! Each test serves prodready's webhook in-process on 127.0.0.1:<free port> with self-managed
//! TLS (the Secret lives in the test's namespace, extra SAN 127.0.0.1), registers its own
//! ValidatingWebhookConfiguration by URL for its own namespace only (so tests run in
//! parallel on the shared control plane), lets the webhook inject the CA bundle, and fills
//! the policy snapshot itself — the way the operator's controller would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::{ControlPlane, OperatorProcess, apply_yaml, wait_for};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::DeleteParams;
use prodready::admission::{self, AdmissionMetrics, WebhookArgs, WebhookMetrics};
use prodready::api::ProductionPolicySpec;
use prodready::engine::CompiledPolicy;
use prodready::kubeapi::{ApiCalls, DependencyMetrics};
use prodready::metrics::HttpMetrics;
use prodready::snapshot::{SharedSnapshot, Snapshot};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

async fn shared() -> &'static ControlPlane {
    ControlPlane::shared()
        .await
        .expect("start the shared control plane")
}

/// A webhook server running in this test.
struct Hook {
    port: u16,
    secret: String,
    configuration: String,
    snapshot: SharedSnapshot,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), admission::WebhookError>>,
    registry: Arc<Registry>,
}

impl Hook {
    fn set_policy(&self, name: &str, spec_yaml: &str) {
        let spec: ProductionPolicySpec = serde_saphyr::from_str(spec_yaml).expect("policy yaml");
        let policy = CompiledPolicy::from_spec(name, spec, &prodready::rules::CATALOG)
            .expect("valid policy");
        self.snapshot.store(Snapshot {
            policies: vec![Arc::new(policy)],
            synced: true,
            ..Snapshot::default()
        });
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let r = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("webhook stops within 10s")
            .expect("webhook task");
        r.expect("webhook ended cleanly");
    }

    fn metrics(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("encode");
        text
    }
}

fn free_listener() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
}

fn args(ns: &str, secret: &str, configuration: &str, validity: Duration) -> WebhookArgs {
    WebhookArgs {
        webhook_enabled: true,
        webhook_addr: "127.0.0.1:0".parse().expect("addr"),
        webhook_max_body_bytes: admission::server::DEFAULT_MAX_BODY_BYTES,
        tls_cert_file: None,
        tls_key_file: None,
        tls_reload_interval: Duration::from_secs(1),
        webhook_service_name: "prodready-webhook".into(),
        webhook_namespace: Some(ns.to_owned()),
        webhook_extra_san: vec!["127.0.0.1".into()],
        webhook_secret_name: secret.to_owned(),
        webhook_configuration_name: configuration.to_owned(),
        webhook_cert_validity: validity,
        webhook_ca_validity: Duration::from_secs(10 * 365 * 86400),
        webhook_cert_check_interval: Duration::from_secs(1),
    }
}

/// Registers a webhook configuration by URL (no CA bundle: the webhook injects it) that only
/// judges namespace `ns`.
async fn register(client: &kube::Client, name: &str, ns: &str, port: u16) {
    let yaml = format!(
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
      - {{apiGroups: [apps], apiVersions: [v1], resources: [deployments, statefulsets, daemonsets, replicasets], operations: [CREATE, UPDATE], scope: Namespaced}}
      - {{apiGroups: [batch], apiVersions: [v1], resources: [jobs, cronjobs], operations: [CREATE, UPDATE], scope: Namespaced}}
      - {{apiGroups: [""], apiVersions: [v1], resources: [pods], operations: [CREATE, UPDATE], scope: Namespaced}}
"#
    );
    apply_yaml(client, None, &yaml)
        .await
        .expect("register the webhook configuration");
}

async fn start_hook(cp: &ControlPlane, ns: &str, validity: Duration) -> Hook {
    let client = cp.client().await.expect("client");
    let listener = free_listener();
    let port = listener.local_addr().expect("addr").port();
    let configuration = format!("prodready-e2e-{ns}");
    let secret = "prodready-webhook-tls".to_owned();
    register(&client, &configuration, ns, port).await;
    let hook = spawn_server(&client, listener, ns, &secret, &configuration, validity);
    // The CA bundle is injected, and the API server has picked up the configuration.
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    wait_for(WAIT, "CA bundle injected", || async {
        let vwc = vwcs.get(&configuration).await.map_err(|e| e.to_string())?;
        let injected = vwc.webhooks.iter().flatten().all(|w| {
            w.client_config
                .ca_bundle
                .as_ref()
                .is_some_and(|b| !b.0.is_empty())
        });
        if injected {
            Ok(())
        } else {
            Err("no caBundle yet".to_owned())
        }
    })
    .await
    .expect("CA bundle injected");
    hook
}

fn spawn_server(
    client: &kube::Client,
    listener: std::net::TcpListener,
    ns: &str,
    secret: &str,
    configuration: &str,
    validity: Duration,
) -> Hook {
    let port = listener.local_addr().expect("addr").port();
    let mut registry = Registry::default();
    let metrics = WebhookMetrics {
        admission: AdmissionMetrics::register(&mut registry),
        http: HttpMetrics::register(&mut registry),
    };
    let calls = ApiCalls::new(DependencyMetrics::register(&mut registry));
    let snapshot = SharedSnapshot::default();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(admission::serve_on(
        listener,
        args(ns, secret, configuration, validity),
        admission::WebhookApi {
            client: client.clone(),
            calls,
            owner: None,
        },
        snapshot.clone(),
        metrics,
        shutdown.clone(),
    ));
    Hook {
        port,
        secret: secret.to_owned(),
        configuration: configuration.to_owned(),
        snapshot,
        shutdown,
        task,
        registry: Arc::new(registry),
    }
}

async fn unregister(client: &kube::Client, name: &str) {
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let _ = vwcs.delete(name, &DeleteParams::default()).await;
}

/// Cross-object rules are off so a lone Deployment can be compliant.
fn policy(action: &str, extra: &str) -> String {
    format!(
        "enforcement: {{{action}}}\nrules: {{serviceMonitor: {{enabled: false}}, disruptionBudget: {{enabled: false}}}}\n{extra}"
    )
}

const FIX: &str =
    "fix: add a readinessProbe that checks the pod can serve (e.g. httpGet /health/ready)";

/// A Deployment that passes every rule of [`policy`], unless `readiness` is false (then it
/// violates readiness-probe, high) or the image is changed.
fn deployment(name: &str, image: &str, readiness: bool, annotations: &str) -> String {
    let probe = if readiness {
        "\n          readinessProbe: {httpGet: {path: /health/ready, port: 8080}}"
    } else {
        ""
    };
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
  annotations: {{{annotations}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: app
          image: {image}
          ports: [{{name: http, containerPort: 8080}}]
          livenessProbe: {{httpGet: {{path: /health/live, port: 8080}}}}{probe}
          resources: {{requests: {{cpu: 100m, memory: 128Mi}}, limits: {{memory: 256Mi}}}}
          lifecycle: {{preStop: {{sleep: {{seconds: 5}}}}}}
"#
    )
}

async fn apply(cp: &ControlPlane, ns: &str, yaml: &str, extra: &[&str]) -> e2e::Output {
    let mut args = vec!["apply", "-n", ns, "-f", "-"];
    args.extend_from_slice(extra);
    cp.kubectl_with_stdin(args, Some(yaml))
        .await
        .expect("run kubectl")
}

fn warning_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("Warning: "))
        .collect()
}

/// Waits until the API server calls our webhook for namespace `ns` (its configuration
/// cache lags the write by a moment): a server-side dry run of a violating Deployment
/// returns our warning (or our denial, under Enforce).
async fn wait_until_judging(cp: &ControlPlane, ns: &str) {
    wait_for(WAIT, "the API server calls the webhook", || async {
        let out = apply(
            cp,
            ns,
            &deployment("probe", "registry.example/web:1", false, ""),
            &["--dry-run=server"],
        )
        .await;
        if out.stderr.contains("prodready[") || out.stderr.contains("prodready denied") {
            Ok(())
        } else {
            Err(format!("no prodready warning yet: {}", out.stderr))
        }
    })
    .await
    .expect("webhook is called");
}

#[tokio::test]
async fn warn_mode_prints_a_warning_per_finding_and_dry_run_shows_the_same() {
    let cp = shared().await;
    let ns = cp.temp_namespace("wh-warn").await.expect("namespace");
    let hook = start_hook(cp, ns.name(), Duration::from_secs(3600)).await;
    hook.set_policy("baseline", &policy("action: Warn", ""));
    wait_until_judging(cp, ns.name()).await;

    // Two findings: readiness-probe (high) and image-pinned (high).
    let yaml = deployment("web", "registry.example/web:latest", false, "");
    let out = apply(cp, ns.name(), &yaml, &[]).await;
    assert!(
        out.success(),
        "apply under Warn must succeed: {}",
        out.stderr
    );
    assert!(
        out.stdout.contains("deployment.apps/web created"),
        "{}",
        out.stdout
    );
    let warnings = warning_lines(&out.stderr);
    assert_eq!(
        warnings,
        [
            format!("Warning: prodready[baseline] deployment/web: container \"app\" has no readinessProbe (readiness-probe); {FIX}").as_str(),
            warnings.get(1).copied().unwrap_or("<missing>"),
        ],
        "{}",
        out.stderr
    );
    assert!(
        warnings[1].starts_with("Warning: prodready[baseline] deployment/web: ")
            && warnings[1].contains("(image-pinned); fix: "),
        "{}",
        out.stderr
    );

    // A server-side dry run shows the same warnings (and stores nothing).
    let dry = apply(
        cp,
        ns.name(),
        &deployment("web-dry", "registry.example/web:latest", false, ""),
        &["--dry-run=server"],
    )
    .await;
    assert!(dry.success(), "{}", dry.stderr);
    let dry_warnings: Vec<String> = warning_lines(&dry.stderr)
        .iter()
        .map(|l| l.replace("deployment/web-dry", "deployment/web"))
        .collect();
    assert_eq!(dry_warnings, warnings, "{}", dry.stderr);
    let get = cp
        .kubectl(["get", "deployment", "web-dry", "-n", ns.name()])
        .await
        .expect("kubectl");
    assert!(!get.success(), "a dry run stores nothing");

    // Audit: admitted silently.
    hook.set_policy("baseline", &policy("action: Audit", ""));
    let out = apply(
        cp,
        ns.name(),
        &deployment("audited", "registry.example/web:latest", false, ""),
        &[],
    )
    .await;
    assert!(out.success(), "{}", out.stderr);
    assert!(warning_lines(&out.stderr).is_empty(), "{}", out.stderr);

    let text = hook.metrics();
    assert!(text.contains(r#"prodready_admission_reviews_total{kind="Deployment",operation="CREATE",decision="warned"}"#), "{text}");
    assert!(
        text.contains(
            r#"http_server_requests_total{route="/validate",method="POST",status="200"}"#
        ),
        "{text}"
    );
    let client = cp.client().await.expect("client");
    unregister(&client, &hook.configuration).await;
    hook.stop().await;
}

#[tokio::test]
async fn enforce_denies_with_the_fix_and_the_ramp_switches_at_enforce_after() {
    let cp = shared().await;
    let ns = cp.temp_namespace("wh-enforce").await.expect("namespace");
    let hook = start_hook(cp, ns.name(), Duration::from_secs(3600)).await;
    hook.set_policy("baseline", &policy("action: Warn", ""));
    wait_until_judging(cp, ns.name()).await;

    hook.set_policy("baseline", &policy("action: Enforce", ""));
    let bad = deployment("api", "registry.example/api:1.0", false, "");
    let out = apply(cp, ns.name(), &bad, &[]).await;
    assert!(!out.success(), "Enforce must deny: {}", out.stdout);
    assert!(
        out.stderr.contains("admission webhook \"validate.prodready.dev\" denied the request: prodready denied deployment/api: 1 finding must be fixed (enforced by policy baseline):"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "- [baseline] container \"app\" has no readinessProbe (readiness-probe) [high]; {FIX}"
        )),
        "{}",
        out.stderr
    );
    let get = cp
        .kubectl(["get", "deployment", "api", "-n", ns.name()])
        .await
        .expect("kubectl");
    assert!(!get.success(), "a denied Deployment is not stored");

    // The fixed manifest goes through.
    let good = deployment("api", "registry.example/api:1.0", true, "");
    let out = apply(cp, ns.name(), &good, &[]).await;
    assert!(
        out.success(),
        "the fixed manifest must be admitted: {}",
        out.stderr
    );
    assert!(warning_lines(&out.stderr).is_empty(), "{}", out.stderr);

    // enforceAfter in the past: Enforce.
    hook.set_policy(
        "baseline",
        &policy(
            "action: Enforce, enforceAfter: \"2020-01-01T00:00:00Z\"",
            "",
        ),
    );
    let out = apply(
        cp,
        ns.name(),
        &deployment("ramp", "registry.example/api:1.0", false, ""),
        &[],
    )
    .await;
    assert!(
        !out.success(),
        "enforceAfter in the past enforces: {}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("denied the request: prodready denied deployment/ramp"),
        "{}",
        out.stderr
    );

    // enforceAfter in the future: Warn.
    hook.set_policy(
        "baseline",
        &policy(
            "action: Enforce, enforceAfter: \"2099-01-01T00:00:00Z\"",
            "",
        ),
    );
    let out = apply(
        cp,
        ns.name(),
        &deployment("ramp", "registry.example/api:1.0", false, ""),
        &[],
    )
    .await;
    assert!(
        out.success(),
        "enforceAfter in the future only warns: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "Warning: prodready[baseline] deployment/ramp: container \"app\" has no readinessProbe"
        ),
        "{}",
        out.stderr
    );

    let text = hook.metrics();
    assert!(text.contains(r#"prodready_admission_reviews_total{kind="Deployment",operation="CREATE",decision="denied"}"#), "{text}");
    let client = cp.client().await.expect("client");
    unregister(&client, &hook.configuration).await;
    hook.stop().await;
}

#[tokio::test]
async fn updates_ratchet_old_debt_but_deny_new_violations() {
    let cp = shared().await;
    let ns = cp.temp_namespace("wh-ratchet").await.expect("namespace");
    let hook = start_hook(cp, ns.name(), Duration::from_secs(3600)).await;
    hook.set_policy("baseline", &policy("action: Warn", ""));
    wait_until_judging(cp, ns.name()).await;

    // Created while the policy warned: a legacy Deployment without a readinessProbe.
    let out = apply(
        cp,
        ns.name(),
        &deployment("legacy", "registry.example/legacy:1.0", false, ""),
        &[],
    )
    .await;
    assert!(out.success(), "{}", out.stderr);

    hook.set_policy("baseline", &policy("action: Enforce", ""));
    // A hotfix (new image tag) is not blocked by the old debt, which comes back as a warning.
    let out = apply(
        cp,
        ns.name(),
        &deployment("legacy", "registry.example/legacy:1.0.1", false, ""),
        &[],
    )
    .await;
    assert!(
        out.success(),
        "a hotfix must not be blocked by old debt: {}",
        out.stderr
    );
    assert!(
        out.stdout.contains("deployment.apps/legacy configured"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("Warning: prodready[baseline] deployment/legacy: container \"app\" has no readinessProbe (readiness-probe)"), "{}", out.stderr);

    // An update that adds a violation (an unpinned image) is denied, for that one only.
    let out = apply(
        cp,
        ns.name(),
        &deployment("legacy", "registry.example/legacy:latest", false, ""),
        &[],
    )
    .await;
    assert!(
        !out.success(),
        "a new violation must be denied: {}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("prodready denied deployment/legacy: 1 finding must be fixed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("(image-pinned) [high]"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr
            .contains("readinessProbe (readiness-probe) [high]"),
        "old debt is not denied: {}",
        out.stderr
    );

    let text = hook.metrics();
    assert!(
        text.contains(r#"operation="UPDATE",decision="denied"}"#),
        "{text}"
    );
    let client = cp.client().await.expect("client");
    unregister(&client, &hook.configuration).await;
    hook.stop().await;
}

#[tokio::test]
async fn exemptions_silence_findings_but_annotations_only_where_allowed() {
    let cp = shared().await;
    let ns = cp.temp_namespace("wh-exempt").await.expect("namespace");
    let hook = start_hook(cp, ns.name(), Duration::from_secs(3600)).await;
    let exemption = "exemptions:\n  - rules: [readiness-probe]\n    names: [batch-worker]\n    reason: \"consumes a queue, serves no traffic\"\n";
    hook.set_policy("baseline", &policy("action: Warn", exemption));
    wait_until_judging(cp, ns.name()).await;

    // Exempted by the policy: no warning.
    let out = apply(
        cp,
        ns.name(),
        &deployment("batch-worker", "registry.example/w:1", false, ""),
        &[],
    )
    .await;
    assert!(out.success(), "{}", out.stderr);
    assert!(
        warning_lines(&out.stderr).is_empty(),
        "an exempted workload gets no warning: {}",
        out.stderr
    );

    // Self-granted by annotation while the policy does not allow it: ignored, and said so.
    hook.set_policy("baseline", &policy("action: Enforce", exemption));
    let annotations =
        r#""prodready.dev/exempt": readiness-probe, "prodready.dev/exempt-reason": "trust me""#;
    let out = apply(
        cp,
        ns.name(),
        &deployment("sneaky", "registry.example/w:1", false, annotations),
        &[],
    )
    .await;
    assert!(
        !out.success(),
        "an annotation exemption must not apply: {}",
        out.stdout
    );
    assert!(
        out.stderr.contains("prodready denied deployment/sneaky"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Warning: prodready[baseline] deployment/sneaky: annotation prodready.dev/exempt ignored: policy baseline does not allow annotation exemptions"),
        "{}",
        out.stderr
    );

    // Where the policy allows it, the annotation exempts.
    hook.set_policy(
        "baseline",
        &policy(
            "action: Enforce",
            &format!("{exemption}allowAnnotationExemptions: true\n"),
        ),
    );
    let out = apply(
        cp,
        ns.name(),
        &deployment("sneaky", "registry.example/w:1", false, annotations),
        &[],
    )
    .await;
    assert!(out.success(), "{}", out.stderr);
    assert!(warning_lines(&out.stderr).is_empty(), "{}", out.stderr);

    let client = cp.client().await.expect("client");
    unregister(&client, &hook.configuration).await;
    hook.stop().await;
}

#[tokio::test]
async fn a_stopped_webhook_does_not_block_applies() {
    let cp = shared().await;
    let ns = cp.temp_namespace("wh-down").await.expect("namespace");
    let hook = start_hook(cp, ns.name(), Duration::from_secs(3600)).await;
    hook.set_policy("baseline", &policy("action: Enforce", ""));
    wait_until_judging(cp, ns.name()).await;
    let configuration = hook.configuration.clone();
    hook.stop().await;

    // failurePolicy Ignore: admitted without a verdict, well within the 3 s webhook timeout
    // plus kubectl's own round trips.
    let start = Instant::now();
    let out = apply(
        cp,
        ns.name(),
        &deployment("unjudged", "registry.example/w:latest", false, ""),
        &[],
    )
    .await;
    let elapsed = start.elapsed();
    assert!(
        out.success(),
        "with the webhook down, apply must succeed: {}",
        out.stderr
    );
    assert!(warning_lines(&out.stderr).is_empty(), "{}", out.stderr);
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");

    let client = cp.client().await.expect("client");
    unregister(&client, &configuration).await;
}

/// The certificate the server presents, read by a TLS handshake that trusts only `ca_pem`.
async fn served_certificate(port: u16, ca_pem: &[u8]) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.expect("CA pem")).expect("CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let tls = connector
        .connect(name, tcp)
        .await
        .expect("handshake verifies against the CA");
    let (_, conn) = tls.get_ref();
    conn.peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .expect("a peer certificate")
}

fn pem_to_der(pem: &[u8]) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::from_pem_slice(pem)
        .expect("pem")
        .to_vec()
}

fn secret_bytes(s: &Secret, key: &str) -> Vec<u8> {
    s.data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn self_managed_tls_creates_the_secret_injects_the_ca_and_rotates_without_failures() {
    let cp = shared().await;
    let ns = cp.temp_namespace("wh-tls").await.expect("namespace");
    let client = cp.client().await.expect("client");
    // Renewed after two thirds of 9 s: at least two rotations during the loop below.
    let hook = start_hook(cp, ns.name(), Duration::from_secs(9)).await;
    hook.set_policy("baseline", &policy("action: Warn", ""));

    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    let secret = secrets.get(&hook.secret).await.expect("the Secret exists");
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    for key in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
        assert!(!secret_bytes(&secret, key).is_empty(), "{key} is stored");
    }
    let ca = secret_bytes(&secret, "ca.crt");
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let vwc = vwcs.get(&hook.configuration).await.expect("configuration");
    let bundle = vwc
        .webhooks
        .as_ref()
        .and_then(|w| w.first())
        .and_then(|w| w.client_config.ca_bundle.clone())
        .expect("caBundle");
    assert_eq!(bundle.0, ca, "the injected bundle is the Secret's CA");
    wait_until_judging(cp, ns.name()).await;

    // Keep applying across rotations: every request must reach the webhook (a TLS failure
    // would be ignored by failurePolicy and show up as a missing warning).
    let first = secret_bytes(&secret, "tls.crt");
    let mut seen = vec![first.clone()];
    let deadline = Instant::now() + Duration::from_secs(16);
    let mut i = 0;
    while Instant::now() < deadline {
        i += 1;
        let out = apply(
            cp,
            ns.name(),
            &deployment(&format!("r{i}"), "registry.example/w:1", false, ""),
            &["--dry-run=server"],
        )
        .await;
        assert!(out.success(), "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!("Warning: prodready[baseline] deployment/r{i}: container \"app\" has no readinessProbe")),
            "request {i} did not reach the webhook across rotation: {}",
            out.stderr
        );
        let now = secrets.get(&hook.secret).await.expect("secret");
        let cert = secret_bytes(&now, "tls.crt");
        if !seen.contains(&cert) {
            seen.push(cert);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        seen.len() >= 2,
        "the serving certificate rotated ({} versions seen)",
        seen.len()
    );
    let latest = secrets.get(&hook.secret).await.expect("secret");
    assert_eq!(secret_bytes(&latest, "ca.crt"), ca, "rotation keeps the CA");
    // The server hot-reloaded: new handshakes get the Secret's current certificate (allow one
    // check interval for the replica to pick it up).
    wait_for(
        Duration::from_secs(10),
        "the server presents the current certificate",
        || async {
            let s = secrets.get(&hook.secret).await.map_err(|e| e.to_string())?;
            let served = served_certificate(hook.port, &ca).await;
            if served == pem_to_der(&secret_bytes(&s, "tls.crt")) {
                Ok(())
            } else {
                Err("older certificate served".to_owned())
            }
        },
    )
    .await
    .expect("hot reload");
    let text = hook.metrics();
    assert!(
        text.contains(r#"prodready_webhook_certificate_reloads_total{result="ok"}"#),
        "{text}"
    );

    unregister(&client, &hook.configuration).await;
    hook.stop().await;
}

#[tokio::test]
async fn two_replicas_starting_at_once_serve_the_same_certificate() {
    let cp = shared().await;
    let ns = cp.temp_namespace("wh-race").await.expect("namespace");
    let client = cp.client().await.expect("client");
    let configuration = format!("prodready-e2e-{}", ns.name());
    let (a, b) = (free_listener(), free_listener());
    register(
        &client,
        &configuration,
        ns.name(),
        a.local_addr().expect("addr").port(),
    )
    .await;
    let secret = "shared-tls";
    let hook_a = spawn_server(
        &client,
        a,
        ns.name(),
        secret,
        &configuration,
        Duration::from_secs(3600),
    );
    let hook_b = spawn_server(
        &client,
        b,
        ns.name(),
        secret,
        &configuration,
        Duration::from_secs(3600),
    );

    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    let stored = wait_for(WAIT, "the Secret", || async {
        secrets
            .get_opt(secret)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "not yet".to_owned())
    })
    .await
    .expect("secret");
    let ca = secret_bytes(&stored, "ca.crt");
    let want = pem_to_der(&secret_bytes(&stored, "tls.crt"));
    // Both replicas answer with the one stored certificate, under the one CA.
    for hook in [&hook_a, &hook_b] {
        let served = wait_for(WAIT, "the replica serves", || async {
            let listening = tokio::net::TcpStream::connect(("127.0.0.1", hook.port))
                .await
                .is_ok();
            if listening {
                Ok(())
            } else {
                Err("not listening yet")
            }
        });
        served.await.expect("listening");
        assert_eq!(served_certificate(hook.port, &ca).await, want);
    }
    unregister(&client, &configuration).await;
    hook_a.stop().await;
    hook_b.stop().await;
}

#[tokio::test]
async fn prodready_run_serves_the_webhook_from_the_policies_it_watches() {
    let cp = shared().await;
    let ns = cp.temp_namespace("wh-run").await.expect("namespace");
    let client = cp.client().await.expect("client");
    e2e::install_crd_file(&client, "crds/productionpolicies.prodready.dev.yaml")
        .await
        .expect("install the ProductionPolicy CRD");
    let webhook = free_listener();
    let port = webhook.local_addr().expect("addr").port();
    drop(webhook);
    let admin = free_listener().local_addr().expect("addr");
    let configuration = format!("prodready-e2e-{}", ns.name());
    register(&client, &configuration, ns.name(), port).await;
    let policy_name = format!("team-{}", ns.name());
    apply_yaml(
        &client,
        None,
        &format!(
            "apiVersion: prodready.dev/v1alpha1\nkind: ProductionPolicy\nmetadata: {{name: {policy_name}}}\nspec:\n  match: {{namespaces: [{}]}}\n  enforcement: {{action: Warn}}\n",
            ns.name()
        ),
    )
    .await
    .expect("create the policy");

    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("operator.log");
    let args: Vec<String> = [
        "run",
        "--kubeconfig",
        &cp.kubeconfig().display().to_string(),
        "--admin-addr",
        &admin.to_string(),
        "--identity",
        "webhook-e2e",
        "--lease-name",
        "webhook-e2e",
        "--lease-namespace",
        ns.name(),
        "--debounce",
        "200ms",
        "--log-format",
        "json",
        "--webhook-addr",
        &format!("127.0.0.1:{port}"),
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
    let operator = OperatorProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_prodready-operator")),
        &args,
        &[],
        &log,
    )
    .expect("start prodready run");

    // The controller publishes the policy, the webhook judges with it: the deployer sees
    // the warning under the policy's name.
    let out = wait_for(WAIT, "prodready run warns at admission", || async {
        let out = apply(
            cp,
            ns.name(),
            &deployment("web", "registry.example/web:1", false, ""),
            &["--dry-run=server"],
        )
        .await;
        if out.stderr.contains(&format!("Warning: prodready[{policy_name}] deployment/web: container \"app\" has no readinessProbe (readiness-probe)")) {
            Ok(out)
        } else {
            Err(format!(
                "not yet: {}\n--- operator log ---\n{}",
                out.stderr,
                operator.logs()
            ))
        }
    })
    .await
    .expect("webhook wired into prodready run");
    assert!(out.success(), "{}", out.stderr);

    let metrics = operator.metrics();
    assert!(
        metrics.contains(r#"prodready_admission_reviews_total{kind="Deployment",operation="CREATE",decision="warned"}"#),
        "{metrics}"
    );
    let api: Api<prodready::api::ProductionPolicy> = Api::all(client.clone());
    let _ = api.delete(&policy_name, &DeleteParams::default()).await;
    unregister(&client, &configuration).await;
}

/// An HPA-managed Deployment (no `replicas`) otherwise compliant with [`policy`].
fn autoscaled(name: &str, replicas: &str) -> String {
    deployment(name, "registry.example/web:1", true, "").replace("  replicas: 2\n", replicas)
}

fn hpa(name: &str, min: i32) -> String {
    format!(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: {name}}}\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}\n  minReplicas: {min}\n  maxReplicas: 10\n"
    )
}

#[tokio::test]
async fn admission_judges_an_autoscaled_deployment_by_its_hpa() {
    let cp = shared().await;
    let ns = cp.temp_namespace("wh-hpa").await.expect("namespace");
    let client = cp.client().await.expect("client");
    e2e::install_crd_file(&client, "crds/productionpolicies.prodready.dev.yaml")
        .await
        .expect("install the ProductionPolicy CRD");
    let webhook = free_listener();
    let port = webhook.local_addr().expect("addr").port();
    drop(webhook);
    let admin = free_listener().local_addr().expect("addr");
    let configuration = format!("prodready-e2e-{}", ns.name());
    register(&client, &configuration, ns.name(), port).await;
    // Enforce at medium: a replicas-ha finding is a denial, so allowed means it passed.
    let policy_name = format!("ha-{}", ns.name());
    apply_yaml(
        &client,
        None,
        &format!(
            "apiVersion: prodready.dev/v1alpha1\nkind: ProductionPolicy\nmetadata: {{name: {policy_name}}}\nspec:\n  match: {{namespaces: [{}]}}\n  enforcement: {{action: Enforce, denyAtOrAbove: medium}}\n  rules: {{serviceMonitor: {{enabled: false}}, disruptionBudget: {{enabled: false}}, gracefulShutdown: {{enabled: false}}}}\n",
            ns.name()
        ),
    )
    .await
    .expect("create the policy");
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("operator.log");
    let args: Vec<String> = [
        "run",
        "--kubeconfig",
        &cp.kubeconfig().display().to_string(),
        "--admin-addr",
        &admin.to_string(),
        "--identity",
        "webhook-hpa",
        "--lease-name",
        "webhook-hpa",
        "--lease-namespace",
        ns.name(),
        "--debounce",
        "200ms",
        "--log-format",
        "json",
        "--webhook-addr",
        &format!("127.0.0.1:{port}"),
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
    let operator = OperatorProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_prodready-operator")),
        &args,
        &[],
        &log,
    )
    .expect("start prodready run");

    // No HPA yet: the Deployment without replicas is one replica, denied.
    let out = wait_for(WAIT, "a denial on the single replica", || async {
        let out = apply(cp, ns.name(), &autoscaled("web", ""), &["--dry-run=server"]).await;
        if out.stderr.contains("runs 1 replica") {
            Ok(out)
        } else {
            Err(format!(
                "not yet: {}\n--- operator log ---\n{}",
                out.stderr,
                operator.logs()
            ))
        }
    })
    .await
    .expect("the webhook judges");
    assert!(!out.success(), "{}", out.stderr);

    // With an HPA of minReplicas 3 (once the snapshot has it), the same apply is allowed
    // and stored.
    apply_yaml(&client, Some(ns.name()), &hpa("web", 3))
        .await
        .expect("create the HPA");
    let out = wait_for(WAIT, "admitted with minReplicas 3", || async {
        let out = apply(cp, ns.name(), &autoscaled("web", ""), &[]).await;
        if out.success() {
            Ok(out)
        } else {
            Err(format!("not yet: {}", out.stderr))
        }
    })
    .await
    .expect("admitted once the HPA is known");
    assert!(!out.stderr.contains("replicas-ha"), "{}", out.stderr);

    // kubectl apply records the manifest: one that also sets replicas fights the HPA.
    let out = apply(
        cp,
        ns.name(),
        &autoscaled("web", "  replicas: 3\n"),
        &["--dry-run=server"],
    )
    .await;
    assert!(!out.success(), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("sets replicas: 3 while HorizontalPodAutoscaler \"web\" scales it"),
        "{}",
        out.stderr
    );

    // minReplicas 1: a new Deployment under such an HPA is denied, naming the autoscaler
    // (re-applying the stored one would be a no-op for kubectl: no request, no review).
    apply_yaml(&client, Some(ns.name()), &hpa("web", 1))
        .await
        .expect("lower minReplicas");
    apply_yaml(&client, Some(ns.name()), &hpa("api", 1))
        .await
        .expect("create the api HPA");
    let out = wait_for(
        WAIT,
        "a denial of a new Deployment with minReplicas 1",
        || async {
            let out = apply(cp, ns.name(), &autoscaled("api", ""), &["--dry-run=server"]).await;
            if out
                .stderr
                .contains("scales down to minReplicas 1 of HorizontalPodAutoscaler \"api\"")
            {
                Ok(out)
            } else {
                Err(format!("not yet: {}", out.stderr))
            }
        },
    )
    .await
    .expect("denied with minReplicas 1");
    assert!(!out.success(), "{}", out.stderr);

    // The controller agrees: the stored Deployment violates replicas-ha, and only it.
    let s = e2e::wait_status(
        &client,
        &policy_name,
        WAIT,
        "the status counts the Deployment violating",
        e2e::expect_counts((1, 0, 1, 0, 0)),
    )
    .await;
    let rules: Vec<&str> = s.violations.iter().map(|v| v.rule.as_str()).collect();
    assert_eq!(rules, ["replicas-ha"]);

    let api: Api<prodready::api::ProductionPolicy> = Api::all(client.clone());
    let _ = api.delete(&policy_name, &DeleteParams::default()).await;
    unregister(&client, &configuration).await;
}

/// [`deployment`] with an injected-sidecar-like `istio-proxy` container beside the app: no
/// probes, no resources, no preStop (as a mesh injects it).
fn meshed(name: &str, app_ready: bool) -> String {
    let base = deployment(name, "registry.example/web:1", app_ready, "");
    format!(
        "{base}        - name: istio-proxy\n          image: registry.example/proxyv2:1.24.0\n          args: [proxy, sidecar]\n"
    )
}

#[tokio::test]
async fn a_container_exemption_silences_the_sidecar_but_not_the_app() {
    let cp = shared().await;
    let ns = cp.temp_namespace("wh-sidecar").await.expect("namespace");
    let hook = start_hook(cp, ns.name(), Duration::from_secs(3600)).await;
    let exemption = "exemptions:\n  - rules: [liveness-probe, readiness-probe, resource-requests, memory-limit]\n    containers: [istio-proxy]\n    reason: \"injected by the mesh; probed and sized by its operator\"\n";
    hook.set_policy("baseline", &policy("action: Warn", exemption));
    wait_until_judging(cp, ns.name()).await;

    // Without the exemption the sidecar alone draws warnings (the test is not vacuous).
    hook.set_policy("baseline", &policy("action: Warn", ""));
    let out = apply(
        cp,
        ns.name(),
        &meshed("unexempt", true),
        &["--dry-run=server"],
    )
    .await;
    assert!(out.success(), "{}", out.stderr);
    let warnings = warning_lines(&out.stderr);
    assert!(
        !warnings.is_empty() && warnings.iter().all(|w| w.contains("\"istio-proxy\"")),
        "{}",
        out.stderr
    );

    // Exempt sidecar, complete app: admitted without a single warning.
    hook.set_policy("baseline", &policy("action: Warn", exemption));
    let out = apply(cp, ns.name(), &meshed("web", true), &[]).await;
    assert!(out.success(), "{}", out.stderr);
    assert!(
        warning_lines(&out.stderr).is_empty(),
        "no warning for an exempt sidecar: {}",
        out.stderr
    );

    // Exempt sidecar, app without a readinessProbe: the app's warning only.
    let out = apply(cp, ns.name(), &meshed("api", false), &[]).await;
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(
        warning_lines(&out.stderr),
        [format!("Warning: prodready[baseline] deployment/api: container \"app\" has no readinessProbe (readiness-probe); {FIX}").as_str()],
        "{}",
        out.stderr
    );

    // Enforce: the app's finding still denies, and the denial names the app, not the sidecar.
    hook.set_policy("baseline", &policy("action: Enforce", exemption));
    let out = apply(cp, ns.name(), &meshed("strict-api", false), &[]).await;
    assert!(
        !out.success(),
        "the app's violation must deny: {}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("prodready denied deployment/strict-api")
            && out
                .stderr
                .contains("container \"app\" has no readinessProbe"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("istio-proxy"), "{}", out.stderr);
    let out = apply(cp, ns.name(), &meshed("strict-web", true), &[]).await;
    assert!(out.success(), "{}", out.stderr);
    assert!(warning_lines(&out.stderr).is_empty(), "{}", out.stderr);

    let client = cp.client().await.expect("client");
    unregister(&client, &hook.configuration).await;
    hook.stop().await;
}

#[tokio::test]
async fn workloads_another_operator_controls_are_judged_at_admission() {
    let cp = shared().await;
    let ns = cp.temp_namespace("wh-owned").await.expect("namespace");
    let hook = start_hook(cp, ns.name(), Duration::from_secs(3600)).await;
    hook.set_policy("baseline", &policy("action: Warn", ""));
    wait_until_judging(cp, ns.name()).await;
    // The fixture `audit`, the controller and the unit tests judge alike.
    let fixture =
        std::fs::read_to_string(e2e::repo_root().join("tests/fixtures/owned/operator-owned.yaml"))
            .expect("the fixture")
            .replace("namespace: streaming", &format!("namespace: {}", ns.name()));
    let out = apply(cp, ns.name(), &fixture, &["--dry-run=server"]).await;
    assert!(out.success(), "{}", out.stderr);
    let warnings = warning_lines(&out.stderr);
    for judged in [
        "deployment/kafka-exporter: container \"exporter\" has no readinessProbe",
        "statefulset/db: container \"postgres\" has no livenessProbe",
        "cronjob/db-backup: concurrencyPolicy is \"Allow\"",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(judged)),
            "no warning for {judged}: {}",
            out.stderr
        );
    }
    // The Pod of the StatefulSet and the ReplicaSet of the Deployment are left to them.
    assert!(
        !warnings
            .iter()
            .any(|w| w.contains("pod/db-0") || w.contains("replicaset/")),
        "{}",
        out.stderr
    );
    let client = cp.client().await.expect("client");
    unregister(&client, &hook.configuration).await;
    hook.stop().await;
}
