//! The controller's IO shell: waits for changes (debounced), gathers a round's inputs from
//! the stores, and applies the plan [`round`] computes — status writes and Events behind the
//! leader claim, metrics on every replica — plus the Event publisher beside the rounds.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::Stores;
use super::events::{self, Draft, EventMemory, EventType, Planned, RuleSet};
use super::ledger::Ledger;
use super::metrics::{ControllerMetrics, ViolationLabels, WorkloadLabels};
use super::reports::{ReportKey, ReportRequest, ReportSink};
use super::round;
use super::status;
use super::stores::Tracked;
use crate::api::{ProductionPolicy, ProductionPolicyStatus};
use crate::engine::CompiledPolicy;
use crate::error::Categorized;
use crate::kubeapi::{ApiCalls, ApiError};
use crate::leader::Leadership;
use crate::snapshot::SharedSnapshot;

/// The one field manager of every status write.
pub const FIELD_MANAGER: &str = "prodready";

/// Tunables of the loop.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Quiet time after a change before evaluating.
    pub debounce: Duration,
    /// Evaluate at least this often.
    pub resync: Duration,
    /// Bound of `status.violations`.
    pub max_violations: usize,
    /// Events published per second at most (the rest wait in the outbox, latest state per
    /// workload).
    pub max_events: usize,
    /// This replica's identity (Events' reporting instance).
    pub identity: String,
    /// `--cluster-name`: annotated on every Event (`None`: no annotation).
    pub cluster_name: Option<String>,
    /// The policy report writer (`None` with `--reports none`).
    pub reports: Option<Arc<ReportSink>>,
}

