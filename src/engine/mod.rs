//! The sans-IO engine: policies compiled once, evaluated against workloads and a context.
//!
//! Nothing here talks to the API server, reads the clock, or logs. The `audit` command, the
//! controller and the admission webhook all call the same [`CompiledPolicy::evaluate`], so
//! their verdicts cannot disagree.
//!
//! The rule interface ([`rule`]) lives here; the rules themselves (`crate::rules`) sit one
//! layer up and hand their catalog to [`CompiledPolicy::compile`], so nothing in the engine
//! imports them.

pub mod autoscaler;
pub mod context;
mod evaluate;
mod exemption;
pub mod monitoring;
pub mod object;
mod policy;
pub mod rule;
pub mod selector;
pub mod service;
pub mod workload;

pub use context::Context;
pub use evaluate::{Evaluation, ExemptViolation, Outcome, RuleResult, WorkloadVerdict};
pub use exemption::{AppliedExemption, ExemptionSource};
pub use policy::{ActiveRule, CompiledPolicy, PolicyError, settings};
pub use rule::{Check, Examples, Params, RuleDef, Verdict, Violation};
pub use workload::Workload;
