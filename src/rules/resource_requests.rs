//! `resource-requests`: every container requests cpu and memory.
//!
//! Also home of the small resource-quantity helpers that `memory-limit` and `cpu-limit`
//! share, so the three rules agree on what "set" means: present and not zero.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{Check, Examples, RuleDef, Verdict, Violation};
use crate::api::Severity;
use crate::engine::Workload;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "resource-requests",
    summary: "every container requests cpu and memory",
    rubric: "I6",
    default_enabled: true,
    default_severity: Severity::High,
    rationale: "The scheduler places pods by their requests. A container without them is \
        scheduled as if it needed nothing, so nodes get overcommitted, the pod is among the \
        first evicted under memory pressure (BestEffort/Burstable QoS), and it gets almost no \
        CPU under contention. Requests are also what autoscalers and capacity planning read. \
        Init containers and Jobs count too: their requests size the pod and the node it lands on.",
    example: "resources:\n  requests: {cpu: 100m, memory: 256Mi}\n  limits: {memory: 256Mi}",
    checks: "Every container, init containers included, of every workload kind must request both \
        `cpu` and `memory` (`resources.requests`, present and not zero); one finding per \
        container, naming what is missing. Pod-level `spec.resources.requests` (KEP-2837) count \
        for every container of the pod.",
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
            requests: {cpu: 100m}
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
"#;

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    // Pod-level resources (KEP-2837) budget the whole pod: containers may then omit their own.
    let pod_cpu = pod_request_set(w, "cpu");
    let pod_memory = pod_request_set(w, "memory");
    let violations = w
        .containers()
        .filter_map(|c| {
            let resources = c.container.resources.as_ref();
            let cpu = pod_cpu || request_set(resources, "cpu");
            let memory = pod_memory || request_set(resources, "memory");
            let missing = match (cpu, memory) {
                (true, true) => return None,
                (false, false) => "cpu or memory request",
                (false, true) => "cpu request",
                (true, false) => "memory request",
            };
            let fix = match (cpu, memory) {
                (false, false) => "set resources.requests.cpu and resources.requests.memory",
                (false, true) => "set resources.requests.cpu",
                _ => "set resources.requests.memory",
            };
            Some(Violation::container(
                c.name(),
                format!("container \"{}\" has no {missing}", c.name()),
                fix,
            ))
        })
        .collect();
    Verdict::from_violations(violations)
}

/// Whether `resources` requests a non-zero amount of `resource`. A limit without a request
/// counts: Kubernetes defaults the request to the limit in that case. An explicit request of
/// zero is not overridden by a limit, so it stays missing.
fn request_set(resources: Option<&ResourceRequirements>, resource: &str) -> bool {
    let Some(r) = resources else { return false };
    match r.requests.as_ref().and_then(|m| m.get(resource)) {
        Some(q) => is_set(Some(q)),
        None => limit_set(resources, resource),
    }
}

/// Whether the pod-level `resources` (if any) request `resource`.
fn pod_request_set(w: &Workload, resource: &str) -> bool {
    request_set(w.pod.resources.as_ref(), resource)
}

/// Whether `resources` limits `resource` to a non-zero amount (a zero limit is ignored by
/// the kubelet, i.e. means no limit).
pub(super) fn limit_set(resources: Option<&ResourceRequirements>, resource: &str) -> bool {
    is_set(
        resources
            .and_then(|r| r.limits.as_ref())
            .and_then(|m| m.get(resource)),
    )
}

