//! The `prodready` binary: parses the command line and hands off to the library.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use prodready::cli::{self, Cli, Command};

/// mimalloc for `audit` (≈ 1.3× faster end to end on the 10,000-workload corpus), the system
/// allocator for `run` (less resident memory over time): `prodready::memory`. Without the
/// `mimalloc` feature the system allocator is used throughout (for heap profilers).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: prodready::memory::Allocator = prodready::memory::Allocator;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cli = match cli.command {
        Command::Run(args) => return run_operator(*args),
        command => Cli { command },
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = match cli.command {
        Command::Audit(args) => cli::run_audit_retaining(&args, &mut out).map(|(code, run)| {
            // The process exits next; freeing every parsed object one by one would only
            // delay that (by ~10% of the run on a large corpus).
            std::mem::forget(run);
            code
        }),
        Command::Rules { output } => cli::run_rules(output, &mut out).map(|()| 0),
        Command::Explain { rule } => cli::run_explain(&rule, &mut out),
        Command::Run(_) => Ok(0),
        Command::ConfigSchema => out
            .write_all(prodready::audit::config::schema_text().as_bytes())
            .map(|()| 0),
        Command::RuleDocs { dir } => match prodready::rule_pages::write(&dir) {
            Ok(()) => Ok(0),
            Err(e) => {
                eprintln!("prodready: {e}");
                Ok(1)
            }
        },
        Command::Crd => match prodready::crd::yaml() {
            Ok(y) => out.write_all(y.as_bytes()).map(|()| 0),
            Err(e) => {
                eprintln!("prodready: cannot render the CRD: {e}");
                Ok(1)
            }
        },
    };
    let code = match result.and_then(|code| out.flush().map(|()| code)) {
        Ok(code) => code,
        // A closed pipe (`prodready audit … | head`) is not an error worth a message.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("prodready: cannot write output: {e}");
            2
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}

/// `prodready run`: the only command that needs an async runtime.
fn run_operator(args: prodready::run::RunArgs) -> ExitCode {
    prodready::memory::prefer_system_allocator();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("prodready: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(prodready::run::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("prodready: {e}");
            ExitCode::from(1)
        }
    }
}
