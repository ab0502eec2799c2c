//! Latency and throughput of the admission webhook under load: a small HTTPS load client with
//! keep-alive connections against the real server (`admission::serve_on`, rustls, axum) in
//! this process, with a realistic ~10 KB Deployment AdmissionReview and two Warn policies
//! (baseline and strict), so every review decodes, evaluates 21 rules and encodes warnings.
//!
//! ```sh
//! cargo bench --bench webhook_load                       # 200 req/s for 10 s, then saturation
//! cargo bench --bench webhook_load -- --rate 200 --duration 30 --connections 8
//! ```
//!
//! Fixed rate: requests are scheduled every 1/rate s and latency is measured from the
//! scheduled instant (no coordinated omission). Saturation: every connection sends back to
//! back. Client and server share the machine's cores.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use k8s_openapi::jiff::Timestamp;
use prodready::admission::{self, AdmissionMetrics, WebhookArgs, WebhookMetrics, certs};
use prodready::api::Profile;
use prodready::engine::CompiledPolicy;
use prodready::kubeapi::{ApiCalls, DependencyMetrics};
use prodready::metrics::HttpMetrics;
use prodready::snapshot::{SharedSnapshot, Snapshot};
use prometheus_client::registry::Registry;
use rustls::pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

struct Options {
    rate: u64,
    duration: Duration,
    connections: usize,
}

fn options() -> Options {
    let mut o = Options {
        rate: 200,
        duration: Duration::from_secs(10),
        connections: 8,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (args[i].as_str(), value) {
            ("--rate", Some(v)) => o.rate = v.max(1),
            ("--duration", Some(v)) => o.duration = Duration::from_secs(v.max(1)),
            ("--connections", Some(v)) => o.connections = usize::try_from(v.max(1)).unwrap_or(8),
            // `cargo bench` passes `--bench`; ignore what we do not know.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// A Deployment as the API server sends it: defaults filled in, managedFields and the
/// last-applied annotation included.
fn review_body() -> Vec<u8> {
    let container = |name: &str, image: &str| {
        json!({
            "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                      {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
            "env": (0..12).map(|i| json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}")}))
                .chain([json!({"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}})])
                .collect::<Vec<_>>(),
            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
            "livenessProbe": {"httpGet": {"path": "/health/live", "port": 8080, "scheme": "HTTP"},
                "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}, {"name": "tmp", "mountPath": "/tmp"}],
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false}
        })
    };
    let spec = json!({
        "replicas": 3,
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
        "selector": {"matchLabels": {"app": "checkout"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": {
            "metadata": {"labels": {"app": "checkout", "team": "payments", "version": "4.2.1"},
                         "annotations": {"prometheus.io/scrape": "true"}},
            "spec": {
                "containers": [container("app", "registry.example/payments/checkout:4.2.1"),
                               container("proxy", "registry.example/infra/proxy:1.9")],
                "volumes": [{"name": "config", "configMap": {"name": "checkout", "defaultMode": 420}},
                            {"name": "tmp", "emptyDir": {}}],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                "serviceAccountName": "checkout", "schedulerName": "default-scheduler", "securityContext": {}
            }
        }
    });
    let last_applied = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "checkout", "namespace": "payments"}, "spec": spec})
    .to_string();
    let object = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": "checkout", "namespace": "payments", "uid": "5d4c0b6e-3f0a-4b8e-9a51-0c2d7f1e9b11",
            "generation": 14, "creationTimestamp": "2026-06-01T10:00:00Z",
            "labels": {"app": "checkout", "team": "payments"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied,
                            "deployment.kubernetes.io/revision": "14"},
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "apps/v1",
                "time": "2026-11-20T09:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                    "f:labels": {".": {}, "f:app": {}, "f:team": {}}},
                    "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {}}}}}}]
        },
        "spec": spec
    });
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "checkout", "namespace": "payments", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:ci:deployer", "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": object, "oldObject": Value::Null, "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"}
        }
    });
    serde_json::to_vec(&review).unwrap_or_default()
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(port: u16, ca_pem: &[u8]) -> Sender {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem).flatten() {
        let _ = roots.add(c);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("HTTP handshake");
    tokio::spawn(conn);
    sender
}

