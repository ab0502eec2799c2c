//! In-memory stores fed by watches, one per kind, holding only what the engine reads.
//!
//! A store is a map `namespace/name → Arc<T>` where `T` is the slimmed object: workloads are
//! converted to the engine's [`Workload`] view as they arrive (the Deployment itself, its
//! status and `managedFields` are dropped), other objects lose `managedFields`, the
//! `last-applied-configuration` annotation and their status. A watch event that changes
//! nothing the engine reads (a Deployment's status, a PDB's status, a Lease renewal, a
//! policy's own status write) does not trigger an evaluation.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::engine::Workload;

/// The annotation `kubectl apply` leaves behind; never read, often large.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A workload as stored: the engine's view plus its uid (Events reference it).
#[derive(Debug, PartialEq)]
pub struct Tracked {
    /// The engine's view.
    pub workload: Workload,
    /// The object's uid.
    pub uid: Option<String>,
}

/// Objects of one kind, by `namespace/name`.
#[derive(Debug)]
pub struct Store<T> {
    kind: &'static str,
    map: RwLock<HashMap<String, Arc<T>>>,
    synced: AtomicBool,
}

impl<T> Store<T> {
    /// An empty, unsynced store.
    pub fn new(kind: &'static str) -> Arc<Self> {
        Arc::new(Store {
            kind,
            map: RwLock::new(HashMap::new()),
            synced: AtomicBool::new(false),
        })
    }

    /// The kind held (for readiness messages).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Whether the initial list has been received.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    /// Every object, in no particular order.
    pub fn all(&self) -> Vec<Arc<T>> {
        let map = match self.map.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        map.values().cloned().collect()
    }

    /// How many objects are held.
    pub fn len(&self) -> usize {
        match self.map.read() {
            Ok(g) => g.len(),
            Err(p) => p.into_inner().len(),
        }
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the store and marks it unsynced (the kind went away).
    pub fn clear(&self) {
        self.synced.store(false, Ordering::SeqCst);
        self.with_map(HashMap::clear);
    }

    fn with_map<R>(&self, f: impl FnOnce(&mut HashMap<String, Arc<T>>) -> R) -> R {
        match self.map.write() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }
}

fn key<K: Resource>(obj: &K) -> String {
    format!(
        "{}/{}",
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    )
}

/// Drops what no rule reads from an object's metadata.
pub fn strip_metadata<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    meta.resource_version = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
}

/// How a watched object becomes a stored one, and which changes matter.
pub trait Slim: Sized {
    /// The stored form.
    type Stored: Send + Sync + 'static;
    /// Converts, dropping unused fields.
    fn slim(self) -> Self::Stored;
    /// Whether replacing `old` by `new` can change a verdict.
    fn matters(old: &Self::Stored, new: &Self::Stored) -> bool;
}

macro_rules! workload_slim {
    ($($t:ty),*) => {$(
        impl Slim for $t {
            type Stored = Tracked;
            fn slim(self) -> Tracked {
                let uid = self.metadata.uid.clone();
                Tracked { workload: Workload::from(self), uid }
            }
            fn matters(old: &Tracked, new: &Tracked) -> bool {
                old != new
            }
        }
    )*};
}
workload_slim!(
    k8s_openapi::api::apps::v1::Deployment,
    k8s_openapi::api::apps::v1::StatefulSet,
    k8s_openapi::api::apps::v1::DaemonSet,
    k8s_openapi::api::batch::v1::CronJob
);

impl Slim for k8s_openapi::api::core::v1::Service {
    type Stored = Self;
    fn slim(mut self) -> Self {
        strip_metadata(&mut self);
        self.status = None;
        self
    }
    fn matters(old: &Self, new: &Self) -> bool {
        old != new
    }
}

impl Slim for k8s_openapi::api::networking::v1::NetworkPolicy {
    type Stored = Self;
    fn slim(mut self) -> Self {
        strip_metadata(&mut self);
        self
    }
    fn matters(old: &Self, new: &Self) -> bool {
        old != new
    }
}

macro_rules! monitor_slim {
    ($($t:ty),*) => {$(
        impl Slim for $t {
            type Stored = $t;
            fn slim(mut self) -> $t {
                strip_metadata(&mut self);
                self
            }
            fn matters(old: &$t, new: &$t) -> bool {
                old.spec != new.spec || old.metadata != new.metadata
            }
        }
    )*};
}
monitor_slim!(
    crate::engine::monitoring::ServiceMonitor,
    crate::engine::monitoring::PodMonitor
);

impl Slim for k8s_openapi::api::policy::v1::PodDisruptionBudget {
    type Stored = Self;
    fn slim(mut self) -> Self {
        strip_metadata(&mut self);
        // The disruption-budget rule reads the spec only; status changes with every pod.
        self.status = None;
        self
    }
    fn matters(old: &Self, new: &Self) -> bool {
        old != new
    }
}

impl Slim for k8s_openapi::api::coordination::v1::Lease {
    type Stored = Self;
    fn slim(mut self) -> Self {
        strip_metadata(&mut self);
        self
    }
    /// Renewals do not trigger an evaluation: the controller schedules one at each named
    /// Lease's expiry instead, so thousands of renewing Leases cost nothing.
    fn matters(old: &Self, new: &Self) -> bool {
        let holder = |l: &Self| {
            l.spec
                .as_ref()
                .map(|s| (s.holder_identity.clone(), s.lease_duration_seconds))
        };
        holder(old) != holder(new)
    }
}

