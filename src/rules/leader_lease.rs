//! `leader-lease`: a workload declared single-runner either cannot run two pods at once, or
//! names a live `coordination.k8s.io` Lease that elects the one pod doing the work.

use k8s_openapi::api::coordination::v1::Lease;

use super::{Check, Examples, RuleDef, Verdict, Violation};
use crate::api::{Severity, WorkloadKind};
use crate::engine::context::LeaseLookup;
use crate::engine::workload::ANNOTATION_LEASE;

/// The duration Kubernetes clients assume when a Lease does not state one (client-go's
/// leader election default).
const DEFAULT_LEASE_DURATION_SECONDS: i64 = 15;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "leader-lease",
    summary: "a single-runner workload with several pods holds a live leader Lease; with one pod it uses the Recreate strategy",
    rubric: "C8",
    default_enabled: true,
    default_severity: Severity::High,
    rationale: "Scheduled or singleton work (a scheduler, a queue consumer that must not double-process, \
        a migration runner) that runs in several pods at once does the work several times. With \
        more than one pod, only leader election keeps one of them active, and only a Lease that \
        exists, has a holder and is being renewed shows that election is actually running. A \
        one-replica Deployment is not enough by itself: its default RollingUpdate strategy starts \
        the new pod before stopping the old one, so two run side by side during every rollout. \
        A workload scaled by a HorizontalPodAutoscaler is judged at the autoscaler's \
        maxReplicas: the most pods it may run at once.",
    example: "metadata:\n  annotations:\n    prodready.dev/single-runner: \"true\"\n    prodready.dev/lease: scheduler-leader   # or NAMESPACE/NAME\nspec:\n  replicas: 2   # with replicas: 1 instead, use strategy: {type: Recreate}",
    checks: "Applies to workloads annotated `prodready.dev/single-runner: \"true\"`. A \
        Deployment, StatefulSet or ReplicaSet with more than one replica (for an autoscaled one, \
        its HorizontalPodAutoscaler's maxReplicas) or a DaemonSet must name a Lease in \
        `prodready.dev/lease` (`NAME` or `NAMESPACE/NAME`), and that Lease must exist, have a \
        `holderIdentity` and have been renewed within its `leaseDurationSeconds` (15 when unset) \
        plus `graceSeconds` before the evaluation instant. A one-replica Deployment must use the \
        `Recreate` strategy, or name a live Lease. One-replica StatefulSets and ReplicaSets and \
        bare Pods pass; Jobs and CronJobs are not applicable (`cronjob-single-runner` covers \
        them). `prodready audit` judges a Lease only when its input contains one; with no Lease \
        in the input, a workload that needs one is unknown, since Leases live in the cluster, \
        not in git. The operator judges the live Lease.",
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
  name: scheduler
  annotations:
    prodready.dev/single-runner: "true"
spec:
  replicas: 1
  selector:
    matchLabels: {app: scheduler}
  template:
    metadata:
      labels: {app: scheduler}
    spec:
      containers:
        - name: scheduler
          image: ghcr.io/acme/scheduler:3.1.0
"#;

/// A manifest the rule passes.
const PASS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: scheduler
  annotations:
    prodready.dev/single-runner: "true"
    prodready.dev/lease: scheduler-leader
spec:
  replicas: 2
  selector:
    matchLabels: {app: scheduler}
  template:
    metadata:
      labels: {app: scheduler}
    spec:
      containers:
        - name: scheduler
          image: ghcr.io/acme/scheduler:3.1.0
---
# Leases live in the cluster: this one stands for what `kubectl get lease scheduler-leader -o yaml` shows.
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: scheduler-leader
spec:
  holderIdentity: scheduler-7d9f8-abcde
  leaseDurationSeconds: 15
  renewTime: "2026-06-01T11:59:58.000000Z"