/// Sends one review; true when the answer was 200 with a response.
async fn send(sender: &mut Sender, body: &Bytes) -> bool {
    if sender.ready().await.is_err() {
        return false;
    }
    let req = hyper::Request::post("/validate")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .expect("request");
    match sender.send_request(req).await {
        Ok(resp) => {
            let ok = resp.status() == 200;
            let bytes = resp.into_body().collect().await.map(|b| b.to_bytes());
            ok && bytes.is_ok_and(|b| b.windows(8).any(|w| w == b"response"))
        }
        Err(_) => false,
    }
}

struct Report {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

impl Report {
    fn print(mut self, title: &str) {
        self.latencies.sort_unstable();
        let n = self.latencies.len();
        let q = |p: f64| {
            if n == 0 {
                Duration::ZERO
            } else {
                let i = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
                self.latencies[i]
            }
        };
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{title}: {n} ok, {} errors in {:.1}s = {:.0} reviews/s | p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs",
            self.errors,
            self.elapsed.as_secs_f64(),
            n as f64 / self.elapsed.as_secs_f64(),
            us(q(0.50)),
            us(q(0.99)),
            us(q(0.999)),
            us(self.latencies.last().copied().unwrap_or_default()),
        );
    }
}

/// Latency from the scheduled instant (queueing included: no coordinated omission), and from
/// the moment the request was written.
async fn fixed_rate(port: u16, ca: &[u8], body: Bytes, o: &Options) -> (Report, Report) {
    let conns = o.connections.clamp(1, 4);
    let (tx, rx) = async_channel(conns);
    let start = Instant::now();
    let total = o.rate * o.duration.as_secs();
    let period = Duration::from_secs_f64(1.0 / o.rate as f64);
    let mut workers = Vec::new();
    for _ in 0..conns {
        let mut sender = connect(port, ca).await;
        let rx = Arc::clone(&rx);
        let body = body.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut service = Vec::new();
            let mut errors = 0;
            loop {
                let next = rx.lock().await.recv().await;
                let Some(scheduled) = next else { break };
                let sent = Instant::now();
                if send(&mut sender, &body).await {
                    lat.push(scheduled.elapsed());
                    service.push(sent.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, service, errors)
        }));
    }
    // The schedule is kept by an OS thread sleeping to each instant (the kernel's
    // high-resolution timers, tens of µs late), not by a tokio interval: tokio's timer wheel
    // has 1 ms granularity, which would add up to a millisecond of client-side lag to every
    // latency measured from the scheduled instant.
    let pacer = std::thread::spawn(move || {
        for i in 0..total {
            let at = start + period.mul_f64(i as f64);
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if tx.blocking_send(at).is_err() {
                break;
            }
        }
    });
    let _ = tokio::task::spawn_blocking(move || pacer.join()).await;
    let mut report = Report {
        latencies: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    let mut service = Report {
        latencies: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for w in workers {
        if let Ok((lat, sent, errors)) = w.await {
            report.latencies.extend(lat);
            service.latencies.extend(sent);
            report.errors += errors;
            service.errors += errors;
        }
    }
    report.elapsed = start.elapsed();
    service.elapsed = report.elapsed;
    (report, service)
}

type Queue = Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Instant>>>;

fn async_channel(capacity: usize) -> (tokio::sync::mpsc::Sender<Instant>, Queue) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity * 64);
    (tx, Arc::new(tokio::sync::Mutex::new(rx)))
}

