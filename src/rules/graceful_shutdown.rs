//! `graceful-shutdown`: serving containers have a preStop hook whose sleep fits inside
//! `terminationGracePeriodSeconds`, leaving time to drain.
//!
//! A serving container is a long-lived container (main or native sidecar) that declares at
//! least one `containerPort`. Workloads that are not long-running (Jobs, CronJobs, run-once
//! Pods) and workloads without a serving container are not concerned: nothing routes
//! traffic to them through endpoints, so there is nothing to drain (`NotApplicable`).
//!
//! The preStop duration is read from the native `sleep` action or from an `exec` hook that
//! runs `sleep` (directly, through busybox, or as the first command of `sh -c`). When the
//! script goes on after the sleep (`sleep 5 && nginx -s quit`) the sleep is a lower bound,
//! which is still what the grace period must exceed. httpGet/tcpSocket hooks and scripts we
//! cannot read count as present with an unknown duration, and pass.

use k8s_openapi::api::core::v1::{Container, LifecycleHandler};

use super::{Check, RuleDef, Verdict, Violation};
use crate::api::Severity;

/// Kubernetes' default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE_SECONDS: i64 = 30;

/// Seconds that must remain between the end of the preStop sleep and SIGKILL. The grace
/// period counts from the start of the preStop hook, so the app only gets `grace - sleep`
/// after SIGTERM to finish in-flight requests, flush and close connections. 5s is a floor
/// that covers short HTTP requests and connection draining; anything less means the app is
/// effectively killed mid-request, which is what the preStop sleep was meant to prevent.
const MIN_DRAIN_SECONDS: i64 = 5;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "graceful-shutdown",
    summary: "serving containers have a preStop hook, and its sleep fits inside terminationGracePeriodSeconds",
    rubric: "F6",
    default_enabled: true,
    default_severity: Severity::Medium,
    rationale: "When a pod is deleted, the kubelet sends SIGTERM while Services, kube-proxy, \
        ingress controllers and load balancers are still removing the pod from their \
        endpoints, asynchronously. A container that stops at once drops the requests that \
        keep arriving for a few seconds, on every rollout and every node drain. A short \
        preStop sleep keeps it serving until the endpoints are gone. The sleep counts against \
        terminationGracePeriodSeconds, so the grace period must leave time after it for the \
        app to finish in-flight work (prodready requires at least 5s), or it is SIGKILLed.",
    example: "terminationGracePeriodSeconds: 45\ncontainers:\n  - name: app\n    lifecycle:\n      preStop:\n        sleep: {seconds: 10}",
    check,
};

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    if !w.is_long_running() {
        return Verdict::NotApplicable;
    }
    let grace = w
        .pod
        .termination_grace_period_seconds
        .unwrap_or(DEFAULT_GRACE_SECONDS);
    let mut serving = w
        .long_lived_containers()
        .filter(|c| is_serving(c.container))
        .peekable();
    if serving.peek().is_none() {
        return Verdict::NotApplicable;
    }
    let violations = serving
        .filter_map(|c| {
            let name = c.name();
            let pre_stop = c
                .container
                .lifecycle
                .as_ref()
                .and_then(|l| l.pre_stop.as_ref());
            let Some(pre_stop) = pre_stop else {
                return Some(Violation::container(
                    name,
                    format!(
                        "container \"{name}\" has no preStop hook: it gets SIGTERM while \
                         endpoints still send it requests"
                    ),
                    "add lifecycle.preStop.sleep.seconds (e.g. 5) to outlast endpoint removal",
                ));
            };
            let sleep = pre_stop_sleep(pre_stop)?;
            if sleep <= 0 {
                Some(Violation::container(
                    name,
                    format!(
                        "container \"{name}\" preStop sleeps 0s: it gets SIGTERM while \
                         endpoints still send it requests"
                    ),
                    "sleep a few seconds in preStop (e.g. 5)",
                ))
            } else if sleep >= grace {
                Some(Violation::container(
                    name,
                    format!(
                        "container \"{name}\" preStop sleeps {sleep}s but \
                         terminationGracePeriodSeconds is {grace}s: the app is SIGKILLed \
                         before it can drain"
                    ),
                    too_long_fix(sleep),
                ))
            } else if grace - sleep < MIN_DRAIN_SECONDS {
                Some(Violation::container(
                    name,
                    format!(
                        "container \"{name}\" preStop sleeps {sleep}s of a {grace}s \
                         terminationGracePeriodSeconds: under {MIN_DRAIN_SECONDS}s remain to \
                         drain before SIGKILL"
                    ),
                    too_long_fix(sleep),
                ))
            } else {
                None
            }
        })
        .collect();
    Verdict::from_violations(violations)
}

