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
                Ok(_) => Ok(true),
                Err(e) if e.code() == Some(409) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let new_spec = if holder == self.cfg.identity {
            LeaseSpec {
                renew_time: Some(now_micro()),
                lease_duration_seconds: Some(self.duration_secs),
                ..spec
            }
        } else if holder.is_empty() || self.expired(&lease, &spec) {
            self.fresh_spec(spec.lease_transitions.unwrap_or(0) + 1)
        } else {
            return Ok(false);
        };
        lease.spec = Some(new_spec);
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
            Ok(_) => Ok(true),
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
    };
    // Stop claiming two thirds into the duration: well before anyone else may take over.
    let hold_for = elector.cfg.lease_duration * 2 / 3;
    loop {
        let started = Instant::now();
        let was = leadership.is_leader();
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
        if now_leader != was {
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
