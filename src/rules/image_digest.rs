//! `image-digest`: every container image is pinned by a `@sha256:` digest.

use super::{Check, Examples, RuleDef, Verdict};
use crate::api::Severity;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "image-digest",
    summary: "every container image is pinned by a @sha256: digest",
    rubric: "O5",
    default_enabled: false,
    default_severity: Severity::Medium,
    rationale: "Even a version tag is mutable: anyone with push rights can move it, and a \
        compromised or careless pipeline can replace what `app:1.4.2` means after it was \
        reviewed. A `@sha256:` digest names exactly one image, so what was tested, scanned \
        and approved is what runs on every node, and a rollback restores the same bytes.",
    example: "containers:\n  - name: app\n    image: ghcr.io/acme/app:1.4.2@sha256:<64 hex digits>",
    checks: "Every container image, init containers included, must be pinned by a `@sha256:` \
        digest of 64 hex digits (a tag may stand beside it). One finding per container whose \
        image has no digest, a digest of another algorithm or length, or no image at all.",
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
          image: ghcr.io/acme/web:1.4.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
"#;

const REMEDIATION: &str = "pin the image by digest: image@sha256:<64 hex digits>";

/// Whether `digest` is `sha256:` followed by 64 lowercase hex digits (the only form the
/// OCI spec registers for sha256).
fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

fn check(c: &Check<'_>) -> Verdict {
    super::each_image(
        c.workload.containers(),
        REMEDIATION,
        REMEDIATION,
        |name, image, r| match &r.digest {
            Some(d) if is_sha256_digest(d) => None,
            Some(_) => Some(format!(
                "container \"{name}\" image \"{image}\" has a digest that is not sha256 with 64 hex digits"
            )),
            None => Some(format!(
                "container \"{name}\" image \"{image}\" is not pinned by digest"
            )),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{check, failing_containers, violations, workload};

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn pod(images: &[&str]) -> String {
        let containers: String = images
            .iter()
            .enumerate()
            .map(|(i, img)| format!("    - {{name: c{i}, image: \"{img}\"}}\n"))
            .collect();
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n{containers}"
        )
    }

    #[test]
    fn passes_sha256_digests_with_or_without_tag_and_registry() {
        let w = workload(&pod(&[
            &format!("app@{DIGEST}"),
            &format!("ghcr.io/acme/app:1.4.2@{DIGEST}"),
            &format!("localhost:5000/app@{DIGEST}"),
        ]));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn fails_tags_without_digest() {
        let w = workload(&pod(&[
            "nginx:1.27",
            "localhost:5000/app",
            &format!("ok@{DIGEST}"),
        ]));
        let v = violations(check(&RULE, &w));
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[0].message,
            "container \"c0\" image \"nginx:1.27\" is not pinned by digest"
        );
        assert_eq!(
            v[1].message,
            "container \"c1\" image \"localhost:5000/app\" is not pinned by digest"
        );
    }

    #[test]
    fn fails_malformed_or_other_algorithm_digests() {
        let short = "app@sha256:abc123";
        let upper = DIGEST.to_ascii_uppercase().replace("SHA256", "sha256");
        let upper = format!("app@{upper}");
        let sha512 = format!("app@sha512:{}", "a".repeat(128));
        let w = workload(&pod(&[short, &upper, &sha512]));
        let v = violations(check(&RULE, &w));
        assert_eq!(v.len(), 3);
        assert!(
            v.iter()
                .all(|v| v.message.contains("not sha256 with 64 hex digits"))
        );
    }

    #[test]
    fn checks_init_and_sidecar_containers_of_a_job() {
        let w = workload(&format!(
            r#"
apiVersion: batch/v1
kind: Job
metadata: {{name: j}}
spec:
  template:
    spec:
      initContainers:
        - {{name: init, image: "busybox:1.36"}}
        - {{name: sidecar, image: "proxy@{DIGEST}", restartPolicy: Always}}
      containers:
        - {{name: main, image: "job@{DIGEST}"}}
"#
        ));
        assert_eq!(failing_containers(check(&RULE, &w)), vec!["init"]);
    }

    #[test]
    fn missing_image_fails_and_missing_spec_passes() {
        let w = workload(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a}]\n",
        );
        let v = violations(check(&RULE, &w));
        assert_eq!(v[0].message, "container \"a\" has no image");
        let empty = workload("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\n");
        assert_eq!(check(&RULE, &empty), Verdict::Pass);
    }

    #[test]
    fn digest_shape_is_strict() {
        assert!(is_sha256_digest(DIGEST));
        assert!(!is_sha256_digest("sha256:"));
        assert!(!is_sha256_digest(&format!("{DIGEST}0")));
        assert!(!is_sha256_digest(&DIGEST.replace('a', "g")));
        assert!(!is_sha256_digest("md5:0123456789abcdef"));
    }
}
