//! Decoding of Kubernetes objects from untyped JSON into what the engine understands.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::autoscaler::Autoscaler;
use super::context::JobRun;
use super::monitoring::{PodMonitor, ServiceMonitor};
use super::service::{BudgetView, ServiceView};
use super::workload::judged_at_owner;
use super::{Context, Workload};
use crate::api::{ProductionPolicy, WorkloadKind};
use crate::error::Categorized;

/// An object the engine knows what to do with.
#[derive(Debug)]
pub enum Object {
    /// A workload to check.
    Workload(Box<Workload>),
    /// A policy to apply.
    Policy(Box<ProductionPolicy>),
    /// A Service.
    Service(Arc<ServiceView>),
    /// A PodDisruptionBudget.
    Pdb(Arc<BudgetView>),
    /// A NetworkPolicy.
    NetworkPolicy(Arc<NetworkPolicy>),
    /// A ServiceMonitor.
    ServiceMonitor(Arc<ServiceMonitor>),
    /// A PodMonitor.
    PodMonitor(Arc<PodMonitor>),
    /// A Lease.
    Lease(Arc<Lease>),
    /// A HorizontalPodAutoscaler (autoscaling/v2, or v1 whose scaling fields are the same).
    Autoscaler(Arc<Autoscaler>),
    /// A Namespace.
    Namespace(Box<Namespace>),
    /// A Job a CronJob controls: a run `cronjob-health` reads, not a workload of its own.
    JobRun(Arc<JobRun>),
    /// A workload judged at its controller (see [`judged_at_owner`]: a Pod with any
    /// controller, a ReplicaSet of a Deployment): the controller, the webhook and `audit` all
    /// leave it to its owner.
    Controlled {
        /// Its kind.
        kind: WorkloadKind,
    },
    /// Some other object (a ConfigMap, a Role…): not checked, not an error.
    Other {
        /// As written, so a report can name what it skipped.
        api_version: String,
        /// As written.
        kind: String,
    },
}

/// Why an object could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The document is not a mapping.
    #[error("document is not a Kubernetes object (expected a mapping with apiVersion and kind)")]
    NotAnObject,
    /// The document has no `kind`.
    #[error("document has no `kind`")]
    MissingKind,
    /// The document has no `apiVersion`.
    #[error("{kind} has no `apiVersion`")]
    MissingApiVersion {
        /// The document's `kind`, to name it in the message.
        kind: String,
    },
    /// A known kind with an apiVersion prodready does not understand.
    #[error(
        "unsupported apiVersion `{api_version}` for kind {kind} (expected {expected}); \
         convert it with `kubectl convert` or update the manifest"
    )]
    UnsupportedApiVersion {
        /// A kind prodready reads (a workload or a context object).
        kind: String,
        /// As written (e.g. a removed `apps/v1beta1`).
        api_version: String,
        /// The one version prodready reads that kind at.
        expected: &'static str,
    },
    /// A kind at an API version Kubernetes has removed: the API server refuses it, so a
    /// manifest that still uses it cannot be deployed (and must never pass in silence).
    #[error("{kind} {api_version} was removed in Kubernetes {removed_in}; {advice}")]
    RemovedApiVersion {
        /// As written.
        kind: String,
        /// As written (e.g. `extensions/v1beta1`).
        api_version: String,
        /// The Kubernetes release that stopped serving it.
        removed_in: &'static str,
        /// What to do instead.
        advice: String,
    },
    /// A field has the wrong type or shape.
    #[error("invalid {kind}: {message}")]
    Invalid {
        /// The document's `kind`, to name it in the message.
        kind: String,
        /// What serde said.
        message: String,
    },
}

/// A manifest document before decoding: a `serde_json::Value` (JSON input, the API server,
/// the full YAML parser) or the fast YAML reader's tree. Both decode through [`decode`].
pub trait Manifest<'de>: Deserializer<'de> + Sized {
    /// Whether the document is a mapping.
    fn is_mapping(&self) -> bool;
    /// A top-level string field (`kind`, `apiVersion`); `None` when absent or not a string.
    fn top_str(&self, key: &str) -> Option<&str>;
    /// Whether a top-level field is present.
    fn has(&self, key: &str) -> bool;
    /// Takes the `items` sequence out (an absent or non-sequence `items` is empty).
    fn take_items(&mut self) -> Vec<Self>;
}

