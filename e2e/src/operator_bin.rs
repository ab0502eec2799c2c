//! `prodready run` for tests: the same library code as the `prodready` binary, plus one thing
//! tests need — it shuts down gracefully when its stdin closes, so an operator a test started
//! never outlives the test binary, even when that is killed. The e2e suite's
//! `prodready-operator` and the benchmarks' `bench-prodready` binaries are this function
//! (integration tests only get `CARGO_BIN_EXE_*` for their own package's binaries). They also
//! run `prodready audit` (e.g. `audit --cluster`), as the `prodready` binary does.

use std::io::Read;
use std::process::ExitCode;

use clap::Parser;
use prodready::cli::{Cli, Command};
use tokio_util::sync::CancellationToken;

/// Runs `prodready run` from the command line until a signal or until stdin closes (or
/// `prodready audit`, to its end); `name` prefixes its error messages.
pub fn run_operator_until_stdin_closes(name: &str) -> ExitCode {
    let args = match Cli::parse().command {
        Command::Run(args) => args,
        Command::Audit(args) => return audit(name, &args),
        _ => {
            eprintln!("{name}: only `run` and `audit` are supported");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(1);
        }
    };
    let shutdown = CancellationToken::new();
    let on_eof = shutdown.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        on_eof.cancel();
    });
    let result = runtime.block_on(async {
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            prodready::run::signalled().await;
            on_signal.cancel();
        });
        prodready::run::run_until(*args, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::from(1)
        }
    }
}

/// `prodready audit` with the report on stdout; its exit code.
fn audit(name: &str, args: &prodready::cli::AuditArgs) -> ExitCode {
    use std::io::Write as _;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match prodready::cli::run_audit(args, &mut out).and_then(|code| out.flush().map(|()| code)) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(2)),
        Err(e) => {
            eprintln!("{name}: cannot write the report: {e}");
            ExitCode::from(2)
        }
    }
}
