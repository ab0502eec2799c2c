//! `allowed-registries`: every container image comes from a registry (or registry path) the
//! policy allows.

use super::image_pinned::reference;
use super::{Check, Examples, RuleDef, Verdict};
use crate::api::Severity;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "allowed-registries",
    summary: "every container image comes from an allowed registry",
    rubric: "O5",
    default_enabled: false,
    default_severity: Severity::High,
    rationale: "Images from arbitrary registries bypass the scanning, signing and retention your \
        own registry gives you, and a public registry can rate-limit, delete or replace what \
        your rollout (and your rollback) needs to pull. Restricting images to known registries \
        keeps every running build reproducible and reviewed.",
    example: "# policy: allowedRegistries: {enabled: true, registries: [ghcr.io/acme]}\ncontainers:\n  - name: app\n    image: ghcr.io/acme/app:1.4.2",
    checks: "Every container image, init containers included, must come from one of the policy's \
        `registries` entries: a registry host (`ghcr.io`) or a registry path (`ghcr.io/acme`, \
        matched at a path boundary). An image without a registry host comes from `docker.io` \
        (`nginx` is `docker.io/library/nginx`). The rule only runs once `registries` names at \
        least one entry: a profile cannot know an organisation's registries, so even the strict \
        profile leaves it out until then, and a policy that enables it with no registries is \
        rejected.",
    examples: Examples {
        settings: "registries: [ghcr.io/acme]",
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
          image: nginx:1.27
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
"#;

/// How many allowed entries a remediation lists before eliding the rest.
const LISTED_ENTRIES: usize = 3;

/// Normalizes an allowed entry the way image references are normalized: no scheme, no
/// trailing slash, lowercase, `index.docker.io` read as `docker.io`. A path after the host is
/// kept as given (so `docker.io/library` allows official images only).
fn normalize_entry(entry: &str) -> String {
    let e = entry.trim().to_ascii_lowercase();
    let e = e
        .strip_prefix("https://")
        .or_else(|| e.strip_prefix("http://"))
        .unwrap_or(&e)
        .trim_end_matches('/');
    match e.split_once('/') {
        Some(("index.docker.io" | "registry-1.docker.io", path)) => {
            format!("{}/{path}", reference::DEFAULT_REGISTRY)
        }
        None if e == "index.docker.io" || e == "registry-1.docker.io" => {
            reference::DEFAULT_REGISTRY.to_owned()
        }
        _ => e.to_owned(),
    }
}

/// Whether `name` (a normalized `registry/repository`) is the entry or lies under it, on a
/// path-segment boundary (so `ghcr.io/acme2/x` is not under `ghcr.io/acme`).
fn is_under(name: &str, entry: &str) -> bool {
    !entry.is_empty()
        && name
            .strip_prefix(entry)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn check(c: &Check<'_>) -> Verdict {
    let allowed: Vec<String> = c
        .params
        .allowed_registries
        .iter()
        .map(|e| normalize_entry(e))
        .filter(|e| !e.is_empty())
        .collect();
    let remediation = if allowed.is_empty() {
        "list the registries images may come from in the policy".to_owned()
    } else {
        let mut listed = allowed
            .iter()
            .take(LISTED_ENTRIES)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if allowed.len() > LISTED_ENTRIES {
            listed.push_str(", …");
        }
        format!("use an image from {listed}")
    };
    super::each_image(
        c.workload.containers(),
        &remediation,
        &remediation,
        |name, image, r| {
            let full = r.name().to_ascii_lowercase();
            if allowed.iter().any(|entry| is_under(&full, entry)) {
                return None;
            }
            let why = if allowed.is_empty() {
                "no registry is allowed"
            } else {
                "not an allowed registry"
            };
            Some(format!(
                "container \"{name}\" image \"{image}\" comes from {full}: {why}"
            ))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Context;
    use crate::rules::Params;
    use crate::rules::testing::{check, check_with, failing_containers, violations, workload};

    fn params(allowed: &[&str]) -> Params {
        Params {
            allowed_registries: allowed.iter().map(|s| (*s).to_owned()).collect(),
            ..Params::default()
        }
    }

    fn run(allowed: &[&str], image: &str) -> Verdict {
        let w = workload(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers: [{{name: a, image: \"{image}\"}}]\n"
        ));
        check_with(&RULE, &w, &Context::default(), &params(allowed))
    }

    #[test]
    fn matches_hosts_and_path_prefixes_on_segment_boundaries() {
        assert_eq!(
            run(&["ghcr.io/acme"], "ghcr.io/acme/app:1.0"),
            Verdict::Pass
        );
        assert_eq!(
            run(&["ghcr.io/acme"], "ghcr.io/acme/team/app:1.0"),
            Verdict::Pass
        );
        assert_eq!(run(&["ghcr.io"], "ghcr.io/anyone/app:1.0"), Verdict::Pass);
        assert_eq!(
            failing_containers(run(&["ghcr.io/acme"], "ghcr.io/acme2/x:1.0")),
            vec!["a"]
        );
        assert_eq!(
            failing_containers(run(&["ghcr.io"], "ghcr.io.evil.com/app:1.0")),
            vec!["a"]
        );
    }

    #[test]
    fn registry_ports_are_part_of_the_host() {
        let allowed = ["registry.internal:5000"];
        assert_eq!(run(&allowed, "registry.internal:5000/app"), Verdict::Pass);
        assert_eq!(
            failing_containers(run(&allowed, "registry.internal/app:1.0")),
            vec!["a"]
        );
        assert_eq!(
            failing_containers(run(&allowed, "registry.internal:5001/app:1.0")),
            vec!["a"]
        );
    }

    #[test]
    fn images_without_a_host_come_from_docker_hub() {
        assert_eq!(run(&["docker.io"], "nginx:1.27"), Verdict::Pass);
        assert_eq!(run(&["docker.io/library"], "nginx:1.27"), Verdict::Pass);
        assert_eq!(
            run(&["docker.io/bitnami"], "bitnami/redis:7"),
            Verdict::Pass
        );
        assert_eq!(
            run(&["index.docker.io"], "docker.io/library/nginx"),
            Verdict::Pass
        );
        assert_eq!(run(&["https://docker.io/"], "nginx"), Verdict::Pass);
        let v = violations(run(&["ghcr.io"], "nginx:1.27"));
        assert_eq!(
            v[0].message,
            "container \"a\" image \"nginx:1.27\" comes from docker.io/library/nginx: not an allowed registry"
        );
        assert_eq!(v[0].remediation, "use an image from ghcr.io");
        assert_eq!(
            failing_containers(run(&["docker.io/library"], "bitnami/redis:7")),
            vec!["a"]
        );
    }

    #[test]
    fn empty_allowed_list_fails_every_image_without_panicking() {
        let w = workload(
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n  selector: {}\n  template:\n    spec:\n      initContainers: [{name: i, image: 'ghcr.io/a/i:1'}]\n      containers: [{name: m, image: 'nginx:1'}]\n",
        );
        let v = violations(check(&RULE, &w));
        assert_eq!(v.len(), 2);
        assert!(v[0].message.ends_with("no registry is allowed"));
        assert_eq!(
            v[1].remediation,
            "list the registries images may come from in the policy"
        );
        // Blank entries are ignored rather than matching everything.
        assert_eq!(failing_containers(run(&["", " "], "nginx")), vec!["a"]);
    }

    #[test]
    fn checks_every_container_kind_and_lists_few_entries() {
        let w = workload(
            r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          initContainers:
            - {name: init, image: "quay.io/x/init:1"}
            - {name: side, image: "ghcr.io/acme/proxy:1", restartPolicy: Always}
          containers:
            - {name: main, image: "GHCR.io/acme/job:1"}
            - {name: blank}
"#,
        );
        let p = params(&["ghcr.io/acme", "a.io", "b.io", "c.io"]);
        let v = violations(check_with(&RULE, &w, &Context::default(), &p));
        let names: Vec<_> = v.iter().filter_map(|v| v.container.as_deref()).collect();
        assert_eq!(names, vec!["init", "blank"]);
        assert_eq!(
            v[0].remediation,
            "use an image from ghcr.io/acme, a.io, b.io, …"
        );
        assert_eq!(v[1].message, "container \"blank\" has no image");
    }

    #[test]
    fn normalizes_entries() {
        assert_eq!(normalize_entry(" GHCR.io/Acme/ "), "ghcr.io/acme");
        assert_eq!(
            normalize_entry("index.docker.io/library"),
            "docker.io/library"
        );
        assert_eq!(
            normalize_entry("http://registry.internal:5000"),
            "registry.internal:5000"
        );
        assert!(!is_under("ghcr.io/acme", ""));
    }
}
