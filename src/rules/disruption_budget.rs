//! `disruption-budget`: exactly one PodDisruptionBudget covers a multi-replica workload, and
//! it lets at least one pod be evicted at full strength.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Check, Examples, RuleDef, Verdict, Violation};
use crate::api::{Severity, WorkloadKind};
use crate::engine::service::BudgetView;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "disruption-budget",
    summary: "a PodDisruptionBudget selects the pods of a multi-replica workload and allows at least one disruption (at an HPA's minReplicas when autoscaled)",
    rubric: "I5",
    default_enabled: true,
    default_severity: Severity::Medium,
    rationale: "Without a PodDisruptionBudget a node drain may evict every replica at once, and \
        the extra replicas buy nothing during cluster upgrades. The budget must still allow one \
        eviction when all replicas are healthy: a budget that allows none (minAvailable equal to \
        the replica count, maxUnavailable 0) makes every drain hang, and pods covered by two \
        budgets cannot be evicted at all, because the eviction API refuses them. A workload \
        scaled by a HorizontalPodAutoscaler is judged at the autoscaler's minReplicas, even \
        when that is one: a minAvailable not below minReplicas blocks every drain while the \
        autoscaler keeps the workload small.",
    example: "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec:\n  maxUnavailable: 1\n  selector: {matchLabels: {app: web}}",
    checks: "Applies to Deployments, StatefulSets and ReplicaSets with more than one replica \
        (for an autoscaled one, its HorizontalPodAutoscaler's minReplicas; an autoscaled \
        workload that may scale to one is still judged when a budget covers it). Exactly one \
        policy/v1 PodDisruptionBudget in the namespace must select the pods (a budget without a \
        selector selects nothing; `selector: {}` selects every pod), and it must allow one \
        eviction with every replica healthy: `maxUnavailable` (read first) above 0, or \
        `minAvailable` below the replica count, percentages rounded up as Kubernetes does. A \
        value that is neither an integer nor a percentage is a finding. With \
        `requireUnhealthyPodEvictionAlwaysAllow`, the budget must also set \
        `unhealthyPodEvictionPolicy: AlwaysAllow`. One replica, DaemonSets, Jobs, CronJobs and \
        Pods are not applicable.\n\nA budget without `unhealthyPodEvictionPolicy: AlwaysAllow` \
        (the default is `IfHealthyBudget`) lets the eviction API evict a running but not-ready \
        pod only while the budget is met. When a pod crash-loops the budget is not met, so that \
        very pod cannot be evicted and every drain of its node hangs until someone deletes it by \
        hand (kube-linter's `pdb-unhealthy-pod-eviction-policy`). This rule covers it, since it \
        is about the same PodDisruptionBudget blocking drains, behind the parameter \
        `requireUnhealthyPodEvictionAlwaysAllow`. It is off by default: almost every existing \
        budget leaves the field unset, and turning it on by default would flip those workloads \
        to violating in the operator's status, in enforced admission and in CI without any \
        change to their policy. Turn it on once your clusters run Kubernetes 1.31 or later (the \
        field is GA there; older API servers may drop it).",
    examples: Examples {
        settings: "requireUnhealthyPodEvictionAlwaysAllow: true",
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
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/web:1.4.2
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  minAvailable: 3
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
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  maxUnavailable: 1
  unhealthyPodEvictionPolicy: AlwaysAllow
"#;

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    if !matches!(
        w.kind,
        WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::ReplicaSet
    ) {
        return Verdict::NotApplicable;
    }
    let Some(count) = c.replica_count() else {
        return Verdict::NotApplicable;
    };
    let replicas = count.min;
    let covering: Vec<&BudgetView> = c
        .context
        .pdbs(&w.namespace)
        .iter()
        .map(AsRef::as_ref)
        .filter(|pdb| selects(pdb, &w.pod_labels))
        .collect();
    // A single replica needs no budget. An autoscaled workload that may scale down to one
    // still has its budget judged at that minimum: a budget that blocks there blocks every
    // drain while the autoscaler keeps it small.
    if replicas <= 1 && (count.autoscalers.is_empty() || covering.is_empty()) {
        return Verdict::NotApplicable;
    }
    let pdb = match covering.as_slice() {
        [] => {
            return fail(
                format!(
                    "no PodDisruptionBudget selects the pods of {}/{}: a node drain may evict every replica at once",
                    w.kind, w.name
                ),
                "add a PodDisruptionBudget with maxUnavailable: 1 selecting the pods",
            );
        }
        [one] => *one,
        several => {
            let names = several
                .iter()
                .map(|p| format!("\"{}\"", name_of(p)))
                .collect::<Vec<_>>()
                .join(", ");
            return fail(
                format!(
                    "PodDisruptionBudgets {names} all select the pods: the eviction API refuses to evict them, node drains hang"
                ),
                "keep a single PodDisruptionBudget for these pods",
            );
        }
    };
    let budget = check_budget(pdb, replicas, &count.describe_min());
    if !c.params.require_unhealthy_pod_eviction_always_allow {
        return budget;
    }
    match (budget, eviction_policy(pdb)) {
        (verdict, None) => verdict,
        (Verdict::Fail(mut found), Some(v)) => {
            found.push(v);
            Verdict::Fail(found)
        }
        (_, Some(v)) => Verdict::Fail(vec![v]),
    }
}

