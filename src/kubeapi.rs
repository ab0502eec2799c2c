//! Every request prodready makes to the API server goes through [`ApiCalls::call`]: a
//! per-attempt timeout, retries of transient failures (5xx, 429 honouring the server's
//! `retryAfterSeconds`, timeouts, connection errors) with capped exponential backoff and full
//! jitter, no retry of other 4xx, and the `dependency_*` metrics for each attempt.
//!
//! Watch streams are not requests: the reflectors' own backoff handles them.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::error::Categorized;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::flags::format_duration;
use crate::metrics::Timer;

/// The `dep` label of the API server.
pub const KUBE_APISERVER: &str = "kube-apiserver";

/// Labels of `dependency_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DependencyLabels {
    /// The dependency (`kube-apiserver`).
    pub dep: &'static str,
    /// The operation (`list_events`, `patch_status`, `get_lease`, …).
    pub op: &'static str,
    /// `ok`, an HTTP status code, `timeout` or `transport`.
    pub status: &'static str,
}

/// Labels of `dependency_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DependencyOpLabels {
    /// Always `kube-apiserver` today; a label so other dependencies can join the family.
    pub dep: &'static str,
    /// The operation (`get_lease`, `patch_status`, …).
    pub op: &'static str,
}

/// Counts and latencies of calls to the API server.
#[derive(Clone, Debug)]
pub struct DependencyMetrics {
    requests: Family<DependencyLabels, Counter>,
    duration: Family<DependencyOpLabels, Histogram>,
}

impl DependencyMetrics {
    /// Registers `dependency_requests_total` and `dependency_request_duration_seconds`.
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<DependencyLabels, Counter>::default();
        let duration = Family::<DependencyOpLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.001, 2.0, 15))) as fn() -> Histogram,
        );
        registry.register(
            "dependency_requests",
            "Requests to dependencies, by dependency, operation and outcome",
            requests.clone(),
        );
        registry.register(
            "dependency_request_duration_seconds",
            "Latency of requests to dependencies, by dependency and operation",
            duration.clone(),
        );
        DependencyMetrics { requests, duration }
    }

    fn count(&self, op: &'static str, status: &'static str) {
        self.requests
            .get_or_create(&DependencyLabels {
                dep: KUBE_APISERVER,
                op,
                status,
            })
            .inc();
    }

    fn timer(&self, op: &'static str) -> Timer {
        Timer::start(
            self.duration
                .get_or_create(&DependencyOpLabels {
                    dep: KUBE_APISERVER,
                    op,
                })
                .clone(),
        )
    }
}

/// A failed API call, after retries.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The attempt did not finish within the timeout (`--api-timeout`; probes cap it at 5 s,
    /// so the message names the limit that ran out, not the flag's value).
    #[error(
        "the API server did not answer within {limit} when prodready tried to {doing}; check that it is up and reachable from here, or raise --api-timeout if it is only slow",
        limit = format_duration(*timeout),
        doing = action(op)
    )]
    Timeout {
        /// The operation (`get_lease`, `patch_status`, …), a bounded metric label.
        op: &'static str,
        /// The per-attempt timeout that ran out (`--api-timeout`).
        timeout: Duration,
    },
    /// The API server (or the connection to it) failed.
    #[error("cannot {}: {}", action(op), describe(source))]
    Kube {
        /// The operation (`get_lease`, `patch_status`, …), a bounded metric label.
        op: &'static str,
        /// kube's error; shown through [`describe`], never its Debug form.
        #[source]
        source: kube::Error,
    },
}

impl Categorized for ApiError {
    fn category(&self) -> &'static str {
        match self {
            ApiError::Timeout { .. } => "timeout",
            ApiError::Kube { source, .. } => status_label(source),
        }
    }
}

impl ApiError {
    /// The operation that failed (`create_webhook_secret`, `get_lease`, …).
    pub fn op(&self) -> &'static str {
        match self {
            ApiError::Timeout { op, .. } | ApiError::Kube { op, .. } => op,
        }
    }

    /// The HTTP status code the API server answered with, if it answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            ApiError::Kube {
                source: kube::Error::Api(s),
                ..
            } => Some(s.code),
            _ => None,
        }
    }

    /// Whether the API server refused a create because the namespace is being deleted
    /// (403 "unable to create new content in namespace … because it is being terminated"):
    /// nothing to retry, the object goes with its namespace.
    pub fn namespace_terminating(&self) -> bool {
        match self {
            ApiError::Kube {
                source: kube::Error::Api(s),
                ..
            } => s.code == 403 && s.message.contains("because it is being terminated"),
            _ => false,
        }
    }
}

