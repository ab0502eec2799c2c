//! Writes the benchmark corpus: `gen-corpus --workloads 10000 --seed 42 --out DIR` creates
//! `DIR/corpus.yaml` (one multi-document file), `DIR/files/<namespace>/<name>.yaml` (one file per
//! workload with its Service, ServiceMonitor and PodDisruptionBudget) and `DIR/counts.json`.

use std::path::PathBuf;
use std::process::ExitCode;

use bench::{Spec, write_corpus};

const USAGE: &str = "usage: gen-corpus [--workloads N] [--namespaces N] [--seed N] --out DIR
  --workloads N    workloads to generate (default 10000)
  --namespaces N   namespaces to spread them over (default 500)
  --seed N         the seed; the same seed always gives the same bytes (default 42)
  --out DIR        output directory (required)";

fn parse() -> Result<(Spec, PathBuf), String> {
    let mut spec = Spec::default();
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = match inline.or_else(|| args.next()) {
            Some(v) => v,
            None => return Err(format!("{flag} needs a value")),
        };
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--workloads" => spec.workloads = number(&value)? as usize,
            "--namespaces" => spec.namespaces = (number(&value)? as usize).max(1),
            "--seed" => spec.seed = number(&value)?,
            "--out" => out = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    let out = out.ok_or("--out DIR is required")?;
    Ok((spec, out))
}

fn main() -> ExitCode {
    let (spec, out) = match parse() {
        Ok(v) => v,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("gen-corpus: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if e.is_empty() { 0 } else { 2 });
        }
    };
    match write_corpus(spec, &out) {
        Ok(stats) => {
            println!("{:#}", stats.to_json(&spec));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-corpus: writing {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}
