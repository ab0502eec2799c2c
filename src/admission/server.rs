//! The webhook's HTTP layer: decode the AdmissionReview, call [`review_detailed`], encode.
//!
//! Nothing here decides anything. A body over the limit gets 413, a body that is not an
//! AdmissionReview with a `request` gets 400 with an AdmissionReview error response that says
//! what was wrong; neither ever panics. Every request is counted in `http_server_requests_total`
//! and every judged review in `prodready_admission_reviews_total`.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing;
use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};

use super::metrics::{AdmissionMetrics, WebhookMetrics, kind_label};
use super::review::{Decision, Review, review_detailed};
use crate::error::Categorized;
use crate::metrics::method_label;
use crate::snapshot::SharedSnapshot;

/// The route the API server calls.
pub const ROUTE: &str = "/validate";
/// Default body limit: a Deployment is ~10 KB, the API server's own object limit is ~1.5 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// What the handler needs.
#[derive(Clone, Debug)]
pub struct WebhookState {
    snapshot: SharedSnapshot,
    metrics: WebhookMetrics,
    max_body: usize,
}

impl WebhookState {
    /// State over a snapshot and metric handles.
    pub fn new(snapshot: SharedSnapshot, metrics: WebhookMetrics, max_body: usize) -> Arc<Self> {
        Arc::new(WebhookState {
            snapshot,
            metrics,
            max_body,
        })
    }
}

/// The webhook router: `/validate`, and 404 for everything else.
pub fn router(state: Arc<WebhookState>) -> Router {
    Router::new()
        .route(ROUTE, routing::any(validate))
        .fallback(not_found)
        .with_state(state)
}

