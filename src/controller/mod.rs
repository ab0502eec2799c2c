//! The controller: watches every kind the engine reads into slim in-memory stores, and runs
//! one debounced evaluation loop over them.
//!
//! Any change that matters → (debounce) → a fresh [`Snapshot`] published for the admission
//! webhook → every policy evaluated over every matching workload with the pure engine → if
//! this replica is leader, status written (server-side apply, field manager `prodready`, only
//! when it changed) and Events published. The loop also wakes at the next instant a verdict
//! can change by itself (an exemption expiring, `enforceAfter`, a named Lease going stale)
//! and every resync interval.

mod dictionary;
pub mod events;
pub mod heap;
pub mod initial_list;
pub mod ledger;
pub mod metrics;
mod reconcile;
pub mod reports;
pub mod round;
pub mod status;
pub mod stores;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::{Api, Client};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::ProductionPolicy;
use crate::engine::Context;
use crate::engine::autoscaler::Autoscaler;
use crate::engine::context::Part;
use crate::engine::monitoring::{PodMonitor, ServiceMonitor};
use crate::engine::service::{BudgetView, ServiceView};
use crate::kubeapi::{ApiCalls, ApiError};

pub use initial_list::{InitialList, LIST_PAGE};
use ledger::Dirt;
pub use reconcile::{Controller, ControllerConfig, sync_status, write_status};
pub use stores::WatchFailure;
use stores::{JobEntry, NamespaceLabels, Scope, Store, Tracked, watch_into};

/// Why ServiceMonitors are unknown while their CRD is absent.
pub const SERVICE_MONITOR_CRD_MISSING: &str =
    "the ServiceMonitor CRD (monitoring.coreos.com/v1) is not installed in the cluster";
/// Why PodMonitors are unknown while their CRD is absent.
pub const POD_MONITOR_CRD_MISSING: &str =
    "the PodMonitor CRD (monitoring.coreos.com/v1) is not installed in the cluster";

/// Every store the controller keeps.
#[derive(Debug)]
pub struct Stores {
    /// Deployments.
    pub deployments: Arc<Store<Tracked>>,
    /// StatefulSets.
    pub statefulsets: Arc<Store<Tracked>>,
    /// DaemonSets.
    pub daemonsets: Arc<Store<Tracked>>,
    /// CronJobs.
    pub cronjobs: Arc<Store<Tracked>>,
    /// ReplicaSets not controlled by a Deployment.
    pub replicasets: Arc<Store<Tracked>>,
    /// Pods without a controller (bare Pods).
    pub pods: Arc<Store<Tracked>>,
    /// Jobs: standalone ones as workloads, those of CronJobs as runs.
    pub jobs: Arc<Store<JobEntry>>,
    /// Services.
    pub services: Arc<Store<ServiceView>>,
    /// PodDisruptionBudgets.
    pub pdbs: Arc<Store<BudgetView>>,
    /// NetworkPolicies.
    pub network_policies: Arc<Store<NetworkPolicy>>,
    /// HorizontalPodAutoscalers (target and bounds only).
    pub autoscalers: Arc<Store<Autoscaler>>,
    /// Namespaces (labels only).
    pub namespaces: Arc<Store<NamespaceLabels>>,
    /// Leases outside `kube-node-lease`.
    pub leases: Arc<Store<Lease>>,
    /// ProductionPolicies.
    pub policies: Arc<Store<ProductionPolicy>>,
    /// ServiceMonitors, while their CRD is installed.
    pub service_monitors: Arc<Store<ServiceMonitor>>,
    /// PodMonitors, while their CRD is installed.
    pub pod_monitors: Arc<Store<PodMonitor>>,
    service_monitors_installed: AtomicBool,
    pod_monitors_installed: AtomicBool,
    /// Workloads to evaluate again whatever changed (an Event about them failed).
    redo: Mutex<Dirt>,
    /// The last context built, with the store versions it was built from.
    context_cache: Mutex<Option<(Context, ContextVersions)>>,
}

