//! The read-only view of the other objects that cross-object rules consult.
//!
//! The `audit` command fills it from the objects in its input; the controller and webhook
//! fill it from their reflector stores. Objects are held in `Arc`s so a context built from a
//! store shares the store's objects instead of copying them. Indexes are per namespace, so a
//! rule looks only at the objects that could concern the workload in front of it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::autoscaler::Autoscaler;
use super::monitoring::{MonitorNamespaceSelector, PodMonitor, ServiceMonitor};
use super::service::{BudgetView, ServiceView};
use super::workload::{DEFAULT_NAMESPACE, Workload};
use crate::api::WorkloadKind;

/// Objects of one kind, indexed by namespace.
#[derive(Clone, Debug)]
pub struct ByNamespace<T>(HashMap<String, Vec<Arc<T>>>);

impl<T> Default for ByNamespace<T> {
    fn default() -> Self {
        ByNamespace(HashMap::new())
    }
}

impl<T> ByNamespace<T> {
    fn insert(&mut self, namespace: String, obj: Arc<T>) {
        self.0.entry(namespace).or_default().push(obj);
    }

    /// The objects in one namespace.
    pub fn get(&self, namespace: &str) -> &[Arc<T>] {
        self.0.get(namespace).map(Vec::as_slice).unwrap_or_default()
    }

    /// How many objects are held.
    pub fn len(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(Vec::is_empty)
    }
}

/// Monitors of one kind: those looking only into their own namespace indexed by it, and the
/// few that look across namespaces kept aside.
#[derive(Clone, Debug)]
pub struct Monitors<T> {
    local: ByNamespace<T>,
    cross: Vec<Arc<T>>,
}

impl<T> Default for Monitors<T> {
    fn default() -> Self {
        Monitors {
            local: ByNamespace::default(),
            cross: Vec::new(),
        }
    }
}

/// Whether a kind of object can be consulted at all.
#[derive(Clone, Debug)]
pub enum Availability<T> {
    /// The objects are known (possibly none).
    Known(T),
    /// They cannot be known; the reason says why (e.g. the CRD is not installed).
    Unavailable(String),
}

impl<T: Default> Default for Availability<T> {
    fn default() -> Self {
        Availability::Known(T::default())
    }
}

/// What a Lease lookup found.
#[derive(Clone, Copy, Debug)]
pub enum LeaseLookup<'a> {
    /// The Lease exists.
    Found(&'a Lease),
    /// No Lease of that name exists in that namespace.
    Missing,
    /// Leases cannot be read here; the reason says why.
    Unavailable(&'a str),
}

/// How a run of a CronJob stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Not finished yet (running, or created and not started).
    Running,
    /// Finished with the `Complete` condition.
    Succeeded,
    /// Finished with the `Failed` condition.
    Failed,
}

/// One run of a CronJob: a Job the CronJob controls, reduced to what `cronjob-health` reads
/// (a few dozen bytes instead of the whole Job).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRun {
    /// The Job's namespace.
    pub namespace: String,
    /// The CronJob that controls it.
    pub cronjob: String,
    /// The Job's name.
    pub name: String,
    /// When the Job was created (runs are ordered by it).
    pub created: Option<Timestamp>,
    /// Running, succeeded or failed.
    pub state: RunState,
    /// When it finished: `completionTime`, or the finishing condition's transition time.
    pub finished: Option<Timestamp>,
}

impl JobRun {
    /// The run a Job records, if a CronJob controls it (`None` for a standalone Job).
    pub fn from_job(job: &Job) -> Option<JobRun> {
        let owner = job
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true) && o.kind == "CronJob")?;
        let status = job.status.as_ref();
        let condition = |type_: &str| {
            status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .find(|c| c.type_ == type_ && c.status == "True")
        };
        let (state, finished_at) = if let Some(c) = condition("Complete") {
            (RunState::Succeeded, c.last_transition_time.as_ref())
        } else if let Some(c) = condition("Failed") {
            (RunState::Failed, c.last_transition_time.as_ref())
        } else {
            (RunState::Running, None)
        };
        let finished = status
            .and_then(|s| s.completion_time.as_ref())
            .filter(|_| state == RunState::Succeeded)
            .or(finished_at)
            .map(|t| t.0);
        Some(JobRun {
            namespace: ns_of(job),
            cronjob: owner.name.clone(),
            name: job.metadata.name.clone().unwrap_or_default(),
            created: job.metadata.creation_timestamp.as_ref().map(|t| t.0),
            state,
            finished,
        })
    }
}

