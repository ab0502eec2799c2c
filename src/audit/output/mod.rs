//! Report formats: a readable table for people, JSON for scripts, SARIF for code scanning,
//! JUnit XML for CI test tabs.

mod json;
mod junit;
mod reports;
mod sarif;
mod table;

use std::io::{self, Write};

use super::Report;

/// A report format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable, grouped by workload; colour only on a terminal.
    Table,
    /// The stable JSON shape (`version: 1`).
    Json,
    /// SARIF 2.1.0, as GitHub code scanning accepts it.
    Sarif,
    /// JUnit XML: one testcase per workload × rule.
    Junit,
    /// OpenReports `Report` (openreports.io/v1alpha1) YAML, one per workload, for CI
    /// artefacts and `kubectl apply`; `--show-passed` adds `pass` results.
    Openreports,
    /// The same as `wgpolicyk8s.io/v1alpha2` `PolicyReport` YAML (critical → high).
    Policyreport,
}

impl Format {
    /// The report API this format writes, for the report formats.
    pub fn report_api(self) -> Option<crate::reports::ReportApi> {
        match self {
            Format::Openreports => Some(crate::reports::ReportApi::OpenReports),
            Format::Policyreport => Some(crate::reports::ReportApi::PolicyReport),
            Format::Table | Format::Json | Format::Sarif | Format::Junit => None,
        }
    }
}

/// Writes a report in a format. `color` only affects the table.
pub fn write(report: &Report, format: Format, color: bool, out: &mut dyn Write) -> io::Result<()> {
    write_jobs(report, format, color, false, 1, out)
}

/// [`write`], rendering the JSON report's findings on up to `jobs` threads; the output is the
/// same, byte for byte, for every `jobs`. `verbose` lists, in the table, every input skipped,
/// excluded or not judged (the machine formats always carry them).
pub fn write_jobs(
    report: &Report,
    format: Format,
    color: bool,
    verbose: bool,
    jobs: usize,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Table => table::write(report, color, verbose, out),
        Format::Json => json::write(report, jobs, out),
        Format::Sarif => sarif::write(report, out),
        Format::Junit => junit::write(report, out),
        Format::Openreports | Format::Policyreport => reports::write(report, out),
    }
}
