//! `security-context`: containers run as non-root, cannot escalate privileges, are not
//! privileged, and (by default) have a read-only root filesystem.

use super::{Check, Examples, RuleDef, Verdict, Violation};
use crate::api::Severity;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "security-context",
    summary: "runAsNonRoot, no privilege escalation, not privileged, read-only root filesystem",
    rubric: "I4",
    default_enabled: false,
    default_severity: Severity::Medium,
    rationale: "A container that runs as root, may gain privileges through setuid binaries, or is \
        privileged turns any code-execution bug into control of the node and of every pod on \
        it. A read-only root filesystem stops an attacker (or a bug) from rewriting the \
        application in place and makes writable state explicit in volumes. These settings \
        cost nothing for a well-built image and contain the blast radius of a compromise.",
    example: "securityContext:\n  runAsNonRoot: true\n  allowPrivilegeEscalation: false\n  privileged: false\n  readOnlyRootFilesystem: true",
    checks: "Every container, init containers included, must run as non-root (`runAsNonRoot: \
        true` or a non-zero `runAsUser`, in the container's or the pod's securityContext; \
        `runAsUser: 0` is a finding), set `allowPrivilegeEscalation: false`, not be \
        `privileged`, and, with `requireReadOnlyRootFilesystem` (the default), set \
        `readOnlyRootFilesystem: true`. One finding per container listing every problem. Windows \
        pods (`spec.os.name: windows`) are not applicable.",
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
          securityContext:
            runAsNonRoot: true
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
"#;

fn check(c: &Check<'_>) -> Verdict {
    let pod = &c.workload.pod;
    // Windows pods may not set these Linux-only fields (the API server rejects them).
    if pod.os.as_ref().is_some_and(|os| os.name == "windows") {
        return Verdict::NotApplicable;
    }
    let pod_sc = pod.security_context.as_ref();
    let violations = c
        .workload
        .containers()
        .filter_map(|cr| {
            let sc = cr.container.security_context.as_ref();
            let run_as_non_root = sc
                .and_then(|s| s.run_as_non_root)
                .or_else(|| pod_sc.and_then(|s| s.run_as_non_root));
            let run_as_user = sc
                .and_then(|s| s.run_as_user)
                .or_else(|| pod_sc.and_then(|s| s.run_as_user));
            let mut problems: Vec<&str> = Vec::new();
            let mut fixes: Vec<&str> = Vec::new();
            if run_as_user == Some(0) {
                // runAsNonRoot: true with runAsUser: 0 does not even start.
                problems.push("runAsUser is 0 (root)");
                fixes.push("runAsUser > 0");
            } else if run_as_non_root != Some(true) && run_as_user.is_none_or(|u| u <= 0) {
                problems.push("runAsNonRoot is not true");
                fixes.push("runAsNonRoot: true");
            }
            if sc.and_then(|s| s.allow_privilege_escalation) != Some(false) {
                problems.push("allowPrivilegeEscalation is not false");
                fixes.push("allowPrivilegeEscalation: false");
            }
            if sc.and_then(|s| s.privileged) == Some(true) {
                problems.push("privileged is true");
                fixes.push("privileged: false");
            }
            if c.params.require_read_only_root_filesystem
                && sc.and_then(|s| s.read_only_root_filesystem) != Some(true)
            {
                problems.push("readOnlyRootFilesystem is not true");
                fixes.push("readOnlyRootFilesystem: true");
            }
            (!problems.is_empty()).then(|| {
                let name = cr.name();
                Violation::container(
                    name,
                    format!("container \"{name}\": {}", problems.join(", ")),
                    format!("set securityContext {}", fixes.join(", ")),
                )
            })
        })
        .collect();
    Verdict::from_violations(violations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Context;
    use crate::rules::Params;
    use crate::rules::testing::{check, check_with, failing_containers, violations, workload};

    const HARDENED: &str =
        "{runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}";

    fn pod(pod_sc: &str, containers: &[(&str, &str)]) -> String {
        let cs: String = containers
            .iter()
            .map(|(name, sc)| {
                format!("    - {{name: {name}, image: 'a:1', securityContext: {sc}}}\n")
            })
            .collect();
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  securityContext: {pod_sc}\n  containers:\n{cs}"
        )
    }

    #[test]
    fn passes_hardened_containers() {
        let w = workload(&pod("{}", &[("a", HARDENED)]));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn lists_every_missing_item_in_one_violation() {
        let w = workload(&pod("{}", &[("a", "{}")]));
        let v = violations(check(&RULE, &w));
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].message,
            "container \"a\": runAsNonRoot is not true, allowPrivilegeEscalation is not false, readOnlyRootFilesystem is not true"
        );
        assert_eq!(
            v[0].remediation,
            "set securityContext runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true"
        );
        assert!(v[0].message.len() + v[0].remediation.len() < 256);
    }

    #[test]
    fn pod_level_user_settings_apply_unless_the_container_overrides_them() {
        let c = "{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}";
        let w = workload(&pod("{runAsNonRoot: true}", &[("a", c)]));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
        let w = workload(&pod("{runAsUser: 1000}", &[("a", c)]));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
        let over =
            "{runAsNonRoot: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}";
        let w = workload(&pod("{runAsNonRoot: true}", &[("a", over)]));
        assert_eq!(
            violations(check(&RULE, &w))[0].message,
            "container \"a\": runAsNonRoot is not true"
        );
        let root = "{runAsUser: 0, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}";
        let w = workload(&pod("{runAsNonRoot: true}", &[("a", root)]));
        assert_eq!(
            violations(check(&RULE, &w))[0].message,
            "container \"a\": runAsUser is 0 (root)"
        );
    }

    #[test]
    fn privileged_fails_even_when_otherwise_hardened() {
        let c = "{runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: true}";
        let w = workload(&pod("{}", &[("a", c), ("b", HARDENED)]));
        let v = violations(check(&RULE, &w));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].message, "container \"a\": privileged is true");
    }

    #[test]
    fn read_only_root_filesystem_follows_the_parameter() {
        let c = "{runAsNonRoot: true, allowPrivilegeEscalation: false}";
        let w = workload(&pod("{}", &[("a", c)]));
        assert_eq!(failing_containers(check(&RULE, &w)), vec!["a"]);
        let params = Params {
            require_read_only_root_filesystem: false,
            ..Params::default()
        };
        assert_eq!(
            check_with(&RULE, &w, &Context::default(), &params),
            Verdict::Pass
        );
    }

    #[test]
    fn checks_init_and_sidecar_containers_of_a_cronjob() {
        let w = workload(&format!(
            r#"
apiVersion: batch/v1
kind: CronJob
metadata: {{name: c}}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          securityContext: {{runAsUser: 1000}}
          initContainers:
            - {{name: init, image: "i:1"}}
            - {{name: side, image: "s:1", restartPolicy: Always, securityContext: {HARDENED}}}
          containers:
            - {{name: main, image: "m:1", securityContext: {{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}}}}
"#
        ));
        let v = violations(check(&RULE, &w));
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].message,
            "container \"init\": allowPrivilegeEscalation is not false, readOnlyRootFilesystem is not true"
        );
    }

    #[test]
    fn windows_pods_are_not_applicable_and_missing_spec_passes() {
        let w = workload(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  os: {name: windows}\n  containers: [{name: a, image: 'a:1'}]\n",
        );
        assert_eq!(check(&RULE, &w), Verdict::NotApplicable);
        let w = workload("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n");
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }
}
