//! The JSON report: `{"version": 1, "findings": [...], "errors": [...], "summary": {...}}`.
//!
//! The document is what `serde_json::to_writer_pretty` makes of the [`Report`], byte for byte,
//! but the findings (nearly all of it on a large input) are rendered in windows of chunks on up
//! to `jobs` threads and written in order: rendering them on one thread was the largest serial
//! step left of a parallel audit. A window bounds the memory the rendered text holds.

use std::io::{self, Write};

use rayon::iter::{IntoParallelRefIterator as _, ParallelIterator as _};
use serde::Serialize;

use crate::audit::{Finding, Report};

/// Findings rendered by one task.
const CHUNK: usize = 256;
/// Chunks rendered before they are written (≈ 16k findings, a few MiB of text).
const WINDOW: usize = 64;

pub(super) fn write(report: &Report, jobs: usize, out: &mut dyn Write) -> io::Result<()> {
    // The field order and names of `Report`'s `Serialize`; `tests::matches_serde_json` holds
    // the two together.
    out.write_all(b"{\n  \"version\": ")?;
    write_indented(out, &report.version, b"  ")?;
    out.write_all(b",\n  \"findings\": ")?;
    write_findings(out, &report.findings, jobs)?;
    out.write_all(b",\n  \"errors\": ")?;
    write_indented(out, &report.errors, b"  ")?;
    out.write_all(b",\n  \"summary\": ")?;
    write_indented(out, &report.summary, b"  ")?;
    out.write_all(b",\n  \"policies\": ")?;
    write_indented(out, &report.policies, b"  ")?;
    out.write_all(b",\n  \"inputs\": ")?;
    write_indented(out, &report.inputs, b"  ")?;
    out.write_all(b"\n}\n")
}

fn write_findings(out: &mut dyn Write, findings: &[Finding], jobs: usize) -> io::Result<()> {
    if findings.is_empty() {
        return out.write_all(b"[]");
    }
    out.write_all(b"[")?;
    let chunks: Vec<&[Finding]> = findings.chunks(CHUNK).collect();
    let pool = (jobs > 1 && chunks.len() > 1)
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(jobs)
                .build()
                .ok()
        })
        .flatten();
    let mut first = true;
    for window in chunks.chunks(WINDOW) {
        let rendered: Vec<io::Result<Vec<u8>>> = match &pool {
            Some(pool) => pool.install(|| window.par_iter().map(|c| render(c)).collect()),
            None => window.iter().map(|c| render(c)).collect(),
        };
        for text in rendered {
            let text = text?;
            // Every finding is rendered after a `,`; the first has none.
            let text = if first {
                text.get(1..).unwrap_or_default()
            } else {
                &text[..]
            };
            first = false;
            out.write_all(text)?;
        }
    }
    out.write_all(b"\n  ]")
}

/// Findings as elements of the pretty-printed `findings` array, each after a `,`.
fn render(findings: &[Finding]) -> io::Result<Vec<u8>> {
    let mut text = Vec::with_capacity(findings.len() * 1024);
    let mut one = Vec::with_capacity(1024);
    for f in findings {
        one.clear();
        serde_json::to_writer_pretty(&mut one, f).map_err(io::Error::other)?;
        text.extend_from_slice(b",\n    ");
        indent(&mut text, &one, b"    ");
    }
    Ok(text)
}

fn write_indented(out: &mut dyn Write, value: &impl Serialize, by: &[u8]) -> io::Result<()> {
    let one = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    let mut text = Vec::with_capacity(one.len() + one.len() / 8);
    indent(&mut text, &one, by);
    out.write_all(&text)
}

/// Appends pretty JSON nested `by` deeper: every line after the first is indented. A
/// newline in pretty JSON is always layout (one inside a string is escaped).
fn indent(text: &mut Vec<u8>, json: &[u8], by: &[u8]) {
    for (i, line) in json.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            text.push(b'\n');
            text.extend_from_slice(by);
        }
        text.extend_from_slice(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pretty(report: &Report) -> Vec<u8> {
        let mut expected = serde_json::to_vec_pretty(report).unwrap_or_default();
        expected.push(b'\n');
        expected
    }

    fn rendered(report: &Report, jobs: usize) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(write(report, jobs, &mut out).is_ok());
        out
    }

    /// Byte for byte what `serde_json::to_writer_pretty` writes, with no findings, with
    /// fewer than a chunk, and with more than a window of them (errors included), for every
    /// `jobs`.
    #[test]
    fn matches_serde_json() {
        let empty = Report {
            version: 1,
            ..Default::default()
        };
        assert_eq!(rendered(&empty, 1), pretty(&empty));
        let text = crate::corpus::to_yaml(crate::corpus::Spec {
            workloads: 300,
            namespaces: 7,
            seed: 3,
        });
        let mut loaded = crate::audit::Loaded::default();
        loaded.add_text("corpus.yaml", &text, false);
        loaded.add_text("broken.yaml", "kind: [\n", false);
        let policies = [crate::engine::CompiledPolicy::builtin(
            crate::api::Profile::Strict,
            &crate::rules::CATALOG,
        )];
        let now = k8s_openapi::jiff::Timestamp::UNIX_EPOCH;
        let mut report = crate::audit::audit(&loaded, &policies, now, true);
        assert!(!report.errors.is_empty());
        let few = Report {
            findings: report.findings.iter().take(3).cloned().collect(),
            ..report.clone()
        };
        assert_eq!(rendered(&few, 2), pretty(&few));
        while report.findings.len() <= CHUNK * WINDOW + 1 {
            let more = report.findings.clone();
            report.findings.extend(more);
        }
        let expected = pretty(&report);
        for jobs in [1, 2, 3] {
            assert!(rendered(&report, jobs) == expected, "jobs {jobs}");
        }
    }
}
