//! Exemptions (`engine::exemption`) over the real catalog: policy exemptions that expire,
//! annotation exemptions only where the policy allows them, exactness.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::CATALOG;
use super::testing::{now, workload};
use crate::api::{Exemption, ProductionPolicySpec, Profile};
use crate::engine::{CompiledPolicy, Context, ExemptionSource, Outcome, Workload, WorkloadVerdict};

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

fn containers_of(o: &Outcome) -> Vec<String> {
    let v = match o {
        Outcome::Fail(v) | Outcome::Exempt { violations: v, .. } => v,
        other => panic!("expected Fail or Exempt, got {other:?}"),
    };
    v.iter().filter_map(|v| v.container.clone()).collect()
}

#[test]
fn a_container_exemption_exempts_that_container_only() {
    let p = policy(
        vec![for_containers(&["liveness-probe"], &["istio-proxy"], None)],
        false,
    );
    // The app still fails; the sidecar's finding is gone from the failure.
    let both = outcome(&p, &meshed(false), "liveness-probe");
    assert!(matches!(both, Outcome::Fail(_)), "{both:?}");
    assert_eq!(containers_of(&both), ["app"]);
    // With the app fixed, only the sidecar's finding is left: the result reads exempt.
    let sidecar_only = outcome(&p, &meshed(true), "liveness-probe");
    match &sidecar_only {
        Outcome::Exempt { exemption, .. } => {
            assert_eq!(exemption.reason, "migration PAY-1");
            assert_eq!(exemption.source, ExemptionSource::Policy { index: 0 });
        }
        other => panic!("expected Exempt, got {other:?}"),
    }
    assert_eq!(containers_of(&sidecar_only), ["istio-proxy"]);
    // Other rules are untouched.
    assert_eq!(
        containers_of(&outcome(&p, &meshed(true), "readiness-probe")),
        ["app", "istio-proxy"]
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
    assert!(matches!(
        outcome(&p, &meshed(true), "replicas-ha"),
        Outcome::Fail(_)
    ));
    // A name that is not a container of the pod exempts nothing.
    let p = policy(
        vec![for_containers(
            &["liveness-probe"],
            &["linkerd-proxy"],
            None,
        )],
        false,
    );
    assert_eq!(
        containers_of(&outcome(&p, &meshed(false), "liveness-probe")),
        ["app", "istio-proxy"]
    );
    // A whole-workload exemption beside a container one still exempts everything.
    let p = policy(
        vec![
            for_containers(&["liveness-probe"], &["istio-proxy"], None),
            grant(&["liveness-probe"], None),
        ],
        false,
    );
    assert!(matches!(
        outcome(&p, &meshed(false), "liveness-probe"),
        Outcome::Exempt { .. }
    ));
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
    let eval = p.evaluate(&meshed(true), &Context::default(), now());
    assert_eq!(eval.next_expiry, Some(expires));
    assert_eq!(eval.verdict(), WorkloadVerdict::Violating); // readiness-probe, replicas-ha…
    let after = p.evaluate(
        &meshed(true),
        &Context::default(),
        expires
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(1))
            .unwrap_or(expires),
    );
    let liveness = after
        .results
        .iter()
        .find(|r| r.rule.id == "liveness-probe")
        .map(|r| r.outcome.clone())
        .expect("rule enabled");
    assert!(matches!(liveness, Outcome::Fail(_)), "{liveness:?}");
}
