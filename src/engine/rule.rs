//! The rule interface: what a rule reads ([`Check`]: the workload, the context, its
//! [`Params`] and `now`), what it returns ([`Verdict`] of [`Violation`]s) and how the catalog
//! describes it ([`RuleDef`]). The engine owns the interface; the rules in `crate::rules`
//! implement it and their catalog is handed to policy compilation, so the engine never
//! depends on the rules.

use k8s_openapi::jiff::Timestamp;

use super::autoscaler::{self, Autoscaler};
use super::{Context, Workload};
use crate::api::Severity;

/// One thing wrong with a workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The container concerned, for per-container rules.
    pub container: Option<String>,
    /// What is wrong, in one line.
    pub message: String,
    /// How to fix it, in a few words.
    pub remediation: String,
}

impl Violation {
    /// A violation of the whole workload.
    pub fn workload(message: impl Into<String>, remediation: impl Into<String>) -> Self {
        Violation {
            container: None,
            message: message.into(),
            remediation: remediation.into(),
        }
    }

    /// A violation of one container.
    pub fn container(
        container: &str,
        message: impl Into<String>,
        remediation: impl Into<String>,
    ) -> Self {
        Violation {
            container: Some(container.to_owned()),
            message: message.into(),
            remediation: remediation.into(),
        }
    }
}

/// What a rule concluded about one workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The rule holds.
    Pass,
    /// The rule does not concern this workload (e.g. probes on a Job).
    NotApplicable,
    /// The rule cannot decide; the reason says why (never a silent pass).
    Unknown(String),
    /// The rule fails, once per violation (e.g. once per container).
    Fail(Vec<Violation>),
}

impl Verdict {
    /// `Pass` when no violations were found, else `Fail` with them.
    pub fn from_violations(violations: Vec<Violation>) -> Self {
        if violations.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(violations)
        }
    }
}

/// The rules' own parameters, resolved from a policy (defaults filled in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// `startup-probe`: liveness `initialDelaySeconds` above which a startupProbe is needed.
    pub startup_initial_delay_threshold_seconds: i32,
    /// `allowed-registries`: allowed registry prefixes.
    pub allowed_registries: Vec<String>,
    /// `cronjob-single-runner`: accept `concurrencyPolicy: Replace`.
    pub cronjob_allow_replace: bool,
    /// `cronjob-single-runner`: require `startingDeadlineSeconds`.
    pub cronjob_require_starting_deadline: bool,
    /// `cronjob-health`: how many of the last finished runs must all have failed.
    pub cronjob_failed_runs: i32,
    /// `leader-lease`: seconds of tolerance beyond the Lease duration.
    pub lease_grace_seconds: i32,
    /// `replicas-ha`: minimum replicas.
    pub min_replicas: i32,
    /// `service-monitor`: a `prometheus.io/scrape: "true"` annotation counts as coverage.
    pub accept_scrape_annotations: bool,
    /// `secret-literal-env`: extra secret-like name substrings (lowercase).
    pub secret_additional_name_patterns: Vec<String>,
    /// `secret-literal-env`: env var names never treated as secrets.
    pub secret_ignored_names: Vec<String>,
    /// `security-context`: require `readOnlyRootFilesystem: true`.
    pub require_read_only_root_filesystem: bool,
    /// `disruption-budget`: require `unhealthyPodEvictionPolicy: AlwaysAllow` on the budget.
    pub require_unhealthy_pod_eviction_always_allow: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            startup_initial_delay_threshold_seconds: 30,
            allowed_registries: Vec::new(),
            cronjob_allow_replace: false,
            cronjob_require_starting_deadline: true,
            cronjob_failed_runs: 3,
            lease_grace_seconds: 5,
            min_replicas: 2,
            accept_scrape_annotations: false,
            secret_additional_name_patterns: Vec::new(),
            secret_ignored_names: Vec::new(),
            require_read_only_root_filesystem: true,
            require_unhealthy_pod_eviction_always_allow: false,
        }
    }
}