impl<'de> Manifest<'de> for Value {
    fn is_mapping(&self) -> bool {
        self.is_object()
    }

    fn top_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn take_items(&mut self) -> Vec<Self> {
        match self.as_object_mut().and_then(|m| m.remove("items")) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        }
    }
}

/// Decodes a typed object. `locate` tracks the path of the field being read, so that an
/// error names it (`spec.replicas: invalid type…`); it costs an allocation per field, so it is
/// used only to explain an error already found.
fn typed<'de, T: Deserialize<'de>, M: Deserializer<'de>>(
    kind: &str,
    doc: M,
    locate: bool,
) -> Result<T, DecodeError> {
    if locate {
        return serde_path_to_error::deserialize(doc).map_err(|e| DecodeError::Invalid {
            kind: kind.to_owned(),
            message: format!("{}: {}", e.path(), e.inner()),
        });
    }
    T::deserialize(doc).map_err(|e| DecodeError::Invalid {
        kind: kind.to_owned(),
        message: e.to_string(),
    })
}

/// The workload, or [`Object::Controlled`] when [`judged_at_owner`] says its controller is
/// judged in its place: the one question the controller and the webhook ask too.
fn on_its_own<T>(kind: WorkloadKind, obj: T) -> Object
where
    T: k8s_openapi::Metadata<Ty = ObjectMeta> + Into<Workload>,
{
    if judged_at_owner(kind, obj.metadata().owner_references.as_deref()) {
        Object::Controlled { kind }
    } else {
        Object::Workload(Box::new(obj.into()))
    }
}

/// The apiVersion prodready reads `kind` at, for the kinds it reads (workloads, the objects
/// of the cross-object context, policies).
pub fn read_at(kind: &str) -> Option<&'static str> {
    if let Some(workload) = WorkloadKind::parse(kind) {
        return Some(workload.api_version());
    }
    Some(match kind {
        "Service" | "Namespace" => "v1",
        "PodDisruptionBudget" => "policy/v1",
        "NetworkPolicy" => "networking.k8s.io/v1",
        "Lease" => "coordination.k8s.io/v1",
        "HorizontalPodAutoscaler" => "autoscaling/v2",
        "ServiceMonitor" | "PodMonitor" => "monitoring.coreos.com/v1",
        "ProductionPolicy" => "prodready.dev/v1alpha1",
        _ => return None,
    })
}

/// Decodes one object. `kind: List` is not handled here (see [`list_items`]).
pub fn decode<'de, M: Manifest<'de>>(doc: M) -> Result<Object, DecodeError> {
    decode_with(doc, false)
}

/// [`decode`], naming the path of the field in an [`DecodeError::Invalid`] error: for
/// decoding again a document [`decode`] refused, to say where it is wrong.
pub fn decode_locating<'de, M: Manifest<'de>>(doc: M) -> Result<Object, DecodeError> {
    decode_with(doc, true)
}

