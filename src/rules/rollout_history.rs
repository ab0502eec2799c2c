//! `rollout-history`: a rollback path exists and a rollout never takes every pod down at once.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Check, Examples, RuleDef, Verdict, Violation};
use crate::api::{Severity, WorkloadKind};

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "rollout-history",
    summary: "a rollback path exists: revisionHistoryLimit is not 0; maxUnavailable is not 100%",
    rubric: "O5",
    default_enabled: true,
    default_severity: Severity::Low,
    rationale: "With `revisionHistoryLimit: 0` the controller deletes every old revision, so \
        `kubectl rollout undo` has nothing to go back to and a bad release can only be fixed \
        forward, under pressure. A rolling update whose `maxUnavailable` covers every pod \
        takes the whole workload down at once, so a bad image is an outage before any \
        readiness gate can stop it. (`Recreate` is accepted: single-runner workloads need it.)",
    example: "spec:\n  revisionHistoryLimit: 10\n  strategy:\n    type: RollingUpdate\n    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}",
    checks: "A Deployment, StatefulSet or DaemonSet must keep a revision to roll back to \
        (`revisionHistoryLimit` not 0), and a RollingUpdate must not take every pod down at once \
        (`rollingUpdate.maxUnavailable` below the replica count, or below 100%). One finding per \
        problem. Other kinds are not applicable.",
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
  replicas: 3
  revisionHistoryLimit: 0
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
  revisionHistoryLimit: 10
  strategy:
    rollingUpdate: {maxUnavailable: 25%, maxSurge: 1}
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
    let rollout = match (w.kind, &w.rollout) {
        (
            WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet,
            Some(r),
        ) => r,
        _ => return Verdict::NotApplicable,
    };
    let mut violations = Vec::new();
    if let Some(limit) = rollout.revision_history_limit.filter(|l| *l <= 0) {
        violations.push(Violation::workload(
            format!("revisionHistoryLimit is {limit}, so there is no revision to roll back to"),
            "set revisionHistoryLimit to a few revisions (e.g. 10)",
        ));
    }
    let rolling = rollout
        .strategy
        .as_deref()
        .is_none_or(|s| s == "RollingUpdate");
    if let (true, Some(max)) = (rolling, &rollout.max_unavailable)
        && let Some(shown) = takes_all_down(w.kind, w.replicas, max)
    {
        violations.push(Violation::workload(
            format!(
                "rollingUpdate maxUnavailable is {shown}, so a rollout takes every pod down at once"
            ),
            "lower maxUnavailable (e.g. 25% or 0 with maxSurge 1)",
        ));
    }
    Verdict::from_violations(violations)
}

/// The value as shown to users when `maxUnavailable` covers every pod, `None` otherwise.
/// A percentage covers every pod at 100% or more; an integer when it is at least the
/// declared replicas (unknowable for a DaemonSet, whose size is the node count). A
/// single-replica StatefulSet is exempt: it cannot surge, so any update restarts its pod.
fn takes_all_down(kind: WorkloadKind, replicas: Option<i32>, max: &IntOrString) -> Option<String> {
    let n = match max {
        IntOrString::String(s) => {
            let s = s.trim();
            return match s.strip_suffix('%').map(|p| p.trim().parse::<i64>()) {
                Some(Ok(p)) if p >= 100 && !single_replica_statefulset(kind, replicas) => {
                    Some(format!("\"{s}\""))
                }
                Some(_) => None,
                // Kubernetes reads a percent-less string as an integer.
                None => s
                    .parse::<i32>()
                    .ok()
                    .and_then(|n| takes_all_down(kind, replicas, &IntOrString::Int(n))),
            };
        }
        IntOrString::Int(n) => *n,
    };
    let replicas = match kind {
        WorkloadKind::Deployment | WorkloadKind::StatefulSet => replicas?,
        _ => return None,
    };
    (replicas >= 1 && n >= replicas && !single_replica_statefulset(kind, Some(replicas)))
        .then(|| format!("{n} with {replicas} replicas"))
}

