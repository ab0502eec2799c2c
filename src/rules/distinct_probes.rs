//! `distinct-probes`: a container's livenessProbe and readinessProbe are not the same check.
//!
//! Two probes are "the same" when the kubelet would perform the same request: the same
//! httpGet (path, port, host, scheme), the same exec command, the same tcpSocket (port, host)
//! or the same grpc (port, service). Named ports are resolved through the container's own
//! `ports`, so `port: http` and `port: 8080` compare equal when `http` is 8080. Timing
//! fields (periods, thresholds) and HTTP headers are deliberately ignored: different timing
//! on the same endpoint still restarts every pod when a dependency fails.

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Check, Examples, RuleDef, Verdict, Violation};
use crate::api::Severity;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "distinct-probes",
    summary: "livenessProbe and readinessProbe do not use the same handler",
    rubric: "F7, 5.3",
    default_enabled: true,
    default_severity: Severity::Medium,
    rationale: "Liveness answers 'is the process alive?' and a failure restarts the container; \
        readiness answers 'can it serve now, dependencies included?' and a failure only takes \
        the pod out of its Services. When both probes hit the same endpoint, a database or \
        downstream outage fails liveness too, and the kubelet restarts every pod at once: a \
        partial outage becomes a full one, followed by a thundering herd on recovery.",
    example: "livenessProbe:\n  httpGet: {path: /health/live, port: http}\nreadinessProbe:\n  httpGet: {path: /health/ready, port: http}",
    checks: "For every long-lived container with both probes, the `livenessProbe` and the \
        `readinessProbe` must not perform the same check: the same httpGet (path, port, host, \
        scheme), exec command, tcpSocket (port, host) or grpc (port, service). Named ports are \
        resolved through the container's `ports`, so `port: http` equals `port: 8080` when \
        `http` is 8080; timing fields and headers are ignored. A container missing either probe \
        passes here (`liveness-probe` and `readiness-probe` report that). Jobs, CronJobs and \
        run-once Pods are not applicable.",
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
          livenessProbe:
            httpGet: {path: /healthz, port: http}
          readinessProbe:
            httpGet: {path: /healthz, port: 8080}
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
          ports: [{name: http, containerPort: 8080}]
          livenessProbe:
            httpGet: {path: /health/live, port: http}
          readinessProbe:
            httpGet: {path: /health/ready, port: http}
"#;

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    if !w.is_long_running() {
        return Verdict::NotApplicable;
    }
    let violations = w
        .long_lived_containers()
        .filter_map(|c| {
            let container = c.container;
            // A missing probe is reported by liveness-probe / readiness-probe.
            let live = handler(container, container.liveness_probe.as_ref()?)?;
            let ready = handler(container, container.readiness_probe.as_ref()?)?;
            (live == ready).then(|| {
                Violation::container(
                    c.name(),
                    format!(
                        "container \"{}\" uses the same {} for livenessProbe and readinessProbe",
                        c.name(),
                        live.describe()
                    ),
                    "make liveness check only the process; keep dependency checks in readiness",
                )
            })
        })
        .collect();
    Verdict::from_violations(violations)
}

/// A port as the kubelet will dial it: a number, or a name the container does not declare.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Port<'a> {
    Number(i32),
    Name(&'a str),
}

impl std::fmt::Display for Port<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Port::Number(n) => write!(f, "{n}"),
            Port::Name(s) => write!(f, "{}", truncate(s)),
        }
    }
}

/// What a probe does, normalized so that equal values mean the same request.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Handler<'a> {
    Exec(&'a [String]),
    Http {
        scheme: String,
        host: &'a str,
        port: Port<'a>,
        path: &'a str,
    },
    Tcp {
        host: &'a str,
        port: Port<'a>,
    },
    Grpc {
        port: i32,
        service: &'a str,
    },
}

impl Handler<'_> {
    /// A short description for messages. Exec commands are not echoed: they may carry
    /// credentials (e.g. a `curl -H "Authorization: ..."`).
    fn describe(&self) -> String {
        match self {
            Handler::Exec(_) => "exec command".to_owned(),
            Handler::Http { path, port, .. } => {
                format!("httpGet {} on port {port}", truncate(path))
            }
            Handler::Tcp { port, .. } => format!("tcpSocket on port {port}"),
            Handler::Grpc { port, service: "" } => {
                format!("grpc check on port {port}")
            }
            Handler::Grpc { port, service } => {
                format!("grpc check of \"{}\" on port {port}", truncate(service))
            }
        }
    }
}

