//! Directories that are not manifests yet: a Helm chart (`Chart.yaml`) is rendered with
//! `helm template`, a kustomization (`kustomization.yaml`) with `kubectl kustomize` or
//! `kustomize build`. The tools come from `PATH` or a flag; their output is audited as if it
//! had been piped in, so `# Source:` comments still name each chart template.
//!
//! A renderer that is missing, fails or hangs is an input error naming the directory and what
//! to do: the directory is never skipped in silence.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The API versions a chart is rendered with by default: the monitoring CRDs, so charts that
/// render their ServiceMonitor only where the cluster serves it (`.Capabilities.APIVersions`)
/// are audited with it, as the clusters prodready checks usually have them.
/// Both forms are given: charts ask `.Capabilities.APIVersions.Has` for the group/version or
/// for the group/version/kind.
/// `apiregistration.k8s.io/v1` is served by every cluster but missing from helm's own default
/// list, so charts that test for it would otherwise render the removed v1beta1 APIService.
pub const DEFAULT_API_VERSIONS: &[&str] = &[
    "apiregistration.k8s.io/v1",
    "monitoring.coreos.com/v1",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PodMonitor",
];

/// The Kubernetes version a chart is rendered for by default (`.Capabilities.KubeVersion`,
/// and charts' `kubeVersion` constraints): the newest minor prodready is tested against, not
/// helm's own default of v1.20.
pub const DEFAULT_KUBE_VERSION: &str = "v1.34.0";

/// How long one render may take before it is stopped and reported.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// What renders a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Renderer {
    /// `helm template`.
    Helm,
    /// `kubectl kustomize` / `kustomize build`.
    Kustomize,
}

impl Renderer {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Renderer::Helm => "helm",
            Renderer::Kustomize => "kustomize",
        }
    }
}

/// Render settings (flags over the config file over these defaults).
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// The helm binary; `None`: `helm` on PATH.
    pub helm: Option<PathBuf>,
    /// The kustomize or kubectl binary; `None`: `kustomize`, else `kubectl`, on PATH.
    pub kustomize: Option<PathBuf>,
    /// Values files for every chart (`helm template -f`), absolute or relative to the
    /// working directory.
    pub values: Vec<PathBuf>,
    /// `--set` values for every chart.
    pub set: Vec<String>,
    /// The release name; `None`: the chart directory's name.
    pub release_name: Option<String>,
    /// The release namespace.
    pub namespace: String,
    /// `--api-versions` for `.Capabilities.APIVersions`.
    pub api_versions: Vec<String>,
    /// `--kube-version` for `.Capabilities.KubeVersion`.
    pub kube_version: String,
    /// The longest a render may take.
    pub timeout: Duration,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            helm: None,
            kustomize: None,
            values: Vec::new(),
            set: Vec::new(),
            release_name: None,
            namespace: "default".to_owned(),
            api_versions: DEFAULT_API_VERSIONS.iter().map(|&s| s.to_owned()).collect(),
            kube_version: DEFAULT_KUBE_VERSION.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// What renders `dir`, if it is a chart or a kustomization.
pub fn renderer_of(dir: &Path) -> Option<Renderer> {
    if dir.join("Chart.yaml").is_file() {
        Some(Renderer::Helm)
    } else if kustomization_file(dir).is_some() {
        Some(Renderer::Kustomize)
    } else {
        None
    }
}

