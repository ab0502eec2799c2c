//! `graceful-shutdown`: serving containers have a preStop hook, and every preStop sleep fits
//! inside `terminationGracePeriodSeconds`, leaving time to drain.
//!
//! A serving container is a long-lived container (main or native sidecar) that traffic can
//! reach: it declares a `containerPort`, or a probe reaches it over httpGet, tcpSocket or
//! grpc, or a Service selecting the pods targets a numeric port and it is the pod's one main
//! container (ports are optional in Kubernetes). A preStop sleep that does not fit the grace
//! period is a finding on any long-lived container, serving or not. Workloads that are not
//! long-running (Jobs, CronJobs, run-once Pods), and workloads with neither a serving
//! container nor a preStop hook, are not concerned (`NotApplicable`).
//!
//! The preStop duration is read from the native `sleep` action or from an `exec` hook that
//! runs `sleep` (directly, through busybox, or as the first command of `sh -c`). When the
//! script goes on after the sleep (`sleep 5 && nginx -s quit`) the sleep is a lower bound,
//! which is still what the grace period must exceed. httpGet/tcpSocket hooks and scripts we
//! cannot read count as present with an unknown duration, and pass.

use k8s_openapi::api::core::v1::{Container, LifecycleHandler};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Check, Examples, RuleDef, Verdict, Violation};
use crate::api::Severity;
use crate::engine::workload::ContainerRole;

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
    summary: "serving containers (declared ports, network probes, Service target ports) have a preStop hook, and any preStop sleep fits inside terminationGracePeriodSeconds",
    rubric: "F6",
    default_enabled: true,
    default_severity: Severity::Medium,
    rationale: "When a pod is deleted, the kubelet sends SIGTERM while Services, kube-proxy, \
        ingress controllers and load balancers are still removing the pod from their \
        endpoints, asynchronously. A container that stops at once drops the requests that \
        keep arriving for a few seconds, on every rollout and every node drain. A short \
        preStop sleep keeps it serving until the endpoints are gone. The sleep counts against \
        terminationGracePeriodSeconds, so the grace period must leave time after it for the \
        app to finish in-flight work (prodready requires at least 5s), or it is SIGKILLed; \
        that holds for every container with a preStop sleep, serving or not. Ports are \
        optional in Kubernetes, so a container also serves when a probe reaches it over \
        httpGet, tcpSocket or grpc, or when a Service selecting the pods targets a numeric \
        port and it is the pod's only main container.",
    example: "terminationGracePeriodSeconds: 45\ncontainers:\n  - name: app\n    lifecycle:\n      preStop:\n        sleep: {seconds: 10}",
    checks: "Applies to long-running workloads. A serving container (a long-lived container that \
        declares a `containerPort`, that a probe reaches over httpGet, tcpSocket or grpc, or, as \
        the pod's only main container, whose pods a Service targets on a numeric port) must have \
        a `preStop` hook that is not a 0-second sleep. Any long-lived container's preStop sleep \
        (the native `sleep` action, or `sleep N` run by an exec hook, directly, through busybox \
        or first in `sh -c`) must end at least 5 seconds before `terminationGracePeriodSeconds` \
        (30 when unset). httpGet and tcpSocket hooks, and scripts whose duration cannot be read, \
        pass. A workload with neither a serving container nor a preStop hook is not applicable.",
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
          ports: [{name: http, containerPort: 8080}]
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
      terminationGracePeriodSeconds: 30
      containers:
        - name: app
          image: ghcr.io/acme/web:1.4.2
          ports: [{name: http, containerPort: 8080}]
          lifecycle:
            preStop:
              sleep: {seconds: 5}