/// The probe's handler, or `None` for a probe without one (invalid; the API server rejects it).
/// The API allows exactly one handler per probe, so the first one found is the one.
fn handler<'a>(container: &'a Container, probe: &'a Probe) -> Option<Handler<'a>> {
    if let Some(exec) = &probe.exec {
        return Some(Handler::Exec(exec.command.as_deref().unwrap_or_default()));
    }
    if let Some(http) = &probe.http_get {
        // The kubelet's defaults: scheme HTTP, host = pod IP, path "" (requested as "/").
        let path = http
            .path
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        return Some(Handler::Http {
            scheme: http
                .scheme
                .as_deref()
                .unwrap_or("HTTP")
                .to_ascii_uppercase(),
            host: http.host.as_deref().unwrap_or_default(),
            port: resolve(container, &http.port),
            path,
        });
    }
    if let Some(tcp) = &probe.tcp_socket {
        return Some(Handler::Tcp {
            host: tcp.host.as_deref().unwrap_or_default(),
            port: resolve(container, &tcp.port),
        });
    }
    if let Some(grpc) = &probe.grpc {
        // An absent service and "" both mean the server's overall health.
        return Some(Handler::Grpc {
            port: grpc.port,
            service: grpc.service.as_deref().unwrap_or_default(),
        });
    }
    None
}

/// Resolves a named port through the container's declared ports (as the kubelet does).
fn resolve<'a>(container: &'a Container, port: &'a IntOrString) -> Port<'a> {
    match port {
        IntOrString::Int(n) => Port::Number(*n),
        IntOrString::String(s) => {
            if let Ok(n) = s.parse::<i32>() {
                return Port::Number(n);
            }
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(s.as_str()))
                .map_or(Port::Name(s), |p| Port::Number(p.container_port))
        }
    }
}

