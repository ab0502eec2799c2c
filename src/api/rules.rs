use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Severity;

/// Declares a per-rule settings struct: `enabled`, `severity` and the rule's own parameters.
/// Every field is optional so that an absent field means "the profile decides".
macro_rules! rule_settings {
    ($(#[$meta:meta])* $name:ident { $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            /// Whether the rule runs. Absent: the profile decides.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub enabled: Option<bool>,
            /// The severity of this rule's findings. Absent: the catalog severity.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub severity: Option<Severity>,
            $(
                $(#[$fmeta])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: $ty,
            )*
        }

        impl RuleToggle for $name {
            fn enabled(&self) -> Option<bool> {
                self.enabled
            }
            fn severity(&self) -> Option<Severity> {
                self.severity
            }
        }
    };
}

/// The two settings every rule has.
pub trait RuleToggle {
    /// Whether the rule runs, if the policy says.
    fn enabled(&self) -> Option<bool>;
    /// The severity override, if the policy gives one.
    fn severity(&self) -> Option<Severity>;
}

rule_settings!(
    /// Settings of a rule that has no parameters of its own.
    RuleSettings {}
);

rule_settings!(
    /// Settings of `startup-probe`.
    StartupProbeSettings {
        /// A container whose livenessProbe waits longer than this many seconds
        /// (`initialDelaySeconds`) before its first check must use a startupProbe instead.
        /// Default 30.
        #[schemars(range(min = 0))]
        initial_delay_threshold_seconds: Option<i32>,
    }
);

rule_settings!(
    /// Settings of `allowed-registries`.
    AllowedRegistriesSettings {
        /// Registries (optionally with a path prefix, e.g. `ghcr.io/acme`) images may come
        /// from. An image without a registry host is from `docker.io`.
        #[schemars(length(max = 256))]
        registries: Option<Vec<String>>,
    }
);

rule_settings!(
    /// Settings of `cronjob-single-runner`.
    CronJobSingleRunnerSettings {
        /// Accept `concurrencyPolicy: Replace` (the new run kills the old one) as well as
        /// `Forbid`. Default false.
        allow_replace: Option<bool>,
        /// Require `startingDeadlineSeconds`, so a missed schedule does not start a burst of
        /// catch-up runs after an outage. Default true.
        require_starting_deadline: Option<bool>,
    }
);

rule_settings!(
    /// Settings of `cronjob-health`.
    CronJobHealthSettings {
        /// The rule fails when this many of the CronJob's last finished Jobs all failed
        /// (never more than its `failedJobsHistoryLimit`, since Kubernetes deletes older failed
        /// Jobs). Default 3.
        #[schemars(range(min = 1))]
        failed_runs: Option<i32>,
    }
);

rule_settings!(
    /// Settings of `leader-lease`.
    LeaderLeaseSettings {
        /// Extra seconds beyond the Lease's `leaseDurationSeconds` before a renewal counts as
        /// stale (tolerates clock skew). Default 5.
        #[schemars(range(min = 0))]
        grace_seconds: Option<i32>,
    }
);

rule_settings!(
    /// Settings of `service-monitor`.
    ServiceMonitorSettings {
        /// Count a `prometheus.io/scrape: "true"` annotation on the pod template, or on a
        /// Service that selects the pods, as coverage: for Prometheus setups that scrape by
        /// annotation instead of through the Prometheus Operator. Default false.
        accept_scrape_annotations: Option<bool>,
    }
);

rule_settings!(
    /// Settings of `replicas-ha`.
    ReplicasHaSettings {
        /// The minimum replica count. Default 2.
        #[schemars(range(min = 1))]
        min_replicas: Option<i32>,
    }
);

rule_settings!(
    /// Settings of `disruption-budget`.
    DisruptionBudgetSettings {
        /// Also require the budget to set `unhealthyPodEvictionPolicy: AlwaysAllow`, so a
        /// crash-looping pod never blocks a node drain (the default, `IfHealthyBudget`, refuses
        /// to evict it while the budget is not met). Needs Kubernetes 1.31 or later (1.27 with
        /// the beta on). Default false.
        require_unhealthy_pod_eviction_always_allow: Option<bool>,
    }
);

rule_settings!(
    /// Settings of `secret-literal-env`.
    SecretLiteralEnvSettings {
        /// More case-insensitive substrings that mark an env var name as secret-like.
        #[schemars(length(max = 64))]
        additional_name_patterns: Option<Vec<String>>,
        /// Env var names that look secret-like but are known not to be (e.g. `TOKEN_URL`).
        #[schemars(length(max = 256))]
        ignored_names: Option<Vec<String>>,
    }
);

rule_settings!(
    /// Settings of `security-context`.
    SecurityContextSettings {
        /// Also require `readOnlyRootFilesystem: true`. Default true.
        require_read_only_root_filesystem: Option<bool>,
    }
);

/// Per-rule settings, one field per rule id (in camelCase). A rule left out keeps the
/// setting of the policy's profile.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RulesSpec {
    /// `liveness-probe`: long-running containers have a livenessProbe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<RuleSettings>,
    /// `readiness-probe`: long-running containers have a readinessProbe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<RuleSettings>,
    /// `distinct-probes`: liveness and readiness do not use the same handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct_probes: Option<RuleSettings>,
    /// `startup-probe`: slow starters use a startupProbe rather than a long liveness delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<StartupProbeSettings>,
    /// `resource-requests`: cpu and memory requests are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_requests: Option<RuleSettings>,
    /// `memory-limit`: a memory limit is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<RuleSettings>,
    /// `cpu-limit`: a cpu limit is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<RuleSettings>,
    /// `image-pinned`: images have a tag other than `latest` (or a digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pinned: Option<RuleSettings>,
    /// `image-digest`: images are pinned by `@sha256:` digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<RuleSettings>,
    /// `allowed-registries`: images come from an allowed registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_registries: Option<AllowedRegistriesSettings>,
    /// `cronjob-single-runner`: CronJobs forbid concurrent runs and set a starting deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cronjob_single_runner: Option<CronJobSingleRunnerSettings>,
    /// `cronjob-health`: a CronJob's runs really happen (recent success, no overlap, not only
    /// failures, not suspended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cronjob_health: Option<CronJobHealthSettings>,
    /// `leader-lease`: single-runner workloads with several replicas hold a live Lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_lease: Option<LeaderLeaseSettings>,
    /// `service-monitor`: a ServiceMonitor or PodMonitor scrapes the workload's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_monitor: Option<ServiceMonitorSettings>,
    /// `graceful-shutdown`: serving containers have a preStop hook that fits the grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_shutdown: Option<RuleSettings>,
    /// `replicas-ha`: Deployments and StatefulSets run at least `minReplicas` replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas_ha: Option<ReplicasHaSettings>,
    /// `disruption-budget`: a PodDisruptionBudget covers multi-replica workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption_budget: Option<DisruptionBudgetSettings>,
    /// `topology-spread`: multi-replica workloads spread across nodes or zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread: Option<RuleSettings>,
    /// `rollout-history`: a rollback path exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_history: Option<RuleSettings>,
    /// `secret-literal-env`: no secret-looking env var holds a literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_literal_env: Option<SecretLiteralEnvSettings>,
    /// `security-context`: containers run as non-root, unprivileged, read-only root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContextSettings>,
    /// `network-policy`: a NetworkPolicy selects the workload's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<RuleSettings>,
}

