//! Per-test namespaces.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A namespace created for one test and deleted (best effort, without waiting) on drop.
///
/// Without kube-controller-manager a deleted namespace stays `Terminating` with its contents;
/// names are unique per test and run, so that does not leak into other tests.
#[derive(Debug)]
pub struct TempNamespace {
    name: String,
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    keep: bool,
}

impl TempNamespace {
    pub(crate) fn new(name: String, kubectl: PathBuf, kubeconfig: PathBuf) -> Self {
        Self {
            name,
            kubectl,
            kubeconfig,
            keep: false,
        }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Leaves the namespace in place after the test, e.g. to inspect it by hand.
    pub fn keep(mut self) -> String {
        self.keep = true;
        std::mem::take(&mut self.name)
    }
}

impl Drop for TempNamespace {
    fn drop(&mut self) {
        if self.keep || self.name.is_empty() {
            return;
        }
        // Drop cannot await, and a spawned task would die with the test's runtime; a short
        // synchronous kubectl call that does not wait for finalization is reliable.
        let _ = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args([
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
                "--request-timeout=10s",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A DNS-1123 label `<prefix>-<unique>`, unique per process, call and time.
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    clean = clean.trim_matches('-').to_string();
    if clean.is_empty() {
        clean = "e2e".into();
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Six hex digits of time plus pid and counter: unique within and across runs in practice.
    format!(
        "{clean}-{:x}{:x}-{n}",
        std::process::id() & 0xffff,
        nanos & 0xff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels_and_unique() {
        let a = unique_name("Crd_Tests/with spaces and a very long prefix indeed, really");
        let b = unique_name("Crd_Tests/with spaces and a very long prefix indeed, really");
        assert_ne!(a, b);
        for name in [&a, &b, &unique_name("--"), &unique_name("")] {
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
            assert!(!name.starts_with('-') && !name.ends_with('-'), "{name}");
        }
    }
}