fn too_long_fix(sleep: i64) -> String {
    format!(
        "raise terminationGracePeriodSeconds to at least {} or shorten the preStop sleep",
        sleep.saturating_add(MIN_DRAIN_SECONDS)
    )
}

/// Whether Services can route to the container: it declares a port.
fn is_serving(container: &Container) -> bool {
    container.ports.as_ref().is_some_and(|p| !p.is_empty())
}

/// How long a preStop hook sleeps, in whole seconds (rounded up); `None` when unknown.
fn pre_stop_sleep(hook: &LifecycleHandler) -> Option<i64> {
    if let Some(sleep) = &hook.sleep {
        return Some(sleep.seconds);
    }
    let argv = hook.exec.as_ref()?.command.as_deref()?;
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    match argv.split_first()? {
        (prog, rest) if is_shell(prog) => {
            // `sh -c SCRIPT`, also with combined flags such as `-ec`.
            let flag = rest
                .iter()
                .position(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('c'))?;
            script_sleep(rest.get(flag + 1)?)
        }
        _ => command_sleep(&argv),
    }
}

/// The sleep of the script's first command, e.g. `sleep 5 && nginx -s quit` → 5.
fn script_sleep(script: &str) -> Option<i64> {
    let first = script
        .split([';', '&', '|', '\n'])
        .next()?
        .trim_start()
        .trim_start_matches("exec ");
    let words: Vec<&str> = first.split_whitespace().collect();
    command_sleep(&words)
}

/// The duration of `sleep ARGS…` or `busybox sleep ARGS…`.
fn command_sleep(argv: &[&str]) -> Option<i64> {
    let (prog, rest) = argv.split_first()?;
    let args = match basename(prog) {
        "sleep" => rest,
        "busybox" if rest.first() == Some(&"sleep") => rest.get(1..)?,
        _ => return None,
    };
    if args.is_empty() {
        return None;
    }
    // GNU sleep sums its arguments.
    args.iter()
        .try_fold(0i64, |total, a| Some(total.saturating_add(duration(a)?)))
}

/// A `sleep` argument in seconds, rounded up: `5`, `5s`, `1.5`, `2m`, `1h`, `1d`, `infinity`.
fn duration(arg: &str) -> Option<i64> {
    if arg == "infinity" || arg == "inf" {
        return Some(i64::MAX);
    }
    let (number, unit) = match arg.char_indices().last()? {
        (i, 's') => (&arg[..i], 1),
        (i, 'm') => (&arg[..i], 60),
        (i, 'h') => (&arg[..i], 3600),
        (i, 'd') => (&arg[..i], 86_400),
        _ => (arg, 1),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().unwrap_or(i64::MAX)
    };
    Some(
        whole
            .saturating_mul(unit)
            .saturating_add(fraction_ceil(fraction, unit)),
    )
}

/// `0.FRACTION * unit` seconds, rounded up (nine digits are plenty; any further non-zero
/// digit rounds up).
fn fraction_ceil(fraction: &str, unit: i64) -> i64 {
    let (kept, rest) = fraction.split_at(fraction.len().min(9));
    let mut numerator: i64 = kept.parse().unwrap_or(0);
    if rest.bytes().any(|b| b != b'0') {
        numerator += 1;
    }
    let denominator = 10i64.pow(kept.len() as u32);
    // numerator < 10^9 + 1 and unit <= 86_400: the product fits in an i64.
    (numerator * unit + denominator - 1) / denominator
}

