//! hack/prerequisites.sh (`make prerequisites`, the first step of `make test`): on this machine,
//! which runs `make test`, everything is present; with a PATH that holds nothing, it names
//! every missing tool with its install command, not only the first, and exits 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/prerequisites.sh")
}

/// bash by absolute path, so the script runs even when PATH holds nothing.
fn bash() -> &'static str {
    ["/bin/bash", "/usr/bin/bash"]
        .into_iter()
        .find(|b| Path::new(b).is_file())
        .expect("bash at /bin/bash or /usr/bin/bash")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn everything_make_test_needs_is_here() {
    let out = Command::new(bash())
        .arg(script())
        .output()
        .expect("bash runs hack/prerequisites.sh");
    let said = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "this machine runs `make test`, so it has every prerequisite:\n{said}"
    );
    assert!(said.contains("all present"), "{said}");
}

#[test]
fn a_path_without_tools_names_every_missing_one_and_fails() {
    let out = Command::new(bash())
        .arg(script())
        .env_clear()
        .env("PATH", "/nonexistent")
        .env(
            "HOME",
            std::env::var_os("HOME").unwrap_or_else(|| "/root".into()),
        )
        .output()
        .expect("bash runs hack/prerequisites.sh");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    // Every tool the script looks up on PATH, each with how to install it.
    for (tool, install) in [
        ("cargo and rustc", "https://sh.rustup.rs"),
        ("rustup", "https://sh.rustup.rs"),
        ("rustfmt", "rustup component add rustfmt"),
        ("clippy", "rustup component add clippy"),
        ("go >= 1.26", "https://go.dev/dl/"),
        ("python3", "apt-get install python3"),
        ("venv", "apt-get install python3-venv"),
        ("a C compiler (cc)", "apt-get install gcc"),
        ("make", "apt-get install make"),
        ("git", "apt-get install git"),
        (
            "aarch64-linux-gnu-gcc",
            "apt-get install gcc-aarch64-linux-gnu",
        ),
        ("qemu-aarch64-static", "apt-get install qemu-user-static"),
        ("strip and readelf", "apt-get install binutils"),
        ("df", "apt-get install coreutils"),
    ] {
        assert!(
            said.lines()
                .any(|l| l.starts_with("  - ") && l.contains(tool) && l.contains(install)),
            "`{tool}` is not named with `{install}`:\n{said}"
        );
    }
    let combined = said
        .lines()
        .find(|l| l.starts_with("the Debian packages at once: "))
        .unwrap_or_else(|| panic!("no combined apt-get command:\n{said}"));
    for package in ["gcc", "python3-venv", "qemu-user-static", "binutils"] {
        assert!(
            combined.split_whitespace().any(|w| w == package),
            "{package} is not in {combined}"
        );
    }
    // Nothing failed while looking (a command not found would say so on stderr).
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn make_test_checks_the_prerequisites_first() {
    let makefile = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Makefile"))
        .expect("the Makefile is readable");
    let test = makefile
        .lines()
        .find(|l| l.starts_with("test:"))
        .expect("a `test:` target");
    assert!(
        test.trim_start_matches("test:").split_whitespace().next() == Some("prerequisites"),
        "`make test` runs `prerequisites` first: {test}"
    );
    assert!(
        makefile.contains("prerequisites: target-cache\n\t@bash hack/prerequisites.sh\n"),
        "`make prerequisites` runs the script once `target` points where the build goes"
    );
}
