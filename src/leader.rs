//! Leader election on a `coordination.k8s.io` Lease, with optimistic concurrency (every write
//! carries the `resourceVersion` it read, so two replicas can never both win).
//!
//! Every replica watches and evaluates; only the leader writes status and Events, and it asks
//! [`Leadership::is_leader`] right before each write. The claim is local and time-bounded: a
//! leader that cannot renew stops considering itself leader two thirds into the lease
//! duration, before any other replica may take over (one full duration after it last saw the
//! Lease change). On shutdown the leader releases the Lease (empty holder) so another replica
//! takes over within one retry period.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::error::Categorized;
use crate::kubeapi::{ApiCalls, ApiError};
use crate::owner::{Owner, adopt};

/// Which Lease this replica competes for, as whom, and how fast (from `--lease-*`).
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// The Lease's name.
    pub name: String,
    /// The Lease's namespace.
    pub namespace: String,
    /// This replica's identity (the holder it writes).
    pub identity: String,
    /// How long a claim lasts without renewal.
    pub lease_duration: Duration,
    /// How often the leader renews and the others retry.
    pub retry_period: Duration,
    /// What the Lease belongs to (`--owner-deployment`), so it goes with the install.
    pub owner: Option<Arc<Owner>>,
}

/// `prodready_leader` and `prodready_leader_transitions_total`.
#[derive(Clone, Debug, Default)]
pub struct LeaderMetrics {
    leader: Gauge,
    transitions: Counter,
}

impl LeaderMetrics {
    /// Registers the leader metrics.
    pub fn register(registry: &mut Registry) -> Self {
        let m = LeaderMetrics::default();
        registry.register(
            "prodready_leader",
            "1 while this replica holds the leader Lease, else 0",
            m.leader.clone(),
        );
        registry.register(
            "prodready_leader_transitions",
            "Times this replica gained or lost leadership",
            m.transitions.clone(),
        );
        m
    }
}

#[derive(Debug, Default)]
struct Claim {
    leader: AtomicBool,
    valid_until: Mutex<Option<Instant>>,
    epoch: AtomicU64,
    /// A write was refused since the last renewal (see [`Leadership::take_refused`]).
    refused: AtomicBool,
}

/// This replica's view of its own leadership. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Leadership(Arc<Claim>);

impl Leadership {
    /// Whether this replica may write now.
    pub fn is_leader(&self) -> bool {
        if !self.0.leader.load(Ordering::SeqCst) {
            return false;
        }
        let until = match self.0.valid_until.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        };
        until.is_some_and(|t| Instant::now() < t)
    }

    /// The leader gate: runs `write` only while this replica holds the Lease, asked right
    /// before the write starts (so a lost Lease stops writing at once); `None`, and the write
    /// never starts, otherwise. Every status write and Event goes through it.
    pub async fn gated<T>(&self, write: impl std::future::Future<Output = T>) -> Option<T> {
        if self.is_leader() {
            Some(write.await)
        } else {
            self.0.refused.store(true, Ordering::SeqCst);
            None
        }
    }

    /// Whether [`Leadership::gated`] refused a write since the last call, and forgets it. The
    /// election asks after each renewal: a leader whose claim lapsed for a moment (a renewal
    /// late because the process was starved, say) must evaluate again once it holds the claim,
    /// or what that round computed would wait for the next change or resync to be written.
    pub fn take_refused(&self) -> bool {
        self.0.refused.swap(false, Ordering::SeqCst)
    }

    /// Grows by one each time this replica becomes leader (so per-term state can be reset).
    pub fn epoch(&self) -> u64 {
        self.0.epoch.load(Ordering::SeqCst)
    }

    /// A claim that is always held (tests, single-replica use).
    pub fn always() -> Self {
        let l = Leadership::default();
        l.set(
            true,
            Some(Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)),
        );
        l
    }

    fn set(&self, leader: bool, until: Option<Instant>) {
        match self.0.valid_until.lock() {
            Ok(mut g) => *g = until,
            Err(p) => *p.into_inner() = until,
        }
        let was = self.0.leader.swap(leader, Ordering::SeqCst);
        if leader && !was {
            self.0.epoch.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Why the leader task stopped.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The lease duration cannot be written into a Lease.
    #[error("--lease-duration must be between 1 s and 2^31 s")]
    BadDuration,
}

/// The two clocks a decision needs, read once per attempt by the elector: a monotonic one to
/// time how long a foreign Lease has stayed unchanged, and the wall clock for the Lease's own
/// timestamps.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// Monotonic time (never jumps).
    pub mono: Instant,
    /// Wall-clock time (written into the Lease, compared with its renewTime).
    pub wall: Timestamp,
}