/// The reason leases are unavailable when auditing manifests.
pub const LEASES_OFFLINE: &str =
    "Lease renewal can only be verified against a live cluster (prodready run), not offline";

/// The read-only context of cross-object rules.
#[derive(Clone, Debug)]
pub struct Context {
    services: Arc<ByNamespace<ServiceView>>,
    pdbs: Arc<ByNamespace<BudgetView>>,
    network_policies: Arc<ByNamespace<NetworkPolicy>>,
    autoscalers: Arc<ByNamespace<Autoscaler>>,
    service_monitors: Availability<Monitors<ServiceMonitor>>,
    pod_monitors: Availability<Monitors<PodMonitor>>,
    /// Whether ServiceMonitors are unavailable because their CRD is not installed (then none
    /// exist), rather than for a reason that hides objects that may exist.
    service_monitors_absent: bool,
    /// The same for PodMonitors.
    pod_monitors_absent: bool,
    leases: Arc<Availability<Leases>>,
    namespaces: Arc<HashMap<String, BTreeMap<String, String>>>,
    job_runs: Arc<JobRuns>,
}

/// Leases by (namespace, name).
type Leases = HashMap<(String, String), Arc<Lease>>;

/// The runs of each CronJob, by (namespace, name).
type JobRuns = HashMap<(String, String), Vec<Arc<JobRun>>>;

/// A part of the context that [`Context::clear`] empties, so a controller can rebuild only the
/// parts whose objects changed (the others stay shared with the previous context).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Services.
    Services,
    /// PodDisruptionBudgets.
    Pdbs,
    /// NetworkPolicies.
    NetworkPolicies,
    /// HorizontalPodAutoscalers.
    Autoscalers,
    /// Leases (left consultable).
    Leases,
    /// The runs of CronJobs.
    JobRuns,
    /// Namespaces' labels.
    Namespaces,
}

impl Default for Context {
    /// An empty context in which leases are unavailable (the offline default).
    fn default() -> Self {
        Context {
            services: Arc::default(),
            pdbs: Arc::default(),
            network_policies: Arc::default(),
            autoscalers: Arc::default(),
            service_monitors: Availability::default(),
            pod_monitors: Availability::default(),
            service_monitors_absent: false,
            pod_monitors_absent: false,
            leases: Arc::new(Availability::Unavailable(LEASES_OFFLINE.to_owned())),
            namespaces: Arc::default(),
            job_runs: Arc::default(),
        }
    }
}

fn ns_of<K: ResourceExt>(obj: &K) -> String {
    obj.namespace()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
}

impl Context {
    /// Adds a Service.
    pub fn add_service(&mut self, svc: Arc<ServiceView>) {
        Arc::make_mut(&mut self.services).insert(svc.namespace.clone(), svc);
    }

    /// Adds a PodDisruptionBudget.
    pub fn add_pdb(&mut self, pdb: Arc<BudgetView>) {
        Arc::make_mut(&mut self.pdbs).insert(pdb.namespace.clone(), pdb);
    }

    /// Adds a NetworkPolicy.
    pub fn add_network_policy(&mut self, np: Arc<NetworkPolicy>) {
        Arc::make_mut(&mut self.network_policies).insert(ns_of(np.as_ref()), np);
    }

    /// Adds a HorizontalPodAutoscaler.
    pub fn add_autoscaler(&mut self, hpa: Arc<Autoscaler>) {
        Arc::make_mut(&mut self.autoscalers).insert(hpa.namespace.clone(), hpa);
    }

    /// Adds a ServiceMonitor (ignored while ServiceMonitors are unavailable).
    pub fn add_service_monitor(&mut self, sm: Arc<ServiceMonitor>) {
        if let Availability::Known(m) = &mut self.service_monitors {
            let ns = ns_of(sm.as_ref());
            if is_local(sm.spec.namespace_selector.as_ref()) {
                m.local.insert(ns, sm);
            } else {
                m.cross.push(sm);
            }
        }
    }

    /// Adds a PodMonitor (ignored while PodMonitors are unavailable).
    pub fn add_pod_monitor(&mut self, pm: Arc<PodMonitor>) {
        if let Availability::Known(m) = &mut self.pod_monitors {
            let ns = ns_of(pm.as_ref());
            if is_local(pm.spec.namespace_selector.as_ref()) {
                m.local.insert(ns, pm);
            } else {
                m.cross.push(pm);
            }
        }
    }

