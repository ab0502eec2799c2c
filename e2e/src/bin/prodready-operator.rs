//! `prodready run` for the e2e suite, shutting down when its stdin closes: see
//! [`e2e::run_operator_until_stdin_closes`].

fn main() -> std::process::ExitCode {
    e2e::run_operator_until_stdin_closes("prodready-operator")
}
