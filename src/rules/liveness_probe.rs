//! `liveness-probe`: long-running containers have a livenessProbe.

use super::{Check, Examples, RuleDef, Verdict, each_container_lacking};
use crate::api::Severity;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "liveness-probe",
    summary: "long-running containers have a livenessProbe",
    rubric: "F7",
    default_enabled: true,
    default_severity: Severity::High,
    rationale: "Without a livenessProbe the kubelet only restarts a container whose process exits. \
        A process that deadlocks, leaks itself into a stall or loses its event loop stays \
        'Running' forever and serves nothing. The probe should check that the process is \
        alive (not its dependencies), so that a database outage does not restart every pod.",
    example: "livenessProbe:\n  httpGet: {path: /health/live, port: http}\n  periodSeconds: 10\n  failureThreshold: 3",
    checks: "Every long-lived container (main containers and native sidecars, i.e. init \
        containers with `restartPolicy: Always`) of a Deployment, StatefulSet, DaemonSet, \
        ReplicaSet or bare Pod with `restartPolicy: Always` must have a `livenessProbe`; one \
        finding per container that lacks it. Jobs, CronJobs and run-once Pods are not \
        applicable: they are meant to exit.",
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
          livenessProbe:
            httpGet: {path: /health/live, port: 8080}
"#;

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    if !w.is_long_running() {
        return Verdict::NotApplicable;
    }
    each_container_lacking(
        w.long_lived_containers(),
        |c| c.container.liveness_probe.is_none(),
        |name| format!("container \"{name}\" has no livenessProbe"),
        "add a livenessProbe that checks the process is alive (e.g. httpGet /health/live)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{check, failing_containers, workload};

    const PASSING: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: app
          image: web:1.0
          livenessProbe: {httpGet: {path: /live, port: 8080}}
        - name: grpc
          image: web:1.0
          livenessProbe: {grpc: {port: 9090}}
        - name: tcp
          image: web:1.0
          livenessProbe: {tcpSocket: {port: 5432}}
        - name: exec
          image: web:1.0
          livenessProbe: {exec: {command: [cat, /tmp/ok]}}
"#;

    #[test]
    fn passes_with_any_probe_handler() {
        assert_eq!(check(&RULE, &workload(PASSING)), Verdict::Pass);
    }

    #[test]
    fn fails_per_container_without_probe() {
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
        - {name: db, image: "postgres:16"}
        - {name: exporter, image: "exporter:1", livenessProbe: {tcpSocket: {port: 9187}}}
"#,
        );
        assert_eq!(failing_containers(check(&RULE, &w)), vec!["db"]);
    }

    #[test]
    fn native_sidecars_need_probes_but_init_containers_do_not() {
        let w = workload(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {}
  template:
    spec:
      initContainers:
        - {name: migrate, image: "m:1"}
        - {name: proxy, image: "p:1", restartPolicy: Always}
      containers:
        - {name: app, image: "a:1", livenessProbe: {httpGet: {port: 80}}}
"#,
        );
        assert_eq!(failing_containers(check(&RULE, &w)), vec!["proxy"]);
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
        let never = workload(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  restartPolicy: Never\n  containers: [{name: a, image: 'a:1'}]\n",
        );
        assert_eq!(check(&RULE, &never), Verdict::NotApplicable);
    }

    #[test]
    fn missing_spec_passes_vacuously() {
        let w = workload("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: empty}\n");
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }
}
