//! Report formats: a readable table for people, JSON for scripts, SARIF for code scanning,
//! JUnit XML for CI test tabs.

mod json;
mod junit;
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
}

/// Writes a report in a format. `color` only affects the table.
pub fn write(report: &Report, format: Format, color: bool, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Table => table::write(report, color, out),
        Format::Json => json::write(report, out),
        Format::Sarif => sarif::write(report, out),
        Format::Junit => junit::write(report, out),
    }
}