/// What an operation does, in words, for messages (the operation ids are metric labels).
pub fn action(op: &str) -> std::borrow::Cow<'static, str> {
    let words = match op {
        "apply_report" => "write a policy report",
        "create_event" => "create an Event",
        "create_lease" => "create the leader Lease",
        "create_webhook_secret" => "create the webhook certificate Secret",
        "delete_report" => "delete a policy report",
        "discover_monitoring" => {
            "look up the monitoring.coreos.com/v1 API (ServiceMonitor, PodMonitor)"
        }
        "discover_policies" => "look up the prodready.dev/v1alpha1 API (ProductionPolicy)",
        "discover_reports" => "look up the policy report API (--reports)",
        "get_lease" => "read the leader Lease",
        "get_owner_deployment" => "read the operator's own Deployment (--owner-deployment)",
        "get_version" => "read the API server's version",
        "get_webhook_configuration" => "read the ValidatingWebhookConfiguration",
        "get_webhook_secret" => "read the webhook certificate Secret",
        "list_events" => "list Events",
        "patch_status" => "write a ProductionPolicy's status",
        "patch_webhook_configuration" => {
            "inject the CA bundle into the ValidatingWebhookConfiguration"
        }
        "probe_streaming_list" => "probe whether the API server serves streaming lists",
        "replace_lease" => "renew the leader Lease",
        "replace_webhook_secret" => "renew the webhook certificate Secret",
        other => return format!("make the {} request", other.replace('_', " ")).into(),
    };
    words.into()
}

/// One line for a person: the API server's own code, reason and message, never a Debug dump
/// (kube's `Display` of an API error appends the whole `Status` structure).
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.reason.is_empty() => {
            format!("the API server answered {}: {}", s.code, s.message)
        }
        kube::Error::Api(s) => format!(
            "the API server answered {} {}: {}",
            s.code, s.reason, s.message
        ),
        other => with_causes(other),
    }
}

/// An error and its causes in one line (`client error (Connect): tcp connect error: Connection
/// refused (os error 111)`): transport errors keep the cause a person can act on two or three
/// sources down. A cause whose text the line already holds is skipped.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// How messages name the kubeconfig read when no `--kubeconfig` is given: `$KUBECONFIG`
/// with its value, else `~/.kube/config`.
pub fn default_kubeconfig() -> String {
    match std::env::var("KUBECONFIG") {
        Ok(v) if !v.is_empty() => format!("$KUBECONFIG ({v})"),
        _ => "~/.kube/config".to_owned(),
    }
}

/// Why a kubeconfig cannot be read or used, as the end of a sentence that already names the
/// file: kube's own words, without the Debug-quoted path it puts in read errors.
pub fn describe_kubeconfig(e: &kube::config::KubeconfigError) -> String {
    use kube::config::KubeconfigError as K;
    match e {
        K::ReadConfig(io, _) => io.to_string(),
        K::LoadContext(context) => format!("it has no context \"{context}\""),
        K::LoadClusterOfContext(cluster) => {
            format!("the context names the cluster \"{cluster}\", which it does not define")
        }
        K::CurrentContextNotSet => {
            "it sets no current-context (give --context NAME to choose one)".to_owned()
        }
        K::LoadCertificateAuthority(d) => format!(
            "the certificate authority of its cluster cannot be loaded: {}",
            describe_load_data(d)
        ),
        K::LoadClientCertificate(d) => format!(
            "the client certificate of its user cannot be loaded: {}",
            describe_load_data(d)
        ),
        K::LoadClientKey(d) => format!(
            "the client key of its user cannot be loaded: {}",
            describe_load_data(d)
        ),
        other => other.to_string(),
    }
}

fn describe_load_data(e: &kube::config::LoadDataError) -> String {
    match e {
        kube::config::LoadDataError::ReadFile(io, path) => {
            format!("cannot read {}: {io}", path.display())
        }
        other => other.to_string(),
    }
}

