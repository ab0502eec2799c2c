//! Exemptions (`engine::exemption`) over the real catalog: policy exemptions that expire,
//! annotation exemptions only where the policy allows them, exactness.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::CATALOG;
use super::testing::{now, workload};
use crate::api::{Exemption, ProductionPolicySpec, Profile};
use crate::engine::{
    CompiledPolicy, Context, ExemptionSource, Outcome, RuleResult, Workload, WorkloadVerdict,
};

const ONE_REPLICA: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: legacy
  namespace: shop
  labels: {tier: legacy}
  annotations: {ANNOTATIONS}
spec:
  replicas: 1
  selector: {matchLabels: {app: legacy}}
  template:
    metadata:
      labels: {app: legacy}
    spec:
      containers: [{name: app, image: "legacy:1"}]
"#;

fn legacy(annotations: &str) -> Workload {
    workload(&ONE_REPLICA.replace("{ANNOTATIONS}", annotations))
}

fn policy(exemptions: Vec<Exemption>, allow_annotations: bool) -> CompiledPolicy {
    let spec = ProductionPolicySpec {
        profile: Some(Profile::Baseline),
        exemptions,
        allow_annotation_exemptions: allow_annotations,
        ..Default::default()
    };
    CompiledPolicy::from_spec("p", spec, &CATALOG).expect("valid policy")
}

fn outcome(p: &CompiledPolicy, w: &Workload, rule: &str) -> Outcome {
    let eval = p.evaluate(w, &Context::default(), now());
    eval.results
        .into_iter()
        .find(|r| r.rule.id == rule)
        .map(|r| r.outcome)
        .expect("rule enabled")
}

fn grant(rules: &[&str], expires: Option<Timestamp>) -> Exemption {
    Exemption {
        rules: rules.iter().map(|r| (*r).to_owned()).collect(),
        namespaces: vec!["shop".into()],
        names: vec!["legacy".into()],
        reason: "migration PAY-1".into(),
        expires: expires.map(Time),
        ..Default::default()
    }
}

fn at(offset_secs: i64) -> Timestamp {
    Timestamp::from_second(now().as_second() + offset_secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

#[test]
fn policy_exemption_applies_until_it_expires() {
    let w = legacy("{}");
    let p = policy(vec![grant(&["replicas-ha"], Some(at(60)))], false);
    let Outcome::Exempt {
        exemption,
        violations,
    } = outcome(&p, &w, "replicas-ha")
    else {
        panic!("expected exempt");
    };
    assert_eq!(exemption.reason, "migration PAY-1");
    assert_eq!(exemption.source, ExemptionSource::Policy { index: 0 });
    assert_eq!(violations.len(), 1);
    assert_eq!(
        p.evaluate(&w, &Context::default(), now()).next_expiry,
        Some(at(60))
    );
    // Expired: the rule fails again.
    let p = policy(vec![grant(&["replicas-ha"], Some(at(0)))], false);
    assert!(matches!(outcome(&p, &w, "replicas-ha"), Outcome::Fail(_)));
}

#[test]
fn exemption_must_match_namespace_name_and_selector() {
    let w = legacy("{}");
    let mut other_ns = grant(&["*"], None);
    other_ns.namespaces = vec!["payments".into()];
    let p = policy(vec![other_ns], false);
    assert!(matches!(outcome(&p, &w, "replicas-ha"), Outcome::Fail(_)));

    let mut by_label = grant(&["*"], None);
    by_label.names.clear();
    by_label.selector = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some([("tier".to_owned(), "legacy".to_owned())].into()),
            ..Default::default()
        },
    );
    let p = policy(vec![by_label], false);
    assert!(matches!(outcome(&p, &w, "image-pinned"), Outcome::Pass));
    assert!(matches!(
        outcome(&p, &w, "replicas-ha"),
        Outcome::Exempt { .. }
    ));
    let eval = p.evaluate(&w, &Context::default(), now());
    assert_ne!(eval.verdict(), WorkloadVerdict::Violating);
}

