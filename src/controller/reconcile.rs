//! One evaluation round and its writes. The decisions (status, which Events) are pure
//! functions in `status` and `events`; this module only gathers inputs, asks the leader
//! claim, and writes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::Stores;
use super::events::{self, EventMemory, Planned};
use super::metrics::{ControllerMetrics, ViolationLabels, WorkloadLabels};
use super::status::{self, StatusBuilder};
use super::stores::Tracked;
use crate::api::{ProductionPolicy, ProductionPolicyStatus, WorkloadKind};
use crate::engine::context::LeaseLookup;
use crate::engine::{CompiledPolicy, Context, Evaluation, Outcome, Workload, WorkloadVerdict};
use crate::error::Categorized;
use crate::kubeapi::{ApiCalls, ApiError};
use crate::leader::Leadership;
use crate::snapshot::{SharedSnapshot, Snapshot};

/// How often rounds give freed memory back to the system, at most.
const TRIM_EVERY: Duration = Duration::from_secs(10);

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
}

/// One Event to publish: the latest known state of a (policy, workload).
struct Announcement {
    tracked: Arc<Tracked>,
    plan: Planned,
    failing: BTreeSet<String>,
}

/// Events waiting to be published, keyed by (policy, workload): a newer round replaces an
/// entry, so a backlog never announces a state that is already stale. Rounds fill it and
/// never wait for it; the publisher drains it at `--max-events-per-second`.
#[derive(Default)]
struct Outbox {
    pending: Mutex<BTreeMap<(String, String), Announcement>>,
    ready: Notify,
}

impl Outbox {
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
    calls: ApiCalls,
    recorder: Recorder,
    leadership: Leadership,
    memory: Arc<Mutex<EventMemory>>,
    outbox: Arc<Outbox>,
    per_second: usize,
}

