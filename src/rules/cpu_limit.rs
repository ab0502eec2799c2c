//! `cpu-limit`: every container has a cpu limit (off by default: limits cause throttling).

use super::resource_requests::limit_set;
use super::{Check, Examples, RuleDef, Verdict, each_container_lacking};
use crate::api::Severity;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "cpu-limit",
    summary: "every container has a cpu limit",
    rubric: "I6",
    default_enabled: false,
    default_severity: Severity::Low,
    rationale: "A container without a cpu limit may use every idle core of its node, so its \
        latency in production depends on its neighbours' load and a runaway loop slows \
        everything else on the node down to its request share. A limit makes performance \
        predictable and bounds a noisy neighbour. It is off by default because limits also \
        throttle bursts that would otherwise be free; enable it where predictability or \
        multi-tenancy matters more (e.g. Guaranteed QoS with limits equal to requests).",
    example: "resources:\n  requests: {cpu: 500m}\n  limits: {cpu: 500m}",
    checks: "Every container, init containers included, of every workload kind must have \
        `resources.limits.cpu` (present and not zero); one finding per container. A pod-level \
        cpu limit (`spec.resources.limits.cpu`) bounds every container, and the workload passes. \
        Off in the baseline profile: cpu limits throttle, and many teams deliberately run \
        without them.",
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
            requests: {cpu: 500m, memory: 256Mi}
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
            requests: {cpu: 500m, memory: 256Mi}
            limits: {cpu: 500m}
"#;

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    // A pod-level cpu limit (KEP-2837) caps the pod's cgroup, which bounds every container.
    if limit_set(w.pod.resources.as_ref(), "cpu") {
        return Verdict::Pass;
    }
    each_container_lacking(
        w.containers(),
        |c| !limit_set(c.container.resources.as_ref(), "cpu"),
        |name| format!("container \"{name}\" has no cpu limit"),
        "set resources.limits.cpu (e.g. equal to the cpu request)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{check, deployment, failing_containers, violations, workload};

    #[test]
    fn cpu_limit_passes() {
        let w = workload(&deployment(
            "      containers:\n        - {name: app, image: 'a:1', resources: {limits: {cpu: 500m}}}\n",
        ));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn missing_limit_fails_even_with_request() {
        let w = workload(&deployment(
            r#"      containers:
        - {name: app, image: "a:1", resources: {requests: {cpu: 500m}, limits: {memory: 1Gi}}}
        - {name: ok, image: "a:1", resources: {limits: {cpu: "2"}}}
"#,
        ));
        let v = violations(check(&RULE, &w));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].container.as_deref(), Some("app"));
        assert_eq!(v[0].message, "container \"app\" has no cpu limit");
        assert_eq!(
            v[0].remediation,
            "set resources.limits.cpu (e.g. equal to the cpu request)"
        );
    }

    #[test]
    fn zero_limit_counts_as_missing() {
        let w = workload(&deployment(
            "      containers:\n        - {name: app, image: 'a:1', resources: {limits: {cpu: 0m}}}\n",
        ));
        assert_eq!(failing_containers(check(&RULE, &w)), vec!["app"]);
    }

    #[test]
    fn init_and_sidecar_containers_count() {
        let w = workload(&deployment(
            r#"      initContainers:
        - {name: migrate, image: "m:1", resources: {limits: {cpu: 100m}}}
        - {name: proxy, image: "p:1", restartPolicy: Always}
      containers:
        - {name: app, image: "a:1", resources: {limits: {cpu: "1"}}}
"#,
        ));
        assert_eq!(failing_containers(check(&RULE, &w)), vec!["proxy"]);
    }

    #[test]
    fn jobs_cronjobs_and_pods_are_checked() {
        let job = workload(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: 'a:1'}]\n",
        );
        assert_eq!(failing_containers(check(&RULE, &job)), vec!["a"]);
        let cron = workload(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: b, image: 'b:1'}]\n",
        );
        assert_eq!(failing_containers(check(&RULE, &cron)), vec!["b"]);
        let pod = workload(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: p, image: 'p:1', resources: {limits: {cpu: '1'}}}]\n",
        );
        assert_eq!(check(&RULE, &pod), Verdict::Pass);
    }

    #[test]
    fn pod_level_limit_covers_containers() {
        let w = workload(&deployment(
            "      resources: {limits: {cpu: '2'}}\n      containers:\n        - {name: app, image: 'a:1'}\n",
        ));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn missing_spec_passes_vacuously() {
        let w = workload("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: empty}\n");
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }
}
