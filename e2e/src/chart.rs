//! prodready's own packaging as the e2e tests see it: the Helm chart rendered by the real
//! `helm`, multi-document YAML as JSON values, and the Prometheus Operator CRDs (read from
//! the Go module cache that `e2e/k8s-binaries.sh` fills).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use kube::Client;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::apply::install_crd_file;
use crate::binaries::{pinned_version, repo_root};
use crate::control_plane::ControlPlane;

/// `charts/prodready` in the repository.
pub fn chart_dir() -> PathBuf {
    repo_root().join("charts/prodready")
}

/// `helm template RELEASE charts/prodready -n NAMESPACE --include-crds --kube-version K8S_VERSION
/// --set …`: the rendered
/// manifests (CRDs included), or an error with helm's stderr. Entries of `sets` that start
/// with `--` are passed as they are (e.g. `--api-versions=monitoring.coreos.com/v1/ServiceMonitor`).
pub async fn helm_template(
    cp: &ControlPlane,
    release: &str,
    namespace: &str,
    sets: &[&str],
) -> anyhow::Result<String> {
    helm_template_chart(cp, &chart_dir(), release, namespace, sets).await
}

/// [`helm_template`] of another chart: a directory or a packaged `.tgz`.
pub async fn helm_template_chart(
    cp: &ControlPlane,
    chart: &Path,
    release: &str,
    namespace: &str,
    sets: &[&str],
) -> anyhow::Result<String> {
    let chart = chart.to_string_lossy();
    // The chart's `kubeVersion` is >= 1.30. `helm template` checks it against a built-in
    // version that release builds of helm stamp at link time (their client-go's), and the
    // helm built from source by e2e/k8s-binaries.sh leaves at v1.20.0: render for the
    // control plane's version, as `helm install` does.
    let kube_version = pinned_version("K8S_VERSION").context("K8S_VERSION in e2e/versions.env")?;
    let mut args = vec![
        "template",
        release,
        chart.as_ref(),
        "--namespace",
        namespace,
        "--include-crds",
        "--kube-version",
        kube_version,
    ];
    for s in sets {
        if s.starts_with("--") {
            args.push(s);
        } else {
            args.extend(["--set", s]);
        }
    }
    let out = cp.helm(&args).await?.ok().context("helm template")?;
    Ok(out.stdout)
}

/// Every document of a multi-document YAML string, `kind: List` flattened, empty ones dropped.
pub fn documents(yaml: &str) -> anyhow::Result<Vec<Value>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).context("parsing YAML")?;
    let mut out = Vec::new();
    for doc in docs {
        match doc {
            Value::Null => {}
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                out.extend(
                    map.get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// `kind/namespace/name` of a rendered object, for messages and lookups.
pub fn object_key(v: &Value) -> String {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("");
    format!(
        "{}/{}/{}",
        s("/kind"),
        s("/metadata/namespace"),
        s("/metadata/name")
    )
}

/// The file of a Prometheus Operator CRD (`monitoring.coreos.com_servicemonitors.yaml`, …)
/// at the pinned `PROMETHEUS_OPERATOR_VERSION`, from the Go module cache.
pub fn monitoring_crd_file(file: &str) -> anyhow::Result<PathBuf> {
    let version = pinned_version("PROMETHEUS_OPERATOR_VERSION")
        .context("PROMETHEUS_OPERATOR_VERSION is not pinned in e2e/versions.env")?;
    let module = format!("github.com/prometheus-operator/prometheus-operator@{version}");
    let modcache = Command::new("go")
        .args(["env", "GOMODCACHE"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("GOMODCACHE").map(PathBuf::from))
        .or_else(|| std::env::var_os("GOPATH").map(|p| PathBuf::from(p).join("pkg/mod")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join("go/pkg/mod")))
        .context("no Go module cache")?;
    let path = modcache
        .join(&module)
        .join("example/prometheus-operator-crd")
        .join(file);
    if !path.is_file() {
        bail!(
            "{} is missing: run `bash e2e/k8s-binaries.sh` (it downloads {module})",
            path.display()
        );
    }
    Ok(path)
}

/// Installs the ServiceMonitor and PodMonitor CRDs and waits until they are served.
pub async fn install_monitoring_crds(client: &Client) -> anyhow::Result<()> {
    for f in [
        "monitoring.coreos.com_servicemonitors.yaml",
        "monitoring.coreos.com_podmonitors.yaml",
        "monitoring.coreos.com_prometheusrules.yaml",
    ] {
        install_crd_file(client, monitoring_crd_file(f)?)
            .await
            .with_context(|| format!("installing {f}"))?;
    }
    Ok(())
}

/// The shared control plane of this test binary with the CRDs the chart needs installed: the
/// ProductionPolicy CRD (`crds/`) and the Prometheus Operator's ServiceMonitor and PodMonitor.
pub async fn chart_plane() -> anyhow::Result<&'static ControlPlane> {
    static PLANE: OnceCell<&'static ControlPlane> = OnceCell::const_new();
    PLANE
        .get_or_try_init(|| async {
            let cp = ControlPlane::shared().await?;
            let client = cp.client().await?;
            install_crd_file(&client, repo_root().join(CRD_FILE))
                .await
                .context("installing the ProductionPolicy CRD")?;
            install_monitoring_crds(&client)
                .await
                .context("installing the Prometheus Operator CRDs")?;
            Ok(cp)
        })
        .await
        .copied()
}

/// The committed ProductionPolicy CRD, relative to the repository root.
pub const CRD_FILE: &str = "crds/productionpolicies.prodready.dev.yaml";
