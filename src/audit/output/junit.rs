//! JUnit XML: one `<testsuite>` per policy, one `<testcase>` per workload × rule, so CI
//! test tabs show each readiness rule as a test. Input errors are `<error>` testcases.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use quick_xml::escape::escape;

use crate::api::workload_key;
use crate::audit::{Finding, Report, ResultKind};

pub(super) fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    // Findings by (workload, policy, rule); the workload prefixed by its cluster in a fleet.
    let mut by_case: HashMap<(String, &str, &str), Vec<&Finding>> = HashMap::new();
    for f in &report.findings {
        let key = (
            class_name(
                f.cluster.as_deref(),
                &workload_key(f.kind.as_str(), &f.namespace, &f.name),
            ),
            f.policy.as_str(),
            f.rule,
        );
        by_case.entry(key).or_default().push(f);
    }
    let mut suites = String::new();
    let (mut total, mut total_failures) = (0usize, 0usize);
    for policy in &report.policies {
        let mut cases = String::new();
        let (mut tests, mut failures, mut skipped) = (0usize, 0usize, 0usize);
        for w in &report.workloads {
            let class = class_name(
                w.cluster.as_deref(),
                &workload_key(w.kind.as_str(), &w.namespace, &w.name),
            );
            // JUnit's own place for metadata: read by CI test tabs and converters alike.
            let properties = w
                .cluster
                .as_deref()
                .map(|c| {
                    format!(
                        "\n      <properties><property name=\"cluster\" value=\"{}\"/></properties>",
                        escape(c)
                    )
                })
                .unwrap_or_default();
            for (p, rule) in w.evaluated.iter().filter(|(p, _)| p == policy) {
                tests += 1;
                let key = (class.clone(), p.as_str(), *rule);
                let found = by_case.get(&key).map(Vec::as_slice).unwrap_or_default();
                let _ = write!(
                    cases,
                    "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\">",
                    escape(class.as_str()),
                    escape(*rule),
                    escape(w.source.file.as_str())
                );
                cases.push_str(&properties);
                let fails: Vec<_> = found
                    .iter()
                    .filter(|f| f.result == ResultKind::Fail)
                    .collect();
                if let Some(first) = fails.first() {
                    failures += 1;
                    // Containers an exemption covers beside the failure stay visible as exempt.
                    let body: Vec<String> = fails
                        .iter()
                        .map(|f| format!("{} (fix: {})", f.message, f.remediation))
                        .chain(found.iter().filter_map(|f| {
                            let ex = f.exemption.as_ref()?;
                            Some(format!(
                                "exempt: {} [{}{}]",
                                f.message,
                                ex.reason,
                                ex.expires
                                    .as_deref()
                                    .map(|t| format!(", until {t}"))
                                    .unwrap_or_default()
                            ))
                        }))
                        .collect();
                    let _ = write!(
                        cases,
                        "\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    ",
                        escape(first.message.as_str()),
                        first.severity,
                        escape(body.join("\n").as_str())
                    );
                } else if let Some(f) = found.first().filter(|f| f.result != ResultKind::Pass) {
                    skipped += 1;
                    let _ = write!(
                        cases,
                        "\n      <skipped message=\"{}: {}\"/>\n    ",
                        f.result.as_str(),
                        escape(f.message.as_str())
                    );
                } else if !properties.is_empty() {
                    cases.push_str("\n    ");
                }
                cases.push_str("</testcase>\n");
            }
        }
        total += tests;
        total_failures += failures;
        let _ = write!(
            suites,
            "  <testsuite name=\"prodready policy {}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n{cases}  </testsuite>\n",
            escape(policy.as_str())
        );
    }
    if !report.errors.is_empty() {
        let mut cases = String::new();
        for e in &report.errors {
            let name = match (e.document, e.line) {
                (Some(d), Some(l)) => format!("{} document {d} line {l}", e.file),
                (Some(d), None) => format!("{} document {d}", e.file),
                _ => e.file.clone(),
            };
            let _ = writeln!(
                cases,
                "    <testcase classname=\"input\" name=\"{}\"><error message=\"{}\"/></testcase>",
                escape(name.as_str()),
                escape(e.message.as_str())
            );
        }
        let n = report.errors.len();
        total += n;
        let _ = write!(
            suites,
            "  <testsuite name=\"prodready inputs\" tests=\"{n}\" failures=\"0\" errors=\"{n}\">\n{cases}  </testsuite>\n"
        );
    }
    write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"prodready\" tests=\"{total}\" failures=\"{total_failures}\" errors=\"{}\">\n{suites}</testsuites>\n",
        report.errors.len()
    )
}

/// A testcase's class: the workload key, after its cluster's name in a fleet audit (the same
/// workload in two clusters is two testcases).
fn class_name(cluster: Option<&str>, workload: &str) -> String {
    match cluster {
        Some(c) => format!("{c}/{workload}"),
        None => workload.to_owned(),
    }
}