/// The contexts a kubeconfig defines, for a message (`none` when it defines none).
pub fn context_names(kc: &kube::config::Kubeconfig) -> String {
    let names: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Whether `context` is one the kubeconfig defines.
pub fn has_context(kc: &kube::config::Kubeconfig, context: &str) -> bool {
    kc.contexts.iter().any(|c| c.name == context)
}

fn status_label(e: &kube::Error) -> &'static str {
    match e {
        kube::Error::Api(s) => match s.code {
            400 => "400",
            401 => "401",
            403 => "403",
            404 => "404",
            409 => "409",
            410 => "410",
            422 => "422",
            429 => "429",
            500 => "500",
            502 => "502",
            503 => "503",
            504 => "504",
            c if c >= 500 => "5xx",
            c if c >= 400 => "4xx",
            _ => "other",
        },
        _ => "transport",
    }
}

/// Whether an error is worth retrying, and how long the server asked us to wait.
fn transient(e: &ApiError) -> Option<Option<Duration>> {
    match e {
        ApiError::Timeout { .. } => Some(None),
        ApiError::Kube { source, .. } => match source {
            kube::Error::Api(s) if s.code == 429 => {
                let after = s
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|s| *s > 0)
                    .map(|s| Duration::from_secs(u64::from(s.min(30))));
                Some(after)
            }
            kube::Error::Api(s) if s.code >= 500 => Some(None),
            kube::Error::Api(_) => None,
            kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
                Some(None)
            }
            _ => None,
        },
    }
}

/// The retry policy: attempts and backoff bounds.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Timeout of one attempt.
    pub timeout: Duration,
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// The ceiling of the first backoff (each retry doubles it, full jitter below it).
    pub base: Duration,
    /// The highest ceiling a backoff reaches.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            timeout: Duration::from_secs(10),
            attempts: 4,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The backoff before retry number `retry` (0-based): full jitter over
    /// `min(cap, base * 2^retry)`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << retry.min(16))
            .min(self.cap);
        let ms = u64::try_from(ceiling.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        Duration::from_millis(jitter() % (ms + 1))
    }
}

/// A random number in `[0, 1)` for jittering waits elsewhere (e.g. the webhook's certificate
/// retries).
pub fn random_unit() -> f64 {
    // The top 53 bits fill an f64 mantissa exactly.
    (jitter() >> 11) as f64 / (1u64 << 53) as f64
}

/// A random number without a dependency: the std hasher is randomly keyed per instance.
fn jitter() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Makes API calls with timeouts, retries and metrics.
#[derive(Clone, Debug)]
pub struct ApiCalls {
    metrics: DependencyMetrics,
    policy: RetryPolicy,
}

impl ApiCalls {
    /// Calls with the default retry policy.
    pub fn new(metrics: DependencyMetrics) -> Self {
        ApiCalls {
            metrics,
            policy: RetryPolicy::default(),
        }
    }

    /// Calls with a given retry policy.
    pub fn with_policy(metrics: DependencyMetrics, policy: RetryPolicy) -> Self {
        ApiCalls { metrics, policy }
    }

    /// One attempt, no retry (for probes and lease renewals, which have their own cadence).
    pub async fn once<T, Fut>(&self, op: &'static str, fut: Fut) -> Result<T, ApiError>
    where
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let _timer = self.metrics.timer(op);
        let result = match tokio::time::timeout(self.policy.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(ApiError::Kube { op, source }),
            Err(_) => Err(ApiError::Timeout {
                op,
                timeout: self.policy.timeout,
            }),
        };
        let status = match &result {
            Ok(_) => "ok",
            Err(e) => e.category(),
        };
        self.metrics.count(op, status);
        result
    }