impl Default for Stores {
    fn default() -> Self {
        Stores {
            deployments: Store::scoped("Deployment", Scope::Itself),
            statefulsets: Store::scoped("StatefulSet", Scope::Itself),
            daemonsets: Store::scoped("DaemonSet", Scope::Itself),
            cronjobs: Store::scoped("CronJob", Scope::Itself),
            replicasets: Store::scoped("ReplicaSet", Scope::Itself),
            pods: Store::scoped("Pod", Scope::Itself),
            jobs: Store::scoped("Job", Scope::NamespaceAndItself),
            services: Store::scoped("Service", Scope::Namespace),
            pdbs: Store::scoped("PodDisruptionBudget", Scope::Namespace),
            network_policies: Store::scoped("NetworkPolicy", Scope::Namespace),
            autoscalers: Store::scoped("HorizontalPodAutoscaler", Scope::Namespace),
            namespaces: Store::scoped("Namespace", Scope::Namespace),
            leases: Store::scoped("Lease", Scope::Lease),
            policies: Store::new("ProductionPolicy"),
            service_monitors: Store::new("ServiceMonitor"),
            pod_monitors: Store::new("PodMonitor"),
            service_monitors_installed: AtomicBool::new(false),
            pod_monitors_installed: AtomicBool::new(false),
            redo: Mutex::new(Dirt::default()),
            context_cache: Mutex::new(None),
        }
    }
}

