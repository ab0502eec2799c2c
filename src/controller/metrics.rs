//! The controller's metric families. Labels are policy names (chosen by the admin, few),
//! namespaces, rule ids, severities and verdicts — never workload names.

use std::collections::HashSet;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::metrics::Timer;

/// Labels of `prodready_reconcile_total`: `result`, and for errors their `category`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct ResultLabels {
    /// `success`, `invalid` (policy does not compile) or `error` (status write failed).
    pub result: &'static str,
    /// The error's [`Categorized::category`](crate::error::Categorized) (`timeout`, `403` …);
    /// only errors have one, and the label is left out otherwise.
    pub category: Option<&'static str>,
}

impl EncodeLabelSet for ResultLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        let mut labels = vec![("result", self.result)];
        if let Some(category) = self.category {
            labels.push(("category", category));
        }
        labels.encode(encoder)
    }
}

/// Labels of `prodready_violations`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViolationLabels {
    /// The policy's name (admins create few: a bounded label).
    pub policy: String,
    /// The workloads' namespace.
    pub namespace: String,
    /// The rule id (the catalog is fixed: bounded).
    pub rule: &'static str,
    /// The rule's severity under the policy.
    pub severity: &'static str,
}

/// Labels of `prodready_workloads`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadLabels {
    /// The policy's name.
    pub policy: String,
    /// `compliant`, `violating`, `exempt` or `unknown`.
    pub result: &'static str,
}

/// Labels of `prodready_rounds_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PassLabels {
    /// `full` (every workload evaluated) or `incremental` (only what changed).
    pub pass: &'static str,
}

/// Reconcile counts and durations, violation and workload gauges, rounds.
#[derive(Clone, Debug)]
pub struct ControllerMetrics {
    rounds: Family<PassLabels, Counter>,
    evaluated: Counter,
    reconciles: Family<ResultLabels, Counter>,
    duration: Histogram,
    violations: Family<ViolationLabels, Gauge>,
    workloads: Family<WorkloadLabels, Gauge>,
}

impl ControllerMetrics {
    /// Registers the controller's families.
    pub fn register(registry: &mut Registry) -> Self {
        let m = ControllerMetrics {
            rounds: Family::default(),
            evaluated: Counter::default(),
            reconciles: Family::default(),
            duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            violations: Family::default(),
            workloads: Family::default(),
        };
        registry.register(
            "prodready_rounds",
            "Evaluation rounds, by pass: full (every workload) or incremental (only what changed)",
            m.rounds.clone(),
        );
        registry.register(
            "prodready_round_evaluated_workloads",
            "Workloads evaluated by rounds (a full pass counts every workload)",
            m.evaluated.clone(),
        );
        registry.register(
            "prodready_reconcile",
            "Policy evaluations, by result",
            m.reconciles.clone(),
        );
        registry.register(
            "prodready_reconcile_duration_seconds",
            "Time to evaluate one policy over every matching workload and write its status",
            m.duration.clone(),
        );
        registry.register(
            "prodready_violations",
            "Workloads failing a rule, by policy, namespace, rule and severity",
            m.violations.clone(),
        );
        registry.register(
            "prodready_workloads",
            "Matched workloads, by policy and verdict",
            m.workloads.clone(),
        );
        m
    }

    /// Counts one round, full or incremental, that evaluated `workloads`.
    pub fn round(&self, full: bool, workloads: usize) {
        let pass = if full { "full" } else { "incremental" };
        self.rounds.get_or_create(&PassLabels { pass }).inc();
        self.evaluated
            .inc_by(u64::try_from(workloads).unwrap_or(u64::MAX));
    }

    /// Counts one policy evaluation; `category` names an error's kind.
    pub fn reconciled(&self, result: &'static str, category: Option<&'static str>) {
        self.reconciles
            .get_or_create(&ResultLabels { result, category })
            .inc();
    }

    /// Times one policy's evaluation and write into `prodready_reconcile_duration_seconds`
    /// until the guard drops; `evaluated` is the evaluation time measured before.
    pub fn timer(&self, evaluated: Duration) -> Timer {
        Timer::after(self.duration.clone(), evaluated)
    }

    /// Replaces every violation and workload gauge with this round's values, removing the
    /// series that are gone (a namespace fixed, a policy deleted).
    pub fn publish(
        &self,
        violations: &[(ViolationLabels, i64)],
        workloads: &[(WorkloadLabels, i64)],
        previous: &mut (HashSet<ViolationLabels>, HashSet<WorkloadLabels>),
    ) {
        let mut now_v = HashSet::new();
        for (l, n) in violations {
            self.violations.get_or_create(l).set(*n);
            now_v.insert(l.clone());
        }
        for gone in previous.0.difference(&now_v) {
            self.violations.remove(gone);
        }
        let mut now_w = HashSet::new();
        for (l, n) in workloads {
            self.workloads.get_or_create(l).set(*n);
            now_w.insert(l.clone());
        }
        for gone in previous.1.difference(&now_w) {
            self.workloads.remove(gone);
        }
        *previous = (now_v, now_w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_their_category_and_successes_do_not() {
        let mut registry = Registry::default();
        let m = ControllerMetrics::register(&mut registry);
        m.reconciled("success", None);
        m.reconciled("error", Some("timeout"));
        m.round(true, 12);
        m.round(false, 2);
        {
            let _timer = m.timer(Duration::from_secs(2));
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap_or_default();
        assert!(
            text.contains("prodready_reconcile_total{result=\"success\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("prodready_reconcile_total{result=\"error\",category=\"timeout\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("prodready_reconcile_duration_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("prodready_rounds_total{pass=\"full\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("prodready_rounds_total{pass=\"incremental\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("prodready_round_evaluated_workloads_total 14"),
            "{text}"
        );
        // The time measured before the guard counts: the one observation is ≥ 2 s.
        let sum = text
            .lines()
            .find_map(|l| l.strip_prefix("prodready_reconcile_duration_seconds_sum "))
            .and_then(|v| v.parse::<f64>().ok());
        assert!(sum.is_some_and(|s| s >= 2.0), "{text}");
    }
}
