//! The chart's README (charts/prodready/README.md) is generated from charts/prodready/values.yaml,
//! the way helm-docs does it: a value's description is the `# -- ` comment right above its key
//! (continued by the `#` lines that follow), its type comes from values.schema.json (or, where
//! the schema says nothing, from the value itself) and its default is the value, as JSON.
//!
//! The test fails when the committed README differs from what this writes, or when a value has
//! no description. `make chart-readme` (`PRODREADY_UPDATE=1 cargo test --test chart_readme`)
//! rewrites the README. The generator lives here, with the test, because only the repository
//! needs it: the library and the binary stay as they are.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The hand-written part of the README, above the generated values table.
const HEADER: &str = "\
# prodready Helm chart

Installs [prodready](https://github.com/prodready/prodready), which enforces production
readiness of Kubernetes workloads: the `ProductionPolicy` CRD (`prodready.dev/v1alpha1`), the
operator (a Deployment of 2 replicas that evaluates every workload against the policies and
writes their status, Events, metrics and, optionally, policy reports), its validating admission
webhook, least-privilege RBAC, a PodDisruptionBudget, a NetworkPolicy and, where the cluster has
the Prometheus Operator, a ServiceMonitor. Optional: a baseline policy, the alert rules as a
PrometheusRule and a Grafana dashboard.

Install from a checkout:

```sh
helm install prodready charts/prodready --namespace prodready-system --create-namespace
```

[docs/install.md](https://github.com/prodready/prodready/blob/main/docs/install.md) is the
full guide: installing a release from the OCI registry, the CRD's life cycle (`crds.enabled`,
`crds.keep`), upgrading, uninstalling, RBAC, and what every object of the chart is for. What
`prodready.dev/v1alpha1` promises across releases:
[docs/compatibility.md](https://github.com/prodready/prodready/blob/main/docs/compatibility.md).
";

/// The command that rewrites the README, named by the failing test.
const REGENERATE: &str = "make chart-readme (PRODREADY_UPDATE=1 cargo test --test chart_readme)";

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/prodready")
}

/// One key of values.yaml, in file order.
struct Entry {
    /// The keys from the top, e.g. `["image", "repository"]`.
    path: Vec<String>,
    /// The `# -- ` comment above it, joined into one line; empty when there is none.
    description: String,
    /// Whether the key's value is on its own line (`key: value`) rather than nested below it.
    leaf: bool,
}

/// Reads the keys of values.yaml with their comments. Only block mappings are nested in
/// values.yaml (lists and maps with content are written in flow style on the key's line),
/// which is what this reads; anything else is an error naming the line.
fn entries(text: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.is_empty() {
            pending = None;
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            let comment = comment.trim();
            if let Some(start) = comment.strip_prefix("--") {
                pending = Some(start.trim().to_string());
            } else if let Some(p) = pending.as_mut()
                && !comment.is_empty()
            {
                p.push(' ');
                p.push_str(comment);
            }
            continue;
        }
        let Some((key, rest)) = trimmed.split_once(':') else {
            return Err(format!(
                "values.yaml line {}: not `key: value`: {line}",
                n + 1
            ));
        };
        if key.starts_with('-') || key.contains(['{', '[', '"', '\'']) {
            return Err(format!(
                "values.yaml line {}: only block mappings with flow-style values are read: {line}",
                n + 1
            ));
        }
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        stack.push((indent, key.to_string()));
        out.push(Entry {
            path: stack.iter().map(|(_, k)| k.clone()).collect(),
            description: pending.take().unwrap_or_default(),
            leaf: !rest.trim().is_empty(),
        });
    }
    Ok(out)
}

/// The value at `path` in the parsed values.
fn lookup<'a>(values: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(values, |v, k| v.get(k))
}

/// The schema of the value at `path`, following `$ref`s into `definitions`.
fn schema_at<'a>(schema: &'a Value, path: &[String]) -> Option<&'a Value> {
    let resolve = |s: &'a Value| -> Option<&'a Value> {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.strip_prefix("#/definitions/")?;
                schema.get("definitions")?.get(name)
            }
            None => Some(s),
        }
    };
    path.iter().try_fold(resolve(schema)?, |s, k| {
        resolve(s.get("properties")?.get(k)?)
    })
}

/// The type column: the schema's `type` (e.g. `int or string`), else the value's own.
fn type_of(schema: Option<&Value>, value: &Value) -> String {
    let name = |t: &str| match t {
        "integer" => "int".to_string(),
        "array" => "list".to_string(),
        other => other.to_string(),
    };
    match schema.and_then(|s| s.get("type")) {
        Some(Value::String(t)) => name(t),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(name)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => match value {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(n) if n.is_i64() || n.is_u64() => "int",
            Value::Number(_) => "float",
            Value::String(_) => "string",
            Value::Array(_) => "list",
            Value::Object(_) => "object",
        }
        .to_string(),
    }
}

