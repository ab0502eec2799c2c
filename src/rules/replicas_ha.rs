//! `replicas-ha`: Deployments and StatefulSets run enough replicas to survive losing one pod.

use super::{Check, Examples, RuleDef, Verdict, Violation};
use crate::api::{Severity, WorkloadKind};
use crate::engine::autoscaler;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "replicas-ha",
    summary: "Deployments and StatefulSets run at least 2 replicas, counting an HPA's minReplicas (not for single-runner workloads); an HPA-scaled workload does not also set replicas",
    rubric: "I5",
    default_enabled: true,
    default_severity: Severity::Medium,
    rationale: "A single replica is down whenever its node is drained for an upgrade, its pod is \
        evicted for pressure, or its container crashes and restarts with back-off. Two or more \
        replicas, with a PodDisruptionBudget and spread across nodes, turn those routine events \
        into non-events. A workload scaled by a HorizontalPodAutoscaler runs at least the \
        autoscaler's minReplicas, so that is the count judged; its manifest should then leave \
        replicas out, or every apply resets the count the autoscaler chose (on a live object \
        only a kubectl apply record tells what was applied). Two autoscalers on one workload \
        fight over its count. Workloads that must run alone declare it with \
        prodready.dev/single-runner and are checked by leader-lease instead.",
    example: "spec:\n  replicas: 2\n# or, scaled: leave replicas out and set on the HorizontalPodAutoscaler\nspec:\n  minReplicas: 2",
    checks: "A Deployment or StatefulSet must run at least `minReplicas` (default 2) replicas: \
        its `replicas`, or, when HorizontalPodAutoscalers in the input scale it, their lowest \
        `minReplicas`. An autoscaled workload must not also set `spec.replicas` (every apply \
        resets the autoscaler's count), and must not be scaled by two autoscalers. Single-runner \
        workloads (`prodready.dev/single-runner: \"true\"`) and every other kind are not \
        applicable.",
    examples: Examples {
        settings: "",
        fail: FAIL,
        pass: PASS,
    },
    check,
};

/// A manifest the rule fails (its page shows it; a test runs it).
const FAIL: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/web:1.4.2
"#;

