//! Metric families shared across components. Each component registers its own families on
//! the one [`Registry`] at start-up (`XMetrics::register(&mut registry)`); label values are
//! bounded (`&'static str` categories, enums), never object names.

use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `http_server_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRequestLabels {
    /// The route template (e.g. `/validate`), never the raw path.
    pub route: &'static str,
    /// The HTTP method, bounded by `method_label` (`OTHER` for the unusual ones).
    pub method: &'static str,
    /// The response status code (413 for oversized reviews, 400 for malformed ones).
    pub status: u16,
}

/// Labels of `http_server_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRouteLabels {
    /// The route template.
    pub route: &'static str,
    /// The HTTP method.
    pub method: &'static str,
}

/// Request counts and latencies of prodready's HTTP servers (admin and webhook).
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<HttpRequestLabels, Counter>,
    duration: Family<HttpRouteLabels, Histogram>,
}

/// Buckets from 100 µs to ~3.3 s: admission reviews are sub-millisecond, timeouts are seconds.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl HttpMetrics {
    /// Registers `http_server_requests_total` and `http_server_request_duration_seconds`.
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<HttpRequestLabels, Counter>::default();
        let duration = Family::<HttpRouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_server_requests",
            "HTTP requests served, by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_server_request_duration_seconds",
            "HTTP request latency, by route and method",
            duration.clone(),
        );
        HttpMetrics { requests, duration }
    }

    /// Times one request into `http_server_request_duration_seconds` until the guard drops.
    pub fn timer(&self, route: &'static str, method: &'static str) -> Timer {
        Timer::start(
            self.duration
                .get_or_create(&HttpRouteLabels { route, method })
                .clone(),
        )
    }

    /// Counts one served request.
    pub fn count(&self, route: &'static str, method: &'static str, status: u16) {
        self.requests
            .get_or_create(&HttpRequestLabels {
                route,
                method,
                status,
            })
            .inc();
    }
}

/// A drop guard that observes, into its histogram, the time since it was started plus any
/// time already spent before: durations are recorded on every path out of a scope, early
/// returns and `?` included.
#[must_use = "the duration is recorded when the timer is dropped"]
#[derive(Debug)]
pub struct Timer {
    histogram: Histogram,
    started: Instant,
    already: Duration,
}

impl Timer {
    /// Starts timing into `histogram` (a handle: histograms share their buckets on clone).
    pub fn start(histogram: Histogram) -> Self {
        Timer::after(histogram, Duration::ZERO)
    }

    /// Starts timing, counting `already` as spent (work measured elsewhere before this scope).
    pub fn after(histogram: Histogram, already: Duration) -> Self {
        Timer {
            histogram,
            started: Instant::now(),
            already,
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.histogram
            .observe((self.already + self.started.elapsed()).as_secs_f64());
    }
}

/// Normalizes an HTTP method to a bounded label value.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}
