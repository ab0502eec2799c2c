//! The controller's metric families. Labels are policy names (chosen by the admin, few),
//! namespaces, rule ids, severities and verdicts — never workload names.

use std::collections::HashSet;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `prodready_reconcile_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success`, `invalid` (policy does not compile) or `error` (status write failed).
    pub result: &'static str,
}

/// Labels of `prodready_violations`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViolationLabels {
    /// The policy.
    pub policy: String,
    /// The workloads' namespace.
    pub namespace: String,
    /// The rule id.
    pub rule: &'static str,
    /// The rule's severity under the policy.
    pub severity: &'static str,
}

/// Labels of `prodready_workloads`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadLabels {
    /// The policy.
    pub policy: String,
    /// `compliant`, `violating`, `exempt` or `unknown`.
    pub result: &'static str,
}

/// Reconcile counts and durations, violation and workload gauges.
#[derive(Clone, Debug)]
pub struct ControllerMetrics {
    reconciles: Family<ResultLabels, Counter>,
    duration: Histogram,
    violations: Family<ViolationLabels, Gauge>,
    workloads: Family<WorkloadLabels, Gauge>,
}

impl ControllerMetrics {
    /// Registers the controller's families.
    pub fn register(registry: &mut Registry) -> Self {
        let m = ControllerMetrics {
            reconciles: Family::default(),
            duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            violations: Family::default(),
            workloads: Family::default(),
        };
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

    /// Records one policy evaluation.
    pub fn reconciled(&self, result: &'static str, elapsed: Duration) {
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
        self.duration.observe(elapsed.as_secs_f64());
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