/// A manifest the rule passes.
const PASS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/web:1.4.2
"#;

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    if !matches!(w.kind, WorkloadKind::Deployment | WorkloadKind::StatefulSet) {
        return Verdict::NotApplicable;
    }
    if w.is_single_runner() {
        return Verdict::NotApplicable;
    }
    let Some(count) = c.replica_count() else {
        return Verdict::NotApplicable;
    };
    let min = c.params.min_replicas;
    let mut found = Vec::new();
    if count.autoscalers.len() > 1 {
        found.push(Violation::workload(
            format!(
                "HorizontalPodAutoscalers {} all scale it: they fight over its replica count",
                autoscaler::names(&count.autoscalers)
            ),
            "keep one HorizontalPodAutoscaler per workload",
        ));
    }
    if !count.autoscalers.is_empty() && w.replicas_declared == Some(true) {
        found.push(Violation::workload(
            format!(
                "sets replicas: {} while HorizontalPodAutoscaler {} scales it: every apply resets the count the autoscaler chose",
                w.replicas.unwrap_or(1),
                autoscaler::names(&count.autoscalers)
            ),
            "remove spec.replicas from the manifest and let the HorizontalPodAutoscaler own it",
        ));
    }
    if count.min < min {
        let (message, remediation) = if count.autoscalers.is_empty() {
            (
                format!(
                    "runs {}: a node drain or crash takes it down",
                    count.describe_min()
                ),
                format!("set replicas: {min} or more"),
            )
        } else {
            (
                format!(
                    "scales down to {}: a node drain or crash takes it down",
                    count.describe_min()
                ),
                format!("set minReplicas: {min} or more on the HorizontalPodAutoscaler"),
            )
        };
        found.push(Violation::workload(message, remediation));
    }
    Verdict::from_violations(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Context;
    use crate::rules::Params;
    use crate::rules::testing::{check, check_with, context, violations, workload};

    fn apps(kind: &str, replicas: &str, annotations: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: {kind}\nmetadata: {{name: web, annotations: {{{annotations}}}}}\nspec:\n  {replicas}\n  selector: {{}}\n  template: {{spec: {{containers: [{{name: a, image: 'a:1'}}]}}}}\n"
        )
    }

    #[test]
    fn two_or_more_replicas_pass() {
        for kind in ["Deployment", "StatefulSet"] {
            assert_eq!(
                check(&RULE, &workload(&apps(kind, "replicas: 2", ""))),
                Verdict::Pass
            );
            assert_eq!(
                check(&RULE, &workload(&apps(kind, "replicas: 5", ""))),
                Verdict::Pass
            );
        }
    }

    #[test]
    fn one_replica_fails() {
        for kind in ["Deployment", "StatefulSet"] {
            let v = violations(check(&RULE, &workload(&apps(kind, "replicas: 1", ""))));
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].container, None);
            assert_eq!(
                v[0].message,
                "runs 1 replica: a node drain or crash takes it down"
            );
            assert_eq!(v[0].remediation, "set replicas: 2 or more");
        }
    }

    #[test]
    fn unset_replicas_counts_as_one_and_zero_fails() {
        let unset = violations(check(&RULE, &workload(&apps("Deployment", "", ""))));
        assert_eq!(
            unset[0].message,
            "runs 1 replica: a node drain or crash takes it down"
        );
        let zero = violations(check(
            &RULE,
            &workload(&apps("Deployment", "replicas: 0", "")),
        ));
        assert_eq!(
            zero[0].message,
            "runs 0 replicas: a node drain or crash takes it down"
        );
    }

    #[test]
    fn min_replicas_parameter_is_honoured() {
        let w = workload(&apps("Deployment", "replicas: 2", ""));
        let three = Params {
            min_replicas: 3,
            ..Params::default()
        };
        let v = violations(check_with(&RULE, &w, &Context::default(), &three));
        assert_eq!(
            v[0].message,
            "runs 2 replicas: a node drain or crash takes it down"
        );
        assert!(v[0].remediation.starts_with("set replicas: 3 or more"));
        let one = Params {
            min_replicas: 1,
            ..Params::default()
        };
        let single = workload(&apps("Deployment", "replicas: 1", ""));
        assert_eq!(
            check_with(&RULE, &single, &Context::default(), &one),
            Verdict::Pass
        );
    }

    fn hpa(name: &str, target: &str, min: &str) -> String {
        format!(
            "\n---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: {name}}}\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {target}}}\n  {min}\n  maxReplicas: 10\n"
        )
    }

    fn with_hpa(replicas: &str, hpas: &str) -> Verdict {
        check_with(
            &RULE,
            &workload(&apps("Deployment", replicas, "")),
            &context(hpas),
            &Params::default(),
        )
    }

    #[test]
    fn an_autoscaled_deployment_without_replicas_is_judged_by_min_replicas() {
        assert_eq!(
            with_hpa("", &hpa("web", "web", "minReplicas: 3")),
            Verdict::Pass
        );
        let v = violations(with_hpa("", &hpa("web", "web", "minReplicas: 1")));
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].message,
            "scales down to minReplicas 1 of HorizontalPodAutoscaler \"web\": a node drain or crash takes it down"
        );
        assert_eq!(
            v[0].remediation,
            "set minReplicas: 2 or more on the HorizontalPodAutoscaler"
        );
        // minReplicas defaults to 1.
        let v = violations(with_hpa("", &hpa("web", "web", "")));
        assert!(v[0].message.starts_with("scales down to minReplicas 1 "));
    }

    #[test]
    fn an_autoscaled_deployment_that_also_sets_replicas_fails_even_with_enough() {
        let v = violations(with_hpa(
            "replicas: 3",
            &hpa("web", "web", "minReplicas: 3"),
        ));
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].message,
            "sets replicas: 3 while HorizontalPodAutoscaler \"web\" scales it: every apply resets the count the autoscaler chose"
        );
        assert_eq!(
            v[0].remediation,
            "remove spec.replicas from the manifest and let the HorizontalPodAutoscaler own it"
        );
        // With too low a minimum too: both are said.
        let v = violations(with_hpa(
            "replicas: 3",
            &hpa("web", "web", "minReplicas: 1"),
        ));
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn on_a_live_object_replicas_count_as_declared_only_per_the_apply_record() {
        let live = |annotations: &str| {
            workload(&format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, uid: u-1, annotations: {{{annotations}}}}}\nspec:\n  replicas: 1\n  selector: {{}}\n  template: {{spec: {{containers: [{{name: a, image: 'a:1'}}]}}}}\n"
            ))
        };
        let ctx = context(&hpa("web", "web", "minReplicas: 2"));
        // Defaulted by the API server (helm, server-side apply): no record, not reported.
        let defaulted = live("");
        assert_eq!(defaulted.replicas_declared, None);
        assert_eq!(
            check_with(&RULE, &defaulted, &ctx, &Params::default()),
            Verdict::Pass
        );
        let applied_without = live(
            "kubectl.kubernetes.io/last-applied-configuration: '{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"spec\":{\"selector\":{}}}'",
        );
        assert_eq!(
            check_with(&RULE, &applied_without, &ctx, &Params::default()),
            Verdict::Pass
        );
        let applied_with =
            live("kubectl.kubernetes.io/last-applied-configuration: '{\"spec\":{\"replicas\":1}}'");
        let v = violations(check_with(&RULE, &applied_with, &ctx, &Params::default()));
        assert!(v[0].message.starts_with("sets replicas: 1 while"), "{v:?}");
    }

    #[test]
    fn an_autoscaler_of_another_workload_kind_or_namespace_does_not_count() {
        let other_name = hpa("api", "api", "minReplicas: 3");
        assert!(matches!(with_hpa("", &other_name), Verdict::Fail(_)));
        let other_kind = "\n---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\nspec: {scaleTargetRef: {kind: StatefulSet, name: web}, minReplicas: 3, maxReplicas: 4}\n";
        assert!(matches!(with_hpa("", other_kind), Verdict::Fail(_)));
        let other_ns = "\n---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web, namespace: other}\nspec: {scaleTargetRef: {kind: Deployment, name: web}, minReplicas: 3, maxReplicas: 4}\n";
        assert!(matches!(with_hpa("", other_ns), Verdict::Fail(_)));
        // autoscaling/v1 has the same scaling fields.
        let v1 = "\n---\napiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\nspec: {scaleTargetRef: {kind: Deployment, name: web}, minReplicas: 2, maxReplicas: 4, targetCPUUtilizationPercentage: 80}\n";
        assert_eq!(with_hpa("", v1), Verdict::Pass);
    }

    #[test]
    fn two_autoscalers_on_one_workload_fail() {
        let both = format!(
            "{}{}",
            hpa("web-b", "web", "minReplicas: 3"),
            hpa("web-a", "web", "minReplicas: 2")
        );
        let v = violations(with_hpa("", &both));
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].message,
            "HorizontalPodAutoscalers \"web-a\", \"web-b\" all scale it: they fight over its replica count"
        );
    }

    #[test]
    fn single_runner_workloads_are_not_applicable() {
        let w = workload(&apps(
            "Deployment",
            "replicas: 1",
            "prodready.dev/single-runner: 'true'",
        ));
        assert_eq!(check(&RULE, &w), Verdict::NotApplicable);
        let not_really = workload(&apps(
            "Deployment",
            "replicas: 1",
            "prodready.dev/single-runner: 'no'",
        ));
        assert!(matches!(check(&RULE, &not_really), Verdict::Fail(_)));
    }

    #[test]
    fn other_kinds_are_not_applicable() {
        let rs = workload(&apps("ReplicaSet", "replicas: 1", ""));
        assert_eq!(check(&RULE, &rs), Verdict::NotApplicable);
        let ds = workload(&apps("DaemonSet", "", ""));
        assert_eq!(check(&RULE, &ds), Verdict::NotApplicable);
        let pod = workload(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: 'a:1'}]\n",
        );
        assert_eq!(check(&RULE, &pod), Verdict::NotApplicable);
        let job = workload(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template: {spec: {containers: [{name: a, image: 'a:1'}]}}\n",
        );
        assert_eq!(check(&RULE, &job), Verdict::NotApplicable);
        let cron = workload(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: '@daily'\n  jobTemplate: {spec: {template: {spec: {containers: [{name: a, image: 'a:1'}]}}}}\n",
        );
        assert_eq!(check(&RULE, &cron), Verdict::NotApplicable);
    }

    #[test]
    fn missing_spec_is_one_replica() {
        let w = workload("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\n");
        assert!(matches!(check(&RULE, &w), Verdict::Fail(_)));
    }
}