impl Stores {
    /// The kinds whose initial list has not arrived yet (empty when ready).
    pub fn unsynced(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let core: [(&'static str, bool); 14] = [
            (self.deployments.kind(), self.deployments.is_synced()),
            (self.statefulsets.kind(), self.statefulsets.is_synced()),
            (self.daemonsets.kind(), self.daemonsets.is_synced()),
            (self.cronjobs.kind(), self.cronjobs.is_synced()),
            (self.replicasets.kind(), self.replicasets.is_synced()),
            (self.pods.kind(), self.pods.is_synced()),
            (self.jobs.kind(), self.jobs.is_synced()),
            (self.services.kind(), self.services.is_synced()),
            (self.pdbs.kind(), self.pdbs.is_synced()),
            (
                self.network_policies.kind(),
                self.network_policies.is_synced(),
            ),
            (self.autoscalers.kind(), self.autoscalers.is_synced()),
            (self.namespaces.kind(), self.namespaces.is_synced()),
            (self.leases.kind(), self.leases.is_synced()),
            (self.policies.kind(), self.policies.is_synced()),
        ];
        for (kind, synced) in core {
            if !synced {
                out.push(kind);
            }
        }
        if self.service_monitors_installed.load(Ordering::SeqCst)
            && !self.service_monitors.is_synced()
        {
            out.push(self.service_monitors.kind());
        }
        if self.pod_monitors_installed.load(Ordering::SeqCst) && !self.pod_monitors.is_synced() {
            out.push(self.pod_monitors.kind());
        }
        out
    }

    /// Why the watches of the stores that have not synced yet last failed, by kind.
    pub fn failures(&self) -> Vec<(&'static str, WatchFailure)> {
        let unsynced = self.unsynced();
        let failures = [
            (self.deployments.kind(), self.deployments.failure()),
            (self.statefulsets.kind(), self.statefulsets.failure()),
            (self.daemonsets.kind(), self.daemonsets.failure()),
            (self.cronjobs.kind(), self.cronjobs.failure()),
            (self.replicasets.kind(), self.replicasets.failure()),
            (self.pods.kind(), self.pods.failure()),
            (self.jobs.kind(), self.jobs.failure()),
            (self.services.kind(), self.services.failure()),
            (self.pdbs.kind(), self.pdbs.failure()),
            (
                self.network_policies.kind(),
                self.network_policies.failure(),
            ),
            (self.autoscalers.kind(), self.autoscalers.failure()),
            (self.namespaces.kind(), self.namespaces.failure()),
            (self.leases.kind(), self.leases.failure()),
            (self.policies.kind(), self.policies.failure()),
            (
                self.service_monitors.kind(),
                self.service_monitors.failure(),
            ),
            (self.pod_monitors.kind(), self.pod_monitors.failure()),
        ];
        failures
            .into_iter()
            .filter(|(kind, _)| unsynced.contains(kind))
            .filter_map(|(kind, f)| Some((kind, f?)))
            .collect()
    }

    /// What changed since the last call, besides the workloads themselves (see [`Dirt`]).
    pub fn take_dirt(&self) -> Dirt {
        let mut dirt = std::mem::take(
            &mut *self
                .redo
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        dirt.merge(self.deployments.take_dirt());
        dirt.merge(self.statefulsets.take_dirt());
        dirt.merge(self.daemonsets.take_dirt());
        dirt.merge(self.cronjobs.take_dirt());
        dirt.merge(self.replicasets.take_dirt());
        dirt.merge(self.pods.take_dirt());
        dirt.merge(self.jobs.take_dirt());
        dirt.merge(self.services.take_dirt());
        dirt.merge(self.pdbs.take_dirt());
        dirt.merge(self.network_policies.take_dirt());
        dirt.merge(self.autoscalers.take_dirt());
        dirt.merge(self.namespaces.take_dirt());
        dirt.merge(self.leases.take_dirt());
        dirt.merge(self.policies.take_dirt());
        dirt.merge(self.service_monitors.take_dirt());
        dirt.merge(self.pod_monitors.take_dirt());
        dirt
    }

    /// Asks the next round to evaluate the workload `Kind/namespace/name` again.
    pub fn redo(&self, workload: String) {
        self.redo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .workloads
            .insert(workload);
    }

    /// The stored workload of `kind` under `namespace` and `name`, if any.
    pub fn workload(&self, kind: &str, namespace: &str, name: &str) -> Option<Arc<Tracked>> {
        let key = format!("{namespace}/{name}");
        let store = match kind {
            "Deployment" => &self.deployments,
            "StatefulSet" => &self.statefulsets,
            "DaemonSet" => &self.daemonsets,
            "CronJob" => &self.cronjobs,
            "ReplicaSet" => &self.replicasets,
            "Pod" => &self.pods,
            "Job" => {
                return match self.jobs.get(&key)?.as_ref() {
                    JobEntry::Standalone(t) => Some(Arc::clone(t)),
                    JobEntry::Run(_) => None,
                };
            }
            _ => return None,
        };
        store.get(&key)
    }

    /// Every workload.
    pub fn workloads(&self) -> Vec<Arc<Tracked>> {
        let mut all = self.deployments.all();
        all.extend(self.statefulsets.all());
        all.extend(self.daemonsets.all());
        all.extend(self.cronjobs.all());
        all.extend(self.replicasets.all());
        all.extend(self.pods.all());
        all.extend(self.jobs.all().iter().filter_map(|j| match j.as_ref() {
            JobEntry::Standalone(t) => Some(Arc::clone(t)),
            JobEntry::Run(_) => None,
        }));
        all
    }

    /// The engine's context over the stores (sharing their objects). The parts of the last
    /// context whose stores did not change since are reused as they are (they are shared, not
    /// copied), so a round after a workload change does not rebuild the index of 50,000
    /// Services and PDBs.
    pub fn context(&self) -> Context {
        let versions = ContextVersions {
            services: self.services.version(),
            pdbs: self.pdbs.version(),
            network_policies: self.network_policies.version(),
            autoscalers: self.autoscalers.version(),
            leases: self.leases.version(),
            jobs: self.jobs.version(),
            namespaces: self.namespaces.version(),
            monitors: (
                self.service_monitors.version(),
                self.pod_monitors.version(),
                self.service_monitors_installed.load(Ordering::SeqCst),
                self.pod_monitors_installed.load(Ordering::SeqCst),
            ),
        };
        let mut cache = self
            .context_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ctx = self.context_from(cache.take(), versions);
        *cache = Some((ctx.clone(), versions));
        ctx
    }

    /// The engine's context built anew from every store (what [`Stores::context`] must
    /// always equal).
    pub fn fresh_context(&self) -> Context {
        let versions = ContextVersions {
            services: 0,
            pdbs: 0,
            network_policies: 0,
            autoscalers: 0,
            leases: 0,
            jobs: 0,
            namespaces: 0,
            monitors: (0, 0, false, false),
        };
        self.context_from(None, versions)
    }

    fn context_from(
        &self,
        cached: Option<(Context, ContextVersions)>,
        versions: ContextVersions,
    ) -> Context {
        let (mut ctx, last) = match cached {
            Some((ctx, last)) => (ctx, Some(last)),
            None => {
                let mut ctx = Context::default();
                ctx.set_leases_known();
                (ctx, None)
            }
        };
        let stale = |part: fn(&ContextVersions) -> u64| {
            last.as_ref().is_none_or(|l| part(l) != part(&versions))
        };
        if stale(|v| v.services) {
            refill(
                &mut ctx,
                Part::Services,
                &self.services,
                Context::add_service,
            );
        }
        if stale(|v| v.pdbs) {
            refill(&mut ctx, Part::Pdbs, &self.pdbs, Context::add_pdb);
        }
        if stale(|v| v.network_policies) {
            refill(
                &mut ctx,
                Part::NetworkPolicies,
                &self.network_policies,
                Context::add_network_policy,
            );
        }
        if stale(|v| v.autoscalers) {
            refill(
                &mut ctx,
                Part::Autoscalers,
                &self.autoscalers,
                Context::add_autoscaler,
            );
        }
        if stale(|v| v.leases) {
            refill(&mut ctx, Part::Leases, &self.leases, Context::add_lease);
        }
        if stale(|v| v.jobs) {
            refill(&mut ctx, Part::JobRuns, &self.jobs, |ctx, job| {
                if let JobEntry::Run(run) = job.as_ref() {
                    ctx.add_job_run(Arc::clone(run));
                }
            });
        }
        if stale(|v| v.namespaces) {
            refill(&mut ctx, Part::Namespaces, &self.namespaces, |ctx, ns| {
                ctx.add_namespace(ns.name.clone(), ns.labels.clone());
            });
        }
        if last
            .as_ref()
            .is_none_or(|l| l.monitors != versions.monitors)
        {
            if self.service_monitors_installed.load(Ordering::SeqCst) {
                ctx.set_service_monitors_known();
                for m in self.service_monitors.all() {
                    ctx.add_service_monitor(m);
                }
            } else {
                ctx.set_service_monitors_absent(SERVICE_MONITOR_CRD_MISSING);
            }
            if self.pod_monitors_installed.load(Ordering::SeqCst) {
                ctx.set_pod_monitors_known();
                for m in self.pod_monitors.all() {
                    ctx.add_pod_monitor(m);
                }
            } else {
                ctx.set_pod_monitors_absent(POD_MONITOR_CRD_MISSING);
            }
        }
        ctx
    }
}

impl ledger::Workloads for Stores {
    fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Arc<Tracked>> {
        self.workload(kind, namespace, name)
    }
    fn all(&self) -> Vec<Arc<Tracked>> {
        self.workloads()
    }
}

/// Empties `part` of `ctx` and fills it again from `store`, one object at a time with `add`.
fn refill<T>(ctx: &mut Context, part: Part, store: &Store<T>, add: fn(&mut Context, Arc<T>)) {
    ctx.clear(part);
    for obj in store.all() {
        add(ctx, obj);
    }
}

/// The store versions a cached context was built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ContextVersions {
    services: u64,
    pdbs: u64,
    network_policies: u64,
    autoscalers: u64,
    leases: u64,
    jobs: u64,
    namespaces: u64,
    monitors: (u64, u64, bool, bool),
}

/// Starts every core watch on `tasks`, each reading its initial state as `lists` says; each
/// notifies `trigger` on changes that matter.
pub fn spawn_watches(
    client: &Client,
    lists: InitialList,
    stores: &Stores,
    trigger: &Arc<Notify>,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    spawn_watches_in(
        client,
        WatchScope::default(),
        lists,
        stores,
        trigger,
        shutdown,
        tasks,
    );
}

/// What [`spawn_watches_in`] watches: the controller watches everything; a live scan may read
/// one namespace, and no ProductionPolicies when it applies policies of its own.
#[derive(Clone, Copy, Debug)]
pub struct WatchScope<'a> {
    /// Only this namespace's objects of the namespaced kinds, and only this Namespace.
    pub namespace: Option<&'a str>,
    /// Whether to watch ProductionPolicies (their store then never syncs).
    pub policies: bool,
}

