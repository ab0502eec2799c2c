//! Compiling a `ProductionPolicy` into the rules it enables, their severities and parameters,
//! and deciding which workloads it matches.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;

use super::rule::{Params, RuleDef};
use super::{Context, Workload, selector};
use crate::api::{
    AllowedRegistriesSettings, CronJobHealthSettings, CronJobSingleRunnerSettings,
    DisruptionBudgetSettings, EnforcementAction, LeaderLeaseSettings, ProductionPolicy,
    ProductionPolicySpec, Profile, ReplicasHaSettings, RuleToggle, RulesSpec,
    SecretLiteralEnvSettings, SecurityContextSettings, ServiceMonitorSettings, Severity,
    StartupProbeSettings,
};
use crate::error::Categorized;

/// A rule a policy enables, with the severity it reports at.
#[derive(Clone, Copy, Debug)]
pub struct ActiveRule {
    /// The rule.
    pub def: &'static RuleDef,
    /// Its severity under this policy.
    pub severity: Severity,
}

/// A policy that cannot be applied; each entry says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy {policy} is invalid: {}", problems.join("; "))]
pub struct PolicyError {
    /// The policy's name.
    pub policy: String,
    /// What is wrong, one entry per problem.
    pub problems: Vec<String>,
}

/// A policy ready to evaluate workloads.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    /// The policy's name.
    pub name: String,
    /// The policy's `metadata.generation`, if it came from a cluster.
    pub generation: Option<i64>,
    /// The spec as written.
    pub spec: ProductionPolicySpec,
    /// The enabled rules, in catalog order.
    pub rules: Vec<ActiveRule>,
    /// Resolved rule parameters.
    pub params: Params,
}

const VALID_OPERATORS: [&str; 4] = ["In", "NotIn", "Exists", "DoesNotExist"];

/// A DNS-1123 label, as Kubernetes requires of container names (the CRD's CEL rule on
/// `exemptions[].containers` checks the same, so `audit` refuses what the API server refuses).
fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter().all(|c| edge(c) || *c == b'-')
}

fn check_selector(what: &str, sel: Option<&LabelSelector>, problems: &mut Vec<String>) {
    for expr in sel
        .into_iter()
        .flat_map(|s| s.match_expressions.iter().flatten())
    {
        let op = expr.operator.as_str();
        if !VALID_OPERATORS.contains(&op) {
            problems.push(format!(
                "{what}: unknown operator `{op}` (use In, NotIn, Exists or DoesNotExist)"
            ));
        }
        let n = expr.values.as_ref().map_or(0, Vec::len);
        if matches!(op, "In" | "NotIn") && n == 0 {
            problems.push(format!(
                "{what}: operator {op} on `{}` needs values",
                expr.key
            ));
        }
        if matches!(op, "Exists" | "DoesNotExist") && n > 0 {
            problems.push(format!(
                "{what}: operator {op} on `{}` takes no values",
                expr.key
            ));
        }
    }
}

