//! The `ProductionPolicy` API (`prodready.dev/v1alpha1`): what a cluster admin declares.
//!
//! These types are the single source of the CRD schema (`prodready crd`), the policy files
//! the `audit` command reads, and the objects the controller watches. Every field carries a
//! doc comment because the comments become `kubectl explain` text.

mod policy;
mod rules;
mod status;

pub use policy::*;
pub use rules::*;
pub use status::*;

/// The API group of every prodready resource.
pub const GROUP: &str = "prodready.dev";
/// The prefix of every prodready workload annotation.
pub const ANNOTATION_PREFIX: &str = "prodready.dev/";