/// The kustomization file of `dir`, under any of the names kustomize accepts.
pub fn kustomization_file(dir: &Path) -> Option<PathBuf> {
    ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Whether a kustomization is a `kind: Component`: it only renders inside the kustomizations
/// that use it.
pub fn is_component(dir: &Path) -> bool {
    kustomization_file(dir)
        .and_then(|f| std::fs::read_to_string(f).ok())
        .is_some_and(|text| {
            text.lines()
                .any(|l| l.trim_end() == "kind: Component" || l.trim_end() == "kind: \"Component\"")
        })
}

/// Renders `dir`; the error is a sentence naming the directory and what to do.
pub fn render(dir: &Path, how: Renderer, opts: &RenderOptions) -> Result<String, String> {
    let display = dir.display();
    match how {
        Renderer::Helm => {
            let helm = tool(opts.helm.as_deref(), &["helm"]).ok_or_else(|| {
                format!(
                    "cannot render the Helm chart {display}: `helm` is not on PATH; install helm, \
                     pass --helm PATH, or render it yourself: `helm template {display} | prodready audit -`"
                )
            })?;
            let release = opts.release_name.clone().unwrap_or_else(|| {
                dir.file_name()
                    .map(|n| release_name(&n.to_string_lossy()))
                    .unwrap_or_else(|| "release".to_owned())
            });
            let mut cmd = Command::new(&helm);
            cmd.arg("template")
                .arg(release)
                .arg(dir)
                .arg("--namespace")
                .arg(&opts.namespace)
                .arg("--kube-version")
                .arg(&opts.kube_version);
            for v in &opts.values {
                cmd.arg("--values").arg(v);
            }
            for s in &opts.set {
                cmd.arg("--set").arg(s);
            }
            for a in &opts.api_versions {
                cmd.arg("--api-versions").arg(a);
            }
            run(cmd, &helm, opts.timeout).map_err(|e| {
                let hint = if e.contains("missing in charts/ directory") {
                    format!(" (run `helm dependency build {display}` first)")
                } else {
                    String::new()
                };
                format!("`helm template` of the chart {display} failed: {e}{hint}")
            })
        }
        Renderer::Kustomize => {
            let tool = tool(opts.kustomize.as_deref(), &["kustomize", "kubectl"]).ok_or_else(|| {
                format!(
                    "cannot render the kustomization {display}: neither `kustomize` nor `kubectl` is \
                     on PATH; install one, pass --kustomize PATH, or render it yourself: \
                     `kubectl kustomize {display} | prodready audit -`"
                )
            })?;
            let is_kubectl = tool
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains("kubectl"));
            let mut cmd = Command::new(&tool);
            cmd.arg(if is_kubectl { "kustomize" } else { "build" })
                .arg(dir);
            run(cmd, &tool, opts.timeout).map_err(|e| {
                let verb = if is_kubectl {
                    "kubectl kustomize"
                } else {
                    "kustomize build"
                };
                format!("`{verb}` of {display} failed: {e}")
            })
        }
    }
}

/// A valid release name from a directory name (lowercase letters, digits and `-`).
fn release_name(dir: &str) -> String {
    let name: String = dir
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-');
    if name.is_empty() {
        "release".to_owned()
    } else {
        name.chars().take(53).collect()
    }
}

/// The tool to run: the one given (checked to exist), else the first of `names` on PATH.
fn tool(given: Option<&Path>, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = given {
        return Some(p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs a renderer to completion within `timeout`; its stdout, or a sentence with its stderr.
fn run(mut cmd: Command, program: &Path, timeout: Duration) -> Result<String, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    // Read both pipes on their own threads so a large render cannot fill a pipe and stall.
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} did not finish within {} s and was stopped",
                    program.display(),
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("cannot wait for {}: {e}", program.display())),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        let text = String::from_utf8_lossy(&stderr);
        let text = text.trim();
        return Err(if text.is_empty() {
            format!("it exited with {status}")
        } else {
            text.lines().take(6).collect::<Vec<_>>().join(" ")
        });
    }
    String::from_utf8(stdout).map_err(|_| "its output is not UTF-8 text".to_owned())
}

/// Reads a pipe to its end on a thread of its own.
fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut p) = pipe {
            // A read error ends the text early; the exit status still says whether it worked.
            let _ = p.read_to_end(&mut bytes);
        }
        bytes
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_names_are_valid() {
        assert_eq!(release_name("My_Chart"), "my-chart");
        assert_eq!(release_name("__"), "release");
    }

    #[test]
    fn a_missing_helm_is_a_sentence_naming_the_chart_and_what_to_do() {
        let opts = RenderOptions {
            helm: Some(PathBuf::from("/nonexistent/helm")),
            ..RenderOptions::default()
        };
        let e = render(Path::new("charts/x"), Renderer::Helm, &opts).unwrap_err();
        assert!(e.contains("charts/x"), "{e}");
        assert!(e.contains("cannot start /nonexistent/helm"), "{e}");
    }

    #[test]
    fn a_failing_renderer_reports_its_stderr() {
        let opts = RenderOptions {
            kustomize: Some(PathBuf::from("/bin/false")),
            ..RenderOptions::default()
        };
        let e = render(Path::new("k"), Renderer::Kustomize, &opts).unwrap_err();
        assert!(e.contains("`kustomize build` of k failed"), "{e}");
    }
}
