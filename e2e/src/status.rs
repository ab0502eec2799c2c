//! Reading what the operator wrote: a policy's status (waiting for it to satisfy a check) and
//! the Events on a workload.

use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams};
use prodready::api::{ProductionPolicy, ProductionPolicyStatus};

use crate::error::Error;
use crate::wait::wait_for;

/// The policy's status, if it has one yet.
pub async fn status_of(client: &Client, policy: &str) -> Option<ProductionPolicyStatus> {
    let api: Api<ProductionPolicy> = Api::all(client.clone());
    api.get_opt(policy)
        .await
        .ok()
        .flatten()
        .and_then(|p| p.status)
}

/// `(status, reason)` of the condition of type `t`.
pub fn condition<'a>(s: &'a ProductionPolicyStatus, t: &str) -> Option<(&'a str, &'a str)> {
    s.conditions
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| (c.status.as_str(), c.reason.as_str()))
}

/// Waits until the policy's status satisfies `check` (which says what it saw otherwise).
pub async fn wait_status<F>(
    client: &Client,
    policy: &str,
    timeout: Duration,
    what: &str,
    check: F,
) -> ProductionPolicyStatus
where
    F: Fn(&ProductionPolicyStatus) -> Result<(), String>,
{
    let r = wait_for(timeout, what, || async {
        let s = status_of(client, policy)
            .await
            .ok_or("no status yet".to_owned())?;
        check(&s).map(|()| s.clone()).map_err(|e| {
            format!(
                "{e}; status: {}",
                serde_json::to_string(&s).unwrap_or_default()
            )
        })
    })
    .await;
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// (matched, compliant, violating, exempt, unknown).
pub fn counts(s: &ProductionPolicyStatus) -> (u32, u32, u32, u32, u32) {
    let x = s.summary.clone().unwrap_or_default();
    (x.matched, x.compliant, x.violating, x.exempt, x.unknown)
}

/// A [`wait_status`] check for exact counts (see [`counts`]).
pub fn expect_counts(
    want: (u32, u32, u32, u32, u32),
) -> impl Fn(&ProductionPolicyStatus) -> Result<(), String> {
    move |s| {
        if counts(s) == want {
            Ok(())
        } else {
            Err(format!(
                "counts (matched, compliant, violating, exempt, unknown) = {:?}, want {want:?}",
                counts(s)
            ))
        }
    }
}

/// The Events with `reason` on the object `name` in `ns`.
pub async fn workload_events(client: &Client, ns: &str, name: &str, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().fields(&format!("involvedObject.name={name},reason={reason}"));
    api.list(&lp).await.map(|l| l.items).unwrap_or_default()
}

/// Waits until the Events with `reason` on `name` in `ns` satisfy `done` (e.g. "exactly
/// one"), and returns them; the error says how many there were.
pub async fn wait_for_events(
    client: &Client,
    ns: &str,
    name: &str,
    reason: &str,
    timeout: Duration,
    done: impl Fn(&[Event]) -> bool,
) -> Result<Vec<Event>, Error> {
    wait_for(
        timeout,
        &format!("{reason} Events on {ns}/{name}"),
        || async {
            let events = workload_events(client, ns, name, reason).await;
            if done(&events) {
                Ok(events)
            } else {
                Err(format!("{} events", events.len()))
            }
        },
    )
    .await
}