/// Server-side applies a policy's status under [`FIELD_MANAGER`].
pub async fn write_status(
    api: &Api<ProductionPolicy>,
    calls: &ApiCalls,
    name: &str,
    status: &ProductionPolicyStatus,
) -> Result<(), ApiError> {
    let patch = serde_json::json!({
        "apiVersion": "prodready.dev/v1alpha1",
        "kind": "ProductionPolicy",
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let patch = Patch::Apply(&patch);
    calls
        .call("patch_status", || api.patch_status(name, &params, &patch))
        .await
        .map(|_| ())
}

/// Writes `new` unless it equals `old` in everything but `lastEvaluationTime` and `old` was
/// evaluated within `refresh`. Returns whether it wrote.
pub async fn sync_status(
    api: &Api<ProductionPolicy>,
    calls: &ApiCalls,
    name: &str,
    old: Option<&ProductionPolicyStatus>,
    new: &ProductionPolicyStatus,
    refresh: Duration,
) -> Result<bool, ApiError> {
    let fresh = old
        .and_then(|o| o.last_evaluation_time.as_ref())
        .zip(new.last_evaluation_time.as_ref())
        .is_some_and(|(a, b)| {
            b.0.as_second().saturating_sub(a.0.as_second())
                < i64::try_from(refresh.as_secs()).unwrap_or(i64::MAX)
        });
    if !status::differs(old, new) && fresh {
        return Ok(false);
    }
    write_status(api, calls, name, new).await.map(|()| true)
}

/// Creates `event` in its namespace (see [`events::build`]). The event is built once per
/// announcement, so a retry of a create the API server did receive meets the same name:
/// its conflict means the Event exists, which is what was asked.
async fn create_event(client: &Client, calls: &ApiCalls, event: &Event) -> Result<(), ApiError> {
    let namespace = event.metadata.namespace.as_deref().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let params = PostParams::default();
    match calls
        .call("create_event", || api.create(&params, event))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(409) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The controller's state between rounds.
pub struct Controller {
    client: Client,
    calls: ApiCalls,
    stores: Arc<Stores>,
    snapshot: SharedSnapshot,
    leadership: Leadership,
    metrics: ControllerMetrics,
    cfg: ControllerConfig,
    trigger: Arc<Notify>,
    memory: Arc<Mutex<EventMemory>>,
    publisher: Publisher,
    series: (HashSet<ViolationLabels>, HashSet<WorkloadLabels>),
    heap: Arc<super::heap::HeapProbe>,
    /// Every workload's last judgement: rounds evaluate only what changed.
    ledger: Ledger,
    /// The leader epoch whose Events were planned for every matched workload.
    events_epoch: Option<u64>,
}

/// One Event to publish: the latest known state of a (policy, workload).
struct Announcement {
    tracked: Arc<Tracked>,
    plan: Planned,
    failing: RuleSet,
}

/// Events waiting to be published, keyed by (policy, workload): a newer round replaces an
/// entry, so a backlog never announces a state that is already stale. Rounds fill it and
/// never wait for it; the publisher drains it at `--max-events-per-second`.
#[derive(Default)]
pub(super) struct Outbox {
    pending: Mutex<BTreeMap<(String, String), Announcement>>,
    ready: Notify,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("pending", &self.lock().len())
            .finish()
    }
}

impl Outbox {
    /// Pending announcements and the heap they hold (keys and entries; the workloads are the
    /// stores').
    pub(super) fn heap_bytes(&self) -> (usize, usize) {
        let pending = self.lock();
        let entry = std::mem::size_of::<((String, String), Announcement)>();
        let bytes = pending
            .iter()
            .map(|((p, w), _)| p.capacity() + w.capacity() + entry)
            .sum();
        (pending.len(), bytes)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, String), Announcement>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn lock_memory(memory: &Mutex<EventMemory>) -> MutexGuard<'_, EventMemory> {
    memory
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Publishes the outbox, leader only, at a bounded rate, recording each announcement in the
/// memory before the call (so a round running meanwhile does not queue it again) and
/// forgetting it if the call fails (so the next round queues it again).
#[derive(Clone)]
struct Publisher {
    client: Client,
    calls: ApiCalls,
    /// This replica's identity (the Events' reporting instance).
    identity: Arc<str>,
    /// `--cluster-name`, annotated on every Event.
    cluster: Option<Arc<str>>,
    leadership: Leadership,
    memory: Arc<Mutex<EventMemory>>,
    outbox: Arc<Outbox>,
    per_second: usize,
    /// Where a failed announcement asks for its workload to be evaluated again.
    stores: Arc<Stores>,
    trigger: Arc<Notify>,
}

fn wake_at(t: Timestamp, now: Timestamp) -> Instant {
    let ms = t
        .as_millisecond()
        .saturating_sub(now.as_millisecond())
        .max(0);
    // A little past the instant, so the evaluation sees it passed.
    Instant::now() + Duration::from_millis(u64::try_from(ms).unwrap_or(0) + 50)
}

impl Publisher {
    /// Drains the outbox until `shutdown`, at most `per_second` Events per second.
    async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.outbox.ready.notified() => {}
            }
            loop {
                let started = Instant::now();
                let batch: Vec<((String, String), Announcement)> = {
                    let mut pending = self.outbox.lock();
                    if !self.leadership.is_leader() {
                        pending.clear(); // the next leader announces from its own memory
                    }
                    let keys: Vec<(String, String)> =
                        pending.keys().take(self.per_second).cloned().collect();
                    keys.into_iter()
                        .filter_map(|k| pending.remove(&k).map(|a| (k, a)))
                        .collect()
                };
                if batch.is_empty() {
                    break;
                }
                for ((policy, key), a) in batch {
                    if shutdown.is_cancelled() {
                        return;
                    }
                    lock_memory(&self.memory).record(&policy, &key, a.failing);
                    match self.publish(&a.tracked, &policy, &a.plan, &a.failing).await {
                        Ok(()) => {}
                        // The workload goes with its namespace: announcing it again in every
                        // round until the namespace is gone would only repeat this refusal.
                        Err(e) if e.namespace_terminating() => {
                            tracing::debug!(policy = %policy, namespace = %a.tracked.namespace, workload = %a.tracked.name, "namespace is being deleted; Event dropped");
                        }
                        Err(e) => {
                            // The next round plans it again.
                            lock_memory(&self.memory).forget(&policy, &key);
                            self.stores.redo(key);
                            self.trigger.notify_one();
                            tracing::error!(policy = %policy, namespace = %a.tracked.namespace, workload = %a.tracked.name, error = %e, "cannot publish Event");
                        }
                    }
                }
                let rest = Duration::from_secs(1).saturating_sub(started.elapsed());
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(rest) => {}
                }
            }
        }
    }

    async fn publish(
        &self,
        t: &Tracked,
        policy: &str,
        plan: &Planned,
        failing: &RuleSet,
    ) -> Result<(), ApiError> {
        let w = t;
        let reference = ObjectReference {
            api_version: Some(w.kind.api_version().to_owned()),
            kind: Some(w.kind.as_str().to_owned()),
            namespace: Some(w.namespace.clone()),
            name: Some(w.name.clone()),
            uid: t.uid.clone(),
            ..ObjectReference::default()
        };
        let (type_, reason) = match plan {
            Planned::Violation => (EventType::Warning, events::REASON_VIOLATION),
            Planned::Ready => (EventType::Normal, events::REASON_READY),
        };
        let draft = Draft {
            type_,
            reason,
            action: "Evaluate",
            note: events::note(policy, failing),
        };
        let event = events::build(
            draft,
            reference,
            &self.identity,
            self.cluster.as_deref(),
            Timestamp::now(),
        );
        let published = self
            .leadership
            .gated(create_event(&self.client, &self.calls, &event))
            .await;
        let Some(published) = published else {
            return Ok(());
        };
        published?;
        let rules = failing.ids();
        tracing::info!(
            policy,
            namespace = %w.namespace,
            workload = %w.name,
            kind = w.kind.as_str(),
            rule = %rules.join(","),
            reason,
            "published Event"
        );
        Ok(())
    }
}