/// The value Kubernetes gives `unhealthyPodEvictionPolicy` when a budget leaves it out.
const DEFAULT_EVICTION_POLICY: &str = "IfHealthyBudget";

/// A finding unless the budget lets the eviction API evict pods that are running but not
/// ready whatever the budget says (`AlwaysAllow`). Under `IfHealthyBudget` such a pod is
/// evicted only while the budget is met, and a crash-looping pod is exactly what keeps it
/// from being met: the drain waits on the pod that will never get healthy.
fn eviction_policy(pdb: &BudgetView) -> Option<Violation> {
    let written = pdb.unhealthy_pod_eviction_policy.as_deref().map(str::trim);
    if written == Some("AlwaysAllow") {
        return None;
    }
    let name = name_of(pdb);
    let has = match written {
        None | Some("") => {
            format!("leaves unhealthyPodEvictionPolicy unset (so {DEFAULT_EVICTION_POLICY})")
        }
        Some(other) => {
            let shown: String = other.chars().take(40).collect();
            format!("has unhealthyPodEvictionPolicy \"{shown}\"")
        }
    };
    Some(Violation::workload(
        format!(
            "PodDisruptionBudget \"{name}\" {has}: a crash-looping pod cannot be evicted while the budget is not met, so node drains hang"
        ),
        "set unhealthyPodEvictionPolicy: AlwaysAllow on the PodDisruptionBudget",
    ))
}

/// Whether a policy/v1 budget selects the pods: an absent selector selects nothing, an
/// empty one (`{}`) every pod in the namespace.
fn selects(pdb: &BudgetView, labels: &BTreeMap<String, String>) -> bool {
    pdb.selector.as_ref().is_some_and(|sel| sel.matches(labels))
}

fn name_of(pdb: &BudgetView) -> &str {
    &pdb.name
}

const BLOCKS: &str = "no pod can ever be evicted, node drains hang";
const REMEDIATION: &str = "set maxUnavailable: 1 (or minAvailable below the replica count, or an autoscaler's minReplicas)";

/// Whether the one budget allows an eviction with every replica healthy. The disruption
/// controller reads `maxUnavailable` first, then `minAvailable`; with neither it requires no
/// healthy pods, so such a budget allows evictions.
/// `count` names the replica count as messages say it (`3 replicas`, `minReplicas 3 of …`).
fn check_budget(pdb: &BudgetView, replicas: i32, count: &str) -> Verdict {
    let name = name_of(pdb);
    if let Some(max) = pdb.max_unavailable.as_ref() {
        let allowed = match scaled(max, replicas) {
            Ok(n) => n,
            Err(shown) => return malformed(name, "maxUnavailable", &shown),
        };
        if allowed > 0 {
            return Verdict::Pass;
        }
        return fail(
            format!(
                "PodDisruptionBudget \"{name}\" has maxUnavailable {} with {count}: {BLOCKS}",
                show(max)
            ),
            REMEDIATION,
        );
    }
    if let Some(min) = pdb.min_available.as_ref() {
        let required = match scaled(min, replicas) {
            Ok(n) => n,
            Err(shown) => return malformed(name, "minAvailable", &shown),
        };
        if required < i64::from(replicas) {
            return Verdict::Pass;
        }
        return fail(
            format!(
                "PodDisruptionBudget \"{name}\" has minAvailable {} with {count}: {BLOCKS}",
                show(min)
            ),
            REMEDIATION,
        );
    }
    Verdict::Pass
}

/// An int as is, or a percentage of `replicas` rounded up (as Kubernetes scales both PDB
/// fields). `Err` carries the value as written when it is neither.
fn scaled(value: &IntOrString, replicas: i32) -> Result<i64, String> {
    match value {
        IntOrString::Int(n) => Ok(i64::from(*n)),
        IntOrString::String(s) => {
            let percent = s
                .strip_suffix('%')
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<i64>().ok())
                .ok_or_else(|| s.clone())?;
            let total = i64::from(replicas).saturating_mul(percent);
            Ok(total.saturating_add(99) / 100)
        }
    }
}

