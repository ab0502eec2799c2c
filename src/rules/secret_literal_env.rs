//! `secret-literal-env`: no secret is written as a literal env value in a pod template.
//!
//! Two detectors: by name (a secret-looking variable with a literal value) and by value (a
//! literal that has the shape of a well-known credential, whatever its name). Messages name
//! the variable and the container, never the value.

use std::sync::LazyLock;

use k8s_openapi::api::core::v1::EnvVar;
use regex::Regex;

use super::{Check, Examples, Params, RuleDef, Verdict, Violation};
use crate::api::Severity;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "secret-literal-env",
    summary: "no secret-looking env var has a literal value, and no literal holds a private key or known token",
    rubric: "O3",
    default_enabled: true,
    default_severity: Severity::Critical,
    rationale: "A literal env value is part of the workload manifest: it sits in Git, in Helm \
        release history, in etcd unencrypted, in `kubectl get -o yaml` for anyone who can read \
        the Deployment, and in every CI log that prints the manifest. It cannot be rotated \
        without a redeploy and cannot be access-controlled apart from the workload. Put \
        secrets in a Secret (or an external secret store) and reference them.",
    example: "env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef: {name: db, key: password}",
    checks: "Looks at every `env` entry with a literal `value` in every container, init \
        containers included, of every workload kind. A finding when the name looks secret-like \
        (contains `password`, `secret`, `token`, `apikey`, `private_key` and similar parts, or \
        one of `additionalNamePatterns`; names that only point at a secret, like \
        `DB_PASSWORD_FILE` or `TOKEN_URL`, and `ignoredNames` are skipped), or when the value \
        has the shape of a well-known credential (a PEM private key, an AWS access key id, a \
        GitHub or Slack token…) whatever the name. One finding per container, naming the \
        variables, never the values. Empty values and `valueFrom` pass.",
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
          env:
            - name: DB_PASSWORD
              value: hunter2
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
          env:
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef: {name: web-db, key: password}
"#;

/// Substrings of a normalized name (lowercase, `-` and `.` read as `_`) that mark a secret.
const SECRET_NAME_PARTS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "api_key",
    "access_key",
    "accesskey",
    "private_key",
    "privatekey",
    "credential",
    "signing_key",
    "encryption_key",
    "license_key",
    "erlang_cookie",
];

/// Whole normalized names of well-known secrets that the substrings above miss.
const KNOWN_SECRET_NAMES: &[&str] = &["docker_auth_config"];

/// Last words that make `auth` a secret (`BASIC_AUTH`, `REGISTRY_AUTH`): only as the final
/// word, because `AUTH_` usually starts a setting (`AUTH_PROVIDER`, `AUTH_MODE`).
const AUTH_WORDS: &[&str] = &["auth", "authorization"];

/// Words that contain a secret substring but are not secrets (`TOKENIZERS_PARALLELISM`).
const NOT_SECRET_WORDS: &[&str] = &["tokenizer", "tokenizers"];

/// Last words of names that hold where or how a secret is found or used, not the secret:
/// locations (`DB_PASSWORD_FILE`, `TOKEN_URL`, `SECRET_NAME`) and settings
/// (`TOKEN_TTL`, `PASSWORD_MIN_LENGTH`, `AUTH_TOKEN_HEADER`).
const NOT_SECRET_SUFFIXES: &[&str] = &[
    // locations
    "file",
    "path",
    "dir",
    "url",
    "uri",
    "endpoint",
    "host",
    "port",
    "name",
    "ref",
    "location",
    // settings
    "ttl",
    "timeout",
    "expiry",
    "expiration",
    "lifetime",
    "length",
    "enabled",
    "disabled",
    "type",
    "mode",
    "header",
    "algorithm",
];

/// Whole normalized names of well-known variables that hold a path, not a secret.
const KNOWN_LOCATION_NAMES: &[&str] = &["google_application_credentials"];

/// A value made only of `$(VAR)` references (expanded by the kubelet from other variables).
static REFERENCE_ONLY: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^(?:\$\([^()\s$]+\))+$").ok());

