use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ProductionPolicyStatus, RulesSpec};

/// ProductionPolicy declares what "production ready" means for the workloads it matches:
/// which rules apply, how strictly (Audit, Warn or Enforce at admission), and which
/// workloads are exempt, for what reason and until when.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "prodready.dev",
    version = "v1alpha1",
    kind = "ProductionPolicy",
    plural = "productionpolicies",
    shortname = "ppol",
    category = "prodready",
    doc = "ProductionPolicy declares what production ready means for the workloads it matches: the rules that apply, how strictly they are enforced at admission, and which workloads are exempt, why, and until when.",
    status = "ProductionPolicyStatus",
    printcolumn = r#"{"name":"Action","type":"string","jsonPath":".spec.enforcement.action","description":"What admission does with findings: Audit, Warn or Enforce"}"#,
    printcolumn = r#"{"name":"Matched","type":"integer","jsonPath":".status.summary.matched","description":"Workloads this policy matches"}"#,
    printcolumn = r#"{"name":"Violating","type":"integer","jsonPath":".status.summary.violating","description":"Matched workloads with at least one failing rule"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status","description":"Whether the policy is valid and was evaluated"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ProductionPolicySpec {
    /// The built-in profile the rule settings start from: `baseline` (the catalog defaults)
    /// or `strict` (every rule on). Settings under `rules` override the profile per rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,

    /// Which workloads this policy applies to. An empty match selects every supported
    /// workload kind in every namespace.
    #[serde(default, rename = "match")]
    pub match_: MatchSpec,

    /// What happens when a matched workload violates a rule: only report (Audit), warn the
    /// deployer at admission (Warn), or deny at admission (Enforce).
    #[serde(default)]
    pub enforcement: EnforcementSpec,

    /// Per-rule settings: whether each rule is enabled, at which severity it reports, and the
    /// rule's own parameters. Rules left out keep the profile's setting.
    #[serde(default)]
    pub rules: RulesSpec,

    /// Workloads that are exempt from some or all rules, each with a required reason and an
    /// optional expiry after which the exemption stops applying.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = 256))]
    pub exemptions: Vec<Exemption>,

    /// When true, workloads may exempt themselves with the annotations
    /// `prodready.dev/exempt` (comma-separated rule ids or `*`), `prodready.dev/exempt-reason`
    /// (required) and `prodready.dev/exempt-until` (optional RFC 3339 instant). When false
    /// (the default) such annotations are ignored, so owners cannot grant themselves exemptions.
    #[serde(default)]
    pub allow_annotation_exemptions: bool,
}

/// A built-in set of rule defaults.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The catalog defaults: the rules most production incidents come from.
    #[default]
    Baseline,
    /// Every rule on, at its catalog severity.
    Strict,
}

impl Profile {
    /// The profile's name as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Baseline => "baseline",
            Profile::Strict => "strict",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Selects the workloads a policy applies to. All given criteria must hold.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchSpec {
    /// Workload kinds to check. Empty means every supported kind: Deployment, StatefulSet,
    /// DaemonSet, ReplicaSet, Job, CronJob and Pod. A ReplicaSet a Deployment controls, a Pod
    /// any controller owns and a Job a CronJob controls are judged at their owner, not on
    /// their own (the Jobs of a CronJob are read by `cronjob-health`). Deployments,
    /// StatefulSets, DaemonSets and CronJobs are judged whoever controls them (another
    /// operator's custom resource included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<WorkloadKind>,

    /// Only namespaces whose labels match this selector. Empty or absent selects all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// Only these namespaces, by name. Empty means all namespaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,

    /// Namespaces never checked, by name (for example `kube-system`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_namespaces: Vec<String>,

    /// Only workloads whose own labels match this selector. Empty or absent selects all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// The workload kinds prodready understands.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum WorkloadKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
    /// batch/v1 Job.
    Job,
    /// batch/v1 CronJob.
    CronJob,
    /// v1 Pod.
    Pod,
}

impl WorkloadKind {
    /// Every kind, in a stable order.
    pub const ALL: [WorkloadKind; 7] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::ReplicaSet,
        WorkloadKind::Job,
        WorkloadKind::CronJob,
        WorkloadKind::Pod,
    ];

    /// The kind's name as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::Job => "Job",
            WorkloadKind::CronJob => "CronJob",
            WorkloadKind::Pod => "Pod",
        }
    }

    /// The apiVersion the workload kinds are served at (and Events refer to them by).
    pub fn api_version(self) -> &'static str {
        match self {
            WorkloadKind::Deployment
            | WorkloadKind::StatefulSet
            | WorkloadKind::DaemonSet
            | WorkloadKind::ReplicaSet => "apps/v1",
            WorkloadKind::Job | WorkloadKind::CronJob => "batch/v1",
            WorkloadKind::Pod => "v1",
        }
    }

    /// Parses a kind name as Kubernetes spells it.
    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// Workloads that run until stopped (as opposed to run-to-completion Jobs and CronJobs).
    pub fn is_long_running(self) -> bool {
        !matches!(self, WorkloadKind::Job | WorkloadKind::CronJob)
    }
}

