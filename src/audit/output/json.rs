//! The JSON report: `{"version": 1, "findings": [...], "errors": [...], "summary": {...}}`.

use std::io::{self, Write};

use crate::audit::Report;

pub(super) fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
    writeln!(out)
}