"#;

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    if !w.is_single_runner() {
        return Verdict::NotApplicable;
    }
    // A single runner is broken as soon as two pods can run at once, so an autoscaled
    // workload is judged at the most its autoscaler may run (maxReplicas), not the fewest.
    let count = c.replica_count();
    let replicas = count.as_ref().map_or(1, |n| n.max);
    let several = match w.kind {
        // cronjob-single-runner covers scheduled work; a Job's parallelism is its own business.
        WorkloadKind::CronJob | WorkloadKind::Job => return Verdict::NotApplicable,
        // A bare Pod is one pod; nothing replaces it while it runs.
        WorkloadKind::Pod => return Verdict::Pass,
        WorkloadKind::DaemonSet => true,
        WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::ReplicaSet => {
            replicas > 1
        }
    };
    if several {
        let pods = match count.as_ref().map(|n| n.autoscalers.as_slice()) {
            Some(scalers) if !scalers.is_empty() => format!(
                "scaled up to {replicas} replicas by HorizontalPodAutoscaler {}",
                crate::engine::autoscaler::names(scalers)
            ),
            _ => pods_description(w.kind, replicas),
        };
        return check_lease(c, &pods);
    }
    if w.kind != WorkloadKind::Deployment {
        // A StatefulSet replaces its one ordinal (delete, then create); a ReplicaSet has no
        // rollout at all.
        return Verdict::Pass;
    }
    let strategy = w
        .rollout
        .as_ref()
        .and_then(|r| r.strategy.as_deref())
        .unwrap_or("RollingUpdate");
    if strategy == "Recreate" {
        return Verdict::Pass;
    }
    // A rolling update of one replica overlaps two pods; leader election on a named Lease
    // makes that overlap harmless, so a Lease is the other acceptable answer.
    if w.lease_name().is_some() {
        return check_lease(c, "with a RollingUpdate strategy");
    }
    Verdict::Fail(vec![Violation::workload(
        format!(
            "declares single-runner with 1 replica but uses the {strategy} strategy, which briefly runs two pods"
        ),
        "set strategy.type: Recreate (or hold a Lease named by prodready.dev/lease)",
    )])
}

/// How the workload comes to run several pods, for messages.
fn pods_description(kind: WorkloadKind, replicas: i32) -> String {
    if kind == WorkloadKind::DaemonSet {
        "as a DaemonSet (one pod per node)".to_owned()
    } else {
        format!("with {replicas} replicas")
    }
}

/// Verifies the Lease the workload names: it exists, has a holder, and was renewed recently.
fn check_lease(c: &Check<'_>, pods: &str) -> Verdict {
    let w = c.workload;
    let Some(annotation) = w.lease_name() else {
        return fail(
            format!(
                "declares single-runner {pods} but names no Lease (annotation {ANNOTATION_LEASE})"
            ),
            "elect a leader on a Lease and name it in prodready.dev/lease",
        );
    };
    let Some((namespace, name)) = parse_lease_ref(annotation, &w.namespace) else {
        return fail(
            format!(
                "annotation {ANNOTATION_LEASE} \"{annotation}\" is not a Lease reference (expected NAME or NAMESPACE/NAME)"
            ),
            "set prodready.dev/lease to NAME or NAMESPACE/NAME",
        );
    };
    match c.context.lease(namespace, name) {
        LeaseLookup::Unavailable(reason) => Verdict::Unknown(reason.to_owned()),
        LeaseLookup::Missing => fail(
            format!("Lease {namespace}/{name} does not exist: no replica holds leadership"),
            "enable leader election on that Lease, or fix prodready.dev/lease",
        ),
        LeaseLookup::Found(lease) => check_renewal(c, lease, namespace, name),
    }
}

