use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Severity, WorkloadKind};

/// What the operator last observed for this policy. Written only by the elected leader.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductionPolicyStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`: the policy is valid and was evaluated. `Compliant`: no matched workload has a
    /// failing rule. `Degraded`: some rule could not be evaluated (the reason says why, for
    /// example a missing ServiceMonitor CRD).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// Exact counts over every matched workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<PolicySummary>,

    /// Failing workloads per rule, exact, most severe rule first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleCount>,

    /// The most severe violations, bounded (default 100); `summary` stays exact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<ViolationRef>,

    /// True when `violations` was cut to its bound.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub violations_truncated: bool,

    /// Exemptions that expire within seven days, soonest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expiring_exemptions: Vec<ExpiringExemption>,

    /// When the policy was last evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluation_time: Option<Time>,
}

/// Exact counts of matched workloads by verdict.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicySummary {
    /// Workloads this policy matches.
    pub matched: u32,
    /// Matched workloads where every enabled rule passed (or did not apply).
    pub compliant: u32,
    /// Matched workloads with at least one failing rule.
    pub violating: u32,
    /// Matched workloads whose only would-be failures are exempt.
    pub exempt: u32,
    /// Matched workloads with no failure but at least one rule that could not be judged.
    pub unknown: u32,
}

/// How many workloads fail one rule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleCount {
    /// The rule id.
    pub rule: String,
    /// The severity the rule reports at under this policy.
    pub severity: Severity,
    /// Workloads failing the rule.
    pub violations: u32,
}

/// One failing (workload, rule) pair.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViolationRef {
    /// The workload's kind.
    pub kind: WorkloadKind,
    /// The workload's namespace.
    pub namespace: String,
    /// The workload's name.
    pub name: String,
    /// The failing rule id.
    pub rule: String,
    /// The finding's severity.
    pub severity: Severity,
    /// The container concerned, where the rule is per container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// What is wrong, in one line.
    pub message: String,
    /// Containers whose findings for this rule an exemption naming them covers: shown so the
    /// failure above is read as being about the other containers only. Never counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub exempt_containers: Vec<ExemptContainer>,
}

/// A container whose finding an exemption covers, beside a failure of other containers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExemptContainer {
    /// The container's name.
    pub container: String,
    /// Index of the exemption in `spec.exemptions`.
    pub exemption: u32,
    /// The exemption's reason.
    pub reason: String,
    /// When the exemption stops applying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Time>,
}

/// An exemption that stops applying soon.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpiringExemption {
    /// Index of the exemption in `spec.exemptions`, or absent for an annotation exemption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// The workload, for an annotation exemption, as `Kind/namespace/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// The rules it covers.
    pub rules: Vec<String>,
    /// Its stated reason.
    pub reason: String,
    /// When it stops applying.
    pub expires: Time,
}
