//! The operator scenarios of issue 7 (2: cold start at scale, 3: policy edit to status,
//! 4: churn, 6: memory growth) against a real control plane (the `e2e` crate's etcd +
//! kube-apiserver), with the operator as a subprocess.
//!
//! Every figure is checked against the truth: the expected `summary` is computed with the
//! prodready engine over the very objects the API server returns (listed back after creation,
//! so server-side defaults are included), in the context the operator builds (leases known,
//! ServiceMonitor/PodMonitor CRDs absent).

mod audit_scan;
mod large;
mod report;
mod reports_scale;
mod scenarios;
mod truth;

pub use audit_scan::*;
pub use large::*;
pub use report::*;
pub use reports_scale::*;
pub use scenarios::*;
pub use truth::*;

/// The policy every scenario uses (`config/samples/baseline.yaml`).
pub const POLICY_FILE: &str = "config/samples/baseline.yaml";
/// Its name.
pub const POLICY: &str = "baseline";
pub(crate) const CRD_FILE: &str = "crds/productionpolicies.prodready.dev.yaml";
/// The rule the churn scenario breaks, one Deployment at a time (every generated workload
/// passes it, so its count rises by exactly one per change).
pub const CHURN_RULE: &str = "liveness-probe";
/// The user the operator authenticates as (a token of its own, so nothing else is it).
pub const OPERATOR_USER: &str = "system:serviceaccount:kube-system:default";
