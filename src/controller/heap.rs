//! The operator's heap, by part: how many bytes each store, the webhook's context, the Event
//! state and the last evaluation round hold, next to what the allocator and the kernel say.
//! Served as JSON at the admin server's `GET /debug/memory`; bench/RESULTS.md's memory
//! tables are read from it.
//!
//! The bytes come from the counting allocator ([`crate::memory`]): a stored object's share is
//! what a deep copy of it allocates (so the capacity slack of the original is not seen), plus
//! its `Arc` and its slot and key in the store's table. Objects shared between a store and the
//! context are counted once, in the store; the context's part is its own indexes.

use std::mem::size_of;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::response::IntoResponse as _;
use serde::Serialize;

use super::Stores;
use super::events::EventMemory;
use super::stores::{JobEntry, Store, Tracked};
use crate::memory::{self, MallocStats, deep_size};

/// One part of the heap.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// What it is (`store/Deployment`, `context`, `events/memory` …).
    pub part: String,
    /// Objects or entries it holds.
    pub objects: usize,
    /// Heap bytes.
    pub bytes: usize,
}

/// The whole picture at one instant.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeapProfile {
    /// The process's resident set (`VmRSS`), bytes.
    pub rss_bytes: Option<u64>,
    /// Its peak (`VmHWM`), bytes.
    pub hwm_bytes: Option<u64>,
    /// Live heap bytes as counted by the allocator wrapper (requested sizes).
    pub heap_live_bytes: Option<usize>,
    /// glibc's view: its arenas, what is in use and what it keeps free.
    pub malloc: Option<MallocStats>,
    /// How far above its starting live bytes the latest evaluation round's heap rose
    /// (snapshot, decoded workloads, status builders, failing sets), bytes.
    pub last_round_peak_bytes: usize,
    /// The largest such rise since the start, bytes.
    pub max_round_peak_bytes: usize,
    /// The parts.
    pub parts: Vec<Part>,
}

/// What the controller shares with the admin server for [`HeapProbe::profile`].
#[derive(Debug)]
pub struct HeapProbe {
    pub(super) stores: Arc<Stores>,
    pub(super) memory: Arc<Mutex<EventMemory>>,
    pub(super) outbox: Arc<super::reconcile::Outbox>,
    pub(super) last_round_peak: AtomicUsize,
    pub(super) max_round_peak: AtomicUsize,
    /// The ledger's workloads and heap bytes, as of the last round.
    pub(super) ledger: (AtomicUsize, AtomicUsize),
}

impl HeapProbe {
    /// Records one round's rise above its starting live bytes.
    pub(super) fn round_peak(&self, bytes: usize) {
        self.last_round_peak.store(bytes, Ordering::Relaxed);
        self.max_round_peak.fetch_max(bytes, Ordering::Relaxed);
    }