impl Default for WatchScope<'_> {
    fn default() -> Self {
        WatchScope {
            namespace: None,
            policies: true,
        }
    }
}

/// [`spawn_watches`] over `scope`: with a namespace, the namespaced kinds are listed and
/// watched in it alone, and its Namespace alone is watched (for `namespaceSelector`).
pub fn spawn_watches_in(
    client: &Client,
    scope: WatchScope<'_>,
    lists: InitialList,
    stores: &Stores,
    trigger: &Arc<Notify>,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    let namespace = scope.namespace;
    let cfg = || lists.config();
    macro_rules! watch {
        ($k:ty, $store:expr, $cfg:expr) => {
            watch!(
                $k,
                $store,
                $cfg,
                match namespace {
                    Some(ns) => Api::namespaced(client.clone(), ns),
                    None => Api::all(client.clone()),
                }
            )
        };
        ($k:ty, $store:expr, $cfg:expr, $api:expr) => {
            tasks.spawn(watch_into::<$k>(
                $api,
                $cfg,
                Arc::clone(&$store),
                Arc::clone(trigger),
                shutdown.clone(),
            ));
        };
    }
    watch!(Deployment, stores.deployments, cfg());
    watch!(StatefulSet, stores.statefulsets, cfg());
    watch!(DaemonSet, stores.daemonsets, cfg());
    watch!(CronJob, stores.cronjobs, cfg());
    // Every ReplicaSet and Pod is listed and watched, but only those judged on their own
    // (without a Deployment, without any controller) are kept: ownership cannot be selected
    // on server-side. docs/operator.md has the measured cost.
    watch!(ReplicaSet, stores.replicasets, cfg());
    watch!(Pod, stores.pods, cfg());
    watch!(Job, stores.jobs, cfg());
    watch!(Service, stores.services, cfg());
    watch!(PodDisruptionBudget, stores.pdbs, cfg());
    watch!(NetworkPolicy, stores.network_policies, cfg());
    watch!(HorizontalPodAutoscaler, stores.autoscalers, cfg());
    let namespaces = match namespace {
        Some(ns) => cfg().fields(&format!("metadata.name={ns}")),
        None => cfg(),
    };
    watch!(
        Namespace,
        stores.namespaces,
        namespaces,
        Api::all(client.clone())
    );
    // Node heartbeats renew thousands of Leases there; no workload names one.
    watch!(
        Lease,
        stores.leases,
        cfg().fields("metadata.namespace!=kube-node-lease")
    );
    if scope.policies {
        watch!(
            ProductionPolicy,
            stores.policies,
            cfg(),
            Api::all(client.clone())
        );
    }
}

