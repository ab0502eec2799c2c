//! prodready's release as the e2e tests see it: `hack/package.sh` (the container image as an
//! OCI image layout, and the Helm chart with the image's digest stamped into its defaults),
//! and a throwaway OCI registry (`crane registry serve`) to push the image to and pull it from
//! with a real OCI client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::binaries::{Binaries, repo_root};
use crate::http::http_get;
use crate::process::{Managed, free_port, new_temp_dir, tail};
use crate::tools::{Output, run};
use crate::wait::wait_for;

/// The static release binary `make release` builds (what the Dockerfile ships), or an error
/// that says how to build it.
pub fn release_binary() -> anyhow::Result<PathBuf> {
    target_binary("x86_64-unknown-linux-gnu", "make release")
}

/// The static linux/arm64 release binary `make release-arm64` cross-compiles.
pub fn release_binary_arm64() -> anyhow::Result<PathBuf> {
    target_binary("aarch64-unknown-linux-gnu", "make release-arm64")
}

fn target_binary(triple: &str, make: &str) -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| repo_root().join("target"), PathBuf::from);
    let path = target.join(triple).join("release/prodready");
    if !path.is_file() {
        bail!(
            "{} is missing: run `{make}` (the static build the image ships) first",
            path.display()
        );
    }
    Ok(path)
}

/// How to run a linux/arm64 binary on this host: directly on arm64, else under user-mode
/// emulation (`qemu-aarch64-static`, Debian's qemu-user-static), or an error saying so.
pub fn arm64_runner() -> anyhow::Result<Vec<PathBuf>> {
    if std::env::consts::ARCH == "aarch64" {
        return Ok(Vec::new());
    }
    for name in ["qemu-aarch64-static", "qemu-aarch64"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(vec![p]);
            }
        }
    }
    bail!(
        "cannot run linux/arm64 binaries here: install qemu-user-static (apt-get install qemu-user-static)"
    )
}

/// What `hack/package.sh` wrote.
#[derive(Debug, Clone)]
pub struct Package {
    /// The version of the chart and the image (Cargo.toml's).
    pub version: String,
    /// The image's manifest digest, `sha256:…`.
    pub digest: String,
    /// The OCI image layout directory.
    pub image: PathBuf,
    /// The packaged chart, `prodready-<version>.tgz`.
    pub chart: PathBuf,
    /// Where everything was written (`SHA256SUMS`, the CLI tarballs, `krew/prodready.yaml`).
    pub dir: PathBuf,
}

impl Package {
    /// The CLI tarball for `arch` (amd64, arm64): `prodready-<version>-linux-<arch>.tar.gz`.
    pub fn tarball(&self, arch: &str) -> PathBuf {
        self.dir
            .join(format!("prodready-{}-linux-{arch}.tar.gz", self.version))
    }
}

/// Runs `hack/package.sh --binary BINARY --arm64-binary ARM64 --out OUT` with the cached helm.
pub async fn package(binary: &Path, arm64: &Path, out: &Path) -> anyhow::Result<Package> {
    let helm = Binaries::locate()?.helm();
    let script = repo_root().join("hack/package.sh");
    let result = run(
        Path::new("bash"),
        [
            script.as_os_str(),
            "--binary".as_ref(),
            binary.as_os_str(),
            "--arm64-binary".as_ref(),
            arm64.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        &[("HELM", helm.as_os_str())],
        None,
    )
    .await?
    .ok()
    .context("hack/package.sh")?;
    let digest = result.stdout.trim().to_owned();
    let chart = std::fs::read_dir(out)
        .with_context(|| format!("reading {}", out.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .with_context(|| format!("no chart archive in {}", out.display()))?;
    let version = chart
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.strip_prefix("prodready-"))
        .with_context(|| format!("unexpected chart file name {}", chart.display()))?
        .to_owned();
    Ok(Package {
        version,
        digest,
        image: out.join("image"),
        chart,
        dir: out.to_path_buf(),
    })
}

/// Runs the cached `crane` with `args`.
pub async fn crane<I, S>(args: I) -> anyhow::Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run(&Binaries::locate()?.crane(), args, &[], None).await
}

/// An in-memory OCI registry on a loopback port (`crane registry serve`), stopped on drop.
#[derive(Debug)]
pub struct Registry {
    addr: SocketAddr,
    process: Managed,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts the registry and waits until it answers `GET /v2/`.
    pub async fn start() -> anyhow::Result<Self> {
        let crane = Binaries::locate()?.crane();
        let dir = new_temp_dir().context("creating the registry dir")?;
        let port = free_port().context("choosing a port")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut process = Managed::start(
            "registry",
            &crane,
            &[
                "registry".into(),
                "serve".into(),
                "--address".into(),
                addr.to_string(),
            ],
            &dir.path().join("registry.log"),
        )?;
        let what = format!("the registry on {addr} answering GET /v2/");
        let up = wait_for(Duration::from_secs(30), &what, || async move {
            match http_get(addr, "/v2/") {
                Ok((200, _)) => Ok(()),
                Ok((code, body)) => Err(format!("HTTP {code}: {body}")),
                Err(e) => Err(e),
            }
        })
        .await;
        if let Err(e) = up {
            let exited = process.exited();
            bail!("{e} (exited: {exited:?}):\n{}", tail(process.log(), 20));
        }
        Ok(Self {
            addr,
            process,
            _dir: dir,
        })
    }

    /// `127.0.0.1:<port>`, the registry part of an image reference.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The registry's own log, for failure messages.
    pub fn log(&self) -> String {
        tail(self.process.log(), 40)
    }
}