/// Whether a quantity is present and not zero (`0`, `0m`, `0Mi`, `0.0`, `+0e3`, or empty).
pub(super) fn is_set(q: Option<&Quantity>) -> bool {
    let Some(Quantity(s)) = q else { return false };
    let number = s
        .trim()
        .split(|ch: char| !(ch.is_ascii_digit() || matches!(ch, '.' | '+' | '-')))
        .next()
        .unwrap_or_default();
    // Unparseable text is the API server's business; only a clear zero counts as unset.
    number.chars().any(|ch| ch.is_ascii_digit() && ch != '0')
        || (!number.chars().any(|ch| ch.is_ascii_digit()) && !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{check, deployment, failing_containers, violations, workload};

    #[test]
    fn requests_set_pass() {
        let w = workload(&deployment(
            "      containers:\n        - {name: app, image: 'a:1', resources: {requests: {cpu: 100m, memory: 128Mi}}}\n",
        ));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn messages_list_what_is_missing() {
        let w = workload(&deployment(
            r#"      containers:
        - {name: none, image: "a:1"}
        - {name: no-cpu, image: "a:1", resources: {requests: {memory: 1Gi}}}
        - {name: no-mem, image: "a:1", resources: {requests: {cpu: "1"}}}
        - {name: ok, image: "a:1", resources: {requests: {cpu: "1", memory: 1Gi}}}
"#,
        ));
        let v = violations(check(&RULE, &w));
        let msgs: Vec<_> = v.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(
            msgs,
            vec![
                "container \"none\" has no cpu or memory request",
                "container \"no-cpu\" has no cpu request",
                "container \"no-mem\" has no memory request",
            ]
        );
        assert_eq!(v[1].remediation, "set resources.requests.cpu");
    }

    #[test]
    fn a_limit_without_request_counts_as_request() {
        let w = workload(&deployment(
            r#"      containers:
        - {name: limits-only, image: "a:1", resources: {limits: {cpu: 500m, memory: 256Mi}}}
        - {name: mixed, image: "a:1", resources: {requests: {cpu: 100m}, limits: {memory: 256Mi}}}
"#,
        ));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn zero_quantities_count_as_missing() {
        let w = workload(&deployment(
            r#"      containers:
        - {name: zero, image: "a:1", resources: {requests: {cpu: "0", memory: 0Mi}}}
        - {name: zero-req-with-limit, image: "a:1", resources: {requests: {cpu: 0m, memory: 1Gi}, limits: {cpu: "1"}}}
        - {name: zero-limit, image: "a:1", resources: {requests: {memory: 1Gi}, limits: {cpu: "0.0"}}}
        - {name: small, image: "a:1", resources: {requests: {cpu: 1m, memory: "0.5Gi"}}}
"#,
        ));
        let v = violations(check(&RULE, &w));
        let msgs: Vec<_> = v.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(
            msgs,
            vec![
                "container \"zero\" has no cpu or memory request",
                "container \"zero-req-with-limit\" has no cpu request",
                "container \"zero-limit\" has no cpu request",
            ]
        );
    }

    #[test]
    fn init_and_sidecar_containers_count() {
        let w = workload(&deployment(
            r#"      initContainers:
        - {name: migrate, image: "m:1"}
        - {name: proxy, image: "p:1", restartPolicy: Always}
      containers:
        - {name: app, image: "a:1", resources: {requests: {cpu: 100m, memory: 128Mi}}}
"#,
        ));
        assert_eq!(
            failing_containers(check(&RULE, &w)),
            vec!["migrate", "proxy"]
        );
    }

    #[test]
    fn jobs_cronjobs_and_pods_are_checked() {
        let job = workload(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: a, image: 'a:1'}]\n",
        );
        assert_eq!(failing_containers(check(&RULE, &job)), vec!["a"]);
        let cron = workload(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: b, image: 'b:1', resources: {requests: {cpu: 10m}}}]\n",
        );
        let v = violations(check(&RULE, &cron));
        assert_eq!(v[0].message, "container \"b\" has no memory request");
        let pod = workload(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  restartPolicy: Never\n  containers: [{name: p, image: 'p:1'}]\n",
        );
        assert_eq!(failing_containers(check(&RULE, &pod)), vec!["p"]);
    }

    #[test]
    fn pod_level_requests_cover_containers() {
        let w = workload(&deployment(
            r#"      resources: {requests: {cpu: "1"}, limits: {memory: 1Gi}}
      containers:
        - {name: app, image: "a:1"}
"#,
        ));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
        let partial = workload(&deployment(
            "      resources: {requests: {cpu: '1'}}\n      containers:\n        - {name: app, image: 'a:1'}\n",
        ));
        let v = violations(check(&RULE, &partial));
        assert_eq!(v[0].message, "container \"app\" has no memory request");
    }

    #[test]
    fn missing_spec_passes_vacuously() {
        let w = workload("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: empty}\n");
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn quantity_zero_detection() {
        let q = |s: &str| Quantity(s.to_owned());
        for zero in ["0", "0m", "0Mi", "0.0", "+0e3", "", "  "] {
            assert!(!is_set(Some(&q(zero))), "{zero:?} should be unset");
        }
        for set in ["1", "100m", "0.5", "1Gi", "1e3", "0.001"] {
            assert!(is_set(Some(&q(set))), "{set:?} should be set");
        }
        assert!(!is_set(None));
    }
}
