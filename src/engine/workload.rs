//! The normalized view of a workload that every rule reads.
//!
//! Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob and bare Pod all end in a
//! pod template; a [`Workload`] keeps that template plus the few controller-level fields the
//! rules need (replicas, strategy, history, CronJob scheduling). Conversions take the
//! object by value so the pod spec is moved, never copied.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use crate::api::{ANNOTATION_PREFIX, WorkloadKind, workload_key};

/// Annotation that declares a workload runs scheduled work and must be single-runner.
pub const ANNOTATION_SINGLE_RUNNER: &str = "prodready.dev/single-runner";
/// Annotation that names the Lease a single-runner workload holds.
pub const ANNOTATION_LEASE: &str = "prodready.dev/lease";
/// Annotation listing rule ids (or `*`) a workload exempts itself from.
pub const ANNOTATION_EXEMPT: &str = "prodready.dev/exempt";
/// Annotation giving the reason of an annotation exemption (required for it to apply).
pub const ANNOTATION_EXEMPT_REASON: &str = "prodready.dev/exempt-reason";
/// Annotation giving the RFC 3339 instant an annotation exemption expires.
pub const ANNOTATION_EXEMPT_UNTIL: &str = "prodready.dev/exempt-until";

/// The annotation `kubectl apply` (client-side) leaves behind: the manifest as last applied.
pub const ANNOTATION_LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The namespace of a workload that does not name one.
pub const DEFAULT_NAMESPACE: &str = "default";

/// How a CronJob schedules its runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CronSchedule {
    /// The cron expression as written (`cronjob-health` parses it).
    pub schedule: String,
    /// The IANA time zone the schedule is read in (`spec.timeZone`); absent means the
    /// kube-controller-manager's local time zone, UTC in practice.
    pub time_zone: Option<String>,
    /// `Allow`, `Forbid` or `Replace`; absent means Kubernetes' default, `Allow`.
    pub concurrency_policy: Option<String>,
    /// How late a missed run may still start.
    pub starting_deadline_seconds: Option<i64>,
    /// Whether the CronJob is suspended.
    pub suspend: bool,
    /// How many failed Jobs the CronJob keeps (`failedJobsHistoryLimit`; Kubernetes
    /// defaults it to 1).
    pub failed_jobs_history_limit: Option<i32>,
    /// When the CronJob was created (`metadata.creationTimestamp`), if known.
    pub created: Option<Timestamp>,
    /// What the CronJob controller last recorded, when the object carries a `status` (objects
    /// read from a cluster do; manifests do not).
    pub status: Option<CronStatus>,
}

/// The CronJob controller's record of a CronJob's runs (`status`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CronStatus {
    /// When a Job was last scheduled.
    pub last_schedule: Option<Timestamp>,
    /// When a Job last completed successfully.
    pub last_successful: Option<Timestamp>,
    /// The names of the Jobs the controller counts as running.
    pub active: Vec<String>,
}

/// Rollout settings of Deployments, StatefulSets and DaemonSets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rollout {
    /// `RollingUpdate`, `Recreate` (Deployment) or `OnDelete` (StatefulSet, DaemonSet);
    /// absent means the kind's default, `RollingUpdate`.
    pub strategy: Option<String>,
    /// `maxUnavailable` of a rolling update, if given.
    pub max_unavailable: Option<IntOrString>,
    /// `revisionHistoryLimit`, if given (Kubernetes defaults it to 10).
    pub revision_history_limit: Option<i32>,
}

/// A workload as the rules see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// The workload's kind.
    pub kind: WorkloadKind,
    /// The namespace (`default` when the manifest names none).
    pub namespace: String,
    /// The name (for `generateName` objects, the prefix).
    pub name: String,
    /// The object's labels.
    pub labels: BTreeMap<String, String>,
    /// The object's annotations.
    pub annotations: BTreeMap<String, String>,
    /// Declared replicas for Deployment, StatefulSet and ReplicaSet (1 when unset); `None`
    /// for the other kinds.
    pub replicas: Option<i32>,
    /// Whether the manifest declares `spec.replicas` (see [`replicas_declared`]); `None` when
    /// that cannot be told (a live object the API server defaulted, with no record of what
    /// was applied) and for kinds without replicas.
    pub replicas_declared: Option<bool>,
    /// The controller's pod selector, where the kind has one.
    pub selector: Option<LabelSelector>,
    /// Rollout settings, where the kind has them.
    pub rollout: Option<Rollout>,
    /// CronJob scheduling, for CronJobs.
    pub cron: Option<CronSchedule>,
    /// Labels of the pods this workload creates.
    pub pod_labels: BTreeMap<String, String>,
    /// Annotations of the pods this workload creates.
    pub pod_annotations: BTreeMap<String, String>,
    /// The pod spec (an empty spec when the manifest has none).
    pub pod: PodSpec,
}