/// Whether `monitoring.coreos.com/v1` serves ServiceMonitors and PodMonitors (one discovery
/// request, bounded by `calls`' timeout): `(false, false)` when the group is not served.
pub async fn monitoring_served(
    client: &Client,
    calls: &ApiCalls,
) -> Result<(bool, bool), ApiError> {
    let found = calls
        .once(
            "discover_monitoring",
            client.list_api_group_resources("monitoring.coreos.com/v1"),
        )
        .await;
    match found {
        Ok(list) => Ok((
            list.resources.iter().any(|r| r.name == "servicemonitors"),
            list.resources.iter().any(|r| r.name == "podmonitors"),
        )),
        Err(e) if e.code() == Some(404) => Ok((false, false)),
        Err(e) => Err(e),
    }
}

/// Starts the ServiceMonitor and PodMonitor watches (cluster-wide: a monitor in one namespace
/// may select Services in others) for those `served` (as [`monitoring_served`] answered), and
/// records which are installed: [`Stores::unsynced`] then waits for them, and the context says
/// "CRD missing" for the others. For a one-time read (a live scan); the controller re-discovers
/// with [`discover_monitors`].
pub fn watch_monitors(
    client: &Client,
    lists: InitialList,
    stores: &Stores,
    served: (bool, bool),
    trigger: &Arc<Notify>,
    shutdown: &CancellationToken,
) {
    let start = WatchStart {
        client,
        lists,
        trigger,
        shutdown,
    };
    toggle::<ServiceMonitor>(
        &start,
        served.0,
        &mut None,
        &stores.service_monitors,
        &stores.service_monitors_installed,
    );
    toggle::<PodMonitor>(
        &start,
        served.1,
        &mut None,
        &stores.pod_monitors,
        &stores.pod_monitors_installed,
    );
}

