//! The rule catalog: one pure function per rule, one file per rule.
//!
//! A rule reads a [`Workload`], the cross-object [`Context`] and its resolved [`Params`], and
//! returns a [`Verdict`]. It never does IO, never logs, and never reads the clock: `now`
//! comes in through [`Check`]. Severity, exemptions and enablement are applied by the engine,
//! not by the rule, so a rule only says what is wrong and how to fix it.

pub use crate::engine::rule::{Check, Examples, Params, RuleDef, Verdict, Violation};
use crate::engine::workload::ContainerRef;
use image_pinned::reference::{self, ImageRef};

mod allowed_registries;
mod cpu_limit;
mod cronjob_health;
mod cronjob_single_runner;
mod disruption_budget;
mod distinct_probes;
#[cfg(test)]
mod exemption_tests;
mod graceful_shutdown;
mod image_digest;
mod image_pinned;
mod leader_lease;
mod liveness_probe;
mod memory_limit;
mod network_policy;
#[cfg(test)]
mod policy_tests;
mod readiness_probe;
mod replicas_ha;
mod resource_requests;
mod rollout_history;
mod secret_literal_env;
mod security_context;
mod service_monitor;
mod startup_probe;
#[cfg(test)]
pub(crate) mod testing;
mod topology_spread;

/// One violation per container for which `lacks` holds: the shape shared by the rules that
/// require a field on every container (probes, limits).
pub(crate) fn each_container_lacking<'a>(
    containers: impl Iterator<Item = ContainerRef<'a>>,
    lacks: impl Fn(&ContainerRef<'a>) -> bool,
    message: impl Fn(&str) -> String,
    remediation: &str,
) -> Verdict {
    Verdict::from_violations(
        containers
            .filter(|c| lacks(c))
            .map(|c| Violation::container(c.name(), message(c.name()), remediation))
            .collect(),
    )
}

/// One violation per container whose image is empty (fixed by `missing`) or that `judge`
/// rejects (`judge` gets the container name, the trimmed image and its parsed reference, and
/// returns the message; fixed by `remediation`): the loop the three image rules share, so they
/// read a container's image the same way.
pub(crate) fn each_image<'a>(
    containers: impl Iterator<Item = ContainerRef<'a>>,
    missing: &str,
    remediation: &str,
    judge: impl Fn(&str, &str, &ImageRef) -> Option<String>,
) -> Verdict {
    Verdict::from_violations(
        containers
            .filter_map(|cr| {
                let name = cr.name();
                let image = cr.container.image.as_deref().unwrap_or_default().trim();
                if image.is_empty() {
                    return Some(Violation::container(
                        name,
                        format!("container \"{name}\" has no image"),
                        missing,
                    ));
                }
                judge(name, image, &reference::parse(image))
                    .map(|message| Violation::container(name, message, remediation))
            })
            .collect(),
    )
}

/// Every rule, in catalog order.
pub static CATALOG: [&RuleDef; 22] = [
    &liveness_probe::RULE,
    &readiness_probe::RULE,
    &distinct_probes::RULE,
    &startup_probe::RULE,
    &resource_requests::RULE,
    &memory_limit::RULE,
    &cpu_limit::RULE,
    &image_pinned::RULE,
    &image_digest::RULE,
    &allowed_registries::RULE,
    &cronjob_single_runner::RULE,
    &cronjob_health::RULE,
    &leader_lease::RULE,
    &service_monitor::RULE,
    &graceful_shutdown::RULE,
    &replicas_ha::RULE,
    &disruption_budget::RULE,
    &topology_spread::RULE,
    &rollout_history::RULE,
    &secret_literal_env::RULE,
    &security_context::RULE,
    &network_policy::RULE,
];

pub use cronjob_health::overdue_at as cronjob_overdue_at;

/// Where a rule's page is read: `docs/rules/<id>.md` on the main branch of the repository
/// (Cargo.toml's `repository`). SARIF's `helpUri`, `prodready explain` and the audit table
/// all link through here.
pub fn doc_url(id: &str) -> String {
    format!(
        "{}/blob/main/docs/rules/{id}.md",
        env!("CARGO_PKG_REPOSITORY")
    )
}

/// The key of a rule's settings under a policy's `spec.rules`: its id in camelCase
/// (`liveness-probe` → `livenessProbe`).
pub fn settings_key(id: &str) -> String {
    let mut key = String::with_capacity(id.len());
    let mut upper = false;
    for c in id.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            key.extend(c.to_uppercase());
            upper = false;
        } else {
            key.push(c);
        }
    }
    key
}

/// Looks a rule up by id.
pub fn find(id: &str) -> Option<&'static RuleDef> {
    CATALOG.iter().copied().find(|r| r.id == id)
}