fn check_renewal(c: &Check<'_>, lease: &Lease, namespace: &str, name: &str) -> Verdict {
    let spec = lease.spec.as_ref();
    let holder = spec
        .and_then(|s| s.holder_identity.as_deref())
        .map(str::trim)
        .filter(|h| !h.is_empty());
    if holder.is_none() {
        return fail(
            format!("Lease {namespace}/{name} has no holder: no replica holds leadership"),
            "check that leader election is running in the pods",
        );
    }
    let Some(renewed) = spec.and_then(|s| s.renew_time.as_ref()) else {
        return fail(
            format!(
                "Lease {namespace}/{name} has never been renewed (no renewTime): leadership is not maintained"
            ),
            "check that the leader renews its Lease",
        );
    };
    // API validation requires a positive duration; anything else gets the client default.
    let duration = spec
        .and_then(|s| s.lease_duration_seconds)
        .filter(|d| *d > 0)
        .map_or(DEFAULT_LEASE_DURATION_SECONDS, i64::from);
    let grace = i64::from(c.params.lease_grace_seconds.max(0));
    // Seconds, rounded down; a renewal in the future (clock skew) counts as fresh.
    let age = c.now.as_second().saturating_sub(renewed.0.as_second());
    if age <= duration.saturating_add(grace) {
        return Verdict::Pass;
    }
    // The instant, not the age: the finding stays the same from one evaluation to the next
    // (so a status or report does not change every round while the Lease stays stale).
    let at = k8s_openapi::jiff::Timestamp::from_second(renewed.0.as_second()).unwrap_or(renewed.0);
    fail(
        format!(
            "Lease {namespace}/{name} was last renewed at {at}, longer ago than its {} duration: the leader is gone or stuck",
            human_duration(duration),
        ),
        "check the leader pod's leader election (logs, RBAC on leases)",
    )
}

fn fail(message: String, remediation: &str) -> Verdict {
    Verdict::Fail(vec![Violation::workload(message, remediation)])
}

/// Splits `NAME` or `NAMESPACE/NAME`; `None` when a part is empty or there are more slashes.
fn parse_lease_ref<'a>(value: &'a str, own_namespace: &'a str) -> Option<(&'a str, &'a str)> {
    let (namespace, name) = value.split_once('/').unwrap_or((own_namespace, value));
    let valid = |s: &str| !s.is_empty() && !s.contains('/') && !s.contains(char::is_whitespace);
    (valid(namespace) && valid(name)).then_some((namespace, name))
}