impl Controller {
    /// Assembles a controller over started stores.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        calls: ApiCalls,
        stores: Arc<Stores>,
        snapshot: SharedSnapshot,
        leadership: Leadership,
        metrics: ControllerMetrics,
        trigger: Arc<Notify>,
        cfg: ControllerConfig,
    ) -> Self {
        let memory = Arc::new(Mutex::new(EventMemory::default()));
        let outbox = Arc::new(Outbox::default());
        let heap = Arc::new(super::heap::HeapProbe {
            stores: Arc::clone(&stores),
            memory: Arc::clone(&memory),
            outbox: Arc::clone(&outbox),
            last_round_peak: 0.into(),
            max_round_peak: 0.into(),
            ledger: (0.into(), 0.into()),
        });
        let publisher = Publisher {
            client: client.clone(),
            calls: calls.clone(),
            identity: Arc::from(cfg.identity.as_str()),
            cluster: cfg.cluster_name.as_deref().map(Arc::from),
            leadership: leadership.clone(),
            memory: Arc::clone(&memory),
            outbox,
            per_second: cfg.max_events.max(1),
            stores: Arc::clone(&stores),
            trigger: Arc::clone(&trigger),
        };
        Controller {
            client,
            calls,
            stores,
            snapshot,
            leadership,
            metrics,
            cfg,
            trigger,
            memory,
            publisher,
            series: (HashSet::new(), HashSet::new()),
            heap,
            ledger: Ledger::default(),
            events_epoch: None,
        }
    }

    /// What the admin server's `/debug/memory` reads.
    pub fn heap_probe(&self) -> Arc<super::heap::HeapProbe> {
        Arc::clone(&self.heap)
    }

    /// Runs rounds (and the Event publisher beside them) until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let publisher = tokio::spawn(self.publisher.clone().run(shutdown.clone()));
        self.rounds(&shutdown).await;
        if let Err(e) = publisher.await {
            tracing::error!(error = %e, "Event publisher task failed");
        }
    }

    async fn rounds(&mut self, shutdown: &CancellationToken) {
        let mut wake: Option<Instant> = None;
        let mut next_resync = Instant::now() + self.cfg.resync;
        // Until every cache has synced there is nothing to batch: the first round starts as
        // soon as the last cache syncs, not a debounce later.
        let mut synced = false;
        loop {
            // A full pass at least every resync interval; rounds between evaluate what changed.
            let deadline = wake.map_or(next_resync, |w| w.min(next_resync));
            let trigger = Arc::clone(&self.trigger);
            let debounce = if synced {
                self.cfg.debounce
            } else {
                Duration::ZERO
            };
            if super::next_round(&trigger, debounce, deadline, shutdown)
                .await
                .is_none()
            {
                return;
            }
            let unsynced = self.stores.unsynced();
            if !unsynced.is_empty() {
                tracing::debug!(waiting_for = ?unsynced, "caches not synced yet");
                wake = None;
                continue;
            }
            synced = true;
            let resync = Instant::now() >= next_resync;
            let full;
            (wake, full) = tokio::select! {
                () = shutdown.cancelled() => return,
                w = self.round(resync).instrument(tracing::info_span!("evaluation_round")) => w,
            };
            if full {
                next_resync = Instant::now() + self.cfg.resync;
            }
        }
    }

    /// Evaluates what changed since the last round (everything when `resync` or when a full
    /// pass is due, see [`Ledger`]) with [`round::plan`] and applies the plan; returns when
    /// the next time-driven round is due and whether this one was a full pass.
    async fn round(&mut self, resync: bool) -> (Option<Instant>, bool) {
        let now = Timestamp::now();
        let mut dirt = self.stores.take_dirt();
        dirt.everything |= resync;
        if let Some(sink) = &self.cfg.reports {
            dirt.workloads.extend(sink.take_touched());
        }
        crate::memory::reset_peak();
        let live_before = crate::memory::heap().map_or(0, |(live, _)| live);
        let objects = self.stores.policies.all();
        let stores = &self.stores;
        let (snapshot, invalid) = super::off_the_runtime(|| {
            round::snapshot(&objects, stores.context(), now, &crate::rules::CATALOG)
        });
        // The webhook judges from the new snapshot while this round still evaluates.
        self.snapshot.store(snapshot);
        let snap = self.snapshot.load();
        let leader = self.leadership.is_leader();
        let stores_for_round = Arc::clone(&self.stores);
        let epoch = self.leadership.epoch();
        if leader && !lock_memory(&self.memory).is_for(epoch) {
            self.seed_events().await;
        }
        let all_events = leader && self.events_epoch != Some(epoch);
        let sink = self.cfg.reports.clone();
        let held = move |k: &ReportKey| sink.as_ref().and_then(|s| s.held(k));
        let inputs = round::Inputs {
            snapshot: &snap,
            objects: &objects,
            invalid: &invalid,
            workloads: stores_for_round.as_ref(),
            now,
            max_violations: self.cfg.max_violations,
            leader,
            all_events,
            reports_state: self
                .cfg
                .reports
                .as_ref()
                .map_or(status::ReportsState::Disabled, |s| s.state()),
            reports: self
                .cfg
                .reports
                .as_ref()
                .filter(|_| leader)
                .and_then(|s| s.ready())
                .map(|options| ReportRequest {
                    options,
                    held: &held,
                }),
        };
        let span = tracing::info_span!(
            "evaluate",
            workloads = tracing::field::Empty,
            evaluated = tracing::field::Empty,
            full = tracing::field::Empty
        );
        let ledger = &mut self.ledger;
        let plan = super::off_the_runtime(|| {
            span.in_scope(|| round::plan(ledger, &inputs, &dirt, Instant::now))
        });
        span.record("workloads", self.ledger.len());
        span.record("evaluated", plan.evaluated);
        span.record("full", plan.full);
        tracing::debug!(
            workloads = self.ledger.len(),
            evaluated = plan.evaluated,
            full = plan.full,
            "round evaluated"
        );
        self.metrics.round(plan.full, plan.evaluated);
        if leader {
            self.events_epoch = Some(epoch);
        }
        self.heap
            .ledger
            .0
            .store(self.ledger.len(), std::sync::atomic::Ordering::Relaxed);
        self.heap.ledger.1.store(
            self.ledger.heap_bytes(),
            std::sync::atomic::Ordering::Relaxed,
        );
        if let Some((_, peak)) = crate::memory::heap() {
            self.heap.round_peak(peak.saturating_sub(live_before));
        }
        for (t, e) in &plan.undecodable {
            tracing::error!(kind = t.kind.as_str(), namespace = %t.namespace, workload = %t.name, error = %e, "cannot decode the stored workload; left out of this round");
        }
        let wake = plan.wake.map(|t| wake_at(t, now));
        let full = plan.full;
        self.apply(plan).await;
        (wake, full)
    }

    /// The leader gate ([`Leadership::gated`]) every write of a round goes through.
    async fn gated<T>(&self, write: impl std::future::Future<Output = T>) -> Option<T> {
        self.leadership.gated(write).await
    }

    /// Applies a round's plan: statuses and Events behind the leader claim, metrics on every
    /// replica.
    async fn apply(&mut self, mut plan: round::Plan<'_>) {
        let api: Api<ProductionPolicy> = Api::all(self.client.clone());
        let mut seen = HashSet::new();
        let mut queued = false;
        for p in plan.policies {
            let _timer = self.metrics.timer(p.took);
            let mut result = ("success", None);
            let written = self
                .gated(
                    sync_status(
                        &api,
                        &self.calls,
                        &p.policy.name,
                        p.old,
                        &p.status,
                        self.cfg.resync,
                    )
                    .instrument(tracing::info_span!("write_status", policy = %p.policy.name)),
                )
                .await;
            if let Some(written) = written {
                match written {
                    Ok(true) => log_evaluated(p.policy, &p.status, true),
                    Ok(false) => {}
                    Err(e) if e.code() == Some(404) => {}
                    Err(e) => {
                        result = ("error", Some(e.category()));
                        tracing::error!(policy = %p.policy.name, error = %e, category = e.category(), "cannot write policy status");
                    }
                }
                // Events: queue what changed; the publisher sends them without holding up
                // the next round.
                let mut memory = lock_memory(&self.memory);
                let steps = round::event_steps(&memory, &p.policy.name, p.failing);
                let mut outbox = self.publisher.outbox.lock();
                for step in steps {
                    seen.insert(step.key().clone());
                    match step {
                        round::EventStep::Announce {
                            key,
                            tracked,
                            planned,
                            failing,
                        } => {
                            outbox.insert(
                                key,
                                Announcement {
                                    tracked,
                                    plan: planned,
                                    failing,
                                },
                            );
                            queued = true;
                        }
                        round::EventStep::Settle { key } => {
                            memory.record(&key.0, &key.1, RuleSet::new());
                            outbox.remove(&key);
                        }
                        round::EventStep::Unchanged { key } => {
                            outbox.remove(&key);
                        }
                    }
                }
            } else if status::differs(p.old, &p.status) {
                log_evaluated(p.policy, &p.status, false);
            }
            self.metrics.reconciled(result.0, result.1);
        }

        for inv in plan.invalid {
            let _timer = self.metrics.timer(std::time::Duration::ZERO);
            let name = inv.object.metadata.name.clone().unwrap_or_default();
            let written = self
                .gated(sync_status(
                    &api,
                    &self.calls,
                    &name,
                    inv.object.status.as_ref(),
                    &inv.status,
                    self.cfg.resync,
                ))
                .await;
            if let Some(Err(e)) = &written {
                tracing::error!(policy = %name, error = %e, category = e.category(), "cannot write policy status");
            }
            if written.is_some() && inv.changed {
                tracing::warn!(policy = %name, error = %inv.error, "policy is invalid");
                if let Some(Err(e)) = self
                    .gated(self.publish_invalid(inv.object, inv.error))
                    .await
                {
                    tracing::error!(policy = %name, error = %e, category = e.category(), "cannot publish Event");
                }
            }
            self.metrics.reconciled("invalid", None);
        }

        if let (Some(sink), Some(desired)) = (self.cfg.reports.as_ref(), plan.reports.take()) {
            let total = desired.len();
            let (applied, deleted, failed) = sink
                .sync(&self.client, &self.calls, &self.leadership, desired)
                .instrument(tracing::info_span!("write_reports", reports = total))
                .await;
            if applied + deleted + failed > 0 {
                tracing::info!(
                    reports = total,
                    applied,
                    deleted,
                    failed,
                    "policy reports synced"
                );
            }
        }
        self.metrics
            .publish(&plan.violations, &plan.workloads, &mut self.series);
        // Forget pairs (and drop announcements) of workloads and policies that are gone; only
        // the leader keeps Event state.
        if self.gated(std::future::ready(())).await.is_some() {
            if plan.events_complete {
                lock_memory(&self.memory).retain(&seen);
                self.publisher.outbox.lock().retain(|k, _| seen.contains(k));
            } else {
                let mut memory = lock_memory(&self.memory);
                let mut outbox = self.publisher.outbox.lock();
                for (policy, workload) in &plan.forget {
                    memory.forget(policy, workload);
                    outbox.remove(&(policy.clone(), workload.clone()));
                }
            }
        }
        if queued {
            self.publisher.outbox.ready.notify_one();
        }
    }

    async fn seed_events(&mut self) {
        let events: Api<CoreEvent> = Api::all(self.client.clone());
        let lp = ListParams::default().fields(&format!("reportingComponent={}", events::REPORTER));
        match self.calls.call("list_events", || events.list(&lp)).await {
            Ok(list) => {
                tracing::info!(
                    events = list.items.len(),
                    "loaded prodready's earlier Events"
                );
                lock_memory(&self.memory).seed(self.leadership.epoch(), &list.items);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot list earlier Events; unchanged violations may be announced again");
                lock_memory(&self.memory).seed(self.leadership.epoch(), &[]);
            }
        }
    }

    async fn publish_invalid(
        &self,
        obj: &ProductionPolicy,
        err: &crate::engine::PolicyError,
    ) -> Result<(), ApiError> {
        let reference = ObjectReference {
            api_version: Some("prodready.dev/v1alpha1".to_owned()),
            kind: Some("ProductionPolicy".to_owned()),
            name: obj.metadata.name.clone(),
            uid: obj.metadata.uid.clone(),
            ..ObjectReference::default()
        };
        let draft = Draft {
            type_: EventType::Warning,
            reason: events::REASON_INVALID_POLICY,
            action: "Compile",
            note: err.problems.join("; "),
        };
        let event = events::build(
            draft,
            reference,
            &self.cfg.identity,
            self.cfg.cluster_name.as_deref(),
            Timestamp::now(),
        );
        create_event(&self.client, &self.calls, &event).await
    }
}

