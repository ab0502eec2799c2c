//! Policy compilation (`engine::policy`) over the real catalog: profiles, parameters,
//! overrides, validation and the `enforceAfter` ramp.

use k8s_openapi::jiff::Timestamp;

use super::CATALOG;
use crate::api::{
    AllowedRegistriesSettings, EnforcementAction, Exemption, ProductionPolicySpec, Profile,
    Severity,
};
use crate::engine::CompiledPolicy;

fn ids(p: &CompiledPolicy) -> Vec<&'static str> {
    p.rules.iter().map(|r| r.def.id).collect()
}

#[test]
fn builtin_profiles() {
    let baseline = CompiledPolicy::builtin(Profile::Baseline, &CATALOG);
    let expected: Vec<_> = CATALOG
        .iter()
        .filter(|r| r.default_enabled)
        .map(|r| r.id)
        .collect();
    assert_eq!(ids(&baseline), expected);
    let strict = CompiledPolicy::builtin(Profile::Strict, &CATALOG);
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
    let p = CompiledPolicy::from_spec("s", spec.clone(), &CATALOG).expect("valid");
    assert_eq!(p.rules.len(), CATALOG.len());
    assert_eq!(p.params.allowed_registries, vec!["ghcr.io/acme"]);
    spec.rules.allowed_registries = Some(AllowedRegistriesSettings {
        enabled: Some(true),
        ..Default::default()
    });
    let e = CompiledPolicy::from_spec("s", spec, &CATALOG).expect_err("invalid");
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
    let p = CompiledPolicy::from_spec("p", spec, &CATALOG).expect("valid");
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
    spec.enforcement.enforce_after = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        Timestamp::UNIX_EPOCH,
    ));
    let e = CompiledPolicy::from_spec("bad", spec, &CATALOG).expect_err("invalid");
    assert_eq!(e.problems.len(), 3, "{e}");
}

#[test]
fn enforce_after_ramps_warn_to_enforce() {
    let mut spec = ProductionPolicySpec::default();
    spec.enforcement.action = EnforcementAction::Enforce;
    let t = Timestamp::from_second(2_000_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
    spec.enforcement.enforce_after = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t));
    let p = CompiledPolicy::from_spec("r", spec, &CATALOG).expect("valid");
    let before = Timestamp::from_second(1_999_999_999).unwrap_or(Timestamp::UNIX_EPOCH);
    assert_eq!(p.action_at(before), EnforcementAction::Warn);
    assert_eq!(p.action_at(t), EnforcementAction::Enforce);
    assert_eq!(p.next_transition(before), Some(t));
    assert_eq!(p.next_transition(t), None);
}

#[test]
fn exemption_containers_must_be_container_names_listed_once() {
    let with = |containers: &[&str]| {
        let spec = ProductionPolicySpec {
            exemptions: vec![Exemption {
                rules: vec!["liveness-probe".into()],
                containers: containers.iter().map(|c| (*c).to_owned()).collect(),
                reason: "mesh".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        CompiledPolicy::from_spec("p", spec, &CATALOG).map_err(|e| e.problems)
    };
    assert!(with(&["istio-proxy", "linkerd-proxy", "a", "0-x9"]).is_ok());
    let long = "a".repeat(63);
    assert!(with(&[long.as_str()]).is_ok());
    for bad in ["", "Istio-Proxy", "-proxy", "proxy-", "istio_proxy", "a.b"] {
        let problems = with(&[bad]).err().unwrap_or_default();
        assert_eq!(
            problems,
            [format!(
                "exemptions[0].containers[0]: `{bad}` is not a container name (lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)"
            )],
            "{bad:?}"
        );
    }
    let too_long = "a".repeat(64);
    assert!(with(&[too_long.as_str()]).is_err());
    assert_eq!(
        with(&["istio-proxy", "app", "istio-proxy"])
            .err()
            .unwrap_or_default(),
        ["exemptions[0].containers[2]: `istio-proxy` is listed more than once"]
    );
}

#[test]
fn settings_are_the_inverse_of_parameter_resolution() {
    use crate::engine::{Params, settings};
    let custom = Params {
        startup_initial_delay_threshold_seconds: 45,
        allowed_registries: vec!["ghcr.io/acme".into()],
        cronjob_allow_replace: true,
        cronjob_require_starting_deadline: false,
        cronjob_failed_runs: 2,
        lease_grace_seconds: 9,
        min_replicas: 3,
        accept_scrape_annotations: true,
        secret_additional_name_patterns: vec!["pin".into()],
        secret_ignored_names: vec!["TOKEN_URL".into()],
        require_read_only_root_filesystem: false,
        require_unhealthy_pod_eviction_always_allow: true,
    };
    for params in [Params::default(), custom] {
        let spec = ProductionPolicySpec {
            rules: settings(&params),
            ..Default::default()
        };
        let p = CompiledPolicy::from_spec("s", spec, &CATALOG).expect("valid");
        assert_eq!(p.params, params);
    }
}

#[test]
fn disruption_budget_eviction_policy_is_opt_in() {
    let mut spec = ProductionPolicySpec::default();
    let p = CompiledPolicy::from_spec("s", spec.clone(), &CATALOG).expect("valid");
    assert!(!p.params.require_unhealthy_pod_eviction_always_allow);
    spec.rules.disruption_budget = Some(crate::api::DisruptionBudgetSettings {
        require_unhealthy_pod_eviction_always_allow: Some(true),
        ..Default::default()
    });
    let p = CompiledPolicy::from_spec("s", spec, &CATALOG).expect("valid");
    assert!(p.params.require_unhealthy_pod_eviction_always_allow);
}