async fn saturation(port: u16, ca: &[u8], body: Bytes, o: &Options) -> Report {
    let deadline = Instant::now() + o.duration;
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..o.connections {
        let mut sender = connect(port, ca).await;
        let body = body.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                if send(&mut sender, &body).await {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut report = Report {
        latencies: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for w in workers {
        if let Ok((lat, errors)) = w.await {
            report.latencies.extend(lat);
            report.errors += errors;
        }
    }
    report.elapsed = start.elapsed();
    report
}

/// The server's work without the network: decode, review, encode, on one thread.
fn in_process(body: &[u8], policies: &[Arc<CompiledPolicy>]) {
    let context = prodready::engine::Context::default();
    let mut latencies = Vec::with_capacity(5000);
    let start = Instant::now();
    for _ in 0..5000 {
        let t = Instant::now();
        let request = admission::server::decode(body).expect("decodes");
        let review = admission::review_detailed(&request, policies, &context, Timestamp::now());
        let out = serde_json::to_vec(&review.response.into_review()).expect("encodes");
        std::hint::black_box(out);
        latencies.push(t.elapsed());
    }
    Report {
        latencies,
        errors: 0,
        elapsed: start.elapsed(),
    }
    .print("in-process decode+review+encode, 1 thread");
}

fn main() {
    let o = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        // Certificates in files: the server runs with --tls-cert-file/--tls-key-file, so no
        // API server is needed.
        let now = Timestamp::now();
        let ca = certs::generate_ca(now, Duration::from_secs(86400)).expect("CA");
        let serving = certs::issue_serving(
            &ca.key_pem,
            &["127.0.0.1".to_owned()],
            now,
            Duration::from_secs(86400),
        )
        .expect("serving certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&cert, &serving.cert_pem).expect("write cert");
        std::fs::write(&key, &serving.key_pem).expect("write key");

        let snapshot = SharedSnapshot::default();
        let mut strict = CompiledPolicy::builtin(Profile::Strict, &prodready::rules::CATALOG);
        strict.name = "strict".into();
        let policies = vec![
            Arc::new(CompiledPolicy::builtin(Profile::Baseline, &prodready::rules::CATALOG)),
            Arc::new(strict),
        ];
        snapshot.store(Snapshot {
            policies: policies.clone(),
            synced: true,
            ..Snapshot::default()
        });
        let mut registry = Registry::default();
        let metrics = WebhookMetrics {
            admission: AdmissionMetrics::register(&mut registry),
            http: HttpMetrics::register(&mut registry),
        };
        let calls = ApiCalls::new(DependencyMetrics::register(&mut registry));
        // Never contacted: file-based TLS makes no API call.
        let config = kube::Config::new("https://127.0.0.1:1".parse().expect("uri"));
        let client = kube::Client::try_from(config).expect("client");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let args = WebhookArgs {
            webhook_enabled: true,
            webhook_addr: "127.0.0.1:0".parse().expect("addr"),
            webhook_max_body_bytes: admission::server::DEFAULT_MAX_BODY_BYTES,
            tls_cert_file: Some(cert),
            tls_key_file: Some(key),
            tls_reload_interval: Duration::from_secs(60),
            webhook_service_name: "prodready-webhook".into(),
            webhook_namespace: Some("bench".into()),
            webhook_extra_san: Vec::new(),
            webhook_secret_name: String::new(),
            webhook_configuration_name: String::new(),
            webhook_cert_validity: Duration::from_secs(3600),
            webhook_ca_validity: Duration::from_secs(86400),
            webhook_cert_check_interval: Duration::from_secs(60),
        };
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(admission::serve_on(
            listener,
            args,
            admission::WebhookApi {
                client,
                calls,
                owner: None,
            },
            snapshot,
            metrics,
            shutdown.clone(),
        ));

        let body = Bytes::from(review_body());
        let ca_pem = ca.cert_pem.into_bytes();
        // The server is up once a review answers; also warms the connection path.
        let mut probe = connect(port, &ca_pem).await;
        assert!(send(&mut probe, &body).await, "the webhook answers");
        println!(
            "webhook_load: AdmissionReview body {} bytes (Deployment with 2 containers, managedFields, last-applied); policies baseline + strict (Warn); {} cores",
            body.len(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        in_process(&body, &policies);
        let (r, service) = fixed_rate(port, &ca_pem, body.clone(), &o).await;
        let title = format!(
            "fixed rate {} req/s for {}s ({} connections)",
            o.rate,
            o.duration.as_secs(),
            o.connections.min(4)
        );
        r.print(&format!("{title}, from scheduled instant"));
        service.print(&format!("{title}, from request write"));
        let r = saturation(port, &ca_pem, body, &o).await;
        r.print(&format!(
            "saturation, {} connections for {}s",
            o.connections,
            o.duration.as_secs()
        ));
        shutdown.cancel();
        let _ = server.await;
    });
}