#[test]
fn annotation_exemptions_need_the_policy_to_allow_them() {
    let w = legacy(
        r#"{prodready.dev/exempt: "replicas-ha", prodready.dev/exempt-reason: "batch only"}"#,
    );
    let p = policy(vec![], false);
    assert!(matches!(outcome(&p, &w, "replicas-ha"), Outcome::Fail(_)));
    let eval = p.evaluate(&w, &Context::default(), now());
    assert!(
        eval.notes[0].contains("does not allow annotation exemptions"),
        "{:?}",
        eval.notes
    );

    let p = policy(vec![], true);
    let Outcome::Exempt { exemption, .. } = outcome(&p, &w, "replicas-ha") else {
        panic!("expected exempt");
    };
    assert_eq!(exemption.source, ExemptionSource::Annotation);
    assert_eq!(exemption.reason, "batch only");
}

#[test]
fn annotation_exemption_without_reason_or_past_its_date_is_ignored() {
    let p = policy(vec![], true);
    let w = legacy(r#"{prodready.dev/exempt: "*"}"#);
    assert!(matches!(outcome(&p, &w, "replicas-ha"), Outcome::Fail(_)));
    let w = legacy(
        r#"{prodready.dev/exempt: "*", prodready.dev/exempt-reason: r, prodready.dev/exempt-until: "2020-01-01T00:00:00Z"}"#,
    );
    assert!(matches!(outcome(&p, &w, "replicas-ha"), Outcome::Fail(_)));
    let eval = p.evaluate(&w, &Context::default(), now());
    assert!(eval.notes[0].contains("expired"), "{:?}", eval.notes);
    let w = legacy(
        r#"{prodready.dev/exempt: "*", prodready.dev/exempt-reason: r, prodready.dev/exempt-until: "next week"}"#,
    );
    assert!(matches!(outcome(&p, &w, "replicas-ha"), Outcome::Fail(_)));
    let w = legacy(
        r#"{prodready.dev/exempt: "*", prodready.dev/exempt-reason: r, prodready.dev/exempt-until: "2099-01-01T00:00:00Z"}"#,
    );
    assert!(matches!(
        outcome(&p, &w, "replicas-ha"),
        Outcome::Exempt { .. }
    ));
}

#[test]
fn annotations_on_the_pod_template_count() {
    let p = policy(vec![], true);
    let w = workload(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: t, namespace: shop}
spec:
  replicas: 1
  selector: {}
  template:
    metadata:
      annotations: {prodready.dev/exempt: "replicas-ha", prodready.dev/exempt-reason: "canary"}
    spec:
      containers: [{name: app, image: "a:1"}]
"#,
    );
    assert!(matches!(
        outcome(&p, &w, "replicas-ha"),
        Outcome::Exempt { .. }
    ));
}

/// A Deployment with an app container and an injected sidecar, both without probes.
fn meshed(app_probed: bool) -> Workload {
    let probes = if app_probed {
        ", livenessProbe: {httpGet: {path: /live, port: 8080}}"
    } else {
        ""
    };
    workload(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: legacy, namespace: shop}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: legacy}}}}\n  template:\n    metadata: {{labels: {{app: legacy}}}}\n    spec:\n      containers:\n        - {{name: app, image: 'legacy:1'{probes}}}\n        - {{name: istio-proxy, image: 'proxy:1.2'}}\n"
    ))
}

fn for_containers(rules: &[&str], containers: &[&str], expires: Option<Timestamp>) -> Exemption {
    Exemption {
        containers: containers.iter().map(|c| (*c).to_owned()).collect(),
        ..grant(rules, expires)
    }
}

fn result(p: &CompiledPolicy, w: &Workload, rule: &str) -> RuleResult {
    p.evaluate(w, &Context::default(), now())
        .results
        .into_iter()
        .find(|r| r.rule.id == rule)
        .expect("rule enabled")
}

/// The containers of the outcome's own (failing or whole-workload exempt) findings.
fn containers_of(o: &Outcome) -> Vec<String> {
    let v = match o {
        Outcome::Fail(v) | Outcome::Exempt { violations: v, .. } => v,
        other => panic!("expected Fail or Exempt, got {other:?}"),
    };
    v.iter().filter_map(|v| v.container.clone()).collect()
}