/// The role a container plays in its pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerRole {
    /// A regular container.
    Main,
    /// An init container that runs to completion before the main containers.
    Init,
    /// A native sidecar: an init container with `restartPolicy: Always`.
    Sidecar,
}

/// A container together with its role.
#[derive(Clone, Copy, Debug)]
pub struct ContainerRef<'a> {
    /// Borrowed from the workload's pod template.
    pub container: &'a Container,
    /// Regular, init, or native sidecar (an init container with `restartPolicy: Always`).
    pub role: ContainerRole,
}

impl<'a> ContainerRef<'a> {
    /// The container's name.
    pub fn name(&self) -> &'a str {
        &self.container.name
    }

    /// Whether the container runs for the pod's whole life (main containers and sidecars).
    pub fn is_long_lived(&self) -> bool {
        matches!(self.role, ContainerRole::Main | ContainerRole::Sidecar)
    }
}

/// Whether an object of `kind` with these owner references is judged at its owner rather
/// than on its own. The controller, `audit` and the webhook all ask this, so they judge the
/// same objects:
///
/// - a Pod with any controller (a ReplicaSet, StatefulSet, DaemonSet or Job, judged in its
///   place; an operator that creates Pods itself keeps them to its own contract);
/// - a ReplicaSet controlled by a Deployment, a Job controlled by a CronJob (its runs are
///   read by `cronjob-health` instead);
/// - never a Deployment, StatefulSet, DaemonSet or CronJob, whatever controls it: no kind
///   prodready judges controls them, and one created by another operator (a custom
///   resource's controller) runs production traffic all the same, so it is judged on its
///   own. An admin who leaves such workloads to their operator excludes them with
///   `match` (`selector`, `namespaces`) or an exemption.
///
/// A ReplicaSet or Job whose controller is another kind (an Argo Rollout, a queueing
/// operator) is judged on its own for the same reason.
pub fn judged_at_owner(kind: WorkloadKind, owners: Option<&[OwnerReference]>) -> bool {
    let mut controllers = owners
        .unwrap_or_default()
        .iter()
        .filter(|o| o.controller == Some(true));
    match kind {
        WorkloadKind::Pod => controllers.next().is_some(),
        WorkloadKind::ReplicaSet => controllers.any(|o| o.kind == "Deployment"),
        WorkloadKind::Job => controllers.any(|o| o.kind == "CronJob"),
        WorkloadKind::Deployment
        | WorkloadKind::StatefulSet
        | WorkloadKind::DaemonSet
        | WorkloadKind::CronJob => false,
    }
}

/// The `(namespace, name)` a workload with this metadata has: `default` when no namespace
/// is named, the `generateName` prefix when no name is.
pub fn identity(meta: &ObjectMeta) -> (String, String) {
    let namespace = meta
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE);
    let name = meta
        .name
        .as_deref()
        .or(meta.generate_name.as_deref())
        .unwrap_or_default();
    (namespace.to_owned(), name.to_owned())
}

/// Whether the manifest behind an object declares `spec.replicas` (`spec_replicas` is the
/// object's own field). The API server defaults `replicas` to 1, so on a live object the field
/// says nothing about the manifest: there the `kubectl apply` record
/// ([`ANNOTATION_LAST_APPLIED`]) answers, and without one the answer is `None`. An object
/// without `uid` or `creationTimestamp` is a manifest, read as written.
pub fn replicas_declared(meta: &ObjectMeta, spec_replicas: Option<i32>) -> Option<bool> {
    let applied = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_LAST_APPLIED))
        .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok());
    if let Some(applied) = applied {
        return Some(
            applied
                .pointer("/spec/replicas")
                .is_some_and(|r| !r.is_null()),
        );
    }
    if meta.uid.is_some() || meta.creation_timestamp.is_some() {
        return None;
    }
    Some(spec_replicas.is_some())
}

impl Workload {
    fn new(kind: WorkloadKind, meta: ObjectMeta) -> Self {
        let (namespace, name) = identity(&meta);
        Workload {
            kind,
            namespace,
            name,
            labels: meta.labels.unwrap_or_default(),
            annotations: meta.annotations.unwrap_or_default(),
            replicas: None,
            replicas_declared: None,
            selector: None,
            rollout: None,
            cron: None,
            pod_labels: BTreeMap::new(),
            pod_annotations: BTreeMap::new(),
            pod: PodSpec::default(),
        }
    }

