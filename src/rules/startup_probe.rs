//! `startup-probe`: slow starters (a large liveness `initialDelaySeconds`) use a startupProbe.

use super::{Check, Examples, RuleDef, Verdict, Violation};
use crate::api::Severity;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "startup-probe",
    summary: "containers with a long liveness initialDelaySeconds use a startupProbe instead",
    rubric: "F6",
    default_enabled: false,
    default_severity: Severity::Low,
    rationale: "A large livenessProbe initialDelaySeconds guesses how long startup takes. Guess \
        too low and a slow start (cold cache, big migration, loaded node) is killed and \
        restarted in a loop; guess high and a container that hangs later is still detected \
        late after every restart, and every pod waits out the full delay. A startupProbe \
        holds liveness off exactly until the app has started, up to a generous ceiling \
        (failureThreshold x periodSeconds), and liveness can then stay tight.",
    example: "startupProbe:\n  httpGet: {path: /health/live, port: http}\n  periodSeconds: 5\n  failureThreshold: 60   # up to 5 minutes to start\nlivenessProbe:\n  httpGet: {path: /health/live, port: http}\n  periodSeconds: 10",
    checks: "A long-lived container without a `startupProbe` fails when its `livenessProbe` has \
        an `initialDelaySeconds` above `initialDelayThresholdSeconds` (default 30). Containers \
        without a livenessProbe, or with a startupProbe, pass. Jobs, CronJobs and run-once Pods \
        are not applicable.",
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
          livenessProbe:
            httpGet: {path: /health/live, port: 8080}
            initialDelaySeconds: 120
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
          startupProbe:
            httpGet: {path: /health/live, port: 8080}
            periodSeconds: 5
            failureThreshold: 60
          livenessProbe:
            httpGet: {path: /health/live, port: 8080}
"#;

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    if !w.is_long_running() {
        return Verdict::NotApplicable;
    }
    let threshold = c.params.startup_initial_delay_threshold_seconds;
    let violations = w
        .long_lived_containers()
        .filter(|c| c.container.startup_probe.is_none())
        .filter_map(|c| {
            // No liveness probe: nothing to delay (liveness-probe reports the absence).
            let delay = c.container.liveness_probe.as_ref()?.initial_delay_seconds?;
            (delay > threshold).then(|| {
                Violation::container(
                    c.name(),
                    format!(
                        "container \"{}\" delays its livenessProbe by {delay}s (over {threshold}s) \
                         but has no startupProbe",
                        c.name()
                    ),
                    "add a startupProbe and drop the livenessProbe initialDelaySeconds",
                )
            })
        })
        .collect();
    Verdict::from_violations(violations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Params;
    use crate::rules::testing::{
        check, check_with, context, failing_containers, violations, workload,
    };

    fn deployment(containers: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  selector: {{}}\n  template:\n    spec:\n{containers}"
        )
    }

    #[test]
    fn long_delay_without_startup_probe_fails_with_values() {
        let w = workload(&deployment(
            r#"      containers:
        - name: app
          image: "a:1"
          livenessProbe: {httpGet: {path: /live, port: 8080}, initialDelaySeconds: 120}
"#,
        ));
        let v = violations(check(&RULE, &w));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].container.as_deref(), Some("app"));
        assert_eq!(
            v[0].message,
            "container \"app\" delays its livenessProbe by 120s (over 30s) but has no startupProbe"
        );
    }

    #[test]
    fn startup_probe_or_short_delay_passes() {
        let w = workload(&deployment(
            r#"      containers:
        - name: slow
          image: "a:1"
          startupProbe: {exec: {command: [cat, /tmp/started]}, failureThreshold: 60}
          livenessProbe: {exec: {command: [cat, /tmp/alive]}, initialDelaySeconds: 120}
        - name: at-threshold
          image: "a:1"
          livenessProbe: {tcpSocket: {port: 80}, initialDelaySeconds: 30}
        - name: no-delay
          image: "a:1"
          livenessProbe: {grpc: {port: 9090}}
"#,
        ));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn no_liveness_probe_passes() {
        let w = workload(&deployment(
            "      containers:\n        - {name: app, image: 'a:1', readinessProbe: {tcpSocket: {port: 80}, initialDelaySeconds: 300}}\n",
        ));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn threshold_comes_from_params() {
        let w = workload(&deployment(
            "      containers:\n        - {name: app, image: 'a:1', livenessProbe: {tcpSocket: {port: 80}, initialDelaySeconds: 20}}\n",
        ));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
        let params = Params {
            startup_initial_delay_threshold_seconds: 10,
            ..Params::default()
        };
        let v = violations(check_with(&RULE, &w, &context(""), &params));
        assert_eq!(
            v[0].message,
            "container \"app\" delays its livenessProbe by 20s (over 10s) but has no startupProbe"
        );
    }

    #[test]
    fn native_sidecars_checked_init_containers_ignored() {
        let w = workload(&deployment(
            r#"      initContainers:
        - {name: init, image: "i:1", livenessProbe: {tcpSocket: {port: 1}, initialDelaySeconds: 90}}
        - {name: proxy, image: "p:1", restartPolicy: Always, livenessProbe: {tcpSocket: {port: 1}, initialDelaySeconds: 90}}
      containers:
        - {name: app, image: "a:1"}
"#,
        ));
        assert_eq!(failing_containers(check(&RULE, &w)), vec!["proxy"]);
    }

    #[test]
    fn jobs_cronjobs_and_run_once_pods_are_not_applicable() {
        let c = "{name: a, image: 'a:1', livenessProbe: {tcpSocket: {port: 80}, initialDelaySeconds: 600}}";
        let job = workload(&format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: j}}\nspec:\n  template:\n    spec:\n      containers: [{c}]\n"
        ));
        assert_eq!(check(&RULE, &job), Verdict::NotApplicable);
        let cron = workload(&format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: c}}\nspec:\n  schedule: '@hourly'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{c}]\n"
        ));
        assert_eq!(check(&RULE, &cron), Verdict::NotApplicable);
        let pod = workload(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  restartPolicy: OnFailure\n  containers: [{c}]\n"
        ));
        assert_eq!(check(&RULE, &pod), Verdict::NotApplicable);
        let always = workload(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers: [{c}]\n"
        ));
        assert_eq!(failing_containers(check(&RULE, &always)), vec!["a"]);
    }

    #[test]
    fn missing_spec_passes_vacuously() {
        let w = workload("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: empty}\n");
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }
}
