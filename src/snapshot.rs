//! The state the controller and the admission webhook share: the compiled policies and the
//! cross-object context, as one consistent snapshot.
//!
//! The controller rebuilds the snapshot from its reflector stores (debounced) and publishes it;
//! the webhook only reads the latest one, so an admission review never waits on the API
//! server and both front ends judge from the same objects.

use std::sync::{Arc, RwLock};

use k8s_openapi::jiff::Timestamp;

use crate::engine::{CompiledPolicy, Context, PolicyError};

/// Policies and context at one instant.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Valid policies, compiled.
    pub policies: Vec<Arc<CompiledPolicy>>,
    /// Policies that failed to compile (they are not applied).
    pub invalid: Vec<PolicyError>,
    /// The cross-object context.
    pub context: Context,
    /// Whether every store had finished its initial list when this was built.
    pub synced: bool,
    /// When it was built.
    pub built_at: Option<Timestamp>,
}

/// Where the latest snapshot is published. Cheap to clone; readers never block writers for
/// longer than an `Arc` clone.
#[derive(Clone, Debug, Default)]
pub struct SharedSnapshot(Arc<RwLock<Arc<Snapshot>>>);

impl SharedSnapshot {
    /// The latest snapshot (an `Arc` clone: readers keep theirs while a new one is stored).
    pub fn load(&self) -> Arc<Snapshot> {
        match self.0.read() {
            Ok(guard) => Arc::clone(&guard),
            // A writer panicked mid-store; the Arc inside is still a complete snapshot.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Publishes a new snapshot.
    pub fn store(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        match self.0.write() {
            Ok(mut guard) => *guard = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
    }
}