fn is_shell(prog: &str) -> bool {
    matches!(
        basename(prog),
        "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh"
    )
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{check, deployment, failing_containers, violations, workload};

    /// A Deployment whose pod spec is `pod` (indented 6 spaces).
    /// A serving container `app` with the given preStop handler, under `grace` (if any).
    fn with_pre_stop(grace: Option<i64>, pre_stop: &str) -> String {
        let grace = grace
            .map(|g| format!("      terminationGracePeriodSeconds: {g}\n"))
            .unwrap_or_default();
        deployment(&format!(
            "{grace}      containers:\n        - name: app\n          image: 'a:1'\n          ports: [{{containerPort: 8080}}]\n          lifecycle:\n            preStop: {pre_stop}\n"
        ))
    }

    fn verdict(grace: Option<i64>, pre_stop: &str) -> Verdict {
        check(&RULE, &workload(&with_pre_stop(grace, pre_stop)))
    }

    #[test]
    fn native_sleep_within_grace_passes() {
        assert_eq!(verdict(None, "{sleep: {seconds: 5}}"), Verdict::Pass);
        assert_eq!(verdict(Some(45), "{sleep: {seconds: 40}}"), Verdict::Pass);
    }

    #[test]
    fn missing_pre_stop_fails_on_serving_containers_only() {
        let w = workload(&deployment(
            r#"      containers:
        - {name: web, image: "a:1", ports: [{containerPort: 80}]}
        - {name: worker, image: "a:1"}
        - {name: noports, image: "a:1", ports: []}
"#,
        ));
        let v = violations(check(&RULE, &w));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].container.as_deref(), Some("web"));
        assert_eq!(
            v[0].message,
            "container \"web\" has no preStop hook: it gets SIGTERM while endpoints still send it requests"
        );
    }

    #[test]
    fn sleep_as_long_as_grace_fails() {
        let v = violations(verdict(None, "{sleep: {seconds: 30}}"));
        assert_eq!(
            v[0].message,
            "container \"app\" preStop sleeps 30s but terminationGracePeriodSeconds is 30s: the app is SIGKILLed before it can drain"
        );
        assert_eq!(
            v[0].remediation,
            "raise terminationGracePeriodSeconds to at least 35 or shorten the preStop sleep"
        );
        let v = violations(verdict(Some(10), "{exec: {command: [sleep, '60']}}"));
        assert!(
            v[0].message
                .contains("sleeps 60s but terminationGracePeriodSeconds is 10s")
        );
    }

    #[test]
    fn less_than_the_drain_margin_fails() {
        let v = violations(verdict(None, "{sleep: {seconds: 26}}"));
        assert_eq!(
            v[0].message,
            "container \"app\" preStop sleeps 26s of a 30s terminationGracePeriodSeconds: under 5s remain to drain before SIGKILL"
        );
        // Exactly the margin is enough.
        assert_eq!(verdict(None, "{sleep: {seconds: 25}}"), Verdict::Pass);
        assert_eq!(verdict(Some(10), "{sleep: {seconds: 5}}"), Verdict::Pass);
    }

    #[test]
    fn zero_sleep_fails() {
        let v = violations(verdict(None, "{sleep: {seconds: 0}}"));
        assert_eq!(
            v[0].message,
            "container \"app\" preStop sleeps 0s: it gets SIGTERM while endpoints still send it requests"
        );
    }

    #[test]
    fn exec_sleep_forms_are_understood() {
        for hook in [
            "{exec: {command: [sleep, '40']}}",
            "{exec: {command: [/bin/sleep, 40s]}}",
            "{exec: {command: [sh, -c, 'sleep 40']}}",
            "{exec: {command: [/bin/sh, -ec, 'sleep 40 && nginx -s quit']}}",
            "{exec: {command: [bash, -c, 'sleep 40s; kill -QUIT 1']}}",
            "{exec: {command: [/bin/busybox, sleep, '40']}}",
            "{exec: {command: [sleep, '20', '20']}}",
            "{exec: {command: [sleep, '39.5']}}",
        ] {
            let v = violations(verdict(None, hook));
            assert!(
                v[0].message
                    .contains("preStop sleeps 40s but terminationGracePeriodSeconds is 30s"),
                "{hook}: {}",
                v[0].message
            );
        }
        assert_eq!(
            verdict(Some(90), "{exec: {command: [sleep, 1m]}}"),
            Verdict::Pass
        );
        let v = violations(verdict(Some(90), "{exec: {command: [sleep, 2m]}}"));
        assert!(v[0].message.contains("sleeps 120s but"));
        let v = violations(verdict(Some(3600), "{exec: {command: [sleep, infinity]}}"));
        assert!(v[0].message.contains("SIGKILLed"));
    }

    #[test]
    fn unknown_durations_pass() {
        for hook in [
            "{httpGet: {path: /drain, port: 8080}}",
            "{tcpSocket: {port: 8080}}",
            "{exec: {command: [/app/drain.sh]}}",
            "{exec: {command: [sh, -c, 'sleep $DELAY']}}",
            "{exec: {command: [sh, -c, 'nginx -s quit; sleep 60']}}",
            "{exec: {command: [sleep]}}",
            "{exec: {command: [sh]}}",
            "{exec: {}}",
            "{}",
        ] {
            assert_eq!(verdict(Some(10), hook), Verdict::Pass, "{hook}");
        }
    }

    #[test]
    fn native_sidecars_with_ports_count_init_containers_do_not() {
        let w = workload(&deployment(
            r#"      initContainers:
        - {name: migrate, image: "m:1", ports: [{containerPort: 5432}]}
        - {name: proxy, image: "p:1", restartPolicy: Always, ports: [{containerPort: 15001}]}
      containers:
        - name: app
          image: "a:1"
          ports: [{containerPort: 8080}]
          lifecycle: {preStop: {sleep: {seconds: 5}}}
"#,
        ));
        assert_eq!(failing_containers(check(&RULE, &w)), vec!["proxy"]);
    }

    #[test]
    fn not_applicable_without_serving_containers_or_long_running_pods() {
        let worker = workload(&deployment("      containers: [{name: w, image: 'w:1'}]\n"));
        assert_eq!(check(&RULE, &worker), Verdict::NotApplicable);
        let empty = workload("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: empty}\n");
        assert_eq!(check(&RULE, &empty), Verdict::NotApplicable);
        let c = "{name: a, image: 'a:1', ports: [{containerPort: 80}]}";
        let job = workload(&format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: j}}\nspec:\n  template:\n    spec:\n      containers: [{c}]\n"
        ));
        assert_eq!(check(&RULE, &job), Verdict::NotApplicable);
        let cron = workload(&format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: c}}\nspec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{c}]\n"
        ));
        assert_eq!(check(&RULE, &cron), Verdict::NotApplicable);
        let pod = workload(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  restartPolicy: Never\n  containers: [{c}]\n"
        ));
        assert_eq!(check(&RULE, &pod), Verdict::NotApplicable);
        let serving_pod = workload(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  terminationGracePeriodSeconds: 5\n  containers: [{c}]\n"
        ));
        assert_eq!(failing_containers(check(&RULE, &serving_pod)), vec!["a"]);
    }

    #[test]
    fn duration_parsing() {
        assert_eq!(duration("5"), Some(5));
        assert_eq!(duration("5s"), Some(5));
        assert_eq!(duration("0.1"), Some(1));
        assert_eq!(duration(".5"), Some(1));
        assert_eq!(duration("1.0m"), Some(60));
        assert_eq!(duration("1.5m"), Some(90));
        assert_eq!(duration("0.0000000001"), Some(1));
        assert_eq!(duration("1d"), Some(86_400));
        assert_eq!(duration("99999999999999999999d"), Some(i64::MAX));
        for bad in ["", "s", ".", "-1", "5x", "$DELAY", "1.2.3", "é"] {
            assert_eq!(duration(bad), None, "{bad:?}");
        }
    }
}