/// `Kind/namespace/name`: how reports, Event deduplication and the webhook's warnings name a
/// workload. One builder, so the key the controller remembers an Event under and the key it
/// reads back from the Event's involvedObject always agree.
pub fn workload_key(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}/{namespace}/{name}")
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How findings are acted on at admission time.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.enforceAfter) || self.action != 'Audit'",
     "message": "enforceAfter ramps Warn to Enforce; it cannot be used with action Audit"}
]))]
pub struct EnforcementSpec {
    /// Audit: report in status, metrics and Events only. Warn: also return admission
    /// warnings to the deployer. Enforce: deny admission of workloads with findings at or
    /// above `denyAtOrAbove` (lower findings still come back as warnings).
    #[serde(default)]
    pub action: EnforcementAction,

    /// An RFC 3339 instant from which the policy enforces. Before it, the policy warns.
    /// Lets admins announce a date and ramp from Warn to Enforce without a second edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_after: Option<Time>,

    /// In Enforce mode, only findings at or above this severity deny admission.
    #[serde(default)]
    pub deny_at_or_above: Severity,
}

/// What admission does with findings.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum EnforcementAction {
    /// Report only (status, metrics, Events); admission is never affected.
    Audit,
    /// Admit, and return one warning per finding to the client (kubectl prints them).
    #[default]
    Warn,
    /// Deny admission for findings at or above `denyAtOrAbove`.
    Enforce,
}

impl EnforcementAction {
    /// The action's name as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementAction::Audit => "Audit",
            EnforcementAction::Warn => "Warn",
            EnforcementAction::Enforce => "Enforce",
        }
    }
}

/// How serious a finding is.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth fixing; rarely the cause of an outage on its own.
    Low,
    /// Makes an incident likelier or longer.
    Medium,
    /// A common, direct cause of outages or failed rollouts.
    #[default]
    High,
    /// A security exposure or data loss waiting to happen.
    Critical,
}

impl Severity {
    /// Every severity, most severe first.
    pub const DESCENDING: [Severity; 4] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];

    /// The severity's name as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses a severity name (lowercase).
    pub fn parse(s: &str) -> Option<Self> {
        Self::DESCENDING.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Exempts matching workloads from some rules, for a stated reason and optionally until an
/// instant. A workload matches when every given criterion holds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.reason.trim().size() > 0", "message": "an exemption needs a non-empty reason"},
    {"rule": "self.rules.all(r, r == '*' || r in ['liveness-probe','readiness-probe','distinct-probes','startup-probe','resource-requests','memory-limit','cpu-limit','image-pinned','image-digest','allowed-registries','cronjob-single-runner','cronjob-health','leader-lease','service-monitor','graceful-shutdown','replicas-ha','disruption-budget','topology-spread','rollout-history','secret-literal-env','security-context','network-policy'])",
     "message": "unknown rule id in exemption rules; `prodready rules` lists the ids (or use \"*\")"},
    {"rule": "!has(self.containers) || self.containers.all(c, c.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))",
     "message": "each name in containers must be a container name: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (a DNS-1123 label)"},
    {"rule": "!has(self.containers) || self.containers.all(c, self.containers.exists_one(d, d == c))",
     "message": "containers names the same container more than once; list each name once"}
]))]
pub struct Exemption {
    /// Rule ids this exemption covers, or `["*"]` for every rule.
    #[schemars(length(min = 1, max = 32))]
    pub rules: Vec<String>,

    /// Namespaces this exemption covers. Empty means any namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,

    /// Workload names this exemption covers. Empty means any name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,

    /// Only workloads whose labels match this selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,

    /// Container names this exemption covers (e.g. an injected `istio-proxy` or
    /// `linkerd-proxy` sidecar; init containers and native sidecars by their names too).
    /// Empty means the whole workload. When given, only findings about these containers are
    /// exempt: they are still reported, as exempt with this exemption's reason and expiry,
    /// while findings about other containers and about the workload as a whole still fail.
    /// A name no container of the pod has exempts nothing. Each name is a DNS-1123 label,
    /// listed once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 63)))]
    pub containers: Vec<String>,

    /// Why the exemption exists (shown in reports and status). Required.
    #[schemars(length(max = 512))]
    pub reason: String,

    /// An RFC 3339 instant after which the exemption no longer applies. Status lists
    /// exemptions that expire within seven days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Time>,
}
