//! The readable report: one block per workload (input order), failures first, most severe
//! first; compliant workloads on one line each; a summary at the end.

use std::io::{self, Write};

use comfy_table::presets::NOTHING;
use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table};

use crate::api::Severity;
use crate::audit::render::Renderer;
use crate::audit::{Finding, Report, ResultKind, WorkloadSummary};

const WIDTH: u16 = 140;

fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

fn severity_color(s: Severity) -> Color {
    match s {
        Severity::Critical => Color::Magenta,
        Severity::High => Color::Red,
        Severity::Medium => Color::Yellow,
        Severity::Low => Color::Cyan,
    }
}

fn location(w: &WorkloadSummary) -> String {
    let src = &w.source;
    match src.rendered_by {
        Some(Renderer::Helm) if src.helm_source.is_some() => {
            format!("{} (rendered by helm)", src.origin())
        }
        Some(by) => format!("{}:{} (rendered by {})", src.file, src.line, by.as_str()),
        None => {
            let mut s = format!("{}:{}", src.file, src.line);
            if let Some(h) = &src.helm_source {
                s.push_str(&format!(" ({h})"));
            }
            s
        }
    }
}

/// The account of the inputs: what was rendered, skipped, excluded or not judged.
fn inputs(report: &Report, verbose: bool, out: &mut dyn Write) -> io::Result<()> {
    let i = &report.inputs;
    let mut parts = Vec::new();
    for by in [Renderer::Helm, Renderer::Kustomize] {
        let n = i.rendered.iter().filter(|r| r.by == by).count();
        if n > 0 {
            let what = match (by, n) {
                (Renderer::Helm, 1) => "Helm chart",
                (Renderer::Helm, _) => "Helm charts",
                (Renderer::Kustomize, 1) => "kustomization",
                (Renderer::Kustomize, _) => "kustomizations",
            };
            parts.push(format!("{n} {what} rendered"));
        }
    }
    let skipped_files: std::collections::BTreeSet<&str> =
        i.skipped.iter().map(|s| s.file.as_str()).collect();
    if !i.skipped.is_empty() {
        parts.push(format!(
            "{} document{} in {} file{} not Kubernetes objects (skipped)",
            i.skipped.len(),
            plural(i.skipped.len()),
            skipped_files.len(),
            plural(skipped_files.len()),
        ));
    }
    if !i.excluded.is_empty() {
        parts.push(format!(
            "{} path{} excluded",
            i.excluded.len(),
            plural(i.excluded.len())
        ));
    }
    let not_judged: usize = i.not_judged.values().sum();
    if not_judged > 0 {
        parts.push(format!(
            "{not_judged} object{} of kinds prodready does not judge",
            plural(not_judged)
        ));
    }
    if parts.is_empty() {
        return Ok(());
    }
    write!(out, "Inputs: {}.", parts.join("; "))?;
    if !verbose && (!i.skipped.is_empty() || !i.excluded.is_empty() || not_judged > 0) {
        write!(out, " --verbose lists them.")?;
    }
    writeln!(out)?;
    if verbose {
        for r in &i.rendered {
            writeln!(out, "  rendered by {}: {}", r.by.as_str(), r.dir)?;
        }
        for s in &i.skipped {
            let at = match (s.document, s.line) {
                (Some(d), Some(l)) => format!(" document {d} line {l}"),
                _ => String::new(),
            };
            writeln!(out, "  skipped {}{at}: {}", s.file, s.reason)?;
        }
        for e in &i.excluded {
            writeln!(out, "  excluded {e}")?;
        }
        for (kind, n) in &i.not_judged {
            writeln!(out, "  not judged: {n} × {kind}")?;
        }
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn rows(findings: &[&Finding], color: bool) -> Table {
    let mut t = Table::new();
    t.load_style(NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(WIDTH);
    let header = ["", "SEVERITY", "RULE", "CONTAINER", "FINDING", "FIX"];
    t.set_header(header.iter().map(|h| {
        let c = Cell::new(h);
        if color {
            c.add_attribute(Attribute::Dim)
        } else {
            c
        }
    }));
    for f in findings {
        let result = match f.result {
            ResultKind::Fail => "FAIL",
            ResultKind::Unknown => "UNKNOWN",
            ResultKind::Exempt => "EXEMPT",
            ResultKind::Pass => "pass",
            ResultKind::NotApplicable => "n/a",
        };
        let mut sev = Cell::new(f.severity.as_str());
        if color && f.result == ResultKind::Fail {
            sev = sev.fg(severity_color(f.severity));
        }
        let mut message = f.message.clone();
        if let Some(ex) = &f.exemption {
            message.push_str(&format!(
                " [exempt by {}: {}{}]",
                ex.source,
                ex.reason,
                ex.expires
                    .as_deref()
                    .map(|t| format!(", until {t}"))
                    .unwrap_or_default()
            ));
        }
        t.add_row(vec![
            Cell::new(result),
            sev,
            Cell::new(f.rule),
            Cell::new(f.container.as_deref().unwrap_or("-")),
            Cell::new(message),
            Cell::new(&f.remediation),
        ]);
    }
    t
}

pub(super) fn write(
    report: &Report,
    color: bool,
    verbose: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let policies = report.policies.join(", ");
    let mut clusters: Vec<&str> = report
        .workloads
        .iter()
        .filter_map(|w| w.cluster.as_deref())
        .collect();
    clusters.dedup();
    let clusters = match clusters.len() {
        0 => String::new(),
        1 => format!(" · cluster {}", clusters[0]),
        n => format!(" · {n} clusters"),
    };
    writeln!(
        out,
        "prodready audit · policy {policies}{clusters} · {} workload{}\n",
        report.summary.workloads,
        if report.summary.workloads == 1 {
            ""
        } else {
            "s"
        }
    )?;
    let mut i = 0;
    let mut cluster: Option<&str> = None;
    for w in &report.workloads {
        // A fleet audit's workloads come cluster by cluster: a heading starts each one.
        if let Some(name) = w.cluster.as_deref()
            && cluster != Some(name)
        {
            cluster = Some(name);
            writeln!(out, "{}", paint(color, "1;4", &format!("Cluster {name}")))?;
        }
        // Findings are grouped per workload in input order; take this workload's run.
        let start = i;
        while i < report.findings.len() && same(&report.findings[i], w) {
            i += 1;
        }
        let mine: Vec<&Finding> = report.findings[start..i].iter().collect();
        let (mark, code) = match w.verdict {
            "violating" => ("✗", "1;31"),
            "unknown" => ("?", "1;33"),
            "exempt" => ("~", "1;36"),
            _ => ("✓", "1;32"),
        };
        let title = format!("{} {}/{}", w.kind, w.namespace, w.name);
        writeln!(
            out,
            "{} {}  {}",
            paint(color, code, mark),
            paint(color, "1", &title),
            paint(color, "2", &location(w))
        )?;
        for note in &w.notes {
            writeln!(out, "    note: {note}")?;
        }
        if !mine.is_empty() {
            for line in rows(&mine, color).lines() {
                writeln!(out, "  {}", line.trim_end())?;
            }
            writeln!(out)?;
        }
    }
    if !report.errors.is_empty() {
        writeln!(
            out,
            "{}",
            paint(
                color,
                "1;31",
                "Input errors (these documents were not audited):"
            )
        )?;
        for e in &report.errors {
            let mut at = e.file.clone();
            if let Some(d) = e.document {
                at.push_str(&format!(" document {d}"));
            }
            if let Some(l) = e.line {
                at.push_str(&format!(" line {l}"));
            }
            writeln!(out, "  {at}: {}", e.message)?;
        }
        writeln!(out)?;
    }
    let s = &report.summary;
    writeln!(
        out,
        "Summary: {} workloads: {} compliant, {} violating, {} exempt, {} unknown. Failures: {} critical, {} high, {} medium, {} low.",
        s.workloads,
        s.compliant,
        s.violating,
        s.exempt,
        s.unknown,
        s.failures.critical,
        s.failures.high,
        s.failures.medium,
        s.failures.low
    )?;
    inputs(report, verbose, out)?;
    if s.violating > 0 {
        writeln!(
            out,
            "Run `prodready explain RULE`, or read {}, for why a rule matters and how to fix it.",
            crate::rules::doc_url("RULE")
        )?;
    }
    Ok(())
}

fn same(f: &Finding, w: &WorkloadSummary) -> bool {
    f.kind == w.kind
        && f.namespace == w.namespace
        && f.name == w.name
        && f.source == w.source
        && f.cluster == w.cluster
}