/// Watches ServiceMonitors and PodMonitors while their CRDs exist: discovers
/// `monitoring.coreos.com/v1` at start and every `interval`, starting a watch (initial list as
/// `lists` says) when a CRD
/// appears and stopping it (and emptying its store) when it goes.
pub async fn discover_monitors(
    client: Client,
    lists: InitialList,
    calls: ApiCalls,
    stores: Arc<Stores>,
    trigger: Arc<Notify>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut sm: Option<CancellationToken> = None;
    let mut pm: Option<CancellationToken> = None;
    loop {
        let (has_sm, has_pm) = match monitoring_served(&client, &calls).await {
            Ok(served) => served,
            Err(e) => {
                tracing::warn!(error = %e, "cannot discover monitoring.coreos.com/v1; keeping the last answer");
                (sm.is_some(), pm.is_some())
            }
        };
        let start = WatchStart {
            client: &client,
            lists,
            trigger: &trigger,
            shutdown: &shutdown,
        };
        toggle::<ServiceMonitor>(
            &start,
            has_sm,
            &mut sm,
            &stores.service_monitors,
            &stores.service_monitors_installed,
        );
        toggle::<PodMonitor>(
            &start,
            has_pm,
            &mut pm,
            &stores.pod_monitors,
            &stores.pod_monitors_installed,
        );
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// What starting a watch needs: the client, how it lists, whom it wakes, when it stops.
struct WatchStart<'a> {
    client: &'a Client,
    lists: InitialList,
    trigger: &'a Arc<Notify>,
    shutdown: &'a CancellationToken,
}

/// Starts `store`'s watch when its CRD is `present` and it is not `running`; stops it and
/// empties the store when the CRD is gone.
fn toggle<K>(
    start: &WatchStart<'_>,
    present: bool,
    running: &mut Option<CancellationToken>,
    store: &Arc<Store<K>>,
    installed: &AtomicBool,
) where
    K: kube::Resource<DynamicType = ()>
        + stores::Slim<Stored = K>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    match (present, running.is_some()) {
        (true, false) => {
            tracing::info!(kind = store.kind(), "CRD found; watching");
            let token = start.shutdown.child_token();
            tokio::spawn(watch_into::<K>(
                Api::all(start.client.clone()),
                start.lists.config(),
                Arc::clone(store),
                Arc::clone(start.trigger),
                token.clone(),
            ));
            *running = Some(token);
            installed.store(true, Ordering::SeqCst);
            store.soil_all();
        }
        (false, true) => {
            tracing::info!(kind = store.kind(), "CRD gone; stopped watching");
            if let Some(t) = running.take() {
                t.cancel();
            }
            installed.store(false, Ordering::SeqCst);
            store.clear();
            start.trigger.notify_one();
        }
        _ => {}
    }
}