/// Credential shapes detected in any literal value, with how messages describe them.
static VALUE_SHAPES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // However the armour is written: five dashes (RFC 7468), three or any other count,
        // spaces inside, lower case (hand-edited or mangled by templating).
        (
            r"(?i)-+[ \t]*BEGIN[ \t]+(?:[A-Z0-9]+[ \t]+)*PRIVATE[ \t]+KEY(?:[ \t]+BLOCK)?[ \t]*-+",
            "PEM private key",
        ),
        (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "AWS access key id"),
        (
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})\b",
            "GitHub token",
        ),
        (r"\bxox[baprs]-[A-Za-z0-9-]{10,}", "Slack token"),
        (
            r"https://hooks\.slack\.com/services/[A-Za-z0-9_/-]+",
            "Slack webhook URL",
        ),
    ]
    .into_iter()
    .filter_map(|(re, label)| Regex::new(re).ok().map(|re| (re, label)))
    .collect()
});

/// A URL with a password in its user info (`scheme://user:password@host`).
static URL_PASSWORD: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*:([^\s/@]+)@").ok());

fn is_reference_only(value: &str) -> bool {
    REFERENCE_ONLY
        .as_ref()
        .is_some_and(|re| re.is_match(value.trim()))
}

fn normalize(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace(['-', '.'], "_")
}

/// Whether the variable's name says it holds a secret.
fn name_looks_secret(name: &str, params: &Params) -> bool {
    let n = normalize(name);
    if KNOWN_SECRET_NAMES.contains(&n.as_str()) {
        return true;
    }
    if KNOWN_LOCATION_NAMES.contains(&n.as_str()) {
        return false;
    }
    let words: Vec<&str> = n.split('_').filter(|w| !w.is_empty()).collect();
    let Some(last) = words.last() else {
        return false;
    };
    if NOT_SECRET_SUFFIXES.contains(last) {
        return false;
    }
    if AUTH_WORDS.contains(last) {
        return true;
    }
    let meaningful = words
        .iter()
        .filter(|w| !NOT_SECRET_WORDS.contains(w))
        .copied()
        .collect::<Vec<_>>()
        .join("_");
    SECRET_NAME_PARTS.iter().any(|p| meaningful.contains(p))
        || params
            .secret_additional_name_patterns
            .iter()
            .map(|p| normalize(p))
            .any(|p| !p.is_empty() && meaningful.contains(&p))
}

/// The credential shape a literal value has, if any.
fn value_shape(value: &str) -> Option<&'static str> {
    if let Some((_, label)) = VALUE_SHAPES.iter().find(|(re, _)| re.is_match(value)) {
        return Some(label);
    }
    let url = URL_PASSWORD.as_ref()?;
    url.captures_iter(value)
        .filter_map(|c| c.get(1))
        .any(|password| !is_reference_only(password.as_str()))
        .then_some("URL with a password")
}

/// Why a variable is a literal secret, as shown after its name, or `None` if it is not one.
fn finding(env: &EnvVar, params: &Params) -> Option<&'static str> {
    let value = env.value.as_deref().unwrap_or_default();
    if value.trim().is_empty() || is_reference_only(value) {
        return None;
    }
    if params
        .secret_ignored_names
        .iter()
        .any(|n| n.trim().eq_ignore_ascii_case(env.name.trim()))
    {
        return None;
    }
    if let Some(shape) = value_shape(value) {
        return Some(shape);
    }
    name_looks_secret(&env.name, params).then_some("")
}

/// How many variables a message names before summarizing the rest.
const LISTED_VARIABLES: usize = 4;