    /// Makes ServiceMonitors consultable again with none known yet (their CRD is installed).
    pub fn set_service_monitors_known(&mut self) {
        self.service_monitors = Availability::default();
        self.service_monitors_absent = false;
    }

    /// Makes PodMonitors consultable again with none known yet (their CRD is installed).
    pub fn set_pod_monitors_known(&mut self) {
        self.pod_monitors = Availability::default();
        self.pod_monitors_absent = false;
    }

    /// Marks ServiceMonitors as impossible to consult (e.g. CRD not installed).
    pub fn set_service_monitors_unavailable(&mut self, reason: impl Into<String>) {
        self.service_monitors = Availability::Unavailable(reason.into());
        self.service_monitors_absent = false;
    }

    /// Marks PodMonitors as impossible to consult (e.g. CRD not installed).
    pub fn set_pod_monitors_unavailable(&mut self, reason: impl Into<String>) {
        self.pod_monitors = Availability::Unavailable(reason.into());
        self.pod_monitors_absent = false;
    }

    /// Marks ServiceMonitors as not installed: no ServiceMonitor can exist. Rules may decide
    /// from PodMonitors alone when their CRD is installed.
    pub fn set_service_monitors_absent(&mut self, reason: impl Into<String>) {
        self.service_monitors = Availability::Unavailable(reason.into());
        self.service_monitors_absent = true;
    }

    /// Marks PodMonitors as not installed: no PodMonitor can exist.
    pub fn set_pod_monitors_absent(&mut self, reason: impl Into<String>) {
        self.pod_monitors = Availability::Unavailable(reason.into());
        self.pod_monitors_absent = true;
    }

    /// Whether ServiceMonitors are unavailable only because their CRD is not installed.
    pub fn service_monitors_absent(&self) -> bool {
        self.service_monitors_absent
            && matches!(self.service_monitors, Availability::Unavailable(_))
    }

    /// Whether PodMonitors are unavailable only because their CRD is not installed.
    pub fn pod_monitors_absent(&self) -> bool {
        self.pod_monitors_absent && matches!(self.pod_monitors, Availability::Unavailable(_))
    }

    /// Makes Leases consultable (a live cluster); until called, lookups are unavailable.
    pub fn set_leases_known(&mut self) {
        if matches!(*self.leases, Availability::Unavailable(_)) {
            self.leases = Arc::new(Availability::Known(HashMap::new()));
        }
    }

    /// Adds a Lease (makes Leases consultable).
    pub fn add_lease(&mut self, lease: Arc<Lease>) {
        self.set_leases_known();
        if let Availability::Known(m) = Arc::make_mut(&mut self.leases) {
            m.insert((ns_of(lease.as_ref()), lease.name_any()), lease);
        }
    }

    /// Empties one part (Leases stay consultable), to be filled again with the `add_` method
    /// of its kind.
    pub fn clear(&mut self, part: Part) {
        match part {
            Part::Services => self.services = Arc::default(),
            Part::Pdbs => self.pdbs = Arc::default(),
            Part::NetworkPolicies => self.network_policies = Arc::default(),
            Part::Autoscalers => self.autoscalers = Arc::default(),
            Part::Leases => self.leases = Arc::new(Availability::Known(HashMap::new())),
            Part::JobRuns => self.job_runs = Arc::default(),
            Part::Namespaces => self.namespaces = Arc::default(),
        }
    }

    /// Adds a run of a CronJob.
    pub fn add_job_run(&mut self, run: Arc<JobRun>) {
        Arc::make_mut(&mut self.job_runs)
            .entry((run.namespace.clone(), run.cronjob.clone()))
            .or_default()
            .push(run);
    }

    /// The known runs of a CronJob, oldest first (by creation, then name).
    pub fn job_runs(&self, namespace: &str, cronjob: &str) -> Vec<&JobRun> {
        let mut runs: Vec<&JobRun> = self
            .job_runs
            .get(&(namespace.to_owned(), cronjob.to_owned()))
            .into_iter()
            .flatten()
            .map(AsRef::as_ref)
            .collect();
        runs.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        runs
    }