    /// Calls `f` until it succeeds, fails permanently, or the attempts run out.
    pub async fn call<T, F, Fut>(&self, op: &'static str, mut f: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let mut retry = 0;
        loop {
            match self.once(op, f()).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let Some(after) = transient(&e) else {
                        return Err(e);
                    };
                    if retry + 1 >= self.policy.attempts {
                        return Err(e);
                    }
                    let wait = after.unwrap_or_else(|| self.policy.backoff(retry));
                    tracing::warn!(op, error = %e, retry = retry + 1, wait_ms = wait.as_millis() as u64, "retrying API request");
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    #[test]
    fn a_timeout_names_the_flag_its_value_and_the_action_in_words() {
        let e = ApiError::Timeout {
            op: "get_version",
            timeout: Duration::from_millis(1500),
        };
        assert_eq!(
            e.to_string(),
            "the API server did not answer within 1.5s when prodready tried to read the API server's version; check that it is up and reachable from here, or raise --api-timeout if it is only slow"
        );
        let e = ApiError::Timeout {
            op: "some_new_call",
            timeout: Duration::from_secs(10),
        };
        assert!(
            e.to_string()
                .contains("tried to make the some new call request; "),
            "{e}"
        );
    }

    #[test]
    fn a_failed_request_says_what_was_asked_and_the_api_servers_words() {
        let e = ApiError::Kube {
            op: "patch_status",
            source: kube::Error::Api(Box::new(Status {
                code: 422,
                reason: "Invalid".into(),
                message: "status.conditions: Invalid value".into(),
                ..Status::default()
            })),
        };
        assert_eq!(
            e.to_string(),
            "cannot write a ProductionPolicy's status: the API server answered 422 Invalid: status.conditions: Invalid value"
        );
    }

    #[test]
    fn kubeconfig_errors_name_no_debug_paths() {
        let e = kube::config::Kubeconfig::read_from("/no/such/kubeconfig")
            .err()
            .map(|e| describe_kubeconfig(&e))
            .unwrap_or_default();
        assert!(e.starts_with("No such file or directory"), "{e}");
        let e = describe_kubeconfig(&kube::config::KubeconfigError::LoadContext("prod".into()));
        assert_eq!(e, "it has no context \"prod\"");
    }

    #[test]
    fn causes_are_appended_once() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let outer = std::io::Error::other(inner);
        // `other` displays as its source: nothing is repeated.
        assert_eq!(with_causes(&outer), "refused");
    }

    fn api(code: u16) -> ApiError {
        ApiError::Kube {
            op: "x",
            source: kube::Error::Api(Box::new(Status {
                code,
                ..Status::default()
            })),
        }
    }

    #[test]
    fn classifies_transient_errors() {
        assert!(transient(&api(500)).is_some());
        assert!(transient(&api(503)).is_some());
        assert!(transient(&api(429)).is_some());
        assert!(transient(&api(404)).is_none());
        assert!(transient(&api(409)).is_none());
        assert!(transient(&api(403)).is_none());
        let t = ApiError::Timeout {
            op: "x",
            timeout: Duration::from_secs(1),
        };
        assert!(transient(&t).is_some());
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = RetryPolicy::default();
        for retry in 0..20 {
            assert!(p.backoff(retry) <= p.cap);
        }
        assert!(p.backoff(0) <= p.base);
    }

    #[tokio::test]
    async fn retries_5xx_then_succeeds_but_not_4xx() {
        let mut registry = Registry::default();
        let calls = ApiCalls::with_policy(
            DependencyMetrics::register(&mut registry),
            RetryPolicy {
                base: Duration::from_millis(1),
                cap: Duration::from_millis(2),
                ..RetryPolicy::default()
            },
        );
        let mut n = 0;
        let r = calls
            .call("get_thing", || {
                n += 1;
                let fail = n < 3;
                async move {
                    if fail {
                        Err(kube::Error::Api(Box::new(Status {
                            code: 503,
                            ..Status::default()
                        })))
                    } else {
                        Ok(7)
                    }
                }
            })
            .await;
        assert_eq!(r.ok(), Some(7));
        assert_eq!(n, 3);

        let mut m = 0;
        let r: Result<(), _> = calls
            .call("get_thing", || {
                m += 1;
                async {
                    Err(kube::Error::Api(Box::new(Status {
                        code: 404,
                        ..Status::default()
                    })))
                }
            })
            .await;
        assert_eq!(r.err().and_then(|e| e.code()), Some(404));
        assert_eq!(m, 1);

        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap_or_default();
        assert!(
            text.contains(
                r#"dependency_requests_total{dep="kube-apiserver",op="get_thing",status="503"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"dependency_requests_total{dep="kube-apiserver",op="get_thing",status="ok"} 1"#
        ));
        assert!(text.contains(
            r#"dependency_requests_total{dep="kube-apiserver",op="get_thing",status="404"} 1"#
        ));
    }
}
