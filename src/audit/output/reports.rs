//! Policy reports as a YAML stream: one `Report` (or `PolicyReport`) document per workload a
//! policy matched, ready for `kubectl apply -f -`. Input errors go to stderr only (the caller
//! prints them): a comment would not survive `kubectl apply`.

use std::io::{self, Write};

use crate::audit::Report;

pub(super) fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for r in &report.reports {
        let yaml = serde_norway::to_string(r).map_err(io::Error::other)?;
        writeln!(out, "---")?;
        out.write_all(yaml.as_bytes())?;
    }
    Ok(())
}
