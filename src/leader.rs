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

use crate::kubeapi::{ApiCalls, ApiError};

/// The Lease and timings.
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

fn now_micro() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// What we last saw of someone else's Lease, to time its expiry on our own clock.
#[derive(Debug, PartialEq)]
struct Observed {
    resource_version: Option<String>,
    at: Instant,
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
    fn fresh_spec(&self, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(self.duration_secs),
            acquire_time: Some(now_micro()),
            renew_time: Some(now_micro()),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Acquires or renews; `Ok(true)` when we hold the Lease after this call.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, ApiError> {
        if let Some(mut lease) = self.held.take() {
            lease.spec = Some(self.renewed(lease.spec.clone().unwrap_or_default()));
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
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.fresh_spec(0)),
            };
            return match self
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
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let new_spec = if holder == self.cfg.identity {
            self.renewed(spec)
        } else if holder.is_empty() || self.expired(&lease, &spec) {
            self.fresh_spec(spec.lease_transitions.unwrap_or(0) + 1)
        } else {
            return Ok(false);
        };
        lease.spec = Some(new_spec);
        self.replace(lease).await
    }

    /// Our claim renewed: a fresh renewTime and our lease duration.
    fn renewed(&self, spec: LeaseSpec) -> LeaseSpec {
        LeaseSpec {
            renew_time: Some(now_micro()),
            lease_duration_seconds: Some(self.duration_secs),
            ..spec
        }
    }

    /// Writes `lease` with optimistic concurrency; `Ok(true)` when the write won (and is
    /// kept as what we hold), `Ok(false)` on a conflict.
    async fn replace(&mut self, mut lease: Lease) -> Result<bool, ApiError> {
        lease.metadata.managed_fields = None;
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

    /// Whether another holder's claim has lapsed: the Lease has not changed for a whole
    /// duration on our clock, or its renewTime is more than two durations old on the wall
    /// clock (tolerates skew, and spares a new replica the wait for a long-dead holder).
    fn expired(&mut self, lease: &Lease, spec: &LeaseSpec) -> bool {
        let rv = lease.metadata.resource_version.clone();
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(self.duration_secs)).unwrap_or(1),
        );
        let observed_at = match &self.observed {
            Some(o) if o.resource_version == rv => o.at,
            _ => {
                self.observed = Some(Observed {
                    resource_version: rv,
                    at: Instant::now(),
                });
                Instant::now()
            }
        };
        if observed_at.elapsed() > duration {
            return true;
        }
        let stale_after = SignedDuration::try_from(duration * 2).unwrap_or(SignedDuration::MAX);
        spec.renew_time.as_ref().is_some_and(|t| {
            t.0.saturating_add(stale_after)
                .is_ok_and(|t| t < Timestamp::now())
        })
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
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now_micro());
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