    /// Records a Namespace's labels (for `match.namespaceSelector`).
    pub fn add_namespace(&mut self, name: String, labels: BTreeMap<String, String>) {
        Arc::make_mut(&mut self.namespaces).insert(name, labels);
    }

    /// Services in a namespace.
    pub fn services(&self, namespace: &str) -> &[Arc<ServiceView>] {
        self.services.get(namespace)
    }

    /// PodDisruptionBudgets in a namespace.
    pub fn pdbs(&self, namespace: &str) -> &[Arc<BudgetView>] {
        self.pdbs.get(namespace)
    }

    /// NetworkPolicies in a namespace.
    pub fn network_policies(&self, namespace: &str) -> &[Arc<NetworkPolicy>] {
        self.network_policies.get(namespace)
    }

    /// The HorizontalPodAutoscalers that scale `w`, by name: those in its namespace whose
    /// `scaleTargetRef` names its kind and name. Only the kinds with a scale subresource
    /// (Deployment, StatefulSet, ReplicaSet) can be scaled; for the others this is empty.
    pub fn autoscalers_of(&self, w: &Workload) -> Vec<&Autoscaler> {
        if !matches!(
            w.kind,
            WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::ReplicaSet
        ) {
            return Vec::new();
        }
        let mut found: Vec<&Autoscaler> = self
            .autoscalers
            .get(&w.namespace)
            .iter()
            .map(AsRef::as_ref)
            .filter(|a| a.target_kind == w.kind.as_str() && a.target_name == w.name)
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        found
    }

    /// ServiceMonitors that may select Services in `namespace`, or why none can be known.
    pub fn service_monitors_for<'a>(
        &'a self,
        namespace: &'a str,
    ) -> Result<impl Iterator<Item = &'a ServiceMonitor> + 'a, &'a str> {
        match &self.service_monitors {
            Availability::Unavailable(reason) => Err(reason.as_str()),
            Availability::Known(m) => Ok(m.local.get(namespace).iter().map(AsRef::as_ref).chain(
                m.cross
                    .iter()
                    .map(AsRef::as_ref)
                    .filter(move |sm: &&ServiceMonitor| {
                        MonitorNamespaceSelector::covers(
                            sm.spec.namespace_selector.as_ref(),
                            sm.metadata
                                .namespace
                                .as_deref()
                                .unwrap_or(DEFAULT_NAMESPACE),
                            namespace,
                        )
                    }),
            )),
        }
    }

    /// PodMonitors that may select pods in `namespace`, or why none can be known.
    pub fn pod_monitors_for<'a>(
        &'a self,
        namespace: &'a str,
    ) -> Result<impl Iterator<Item = &'a PodMonitor> + 'a, &'a str> {
        match &self.pod_monitors {
            Availability::Unavailable(reason) => Err(reason.as_str()),
            Availability::Known(m) => Ok(m.local.get(namespace).iter().map(AsRef::as_ref).chain(
                m.cross
                    .iter()
                    .map(AsRef::as_ref)
                    .filter(move |pm: &&PodMonitor| {
                        MonitorNamespaceSelector::covers(
                            pm.spec.namespace_selector.as_ref(),
                            pm.metadata
                                .namespace
                                .as_deref()
                                .unwrap_or(DEFAULT_NAMESPACE),
                            namespace,
                        )
                    }),
            )),
        }
    }

    /// Looks up a Lease.
    pub fn lease(&self, namespace: &str, name: &str) -> LeaseLookup<'_> {
        match self.leases.as_ref() {
            Availability::Unavailable(reason) => LeaseLookup::Unavailable(reason),
            Availability::Known(m) => m
                .get(&(namespace.to_owned(), name.to_owned()))
                .map_or(LeaseLookup::Missing, |l| LeaseLookup::Found(l)),
        }
    }

    /// The labels of a Namespace, if it is known.
    pub fn namespace_labels(&self, namespace: &str) -> Option<&BTreeMap<String, String>> {
        self.namespaces.get(namespace)
    }

    /// Why ServiceMonitors cannot be consulted, if they cannot.
    pub fn service_monitors_unavailable(&self) -> Option<&str> {
        match &self.service_monitors {
            Availability::Unavailable(r) => Some(r),
            Availability::Known(_) => None,
        }
    }
}

fn is_local(sel: Option<&MonitorNamespaceSelector>) -> bool {
    sel.is_none_or(|s| !s.any && s.match_names.is_empty())
}