fn show(value: &IntOrString) -> String {
    match value {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => format!("\"{s}\""),
    }
}

fn malformed(name: &str, field: &str, shown: &str) -> Verdict {
    // Cut an absurd value short so the message stays one line.
    let shown: String = shown.chars().take(40).collect();
    fail(
        format!(
            "PodDisruptionBudget \"{name}\" has {field} \"{shown}\", which is neither an integer nor a percentage like \"50%\""
        ),
        format!("set {field} to an integer or a percentage such as \"50%\""),
    )
}

fn fail(message: String, remediation: impl Into<String>) -> Verdict {
    Verdict::Fail(vec![Violation::workload(message, remediation)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Workload;
    use crate::rules::Params;
    use crate::rules::testing::{check, check_with, context, violations, workload};

    fn web(replicas: i32) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: shop}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: a, image: 'a:1'}}]}}\n"
        )
    }

    fn pdb(name: &str, budget: &str, selector: &str) -> String {
        format!(
            "\n---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  {budget}\n  {selector}\n"
        )
    }

    const APP_WEB: &str = "selector: {matchLabels: {app: web}}";

    fn run(replicas: i32, ctx: &str) -> Verdict {
        check_with(
            &RULE,
            &workload(&web(replicas)),
            &context(ctx),
            &Params::default(),
        )
    }

    fn message(v: Verdict) -> String {
        violations(v).remove(0).message
    }

    /// The Deployment `web` without replicas, and an HPA on it with `minReplicas: min`.
    fn autoscaled(min: i32) -> (Workload, String) {
        let w = workload(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: a, image: 'a:1'}]}\n",
        );
        let hpa = format!(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: web-hpa, namespace: shop}}\nspec: {{scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}, minReplicas: {min}, maxReplicas: 10}}\n"
        );
        (w, hpa)
    }

    fn run_autoscaled(min: i32, pdbs: &str) -> Verdict {
        let (w, hpa) = autoscaled(min);
        check_with(
            &RULE,
            &w,
            &context(&format!("{hpa}{pdbs}")),
            &Params::default(),
        )
    }

    #[test]
    fn an_autoscaled_workload_is_judged_at_its_min_replicas() {
        // Unset replicas read as 1, but the autoscaler keeps 3: a budget is needed.
        assert_eq!(
            message(run_autoscaled(3, "")),
            "no PodDisruptionBudget selects the pods of Deployment/web: a node drain may evict every replica at once"
        );
        assert_eq!(
            run_autoscaled(3, &pdb("web", "maxUnavailable: 1", APP_WEB)),
            Verdict::Pass
        );
        // Polaris's check: minAvailable not below minReplicas blocks every drain.
        assert_eq!(
            message(run_autoscaled(3, &pdb("web", "minAvailable: 3", APP_WEB))),
            "PodDisruptionBudget \"web\" has minAvailable 3 with minReplicas 3 of HorizontalPodAutoscaler \"web-hpa\": no pod can ever be evicted, node drains hang"
        );
        assert_eq!(
            run_autoscaled(3, &pdb("web", "minAvailable: 2", APP_WEB)),
            Verdict::Pass
        );
    }

    #[test]
    fn an_autoscaled_workload_that_may_run_one_pod_needs_no_budget_but_a_blocking_one_fails() {
        assert_eq!(run_autoscaled(1, ""), Verdict::NotApplicable);
        assert_eq!(
            run_autoscaled(1, &pdb("web", "maxUnavailable: 1", APP_WEB)),
            Verdict::Pass
        );
        assert_eq!(
            message(run_autoscaled(1, &pdb("web", "minAvailable: 1", APP_WEB))),
            "PodDisruptionBudget \"web\" has minAvailable 1 with minReplicas 1 of HorizontalPodAutoscaler \"web-hpa\": no pod can ever be evicted, node drains hang"
        );
        // Without an autoscaler, one replica stays out of scope, as before.
        assert_eq!(
            run(1, &pdb("web", "minAvailable: 1", APP_WEB)),
            Verdict::NotApplicable
        );
    }

    #[test]
    fn budgets_that_allow_a_disruption_pass() {
        for budget in [
            "maxUnavailable: 1",
            "maxUnavailable: \"10%\"",
            "minAvailable: 2",
            "minAvailable: \"50%\"",
            "minAvailable: \"66%\"",
            "",
        ] {
            assert_eq!(
                run(3, &pdb("web", budget, APP_WEB)),
                Verdict::Pass,
                "{budget}"
            );
        }
    }

    #[test]
    fn budgets_that_allow_nothing_fail() {
        let cases = [
            (
                "minAvailable: 3",
                "PodDisruptionBudget \"web\" has minAvailable 3 with 3 replicas: no pod can ever be evicted, node drains hang",
            ),
            (
                "minAvailable: 5",
                "PodDisruptionBudget \"web\" has minAvailable 5 with 3 replicas: no pod can ever be evicted, node drains hang",
            ),
            (
                // ceil(3 * 0.67) = 3.
                "minAvailable: \"67%\"",
                "PodDisruptionBudget \"web\" has minAvailable \"67%\" with 3 replicas: no pod can ever be evicted, node drains hang",
            ),
            (
                "minAvailable: \"100%\"",
                "PodDisruptionBudget \"web\" has minAvailable \"100%\" with 3 replicas: no pod can ever be evicted, node drains hang",
            ),
            (
                "maxUnavailable: 0",
                "PodDisruptionBudget \"web\" has maxUnavailable 0 with 3 replicas: no pod can ever be evicted, node drains hang",
            ),
            (
                "maxUnavailable: \"0%\"",
                "PodDisruptionBudget \"web\" has maxUnavailable \"0%\" with 3 replicas: no pod can ever be evicted, node drains hang",
            ),
        ];
        for (budget, expected) in cases {
            let v = violations(run(3, &pdb("web", budget, APP_WEB)));
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].message, expected);
            assert_eq!(v[0].remediation, REMEDIATION);
        }
    }

    #[test]
    fn max_unavailable_wins_over_min_available() {
        let both = pdb("web", "maxUnavailable: 1\n  minAvailable: 3", APP_WEB);
        assert_eq!(run(3, &both), Verdict::Pass);
    }

    #[test]
    fn malformed_percentages_fail_clearly() {
        for bad in [
            "\"50\"",
            "\"abc%\"",
            "\"50.5%\"",
            "\"-1%\"",
            "\"%\"",
            "\" 50%\"",
        ] {
            let msg = message(run(
                3,
                &pdb("web", &format!("minAvailable: {bad}"), APP_WEB),
            ));
            assert!(
                msg.contains("which is neither an integer nor a percentage like \"50%\""),
                "{bad}: {msg}"
            );
        }
        let huge = format!("maxUnavailable: \"{}%\"", "9".repeat(40));
        assert!(matches!(
            run(3, &pdb("web", &huge, APP_WEB)),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn no_budget_fails() {
        let other = pdb(
            "api",
            "maxUnavailable: 1",
            "selector: {matchLabels: {app: api}}",
        );
        for ctx in ["", other.as_str()] {
            assert_eq!(
                message(run(3, ctx)),
                "no PodDisruptionBudget selects the pods of Deployment/web: a node drain may evict every replica at once"
            );
        }
    }

    #[test]
    fn absent_selector_selects_nothing_and_empty_selects_everything() {
        assert!(
            message(run(3, &pdb("web", "maxUnavailable: 1", "")))
                .starts_with("no PodDisruptionBudget")
        );
        assert_eq!(
            run(3, &pdb("all", "maxUnavailable: 1", "selector: {}")),
            Verdict::Pass
        );
        let no_spec = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x, namespace: shop}\n";
        assert!(message(run(3, no_spec)).starts_with("no PodDisruptionBudget"));
    }

    #[test]
    fn budget_in_another_namespace_does_not_count() {
        let ctx =
            pdb("web", "maxUnavailable: 1", APP_WEB).replace("namespace: shop", "namespace: other");
        assert!(message(run(3, &ctx)).starts_with("no PodDisruptionBudget"));
    }

    #[test]
    fn several_budgets_fail() {
        let ctx = format!(
            "{}{}",
            pdb("web", "maxUnavailable: 1", APP_WEB),
            pdb("everything", "maxUnavailable: 1", "selector: {}")
        );
        let v = violations(run(3, &ctx));
        assert_eq!(
            v[0].message,
            "PodDisruptionBudgets \"web\", \"everything\" all select the pods: the eviction API refuses to evict them, node drains hang"
        );
    }

    #[test]
    fn single_replica_and_other_kinds_are_not_applicable() {
        assert_eq!(check(&RULE, &workload(&web(1))), Verdict::NotApplicable);
        let unset = workload(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  selector: {}\n  template: {spec: {containers: [{name: a, image: 'a:1'}]}}\n",
        );
        assert_eq!(check(&RULE, &unset), Verdict::NotApplicable);
        let ds = workload(
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n  selector: {}\n  template: {spec: {containers: [{name: a, image: 'a:1'}]}}\n",
        );
        assert_eq!(check(&RULE, &ds), Verdict::NotApplicable);
        let job = workload(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template: {spec: {containers: [{name: a, image: 'a:1'}]}}\n",
        );
        assert_eq!(check(&RULE, &job), Verdict::NotApplicable);
        let pod = workload(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: 'a:1'}]\n",
        );
        assert_eq!(check(&RULE, &pod), Verdict::NotApplicable);
    }

    #[test]
    fn replicasets_and_statefulsets_are_checked() {
        for kind in ["ReplicaSet", "StatefulSet"] {
            let w = workload(&format!(
                "apiVersion: apps/v1\nkind: {kind}\nmetadata: {{name: x, namespace: shop}}\nspec:\n  replicas: 2\n  selector: {{}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: a, image: 'a:1'}}]}}\n"
            ));
            let ctx = context(&pdb("web", "minAvailable: 2", APP_WEB));
            assert!(
                message(check_with(&RULE, &w, &ctx, &Params::default()))
                    .contains("minAvailable 2 with 2 replicas"),
                "{kind}"
            );
        }
    }

    fn run_requiring(eviction: bool, ctx: &str) -> Verdict {
        let params = Params {
            require_unhealthy_pod_eviction_always_allow: eviction,
            ..Params::default()
        };
        check_with(&RULE, &workload(&web(3)), &context(ctx), &params)
    }

    const EVICTION_FIX: &str =
        "set unhealthyPodEvictionPolicy: AlwaysAllow on the PodDisruptionBudget";

    #[test]
    fn always_allow_passes_when_required() {
        let ctx = pdb(
            "web",
            "maxUnavailable: 1\n  unhealthyPodEvictionPolicy: AlwaysAllow",
            APP_WEB,
        );
        assert_eq!(run_requiring(true, &ctx), Verdict::Pass);
    }

    #[test]
    fn if_healthy_budget_or_unset_fails_when_required() {
        let cases = [
            (
                "maxUnavailable: 1\n  unhealthyPodEvictionPolicy: IfHealthyBudget",
                "PodDisruptionBudget \"web\" has unhealthyPodEvictionPolicy \"IfHealthyBudget\": a crash-looping pod cannot be evicted while the budget is not met, so node drains hang",
            ),
            (
                "maxUnavailable: 1",
                "PodDisruptionBudget \"web\" leaves unhealthyPodEvictionPolicy unset (so IfHealthyBudget): a crash-looping pod cannot be evicted while the budget is not met, so node drains hang",
            ),
        ];
        for (budget, expected) in cases {
            let v = violations(run_requiring(true, &pdb("web", budget, APP_WEB)));
            assert_eq!(v.len(), 1, "{budget}");
            assert_eq!(v[0].message, expected);
            assert_eq!(v[0].remediation, EVICTION_FIX);
        }
    }

    #[test]
    fn a_blocking_budget_reports_both_problems_when_required() {
        let v = violations(run_requiring(true, &pdb("web", "minAvailable: 3", APP_WEB)));
        assert_eq!(v.len(), 2);
        assert!(v[0].message.contains("minAvailable 3 with 3 replicas"));
        assert_eq!(v[1].remediation, EVICTION_FIX);
    }

    #[test]
    fn the_eviction_policy_is_ignored_unless_required() {
        for budget in [
            "maxUnavailable: 1",
            "maxUnavailable: 1\n  unhealthyPodEvictionPolicy: IfHealthyBudget",
        ] {
            assert_eq!(
                run_requiring(false, &pdb("web", budget, APP_WEB)),
                Verdict::Pass,
                "{budget}"
            );
        }
        assert!(!Params::default().require_unhealthy_pod_eviction_always_allow);
    }

    #[test]
    fn no_budget_is_one_finding_even_when_the_policy_is_required() {
        let v = violations(run_requiring(true, ""));
        assert_eq!(v.len(), 1);
        assert!(v[0].message.starts_with("no PodDisruptionBudget"));
    }

    #[test]
    fn scaling_rounds_up() {
        assert_eq!(scaled(&IntOrString::String("50%".into()), 3), Ok(2));
        assert_eq!(scaled(&IntOrString::String("1%".into()), 3), Ok(1));
        assert_eq!(scaled(&IntOrString::String("0%".into()), 3), Ok(0));
        assert_eq!(scaled(&IntOrString::Int(-1), 3), Ok(-1));
        assert_eq!(
            scaled(&IntOrString::String("x".into()), 3),
            Err("x".to_owned())
        );
    }
}
