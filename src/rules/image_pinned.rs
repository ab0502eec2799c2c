//! `image-pinned`: every container image names a version tag other than `latest`, or a digest.
//!
//! This file also holds [`reference`], the image-reference parser that `image-digest` and
//! `allowed-registries` share, so the three rules always agree on what an image names.

use super::{Check, Examples, RuleDef, Verdict};
use crate::api::Severity;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "image-pinned",
    summary: "every container image has a tag that is not `latest`, or a digest",
    rubric: "O5",
    default_enabled: true,
    default_severity: Severity::High,
    rationale: "An image without a tag, or tagged `latest`, names whatever was pushed last. Two \
        pods of the same ReplicaSet can run different code, a node restart silently upgrades a \
        pod, and `kubectl rollout undo` goes back to the same mutable name, so there is no \
        rollback. Pin a version tag (or better, a digest) so that a revision means one build.",
    example: "containers:\n  - name: app\n    image: ghcr.io/acme/app:1.4.2\n    # or: ghcr.io/acme/app@sha256:<64 hex digits>",
    checks: "Every container image, init containers included, must carry a tag other than \
        `latest` (compared case-insensitively) or a digest. An image without a tag means \
        `latest`; an empty image is a finding too. One finding per container.",
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
          image: ghcr.io/acme/web:latest
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

/// Parsing of container image references (`[registry[:port]/]path[:tag][@digest]`), following
/// the grammar of the Docker distribution `reference` package.
pub(crate) mod reference {
    /// The registry an image without a registry host comes from.
    pub(crate) const DEFAULT_REGISTRY: &str = "docker.io";

    /// A parsed, normalized image reference.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(crate) struct ImageRef {
        /// The registry host (with port), lowercase; `docker.io` when the image names none.
        pub(crate) registry: String,
        /// The repository path; `library/<name>` for single-name Docker Hub images.
        pub(crate) repository: String,
        /// The tag, if any (a non-empty string).
        pub(crate) tag: Option<String>,
        /// The digest (`algorithm:hex`), if any (a non-empty string, not validated).
        pub(crate) digest: Option<String>,
    }

    impl ImageRef {
        /// The normalized `registry/repository`, e.g. `docker.io/library/nginx`.
        pub(crate) fn name(&self) -> String {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// Parses an image reference. Never fails: malformed input yields a best-effort
    /// reading (the kubelet rejects it anyway); callers handle the empty image themselves.
    pub(crate) fn parse(image: &str) -> ImageRef {
        let (rest, digest) = match image.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (image, None),
        };
        // A colon is a tag separator only after the last slash; before it, it is a port.
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        // The first component is a registry host when it looks like one (as Docker decides):
        // it has a dot or a port, is `localhost`, or has uppercase letters (invalid in paths).
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_ascii_lowercase(), path)
            }
            _ => (DEFAULT_REGISTRY.to_owned(), name),
        };
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            DEFAULT_REGISTRY.to_owned()
        } else {
            registry
        };
        let repository = if registry == DEFAULT_REGISTRY
            && !repository.is_empty()
            && !repository.contains('/')
        {
            format!("library/{repository}")
        } else {
            repository.to_owned()
        };
        ImageRef {
            registry,
            repository,
            tag: tag.filter(|t| !t.is_empty()).map(str::to_owned),
            digest: digest.filter(|d| !d.is_empty()).map(str::to_owned),
        }
    }
}

const REMEDIATION: &str = "pin a version tag (e.g. app:1.4.2) or a @sha256: digest";

