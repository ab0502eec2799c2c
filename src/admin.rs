//! The plain-HTTP admin server: `/health/live`, `/health/ready`, `/metrics`.
//!
//! Liveness is plain: the process answers. Readiness means every reflector has its initial
//! list and the API server answered a cheap request (`/version`) recently; it is never tied
//! to leadership, so every replica can serve the webhook.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::controller::Stores;
use crate::kubeapi::ApiCalls;
use crate::metrics::{HttpMetrics, method_label};

/// How recent the last successful API answer must be for readiness.
pub const API_FRESHNESS: Duration = Duration::from_secs(10);

/// What readiness depends on.
#[derive(Debug)]
pub struct Health {
    stores: Arc<Stores>,
    api_ok_at: Mutex<Option<Instant>>,
    api_error: Mutex<Option<String>>,
    /// `prodready_ready`, set from [`Health::readiness`] at every scrape: what `/health/ready`
    /// answers, for alerting (a ServiceMonitor scrapes replicas that are not ready too).
    ready: Gauge,
}

impl Health {
    /// Health over these stores; the API is unconfirmed until the first probe.
    pub fn new(stores: Arc<Stores>) -> Arc<Self> {
        Arc::new(Health {
            stores,
            api_ok_at: Mutex::new(None),
            api_error: Mutex::new(None),
            ready: Gauge::default(),
        })
    }

    /// Registers `prodready_ready`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "prodready_ready",
            "1 while this replica is ready (what /health/ready answers with 200), else 0",
            self.ready.clone(),
        );
    }

    fn set_api(&self, result: Result<(), String>) {
        let (ok, err) = match result {
            Ok(()) => (Some(Instant::now()), None),
            Err(e) => (None, Some(e)),
        };
        if let Some(ok) = ok {
            *self.api_ok_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(ok);
        }
        *self.api_error.lock().unwrap_or_else(|p| p.into_inner()) = err;
    }

    /// `Ok` when ready, else why not.
    pub fn readiness(&self) -> Result<(), String> {
        let unsynced = self.stores.unsynced();
        if !unsynced.is_empty() {
            return Err(format!("caches not synced: {}", unsynced.join(", ")));
        }
        let ok_at = *self.api_ok_at.lock().unwrap_or_else(|p| p.into_inner());
        if ok_at.is_none_or(|t| t.elapsed() > API_FRESHNESS) {
            let err = self
                .api_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_else(|| "no answer yet".to_owned());
            return Err(format!(
                "the API server has not answered within {}s: {err}",
                API_FRESHNESS.as_secs()
            ));
        }
        Ok(())
    }
}

/// Asks the API server for `/version` every `every`, recording the outcome.
pub async fn probe_api(
    client: kube::Client,
    calls: ApiCalls,
    health: Arc<Health>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut was_ok = None;
    loop {
        let r = calls
            .once("get_version", client.apiserver_version())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        let ok = r.is_ok();
        if was_ok != Some(ok) {
            match &r {
                Ok(()) => tracing::info!("API server reachable"),
                Err(e) => tracing::error!(error = %e, "API server unreachable"),
            }
            was_ok = Some(ok);
        }
        health.set_api(r);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

#[derive(Clone)]
struct AdminState {
    health: Arc<Health>,
    registry: Arc<Registry>,
}

async fn live() -> &'static str {
    "ok\n"
}

async fn ready(State(s): State<AdminState>) -> Response {
    match s.health.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(s): State<AdminState>) -> Response {
    s.health.ready.set(i64::from(s.health.readiness().is_ok()));
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn observe(State(m): State<HttpMetrics>, req: Request, next: Next) -> Response {
    let route: &'static str = match req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
    {
        Some("/health/live") => "/health/live",
        Some("/health/ready") => "/health/ready",
        Some("/metrics") => "/metrics",
        _ => "other",
    };
    let method = method_label(req.method().as_str());
    let _timer = m.timer(route, method);
    let resp = next.run(req).await;
    m.count(route, method, resp.status().as_u16());
    resp
}

/// The admin router.
pub fn router(health: Arc<Health>, registry: Arc<Registry>, http: HttpMetrics) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(AdminState { health, registry })
        .layer(middleware::from_fn_with_state(http, observe))
}

/// Serves the admin router on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt as _;

    async fn get(router: &Router, path: &str) -> (u16, String) {
        let req = Request::builder()
            .uri(path)
            .body(Body::empty())
            .unwrap_or_default();
        let resp = router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn the_ready_gauge_says_what_health_ready_answers() {
        let mut registry = Registry::default();
        let http = HttpMetrics::register(&mut registry);
        let health = Health::new(Arc::new(Stores::default()));
        health.register(&mut registry);
        let router = router(Arc::clone(&health), Arc::new(registry), http);

        // Nothing synced and no API answer: 503, and the gauge says 0.
        assert_eq!(get(&router, "/health/ready").await.0, 503);
        let (status, text) = get(&router, "/metrics").await;
        assert_eq!(status, 200);
        assert!(text.contains("\nprodready_ready 0\n"), "{text}");
        assert!(
            text.contains("# HELP prodready_ready 1 while this replica is ready"),
            "{text}"
        );
        // The API answering is not enough while the caches are unsynced.
        health.set_api(Ok(()));
        assert!(
            get(&router, "/metrics")
                .await
                .1
                .contains("\nprodready_ready 0\n")
        );
    }
}
