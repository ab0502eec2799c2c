//! Services and PodDisruptionBudgets as the rules see them.
//!
//! The controller holds one of each per object in the cluster, and at 100,000 workloads a
//! typed k8s-openapi `Service` costs ≈ 1.6 KiB and a `PodDisruptionBudget` ≈ 1.2 KiB however
//! few fields are set (`ObjectMeta` and `ServiceSpec` are mostly inline `Option`s): 69 MiB
//! for 26,668 Services and 24,021 PDBs (bench/RESULTS.md section 9). These records keep only
//! what `graceful-shutdown`, `service-monitor` and `disruption-budget` read, for a few hundred
//! bytes each. `audit`, the controller and the webhook all build them with the same `From`,
//! so their verdicts cannot differ on what was dropped.

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

#[cfg(test)]
use super::selector::Labels as _;
use super::selector::{Pairs, Selector};
use super::workload::identity;

/// A core/v1 Service, reduced to what the rules read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceView {
    /// Its namespace (`default` when the manifest names none).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its labels (what a ServiceMonitor's selector matches).
    pub labels: Pairs,
    /// Its annotations (the scrape annotation).
    pub annotations: Pairs,
    /// `spec.type` as written (`None`: ClusterIP).
    pub type_: Option<String>,
    /// `spec.selector` (`None`: hand-made endpoints, no pods selected).
    pub selector: Option<Pairs>,
    /// `spec.ports`, without `nodePort`.
    pub ports: Vec<ServicePort>,
}

impl From<Service> for ServiceView {
    fn from(svc: Service) -> Self {
        let (namespace, name) = identity(&svc.metadata);
        let spec = svc.spec.unwrap_or_default();
        ServiceView {
            namespace,
            name,
            labels: svc.metadata.labels.unwrap_or_default().into(),
            annotations: svc.metadata.annotations.unwrap_or_default().into(),
            type_: spec.type_,
            selector: spec.selector.map(Pairs::from),
            ports: spec
                .ports
                .unwrap_or_default()
                .into_iter()
                .map(|p| ServicePort {
                    node_port: None,
                    ..p
                })
                .collect(),
        }
    }
}

/// A policy/v1 PodDisruptionBudget, reduced to what the rules read (its spec; the status
/// changes with every pod and no rule reads it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BudgetView {
    /// Its namespace (`default` when the manifest names none).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `spec.selector` (`None` selects nothing; an empty one every pod of the namespace).
    pub selector: Option<Selector>,
    /// `spec.minAvailable`.
    pub min_available: Option<IntOrString>,
    /// `spec.maxUnavailable`.
    pub max_unavailable: Option<IntOrString>,
    /// `spec.unhealthyPodEvictionPolicy` as written (`None`: the API's `IfHealthyBudget`).
    pub unhealthy_pod_eviction_policy: Option<String>,
}

impl From<PodDisruptionBudget> for BudgetView {
    fn from(pdb: PodDisruptionBudget) -> Self {
        let (namespace, name) = identity(&pdb.metadata);
        let spec = pdb.spec.unwrap_or_default();
        BudgetView {
            namespace,
            name,
            selector: spec.selector.map(Selector::from),
            min_available: spec.min_available,
            max_unavailable: spec.max_unavailable,
            unhealthy_pod_eviction_policy: spec.unhealthy_pod_eviction_policy,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_service_keeps_what_the_rules_read() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "labels": {"app": "web"},
                         "annotations": {"prometheus.io/scrape": "true"}, "uid": "u"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "clusterIP": "10.0.0.1",
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}]}
        }))
        .unwrap_or_default();
        let v = ServiceView::from(svc);
        assert_eq!((v.namespace.as_str(), v.name.as_str()), ("default", "web"));
        assert_eq!(v.labels.label("app"), Some("web"));
        assert_eq!(v.annotations.iter().count(), 1);
        assert_eq!(v.type_.as_deref(), Some("NodePort"));
        assert_eq!(v.selector.as_ref().map(|s| s.iter().count()), Some(1));
        assert_eq!(v.ports.len(), 1);
        assert_eq!(v.ports[0].port, 80);
        assert_eq!(v.ports[0].target_port, Some(IntOrString::Int(8080)));
        assert_eq!(v.ports[0].node_port, None);
    }

    #[test]
    fn a_budget_keeps_its_spec() {
        let pdb: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"maxUnavailable": "25%", "selector": {"matchLabels": {"app": "web"}},
                     "unhealthyPodEvictionPolicy": "AlwaysAllow"},
            "status": {"currentHealthy": 3, "desiredHealthy": 2, "disruptionsAllowed": 1, "expectedPods": 3}
        }))
        .unwrap_or_default();
        let v = BudgetView::from(pdb);
        assert_eq!((v.namespace.as_str(), v.name.as_str()), ("shop", "web"));
        assert_eq!(v.max_unavailable, Some(IntOrString::String("25%".into())));
        assert_eq!(v.min_available, None);
        assert_eq!(
            v.unhealthy_pod_eviction_policy.as_deref(),
            Some("AlwaysAllow")
        );
        let labels: BTreeMap<String, String> = [("app".to_owned(), "web".to_owned())].into();
        assert!(v.selector.as_ref().is_some_and(|s| s.matches(&labels)));
        assert!(
            !v.selector
                .as_ref()
                .is_some_and(|s| s.matches(&BTreeMap::new()))
        );
    }
}