fn api_version(kind: WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::Deployment
        | WorkloadKind::StatefulSet
        | WorkloadKind::DaemonSet
        | WorkloadKind::ReplicaSet => "apps/v1",
        WorkloadKind::CronJob | WorkloadKind::Job => "batch/v1",
        WorkloadKind::Pod => "v1",
    }
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
                    lock_memory(&self.memory).record(&policy, &key, a.failing.clone());
                    if let Err(e) = self.publish(&a.tracked, &policy, &a.plan, &a.failing).await {
                        lock_memory(&self.memory).forget(&policy, &key);
                        tracing::error!(policy = %policy, namespace = %a.tracked.namespace, workload = %a.tracked.name, error = %e, "cannot publish Event");
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
        failing: &BTreeSet<String>,
    ) -> Result<(), ApiError> {
        let w = t;
        let reference = ObjectReference {
            api_version: Some(api_version(w.kind).to_owned()),
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
        let note = events::note(policy, failing);
        if !self.leadership.is_leader() {
            return Ok(());
        }
        self.calls
            .call("create_event", || {
                let ev = Event {
                    type_,
                    reason: reason.to_owned(),
                    note: Some(note.clone()),
                    action: "Evaluate".to_owned(),
                    secondary: None,
                };
                let reference = reference.clone();
                let recorder = &self.recorder;
                async move { recorder.publish(&ev, &reference).await }
            })
            .await?;
        let rules: Vec<&str> = failing.iter().map(String::as_str).collect();
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
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: events::REPORTER.to_owned(),
                instance: Some(cfg.identity.clone()),
            },
        );
        let memory = Arc::new(Mutex::new(EventMemory::default()));
        let publisher = Publisher {
            calls: calls.clone(),
            recorder,
            leadership: leadership.clone(),
            memory: Arc::clone(&memory),
            outbox: Arc::new(Outbox::default()),
            per_second: cfg.max_events.max(1),
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
        }
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
        let mut last_trim: Option<Instant> = None;
        loop {
            let deadline = wake.map_or(next_resync, |w| w.min(next_resync));
            let trigger = Arc::clone(&self.trigger);
            if super::next_round(&trigger, self.cfg.debounce, deadline, shutdown)
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
            wake = tokio::select! {
                () = shutdown.cancelled() => return,
                w = self.round().instrument(tracing::info_span!("evaluation_round")) => w,
            };
            // A round allocates and frees per workload; hand the freed memory back now and
            // then rather than keep the high-water mark of the busiest round resident.
            if last_trim.is_none_or(|t| t.elapsed() >= TRIM_EVERY) {
                crate::memory::release_free_memory();
                last_trim = Some(Instant::now());
            }
            next_resync = Instant::now() + self.cfg.resync;
        }
    }

    /// Evaluates everything once; returns when the next time-driven round is due.
    async fn round(&mut self) -> Option<Instant> {
        let now = Timestamp::now();
        let objects = self.stores.policies.all();
        let mut policies = Vec::new();
        let mut invalid = Vec::new();
        for obj in &objects {
            match CompiledPolicy::compile(obj, &crate::rules::CATALOG) {
                Ok(p) => policies.push(Arc::new(p)),
                Err(e) => invalid.push((Arc::clone(obj), e)),
            }
        }
        policies.sort_by(|a, b| a.name.cmp(&b.name));
        self.snapshot.store(Snapshot {
            policies,
            invalid: invalid.iter().map(|(_, e)| e.clone()).collect(),
            context: self.stores.context(),
            synced: true,
            built_at: Some(now),
        });
        let snap = self.snapshot.load();
        let workloads = self.stores.workloads();
        let by_name: HashMap<&str, &ProductionPolicy> = objects
            .iter()
            .filter_map(|o| o.metadata.name.as_deref().map(|n| (n, o.as_ref())))
            .collect();
        let api: Api<ProductionPolicy> = Api::all(self.client.clone());

        if self.leadership.is_leader() && !lock_memory(&self.memory).is_for(self.leadership.epoch())
        {
            self.seed_events().await;
        }

        let mut wake: Option<Instant> = None;
        let mut earliest = |t: Instant| wake = Some(wake.map_or(t, |w: Instant| w.min(t)));
        let mut v_series = Vec::new();
        let mut w_series = Vec::new();
        let mut seen = HashSet::new();
        let mut queued = false;
        let leader = self.leadership.is_leader();

        // One pass over the workloads, decoding each once and evaluating it under every
        // policy: nothing per workload outlives its turn but counts, the bounded violation
        // list and (leader only) its failing rule set for Events.
        let mut per_policy: Vec<PolicyRound<'_>> = snap
            .policies
            .iter()
            .map(|p| PolicyRound::new(p, now, self.cfg.max_violations))
            .collect();
        for policy in &snap.policies {
            if let Some(t) = policy.next_transition(now) {
                earliest(wake_at(t, now));
            }
        }
        tracing::info_span!("evaluate", workloads = workloads.len()).in_scope(|| {
            for t in &workloads {
                let w = match t.workload() {
                    Ok(w) => w,
                    Err(e) => {
                        tracing::error!(kind = t.kind.as_str(), namespace = %t.namespace, workload = %t.name, error = %e, "cannot decode the stored workload; left out of this round");
                        continue;
                    }
                };
                for (policy, acc) in snap.policies.iter().zip(per_policy.iter_mut()) {
                    let started = Instant::now();
                    if policy.matches(&w, &snap.context) {
                        let evaluation = policy.evaluate(&w, &snap.context, now);
                        if let Some(x) = evaluation.next_expiry.filter(|x| *x > now) {
                            earliest(wake_at(x, now));
                        }
                        if let Some(x) = lease_stale_at(&snap.context, &w, policy)
                            && x > now
                        {
                            earliest(wake_at(x, now));
                        }
                        acc.add(t, &w, &evaluation, leader);
                    }
                    acc.took += started.elapsed();
                }
            }
        });

        for (policy, acc) in snap.policies.iter().zip(per_policy) {
            let started = Instant::now();
            let old = by_name
                .get(policy.name.as_str())
                .and_then(|o| o.status.as_ref());
            let new = acc.status.finish(old);
            acc.series.record(policy, &mut v_series, &mut w_series);

            let mut result = "success";
            if self.leadership.is_leader() {
                match sync_status(&api, &self.calls, &policy.name, old, &new, self.cfg.resync)
                    .instrument(tracing::info_span!("write_status", policy = %policy.name))
                    .await
                {
                    Ok(true) => log_evaluated(policy, &new, true),
                    Ok(false) => {}
                    Err(e) if e.code() == Some(404) => {}
                    Err(e) => {
                        result = "error";
                        tracing::error!(policy = %policy.name, error = %e, category = e.category(), "cannot write policy status");
                    }
                }
                // Events: queue what changed; the publisher sends them without holding up
                // the next round.
                let mut memory = lock_memory(&self.memory);
                let mut outbox = self.publisher.outbox.lock();
                for (t, failing) in acc.failing {
                    let key = (policy.name.clone(), t.key());
                    let Some(plan) = memory.plan(&key.0, &key.1, &failing) else {
                        if failing.is_empty() {
                            memory.record(&key.0, &key.1, failing);
                        }
                        outbox.remove(&key);
                        seen.insert(key);
                        continue;
                    };
                    outbox.insert(
                        key.clone(),
                        Announcement {
                            tracked: t,
                            plan,
                            failing,
                        },
                    );
                    seen.insert(key);
                    queued = true;
                }
            } else if status::differs(old, &new) {
                log_evaluated(policy, &new, false);
            }
            self.metrics
                .reconciled(result, acc.took + started.elapsed());
        }

        for (obj, err) in &invalid {
            let started = Instant::now();
            let name = obj.metadata.name.clone().unwrap_or_default();
            let old = obj.status.as_ref();
            let new = status::invalid_status(obj.metadata.generation, err, now, old);
            if self.leadership.is_leader() {
                let changed = status::differs(old, &new);
                if let Err(e) =
                    sync_status(&api, &self.calls, &name, old, &new, self.cfg.resync).await
                {
                    tracing::error!(policy = %name, error = %e, "cannot write policy status");
                }
                if changed && self.leadership.is_leader() {
                    tracing::warn!(policy = %name, error = %err, "policy is invalid");
                    if let Err(e) = self.publish_invalid(obj, err).await {
                        tracing::error!(policy = %name, error = %e, "cannot publish Event");
                    }
                }
            }
            self.metrics.reconciled("invalid", started.elapsed());
        }

        self.metrics.publish(&v_series, &w_series, &mut self.series);
        if self.leadership.is_leader() {
            lock_memory(&self.memory).retain(&seen);
            self.publisher.outbox.lock().retain(|k, _| seen.contains(k));
        }
        if queued {
            self.publisher.outbox.ready.notify_one();
        }
        wake
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
        let note = err.problems.join("; ");
        self.calls
            .call("create_event", || {
                let ev = Event {
                    type_: EventType::Warning,
                    reason: events::REASON_INVALID_POLICY.to_owned(),
                    note: Some(truncate(&note, 1000)),
                    action: "Compile".to_owned(),
                    secondary: None,
                };
                let reference = reference.clone();
                let recorder = &self.publisher.recorder;
                async move { recorder.publish(&ev, &reference).await }
            })
            .await
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// When the Lease a workload names goes stale for the leader-lease rule.
fn lease_stale_at(
    ctx: &Context,
    w: &crate::engine::Workload,
    policy: &CompiledPolicy,
) -> Option<Timestamp> {
    // `NAME` or `NAMESPACE/NAME`, as the leader-lease rule reads it.
    let (namespace, name) = w
        .lease_name()?
        .split_once('/')
        .unwrap_or((w.namespace.as_str(), w.lease_name()?));
    let LeaseLookup::Found(lease) = ctx.lease(namespace, name) else {
        return None;
    };
    let spec = lease.spec.as_ref()?;
    let renewed = spec.renew_time.as_ref()?.0.as_second();
    let duration = spec
        .lease_duration_seconds
        .filter(|d| *d > 0)
        .map_or(15, i64::from);
    let grace = i64::from(policy.params.lease_grace_seconds.max(0));
    Timestamp::from_second(renewed + duration + grace + 1).ok()
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

/// One policy's share of a round: its status so far, its metric counts, and (leader only)
/// each matched workload's failing rules for Events.
struct PolicyRound<'p> {
    status: StatusBuilder<'p>,
    series: SeriesCounts,
    failing: Vec<(Arc<Tracked>, BTreeSet<String>)>,
    took: Duration,
}

impl<'p> PolicyRound<'p> {
    fn new(policy: &'p CompiledPolicy, now: Timestamp, max_violations: usize) -> Self {
        PolicyRound {
            status: StatusBuilder::new(policy, now, max_violations),
            series: SeriesCounts::default(),
            failing: Vec::new(),
            took: Duration::ZERO,
        }
    }

    fn add(&mut self, t: &Arc<Tracked>, w: &Workload, evaluation: &Evaluation, leader: bool) {
        self.status.add(w, evaluation);
        self.series.add(w, evaluation);
        if leader {
            let failing: BTreeSet<String> = evaluation
                .results
                .iter()
                .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
                .map(|r| r.rule.id.to_owned())
                .collect();
            self.failing.push((Arc::clone(t), failing));
        }
    }
}

/// A policy's metric counts: failing workloads per (namespace, rule, severity), workloads
/// per verdict.
#[derive(Default)]
struct SeriesCounts {
    per: HashMap<(String, &'static str, &'static str), i64>,
    verdicts: [i64; 4],
}

const VERDICTS: [WorkloadVerdict; 4] = [
    WorkloadVerdict::Compliant,
    WorkloadVerdict::Violating,
    WorkloadVerdict::Exempt,
    WorkloadVerdict::Unknown,
];

impl SeriesCounts {
    fn add(&mut self, w: &Workload, evaluation: &Evaluation) {
        let verdict = evaluation.verdict();
        if let Some(i) = VERDICTS.iter().position(|v| *v == verdict) {
            self.verdicts[i] += 1;
        }
        for r in &evaluation.results {
            if matches!(r.outcome, Outcome::Fail(_)) {
                let key = (w.namespace.clone(), r.rule.id, r.severity.as_str());
                *self.per.entry(key).or_insert(0) += 1;
            }
        }
    }

    fn record(
        self,
        policy: &CompiledPolicy,
        v: &mut Vec<(ViolationLabels, i64)>,
        w: &mut Vec<(WorkloadLabels, i64)>,
    ) {
        for ((namespace, rule, severity), n) in self.per {
            v.push((
                ViolationLabels {
                    policy: policy.name.clone(),
                    namespace,
                    rule,
                    severity,
                },
                n,
            ));
        }
        for (verdict, n) in VERDICTS.iter().zip(self.verdicts) {
            w.push((
                WorkloadLabels {
                    policy: policy.name.clone(),
                    result: verdict.as_str(),
                },
                n,
            ));
        }
    }
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

    #[test]
    fn a_named_lease_schedules_a_wake_up_when_it_goes_stale() {
        use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
        let renewed = Timestamp::from_second(1_000).unwrap_or_default();
        let mut ctx = Context::default();
        let mut lease = Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some("a".into()),
                lease_duration_seconds: Some(10),
                renew_time: Some(MicroTime(renewed)),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        };
        lease.metadata.name = Some("lock".into());
        lease.metadata.namespace = Some("other".into());
        ctx.add_lease(Arc::new(lease));
        let policy = CompiledPolicy::builtin(crate::api::Profile::Baseline, &crate::rules::CATALOG);
        let grace = i64::from(policy.params.lease_grace_seconds);
        let mut w =
            crate::engine::Workload::from(k8s_openapi::api::apps::v1::Deployment::default());
        w.namespace = "mine".into();
        for (annotation, want) in [("other/lock", Some(1_000 + 10 + grace + 1)), ("lock", None)] {
            w.annotations = [(
                crate::engine::workload::ANNOTATION_LEASE.to_owned(),
                annotation.to_owned(),
            )]
            .into();
            assert_eq!(
                lease_stale_at(&ctx, &w, &policy).map(|t| t.as_second()),
                want,
                "{annotation}"
            );
        }
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