/// A table cell: pipes escaped (GitHub ends a cell at `|` even inside backticks).
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The README for the chart at `dir`, or every value lacking a description.
fn generate(dir: &Path) -> Result<String, String> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| format!("cannot read {name}: {e}"))
    };
    let text = read("values.yaml")?;
    let values: Value =
        serde_norway::from_str(&text).map_err(|e| format!("values.yaml is not YAML: {e}"))?;
    let schema: Value = serde_json::from_str(&read("values.schema.json")?)
        .map_err(|e| format!("values.schema.json is not JSON: {e}"))?;
    let chart: Value = serde_norway::from_str(&read("Chart.yaml")?)
        .map_err(|e| format!("Chart.yaml is not YAML: {e}"))?;
    let entries = entries(&text)?;

    let mut rows = String::new();
    let mut undocumented = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let key = e.path.join(".");
        // A described key documents everything below it (its default shows all of it).
        let covered = entries[..i].iter().any(|a| {
            !a.description.is_empty() && a.path.len() < e.path.len() && e.path.starts_with(&a.path)
        });
        if covered {
            continue;
        }
        if e.description.is_empty() {
            if e.leaf {
                undocumented.push(key);
            }
            continue;
        }
        let value = lookup(&values, &e.path)
            .ok_or_else(|| format!("values.yaml: `{key}` was read, but YAML has no such value"))?;
        let default = serde_json::to_string(value).map_err(|e| format!("`{key}`: {e}"))?;
        writeln!(
            rows,
            "| `{}` | {} | `{}` | {} |",
            cell(&key),
            type_of(schema_at(&schema, &e.path), value),
            cell(&default),
            cell(&e.description)
        )
        .map_err(|e| e.to_string())?;
    }
    if !undocumented.is_empty() {
        return Err(format!(
            "values without a `# -- ` description in charts/prodready/values.yaml: {}",
            undocumented.join(", ")
        ));
    }

    let kube = chart
        .get("kubeVersion")
        .and_then(Value::as_str)
        .ok_or("Chart.yaml has no kubeVersion")?;
    let mut out = String::new();
    out.push_str(
        "<!-- Generated by `make chart-readme` from values.yaml, values.schema.json, Chart.yaml and \
         the header in tests/chart_readme.rs; do not edit. -->\n\n",
    );
    out.push_str(HEADER);
    write!(
        out,
        "\nRequires Kubernetes `{kube}` (Chart.yaml's `kubeVersion`).\n\n## Values\n\n\
         Every value, as `--set` names it, with its type and default. A value nested in an \
         object listed as a whole is set by its full key too (`--set resources.limits.memory=512Mi`). \
         values.schema.json rejects unknown keys and wrong types.\n\n\
         | Key | Type | Default | Description |\n| --- | --- | --- | --- |\n{rows}"
    )
    .map_err(|e| e.to_string())?;
    Ok(out)
}

#[test]
fn committed_chart_readme_matches_values_yaml() {
    let dir = chart_dir();
    let generated = match generate(&dir) {
        Ok(text) => text,
        Err(e) => panic!("the chart README cannot be generated: {e}"),
    };
    let path = dir.join("README.md");
    if std::env::var_os("PRODREADY_UPDATE").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "charts/prodready/README.md differs from what values.yaml generates: regenerate it with `{REGENERATE}`"
    );
}

/// Every key of values.yaml becomes a row or is inside one, with its default as JSON.
#[test]
fn the_table_reads_keys_comments_and_defaults() {
    let text = "\
# header, not a description
# -- A string.
name: \"\"
image:
  # -- The repository,
  # continued.
  repository: ghcr.io/x
resources:
  requests:
    # -- CPU.
    cpu: 50m
# -- A whole object.
labels:
  a: \"1\"
";
    let e = entries(text).expect("reads");
    let keys: Vec<String> = e.iter().map(|e| e.path.join(".")).collect();
    assert_eq!(
        keys,
        [
            "name",
            "image",
            "image.repository",
            "resources",
            "resources.requests",
            "resources.requests.cpu",
            "labels",
            "labels.a"
        ]
    );
    assert_eq!(e[0].description, "A string.");
    assert_eq!(e[2].description, "The repository, continued.");
    assert!(e[1].description.is_empty() && !e[1].leaf);
    assert!(e[7].description.is_empty() && e[7].leaf);

    let values: Value = serde_norway::from_str(text).expect("YAML");
    let path = |p: &str| p.split('.').map(String::from).collect::<Vec<_>>();
    assert_eq!(
        lookup(&values, &path("labels")).map(ToString::to_string),
        Some(r#"{"a":"1"}"#.to_string())
    );
    let schema = serde_json::json!({
        "definitions": {"map": {"type": "object"}},
        "properties": {
            "name": {"type": ["integer", "string"]},
            "labels": {"$ref": "#/definitions/map"}
        }
    });
    assert_eq!(
        type_of(schema_at(&schema, &path("name")), &Value::from("")),
        "int or string"
    );
    assert_eq!(
        type_of(schema_at(&schema, &path("labels")), &Value::Null),
        "object"
    );
    assert_eq!(type_of(None, &Value::from(3)), "int");
    assert_eq!(cell("a|b"), "a\\|b");
}
