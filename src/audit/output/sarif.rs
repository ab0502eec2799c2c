//! SARIF 2.1.0, the format GitHub code scanning (and most security dashboards) ingest.
//! Every catalog rule is described with its rationale as help text; failing results are
//! `error`/`warning`/`note` by severity, unknown results are `note`s of kind `review`, and
//! exempt results carry an external suppression with the exemption's reason.

use std::io::{self, Write};

use serde_json::{Value, json};

use crate::api::Severity;
use crate::audit::{Finding, Report, ResultKind};
use crate::rules::CATALOG;

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// GitHub's `security-severity` scale (0–10).
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "7.5",
        Severity::Medium => "5.0",
        Severity::Low => "2.0",
    }
}

/// FNV-1a, for stable fingerprints that do not depend on line numbers.
fn fingerprint(f: &Finding) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut key = format!(
        "{}/{}/{}/{}/{}",
        f.kind,
        f.namespace,
        f.name,
        f.rule,
        f.container.as_deref().unwrap_or("")
    );
    // The same workload in two clusters is two results; without a cluster the key (and every
    // fingerprint already uploaded) stays as it was.
    if let Some(cluster) = &f.cluster {
        key = format!("{cluster}/{key}");
    }
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

pub(super) fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let rules: Vec<Value> = CATALOG
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": r.rationale},
                "help": {
                    "text": format!("{}\n\nExample fix:\n{}", r.rationale, r.example),
                    "markdown": format!("{}\n\n**Rubric:** {}\n\n**Example fix:**\n\n```yaml\n{}\n```", r.rationale, r.rubric, r.example),
                },
                "helpUri": crate::rules::doc_url(r.id),
                "defaultConfiguration": {"level": level(r.default_severity)},
                "properties": {
                    "tags": ["kubernetes", "production-readiness", format!("rubric/{}", r.rubric)],
                    "precision": "high",
                    "security-severity": security_severity(r.default_severity),
                },
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .filter(|f| {
            matches!(
                f.result,
                ResultKind::Fail | ResultKind::Unknown | ResultKind::Exempt
            )
        })
        .map(|f| {
            let rule_index = CATALOG.iter().position(|r| r.id == f.rule).unwrap_or(0);
            let uri = match f.source.origin() {
                o if o == "-" => "stdin".to_owned(),
                o => o.trim_start_matches("./").to_owned(),
            };
            // A chart template's own lines are not known after rendering: point at the
            // template, not at a line of the rendered stream.
            let line = if f.source.rendered_by == Some(crate::audit::render::Renderer::Helm) {
                1
            } else {
                f.source.line.max(1)
            };
            let container = f
                .container
                .as_deref()
                .map(|c| format!(" container {c}"))
                .unwrap_or_default();
            let cluster = f
                .cluster
                .as_deref()
                .map(|c| format!("cluster {c}: "))
                .unwrap_or_default();
            let mut text = format!(
                "[{}] {cluster}{}/{}/{}{}: {}",
                f.policy, f.kind, f.namespace, f.name, container, f.message
            );
            if !f.remediation.is_empty() {
                text.push_str(&format!(". Fix: {}", f.remediation));
            }
            let mut result = json!({
                "ruleId": f.rule,
                "ruleIndex": rule_index,
                "level": if f.result == ResultKind::Fail { level(f.severity) } else { "note" },
                "message": {"text": text},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri},
                        "region": {"startLine": line},
                    },
                    "logicalLocations": [{
                        "name": f.name,
                        "fullyQualifiedName": crate::api::workload_key(f.kind.as_str(), &f.namespace, &f.name),
                        "kind": "resource",
                    }],
                }],
                "partialFingerprints": {"prodready/v1": fingerprint(f)},
                "properties": {"severity": f.severity, "policy": f.policy},
            });
            if let Some(cluster) = &f.cluster {
                result["properties"]["cluster"] = json!(cluster);
            }
            if f.result == ResultKind::Unknown {
                result["kind"] = json!("review");
            }
            if let Some(ex) = &f.exemption {
                result["suppressions"] = json!([{
                    "kind": "external",
                    "justification": match &ex.expires {
                        Some(t) => format!("{} (until {t})", ex.reason),
                        None => ex.reason.clone(),
                    },
                }]);
            }
            result
        })
        .collect();
    let notification = |level: &str, file: &str, line: Option<usize>, text: &str| {
        json!({
            "level": level,
            "message": {"text": format!("{file}: {text}")},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": file},
                "region": {"startLine": line.unwrap_or(1).max(1)},
            }}],
        })
    };
    // Errors, then what was not audited and why (notes): nothing is left out in silence.
    let inputs = &report.inputs;
    let notifications: Vec<Value> = report
        .errors
        .iter()
        .map(|e| notification("error", &e.file, e.line, &e.message))
        .chain(
            inputs
                .skipped
                .iter()
                .map(|s| notification("note", &s.file, s.line, &s.reason)),
        )
        .chain(
            inputs
                .excluded
                .iter()
                .map(|e| notification("note", e, None, "excluded by an exclude pattern")),
        )
        .collect();
    let sarif = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "prodready",
                "informationUri": "https://github.com/prodready/prodready",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": report.errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    });
    serde_json::to_writer_pretty(&mut *out, &sarif).map_err(io::Error::other)?;
    writeln!(out)
}
