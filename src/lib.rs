//! prodready: a Kubernetes operator that enforces production readiness.
//!
//! The crate is a library with a thin binary. [`engine`] and [`rules`] are pure (no IO);
//! [`api`] holds the `ProductionPolicy` types the CRD is generated from; [`audit`] reads
//! manifests and writes reports for CI pipelines.

pub mod admin;
pub mod admission;
pub mod api;
pub mod audit;
pub mod cli;
pub mod cluster_name;
pub mod controller;
pub mod corpus;
pub mod crd;
pub mod engine;
pub mod error;
pub mod flags;
pub mod fleet;
pub mod kubeapi;
pub mod leader;
pub mod memory;
pub mod metrics;
pub mod owner;
pub mod reports;
pub mod rule_pages;
pub mod rules;
pub mod run;
pub mod scan;
pub mod snapshot;
pub mod telemetry;
pub mod text;
