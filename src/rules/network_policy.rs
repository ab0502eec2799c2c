//! `network-policy`: some NetworkPolicy in the workload's namespace selects its pods, so they
//! are not open to every other pod in the cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::NetworkPolicy;

use super::{Check, Examples, RuleDef, Verdict, Violation};
use crate::api::Severity;
use crate::engine::selector;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "network-policy",
    summary: "a NetworkPolicy selects the pods",
    rubric: "I4",
    default_enabled: false,
    default_severity: Severity::Low,
    rationale: "Pods that no NetworkPolicy selects accept traffic from, and send traffic to, any \
        pod in the cluster: one compromised workload can reach every database and admin port. \
        A namespace default-deny policy plus narrow allows limits the blast radius and documents \
        who is meant to talk to whom.",
    example: "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n    - from: [{podSelector: {matchLabels: {app: frontend}}}]",
    checks: "Some NetworkPolicy in the workload's namespace must select its pods (`podSelector: \
        {}` selects them all, so a namespace-wide default-deny counts). Every workload kind is \
        checked. `prodready audit` sees the NetworkPolicies in its input, so audit them together \
        with the workloads.",
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
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web
spec:
  podSelector:
    matchLabels: {app: web}
  policyTypes: [Ingress]
  ingress:
    - ports: [{port: 8080}]
"#;

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    if c.context
        .network_policies(&w.namespace)
        .iter()
        .any(|np| selects(np, &w.pod_labels))
    {
        return Verdict::Pass;
    }
    Verdict::Fail(vec![Violation::workload(
        format!(
            "no NetworkPolicy in namespace \"{}\" selects the pods of {}/{}: any pod in the cluster can reach them",
            w.namespace, w.kind, w.name
        ),
        "add a NetworkPolicy selecting the pods (or a namespace default-deny)",
    )])
}

/// Whether a policy selects the pods. `podSelector` is a struct, not a pointer, in the
/// Kubernetes API: absent means empty, and empty selects every pod in the namespace.
fn selects(np: &NetworkPolicy, labels: &BTreeMap<String, String>) -> bool {
    match np.spec.as_ref().and_then(|s| s.pod_selector.as_ref()) {
        Some(sel) => selector::matches(sel, labels),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Params;
    use crate::rules::testing::{check, check_with, context, violations, workload};

    const WEB: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: a, image: 'a:1'}]}\n";

    fn policy(ns: &str, spec: &str) -> String {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np, namespace: {ns}}}\n{spec}\n"
        )
    }

    fn run(w: &str, ctx: &str) -> Verdict {
        check_with(&RULE, &workload(w), &context(ctx), &Params::default())
    }

    #[test]
    fn matching_pod_selector_passes() {
        let ctx = policy("shop", "spec: {podSelector: {matchLabels: {app: web}}}");
        assert_eq!(run(WEB, &ctx), Verdict::Pass);
        let expr = policy(
            "shop",
            "spec: {podSelector: {matchExpressions: [{key: app, operator: In, values: [web, api]}]}}",
        );
        assert_eq!(run(WEB, &expr), Verdict::Pass);
    }

    #[test]
    fn empty_or_absent_pod_selector_selects_every_pod() {
        for spec in [
            "spec: {podSelector: {}, policyTypes: [Ingress]}",
            "spec: {policyTypes: [Ingress]}",
            "",
        ] {
            assert_eq!(run(WEB, &policy("shop", spec)), Verdict::Pass, "{spec}");
        }
    }

    #[test]
    fn no_policy_fails() {
        let v = violations(check(&RULE, &workload(WEB)));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].container, None);
        assert_eq!(
            v[0].message,
            "no NetworkPolicy in namespace \"shop\" selects the pods of Deployment/web: any pod in the cluster can reach them"
        );
    }

    #[test]
    fn policy_for_other_pods_or_namespace_does_not_count() {
        let other_pods = policy("shop", "spec: {podSelector: {matchLabels: {app: db}}}");
        assert!(matches!(run(WEB, &other_pods), Verdict::Fail(_)));
        let other_ns = policy("other", "spec: {podSelector: {}}");
        assert!(matches!(run(WEB, &other_ns), Verdict::Fail(_)));
    }

    #[test]
    fn batch_kinds_and_pods_are_checked_too() {
        let ctx = policy(
            "default",
            "spec: {podSelector: {matchLabels: {job: report}}}",
        );
        let cron = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: report}\nspec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        metadata: {labels: {job: report}}\n        spec: {containers: [{name: a, image: 'a:1'}]}\n";
        assert_eq!(run(cron, &ctx), Verdict::Pass);
        let job = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\nspec:\n  template: {spec: {restartPolicy: Never, containers: [{name: a, image: 'a:1'}]}}\n";
        assert!(matches!(run(job, &ctx), Verdict::Fail(_)));
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {job: report}}\nspec:\n  containers: [{name: a, image: 'a:1'}]\n";
        assert_eq!(run(pod, &ctx), Verdict::Pass);
    }

    #[test]
    fn workload_without_labels_is_selected_only_by_empty_selectors() {
        let bare =
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bare, namespace: shop}\n";
        let specific = policy("shop", "spec: {podSelector: {matchLabels: {app: web}}}");
        assert!(matches!(run(bare, &specific), Verdict::Fail(_)));
        let not_in = policy(
            "shop",
            "spec: {podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [db]}]}}",
        );
        assert_eq!(run(bare, &not_in), Verdict::Pass);
    }
}