impl CompiledPolicy {
    /// The built-in policy of a profile over `catalog`, named after it, in Warn mode.
    pub fn builtin(profile: Profile, catalog: &[&'static RuleDef]) -> Self {
        let spec = ProductionPolicySpec {
            profile: Some(profile),
            ..Default::default()
        };
        // A default spec is always valid.
        Self::from_spec(profile.as_str(), spec, catalog).unwrap_or_else(|_| Self {
            name: profile.as_str().to_owned(),
            generation: None,
            spec: ProductionPolicySpec::default(),
            rules: Vec::new(),
            params: Params::default(),
        })
    }

    /// Compiles a policy object over `catalog` (the rules it may enable and exempt).
    pub fn compile(
        policy: &ProductionPolicy,
        catalog: &[&'static RuleDef],
    ) -> Result<Self, PolicyError> {
        let name = policy.metadata.name.clone().unwrap_or_default();
        let mut compiled = Self::from_spec(&name, policy.spec.clone(), catalog)?;
        compiled.generation = policy.metadata.generation;
        Ok(compiled)
    }

    /// Compiles a spec. Checks what the CRD schema cannot (or what a policy file read by
    /// `audit` never went through): rule ids, selectors, parameter ranges.
    pub fn from_spec(
        name: &str,
        spec: ProductionPolicySpec,
        catalog: &[&'static RuleDef],
    ) -> Result<Self, PolicyError> {
        let mut problems = Vec::new();
        let profile = spec.profile.unwrap_or_default();
        let mut rules = Vec::new();
        for &def in catalog {
            let toggle = spec.rules.toggle(def.id);
            let enabled = toggle
                .and_then(RuleToggle::enabled)
                .unwrap_or(match profile {
                    Profile::Baseline => def.default_enabled,
                    Profile::Strict => true,
                });
            if enabled {
                let severity = toggle
                    .and_then(RuleToggle::severity)
                    .unwrap_or(def.default_severity);
                rules.push(ActiveRule { def, severity });
            }
        }

        let r = &spec.rules;
        let defaults = Params::default();
        let params = Params {
            startup_initial_delay_threshold_seconds: r
                .startup_probe
                .as_ref()
                .and_then(|s| s.initial_delay_threshold_seconds)
                .unwrap_or(defaults.startup_initial_delay_threshold_seconds),
            allowed_registries: r
                .allowed_registries
                .as_ref()
                .and_then(|s| s.registries.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.trim().trim_end_matches('/').to_owned())
                .collect(),
            cronjob_allow_replace: r
                .cronjob_single_runner
                .as_ref()
                .and_then(|s| s.allow_replace)
                .unwrap_or(defaults.cronjob_allow_replace),
            cronjob_require_starting_deadline: r
                .cronjob_single_runner
                .as_ref()
                .and_then(|s| s.require_starting_deadline)
                .unwrap_or(defaults.cronjob_require_starting_deadline),
            cronjob_failed_runs: r
                .cronjob_health
                .as_ref()
                .and_then(|s| s.failed_runs)
                .unwrap_or(defaults.cronjob_failed_runs),
            lease_grace_seconds: r
                .leader_lease
                .as_ref()
                .and_then(|s| s.grace_seconds)
                .unwrap_or(defaults.lease_grace_seconds),
            min_replicas: r
                .replicas_ha
                .as_ref()
                .and_then(|s| s.min_replicas)
                .unwrap_or(defaults.min_replicas),
            accept_scrape_annotations: r
                .service_monitor
                .as_ref()
                .and_then(|s| s.accept_scrape_annotations)
                .unwrap_or(defaults.accept_scrape_annotations),
            secret_additional_name_patterns: r
                .secret_literal_env
                .as_ref()
                .and_then(|s| s.additional_name_patterns.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.to_ascii_lowercase())
                .collect(),
            secret_ignored_names: r
                .secret_literal_env
                .as_ref()
                .and_then(|s| s.ignored_names.clone())
                .unwrap_or_default(),
            require_read_only_root_filesystem: r
                .security_context
                .as_ref()
                .and_then(|s| s.require_read_only_root_filesystem)
                .unwrap_or(defaults.require_read_only_root_filesystem),
            require_unhealthy_pod_eviction_always_allow: r
                .disruption_budget
                .as_ref()
                .and_then(|s| s.require_unhealthy_pod_eviction_always_allow)
                .unwrap_or(defaults.require_unhealthy_pod_eviction_always_allow),
        };

        if params.startup_initial_delay_threshold_seconds < 0 {
            problems.push("rules.startupProbe.initialDelayThresholdSeconds must be >= 0".into());
        }
        if params.lease_grace_seconds < 0 {
            problems.push("rules.leaderLease.graceSeconds must be >= 0".into());
        }
        if params.min_replicas < 1 {
            problems.push("rules.replicasHa.minReplicas must be >= 1".into());
        }
        if params.allowed_registries.iter().any(String::is_empty) {
            problems.push("rules.allowedRegistries.registries has an empty entry".into());
        }
        if params.allowed_registries.is_empty() {
            let explicitly_enabled = spec
                .rules
                .allowed_registries
                .as_ref()
                .and_then(|s| s.enabled)
                == Some(true);
            if explicitly_enabled {
                problems.push(
                    "rules.allowedRegistries is enabled but lists no registries (every image would fail)"
                        .into(),
                );
            }
            // A profile cannot know the organisation's registries: the rule only runs once
            // `rules.allowedRegistries.registries` names some.
            rules.retain(|r| r.def.id != "allowed-registries");
        }

        check_selector(
            "match.selector",
            spec.match_.selector.as_ref(),
            &mut problems,
        );
        check_selector(
            "match.namespaceSelector",
            spec.match_.namespace_selector.as_ref(),
            &mut problems,
        );
        for (i, ex) in spec.exemptions.iter().enumerate() {
            if ex.reason.trim().is_empty() {
                problems.push(format!("exemptions[{i}]: reason is required"));
            }
            if ex.rules.is_empty() {
                problems.push(format!(
                    "exemptions[{i}]: rules is empty (name rule ids or \"*\")"
                ));
            }
            for id in &ex.rules {
                if id != "*" && !catalog.iter().any(|r| r.id == id) {
                    let hint = crate::text::closest(id, catalog.iter().map(|r| r.id))
                        .map(|c| format!("; did you mean `{c}`?"))
                        .unwrap_or_default();
                    problems.push(format!(
                        "exemptions[{i}]: unknown rule id `{id}`{hint} (see `prodready rules`)"
                    ));
                }
            }
            for (j, c) in ex.containers.iter().enumerate() {
                if !is_dns1123_label(c) {
                    problems.push(format!(
                        "exemptions[{i}].containers[{j}]: `{c}` is not a container name (lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)"
                    ));
                }
                if ex.containers[..j].contains(c) {
                    problems.push(format!(
                        "exemptions[{i}].containers[{j}]: `{c}` is listed more than once"
                    ));
                }
            }
            check_selector(
                &format!("exemptions[{i}].selector"),
                ex.selector.as_ref(),
                &mut problems,
            );
        }
        if spec.enforcement.enforce_after.is_some()
            && spec.enforcement.action == EnforcementAction::Audit
        {
            problems.push(
                "enforcement.enforceAfter cannot be used with action Audit (use Warn or Enforce)"
                    .into(),
            );
        }

        if !problems.is_empty() {
            return Err(PolicyError {
                policy: name.to_owned(),
                problems,
            });
        }
        Ok(CompiledPolicy {
            name: name.to_owned(),
            generation: None,
            spec,
            rules,
            params,
        })
    }

    /// The action in force at `now`: `enforceAfter` ramps Warn to Enforce at that instant.
    pub fn action_at(&self, now: Timestamp) -> EnforcementAction {
        let e = &self.spec.enforcement;
        match (e.action, &e.enforce_after) {
            (EnforcementAction::Audit, _) => EnforcementAction::Audit,
            (_, Some(after)) if now < after.0 => EnforcementAction::Warn,
            (_, Some(_)) => EnforcementAction::Enforce,
            (action, None) => action,
        }
    }

    /// Whether the policy applies to a workload.
    pub fn matches(&self, w: &Workload, ctx: &Context) -> bool {
        let m = &self.spec.match_;
        if !m.kinds.is_empty() && !m.kinds.contains(&w.kind) {
            return false;
        }
        if !m.namespaces.is_empty() && !m.namespaces.contains(&w.namespace) {
            return false;
        }
        if m.exclude_namespaces.contains(&w.namespace) {
            return false;
        }
        if let Some(sel) = &m.selector
            && !selector::matches(sel, &w.labels)
        {
            return false;
        }
        if let Some(sel) = &m.namespace_selector
            && !selector::is_empty(sel)
        {
            let fallback;
            let labels = match ctx.namespace_labels(&w.namespace) {
                Some(l) => l,
                None => {
                    // Every namespace carries this label; it is all we know offline.
                    fallback = BTreeMap::from([(
                        "kubernetes.io/metadata.name".to_owned(),
                        w.namespace.clone(),
                    )]);
                    &fallback
                }
            };
            if !selector::matches(sel, labels) {
                return false;
            }
        }
        true
    }

    /// The next instant after `now` at which this policy's verdicts can change without any
    /// object changing: an exemption expiring or `enforceAfter` passing.
    pub fn next_transition(&self, now: Timestamp) -> Option<Timestamp> {
        let exemptions = self
            .spec
            .exemptions
            .iter()
            .filter_map(|e| e.expires.as_ref());
        exemptions
            .chain(self.spec.enforcement.enforce_after.as_ref())
            .map(|t| t.0)
            .filter(|t| *t > now)
            .min()
    }
}

/// The parameters as a policy writes them under `spec.rules`: every rule parameter set to
/// `params`' value, `enabled` and `severity` left out. The inverse of the resolution in
/// [`CompiledPolicy::from_spec`]: the rule pages show `settings(&Params::default())` as each
/// parameter's default, and a test checks that compiling it gives the defaults back.
pub fn settings(params: &Params) -> RulesSpec {
    RulesSpec {
        startup_probe: Some(StartupProbeSettings {
            initial_delay_threshold_seconds: Some(params.startup_initial_delay_threshold_seconds),
            ..Default::default()
        }),
        allowed_registries: Some(AllowedRegistriesSettings {
            registries: Some(params.allowed_registries.clone()),
            ..Default::default()
        }),
        cronjob_single_runner: Some(CronJobSingleRunnerSettings {
            allow_replace: Some(params.cronjob_allow_replace),
            require_starting_deadline: Some(params.cronjob_require_starting_deadline),
            ..Default::default()
        }),
        cronjob_health: Some(CronJobHealthSettings {
            failed_runs: Some(params.cronjob_failed_runs),
            ..Default::default()
        }),
        leader_lease: Some(LeaderLeaseSettings {
            grace_seconds: Some(params.lease_grace_seconds),
            ..Default::default()
        }),
        service_monitor: Some(ServiceMonitorSettings {
            accept_scrape_annotations: Some(params.accept_scrape_annotations),
            ..Default::default()
        }),
        replicas_ha: Some(ReplicasHaSettings {
            min_replicas: Some(params.min_replicas),
            ..Default::default()
        }),
        disruption_budget: Some(DisruptionBudgetSettings {
            require_unhealthy_pod_eviction_always_allow: Some(
                params.require_unhealthy_pod_eviction_always_allow,
            ),
            ..Default::default()
        }),
        secret_literal_env: Some(SecretLiteralEnvSettings {
            additional_name_patterns: Some(params.secret_additional_name_patterns.clone()),
            ignored_names: Some(params.secret_ignored_names.clone()),
            ..Default::default()
        }),
        security_context: Some(SecurityContextSettings {
            require_read_only_root_filesystem: Some(params.require_read_only_root_filesystem),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Categorized for PolicyError {
    fn category(&self) -> &'static str {
        "invalid_policy"
    }
}
