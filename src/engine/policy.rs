//! Compiling a `ProductionPolicy` into the rules it enables, their severities and parameters,
//! and deciding which workloads it matches.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;

use super::{Context, Workload, selector};
use crate::api::{
    EnforcementAction, ProductionPolicy, ProductionPolicySpec, Profile, RuleToggle, Severity,
};
use crate::rules::{self, CATALOG, Params, RuleDef};

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
    /// The built-in policy of a profile, named after it, in Warn mode.
    pub fn builtin(profile: Profile) -> Self {
        let spec = ProductionPolicySpec {
            profile: Some(profile),
            ..Default::default()
        };
        // A default spec is always valid.
        Self::from_spec(profile.as_str(), spec).unwrap_or_else(|_| Self {
            name: profile.as_str().to_owned(),
            generation: None,
            spec: ProductionPolicySpec::default(),
            rules: Vec::new(),
            params: Params::default(),
        })
    }

    /// Compiles a policy object.
    pub fn compile(policy: &ProductionPolicy) -> Result<Self, PolicyError> {
        let name = policy.metadata.name.clone().unwrap_or_default();
        let mut compiled = Self::from_spec(&name, policy.spec.clone())?;
        compiled.generation = policy.metadata.generation;
        Ok(compiled)
    }

    /// Compiles a spec. Checks what the CRD schema cannot (or what a policy file read by
    /// `audit` never went through): rule ids, selectors, parameter ranges.
    pub fn from_spec(name: &str, spec: ProductionPolicySpec) -> Result<Self, PolicyError> {
        let mut problems = Vec::new();
        let profile = spec.profile.unwrap_or_default();
        let mut rules = Vec::new();
        for def in CATALOG {
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
                if id != "*" && rules::find(id).is_none() {
                    problems.push(format!(
                        "exemptions[{i}]: unknown rule id `{id}` (see `prodready rules`)"
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AllowedRegistriesSettings, Exemption};

    fn ids(p: &CompiledPolicy) -> Vec<&'static str> {
        p.rules.iter().map(|r| r.def.id).collect()
    }

    #[test]
    fn builtin_profiles() {
        let baseline = CompiledPolicy::builtin(Profile::Baseline);
        let expected: Vec<_> = CATALOG
            .iter()
            .filter(|r| r.default_enabled)
            .map(|r| r.id)
            .collect();
        assert_eq!(ids(&baseline), expected);
        let strict = CompiledPolicy::builtin(Profile::Strict);
        // Every rule but allowed-registries, which needs the organisation's registry list.
        assert_eq!(strict.rules.len(), CATALOG.len() - 1);
        assert!(!ids(&strict).contains(&"allowed-registries"));
    }

    #[test]
    fn allowed_registries_runs_once_configured_and_rejects_an_empty_explicit_list() {
        let mut spec = ProductionPolicySpec {
            profile: Some(Profile::Strict),
            ..Default::default()
        };
        spec.rules.allowed_registries = Some(AllowedRegistriesSettings {
            registries: Some(vec!["ghcr.io/acme/".into()]),
            ..Default::default()
        });
        let p = CompiledPolicy::from_spec("s", spec.clone()).expect("valid");
        assert_eq!(p.rules.len(), CATALOG.len());
        assert_eq!(p.params.allowed_registries, vec!["ghcr.io/acme"]);
        spec.rules.allowed_registries = Some(AllowedRegistriesSettings {
            enabled: Some(true),
            ..Default::default()
        });
        let e = CompiledPolicy::from_spec("s", spec).expect_err("invalid");
        assert!(e.to_string().contains("lists no registries"), "{e}");
    }

    #[test]
    fn overrides_and_severities() {
        let mut spec = ProductionPolicySpec::default();
        spec.rules.cpu_limit = Some(crate::api::RuleSettings {
            enabled: Some(true),
            severity: Some(Severity::Critical),
        });
        spec.rules.liveness_probe = Some(crate::api::RuleSettings {
            enabled: Some(false),
            severity: None,
        });
        let p = CompiledPolicy::from_spec("p", spec).expect("valid");
        assert!(!ids(&p).contains(&"liveness-probe"));
        let cpu = p
            .rules
            .iter()
            .find(|r| r.def.id == "cpu-limit")
            .expect("cpu-limit on");
        assert_eq!(cpu.severity, Severity::Critical);
    }

    #[test]
    fn invalid_specs_list_every_problem() {
        let mut spec = ProductionPolicySpec::default();
        spec.exemptions.push(Exemption {
            rules: vec!["nope".into()],
            reason: " ".into(),
            ..Default::default()
        });
        spec.enforcement.action = EnforcementAction::Audit;
        spec.enforcement.enforce_after = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::UNIX_EPOCH),
        );
        let e = CompiledPolicy::from_spec("bad", spec).expect_err("invalid");
        assert_eq!(e.problems.len(), 3, "{e}");
    }

    #[test]
    fn enforce_after_ramps_warn_to_enforce() {
        let mut spec = ProductionPolicySpec::default();
        spec.enforcement.action = EnforcementAction::Enforce;
        let t = Timestamp::from_second(2_000_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        spec.enforcement.enforce_after =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t));
        let p = CompiledPolicy::from_spec("r", spec).expect("valid");
        let before = Timestamp::from_second(1_999_999_999).unwrap_or(Timestamp::UNIX_EPOCH);
        assert_eq!(p.action_at(before), EnforcementAction::Warn);
        assert_eq!(p.action_at(t), EnforcementAction::Enforce);
        assert_eq!(p.next_transition(before), Some(t));
        assert_eq!(p.next_transition(t), None);
    }
}