/// Runs the CPU-bound `work` (a round's evaluation: seconds at 100,000 workloads) on this
/// thread without holding up the other tasks: on the multi-thread runtime the worker's queued
/// tasks, the Lease renewal and the watches among them, move to another thread first
/// ([`tokio::task::block_in_place`]); elsewhere (the current-thread runtime of tests) `work`
/// simply runs.
pub fn off_the_runtime<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// Waits for the next reason to evaluate: a trigger (then `debounce` more, so a burst of
/// changes costs one evaluation), or `deadline`. `None` on shutdown.
pub async fn next_round(
    trigger: &Notify,
    debounce: Duration,
    deadline: Instant,
    shutdown: &CancellationToken,
) -> Option<()> {
    let triggered = tokio::select! {
        () = shutdown.cancelled() => return None,
        () = trigger.notified() => true,
        () = tokio::time::sleep_until(deadline.into()) => false,
    };
    if triggered {
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(debounce) => {}
        }
    }
    // Changes that arrived while waiting are in the stores already: one round covers them.
    let _ = trigger.notified().now_or_never();
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A long evaluation must not hold up a task queued on its worker (the 100,000-workload
    /// run lost its leader claim that way): a task spawned right before the evaluation sits in
    /// the worker's LIFO slot, which no other worker steals, unless the evaluation hands the
    /// worker's queue off first.
    #[test]
    fn an_evaluation_does_not_starve_a_task_queued_on_its_worker() -> Result<(), std::io::Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let waited = runtime.block_on(async {
            tokio::spawn(async {
                let queued = std::time::Instant::now();
                let renewal = tokio::spawn(async move { queued.elapsed() });
                off_the_runtime(|| std::thread::sleep(Duration::from_millis(800)));
                renewal.await
            })
            .await
        });
        let waited = waited
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Duration::from_secs(60));
        assert!(
            waited < Duration::from_millis(400),
            "the queued task waited {waited:?} for the evaluation"
        );
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_changes_costs_a_handful_of_rounds() {
        let trigger = Arc::new(Notify::new());
        let shutdown = CancellationToken::new();
        let rounds = Arc::new(AtomicUsize::new(0));
        let debounce = Duration::from_millis(500);
        let looper = {
            let (trigger, shutdown, rounds) =
                (Arc::clone(&trigger), shutdown.clone(), Arc::clone(&rounds));
            tokio::spawn(async move {
                loop {
                    let deadline =
                        (tokio::time::Instant::now() + Duration::from_secs(3600)).into_std();
                    if next_round(&trigger, debounce, deadline, &shutdown)
                        .await
                        .is_none()
                    {
                        return;
                    }
                    rounds.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        // 1,000 changes spread over one second.
        for _ in 0..1000 {
            trigger.notify_one();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let n = rounds.load(Ordering::SeqCst);
        assert!((1..=4).contains(&n), "{n} rounds for 1,000 changes");
        // Quiet: no more rounds.
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(rounds.load(Ordering::SeqCst), n);
        shutdown.cancel();
        let _ = looper.await;
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_wakes_without_trigger() {
        let trigger = Notify::new();
        let shutdown = CancellationToken::new();
        let start = tokio::time::Instant::now();
        let r = next_round(
            &trigger,
            Duration::from_millis(500),
            (start + Duration::from_secs(5)).into_std(),
            &shutdown,
        )
        .await;
        assert!(r.is_some());
        assert!(start.elapsed() >= Duration::from_secs(5));
    }
}
