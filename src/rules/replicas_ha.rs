//! `replicas-ha`: Deployments and StatefulSets run enough replicas to survive losing one pod.

use super::{Check, RuleDef, Verdict, Violation};
use crate::api::{Severity, WorkloadKind};

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "replicas-ha",
    summary: "Deployments and StatefulSets run at least 2 replicas (not for single-runner workloads)",
    rubric: "I5",
    default_enabled: true,
    default_severity: Severity::Medium,
    rationale: "A single replica is down whenever its node is drained for an upgrade, its pod is \
        evicted for pressure, or its container crashes and restarts with back-off. Two or more \
        replicas, with a PodDisruptionBudget and spread across nodes, turn those routine events \
        into non-events. Workloads that must run alone declare it with \
        prodready.dev/single-runner and are checked by leader-lease instead.",
    example: "spec:\n  replicas: 2",
    check,
};

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    if !matches!(w.kind, WorkloadKind::Deployment | WorkloadKind::StatefulSet) {
        return Verdict::NotApplicable;
    }
    if w.is_single_runner() {
        return Verdict::NotApplicable;
    }
    let replicas = w.replicas.unwrap_or(1);
    let min = c.params.min_replicas;
    if replicas >= min {
        return Verdict::Pass;
    }
    let noun = if replicas == 1 { "replica" } else { "replicas" };
    Verdict::Fail(vec![Violation::workload(
        format!("runs {replicas} {noun}: a node drain or crash takes it down"),
        format!("set replicas: {min} or more"),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Context;
    use crate::rules::Params;
    use crate::rules::testing::{check, check_with, violations, workload};

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
