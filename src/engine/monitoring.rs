//! The two Prometheus Operator resources the `service-monitor` rule reads
//! (`monitoring.coreos.com/v1` ServiceMonitor and PodMonitor), reduced to the fields used.
//! Unknown fields are ignored, so any Prometheus Operator version parses.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// Which namespaces a monitor looks in. Absent: the monitor's own namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MonitorNamespaceSelector {
    /// Every namespace.
    #[serde(default)]
    pub any: bool,
    /// These namespaces.
    #[serde(default)]
    pub match_names: Vec<String>,
}

impl MonitorNamespaceSelector {
    /// Whether a monitor living in `own` with this selector looks into `namespace`.
    pub fn covers(this: Option<&Self>, own: &str, namespace: &str) -> bool {
        match this {
            None => own == namespace,
            Some(s) if s.any => true,
            Some(s) if s.match_names.is_empty() => own == namespace,
            Some(s) => s.match_names.iter().any(|n| n == namespace),
        }
    }
}

/// A ServiceMonitor endpoint.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorEndpoint {
    /// The name of a Service port.
    #[serde(default)]
    pub port: Option<String>,
    /// A pod port, by name or number (deprecated in the Prometheus Operator, still honoured).
    #[serde(default)]
    pub target_port: Option<IntOrString>,
}

/// The spec of a `monitoring.coreos.com/v1` ServiceMonitor.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "ServiceMonitor",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    /// Selects Services by label.
    #[serde(default)]
    pub selector: LabelSelector,
    /// Namespaces to look for Services in.
    #[serde(default)]
    pub namespace_selector: Option<MonitorNamespaceSelector>,
    /// Endpoints to scrape.
    #[serde(default)]
    pub endpoints: Vec<ServiceMonitorEndpoint>,
}

/// A PodMonitor endpoint.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodMetricsEndpoint {
    /// The name of a container port.
    #[serde(default)]
    pub port: Option<String>,
    /// A container port number.
    #[serde(default)]
    pub port_number: Option<i32>,
    /// A pod port, by name or number (deprecated in the Prometheus Operator).
    #[serde(default)]
    pub target_port: Option<IntOrString>,
}

/// The spec of a `monitoring.coreos.com/v1` PodMonitor.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "PodMonitor",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct PodMonitorSpec {
    /// Selects pods by label.
    #[serde(default)]
    pub selector: LabelSelector,
    /// Namespaces to look for pods in.
    #[serde(default)]
    pub namespace_selector: Option<MonitorNamespaceSelector>,
    /// Endpoints to scrape.
    #[serde(default)]
    pub pod_metrics_endpoints: Vec<PodMetricsEndpoint>,
}