/// The containers whose findings a container exemption covers, with that exemption's index.
fn exempt_of(r: &RuleResult) -> Vec<(String, ExemptionSource)> {
    r.exempt
        .iter()
        .map(|e| {
            (
                e.violation.container.clone().unwrap_or_default(),
                e.exemption.source.clone(),
            )
        })
        .collect()
}

#[test]
fn a_container_exemption_exempts_that_container_only_and_shows_it_beside_the_failure() {
    let p = policy(
        vec![for_containers(&["liveness-probe"], &["istio-proxy"], None)],
        false,
    );
    // Mixed: the app still fails, the sidecar's finding is shown as exempt beside it.
    let both = result(&p, &meshed(false), "liveness-probe");
    assert!(matches!(both.outcome, Outcome::Fail(_)), "{both:?}");
    assert_eq!(containers_of(&both.outcome), ["app"]);
    assert_eq!(
        exempt_of(&both),
        [(
            "istio-proxy".to_owned(),
            ExemptionSource::Policy { index: 0 }
        )]
    );
    assert_eq!(both.exempt[0].exemption.reason, "migration PAY-1");
    assert!(
        both.exempt[0].violation.message.contains("istio-proxy"),
        "{both:?}"
    );
    let findings = both.exempt_findings();
    assert_eq!(findings.len(), 1);
    // With the app fixed, only the sidecar's finding is left: the result reads exempt, and
    // the finding is still there with its exemption.
    let sidecar_only = result(&p, &meshed(true), "liveness-probe");
    match &sidecar_only.outcome {
        Outcome::Exempt {
            exemption,
            violations,
        } => {
            assert_eq!(exemption.reason, "migration PAY-1");
            assert_eq!(exemption.source, ExemptionSource::Policy { index: 0 });
            assert!(violations.is_empty(), "{violations:?}");
        }
        other => panic!("expected Exempt, got {other:?}"),
    }
    assert_eq!(
        exempt_of(&sidecar_only),
        [(
            "istio-proxy".to_owned(),
            ExemptionSource::Policy { index: 0 }
        )]
    );
    assert_eq!(sidecar_only.exempt_findings().len(), 1);
    // Other rules are untouched.
    let readiness = result(&p, &meshed(true), "readiness-probe");
    assert_eq!(containers_of(&readiness.outcome), ["app", "istio-proxy"]);
    assert!(readiness.exempt.is_empty());
    // Passing: nothing to exempt, nothing shown.
    let p = policy(
        vec![for_containers(&["image-pinned"], &["istio-proxy"], None)],
        false,
    );
    let pinned = result(&p, &meshed(false), "image-pinned");
    assert_eq!(pinned.outcome, Outcome::Pass);
    assert!(pinned.exempt.is_empty());
}

#[test]
fn two_container_exemptions_each_show_their_own_reason() {
    let mut log = for_containers(&["liveness-probe"], &["app"], None);
    log.reason = "app restarts itself".into();
    let p = policy(
        vec![
            for_containers(&["liveness-probe"], &["istio-proxy"], None),
            log,
        ],
        false,
    );
    let r = result(&p, &meshed(false), "liveness-probe");
    assert!(matches!(r.outcome, Outcome::Exempt { .. }), "{r:?}");
    assert_eq!(
        exempt_of(&r),
        [
            ("app".to_owned(), ExemptionSource::Policy { index: 1 }),
            (
                "istio-proxy".to_owned(),
                ExemptionSource::Policy { index: 0 }
            )
        ]
    );
    let reasons: Vec<&str> = r
        .exempt_findings()
        .iter()
        .map(|(_, e)| e.reason.as_str())
        .collect();
    assert_eq!(reasons, ["app restarts itself", "migration PAY-1"]);
    assert_eq!(
        p.evaluate(&meshed(false), &Context::default(), now())
            .results
            .iter()
            .find(|r| r.rule.id == "liveness-probe")
            .map(|r| r.exempt.len()),
        Some(2)
    );
}

