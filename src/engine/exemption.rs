//! Exemptions: from the policy (always), and from workload annotations (only where the
//! policy allows them). An expired exemption stops applying at its instant.

use k8s_openapi::jiff::Timestamp;

use super::workload::{ANNOTATION_EXEMPT, ANNOTATION_EXEMPT_REASON, ANNOTATION_EXEMPT_UNTIL};
use super::{CompiledPolicy, Workload, selector};
use crate::api::Exemption;

/// Where an exemption was granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExemptionSource {
    /// `spec.exemptions[index]` of the policy.
    Policy {
        /// Index in `spec.exemptions`.
        index: usize,
    },
    /// The workload's `prodready.dev/exempt` annotations.
    Annotation,
}

/// An exemption that applies to a (workload, rule) pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedExemption {
    /// Its stated reason.
    pub reason: String,
    /// When it stops applying.
    pub expires: Option<Timestamp>,
    /// Where it was granted.
    pub source: ExemptionSource,
}

/// The exemptions that concern one workload, found once and then asked per rule.
#[derive(Debug, Default)]
pub(crate) struct WorkloadExemptions<'p> {
    policy: Vec<(usize, &'p Exemption)>,
    annotation: Option<(Vec<String>, AppliedExemption)>,
    /// Why the workload's own exemption annotations were not honoured, if they were not.
    pub ignored_annotation: Option<String>,
}

fn covers(rules: &[String], id: &str) -> bool {
    rules.iter().any(|r| r == "*" || r == id)
}

impl<'p> WorkloadExemptions<'p> {
    pub(crate) fn find(policy: &'p CompiledPolicy, w: &Workload, now: Timestamp) -> Self {
        let mut out = WorkloadExemptions::default();
        for (index, ex) in policy.spec.exemptions.iter().enumerate() {
            let live = ex.expires.as_ref().is_none_or(|t| now < t.0);
            let ns_ok = ex.namespaces.is_empty() || ex.namespaces.contains(&w.namespace);
            let name_ok = ex.names.is_empty() || ex.names.contains(&w.name);
            let sel_ok = ex
                .selector
                .as_ref()
                .is_none_or(|s| selector::matches(s, &w.labels));
            if live && ns_ok && name_ok && sel_ok {
                out.policy.push((index, ex));
            }
        }
        if let Some(list) = w.annotation(ANNOTATION_EXEMPT) {
            let rules: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let reason = w
                .annotation(ANNOTATION_EXEMPT_REASON)
                .map(str::trim)
                .unwrap_or("");
            let until = w.annotation(ANNOTATION_EXEMPT_UNTIL).map(str::trim);
            let expires = until.map(|u| u.parse::<Timestamp>());
            out.ignored_annotation = if !policy.spec.allow_annotation_exemptions {
                Some(format!(
                    "annotation {ANNOTATION_EXEMPT} ignored: policy {} does not allow annotation exemptions",
                    policy.name
                ))
            } else if reason.is_empty() {
                Some(format!(
                    "annotation {ANNOTATION_EXEMPT} ignored: {ANNOTATION_EXEMPT_REASON} is missing"
                ))
            } else if let Some(Err(e)) = &expires {
                Some(format!(
                    "annotation {ANNOTATION_EXEMPT} ignored: {ANNOTATION_EXEMPT_UNTIL} is not an RFC 3339 instant ({e})"
                ))
            } else if let Some(Ok(t)) = &expires
                && *t <= now
            {
                Some(format!("annotation {ANNOTATION_EXEMPT} expired at {t}"))
            } else {
                let expires = expires.and_then(Result::ok);
                out.annotation = Some((
                    rules,
                    AppliedExemption {
                        reason: reason.to_owned(),
                        expires,
                        source: ExemptionSource::Annotation,
                    },
                ));
                None
            };
        }
        out
    }

    /// The exemption that applies to a rule, if any (policy exemptions first).
    pub(crate) fn for_rule(&self, id: &str) -> Option<AppliedExemption> {
        if let Some((index, ex)) = self.policy.iter().find(|(_, ex)| covers(&ex.rules, id)) {
            return Some(AppliedExemption {
                reason: ex.reason.clone(),
                expires: ex.expires.as_ref().map(|t| t.0),
                source: ExemptionSource::Policy { index: *index },
            });
        }
        match &self.annotation {
            Some((rules, applied)) if covers(rules, id) => Some(applied.clone()),
            _ => None,
        }
    }

    /// The earliest expiry among the exemptions found (for scheduling a re-evaluation).
    pub(crate) fn next_expiry(&self) -> Option<Timestamp> {
        let policy = self
            .policy
            .iter()
            .filter_map(|(_, e)| e.expires.as_ref().map(|t| t.0));
        let annotation = self.annotation.as_ref().and_then(|(_, a)| a.expires);
        policy.chain(annotation).min()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::api::{ProductionPolicySpec, Profile};
    use crate::engine::{Context, Outcome, WorkloadVerdict};
    use crate::rules::testing::{now, workload};

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
        CompiledPolicy::from_spec("p", spec).expect("valid policy")
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
}
