//! `readiness-probe`: long-running containers have a readinessProbe.

use super::{Check, Examples, RuleDef, Verdict, each_container_lacking};
use crate::api::Severity;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "readiness-probe",
    summary: "long-running containers have a readinessProbe",
    rubric: "F7",
    default_enabled: true,
    default_severity: Severity::High,
    rationale: "Without a readinessProbe a container counts as ready as soon as it starts. \
        Services then route traffic to pods that are still warming up or have lost a \
        dependency, and a rolling update replaces old pods with new ones that have never \
        served a request, so a broken release takes the whole workload down instead of \
        stalling. The probe should say whether the pod can serve now, dependencies included.",
    example: "readinessProbe:\n  httpGet: {path: /health/ready, port: http}\n  periodSeconds: 5\n  failureThreshold: 3",
    checks: "Every long-lived container (main containers and native sidecars) of a Deployment, \
        StatefulSet, DaemonSet, ReplicaSet or bare Pod with `restartPolicy: Always` must have a \
        `readinessProbe`; one finding per container that lacks it. Jobs, CronJobs and run-once \
        Pods are not applicable.",
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
          readinessProbe:
            httpGet: {path: /health/ready, port: 8080}
"#;

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    if !w.is_long_running() {
        return Verdict::NotApplicable;
    }
    each_container_lacking(
        w.long_lived_containers(),
        |c| c.container.readiness_probe.is_none(),
        |name| format!("container \"{name}\" has no readinessProbe"),
        "add a readinessProbe that checks the pod can serve (e.g. httpGet /health/ready)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{check, failing_containers, violations, workload};

    #[test]
    fn passes_with_any_probe_handler() {
        let w = workload(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - {name: http, image: "w:1", readinessProbe: {httpGet: {path: /ready, port: 8080}}}
        - {name: grpc, image: "w:1", readinessProbe: {grpc: {port: 9090}}}
        - {name: tcp, image: "w:1", readinessProbe: {tcpSocket: {port: 5432}}}
        - {name: exec, image: "w:1", readinessProbe: {exec: {command: [cat, /tmp/ready]}}}
"#,
        );
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn fails_per_container_without_probe_with_exact_message() {
        let w = workload(
            r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: data}
spec:
  selector: {matchLabels: {app: db}}
  serviceName: db
  template:
    spec:
      containers:
        - {name: db, image: "postgres:16", livenessProbe: {tcpSocket: {port: 5432}}}
        - {name: exporter, image: "exporter:1", readinessProbe: {tcpSocket: {port: 9187}}}
"#,
        );
        let v = violations(check(&RULE, &w));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].container.as_deref(), Some("db"));
        assert_eq!(v[0].message, "container \"db\" has no readinessProbe");
    }

    #[test]
    fn native_sidecars_need_probes_but_init_containers_do_not() {
        let w = workload(
            r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {}
  template:
    spec:
      initContainers:
        - {name: migrate, image: "m:1"}
        - {name: proxy, image: "p:1", restartPolicy: Always}
      containers:
        - {name: app, image: "a:1", readinessProbe: {httpGet: {port: 80}}}
"#,
        );
        assert_eq!(failing_containers(check(&RULE, &w)), vec!["proxy"]);
    }

    #[test]
    fn every_container_is_reported() {
        let w = workload(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n  selector: {}\n  template:\n    spec:\n      containers: [{name: a, image: 'a:1'}, {name: b, image: 'b:1'}]\n",
        );
        assert_eq!(failing_containers(check(&RULE, &w)), vec!["a", "b"]);
    }

    #[test]
    fn jobs_and_cronjobs_are_not_applicable() {
        let job = workload(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: 'a:1'}]\n",
        );
        assert_eq!(check(&RULE, &job), Verdict::NotApplicable);
        let cron = workload(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: a, image: 'a:1'}]\n",
        );
        assert_eq!(check(&RULE, &cron), Verdict::NotApplicable);
    }

    #[test]
    fn bare_pods_depend_on_restart_policy() {
        let always = workload(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: 'a:1'}]\n",
        );
        assert_eq!(failing_containers(check(&RULE, &always)), vec!["a"]);
        let on_failure = workload(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  restartPolicy: OnFailure\n  containers: [{name: a, image: 'a:1'}]\n",
        );
        assert_eq!(check(&RULE, &on_failure), Verdict::NotApplicable);
    }

    #[test]
    fn missing_spec_passes_vacuously() {
        let w = workload("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: empty}\n");
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }
}