impl Slim for k8s_openapi::api::core::v1::Namespace {
    type Stored = Self;
    fn slim(mut self) -> Self {
        strip_metadata(&mut self);
        self.spec = None;
        self.status = None;
        self
    }
    fn matters(old: &Self, new: &Self) -> bool {
        old.metadata.labels != new.metadata.labels
    }
}

impl Slim for crate::api::ProductionPolicy {
    type Stored = Self;
    fn slim(mut self) -> Self {
        // The status is kept: the next status keeps its conditions' transition times.
        strip_metadata(&mut self);
        self
    }
    /// Our own status writes do not change the generation; only spec edits trigger.
    fn matters(old: &Self, new: &Self) -> bool {
        old.metadata.generation != new.metadata.generation
    }
}

/// The watch retry backoff: 250 ms doubling to at most 5 s, with jitter, reset once a watch
/// succeeds. Capped low (kube's default reaches 30 s) so caches catch up within seconds of
/// the API server coming back from an outage.
#[derive(Debug, Default)]
pub struct WatchBackoff {
    retry: u32,
}

impl Iterator for WatchBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let policy = crate::kubeapi::RetryPolicy {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(5),
            ..crate::kubeapi::RetryPolicy::default()
        };
        let ceiling = policy
            .base
            .saturating_mul(1u32 << self.retry.min(8))
            .min(policy.cap);
        self.retry = self.retry.saturating_add(1);
        // Half fixed, half jitter: never a busy loop.
        Some(ceiling / 2 + policy.backoff(self.retry.min(8)).min(ceiling / 2))
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.retry = 0;
    }
}

/// Runs a watch into `store` until `shutdown`, notifying `trigger` on every change that
/// matters. Errors are logged and retried with the watcher's backoff.
pub async fn watch_into<K>(
    api: Api<K>,
    config: watcher::Config,
    store: Arc<Store<K::Stored>>,
    trigger: Arc<Notify>,
    shutdown: CancellationToken,
) where
    K: Resource + Slim + Clone + DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default,
{
    let stream = watcher::watcher(api, config).backoff(WatchBackoff::default());
    let mut stream = std::pin::pin!(stream);
    let mut initial: Option<HashMap<String, Arc<K::Stored>>> = None;
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            e = stream.next() => e,
        };
        let Some(event) = event else { return };
        match event {
            Ok(Event::Init) => initial = Some(HashMap::new()),
            Ok(Event::InitApply(obj)) => {
                let k = key(&obj);
                initial
                    .get_or_insert_with(HashMap::new)
                    .insert(k, Arc::new(obj.slim()));
            }
            Ok(Event::InitDone) => {
                let fresh = initial.take().unwrap_or_default();
                let n = fresh.len();
                store.with_map(|m| *m = fresh);
                if !store.synced.swap(true, Ordering::SeqCst) {
                    tracing::info!(kind = store.kind, objects = n, "cache synced");
                }
                trigger.notify_one();
            }
            Ok(Event::Apply(obj)) => {
                let k = key(&obj);
                let new = Arc::new(obj.slim());
                let old = store.with_map(|m| m.insert(k, Arc::clone(&new)));
                if old.is_none_or(|o| K::matters(&o, &new)) {
                    trigger.notify_one();
                }
            }
            Ok(Event::Delete(obj)) => {
                let k = key(&obj);
                if store.with_map(|m| m.remove(&k)).is_some() {
                    trigger.notify_one();
                }
            }
            Err(e) => tracing::warn!(kind = store.kind, error = %e, "watch failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ProductionPolicy;
    use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};
    use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, MicroTime};
    use k8s_openapi::jiff::Timestamp;

    fn deployment(image: &str) -> Deployment {
        let yaml = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: a\n  uid: u-1\n  annotations: {{{LAST_APPLIED}: big}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: app, image: '{image}'}}]}}\n"
        );
        serde_saphyr::from_str(&yaml).unwrap_or_default()
    }

    #[test]
    fn a_workload_status_change_does_not_matter_a_spec_change_does() {
        let a = deployment("app:1").slim();
        let mut d = deployment("app:1");
        d.status = Some(DeploymentStatus {
            ready_replicas: Some(3),
            ..DeploymentStatus::default()
        });
        d.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        d.metadata.resource_version = Some("42".into());
        let b = d.slim();
        assert!(!Deployment::matters(&a, &b));
        assert_eq!(a.uid.as_deref(), Some("u-1"));
        assert!(Deployment::matters(&a, &deployment("app:2").slim()));
    }

    #[test]
    fn stripping_drops_managed_fields_and_last_applied() {
        let mut s = k8s_openapi::api::core::v1::Service::default();
        s.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        s.metadata.annotations = Some([(LAST_APPLIED.to_owned(), "x".to_owned())].into());
        s.status = Some(Default::default());
        let s = s.slim();
        assert_eq!(s.metadata.managed_fields, None);
        assert_eq!(s.metadata.annotations.map(|a| a.len()), Some(0));
        assert_eq!(s.status, None);
    }

    #[test]
    fn lease_renewals_and_policy_status_writes_do_not_trigger() {
        let lease = |holder: &str, renew: i64| Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.to_owned()),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime(Timestamp::from_second(renew).unwrap_or_default())),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        };
        assert!(!Lease::matters(&lease("a", 1), &lease("a", 2)));
        assert!(Lease::matters(&lease("a", 1), &lease("b", 2)));

        let mut p = ProductionPolicy::new("p", Default::default());
        p.metadata.generation = Some(1);
        let mut with_status = p.clone();
        with_status.status = Some(Default::default());
        assert!(!ProductionPolicy::matters(&p, &with_status));
        let mut edited = p.clone();
        edited.metadata.generation = Some(2);
        assert!(ProductionPolicy::matters(&p, &edited));
    }
}