fn operation_label(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// An AdmissionReview error response for a request that could not be read.
fn invalid(status: StatusCode, message: &str) -> Response {
    let review = AdmissionResponse::invalid(message).into_review();
    let body = serde_json::to_vec(&review).unwrap_or_else(|_| message.as_bytes().to_vec());
    json_response(status, body)
}

async fn not_found(State(state): State<Arc<WebhookState>>, req: Request) -> Response {
    let method = method_label(req.method().as_str());
    let _timer = state.metrics.http.timer("other", method);
    let r = (
        StatusCode::NOT_FOUND,
        "not found: the admission webhook serves POST /validate\n",
    )
        .into_response();
    state
        .metrics
        .http
        .count("other", method, r.status().as_u16());
    r
}

async fn validate(State(state): State<Arc<WebhookState>>, req: Request) -> Response {
    let method = method_label(req.method().as_str());
    let _timer = state.metrics.http.timer(ROUTE, method);
    let response = handle(&state, req).await;
    state
        .metrics
        .http
        .count(ROUTE, method, response.status().as_u16());
    response
}

fn too_large(limit: usize) -> Response {
    invalid(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("AdmissionReview body exceeds the webhook's limit of {limit} bytes"),
    )
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, Response> {
    match axum::body::to_bytes(body, limit).await {
        Ok(b) => Ok(b),
        Err(e) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(s) = source {
                if s.is::<http_body_util::LengthLimitError>() {
                    return Err(too_large(limit));
                }
                source = s.source();
            }
            Err(invalid(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the request body: {e}"),
            ))
        }
    }
}

async fn handle(state: &WebhookState, req: Request) -> Response {
    if req.method() != Method::POST {
        let mut r = invalid(
            StatusCode::METHOD_NOT_ALLOWED,
            "the admission webhook accepts POST only",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.max_body) {
        state
            .metrics
            .admission
            .review("other", "unknown", Decision::Error);
        return too_large(state.max_body);
    }
    let body = match read_body(req.into_body(), state.max_body).await {
        Ok(b) => b,
        Err(r) => {
            state
                .metrics
                .admission
                .review("other", "unknown", Decision::Error);
            return r;
        }
    };
    match decode(&body) {
        Ok(request) => {
            let (status, body) = respond(state, &request);
            json_response(status, body)
        }
        Err(e) => {
            state
                .metrics
                .admission
                .review("other", "unknown", Decision::Error);
            tracing::warn!(error = %e, category = e.category(), "malformed admission review");
            invalid(StatusCode::BAD_REQUEST, &e.to_string())
        }
    }
}

/// Why a request body is not an AdmissionReview the webhook can judge.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON of the AdmissionReview shape.
    #[error("body is not an admission.k8s.io/v1 AdmissionReview: {0}")]
    Json(#[source] serde_json::Error),
    /// Another kind.
    #[error("expected kind AdmissionReview, got `{0}`")]
    Kind(String),
    /// Another API group or version.
    #[error("expected apiVersion admission.k8s.io/v1, got `{0}`")]
    ApiVersion(String),
    /// A review without a request (a response, or an empty review).
    #[error("the AdmissionReview has no `request`")]
    NoRequest,
}

impl Categorized for DecodeError {
    fn category(&self) -> &'static str {
        match self {
            DecodeError::Json(_) => "json",
            DecodeError::Kind(_) => "kind",
            DecodeError::ApiVersion(_) => "api_version",
            DecodeError::NoRequest => "no_request",
        }
    }
}

/// Decodes an AdmissionReview body into its request, or says what is wrong with it.
pub fn decode(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, DecodeError> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(DecodeError::Json)?;
    if review.types.kind != "AdmissionReview" {
        return Err(DecodeError::Kind(review.types.kind));
    }
    if !review.types.api_version.starts_with("admission.k8s.io/") {
        return Err(DecodeError::ApiVersion(review.types.api_version));
    }
    review.try_into().map_err(|_| DecodeError::NoRequest)
}

fn respond(
    state: &WebhookState,
    request: &AdmissionRequest<DynamicObject>,
) -> (StatusCode, Vec<u8>) {
    let snapshot = state.snapshot.load();
    let operation = operation_label(&request.operation);
    let kind = request.kind.kind.as_str();
    let metrics: &AdmissionMetrics = &state.metrics.admission;
    let review = if snapshot.synced {
        review_detailed(
            request,
            &snapshot.policies,
            &snapshot.context,
            Timestamp::now(),
        )
    } else {
        metrics.not_ready();
        Review::not_synced(request)
    };
    metrics.review(kind, operation, review.decision);
    metrics.unknown(&review.unknown_rules);
    let namespace = request.namespace.as_deref().unwrap_or("");
    let workload = review.workload.as_deref().unwrap_or("");
    match review.decision {
        Decision::Denied => tracing::info!(
            request_uid = %request.uid,
            kind = kind_label(kind),
            operation,
            namespace,
            workload,
            decision = review.decision.as_str(),
            denied = review.denied,
            warned = review.warned,
            dry_run = request.dry_run,
            "admission denied"
        ),
        Decision::Error => tracing::warn!(
            request_uid = %request.uid,
            kind = kind_label(kind),
            operation,
            namespace,
            workload,
            decision = review.decision.as_str(),
            error = review.error.as_deref().unwrap_or(""),
            "admission review could not be judged; admitted"
        ),
        _ => tracing::debug!(
            request_uid = %request.uid,
            kind = kind_label(kind),
            operation,
            namespace,
            workload,
            decision = review.decision.as_str(),
            warned = review.warned,
            synced = snapshot.synced,
            dry_run = request.dry_run,
            "admission reviewed"
        ),
    }
    let body = serde_json::to_vec(&review.response.into_review());
    match body {
        Ok(b) => (StatusCode::OK, b),
        Err(e) => {
            let msg = format!("cannot encode the AdmissionReview response: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, msg.into_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ProductionPolicySpec;
    use crate::engine::CompiledPolicy;
    use crate::metrics::HttpMetrics;
    use crate::snapshot::Snapshot;
    use http_body_util::BodyExt as _;
    use prometheus_client::registry::Registry;
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use tower::ServiceExt as _;

    struct Fixture {
        router: Router,
        registry: Registry,
        snapshot: SharedSnapshot,
    }

    fn fixture(spec: &str, synced: bool) -> Fixture {
        let mut registry = Registry::default();
        let metrics = WebhookMetrics {
            admission: AdmissionMetrics::register(&mut registry),
            http: HttpMetrics::register(&mut registry),
        };
        let spec: ProductionPolicySpec = serde_saphyr::from_str(spec).expect("spec");
        let policy =
            CompiledPolicy::from_spec("baseline", spec, &crate::rules::CATALOG).expect("policy");
        let snapshot = SharedSnapshot::default();
        snapshot.store(Snapshot {
            policies: vec![Arc::new(policy)],
            synced,
            ..Snapshot::default()
        });
        let router = router(WebhookState::new(snapshot.clone(), metrics, 64 * 1024));
        Fixture {
            router,
            registry,
            snapshot,
        }
    }

    fn metrics_text(f: &Fixture) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &f.registry).expect("encode");
        text
    }

    fn review_body(object: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                "name": "web",
                "namespace": "shop",
                "operation": "CREATE",
                "userInfo": {"username": "dev"},
                "object": object,
                "dryRun": false
            }
        }))
        .expect("json")
    }

    fn unready_deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
              "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "app", "image": "web:latest"}]}}}
        })
    }

    async fn call(f: &Fixture, method: &str, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        let resp = f.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    const WARN: &str = "enforcement: {action: Warn}\n";
    const ENFORCE: &str = "enforcement: {action: Enforce}\n";

    #[tokio::test]
    async fn warn_answers_200_with_warnings_and_the_request_uid() {
        let f = fixture(WARN, true);
        let (status, v) = call(&f, "POST", "/validate", review_body(unready_deployment())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["kind"], "AdmissionReview");
        assert_eq!(v["response"]["uid"], "u-1");
        assert_eq!(v["response"]["allowed"], true);
        let warnings = v["response"]["warnings"].as_array().expect("warnings");
        assert!(warnings.iter().any(|w| {
            w.as_str()
                .is_some_and(|w| w.starts_with("prodready[baseline] deployment/web: "))
        }));
        let text = metrics_text(&f);
        assert!(text.contains(r#"prodready_admission_reviews_total{kind="Deployment",operation="CREATE",decision="warned"} 1"#), "{text}");
        assert!(
            text.contains(
                r#"http_server_requests_total{route="/validate",method="POST",status="200"} 1"#
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn enforce_answers_200_with_allowed_false_and_403_status() {
        let f = fixture(ENFORCE, true);
        let (status, v) = call(&f, "POST", "/validate", review_body(unready_deployment())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(v["response"]["status"]["code"], 403);
        assert!(
            v["response"]["status"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("(readiness-probe)"))
        );
        assert!(metrics_text(&f).contains(r#"decision="denied"} 1"#));
    }

    #[tokio::test]
    async fn unsynced_snapshot_admits_without_warnings_and_counts_it() {
        let f = fixture(ENFORCE, false);
        let (_, v) = call(&f, "POST", "/validate", review_body(unready_deployment())).await;
        assert_eq!(v["response"]["allowed"], true);
        assert!(v["response"].get("warnings").is_none());
        let text = metrics_text(&f);
        assert!(
            text.contains("prodready_admission_not_ready_total 1"),
            "{text}"
        );
        // Once the controller publishes a synced snapshot, reviews judge again.
        f.snapshot.store(Snapshot {
            policies: f.snapshot.load().policies.clone(),
            synced: true,
            ..Snapshot::default()
        });
        let (_, v) = call(&f, "POST", "/validate", review_body(unready_deployment())).await;
        assert_eq!(v["response"]["allowed"], false);
    }

    #[tokio::test]
    async fn malformed_json_is_400_with_a_clear_message() {
        let f = fixture(WARN, true);
        let (status, v) = call(&f, "POST", "/validate", b"{not json".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(v["response"]["allowed"], false);
        let msg = v["response"]["status"]["message"]
            .as_str()
            .expect("message");
        assert!(
            msg.starts_with("body is not an admission.k8s.io/v1 AdmissionReview"),
            "{msg}"
        );
        let text = metrics_text(&f);
        assert!(
            text.contains(
                r#"http_server_requests_total{route="/validate",method="POST",status="400"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"prodready_admission_reviews_total{kind="other",operation="unknown",decision="error"} 1"#), "{text}");
    }

    #[tokio::test]
    async fn review_without_request_is_400() {
        let f = fixture(WARN, true);
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec();
        let (status, v) = call(&f, "POST", "/validate", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            v["response"]["status"]["message"],
            "the AdmissionReview has no `request`"
        );
    }

    #[tokio::test]
    async fn wrong_kind_is_400() {
        let f = fixture(WARN, true);
        let body = br#"{"apiVersion":"v1","kind":"Pod","request":null}"#.to_vec();
        let (status, v) = call(&f, "POST", "/validate", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            v["response"]["status"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("AdmissionReview"))
        );
    }

    #[tokio::test]
    async fn oversized_body_is_413() {
        let f = fixture(WARN, true);
        let mut obj = unready_deployment();
        obj["metadata"]["annotations"] = json!({"big": "x".repeat(100 * 1024)});
        let (status, v) = call(&f, "POST", "/validate", review_body(obj)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let msg = v["response"]["status"]["message"]
            .as_str()
            .expect("message");
        assert_eq!(
            msg,
            "AdmissionReview body exceeds the webhook's limit of 65536 bytes"
        );
        assert!(metrics_text(&f).contains(r#"status="413"} 1"#));
    }

    #[tokio::test]
    async fn oversized_body_without_content_length_is_413() {
        let f = fixture(WARN, true);
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..20)
            .map(|_| Ok(Bytes::from(vec![b' '; 8 * 1024])))
            .collect();
        let body = Body::from_stream(futures::stream::iter(chunks));
        let req = Request::builder()
            .method("POST")
            .uri("/validate")
            .body(body)
            .expect("request");
        let resp = f.router.clone().oneshot(req).await.expect("infallible");
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn get_is_405_and_other_paths_404() {
        let f = fixture(WARN, true);
        let (status, _) = call(&f, "GET", "/validate", Vec::new()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        let (status, _) = call(&f, "POST", "/mutate", Vec::new()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let text = metrics_text(&f);
        assert!(
            text.contains(
                r#"http_server_requests_total{route="/validate",method="GET",status="405"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"http_server_requests_total{route="other",method="POST",status="404"} 1"#
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn kinds_are_bounded_in_metrics() {
        let f = fixture(WARN, true);
        let mut body: Value = serde_json::from_slice(&review_body(json!({
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}
        })))
        .expect("json");
        body["request"]["kind"] =
            json!({"group": "example.com", "version": "v1", "kind": "Widget"});
        let (status, v) = call(
            &f,
            "POST",
            "/validate",
            serde_json::to_vec(&body).expect("json"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["response"]["allowed"], true);
        assert!(metrics_text(&f).contains(r#"prodready_admission_reviews_total{kind="other",operation="CREATE",decision="allowed"} 1"#));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decode_and_review_never_panic_on_arbitrary_json(value in arb_json()) {
            let wrapped = json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": "u",
                    "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                    "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                    "name": "x",
                    "operation": "UPDATE",
                    "userInfo": {},
                    "object": value.clone(),
                    "oldObject": value.clone(),
                }
            });
            let policies = [Arc::new(CompiledPolicy::builtin(crate::api::Profile::Strict, &crate::rules::CATALOG))];
            for body in [serde_json::to_vec(&value).unwrap_or_default(), serde_json::to_vec(&wrapped).unwrap_or_default()] {
                if let Ok(req) = decode(&body) {
                    let r = review_detailed(&req, &policies, &crate::engine::Context::default(), Timestamp::UNIX_EPOCH);
                    prop_assert_eq!(r.response.uid.as_str(), "u");
                }
            }
        }

        #[test]
        fn deployments_with_arbitrary_containers_never_panic(
            names in proptest::collection::vec("[a-zé\"ü-]{0,80}", 0..6),
            images in proptest::collection::vec(".{0,60}", 0..6),
        ) {
            let containers: Vec<Value> = names.iter().zip(images.iter().chain(std::iter::repeat(&String::new())))
                .map(|(n, i)| json!({"name": n, "image": i})).collect();
            let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"selector": {}, "template": {"spec": {"containers": containers}}}});
            let req = decode(&review_body(obj)).expect("valid review");
            let policies = [Arc::new(CompiledPolicy::builtin(crate::api::Profile::Strict, &crate::rules::CATALOG))];
            let r = review_detailed(&req, &policies, &crate::engine::Context::default(), Timestamp::UNIX_EPOCH);
            let warnings = r.response.warnings.unwrap_or_default();
            prop_assert!(warnings.iter().all(|w| w.len() <= super::super::review::MAX_WARNING_BYTES));
            prop_assert!(warnings.iter().map(String::len).sum::<usize>() <= super::super::review::MAX_WARNINGS_TOTAL_BYTES);
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".{0,12}".prop_map(Value::String),
            prop_oneof![
                Just("apps/v1"),
                Just("Deployment"),
                Just("metadata"),
                Just("spec"),
                Just("containers")
            ]
            .prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("apiVersion".to_owned()),
                        Just("kind".to_owned()),
                        Just("metadata".to_owned()),
                        Just("spec".to_owned()),
                        Just("template".to_owned()),
                        Just("containers".to_owned()),
                        Just("name".to_owned()),
                        ".{0,6}".prop_map(String::from)
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
