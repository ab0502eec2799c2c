//! Where the kube-apiserver, etcd, kubectl, helm, crane, promtool and prometheus binaries live.
//!
//! `e2e/k8s-binaries.sh` builds them into `<cache>/prodready/k8s/<K8S_VERSION>/bin` with a
//! `<name>.version` stamp each; `PRODREADY_K8S_BIN` overrides the directory. The pinned versions
//! come from `e2e/versions.env`, compiled in so the harness and the script cannot disagree.

use std::path::{Path, PathBuf};

use crate::error::Error;

const VERSIONS_ENV: &str = include_str!("../versions.env");

/// Environment variable naming the directory with the binaries.
pub const BIN_ENV: &str = "PRODREADY_K8S_BIN";

/// A pinned version from `e2e/versions.env`, e.g. `pinned_version("K8S_VERSION")`.
pub fn pinned_version(key: &str) -> Option<&'static str> {
    VERSIONS_ENV.lines().find_map(|line| {
        let (k, v) = line.trim().split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"'))
    })
}

/// The repository root (the parent of the `e2e` crate), for reading `crds/` and `config/`.
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The default binary directory for the pinned Kubernetes version, as the build script computes it.
fn default_dir() -> Option<PathBuf> {
    let root = match std::env::var_os("PRODREADY_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => match std::env::var_os("XDG_CACHE_HOME") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("prodready"),
            _ => PathBuf::from(std::env::var_os("HOME")?)
                .join(".cache")
                .join("prodready"),
        },
    };
    Some(
        root.join("k8s")
            .join(pinned_version("K8S_VERSION")?)
            .join("bin"),
    )
}

/// The located binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// Finds the binaries via `PRODREADY_K8S_BIN`, else the default cache directory, and checks
    /// that all seven exist and match the pinned versions.
    pub fn locate() -> Result<Self, Error> {
        let dir = match std::env::var_os(BIN_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => default_dir().ok_or_else(|| Error::BinariesMissing {
                dir: PathBuf::from("~/.cache/prodready/k8s"),
                problems: "neither PRODREADY_K8S_BIN nor HOME is set".into(),
            })?,
        };
        Self::check(dir)
    }

    /// Checks that `dir` holds all seven binaries at the pinned versions.
    fn check(dir: PathBuf) -> Result<Self, Error> {
        let wanted = [
            ("kube-apiserver", "K8S_VERSION"),
            ("kubectl", "K8S_VERSION"),
            ("etcd", "ETCD_VERSION"),
            ("helm", "HELM_VERSION"),
            ("crane", "CRANE_VERSION"),
            ("promtool", "PROMETHEUS_VERSION"),
            ("prometheus", "PROMETHEUS_VERSION"),
        ];
        let mut problems = Vec::new();
        for (name, key) in wanted {
            let path = dir.join(name);
            if !path.is_file() {
                problems.push(format!("{name} not found"));
                continue;
            }
            // A stamp is written by the build script; a hand-made directory may lack them.
            if let Ok(stamp) = std::fs::read_to_string(dir.join(format!("{name}.version"))) {
                let pinned = pinned_version(key).unwrap_or_default();
                if stamp.trim() != pinned {
                    problems.push(format!(
                        "{name} is {} but e2e/versions.env pins {pinned}",
                        stamp.trim()
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(Self { dir })
        } else {
            Err(Error::BinariesMissing {
                dir,
                problems: problems.join(", "),
            })
        }
    }

    /// The directory holding the binaries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn kube_apiserver(&self) -> PathBuf {
        self.dir.join("kube-apiserver")
    }
    pub fn etcd(&self) -> PathBuf {
        self.dir.join("etcd")
    }
    pub fn kubectl(&self) -> PathBuf {
        self.dir.join("kubectl")
    }
    pub fn helm(&self) -> PathBuf {
        self.dir.join("helm")
    }
    pub fn crane(&self) -> PathBuf {
        self.dir.join("crane")
    }
    /// Checks and unit-tests the shipped alert rules.
    pub fn promtool(&self) -> PathBuf {
        self.dir.join("promtool")
    }
    /// The Prometheus server the e2e suite scrapes the operator with.
    pub fn prometheus(&self) -> PathBuf {
        self.dir.join("prometheus")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_pinned() {
        assert!(pinned_version("K8S_VERSION").is_some_and(|v| v.starts_with("v1.")));
        assert!(pinned_version("ETCD_VERSION").is_some_and(|v| v.starts_with("v3.")));
        assert!(pinned_version("HELM_VERSION").is_some_and(|v| v.starts_with("v3.")));
        assert!(pinned_version("PROMETHEUS_VERSION").is_some_and(|v| v.starts_with("v0.3")));
        assert_eq!(pinned_version("NOPE"), None);
    }

    #[test]
    fn missing_binaries_say_how_to_build_them() {
        let err = Binaries::check(PathBuf::from("/nonexistent/prodready-bin")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("bash e2e/k8s-binaries.sh"), "{msg}");
        assert!(msg.contains("kube-apiserver not found"), "{msg}");
        assert!(msg.contains("/nonexistent/prodready-bin"), "{msg}");
    }
}