fn log_evaluated(policy: &CompiledPolicy, s: &ProductionPolicyStatus, wrote: bool) {
    let sum = s.summary.clone().unwrap_or_default();
    tracing::info!(
        policy = %policy.name,
        matched = sum.matched,
        compliant = sum.compliant,
        violating = sum.violating,
        exempt = sum.exempt,
        unknown = sum.unknown,
        status_written = wrote,
        "policy evaluated"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;
    use prometheus_client::registry::Registry;

    use crate::api::PolicySummary;
    use crate::kubeapi::DependencyMetrics;

    fn status(violating: u32, at: i64) -> ProductionPolicyStatus {
        ProductionPolicyStatus {
            observed_generation: Some(1),
            summary: Some(PolicySummary {
                matched: 1,
                violating,
                compliant: 1 - violating,
                ..PolicySummary::default()
            }),
            last_evaluation_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Timestamp::from_second(at).unwrap_or_default(),
            )),
            ..ProductionPolicyStatus::default()
        }
    }

    fn mock() -> (
        Api<ProductionPolicy>,
        ApiCalls,
        tower_test::mock::Handle<Request<Body>, Response<Body>>,
    ) {
        let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(svc, "default");
        let mut registry = Registry::default();
        let calls = ApiCalls::new(DependencyMetrics::register(&mut registry));
        (Api::all(client), calls, handle)
    }

    #[tokio::test]
    async fn status_is_server_side_applied_to_the_status_subresource() {
        let (api, calls, mut handle) = mock();
        let new = status(1, 1000);
        let server = tokio::spawn(async move {
            let (req, send) = handle
                .next_request()
                .await
                .unwrap_or_else(|| panic!("no request"));
            assert_eq!(req.method(), http::Method::PATCH);
            let uri = req.uri().to_string();
            assert!(
                uri.starts_with("/apis/prodready.dev/v1alpha1/productionpolicies/baseline/status?"),
                "{uri}"
            );
            assert!(uri.contains("fieldManager=prodready"), "{uri}");
            assert!(uri.contains("force=true"), "{uri}");
            assert_eq!(
                req.headers()
                    .get(http::header::CONTENT_TYPE)
                    .map(|v| v.as_bytes()),
                Some(&b"application/apply-patch+yaml"[..])
            );
            let body = req.into_body().collect_bytes().await.unwrap_or_default();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            assert_eq!(json["kind"], "ProductionPolicy");
            assert_eq!(json["status"]["summary"]["violating"], 1);
            let reply = serde_json::json!({
                "apiVersion": "prodready.dev/v1alpha1", "kind": "ProductionPolicy",
                "metadata": {"name": "baseline"}, "spec": {},
            });
            send.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&reply).unwrap_or_default()))
                    .unwrap_or_else(|e| panic!("{e}")),
            );
        });
        let wrote = sync_status(
            &api,
            &calls,
            "baseline",
            None,
            &new,
            Duration::from_secs(300),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(wrote);
        server.await.unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test]
    async fn an_event_is_created_in_its_namespace_and_a_retry_that_conflicts_is_done() {
        let (api, calls, mut handle) = mock();
        let client: Client = api.into_client();
        let regarding = ObjectReference {
            kind: Some("Deployment".into()),
            namespace: Some("shop".into()),
            name: Some("web".into()),
            ..ObjectReference::default()
        };
        let draft = Draft {
            type_: EventType::Warning,
            reason: events::REASON_VIOLATION,
            action: "Evaluate",
            note: "n".to_owned(),
        };
        let event = events::build(draft, regarding, "prodready-0", None, Timestamp::UNIX_EPOCH);
        let server = tokio::spawn(async move {
            let mut names = Vec::new();
            // A 503 (retried), then the 409 of a retry whose first attempt got through.
            for code in [503_u16, 409] {
                let (req, send) = handle
                    .next_request()
                    .await
                    .unwrap_or_else(|| panic!("no request"));
                assert_eq!(req.method(), http::Method::POST);
                assert!(
                    req.uri()
                        .to_string()
                        .starts_with("/apis/events.k8s.io/v1/namespaces/shop/events?"),
                    "{}",
                    req.uri()
                );
                let body = req.into_body().collect_bytes().await.unwrap_or_default();
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                assert_eq!(json["reportingController"], "prodready");
                names.push(json["metadata"]["name"].clone());
                let status = serde_json::json!({
                    "kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": "refused", "reason": "", "code": code,
                });
                send.send_response(
                    Response::builder()
                        .status(code)
                        .body(Body::from(serde_json::to_vec(&status).unwrap_or_default()))
                        .unwrap_or_else(|e| panic!("{e}")),
                );
            }
            names
        });
        create_event(&client, &calls, &event)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let names = server.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names.len(), 2);
        assert_eq!(names[0], "web.0");
        assert_eq!(names[0], names[1], "a retry creates the same Event");
    }

    #[tokio::test]
    async fn unchanged_status_is_not_written() {
        let (api, calls, mut handle) = mock();
        let old = status(1, 1000);
        let new = status(1, 1060);
        let wrote = sync_status(
            &api,
            &calls,
            "baseline",
            Some(&old),
            &new,
            Duration::from_secs(300),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!wrote);
        // No request reached the API.
        let next = tokio::time::timeout(Duration::from_millis(50), handle.next_request()).await;
        assert!(next.is_err(), "unexpected request");
    }
}
