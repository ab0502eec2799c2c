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
}

impl Health {
    /// Health over these stores; the API is unconfirmed until the first probe.
    pub fn new(stores: Arc<Stores>) -> Arc<Self> {
        Arc::new(Health {
            stores,
            api_ok_at: Mutex::new(None),
            api_error: Mutex::new(None),
        })
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