/// Caps user-supplied text in messages so that warnings stay within the API server's limit.
fn truncate(s: &str) -> &str {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{check, failing_containers, violations, workload};

    fn deployment(containers: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  selector: {{}}\n  template:\n    spec:\n{containers}"
        )
    }

    #[test]
    fn distinct_http_paths_pass() {
        let w = workload(&deployment(
            r#"      containers:
        - name: app
          image: "a:1"
          livenessProbe: {httpGet: {path: /health/live, port: 8080}}
          readinessProbe: {httpGet: {path: /health/ready, port: 8080}}
"#,
        ));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn same_http_get_fails_even_with_different_timing() {
        let w = workload(&deployment(
            r#"      containers:
        - name: app
          image: "a:1"
          livenessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 30, failureThreshold: 5}
          readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 5}
"#,
        ));
        let v = violations(check(&RULE, &w));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].container.as_deref(), Some("app"));
        assert_eq!(
            v[0].message,
            "container \"app\" uses the same httpGet /healthz on port 8080 for livenessProbe and readinessProbe"
        );
    }

    #[test]
    fn named_port_resolves_through_container_ports() {
        let same = workload(&deployment(
            r#"      containers:
        - name: app
          image: "a:1"
          ports: [{name: http, containerPort: 8080}]
          livenessProbe: {httpGet: {path: /healthz, port: http}}
          readinessProbe: {httpGet: {path: /healthz, port: 8080}}
"#,
        ));
        assert_eq!(failing_containers(check(&RULE, &same)), vec!["app"]);

        // "http" names 80 here, so the two probes dial different ports.
        let different = workload(&deployment(
            r#"      containers:
        - name: app
          image: "a:1"
          ports: [{name: http, containerPort: 80}]
          livenessProbe: {httpGet: {path: /healthz, port: http}}
          readinessProbe: {httpGet: {path: /healthz, port: 8080}}
"#,
        ));
        assert_eq!(check(&RULE, &different), Verdict::Pass);

        // An undeclared name cannot be resolved: it differs from any number.
        let unresolved = workload(&deployment(
            r#"      containers:
        - name: app
          image: "a:1"
          livenessProbe: {tcpSocket: {port: admin}}
          readinessProbe: {tcpSocket: {port: 8080}}
"#,
        ));
        assert_eq!(check(&RULE, &unresolved), Verdict::Pass);
    }

    #[test]
    fn http_defaults_are_normalized_and_scheme_host_matter() {
        let defaults = workload(&deployment(
            r#"      containers:
        - name: app
          image: "a:1"
          livenessProbe: {httpGet: {port: 80}}
          readinessProbe: {httpGet: {path: /, port: 80, scheme: HTTP}}
"#,
        ));
        assert_eq!(failing_containers(check(&RULE, &defaults)), vec!["app"]);
        let scheme = workload(&deployment(
            r#"      containers:
        - name: app
          image: "a:1"
          livenessProbe: {httpGet: {path: /h, port: 80}}
          readinessProbe: {httpGet: {path: /h, port: 80, scheme: HTTPS}}
"#,
        ));
        assert_eq!(check(&RULE, &scheme), Verdict::Pass);
        let host = workload(&deployment(
            r#"      containers:
        - name: app
          image: "a:1"
          livenessProbe: {httpGet: {path: /h, port: 80}}
          readinessProbe: {httpGet: {path: /h, port: 80, host: 127.0.0.1}}
"#,
        ));
        assert_eq!(check(&RULE, &host), Verdict::Pass);
    }

    #[test]
    fn exec_tcp_and_grpc_handlers() {
        let w = workload(&deployment(
            r#"      containers:
        - name: exec-same
          image: "a:1"
          livenessProbe: {exec: {command: [pg_isready, -U, app]}}
          readinessProbe: {exec: {command: [pg_isready, -U, app]}}
        - name: exec-diff
          image: "a:1"
          livenessProbe: {exec: {command: [cat, /tmp/alive]}}
          readinessProbe: {exec: {command: [pg_isready]}}
        - name: tcp-same
          image: "a:1"
          livenessProbe: {tcpSocket: {port: 5432}}
          readinessProbe: {tcpSocket: {port: 5432}}
        - name: grpc-same
          image: "a:1"
          livenessProbe: {grpc: {port: 9090}}
          readinessProbe: {grpc: {port: 9090, service: ""}}
        - name: grpc-diff
          image: "a:1"
          livenessProbe: {grpc: {port: 9090, service: liveness}}
          readinessProbe: {grpc: {port: 9090, service: readiness}}
        - name: mixed
          image: "a:1"
          livenessProbe: {tcpSocket: {port: 8080}}
          readinessProbe: {httpGet: {path: /ready, port: 8080}}
"#,
        ));
        let v = violations(check(&RULE, &w));
        let names: Vec<_> = v.iter().filter_map(|v| v.container.as_deref()).collect();
        assert_eq!(names, vec!["exec-same", "tcp-same", "grpc-same"]);
        // Exec commands are never echoed (they may hold credentials).
        assert_eq!(
            v[0].message,
            "container \"exec-same\" uses the same exec command for livenessProbe and readinessProbe"
        );
        assert!(v[1].message.contains("tcpSocket on port 5432"));
        assert!(v[2].message.contains("grpc check on port 9090"));
    }

    #[test]
    fn a_missing_probe_passes() {
        let w = workload(&deployment(
            r#"      containers:
        - {name: live-only, image: "a:1", livenessProbe: {tcpSocket: {port: 80}}}
        - {name: ready-only, image: "a:1", readinessProbe: {tcpSocket: {port: 80}}}
        - {name: none, image: "a:1"}
"#,
        ));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn native_sidecars_checked_init_containers_ignored() {
        let w = workload(&deployment(
            r#"      initContainers:
        - name: init
          image: "i:1"
          livenessProbe: {tcpSocket: {port: 1}}
          readinessProbe: {tcpSocket: {port: 1}}
        - name: proxy
          image: "p:1"
          restartPolicy: Always
          livenessProbe: {httpGet: {path: /ready, port: 15021}}
          readinessProbe: {httpGet: {path: /ready, port: 15021}}
      containers:
        - {name: app, image: "a:1"}
"#,
        ));
        assert_eq!(failing_containers(check(&RULE, &w)), vec!["proxy"]);
    }

    #[test]
    fn jobs_cronjobs_and_run_once_pods_are_not_applicable() {
        let probes =
            "livenessProbe: {tcpSocket: {port: 80}}, readinessProbe: {tcpSocket: {port: 80}}";
        let job = workload(&format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: j}}\nspec:\n  template:\n    spec:\n      containers: [{{name: a, image: 'a:1', {probes}}}]\n"
        ));
        assert_eq!(check(&RULE, &job), Verdict::NotApplicable);
        let cron = workload(&format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: c}}\nspec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{{name: a, image: 'a:1', {probes}}}]\n"
        ));
        assert_eq!(check(&RULE, &cron), Verdict::NotApplicable);
        let pod = workload(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  restartPolicy: Never\n  containers: [{{name: a, image: 'a:1', {probes}}}]\n"
        ));
        assert_eq!(check(&RULE, &pod), Verdict::NotApplicable);
        let always = workload(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers: [{{name: a, image: 'a:1', {probes}}}]\n"
        ));
        assert_eq!(failing_containers(check(&RULE, &always)), vec!["a"]);
    }

    #[test]
    fn long_paths_are_truncated_in_messages() {
        let path = format!("/{}", "x".repeat(300));
        let w = workload(&deployment(&format!(
            "      containers:\n        - name: app\n          image: 'a:1'\n          livenessProbe: {{httpGet: {{path: '{path}', port: 80}}}}\n          readinessProbe: {{httpGet: {{path: '{path}', port: 80}}}}\n"
        )));
        let v = violations(check(&RULE, &w));
        assert!(v[0].message.len() < 200, "{}", v[0].message);
    }

    #[test]
    fn missing_spec_passes_vacuously() {
        let w = workload("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: empty}\n");
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }
}