"#;

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    if !w.is_long_running() {
        return Verdict::NotApplicable;
    }
    let grace = w
        .pod
        .termination_grace_period_seconds
        .unwrap_or(DEFAULT_GRACE_SECONDS);
    let service_ports = service_target_ports(c);
    let main_count = w
        .long_lived_containers()
        .filter(|c| c.role == ContainerRole::Main)
        .count();
    let mut concerned = false;
    let violations = w
        .long_lived_containers()
        .filter_map(|cr| {
            let container = cr.container;
            let serving = is_serving(container, &service_ports, cr.role, main_count);
            let pre_stop = container
                .lifecycle
                .as_ref()
                .and_then(|l| l.pre_stop.as_ref());
            concerned |= serving || pre_stop.is_some();
            judge(cr.name(), serving, pre_stop, grace)
        })
        .collect();
    if !concerned {
        return Verdict::NotApplicable;
    }
    Verdict::from_violations(violations)
}

/// One container's finding: a serving container needs a preStop that sleeps; any preStop
/// sleep, serving or not, must leave time to drain inside the grace period.
fn judge(
    name: &str,
    serving: bool,
    pre_stop: Option<&LifecycleHandler>,
    grace: i64,
) -> Option<Violation> {
    let Some(pre_stop) = pre_stop else {
        return serving.then(|| {
            Violation::container(
                name,
                format!(
                    "container \"{name}\" has no preStop hook: it gets SIGTERM while \
                     endpoints still send it requests"
                ),
                "add lifecycle.preStop.sleep.seconds (e.g. 5) to outlast endpoint removal",
            )
        });
    };
    let sleep = pre_stop_sleep(pre_stop)?;
    if sleep <= 0 {
        serving.then(|| {
            Violation::container(
                name,
                format!(
                    "container \"{name}\" preStop sleeps 0s: it gets SIGTERM while \
                     endpoints still send it requests"
                ),
                "sleep a few seconds in preStop (e.g. 5)",
            )
        })
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
}

fn too_long_fix(sleep: i64) -> String {
    format!(
        "raise terminationGracePeriodSeconds to at least {} or shorten the preStop sleep",
        sleep.saturating_add(MIN_DRAIN_SECONDS)
    )
}

/// The numeric ports that Services selecting the workload's pods send traffic to: each
/// `targetPort` given as a number, or the `port` when `targetPort` is absent. (A named
/// `targetPort` names a declared container port, which makes its container serving anyway.)
fn service_target_ports(c: &Check<'_>) -> Vec<i32> {
    let labels = &c.workload.pod_labels;
    c.context
        .services(&c.workload.namespace)
        .iter()
        .filter(|svc| {
            // A Service without a selector has hand-made endpoints: it selects no pods.
            svc.selector
                .as_ref()
                .is_some_and(|sel| crate::engine::selector::map_matches(sel, labels))
        })
        .flat_map(|svc| svc.ports.iter())
        .filter_map(|p| match &p.target_port {
            None => Some(p.port),
            Some(IntOrString::Int(n)) => Some(*n),
            Some(IntOrString::String(_)) => None,
        })
        .collect()
}

/// Whether traffic may reach the container, so that it must drain: it declares a port; or
/// a probe reaches it over the network (httpGet, tcpSocket, grpc), which proves it listens;
/// or a Service selecting its pods targets a numeric port and it is the pod's one main
/// container, so the one listening there. Ports are optional in Kubernetes: declared ports
/// alone miss the other two.
fn is_serving(
    container: &Container,
    service_ports: &[i32],
    role: ContainerRole,
    main_count: usize,
) -> bool {
    if container.ports.as_ref().is_some_and(|p| !p.is_empty()) {
        return true;
    }
    let probed = [
        container.liveness_probe.as_ref(),
        container.readiness_probe.as_ref(),
        container.startup_probe.as_ref(),
    ]
    .into_iter()
    .flatten()
    .any(|p| p.http_get.is_some() || p.tcp_socket.is_some() || p.grpc.is_some());
    if probed {
        return true;
    }
    // No port declared and no network probe: a Service's numeric targetPort can only be
    // pinned on the container when it is the pod's one main container.
    !service_ports.is_empty() && role == ContainerRole::Main && main_count == 1
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
    use crate::engine::{Context, Workload};
    use crate::rules::Params;
    use crate::rules::testing::{
        check, check_with, context, deployment, failing_containers, violations, workload,
    };

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
    fn containers_probed_over_the_network_serve_without_declared_ports() {
        let w = workload(&deployment(
            r#"      containers:
        - {name: http, image: "a:1", readinessProbe: {httpGet: {path: /ready, port: 8080}}}
        - {name: tcp, image: "a:1", livenessProbe: {tcpSocket: {port: 5432}}}
        - {name: grpc, image: "a:1", startupProbe: {grpc: {port: 9000}}}
        - {name: execd, image: "a:1", readinessProbe: {exec: {command: [cat, /ready]}}}
"#,
        ));
        assert_eq!(
            failing_containers(check(&RULE, &w)),
            vec!["http", "tcp", "grpc"]
        );
    }

    #[test]
    fn a_service_target_port_makes_the_only_main_container_serving() {
        let pod = |containers: &str| {
            workload(&format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web, tier: front}}}}\n    spec:\n      containers: {containers}\n"
            ))
        };
        let svc = |selector: &str, port: &str| {
            context(&format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{selector: {selector}, ports: [{port}]}}\n"
            ))
        };
        let run = |w: &Workload, ctx: &Context| check_with(&RULE, w, ctx, &Params::default());
        let one = pod("[{name: app, image: 'a:1'}]");
        // Numeric targetPort, or none (then the port itself): the one container serves.
        for port in ["{port: 80, targetPort: 8080}", "{port: 8080}"] {
            assert_eq!(
                failing_containers(run(&one, &svc("{app: web}", port))),
                vec!["app"],
                "{port}"
            );
        }
        // A named targetPort names a declared port; none is declared here.
        assert_eq!(
            run(&one, &svc("{app: web}", "{port: 80, targetPort: http}")),
            Verdict::NotApplicable
        );
        // A Service that does not select the pods, or selects nothing.
        assert_eq!(
            run(&one, &svc("{app: api}", "{port: 80}")),
            Verdict::NotApplicable
        );
        assert_eq!(run(&one, &svc("{}", "{port: 80}")), Verdict::NotApplicable);
        // Two main containers: which one listens cannot be told from the Service alone.
        let two = pod("[{name: app, image: 'a:1'}, {name: log, image: 'l:1'}]");
        assert_eq!(
            run(&two, &svc("{app: web}", "{port: 80, targetPort: 8080}")),
            Verdict::NotApplicable
        );
    }

    #[test]
    fn a_pre_stop_that_does_not_fit_fails_on_containers_that_do_not_serve() {
        let w = workload(&deployment(
            r#"      terminationGracePeriodSeconds: 30
      containers:
        - {name: worker, image: "a:1", lifecycle: {preStop: {sleep: {seconds: 30}}}}
        - {name: flusher, image: "a:1", lifecycle: {preStop: {exec: {command: [sh, -c, "sleep 27; flush"]}}}}
        - {name: fine, image: "a:1", lifecycle: {preStop: {sleep: {seconds: 10}}}}
        - {name: zero, image: "a:1", lifecycle: {preStop: {sleep: {seconds: 0}}}}
"#,
        ));
        let v = violations(check(&RULE, &w));
        assert_eq!(
            v.iter()
                .filter_map(|v| v.container.as_deref())
                .collect::<Vec<_>>(),
            vec!["worker", "flusher"]
        );
        assert_eq!(
            v[0].message,
            "container \"worker\" preStop sleeps 30s but terminationGracePeriodSeconds is 30s: the app is SIGKILLed before it can drain"
        );
        // A worker whose preStop fits: the rule holds (it is concerned, not inapplicable).
        let fits = workload(&deployment(
            "      containers: [{name: worker, image: 'a:1', lifecycle: {preStop: {sleep: {seconds: 5}}}}]\n",
        ));
        assert_eq!(check(&RULE, &fits), Verdict::Pass);
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