fn check(c: &Check<'_>) -> Verdict {
    let violations = c
        .workload
        .containers()
        .filter_map(|cr| {
            let found: Vec<String> = cr
                .container
                .env
                .iter()
                .flatten()
                .filter_map(|env| {
                    finding(env, c.params).map(|why| {
                        if why.is_empty() {
                            format!("\"{}\"", env.name)
                        } else {
                            format!("\"{}\" ({why})", env.name)
                        }
                    })
                })
                .collect();
            if found.is_empty() {
                return None;
            }
            let mut listed = found
                .iter()
                .take(LISTED_VARIABLES)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if found.len() > LISTED_VARIABLES {
                listed.push_str(&format!(" and {} more", found.len() - LISTED_VARIABLES));
            }
            let name = cr.name();
            Some(Violation::container(
                name,
                format!("container \"{name}\" has literal secrets in env: {listed}"),
                "move them to a Secret and use valueFrom.secretKeyRef",
            ))
        })
        .collect();
    Verdict::from_violations(violations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Context;
    use crate::rules::testing::{check, check_with, failing_containers, violations, workload};

    const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\\nMIIEow\\n-----END RSA PRIVATE KEY-----";
    const AWS_KEY: &str = "AKIAABCDEFGHIJKLMNOP";
    const GH_TOKEN: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";

    /// A Deployment whose container `app` has the given `(name, value)` env literals.
    fn with_env(vars: &[(&str, &str)]) -> String {
        let env: String = vars
            .iter()
            .map(|(n, v)| format!("            - {{name: \"{n}\", value: \"{v}\"}}\n"))
            .collect();
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  selector: {{}}\n  template:\n    spec:\n      containers:\n        - name: app\n          image: app:1\n          env:\n{env}"
        )
    }

    fn run(vars: &[(&str, &str)]) -> Verdict {
        check(&RULE, &workload(&with_env(vars)))
    }

    fn message(v: Verdict) -> String {
        let mut v = violations(v);
        assert_eq!(v.len(), 1);
        v.remove(0).message
    }

    #[test]
    fn secret_names_with_literal_values_fail_without_echoing_values() {
        let v = violations(run(&[
            ("DB_PASSWORD", "hunter2"),
            ("api-key", "k3y"),
            ("github.token", "t0k"),
            ("LOG_LEVEL", "info"),
        ]));
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].message,
            "container \"app\" has literal secrets in env: \"DB_PASSWORD\", \"api-key\", \"github.token\""
        );
        assert_eq!(
            v[0].remediation,
            "move them to a Secret and use valueFrom.secretKeyRef"
        );
        for secret in ["hunter2", "k3y", "t0k"] {
            assert!(!v[0].message.contains(secret) && !v[0].remediation.contains(secret));
        }
    }

    #[test]
    fn recognizes_common_secret_names() {
        for name in [
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ACCESS_KEY_ID",
            "GITHUB_TOKEN",
            "OPENAI_API_KEY",
            "DatadogApiKey",
            "PGPASSWORD",
            "MYSQL_ROOT_PASSWD",
            "AZURE_CLIENT_SECRET",
            "SERVICE_CREDENTIALS",
            "TLS_PRIVATE_KEY",
            "BASIC_AUTH",
            "HTTP_AUTHORIZATION",
            "NEW_RELIC_LICENSE_KEY",
            "DOCKER_AUTH_CONFIG",
        ] {
            assert_eq!(
                failing_containers(run(&[(name, "x")])),
                vec!["app"],
                "{name}"
            );
        }
    }

    #[test]
    fn locations_settings_and_lookalikes_are_not_secrets() {
        assert_eq!(
            run(&[
                ("DB_PASSWORD_FILE", "/run/secrets/db"),
                ("TOKEN_URL", "https://auth.example.com/token"),
                ("API_KEY_PATH", "/etc/key"),
                ("SECRET_NAME", "db-creds"),
                ("TOKEN_TTL", "3600"),
                ("PASSWORD_MIN_LENGTH", "12"),
                ("AUTH_PROVIDER", "oidc"),
                ("AUTHOR", "me"),
                ("TOKENIZERS_PARALLELISM", "false"),
                ("GOOGLE_APPLICATION_CREDENTIALS", "/var/secrets/key.json"),
                ("PUBLIC_KEY", "ssh-ed25519 AAAA"),
            ]),
            Verdict::Pass
        );
    }

    #[test]
    fn value_from_empty_and_reference_only_values_are_not_literals() {
        let w = workload(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - name: app
      image: app:1
      env:
        - name: DB_PASSWORD
          valueFrom: {secretKeyRef: {name: db, key: password}}
        - {name: API_TOKEN, value: ""}
        - {name: API_SECRET, value: "$(UPSTREAM_SECRET)"}
        - {name: CLIENT_SECRET, value: "$(A)$(B)"}
        - {name: DSN, value: "postgres://app:$(DB_PASSWORD)@db:5432/app"}
"#,
        );
        assert_eq!(check(&RULE, &w), Verdict::Pass);
        // `$$(X)` is an escaped literal, and text around a reference is literal too.
        assert_eq!(
            message(run(&[("SECRET", "$$(X)"), ("TOKEN", "pre-$(X)")])),
            "container \"app\" has literal secrets in env: \"SECRET\", \"TOKEN\""
        );
    }

    #[test]
    fn credential_shaped_values_fail_whatever_the_name() {
        let webhook = "https://hooks.slack.com/services/T000/B000/XXXX";
        let m = message(run(&[
            ("TLS_KEY_PATH", PEM),
            ("CONFIG_A", AWS_KEY),
            ("CONFIG_B", GH_TOKEN),
            ("NOTIFY", "xoxb-1234567890-abcdef"),
            ("ALERT_URL", webhook),
            ("DATABASE_URL", "postgres://app:s3cr3t@db:5432/app"),
        ]));
        assert_eq!(
            m,
            "container \"app\" has literal secrets in env: \"TLS_KEY_PATH\" (PEM private key), \
             \"CONFIG_A\" (AWS access key id), \"CONFIG_B\" (GitHub token), \
             \"NOTIFY\" (Slack token) and 2 more"
        );
        for value in [AWS_KEY, GH_TOKEN, "xoxb", "s3cr3t", "hooks.slack", "BEGIN"] {
            assert!(!m.contains(value), "{value} leaked");
        }
        assert_eq!(value_shape(webhook), Some("Slack webhook URL"));
        assert_eq!(
            value_shape("redis://:pw@redis:6379"),
            Some("URL with a password")
        );
        assert_eq!(value_shape("https://example.com:8443/a@b"), None);
        assert_eq!(value_shape("-----BEGIN PUBLIC KEY-----"), None);
        assert_eq!(
            value_shape("-----BEGIN PRIVATE KEY-----"),
            Some("PEM private key")
        );
    }

    #[test]
    fn private_key_armour_is_recognised_however_it_is_written() {
        for armour in [
            "---BEGIN RSA PRIVATE KEY---\nMIIEow\n---END RSA PRIVATE KEY---",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----",
            "-----BEGIN PGP PRIVATE KEY BLOCK-----",
            "----- BEGIN EC PRIVATE KEY -----",
            "-----begin private key-----",
            "key: -BEGIN  DSA  PRIVATE KEY-",
        ] {
            assert_eq!(value_shape(armour), Some("PEM private key"), "{armour}");
        }
        for not_a_key in [
            "---BEGIN PUBLIC KEY---",
            "-----BEGIN CERTIFICATE-----",
            "BEGIN PRIVATE KEY",
            "the private key rotation begins -- monthly",
        ] {
            assert_eq!(value_shape(not_a_key), None, "{not_a_key}");
        }
        // Under a harmless name, a three-dash block still fails.
        let v = violations(check(
            &RULE,
            &workload(&with_env(&[(
                "TLS_MATERIAL",
                "---BEGIN PRIVATE KEY---\nMIIE\n---END PRIVATE KEY---",
            )])),
        ));
        assert_eq!(
            v[0].message,
            "container \"app\" has literal secrets in env: \"TLS_MATERIAL\" (PEM private key)"
        );
    }

    #[test]
    fn parameters_add_patterns_and_ignore_names() {
        let w = workload(&with_env(&[
            ("SESSION_COOKIE_KEY", "x"),
            ("DB_PASSWORD", "x"),
            ("TEST_AWS", AWS_KEY),
        ]));
        let params = Params {
            secret_additional_name_patterns: vec!["Cookie-Key".to_owned()],
            secret_ignored_names: vec!["db_password".to_owned(), "TEST_AWS".to_owned()],
            ..Params::default()
        };
        assert_eq!(
            message(check_with(&RULE, &w, &Context::default(), &params)),
            "container \"app\" has literal secrets in env: \"SESSION_COOKIE_KEY\""
        );
        let blank = Params {
            secret_additional_name_patterns: vec![String::new()],
            ..Params::default()
        };
        let w = workload(&with_env(&[("LOG_LEVEL", "info")]));
        assert_eq!(
            check_with(&RULE, &w, &Context::default(), &blank),
            Verdict::Pass
        );
    }

    #[test]
    fn checks_init_sidecar_and_cronjob_containers() {
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
            - {name: init, image: "i:1", env: [{name: MIGRATE_PASSWORD, value: "x"}]}
            - {name: side, image: "s:1", restartPolicy: Always, env: [{name: PROXY_TOKEN, value: "x"}]}
          containers:
            - {name: main, image: "m:1", env: [{name: MODE, value: "batch"}]}
            - {name: noenv, image: "n:1"}
"#,
        );
        assert_eq!(failing_containers(check(&RULE, &w)), vec!["init", "side"]);
    }

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(VALUE_SHAPES.len(), 5);
        assert!(REFERENCE_ONLY.is_some() && URL_PASSWORD.is_some());
    }

    #[test]
    fn missing_spec_passes_vacuously() {
        let w = workload("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: empty}\n");
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }
}