fn check(c: &Check<'_>) -> Verdict {
    super::each_image(
        c.workload.containers(),
        "set an image with a version tag or a @sha256: digest",
        REMEDIATION,
        |name, image, r| {
            if r.digest.is_some() {
                return None;
            }
            match r.tag.as_deref() {
                None => Some(format!(
                    "container \"{name}\" image \"{image}\" has no tag, so it means the mutable \"latest\""
                )),
                // Tags are case-sensitive, but `Latest` is as mutable in intent as `latest`.
                Some(tag) if tag.eq_ignore_ascii_case("latest") => Some(format!(
                    "container \"{name}\" image \"{image}\" uses the mutable tag \"{tag}\""
                )),
                Some(_) => None,
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::reference::{ImageRef, parse};
    use super::*;
    use crate::rules::testing::{check, failing_containers, violations, workload};

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn image_ref(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> ImageRef {
        ImageRef {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        }
    }

    fn deployment(images: &[&str]) -> String {
        let containers: String = images
            .iter()
            .enumerate()
            .map(|(i, img)| format!("        - {{name: c{i}, image: \"{img}\"}}\n"))
            .collect();
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  selector: {{}}\n  template:\n    spec:\n      containers:\n{containers}"
        )
    }

    #[test]
    fn parses_single_names_as_docker_hub_library() {
        assert_eq!(
            parse("nginx"),
            image_ref("docker.io", "library/nginx", None, None)
        );
        assert_eq!(
            parse("nginx:1.27"),
            image_ref("docker.io", "library/nginx", Some("1.27"), None)
        );
        assert_eq!(
            parse("docker.io/nginx:1.27"),
            image_ref("docker.io", "library/nginx", Some("1.27"), None)
        );
        assert_eq!(
            parse("index.docker.io/library/nginx"),
            image_ref("docker.io", "library/nginx", None, None)
        );
    }

    #[test]
    fn parses_docker_hub_organisations_without_library() {
        assert_eq!(
            parse("bitnami/redis:7.2"),
            image_ref("docker.io", "bitnami/redis", Some("7.2"), None)
        );
        assert_eq!(parse("bitnami/redis").name(), "docker.io/bitnami/redis");
    }

    #[test]
    fn parses_registry_hosts_and_ports() {
        assert_eq!(
            parse("localhost:5000/app"),
            image_ref("localhost:5000", "app", None, None)
        );
        assert_eq!(
            parse("localhost/app:v1"),
            image_ref("localhost", "app", Some("v1"), None)
        );
        assert_eq!(
            parse("registry.internal:5000/team/app:2.0"),
            image_ref("registry.internal:5000", "team/app", Some("2.0"), None)
        );
        assert_eq!(
            parse("ghcr.io/acme/app:1.4.2"),
            image_ref("ghcr.io", "acme/app", Some("1.4.2"), None)
        );
        assert_eq!(
            parse("GHCR.IO/acme/app").registry,
            "ghcr.io",
            "hosts are case-insensitive"
        );
    }

    #[test]
    fn parses_digests_with_and_without_tags() {
        assert_eq!(
            parse(&format!("app@{DIGEST}")),
            image_ref("docker.io", "library/app", None, Some(DIGEST))
        );
        assert_eq!(
            parse(&format!("ghcr.io/acme/app:1.0@{DIGEST}")),
            image_ref("ghcr.io", "acme/app", Some("1.0"), Some(DIGEST))
        );
        assert_eq!(
            parse(&format!("localhost:5000/app@{DIGEST}")),
            image_ref("localhost:5000", "app", None, Some(DIGEST))
        );
    }

    #[test]
    fn parses_malformed_input_without_panicking() {
        assert_eq!(parse(""), image_ref("docker.io", "", None, None));
        assert_eq!(
            parse("app:"),
            image_ref("docker.io", "library/app", None, None)
        );
        assert_eq!(
            parse("app@"),
            image_ref("docker.io", "library/app", None, None)
        );
        for junk in [":", "@", "/", ":@", "a/:b@c:d", "é:ü/ß@"] {
            let _ = parse(junk);
        }
    }

    #[test]
    fn passes_version_tags_and_digests() {
        let w = workload(&deployment(&[
            "nginx:1.27.0",
            "ghcr.io/acme/app:1.4.2",
            "localhost:5000/app:v3",
            &format!("app@{DIGEST}"),
            &format!("app:latest@{DIGEST}"),
        ]));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn fails_latest_and_missing_tags_with_the_image_in_the_message() {
        let w = workload(&deployment(&[
            "nginx:latest",
            "nginx",
            "localhost:5000/app",
            "nginx:1.27",
            "app:Latest",
        ]));
        let v = violations(check(&RULE, &w));
        let got: Vec<_> = v
            .iter()
            .map(|v| {
                (
                    v.container.as_deref().unwrap_or_default(),
                    v.message.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "c0",
                    "container \"c0\" image \"nginx:latest\" uses the mutable tag \"latest\""
                ),
                (
                    "c1",
                    "container \"c1\" image \"nginx\" has no tag, so it means the mutable \"latest\""
                ),
                (
                    "c2",
                    "container \"c2\" image \"localhost:5000/app\" has no tag, so it means the mutable \"latest\""
                ),
                (
                    "c4",
                    "container \"c4\" image \"app:Latest\" uses the mutable tag \"Latest\""
                ),
            ]
        );
    }

    #[test]
    fn checks_init_sidecar_and_cronjob_containers() {
        let w = workload(
            r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          initContainers:
            - {name: migrate, image: "migrate:latest"}
            - {name: proxy, image: "proxy", restartPolicy: Always}
          containers:
            - {name: job, image: "job:2.1"}
"#,
        );
        assert_eq!(
            failing_containers(check(&RULE, &w)),
            vec!["migrate", "proxy"]
        );
    }

    #[test]
    fn empty_or_missing_image_fails_clearly() {
        let w = workload(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - {name: a, image: ''}\n    - {name: b}\n    - {name: c, image: '  '}\n",
        );
        let v = violations(check(&RULE, &w));
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].message, "container \"a\" has no image");
        assert_eq!(v[1].message, "container \"b\" has no image");
        assert_eq!(v[2].container.as_deref(), Some("c"));
    }

    #[test]
    fn missing_spec_passes_vacuously() {
        let w = workload("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: empty}\n");
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }
}