    fn with_template(mut self, template: PodTemplateSpec) -> Self {
        if let Some(meta) = template.metadata {
            self.pod_labels = meta.labels.unwrap_or_default();
            self.pod_annotations = meta.annotations.unwrap_or_default();
        }
        self.pod = template.spec.unwrap_or_default();
        self
    }

    /// Whether the pods of this workload run until stopped: every kind but Job and CronJob,
    /// and for a bare Pod only with `restartPolicy: Always` (the default).
    pub fn is_long_running(&self) -> bool {
        match self.kind {
            WorkloadKind::Job | WorkloadKind::CronJob => false,
            WorkloadKind::Pod => self.pod.restart_policy.as_deref().unwrap_or("Always") == "Always",
            _ => true,
        }
    }

    /// Every container of the pod: init containers (and native sidecars) first, then the
    /// main containers, in manifest order.
    pub fn containers(&self) -> impl Iterator<Item = ContainerRef<'_>> {
        let init = self
            .pod
            .init_containers
            .iter()
            .flatten()
            .map(|c| ContainerRef {
                container: c,
                role: if c.restart_policy.as_deref() == Some("Always") {
                    ContainerRole::Sidecar
                } else {
                    ContainerRole::Init
                },
            });
        let main = self.pod.containers.iter().map(|c| ContainerRef {
            container: c,
            role: ContainerRole::Main,
        });
        init.chain(main)
    }

    /// The containers that live as long as the pod: main containers and native sidecars.
    pub fn long_lived_containers(&self) -> impl Iterator<Item = ContainerRef<'_>> {
        self.containers().filter(ContainerRef::is_long_lived)
    }

    /// An annotation from the workload or, failing that, from its pod template (so that
    /// annotations work wherever users put them).
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations
            .get(key)
            .or_else(|| self.pod_annotations.get(key))
            .map(String::as_str)
    }

    /// Whether the workload declares itself single-runner (`prodready.dev/single-runner: "true"`).
    pub fn is_single_runner(&self) -> bool {
        self.annotation(ANNOTATION_SINGLE_RUNNER)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }

    /// The Lease a single-runner workload says it holds (`prodready.dev/lease`).
    pub fn lease_name(&self) -> Option<&str> {
        self.annotation(ANNOTATION_LEASE)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// Whether any prodready annotation is present (used to flag typos in reports).
    pub fn has_prodready_annotations(&self) -> bool {
        self.annotations
            .keys()
            .chain(self.pod_annotations.keys())
            .any(|k| k.starts_with(ANNOTATION_PREFIX))
    }

    /// `Kind/namespace/name`, the way reports name a workload.
    pub fn display_name(&self) -> String {
        workload_key(self.kind.as_str(), &self.namespace, &self.name)
    }
}

impl From<Deployment> for Workload {
    fn from(d: Deployment) -> Self {
        let spec = d.spec.unwrap_or_default();
        let declared = replicas_declared(&d.metadata, spec.replicas);
        let mut w = Workload::new(WorkloadKind::Deployment, d.metadata);
        w.replicas = Some(spec.replicas.unwrap_or(1));
        w.replicas_declared = declared;
        w.selector = Some(spec.selector);
        let strategy = spec.strategy.unwrap_or_default();
        w.rollout = Some(Rollout {
            strategy: strategy.type_,
            max_unavailable: strategy.rolling_update.and_then(|r| r.max_unavailable),
            revision_history_limit: spec.revision_history_limit,
        });
        w.with_template(spec.template)
    }
}

impl From<StatefulSet> for Workload {
    fn from(s: StatefulSet) -> Self {
        let spec = s.spec.unwrap_or_default();
        let declared = replicas_declared(&s.metadata, spec.replicas);
        let mut w = Workload::new(WorkloadKind::StatefulSet, s.metadata);
        w.replicas = Some(spec.replicas.unwrap_or(1));
        w.replicas_declared = declared;
        w.selector = Some(spec.selector);
        let strategy = spec.update_strategy.unwrap_or_default();
        w.rollout = Some(Rollout {
            strategy: strategy.type_,
            max_unavailable: strategy.rolling_update.and_then(|r| r.max_unavailable),
            revision_history_limit: spec.revision_history_limit,
        });
        w.with_template(spec.template)
    }
}