impl Now {
    /// Reads both clocks.
    pub fn read() -> Self {
        Now {
            mono: Instant::now(),
            wall: Timestamp::now(),
        }
    }
}

/// What we last saw of someone else's Lease, to time its expiry on our own clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// The Lease's resourceVersion then; any write changes it.
    pub resource_version: Option<String>,
    /// When (our monotonic clock) we first saw that version.
    pub at: Instant,
}

/// What to do with the Lease as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// There is no Lease: create it with us as holder.
    Create,
    /// We hold it: write a fresh renewTime.
    Renew,
    /// It is free, or its holder's claim lapsed: claim it, counting one more transition.
    TakeOver {
        /// The `leaseTransitions` to write.
        transitions: i32,
    },
    /// Someone else holds a live claim: write nothing, look again next period.
    Wait,
}

/// An [`Action`] and what to remember of a foreign Lease for the next decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// The observation to keep (unchanged unless a foreign Lease was looked at).
    pub observed: Option<Observed>,
}

/// Decides what to do with `lease` (as just read; `None` when it does not exist). Another
/// holder's claim has lapsed when the Lease has not changed for a whole duration on our
/// monotonic clock, or when its renewTime is more than two durations old on the wall clock
/// (this tolerates skew, and spares a new replica the wait for a long-dead holder).
/// `default_duration_secs` stands in for a Lease without `leaseDurationSeconds`.
pub fn decide(
    lease: Option<&Lease>,
    observed: Option<&Observed>,
    identity: &str,
    now: Now,
    default_duration_secs: i32,
) -> Decision {
    let keep = observed.cloned();
    let Some(lease) = lease else {
        return Decision {
            action: Action::Create,
            observed: keep,
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    let take_over = Action::TakeOver {
        transitions: spec.lease_transitions.unwrap_or(0).saturating_add(1),
    };
    if holder == identity {
        return Decision {
            action: Action::Renew,
            observed: keep,
        };
    }
    if holder.is_empty() {
        return Decision {
            action: take_over,
            observed: keep,
        };
    }
    let rv = lease.metadata.resource_version.clone();
    let observed = match observed {
        Some(o) if o.resource_version == rv => o.clone(),
        _ => Observed {
            resource_version: rv,
            at: now.mono,
        },
    };
    let duration = Duration::from_secs(
        u64::try_from(spec.lease_duration_seconds.unwrap_or(default_duration_secs)).unwrap_or(1),
    );
    let unchanged_too_long = now.mono.saturating_duration_since(observed.at) > duration;
    let stale_after = SignedDuration::try_from(duration * 2).unwrap_or(SignedDuration::MAX);
    let renewed_too_long_ago = spec
        .renew_time
        .as_ref()
        .is_some_and(|t| t.0.saturating_add(stale_after).is_ok_and(|t| t < now.wall));
    Decision {
        action: if unchanged_too_long || renewed_too_long_ago {
            take_over
        } else {
            Action::Wait
        },
        observed: Some(observed),
    }
}

/// The spec that gives the Lease up: no holder, a one-second duration, renewed at `now`, so
/// another replica takes over at its next attempt. `None` when `identity` does not hold it.
pub fn released(spec: &LeaseSpec, identity: &str, now: Timestamp) -> Option<LeaseSpec> {
    (spec.holder_identity.as_deref() == Some(identity)).then(|| LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        renew_time: Some(MicroTime(now)),
        ..spec.clone()
    })
}

struct Elector {
    api: Api<Lease>,
    calls: ApiCalls,
    cfg: LeaderConfig,
    duration_secs: i32,
    observed: Option<Observed>,
    /// The Lease as our last successful write left it, while we hold it: renewals replace
    /// it directly (one request per renewal instead of a GET and a replace); a conflict sends
    /// the next attempt back through the GET.
    held: Option<Lease>,
}

impl Elector {
    fn fresh_spec(&self, transitions: i32, now: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(self.duration_secs),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Acquires or renews; `Ok(true)` when we hold the Lease after this call. The clocks are
    /// read once here; [`decide`] says what to write.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, ApiError> {
        let now = Now::read();
        if let Some(mut lease) = self.held.take() {
            lease.spec = Some(self.renewed(lease.spec.clone().unwrap_or_default(), now.wall));
            if self.replace(lease).await? {
                return Ok(true);
            }
            // A conflict: changed under us (or our copy is stale); look at it as it is now.
        }
        let name = self.cfg.name.clone();
        let api = self.api.clone();
        let current = self
            .calls
            .once("get_lease", async { api.get_opt(&name).await })
            .await?;
        let decision = decide(
            current.as_ref(),
            self.observed.as_ref(),
            &self.cfg.identity,
            now,
            self.duration_secs,
        );
        self.observed = decision.observed;
        let (mut lease, spec) = match (decision.action, current) {
            (Action::Wait, _) => return Ok(false),
            (Action::Create, _) | (_, None) => return self.create(now.wall).await,
            (Action::Renew, Some(lease)) => {
                let spec = self.renewed(lease.spec.clone().unwrap_or_default(), now.wall);
                (lease, spec)
            }
            (Action::TakeOver { transitions }, Some(lease)) => {
                (lease, self.fresh_spec(transitions, now.wall))
            }
        };
        lease.spec = Some(spec);
        self.replace(lease).await
    }

    /// Creates the Lease with us as holder; `Ok(false)` when another replica created it first.
    async fn create(&mut self, now: Timestamp) -> Result<bool, ApiError> {
        let mut lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.cfg.name.clone()),
                namespace: Some(self.cfg.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(self.fresh_spec(0, now)),
        };
        self.own(&mut lease.metadata).await;
        match self
            .calls
            .once(
                "create_lease",
                self.api.create(&PostParams::default(), &lease),
            )
            .await
        {
            Ok(written) => {
                self.held = Some(written);
                Ok(true)
            }
            Err(e) if e.code() == Some(409) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Names the owner in the Lease's metadata when it is known (a no-op once it is there).
    async fn own(&self, meta: &mut ObjectMeta) {
        if let Some(owner) = &self.cfg.owner
            && let Some(reference) = owner.reference_for(&self.cfg.namespace).await
        {
            adopt(meta, &reference);
        }
    }

    /// Our claim renewed: a fresh renewTime and our lease duration.
    fn renewed(&self, spec: LeaseSpec, now: Timestamp) -> LeaseSpec {
        LeaseSpec {
            renew_time: Some(MicroTime(now)),
            lease_duration_seconds: Some(self.duration_secs),
            ..spec
        }
    }

    /// Writes `lease` with optimistic concurrency; `Ok(true)` when the write won (and is
    /// kept as what we hold), `Ok(false)` on a conflict.
    async fn replace(&mut self, mut lease: Lease) -> Result<bool, ApiError> {
        lease.metadata.managed_fields = None;
        self.own(&mut lease.metadata).await;
        match self
            .calls
            .once(
                "replace_lease",
                self.api
                    .replace(&self.cfg.name, &PostParams::default(), &lease),
            )
            .await
        {
            Ok(written) => {
                self.held = Some(written);
                Ok(true)
            }
            Err(e) if e.code() == Some(409) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if we still hold it.
    async fn release(&self) -> Result<(), ApiError> {
        let name = self.cfg.name.clone();
        let api = self.api.clone();
        let Some(mut lease) = self
            .calls
            .once("get_lease", async { api.get_opt(&name).await })
            .await?
        else {
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let Some(spec) = released(&spec, &self.cfg.identity, Timestamp::now()) else {
            return Ok(());
        };
        lease.spec = Some(spec);
        lease.metadata.managed_fields = None;
        self.calls
            .once(
                "replace_lease",
                self.api
                    .replace(&self.cfg.name, &PostParams::default(), &lease),
            )
            .await
            .map(|_| ())
    }
}

/// Runs the election until `shutdown`, then releases the Lease if held. Returns only on
/// shutdown; API errors are retried at the retry period.
pub async fn run(
    client: kube::Client,
    calls: ApiCalls,
    cfg: LeaderConfig,
    leadership: Leadership,
    metrics: LeaderMetrics,
    on_change: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) -> Result<(), LeaderError> {
    let duration_secs = i32::try_from(cfg.lease_duration.as_secs())
        .ok()
        .filter(|s| *s >= 1)
        .ok_or(LeaderError::BadDuration)?;
    let mut elector = Elector {
        api: Api::namespaced(client, &cfg.namespace),
        calls,
        cfg,
        duration_secs,
        observed: None,
        held: None,
    };
    // Stop claiming two thirds into the duration: well before anyone else may take over.
    let hold_for = elector.cfg.lease_duration * 2 / 3;
    // What the metrics and logs last said, so a claim that lapsed between two attempts (the
    // API server unreachable) is still reported as lost.
    let mut reported = false;
    loop {
        let started = Instant::now();
        let result = tokio::select! {
            () = shutdown.cancelled() => break,
            r = elector.try_acquire_or_renew() => r,
        };
        match result {
            Ok(true) => leadership.set(true, Some(started + hold_for)),
            Ok(false) => leadership.set(false, None),
            Err(e) => {
                tracing::warn!(lease = %elector.cfg.name, error = %e, "cannot renew or acquire the leader Lease");
            }
        }
        let now_leader = leadership.is_leader();
        if now_leader && leadership.take_refused() && reported {
            // Still leader, but a write was refused while the claim had lapsed.
            tracing::info!(lease = %elector.cfg.name, "the leader claim lapsed before this renewal and writes were refused; evaluating again to write them");
            on_change.notify_one();
        }
        if now_leader != reported {
            reported = now_leader;
            metrics.transitions.inc();
            if now_leader {
                // Write the status the followers computed but could not write.
                on_change.notify_one();
                tracing::info!(lease = %elector.cfg.name, identity = %elector.cfg.identity, "became leader");
            } else {
                tracing::info!(lease = %elector.cfg.name, identity = %elector.cfg.identity, "lost the leader Lease; stopped writing");
            }
        }
        metrics.leader.set(i64::from(now_leader));
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(elector.cfg.retry_period) => {}
        }
    }
    let held = leadership.is_leader();
    leadership.set(false, None);
    metrics.leader.set(0);
    if held {
        metrics.transitions.inc();
        match elector.release().await {
            Ok(()) => tracing::info!(lease = %elector.cfg.name, "released the leader Lease"),
            Err(e) => {
                tracing::warn!(lease = %elector.cfg.name, error = %e, "cannot release the leader Lease; it will expire")
            }
        }
    }
    Ok(())
}

impl Categorized for LeaderError {
    fn category(&self) -> &'static str {
        match self {
            LeaderError::BadDuration => "lease_duration",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response, StatusCode};
    use kube::client::Body;
    use prometheus_client::registry::Registry;
    use serde_json::{Value, json};

    use crate::kubeapi::DependencyMetrics;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    fn elector() -> (Elector, Handle) {
        let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(svc, "default");
        let mut registry = Registry::default();
        let elector = Elector {
            api: Api::namespaced(client, "ops"),
            calls: ApiCalls::new(DependencyMetrics::register(&mut registry)),
            cfg: LeaderConfig {
                name: "prodready-leader".into(),
                namespace: "ops".into(),
                identity: "me".into(),
                lease_duration: Duration::from_secs(15),
                retry_period: Duration::from_secs(2),
                owner: None,
            },
            duration_secs: 15,
            observed: None,
            held: None,
        };
        (elector, handle)
    }

    fn respond(
        send: tower_test::mock::SendResponse<Response<Body>>,
        code: StatusCode,
        body: &Value,
    ) {
        send.send_response(
            Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(body).unwrap_or_default()))
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }

    fn lease(holder: &str, renewed_secs_ago: i64) -> Value {
        let renew = Timestamp::now()
            .saturating_sub(SignedDuration::from_secs(renewed_secs_ago))
            .unwrap_or_else(|_| Timestamp::now());
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "prodready-leader", "namespace": "ops", "resourceVersion": "7"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                     "renewTime": MicroTime(renew), "leaseTransitions": 2},
        })
    }

    async fn body_json(req: Request<Body>) -> Value {
        let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    #[tokio::test]
    async fn a_missing_lease_is_created_with_our_identity() {
        let (mut elector, mut handle) = elector();
        let server = tokio::spawn(async move {
            let (req, send) = handle
                .next_request()
                .await
                .unwrap_or_else(|| panic!("no GET"));
            assert_eq!(req.method(), http::Method::GET);
            assert_eq!(
                req.uri().path(),
                "/apis/coordination.k8s.io/v1/namespaces/ops/leases/prodready-leader"
            );
            respond(
                send,
                StatusCode::NOT_FOUND,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
            );
            let (req, send) = handle
                .next_request()
                .await
                .unwrap_or_else(|| panic!("no POST"));
            assert_eq!(req.method(), http::Method::POST);
            let body = body_json(req).await;
            assert_eq!(body["spec"]["holderIdentity"], "me");
            assert_eq!(body["spec"]["leaseDurationSeconds"], 15);
            respond(send, StatusCode::CREATED, &body);
        });
        assert!(
            elector
                .try_acquire_or_renew()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        server.await.unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test]
    async fn renewals_of_a_held_lease_are_one_request_and_a_conflict_looks_again() {
        let (mut elector, mut handle) = elector();
        let server = tokio::spawn(async move {
            // Acquire: GET (ours, renewed just now), PUT.
            let (req, send) = handle
                .next_request()
                .await
                .unwrap_or_else(|| panic!("no GET"));
            assert_eq!(req.method(), http::Method::GET);
            respond(send, StatusCode::OK, &lease("me", 1));
            let (req, send) = handle
                .next_request()
                .await
                .unwrap_or_else(|| panic!("no PUT"));
            assert_eq!(req.method(), http::Method::PUT);
            let mut written = body_json(req).await;
            written["metadata"]["resourceVersion"] = json!("8");
            respond(send, StatusCode::OK, &written);
            // Renew: a PUT of our own last write, no GET.
            let (req, send) = handle
                .next_request()
                .await
                .unwrap_or_else(|| panic!("no PUT"));
            assert_eq!(req.method(), http::Method::PUT);
            let mut again = body_json(req).await;
            assert_eq!(again["metadata"]["resourceVersion"], "8");
            again["metadata"]["resourceVersion"] = json!("9");
            respond(send, StatusCode::OK, &again);
            // And again, from that write; this time someone else wrote in between.
            let (req, send) = handle
                .next_request()
                .await
                .unwrap_or_else(|| panic!("no PUT"));
            assert_eq!(req.method(), http::Method::PUT);
            let body = body_json(req).await;
            assert_eq!(body["metadata"]["resourceVersion"], "9");
            assert_eq!(body["spec"]["holderIdentity"], "me");
            respond(
                send,
                StatusCode::CONFLICT,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409}),
            );
            // The conflict: GET again; someone else holds it now.
            let (req, send) = handle
                .next_request()
                .await
                .unwrap_or_else(|| panic!("no GET"));
            assert_eq!(req.method(), http::Method::GET);
            respond(send, StatusCode::OK, &lease("other", 1));
        });
        assert!(
            elector
                .try_acquire_or_renew()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        assert!(
            elector
                .try_acquire_or_renew()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        assert!(
            !elector
                .try_acquire_or_renew()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        server.await.unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test]
    async fn a_fresh_foreign_claim_is_respected() {
        let (mut elector, mut handle) = elector();
        let server = tokio::spawn(async move {
            let (_, send) = handle
                .next_request()
                .await
                .unwrap_or_else(|| panic!("no GET"));
            respond(send, StatusCode::OK, &lease("other", 1));
            // No write follows.
            let next = tokio::time::timeout(Duration::from_millis(50), handle.next_request()).await;
            assert!(next.is_err(), "wrote a Lease held by someone else");
        });
        assert!(
            !elector
                .try_acquire_or_renew()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        server.await.unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test]
    async fn a_long_stale_claim_is_taken_over_with_optimistic_concurrency() {
        let (mut elector, mut handle) = elector();
        let server = tokio::spawn(async move {
            let (_, send) = handle
                .next_request()
                .await
                .unwrap_or_else(|| panic!("no GET"));
            respond(send, StatusCode::OK, &lease("gone", 600));
            let (req, send) = handle
                .next_request()
                .await
                .unwrap_or_else(|| panic!("no PUT"));
            assert_eq!(req.method(), http::Method::PUT);
            let body = body_json(req).await;
            assert_eq!(
                body["metadata"]["resourceVersion"], "7",
                "replace must carry the version read"
            );
            assert_eq!(body["spec"]["holderIdentity"], "me");
            assert_eq!(body["spec"]["leaseTransitions"], 3);
            respond(send, StatusCode::OK, &body);
        });
        assert!(
            elector
                .try_acquire_or_renew()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        server.await.unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test]
    async fn losing_the_write_race_is_not_leadership() {
        let (mut elector, mut handle) = elector();
        let server = tokio::spawn(async move {
            let (_, send) = handle
                .next_request()
                .await
                .unwrap_or_else(|| panic!("no GET"));
            respond(send, StatusCode::OK, &lease("gone", 600));
            let (_, send) = handle
                .next_request()
                .await
                .unwrap_or_else(|| panic!("no PUT"));
            respond(
                send,
                StatusCode::CONFLICT,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409}),
            );
        });
        assert!(
            !elector
                .try_acquire_or_renew()
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        server.await.unwrap_or_else(|e| panic!("{e}"));
    }

    fn foreign(holder: &str, rv: &str, renewed: Option<Timestamp>, duration: Option<i32>) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some("prodready-leader".into()),
                resource_version: Some(rv.into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: (!holder.is_empty()).then(|| holder.to_owned()),
                lease_duration_seconds: duration,
                renew_time: renewed.map(MicroTime),
                lease_transitions: Some(2),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn decide_table() {
        let base = Instant::now();
        let wall: Timestamp = "2026-06-01T00:00:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let at = |mono_secs: u64| Now {
            mono: base + Duration::from_secs(mono_secs),
            wall,
        };
        let secs_ago = |s: i64| wall.checked_sub(SignedDuration::from_secs(s)).ok();
        let seen = |rv: &str, mono_secs: u64| Observed {
            resource_version: Some(rv.into()),
            at: base + Duration::from_secs(mono_secs),
        };
        let take = Action::TakeOver { transitions: 3 };
        // (case, lease, observed before, now, action, observed after)
        type Case = (
            &'static str,
            Option<Lease>,
            Option<Observed>,
            Now,
            Action,
            Option<Observed>,
        );
        let cases: Vec<Case> = vec![
            ("no Lease: create", None, None, at(0), Action::Create, None),
            (
                "ours: renew",
                Some(foreign("me", "7", secs_ago(1), Some(15))),
                None,
                at(0),
                Action::Renew,
                None,
            ),
            (
                "released (no holder): take over",
                Some(foreign("", "7", secs_ago(1), Some(1))),
                None,
                at(0),
                take.clone(),
                None,
            ),
            (
                "a fresh foreign claim, first seen: wait and remember it",
                Some(foreign("other", "7", secs_ago(1), Some(15))),
                None,
                at(5),
                Action::Wait,
                Some(seen("7", 5)),
            ),
            (
                "unchanged for less than a duration: wait",
                Some(foreign("other", "7", secs_ago(1), Some(15))),
                Some(seen("7", 0)),
                at(15),
                Action::Wait,
                Some(seen("7", 0)),
            ),
            (
                "unchanged for more than a duration (a stopped holder): take over",
                Some(foreign("other", "7", secs_ago(1), Some(15))),
                Some(seen("7", 0)),
                at(16),
                take.clone(),
                Some(seen("7", 0)),
            ),
            (
                "renewed since (new version): wait, timing starts again",
                Some(foreign("other", "8", secs_ago(1), Some(15))),
                Some(seen("7", 0)),
                at(16),
                Action::Wait,
                Some(seen("8", 16)),
            ),
            (
                "renewTime older than two durations (a long-dead holder): take over at once",
                Some(foreign("other", "7", secs_ago(31), Some(15))),
                None,
                at(0),
                take.clone(),
                Some(seen("7", 0)),
            ),
            (
                "renewTime within two durations: wait",
                Some(foreign("other", "7", secs_ago(29), Some(15))),
                None,
                at(0),
                Action::Wait,
                Some(seen("7", 0)),
            ),
            (
                "no duration on the Lease: ours (15 s) applies",
                Some(foreign("other", "7", secs_ago(31), None)),
                None,
                at(0),
                take.clone(),
                Some(seen("7", 0)),
            ),
        ];
        for (case, lease, before, now, action, after) in cases {
            let d = decide(lease.as_ref(), before.as_ref(), "me", now, 15);
            assert_eq!(d.action, action, "{case}");
            assert_eq!(d.observed, after, "{case}");
        }
        let mut first = foreign("", "1", None, None);
        if let Some(spec) = first.spec.as_mut() {
            spec.lease_transitions = None;
        }
        assert_eq!(
            decide(Some(&first), None, "me", at(0), 15).action,
            Action::TakeOver { transitions: 1 },
            "a Lease without transitions counts from zero"
        );
    }

    #[test]
    fn only_the_holder_releases() {
        let now: Timestamp = "2026-06-01T00:00:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let spec = foreign("me", "7", None, Some(15)).spec.unwrap_or_default();
        let r = released(&spec, "me", now).expect("ours");
        assert_eq!(r.holder_identity, None);
        assert_eq!(r.lease_duration_seconds, Some(1));
        assert_eq!(r.renew_time, Some(MicroTime(now)));
        assert_eq!(r.lease_transitions, Some(2));
        assert_eq!(released(&spec, "other", now), None);
    }

    #[tokio::test]
    async fn the_gate_starts_a_write_only_while_the_claim_holds() {
        let l = Leadership::default();
        let started = std::sync::atomic::AtomicBool::new(false);
        let write = async {
            started.store(true, Ordering::SeqCst);
            7
        };
        assert_eq!(l.gated(write).await, None);
        assert!(
            !started.load(Ordering::SeqCst),
            "a follower's write never starts"
        );
        assert_eq!(Leadership::always().gated(async { 7 }).await, Some(7));
    }

    #[tokio::test]
    async fn a_refused_write_is_remembered_until_asked() {
        let l = Leadership::default();
        l.set(true, Some(Instant::now() + Duration::from_secs(60)));
        assert_eq!(l.gated(async { 1 }).await, Some(1));
        assert!(!l.take_refused(), "a write that ran is not a refusal");
        // The claim lapses (a renewal came too late): the write is refused and remembered,
        // so the election evaluates again once the claim holds.
        l.set(true, Some(Instant::now()));
        assert_eq!(l.gated(async { 2 }).await, None);
        assert!(l.take_refused());
        assert!(!l.take_refused(), "asked once, forgotten");
    }

    #[test]
    fn a_claim_is_valid_only_until_its_deadline() {
        let l = Leadership::default();
        assert!(!l.is_leader());
        l.set(true, Some(Instant::now() + Duration::from_secs(60)));
        assert!(l.is_leader());
        assert_eq!(l.epoch(), 1);
        l.set(
            true,
            Some(
                Instant::now()
                    .checked_sub(Duration::from_secs(1))
                    .unwrap_or_else(Instant::now),
            ),
        );
        assert!(!l.is_leader(), "a lapsed claim must stop writes at once");
        l.set(false, None);
        l.set(true, Some(Instant::now() + Duration::from_secs(60)));
        assert_eq!(l.epoch(), 2);
    }
}