/// Everything a rule may read.
#[derive(Clone, Copy, Debug)]
pub struct Check<'a> {
    /// The workload, decoded once per round and shared by every rule.
    pub workload: &'a Workload,
    /// What cross-object rules read (Services, PDBs, monitors, Leases, Namespaces); it may say
    /// a kind is unavailable, and then the rule answers `Unknown`.
    pub context: &'a Context,
    /// The policy's rule parameters, defaults filled in.
    pub params: &'a Params,
    /// The evaluation instant: rules compare against it and never read the clock.
    pub now: Timestamp,
}

/// How many pods a workload with replicas runs, as the replica-count rules read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaCount<'a> {
    /// The fewest pods it runs: `replicas`, or the autoscalers' lowest `minReplicas`.
    pub min: i32,
    /// The most pods it runs at once: `replicas`, or the autoscalers' highest `maxReplicas`.
    pub max: i32,
    /// The HorizontalPodAutoscalers that scale it, by name (empty when none does).
    pub autoscalers: Vec<&'a Autoscaler>,
}

impl ReplicaCount<'_> {
    /// `n replicas`, or `minReplicas n of HorizontalPodAutoscaler "x"` when autoscaled: how
    /// messages name the count the rule judged.
    pub fn describe_min(&self) -> String {
        let n = self.min;
        let noun = if n == 1 { "replica" } else { "replicas" };
        match self.autoscalers.as_slice() {
            [] => format!("{n} {noun}"),
            [one] => format!(
                "minReplicas {n} of HorizontalPodAutoscaler \"{}\"",
                one.name
            ),
            several => format!(
                "minReplicas {n} of HorizontalPodAutoscalers {}",
                autoscaler::names(several)
            ),
        }
    }
}

impl<'a> Check<'a> {
    /// The replica count of a Deployment, StatefulSet or ReplicaSet: the bounds of the
    /// HorizontalPodAutoscalers that scale it, else its `replicas`. `None` for other kinds.
    pub fn replica_count(&self) -> Option<ReplicaCount<'a>> {
        let replicas = self.workload.replicas?;
        let autoscalers = self.context.autoscalers_of(self.workload);
        let (min, max) = autoscaler::bounds(&autoscalers).unwrap_or((replicas, replicas));
        Some(ReplicaCount {
            min,
            max,
            autoscalers,
        })
    }
}

/// A rule of the catalog.
#[derive(Debug)]
pub struct RuleDef {
    /// The stable, kebab-case id (an API: never renamed).
    pub id: &'static str,
    /// What the rule checks, in one line.
    pub summary: &'static str,
    /// The production-engineering rubric items the rule comes from (e.g. `F7`).
    pub rubric: &'static str,
    /// Whether the baseline profile enables it.
    pub default_enabled: bool,
    /// Its severity unless a policy overrides it.
    pub default_severity: Severity,
    /// Why it matters, in a short paragraph.
    pub rationale: &'static str,
    /// An example fix, as a YAML fragment.
    pub example: &'static str,
    /// What exactly it checks, and when it answers not-applicable or unknown: the rule's page.
    pub checks: &'static str,
    /// A manifest that fails it and one that passes it (a test runs both).
    pub examples: Examples,
    /// The check: pure, never logs, never reads the clock, never does IO.
    pub check: fn(&Check<'_>) -> Verdict,
}

/// Two manifests a user could `prodready audit`, kept beside the rule: one the rule fails,
/// one it passes. Each is multi-document YAML carrying whatever other objects the rule reads
/// (a PodDisruptionBudget, a Service, a Lease…). The rule's page shows both with the findings
/// the engine prints, and a test runs them, so neither can drift from the check.
#[derive(Debug)]
pub struct Examples {
    /// The rule's settings both are judged with, as the YAML body of `spec.rules.<camelId>`
    /// (empty: the defaults).
    pub settings: &'static str,
    /// A manifest the rule fails.
    pub fail: &'static str,
    /// A manifest the rule passes.
    pub pass: &'static str,
}

impl PartialEq for RuleDef {
    /// Rules are identified by their id.
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for RuleDef {}
