//! `memory-limit`: every container has a memory limit.

use super::resource_requests::limit_set;
use super::{Check, Examples, RuleDef, Verdict, each_container_lacking};
use crate::api::Severity;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "memory-limit",
    summary: "every container has a memory limit",
    rubric: "I6",
    default_enabled: true,
    default_severity: Severity::High,
    rationale: "Memory is not compressible: a container without a memory limit that leaks or \
        meets an unexpectedly large input grows until the node runs out, and the kernel's OOM \
        killer and the kubelet's evictions then take down other, well-behaved pods on that \
        node. A limit confines the damage to the offending container, which is OOM-killed and \
        restarted. Setting the limit equal to the request also makes memory use predictable.",
    example: "resources:\n  requests: {memory: 512Mi}\n  limits: {memory: 512Mi}",
    checks: "Every container, init containers included, of every workload kind must have \
        `resources.limits.memory` (present and not zero); one finding per container. A pod-level \
        memory limit (`spec.resources.limits.memory`, KEP-2837) bounds every container, and the \
        workload passes.",
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
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/web:1.4.2
          resources:
            requests: {cpu: 100m, memory: 256Mi}
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
          resources:
            requests: {cpu: 100m, memory: 256Mi}
            limits: {memory: 256Mi}
"#;

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    // A pod-level memory limit (KEP-2837) caps the pod's cgroup, which bounds every container.
    if limit_set(w.pod.resources.as_ref(), "memory") {
        return Verdict::Pass;
    }
    each_container_lacking(
        w.containers(),
        |c| !limit_set(c.container.resources.as_ref(), "memory"),
        |name| {
            format!(
                "container \"{name}\" has no memory limit: it can exhaust the node's memory and \
                 get other pods OOM-killed"
            )
        },
        "set resources.limits.memory (e.g. equal to the memory request)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{check, deployment, failing_containers, violations, workload};

    #[test]
    fn memory_limit_passes() {
        let w = workload(&deployment(
            "      containers:\n        - {name: app, image: 'a:1', resources: {limits: {memory: 512Mi}}}\n",
        ));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn missing_limit_fails_with_oom_message() {
        let w = workload(&deployment(
            r#"      containers:
        - {name: app, image: "a:1", resources: {requests: {memory: 512Mi}, limits: {cpu: "1"}}}
        - {name: ok, image: "a:1", resources: {limits: {memory: 64Mi}}}
"#,
        ));
        let v = violations(check(&RULE, &w));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].container.as_deref(), Some("app"));
        assert_eq!(
            v[0].message,
            "container \"app\" has no memory limit: it can exhaust the node's memory and get other pods OOM-killed"
        );
        assert!(v[0].message.len() + v[0].remediation.len() < 200);
    }

    #[test]
    fn zero_limit_counts_as_missing() {
        let w = workload(&deployment(
            "      containers:\n        - {name: app, image: 'a:1', resources: {limits: {memory: '0'}}}\n",
        ));
        assert_eq!(failing_containers(check(&RULE, &w)), vec!["app"]);
    }

    #[test]
    fn init_and_sidecar_containers_count() {
        let w = workload(&deployment(
            r#"      initContainers:
        - {name: migrate, image: "m:1"}
        - {name: proxy, image: "p:1", restartPolicy: Always, resources: {limits: {memory: 64Mi}}}
      containers:
        - {name: app, image: "a:1"}
"#,
        ));
        assert_eq!(failing_containers(check(&RULE, &w)), vec!["migrate", "app"]);
    }

    #[test]
    fn jobs_cronjobs_and_pods_are_checked() {
        let job = workload(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: 'a:1'}]\n",
        );
        assert_eq!(failing_containers(check(&RULE, &job)), vec!["a"]);
        let cron = workload(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: b, image: 'b:1', resources: {limits: {memory: 1Gi}}}]\n",
        );
        assert_eq!(check(&RULE, &cron), Verdict::Pass);
        let pod = workload(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  restartPolicy: Never\n  containers: [{name: p, image: 'p:1'}]\n",
        );
        assert_eq!(failing_containers(check(&RULE, &pod)), vec!["p"]);
    }

    #[test]
    fn pod_level_limit_covers_containers() {
        let w = workload(&deployment(
            "      resources: {limits: {memory: 2Gi}}\n      containers:\n        - {name: app, image: 'a:1'}\n",
        ));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn missing_spec_passes_vacuously() {
        let w = workload("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: empty}\n");
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }
}
