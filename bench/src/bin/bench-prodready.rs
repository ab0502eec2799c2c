//! `prodready run` for the benchmark smoke test, shutting down when its stdin closes: see
//! [`e2e::run_operator_until_stdin_closes`].

fn main() -> std::process::ExitCode {
    e2e::run_operator_until_stdin_closes("bench-prodready")
}