impl RulesSpec {
    /// The enabled/severity override for a rule id, if the policy sets one.
    pub fn toggle(&self, id: &str) -> Option<&dyn RuleToggle> {
        fn dyn_ref<T: RuleToggle>(v: &Option<T>) -> Option<&dyn RuleToggle> {
            v.as_ref().map(|v| v as &dyn RuleToggle)
        }
        match id {
            "liveness-probe" => dyn_ref(&self.liveness_probe),
            "readiness-probe" => dyn_ref(&self.readiness_probe),
            "distinct-probes" => dyn_ref(&self.distinct_probes),
            "startup-probe" => dyn_ref(&self.startup_probe),
            "resource-requests" => dyn_ref(&self.resource_requests),
            "memory-limit" => dyn_ref(&self.memory_limit),
            "cpu-limit" => dyn_ref(&self.cpu_limit),
            "image-pinned" => dyn_ref(&self.image_pinned),
            "image-digest" => dyn_ref(&self.image_digest),
            "allowed-registries" => dyn_ref(&self.allowed_registries),
            "cronjob-single-runner" => dyn_ref(&self.cronjob_single_runner),
            "cronjob-health" => dyn_ref(&self.cronjob_health),
            "leader-lease" => dyn_ref(&self.leader_lease),
            "service-monitor" => dyn_ref(&self.service_monitor),
            "graceful-shutdown" => dyn_ref(&self.graceful_shutdown),
            "replicas-ha" => dyn_ref(&self.replicas_ha),
            "disruption-budget" => dyn_ref(&self.disruption_budget),
            "topology-spread" => dyn_ref(&self.topology_spread),
            "rollout-history" => dyn_ref(&self.rollout_history),
            "secret-literal-env" => dyn_ref(&self.secret_literal_env),
            "security-context" => dyn_ref(&self.security_context),
            "network-policy" => dyn_ref(&self.network_policy),
            _ => None,
        }
    }
}