#[test]
fn a_container_exemption_covers_init_containers_by_name() {
    // An init container that runs as a native sidecar (restartPolicy: Always) is judged
    // like a main container; an exemption naming it covers it, and only it.
    let w = workload(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: legacy, namespace: shop}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: legacy}}\n  template:\n    metadata: {labels: {app: legacy}}\n    spec:\n      initContainers:\n        - {name: linkerd-proxy, image: 'proxy:2', restartPolicy: Always}\n      containers:\n        - {name: app, image: 'legacy:1'}\n",
    );
    let p = policy(
        vec![for_containers(&["memory-limit"], &["linkerd-proxy"], None)],
        false,
    );
    let r = result(&p, &w, "memory-limit");
    assert!(matches!(r.outcome, Outcome::Fail(_)), "{r:?}");
    assert_eq!(containers_of(&r.outcome), ["app"]);
    assert_eq!(
        exempt_of(&r),
        [(
            "linkerd-proxy".to_owned(),
            ExemptionSource::Policy { index: 0 }
        )]
    );
}

#[test]
fn a_container_exemption_never_covers_workload_findings_or_other_names() {
    // replicas-ha is about the workload, not a container: not exempt.
    let p = policy(
        vec![for_containers(
            &["replicas-ha"],
            &["app", "istio-proxy"],
            None,
        )],
        false,
    );
    let r = result(&p, &meshed(true), "replicas-ha");
    assert!(matches!(r.outcome, Outcome::Fail(_)));
    assert!(r.exempt.is_empty());
    // A name that is not a container of the pod exempts nothing (and shows nothing exempt).
    let p = policy(
        vec![for_containers(
            &["liveness-probe"],
            &["linkerd-proxy"],
            None,
        )],
        false,
    );
    let r = result(&p, &meshed(false), "liveness-probe");
    assert_eq!(containers_of(&r.outcome), ["app", "istio-proxy"]);
    assert!(r.exempt.is_empty());
    assert_eq!(
        p.evaluate(&meshed(false), &Context::default(), now())
            .next_expiry,
        None
    );
    // A whole-workload exemption beside a container one still exempts everything, under
    // the whole-workload exemption.
    let p = policy(
        vec![
            for_containers(&["liveness-probe"], &["istio-proxy"], None),
            grant(&["liveness-probe"], None),
        ],
        false,
    );
    let r = result(&p, &meshed(false), "liveness-probe");
    match &r.outcome {
        Outcome::Exempt { exemption, .. } => {
            assert_eq!(exemption.source, ExemptionSource::Policy { index: 1 });
        }
        other => panic!("expected Exempt, got {other:?}"),
    }
    assert_eq!(containers_of(&r.outcome), ["app", "istio-proxy"]);
    assert!(r.exempt.is_empty());
}

#[test]
fn a_used_container_exemption_schedules_its_expiry_and_stops_applying_after_it() {
    let expires = now()
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(3600))
        .unwrap_or(now());
    let p = policy(
        vec![for_containers(
            &["liveness-probe"],
            &["istio-proxy"],
            Some(expires),
        )],
        false,
    );
    let eval = p.evaluate(&meshed(false), &Context::default(), now());
    assert_eq!(eval.next_expiry, Some(expires));
    assert_eq!(eval.verdict(), WorkloadVerdict::Violating); // readiness-probe, replicas-ha…
    let liveness = eval
        .results
        .iter()
        .find(|r| r.rule.id == "liveness-probe")
        .expect("rule enabled");
    assert_eq!(liveness.exempt[0].exemption.expires, Some(expires));
    let after = p.evaluate(
        &meshed(false),
        &Context::default(),
        expires
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(1))
            .unwrap_or(expires),
    );
    let liveness = after
        .results
        .iter()
        .find(|r| r.rule.id == "liveness-probe")
        .expect("rule enabled");
    // Expired: both containers fail again, nothing is shown as exempt.
    assert_eq!(containers_of(&liveness.outcome), ["app", "istio-proxy"]);
    assert!(liveness.exempt.is_empty());
}