fn decode_with<'de, M: Manifest<'de>>(doc: M, locate: bool) -> Result<Object, DecodeError> {
    if !doc.is_mapping() {
        return Err(DecodeError::NotAnObject);
    }
    let kind = match doc.top_str("kind") {
        Some(k) if !k.is_empty() => k.to_owned(),
        _ => return Err(DecodeError::MissingKind),
    };
    let api_version = match doc.top_str("apiVersion") {
        Some(v) if !v.is_empty() => v.to_owned(),
        _ => return Err(DecodeError::MissingApiVersion { kind }),
    };
    if let Some((removed_in, advice)) = removed_api(&api_version, &kind) {
        return Err(DecodeError::RemovedApiVersion {
            kind,
            api_version,
            removed_in,
            advice,
        });
    }
    let Some(expected) = read_at(&kind) else {
        return Ok(Object::Other { api_version, kind });
    };
    // autoscaling/v1 is still served and common in charts; the fields the rules read
    // (scaleTargetRef, minReplicas, maxReplicas) are the same as in v2.
    let hpa_v1 = kind == "HorizontalPodAutoscaler" && api_version == "autoscaling/v1";
    if api_version != expected && !hpa_v1 {
        // Some groups share kind names with unrelated APIs; only flag our own groups' kinds.
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let expected_group = expected.rsplit_once('/').map_or("", |(g, _)| g);
        if group != expected_group {
            return Ok(Object::Other { api_version, kind });
        }
        return Err(DecodeError::UnsupportedApiVersion {
            kind,
            api_version,
            expected,
        });
    }
    let k = kind.as_str();
    Ok(match k {
        "Deployment" => {
            let d = typed::<Deployment, _>(k, doc, locate)?;
            on_its_own(WorkloadKind::Deployment, d)
        }
        "StatefulSet" => {
            let s = typed::<StatefulSet, _>(k, doc, locate)?;
            on_its_own(WorkloadKind::StatefulSet, s)
        }
        "DaemonSet" => {
            let d = typed::<DaemonSet, _>(k, doc, locate)?;
            on_its_own(WorkloadKind::DaemonSet, d)
        }
        "ReplicaSet" => {
            let rs = typed::<ReplicaSet, _>(k, doc, locate)?;
            on_its_own(WorkloadKind::ReplicaSet, rs)
        }
        "Job" => {
            let job = typed::<Job, _>(k, doc, locate)?;
            match JobRun::from_job(&job) {
                Some(run) => Object::JobRun(Arc::new(run)),
                None => Object::Workload(Box::new(job.into())),
            }
        }
        "CronJob" => {
            let c = typed::<CronJob, _>(k, doc, locate)?;
            on_its_own(WorkloadKind::CronJob, c)
        }
        "Pod" => {
            let pod = typed::<Pod, _>(k, doc, locate)?;
            on_its_own(WorkloadKind::Pod, pod)
        }
        "Service" => Object::Service(Arc::new(typed::<Service, _>(k, doc, locate)?.into())),
        "PodDisruptionBudget" => Object::Pdb(Arc::new(
            typed::<PodDisruptionBudget, _>(k, doc, locate)?.into(),
        )),
        "NetworkPolicy" => Object::NetworkPolicy(Arc::new(typed(k, doc, locate)?)),
        "Lease" => Object::Lease(Arc::new(typed(k, doc, locate)?)),
        "HorizontalPodAutoscaler" if hpa_v1 => Object::Autoscaler(Arc::new(
            typed::<k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler, _>(k, doc, locate)?
                .into(),
        )),
        "HorizontalPodAutoscaler" => Object::Autoscaler(Arc::new(
            typed::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler, _>(k, doc, locate)?
                .into(),
        )),
        "ServiceMonitor" => Object::ServiceMonitor(Arc::new(typed(k, doc, locate)?)),
        "PodMonitor" => Object::PodMonitor(Arc::new(typed(k, doc, locate)?)),
        "Namespace" => Object::Namespace(Box::new(typed(k, doc, locate)?)),
        _ => Object::Policy(Box::new(typed(k, doc, locate)?)),
    })
}

