//! HorizontalPodAutoscalers as the rules see them: which workload one scales and within what
//! bounds.
//!
//! A workload that leaves `replicas` to an autoscaler runs at least `minReplicas` pods, so the
//! rules that reason about the replica count (`replicas-ha`, `disruption-budget`,
//! `topology-spread`, `leader-lease`) read the autoscaler's bounds instead of the workload's
//! `replicas`. Only those few fields are kept: the controller holds one [`Autoscaler`] per
//! HPA in the cluster, and the HPA's status (rewritten every sync period) never reaches it.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

use super::workload::identity;

/// An autoscaling/v2 HorizontalPodAutoscaler, reduced to what the rules read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Autoscaler {
    /// Its namespace (`default` when the manifest names none).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The kind of the workload it scales (`scaleTargetRef.kind`), as written.
    pub target_kind: String,
    /// The name of the workload it scales (`scaleTargetRef.name`).
    pub target_name: String,
    /// `minReplicas` (Kubernetes defaults it to 1).
    pub min_replicas: i32,
    /// `maxReplicas`.
    pub max_replicas: i32,
}

impl From<HorizontalPodAutoscaler> for Autoscaler {
    fn from(hpa: HorizontalPodAutoscaler) -> Self {
        let (namespace, name) = identity(&hpa.metadata);
        let spec = hpa.spec.unwrap_or_default();
        Autoscaler {
            namespace,
            name,
            target_kind: spec.scale_target_ref.kind,
            target_name: spec.scale_target_ref.name,
            min_replicas: spec.min_replicas.unwrap_or(1),
            max_replicas: spec.max_replicas,
        }
    }
}

impl From<k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler> for Autoscaler {
    /// autoscaling/v1 is still served and common in charts; its scaling fields are v2's.
    fn from(hpa: k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler) -> Self {
        let (namespace, name) = identity(&hpa.metadata);
        let spec = hpa.spec.unwrap_or_default();
        Autoscaler {
            namespace,
            name,
            target_kind: spec.scale_target_ref.kind,
            target_name: spec.scale_target_ref.name,
            min_replicas: spec.min_replicas.unwrap_or(1),
            max_replicas: spec.max_replicas,
        }
    }
}

/// The fewest and most pods the workload runs with `autoscalers` scaling it: the lowest
/// `minReplicas` and the highest `maxReplicas` (with several autoscalers, each may win).
pub fn bounds(autoscalers: &[&Autoscaler]) -> Option<(i32, i32)> {
    let min = autoscalers.iter().map(|a| a.min_replicas).min()?;
    let max = autoscalers.iter().map(|a| a.max_replicas).max()?;
    Some((min, max.max(min)))
}

/// The autoscalers' names, quoted and comma-separated, for messages.
pub fn names(autoscalers: &[&Autoscaler]) -> String {
    autoscalers
        .iter()
        .map(|a| format!("\"{}\"", a.name))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa(yaml: &str) -> Autoscaler {
        let h: HorizontalPodAutoscaler =
            serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("bad test HPA: {e}"));
        h.into()
    }

    #[test]
    fn min_replicas_defaults_to_one_and_status_is_not_kept() {
        let a = hpa(
            "metadata: {name: web}\nspec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}, maxReplicas: 5}\nstatus: {currentReplicas: 4, desiredReplicas: 4}\n",
        );
        assert_eq!(
            a,
            Autoscaler {
                namespace: "default".into(),
                name: "web".into(),
                target_kind: "Deployment".into(),
                target_name: "web".into(),
                min_replicas: 1,
                max_replicas: 5,
            }
        );
    }

    #[test]
    fn bounds_take_the_lowest_minimum_and_the_highest_maximum() {
        let a = hpa(
            "metadata: {name: a, namespace: n}\nspec: {scaleTargetRef: {kind: Deployment, name: w}, minReplicas: 3, maxReplicas: 4}\n",
        );
        let b = hpa(
            "metadata: {name: b, namespace: n}\nspec: {scaleTargetRef: {kind: Deployment, name: w}, minReplicas: 2, maxReplicas: 9}\n",
        );
        assert_eq!(bounds(&[&a, &b]), Some((2, 9)));
        assert_eq!(bounds(&[]), None);
        assert_eq!(names(&[&a, &b]), "\"a\", \"b\"");
        // A maxReplicas below minReplicas (rejected by the API server, possible in a file)
        // never makes the maximum smaller than the minimum.
        let odd = hpa(
            "metadata: {name: o}\nspec: {scaleTargetRef: {kind: Deployment, name: w}, minReplicas: 3, maxReplicas: 1}\n",
        );
        assert_eq!(bounds(&[&odd]), Some((3, 3)));
    }
}