fn single_replica_statefulset(kind: WorkloadKind, replicas: Option<i32>) -> bool {
    kind == WorkloadKind::StatefulSet && replicas.is_some_and(|r| r <= 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{check, violations, workload};

    fn deployment(spec_extra: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  selector: {{}}\n{spec_extra}  template:\n    spec:\n      containers: [{{name: app, image: 'app:1'}}]\n"
        )
    }

    fn messages(v: Verdict) -> Vec<String> {
        violations(v).into_iter().map(|v| v.message).collect()
    }

    #[test]
    fn passes_with_defaults_and_sane_settings() {
        assert_eq!(check(&RULE, &workload(&deployment(""))), Verdict::Pass);
        let w = workload(&deployment(
            "  replicas: 3\n  revisionHistoryLimit: 5\n  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1, maxSurge: 1}}\n",
        ));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
        let w = workload(&deployment(
            "  replicas: 4\n  strategy: {rollingUpdate: {maxUnavailable: '50%'}}\n",
        ));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn zero_history_fails() {
        let w = workload(&deployment("  revisionHistoryLimit: 0\n"));
        let v = violations(check(&RULE, &w));
        assert_eq!(
            v[0].message,
            "revisionHistoryLimit is 0, so there is no revision to roll back to"
        );
        assert!(v[0].container.is_none());
    }

    #[test]
    fn max_unavailable_covering_every_pod_fails() {
        let w = workload(&deployment(
            "  replicas: 3\n  strategy: {rollingUpdate: {maxUnavailable: '100%'}}\n",
        ));
        assert_eq!(
            messages(check(&RULE, &w)),
            vec![
                "rollingUpdate maxUnavailable is \"100%\", so a rollout takes every pod down at once"
            ]
        );
        let w = workload(&deployment(
            "  replicas: 3\n  strategy: {rollingUpdate: {maxUnavailable: 3}}\n",
        ));
        assert_eq!(
            messages(check(&RULE, &w)),
            vec![
                "rollingUpdate maxUnavailable is 3 with 3 replicas, so a rollout takes every pod down at once"
            ]
        );
        // Unset replicas means 1.
        let w = workload(&deployment(
            "  revisionHistoryLimit: 0\n  strategy: {rollingUpdate: {maxUnavailable: 1}}\n",
        ));
        assert_eq!(messages(check(&RULE, &w)).len(), 2);
    }

    #[test]
    fn recreate_is_accepted_even_with_stale_rolling_settings() {
        let w = workload(&deployment("  strategy: {type: Recreate}\n"));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn daemonsets_fail_only_on_percentages() {
        let ds = |max: &str| {
            workload(&format!(
                "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {{name: d}}\nspec:\n  selector: {{}}\n  updateStrategy: {{type: RollingUpdate, rollingUpdate: {{maxUnavailable: {max}}}}}\n  template:\n    spec:\n      containers: [{{name: a, image: 'a:1'}}]\n"
            ))
        };
        assert_eq!(messages(check(&RULE, &ds("'100%'"))).len(), 1);
        assert_eq!(check(&RULE, &ds("50")), Verdict::Pass);
        assert_eq!(check(&RULE, &ds("'10%'")), Verdict::Pass);
    }

    #[test]
    fn statefulsets_need_two_replicas_for_max_unavailable_to_matter() {
        let sts = |replicas: i32, max: &str| {
            workload(&format!(
                "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: s}}\nspec:\n  replicas: {replicas}\n  serviceName: s\n  selector: {{}}\n  revisionHistoryLimit: 0\n  updateStrategy: {{rollingUpdate: {{maxUnavailable: {max}}}}}\n  template:\n    spec:\n      containers: [{{name: a, image: 'a:1'}}]\n"
            ))
        };
        assert_eq!(messages(check(&RULE, &sts(1, "1"))).len(), 1);
        assert_eq!(messages(check(&RULE, &sts(1, "'100%'"))).len(), 1);
        assert_eq!(messages(check(&RULE, &sts(3, "3"))).len(), 2);
        assert_eq!(messages(check(&RULE, &sts(3, "2"))).len(), 1);
    }

    #[test]
    fn other_kinds_are_not_applicable() {
        for yaml in [
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\n",
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template: {}\n",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
            "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\nspec:\n  selector: {}\n",
        ] {
            assert_eq!(check(&RULE, &workload(yaml)), Verdict::NotApplicable);
        }
    }

    #[test]
    fn max_unavailable_parsing_edges() {
        let d = WorkloadKind::Deployment;
        let s = |v: &str| IntOrString::String(v.to_owned());
        assert_eq!(
            takes_all_down(d, Some(2), &s("150%")),
            Some("\"150%\"".to_owned())
        );
        assert_eq!(
            takes_all_down(d, Some(2), &s("2")),
            Some("2 with 2 replicas".to_owned())
        );
        assert_eq!(takes_all_down(d, Some(2), &s("abc%")), None);
        assert_eq!(takes_all_down(d, Some(2), &s("")), None);
        assert_eq!(takes_all_down(d, Some(0), &IntOrString::Int(1)), None);
    }
}