impl From<DaemonSet> for Workload {
    fn from(d: DaemonSet) -> Self {
        let mut w = Workload::new(WorkloadKind::DaemonSet, d.metadata);
        let spec = d.spec.unwrap_or_default();
        w.selector = Some(spec.selector);
        let strategy = spec.update_strategy.unwrap_or_default();
        w.rollout = Some(Rollout {
            strategy: strategy.type_,
            max_unavailable: strategy.rolling_update.and_then(|r| r.max_unavailable),
            revision_history_limit: spec.revision_history_limit,
        });
        w.with_template(spec.template)
    }
}

impl From<ReplicaSet> for Workload {
    fn from(r: ReplicaSet) -> Self {
        let spec = r.spec.unwrap_or_default();
        let declared = replicas_declared(&r.metadata, spec.replicas);
        let mut w = Workload::new(WorkloadKind::ReplicaSet, r.metadata);
        w.replicas = Some(spec.replicas.unwrap_or(1));
        w.replicas_declared = declared;
        w.selector = Some(spec.selector);
        match spec.template {
            Some(t) => w.with_template(t),
            None => w,
        }
    }
}

impl From<Job> for Workload {
    fn from(j: Job) -> Self {
        let mut w = Workload::new(WorkloadKind::Job, j.metadata);
        let spec = j.spec.unwrap_or_default();
        w.selector = spec.selector;
        w.with_template(spec.template)
    }
}

impl From<CronJob> for Workload {
    fn from(c: CronJob) -> Self {
        let created = c.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let mut w = Workload::new(WorkloadKind::CronJob, c.metadata);
        let spec = c.spec.unwrap_or_default();
        w.cron = Some(CronSchedule {
            schedule: spec.schedule,
            time_zone: spec.time_zone,
            concurrency_policy: spec.concurrency_policy,
            starting_deadline_seconds: spec.starting_deadline_seconds,
            suspend: spec.suspend.unwrap_or(false),
            failed_jobs_history_limit: spec.failed_jobs_history_limit,
            created,
            status: c.status.map(|s| CronStatus {
                last_schedule: s.last_schedule_time.map(|t| t.0),
                last_successful: s.last_successful_time.map(|t| t.0),
                active: s
                    .active
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|r| r.name)
                    .collect(),
            }),
        });
        let job_spec = spec.job_template.spec.unwrap_or_default();
        w.selector = job_spec.selector;
        w.with_template(job_spec.template)
    }
}

impl From<Pod> for Workload {
    fn from(p: Pod) -> Self {
        let mut w = Workload::new(WorkloadKind::Pod, p.metadata);
        w.pod_labels = w.labels.clone();
        w.pod_annotations = w.annotations.clone();
        w.pod = p.spec.unwrap_or_default();
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(api_version: &str, kind: &str, controller: Option<bool>) -> OwnerReference {
        OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: "o".into(),
            uid: "u".into(),
            controller,
            ..OwnerReference::default()
        }
    }

    #[test]
    fn judged_at_owner_only_where_prodready_judges_the_owner() {
        use WorkloadKind::*;
        let kafka = [owner("kafka.strimzi.io/v1beta2", "Kafka", Some(true))];
        let deployment = [owner("apps/v1", "Deployment", Some(true))];
        let cronjob = [owner("batch/v1", "CronJob", Some(true))];
        let statefulset = [owner("apps/v1", "StatefulSet", Some(true))];
        let loose = [owner("apps/v1", "ReplicaSet", Some(false))];
        // Another operator's workloads are judged on their own, whatever the kind.
        for kind in [Deployment, StatefulSet, DaemonSet, CronJob] {
            assert!(!judged_at_owner(kind, Some(&kafka)), "{kind}");
            assert!(!judged_at_owner(kind, Some(&deployment)), "{kind}");
            assert!(!judged_at_owner(kind, None), "{kind}");
        }
        // A ReplicaSet of a Deployment, a Job of a CronJob: at the owner; of another
        // controller (an Argo Rollout, a queueing operator): on their own.
        assert!(judged_at_owner(ReplicaSet, Some(&deployment)));
        assert!(!judged_at_owner(ReplicaSet, Some(&kafka)));
        assert!(judged_at_owner(Job, Some(&cronjob)));
        assert!(!judged_at_owner(Job, Some(&kafka)));
        // A Pod with any controller is judged at it; an owner that is not the controller
        // does not count.
        assert!(judged_at_owner(Pod, Some(&statefulset)));
        assert!(judged_at_owner(Pod, Some(&kafka)));
        assert!(!judged_at_owner(Pod, Some(&loose)));
        assert!(!judged_at_owner(Pod, None));
        assert!(!judged_at_owner(ReplicaSet, Some(&loose)));
    }
}
