//! A real Kubernetes control plane for prodready's end-to-end tests.
//!
//! [`ControlPlane`] runs etcd and kube-apiserver (built by `e2e/k8s-binaries.sh`) on loopback
//! ports in a temporary directory, the way controller-runtime's envtest does: generated PKI,
//! RBAC, service-account signing keys, an admin client certificate and a kubeconfig. There is no
//! kubelet and no controller-manager, so workloads are stored and watched but never get Pods.
//!
//! Tests usually share one control plane per test binary ([`ControlPlane::shared`]) and isolate
//! themselves with a [`TempNamespace`]; tests that stop the API server start their own
//! ([`ControlPlane::start`]). `PRODREADY_E2E_KUBECONFIG=<path>` points the shared instance at an
//! existing cluster instead.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use e2e::{ControlPlane, apply_yaml};
//! let cp = ControlPlane::shared().await?;
//! let ns = cp.temp_namespace("demo").await?;
//! let client = cp.client().await?;
//! apply_yaml(&client, Some(ns.name()), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n").await?;
//! let out = cp.kubectl(["get", "configmap", "x", "-n", ns.name()]).await?;
//! assert!(out.status.success(), "{}", out.stderr);
//! # Ok(()) }
//! ```

mod apply;
mod binaries;
mod chart;
mod cluster;
mod control_plane;
mod docs;
mod error;
mod http;
mod manifests;
mod namespace;
mod netns;
mod oci;
mod operator_bin;
mod operator_process;
mod otlp;
mod pki;
mod process;
mod prometheus;
mod release;
mod status;
mod suite_operator;
mod tools;
mod wait;

pub use apply::{apply_yaml, install_crd, install_crd_file};
pub use binaries::{Binaries, pinned_version, repo_root};
pub use chart::{
    CRD_FILE, chart_dir, chart_plane, documents, go_module_file, helm_template,
    helm_template_chart, install_monitoring_crds, install_openreports_crds,
    install_policyreport_crd, monitoring_crd_file, object_key,
};
pub use cluster::{
    AUDIT_POLICY, Cluster, NODE_IP, NODE_NAME, PAUSE_IMAGE, POD_CIDR, SERVICE_CIDR, StartTimings,
    TESTAPP_IMAGE,
};
pub use control_plane::{ControlPlane, KUBECONFIG_ENV, until_signalled};
pub use docs::doc_sh_block;
pub use error::Error;
pub use http::http_get;
pub use manifests::{cronjob, deployment, policy_yaml, webhook_by_url};
pub use namespace::TempNamespace;
pub use operator_bin::run_operator_until_stdin_closes;
pub use operator_process::{OperatorProcess, metric_value, tail_lines};
pub use otlp::otlp_sink;
pub use process::{Daemon, free_port};
pub use prometheus::{
    PRODREADY_JOB, Prometheus, RULES_FILE, dashboard_queries, encode, operator_scrape_config,
    prometheus_api, query,
};
pub use release::{
    Package, Registry, arm64_runner, crane, package, release_binary, release_binary_arm64,
};
pub use status::{
    condition, counts, expect_counts, status_of, wait_for_events, wait_status, workload_events,
};
pub use suite_operator::Operator;
pub use tools::{Output, run_program};
pub use wait::wait_for;