/// `45s`, `2m10s`, `3h5m`, `2d4h`: the two most significant units, the way kubectl prints ages.
fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    let pair = |big: i64, bu: &str, small: i64, su: &str| {
        if small == 0 {
            format!("{big}{bu}")
        } else {
            format!("{big}{bu}{small}{su}")
        }
    };
    if d > 0 {
        pair(d, "d", h, "h")
    } else if h > 0 {
        pair(h, "h", m, "m")
    } else if m > 0 {
        pair(m, "m", sec, "s")
    } else {
        format!("{sec}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Params;
    use crate::rules::testing::{check, check_with, context, violations, workload};

    fn deployment(replicas: i32, annotations: &str, strategy: &str) -> String {
        format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: scheduler
  namespace: jobs
  annotations: {{prodready.dev/single-runner: "true"{annotations}}}
spec:
  replicas: {replicas}
  {strategy}
  selector: {{matchLabels: {{app: scheduler}}}}
  template:
    metadata: {{labels: {{app: scheduler}}}}
    spec:
      containers: [{{name: app, image: "s:1"}}]
"#
        )
    }

    /// A Lease in `jobs` renewed at `renew` (RFC 3339) with the given holder and duration.
    fn lease(name: &str, holder: &str, renew: &str, duration: &str) -> String {
        format!(
            r#"
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {{name: {name}, namespace: jobs}}
spec:
  {holder}
  {renew}
  {duration}
"#
        )
    }

    fn run(w: &str, ctx: &str) -> Verdict {
        check_with(&RULE, &workload(w), &context(ctx), &Params::default())
    }

    fn message(v: Verdict) -> String {
        violations(v).remove(0).message
    }

    const LEASED: &str = r#", prodready.dev/lease: scheduler-leader"#;

    #[test]
    fn renewed_lease_passes() {
        let ctx = lease(
            "scheduler-leader",
            "holderIdentity: scheduler-abc",
            "renewTime: 2026-05-31T23:59:55.123456Z",
            "leaseDurationSeconds: 15",
        );
        assert_eq!(run(&deployment(3, LEASED, ""), &ctx), Verdict::Pass);
    }

    #[test]
    fn renewal_within_duration_plus_grace_passes_and_beyond_fails() {
        // Default duration 15s + default grace 5s = 20s.
        let at = |t: &str| {
            lease(
                "scheduler-leader",
                "holderIdentity: a",
                &format!("renewTime: {t}"),
                "",
            )
        };
        let w = deployment(2, LEASED, "");
        assert_eq!(run(&w, &at("2026-05-31T23:59:40Z")), Verdict::Pass);
        assert_eq!(
            message(run(&w, &at("2026-05-31T23:59:39Z"))),
            "Lease jobs/scheduler-leader was last renewed at 2026-05-31T23:59:39Z, longer ago than its 15s duration: the leader is gone or stuck"
        );
    }

    #[test]
    fn stale_lease_fails_with_the_renewal_instant_and_a_human_duration() {
        let ctx = lease(
            "scheduler-leader",
            "holderIdentity: scheduler-abc",
            "renewTime: 2026-05-31T23:57:50.000000Z",
            "leaseDurationSeconds: 15",
        );
        let v = violations(run(&deployment(3, LEASED, ""), &ctx));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].container, None);
        assert_eq!(
            v[0].message,
            "Lease jobs/scheduler-leader was last renewed at 2026-05-31T23:57:50Z, longer ago than its 15s duration: the leader is gone or stuck"
        );
    }

    #[test]
    fn lease_grace_parameter_extends_the_duration() {
        let ctx = lease(
            "scheduler-leader",
            "holderIdentity: a",
            "renewTime: 2026-05-31T23:59:00Z",
            "leaseDurationSeconds: 30",
        );
        let w = workload(&deployment(2, LEASED, ""));
        let strict = Params::default();
        assert!(matches!(
            check_with(&RULE, &w, &context(&ctx), &strict),
            Verdict::Fail(_)
        ));
        let lenient = Params {
            lease_grace_seconds: 30,
            ..Params::default()
        };
        assert_eq!(
            check_with(&RULE, &w, &context(&ctx), &lenient),
            Verdict::Pass
        );
    }

    #[test]
    fn renewal_in_the_future_passes() {
        let ctx = lease(
            "scheduler-leader",
            "holderIdentity: a",
            "renewTime: 2026-06-01T00:00:30Z",
            "leaseDurationSeconds: 15",
        );
        assert_eq!(run(&deployment(2, LEASED, ""), &ctx), Verdict::Pass);
    }

    #[test]
    fn missing_lease_fails_naming_it() {
        let ctx = lease("other", "holderIdentity: a", "", "");
        assert_eq!(
            message(run(&deployment(3, LEASED, ""), &ctx)),
            "Lease jobs/scheduler-leader does not exist: no replica holds leadership"
        );
    }

    #[test]
    fn lease_without_holder_fails() {
        for holder in ["", "holderIdentity: \"\""] {
            let ctx = lease(
                "scheduler-leader",
                holder,
                "renewTime: 2026-05-31T23:59:59Z",
                "",
            );
            assert_eq!(
                message(run(&deployment(3, LEASED, ""), &ctx)),
                "Lease jobs/scheduler-leader has no holder: no replica holds leadership"
            );
        }
    }

    #[test]
    fn lease_without_spec_or_renew_time_fails() {
        let no_spec = "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: scheduler-leader, namespace: jobs}\n";
        assert!(message(run(&deployment(2, LEASED, ""), no_spec)).contains("has no holder"));
        let no_renew = lease("scheduler-leader", "holderIdentity: a", "", "");
        assert_eq!(
            message(run(&deployment(2, LEASED, ""), &no_renew)),
            "Lease jobs/scheduler-leader has never been renewed (no renewTime): leadership is not maintained"
        );
    }

    #[test]
    fn offline_lease_lookup_is_unknown() {
        let v = check(&RULE, &workload(&deployment(3, LEASED, "")));
        assert_eq!(
            v,
            Verdict::Unknown(crate::engine::context::LEASES_OFFLINE.to_owned())
        );
    }

    #[test]
    fn namespace_slash_name_form_looks_in_that_namespace() {
        let ctx = r#"
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: leader, namespace: coord}
spec: {holderIdentity: a, renewTime: "2026-05-31T23:59:59.000000Z"}
"#;
        let w = deployment(2, ", prodready.dev/lease: coord/leader", "");
        assert_eq!(run(&w, ctx), Verdict::Pass);
        let wrong_ns = deployment(2, ", prodready.dev/lease: leader", "");
        assert_eq!(
            message(run(&wrong_ns, ctx)),
            "Lease jobs/leader does not exist: no replica holds leadership"
        );
    }

    #[test]
    fn malformed_lease_reference_fails() {
        for bad in ["a/b/c", "/leader", "coord/"] {
            let w = deployment(2, &format!(", prodready.dev/lease: \"{bad}\""), "");
            let msg = message(run(&w, &lease("x", "", "", "")));
            assert!(msg.contains("is not a Lease reference"), "{bad}: {msg}");
        }
    }

    #[test]
    fn several_replicas_without_lease_annotation_fail() {
        let v = violations(check(&RULE, &workload(&deployment(3, "", ""))));
        assert_eq!(
            v[0].message,
            "declares single-runner with 3 replicas but names no Lease (annotation prodready.dev/lease)"
        );
        // Even Recreate runs several pods at once when there are several replicas.
        let recreate = deployment(3, "", "strategy: {type: Recreate}");
        assert!(matches!(
            check(&RULE, &workload(&recreate)),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn one_replica_rolling_update_fails_and_recreate_passes() {
        let default_strategy = violations(check(&RULE, &workload(&deployment(1, "", ""))));
        assert_eq!(
            default_strategy[0].message,
            "declares single-runner with 1 replica but uses the RollingUpdate strategy, which briefly runs two pods"
        );
        assert!(default_strategy[0].remediation.contains("Recreate"));
        let explicit = deployment(1, "", "strategy: {type: RollingUpdate}");
        assert!(matches!(
            check(&RULE, &workload(&explicit)),
            Verdict::Fail(_)
        ));
        let recreate = deployment(1, "", "strategy: {type: Recreate}");
        assert_eq!(check(&RULE, &workload(&recreate)), Verdict::Pass);
    }

    #[test]
    fn one_replica_rolling_update_with_live_lease_passes() {
        let ctx = lease(
            "scheduler-leader",
            "holderIdentity: a",
            "renewTime: 2026-05-31T23:59:59Z",
            "",
        );
        assert_eq!(run(&deployment(1, LEASED, ""), &ctx), Verdict::Pass);
        assert_eq!(
            message(run(&deployment(1, LEASED, ""), &lease("x", "", "", ""))),
            "Lease jobs/scheduler-leader does not exist: no replica holds leadership"
        );
    }

    #[test]
    fn unset_replicas_is_one() {
        let w = workload(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: s, annotations: {prodready.dev/single-runner: "true"}}
spec:
  selector: {}
  template: {spec: {containers: [{name: a, image: "a:1"}]}}
"#,
        );
        assert!(message(check(&RULE, &w)).contains("with 1 replica"));
    }

    #[test]
    fn an_autoscaled_single_runner_is_judged_at_max_replicas() {
        let w = workload(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: s, annotations: {prodready.dev/single-runner: 'true'}}\nspec:\n  strategy: {type: Recreate}\n  selector: {}\n  template: {spec: {containers: [{name: a, image: 'a:1'}]}}\n",
        );
        let hpa = |max: i32| {
            context(&format!(
                "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: s}}\nspec: {{scaleTargetRef: {{kind: Deployment, name: s}}, minReplicas: 1, maxReplicas: {max}}}\n"
            ))
        };
        // minReplicas 1 with Recreate would pass; the autoscaler may run 4 at once.
        assert_eq!(
            message(check_with(&RULE, &w, &hpa(4), &Params::default())),
            "declares single-runner scaled up to 4 replicas by HorizontalPodAutoscaler \"s\" but names no Lease (annotation prodready.dev/lease)"
        );
        // An autoscaler pinned to one pod changes nothing.
        assert_eq!(
            check_with(&RULE, &w, &hpa(1), &Params::default()),
            Verdict::Pass
        );
    }

    #[test]
    fn single_replica_statefulset_and_replicaset_pass() {
        for kind in ["StatefulSet", "ReplicaSet"] {
            let w = workload(&format!(
                "apiVersion: apps/v1\nkind: {kind}\nmetadata: {{name: s, annotations: {{prodready.dev/single-runner: 'true'}}}}\nspec:\n  replicas: 1\n  selector: {{}}\n  template: {{spec: {{containers: [{{name: a, image: 'a:1'}}]}}}}\n"
            ));
            assert_eq!(check(&RULE, &w), Verdict::Pass, "{kind}");
        }
    }

    #[test]
    fn multi_replica_statefulset_needs_a_lease() {
        let w = workload(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s, annotations: {prodready.dev/single-runner: 'true'}}\nspec:\n  replicas: 2\n  selector: {}\n  template: {spec: {containers: [{name: a, image: 'a:1'}]}}\n",
        );
        assert!(message(check(&RULE, &w)).contains("with 2 replicas but names no Lease"));
    }

    #[test]
    fn daemonset_needs_a_lease() {
        let w = workload(
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent, annotations: {prodready.dev/single-runner: 'true'}}\nspec:\n  selector: {}\n  template: {spec: {containers: [{name: a, image: 'a:1'}]}}\n",
        );
        assert_eq!(
            message(check(&RULE, &w)),
            "declares single-runner as a DaemonSet (one pod per node) but names no Lease (annotation prodready.dev/lease)"
        );
    }

    #[test]
    fn pods_jobs_and_cronjobs() {
        let pod = workload(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {prodready.dev/single-runner: 'true'}}\nspec:\n  containers: [{name: a, image: 'a:1'}]\n",
        );
        assert_eq!(check(&RULE, &pod), Verdict::Pass);
        let job = workload(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j, annotations: {prodready.dev/single-runner: 'true'}}\nspec:\n  template: {spec: {containers: [{name: a, image: 'a:1'}]}}\n",
        );
        assert_eq!(check(&RULE, &job), Verdict::NotApplicable);
        let cron = workload(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c, annotations: {prodready.dev/single-runner: 'true'}}\nspec:\n  schedule: '* * * * *'\n  jobTemplate: {spec: {template: {spec: {containers: [{name: a, image: 'a:1'}]}}}}\n",
        );
        assert_eq!(check(&RULE, &cron), Verdict::NotApplicable);
    }

    #[test]
    fn not_single_runner_is_not_applicable() {
        let w = workload(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, annotations: {prodready.dev/single-runner: 'false'}}\nspec:\n  replicas: 3\n  selector: {}\n  template: {spec: {containers: [{name: a, image: 'a:1'}]}}\n",
        );
        assert_eq!(check(&RULE, &w), Verdict::NotApplicable);
    }

    #[test]
    fn single_runner_annotation_on_pod_template_counts() {
        let w = workload(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n  selector: {}\n  template:\n    metadata: {annotations: {prodready.dev/single-runner: 'true'}}\n    spec: {containers: [{name: a, image: 'a:1'}]}\n",
        );
        assert!(matches!(check(&RULE, &w), Verdict::Fail(_)));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(130), "2m10s");
        assert_eq!(human_duration(120), "2m");
        assert_eq!(human_duration(3 * 3600 + 5 * 60 + 7), "3h5m");
        assert_eq!(human_duration(2 * 86_400 + 4 * 3600), "2d4h");
        assert_eq!(human_duration(-5), "0s");
    }
}
