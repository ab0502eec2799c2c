//! The webhook's metric families: reviews by decision, unknown results, reviews admitted
//! before the snapshot synced, and the serving certificate's reloads, expiry and readiness.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::review::Decision;
use crate::api::WorkloadKind;
use crate::metrics::HttpMetrics;

/// Labels of `prodready_admission_reviews_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    /// The workload kind, or `other`.
    pub kind: &'static str,
    /// CREATE, UPDATE, DELETE, CONNECT, or `unknown` when the review could not be read.
    pub operation: &'static str,
    /// allowed, warned, denied or error.
    pub decision: &'static str,
}

/// Labels of `prodready_admission_unknown_results_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    /// The rule id (the catalog is fixed, so the label is bounded).
    pub rule: &'static str,
}

/// Labels of `prodready_webhook_certificate_reloads_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `ok` or `error`.
    pub result: &'static str,
}

/// The webhook's own metric families.
#[derive(Clone, Debug)]
pub struct AdmissionMetrics {
    reviews: Family<ReviewLabels, Counter>,
    unknown: Family<RuleLabels, Counter>,
    not_ready: Counter,
    reloads: Family<ReloadLabels, Counter>,
    cert_expiry: Gauge,
    ready: Gauge,
}

impl AdmissionMetrics {
    /// Registers the admission families.
    pub fn register(registry: &mut Registry) -> Self {
        let m = AdmissionMetrics {
            reviews: Family::default(),
            unknown: Family::default(),
            not_ready: Counter::default(),
            reloads: Family::default(),
            cert_expiry: Gauge::default(),
            ready: Gauge::default(),
        };
        registry.register(
            "prodready_admission_reviews",
            "Admission reviews, by workload kind, operation and decision",
            m.reviews.clone(),
        );
        registry.register(
            "prodready_admission_unknown_results",
            "Rule results at admission that could not decide (returned no warning), by rule",
            m.unknown.clone(),
        );
        registry.register(
            "prodready_admission_not_ready",
            "Reviews admitted unjudged because the policy and context snapshot was not synced yet",
            m.not_ready.clone(),
        );
        registry.register(
            "prodready_webhook_certificate_reloads",
            "Serving certificate (re)loads into the TLS server, by result",
            m.reloads.clone(),
        );
        registry.register(
            "prodready_webhook_certificate_expiry_timestamp_seconds",
            "When the serving certificate in use expires (Unix seconds; 0 when unknown)",
            m.cert_expiry.clone(),
        );
        registry.register(
            "prodready_webhook_ready",
            "1 while the webhook serves with a certificate; 0 while it is still obtaining one (or is disabled)",
            m.ready.clone(),
        );
        m
    }

    /// Records one review.
    pub fn review(&self, kind: &str, operation: &'static str, decision: Decision) {
        self.reviews
            .get_or_create(&ReviewLabels {
                kind: kind_label(kind),
                operation,
                decision: decision.as_str(),
            })
            .inc();
    }

    /// Records rules that could not decide.
    pub fn unknown(&self, rules: &[&'static str]) {
        for rule in rules {
            self.unknown.get_or_create(&RuleLabels { rule }).inc();
        }
    }

    /// Records a review admitted while not synced.
    pub fn not_ready(&self) {
        self.not_ready.inc();
    }

    /// Records whether the webhook serves (has a certificate) or waits for one.
    pub fn ready(&self, serving: bool) {
        self.ready.set(i64::from(serving));
    }

    /// Records a certificate (re)load.
    pub fn reload(&self, ok: bool, not_after_unix: Option<i64>) {
        self.reloads
            .get_or_create(&ReloadLabels {
                result: if ok { "ok" } else { "error" },
            })
            .inc();
        if let Some(t) = not_after_unix {
            self.cert_expiry.set(t);
        }
    }
}

/// Bounds a kind to the workload kinds plus `other`.
pub fn kind_label(kind: &str) -> &'static str {
    WorkloadKind::parse(kind).map_or("other", WorkloadKind::as_str)
}

/// The metric handles the webhook records into.
#[derive(Clone, Debug)]
pub struct WebhookMetrics {
    /// Admission families.
    pub admission: AdmissionMetrics,
    /// `http_server_*` families (shared with the admin server).
    pub http: HttpMetrics,
}