    /// Measures every part now. Costs a deep copy of every stored object: on demand only.
    pub fn profile(&self) -> HeapProfile {
        let s = &self.stores;
        let mut parts = vec![
            store_part(&s.deployments, tracked_size),
            store_part(&s.statefulsets, tracked_size),
            store_part(&s.daemonsets, tracked_size),
            store_part(&s.cronjobs, tracked_size),
            store_part(&s.replicasets, tracked_size),
            store_part(&s.pods, tracked_size),
            store_part(&s.jobs, |j| match j {
                JobEntry::Run(r) => arc_size(r.as_ref()) + deep_size(r.as_ref()),
                JobEntry::Standalone(t) => arc_size(t.as_ref()) + tracked_size(t),
            }),
            store_part(&s.services, deep_size),
            store_part(&s.pdbs, deep_size),
            store_part(&s.network_policies, deep_size),
            store_part(&s.autoscalers, deep_size),
            store_part(&s.namespaces, deep_size),
            store_part(&s.leases, deep_size),
            store_part(&s.policies, deep_size),
            store_part(&s.service_monitors, deep_size),
            store_part(&s.pod_monitors, deep_size),
        ];
        let (ctx, bytes) = memory::measure(|| s.fresh_context());
        parts.push(Part {
            part: "context (the snapshot's indexes)".to_owned(),
            objects: 1,
            bytes: bytes.max(0).cast_unsigned(),
        });
        drop(ctx);
        {
            let m = self
                .memory
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            parts.push(Part {
                part: "events/memory".to_owned(),
                objects: m.len(),
                bytes: deep_size(&*m),
            });
        }
        let (objects, bytes) = self.outbox.heap_bytes();
        parts.push(Part {
            part: "events/outbox".to_owned(),
            objects,
            bytes,
        });
        parts.push(Part {
            part: "ledger".to_owned(),
            objects: self.ledger.0.load(Ordering::Relaxed),
            bytes: self.ledger.1.load(Ordering::Relaxed),
        });
        let (rss, hwm) = proc_status();
        HeapProfile {
            rss_bytes: rss,
            hwm_bytes: hwm,
            heap_live_bytes: memory::heap().map(|(live, _)| live),
            malloc: memory::malloc_stats(),
            last_round_peak_bytes: self.last_round_peak.load(Ordering::Relaxed),
            max_round_peak_bytes: self.max_round_peak.load(Ordering::Relaxed),
            parts,
        }
    }
}

fn arc_size<T>(_: &T) -> usize {
    // The strong and weak counts beside the value.
    2 * size_of::<usize>() + size_of::<T>()
}

/// The heap a stored workload holds besides its `Arc`.
fn tracked_size(t: &Tracked) -> usize {
    t.namespace.capacity()
        + t.name.capacity()
        + t.uid.as_ref().map_or(0, String::capacity)
        + t.encoded_len()
}

fn store_part<T>(store: &Store<T>, deep: impl Fn(&T) -> usize) -> Part {
    let (objects, bytes) = store.heap_bytes(|v| arc_size(v) + deep(v));
    Part {
        part: format!("store/{}", store.kind()),
        objects,
        bytes,
    }
}

/// `VmRSS` and `VmHWM` of this process, bytes.
fn proc_status() -> (Option<u64>, Option<u64>) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return (None, None);
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `GET /debug/memory`: the profile as JSON, one computation at a time.
pub fn router(probe: Arc<HeapProbe>) -> axum::Router {
    let busy = Arc::new(tokio::sync::Mutex::new(()));
    axum::Router::new().route(
        "/debug/memory",
        axum::routing::get(move || {
            let (probe, busy) = (Arc::clone(&probe), Arc::clone(&busy));
            async move {
                let _one = busy.lock().await;
                let profile = tokio::task::spawn_blocking(move || probe.profile()).await;
                match profile {
                    Ok(p) => axum::Json(p).into_response(),
                    Err(e) => (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        format!("the memory profile could not be computed: {e}\n"),
                    )
                        .into_response(),
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt as _;

    #[tokio::test]
    async fn debug_memory_answers_every_part_as_json() {
        let probe = Arc::new(HeapProbe {
            stores: Arc::new(Stores::default()),
            memory: Arc::default(),
            outbox: Arc::default(),
            last_round_peak: 0.into(),
            max_round_peak: 0.into(),
            ledger: (0.into(), 0.into()),
        });
        probe.round_peak(7);
        let req = axum::http::Request::builder()
            .uri("/debug/memory")
            .body(Body::empty())
            .unwrap_or_else(|e| panic!("{e}"));
        let resp = router(probe)
            .oneshot(req)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status(), 200);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(v["lastRoundPeakBytes"], 7);
        let parts: Vec<&str> = v["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["part"].as_str())
            .collect();
        for want in [
            "store/Deployment",
            "store/Service",
            "events/memory",
            "events/outbox",
            "ledger",
        ] {
            assert!(parts.contains(&want), "{want} missing from {parts:?}");
        }
    }
}