/// API versions Kubernetes no longer serves, for the kinds manifests commonly hold (the
/// Kubernetes deprecated API migration guide): (apiVersion, kinds, the release that removed
/// it, the version to use — empty where the API has no successor).
const REMOVED_APIS: &[(&str, &[&str], &str, &str)] = &[
    (
        "extensions/v1beta1",
        &["Deployment", "DaemonSet", "ReplicaSet"],
        "1.16",
        "apps/v1",
    ),
    (
        "extensions/v1beta1",
        &["NetworkPolicy"],
        "1.16",
        "networking.k8s.io/v1",
    ),
    (
        "extensions/v1beta1",
        &["Ingress"],
        "1.22",
        "networking.k8s.io/v1",
    ),
    ("extensions/v1beta1", &["PodSecurityPolicy"], "1.25", ""),
    (
        "apps/v1beta1",
        &["Deployment", "StatefulSet"],
        "1.16",
        "apps/v1",
    ),
    (
        "apps/v1beta2",
        &["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"],
        "1.16",
        "apps/v1",
    ),
    ("batch/v1beta1", &["CronJob"], "1.25", "batch/v1"),
    ("batch/v2alpha1", &["CronJob"], "1.21", "batch/v1"),
    (
        "policy/v1beta1",
        &["PodDisruptionBudget"],
        "1.25",
        "policy/v1",
    ),
    ("policy/v1beta1", &["PodSecurityPolicy"], "1.25", ""),
    (
        "autoscaling/v2beta1",
        &["HorizontalPodAutoscaler"],
        "1.25",
        "autoscaling/v2",
    ),
    (
        "autoscaling/v2beta2",
        &["HorizontalPodAutoscaler"],
        "1.26",
        "autoscaling/v2",
    ),
    (
        "coordination.k8s.io/v1beta1",
        &["Lease"],
        "1.22",
        "coordination.k8s.io/v1",
    ),
    (
        "networking.k8s.io/v1beta1",
        &["Ingress", "IngressClass"],
        "1.22",
        "networking.k8s.io/v1",
    ),
    (
        "rbac.authorization.k8s.io/v1beta1",
        &["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"],
        "1.22",
        "rbac.authorization.k8s.io/v1",
    ),
    (
        "apiextensions.k8s.io/v1beta1",
        &["CustomResourceDefinition"],
        "1.22",
        "apiextensions.k8s.io/v1",
    ),
    (
        "admissionregistration.k8s.io/v1beta1",
        &[
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ],
        "1.22",
        "admissionregistration.k8s.io/v1",
    ),
    (
        "scheduling.k8s.io/v1beta1",
        &["PriorityClass"],
        "1.22",
        "scheduling.k8s.io/v1",
    ),
    (
        "storage.k8s.io/v1beta1",
        &["CSIDriver", "CSINode", "StorageClass", "VolumeAttachment"],
        "1.22",
        "storage.k8s.io/v1",
    ),
    (
        "discovery.k8s.io/v1beta1",
        &["EndpointSlice"],
        "1.25",
        "discovery.k8s.io/v1",
    ),
    (
        "node.k8s.io/v1beta1",
        &["RuntimeClass"],
        "1.25",
        "node.k8s.io/v1",
    ),
];

/// When `kind` at `api_version` is a removed API: the release that removed it and what to
/// do instead.
fn removed_api(api_version: &str, kind: &str) -> Option<(&'static str, String)> {
    REMOVED_APIS
        .iter()
        .find(|(v, kinds, _, _)| *v == api_version && kinds.contains(&kind))
        .map(|(_, _, removed_in, replacement)| {
            let advice = if replacement.is_empty() {
                "it has no successor: enforce pod security with Pod Security Admission \
                 (namespace labels pod-security.kubernetes.io/enforce), and remove it"
                    .to_owned()
            } else {
                format!(
                    "use {replacement} (`kubectl convert` or an edit of apiVersion, plus the \
                     fields the new version requires)"
                )
            };
            (*removed_in, advice)
        })
}

/// The items of a `kind: List` (or `*List`) document, or `None` when it is not a list.
pub fn list_items<'de, M: Manifest<'de>>(doc: &mut M) -> Option<Vec<M>> {
    let is_list = doc
        .top_str("kind")
        .is_some_and(|k| k == "List" || (k.ends_with("List") && doc.has("items")));
    is_list.then(|| doc.take_items())
}

impl Context {
    /// Adds a context object; returns it back if it is not a context object.
    pub fn add_object(&mut self, obj: Object) -> Option<Object> {
        match obj {
            Object::Service(s) => self.add_service(s),
            Object::Pdb(p) => self.add_pdb(p),
            Object::NetworkPolicy(n) => self.add_network_policy(n),
            Object::ServiceMonitor(m) => self.add_service_monitor(m),
            Object::PodMonitor(m) => self.add_pod_monitor(m),
            Object::Lease(l) => self.add_lease(l),
            Object::Autoscaler(a) => self.add_autoscaler(a),
            Object::JobRun(r) => self.add_job_run(r),
            Object::Namespace(ns) => {
                let ns = *ns;
                if let Some(name) = ns.metadata.name {
                    self.add_namespace(name, ns.metadata.labels.unwrap_or_default());
                }
            }
            other => return Some(other),
        }
        None
    }
}

impl Categorized for DecodeError {
    fn category(&self) -> &'static str {
        match self {
            DecodeError::NotAnObject => "not_an_object",
            DecodeError::MissingKind => "missing_kind",
            DecodeError::MissingApiVersion { .. } => "missing_api_version",
            DecodeError::UnsupportedApiVersion { .. } => "unsupported_api_version",
            DecodeError::RemovedApiVersion { .. } => "removed_api_version",
            DecodeError::Invalid { .. } => "invalid",
        }
    }
}
