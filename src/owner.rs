//! What the operator's run-time objects (the leader Lease, the self-managed webhook Secret)
//! belong to: the operator's own Deployment, named by `--owner-deployment`. With an owner
//! reference on them, Kubernetes' garbage collector removes them with the Deployment, so
//! `helm uninstall` (or `kubectl delete -k`) leaves nothing of prodready's behind.
//!
//! The Deployment's uid is read once, lazily, the first time a writer asks, and kept: if the
//! Deployment is deleted while the operator still runs (an uninstall in progress), an object
//! re-created in those last seconds still names the gone uid, and the garbage collector
//! removes it too. A failed lookup is retried (at most once a minute) on a later write;
//! meanwhile objects are written without the reference, never blocked on it.
//!
//! The reference is only given to objects in the Deployment's own namespace: Kubernetes
//! treats a namespaced owner in another namespace as absent and would delete the dependent.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::Api;
use tokio::sync::Mutex;

use crate::kubeapi::ApiCalls;

/// How long after a failed lookup the next one may be tried.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// The owner of the operator's run-time objects, resolved on first use.
pub struct Owner {
    api: Api<Deployment>,
    calls: ApiCalls,
    name: String,
    namespace: String,
    state: Mutex<State>,
}

impl std::fmt::Debug for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owner")
            .field("deployment", &self.name)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    resolved: Option<OwnerReference>,
    next_try: Option<Instant>,
}

impl Owner {
    /// The Deployment `name` in `namespace` (the operator's own), read with `calls`.
    pub fn deployment(client: kube::Client, calls: ApiCalls, name: &str, namespace: &str) -> Self {
        Owner {
            api: Api::namespaced(client, namespace),
            calls,
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            state: Mutex::new(State::default()),
        }
    }

    /// The owner reference for an object in `namespace`, or `None` when it cannot be given
    /// (another namespace, or the Deployment not readable yet).
    pub async fn reference_for(&self, namespace: &str) -> Option<OwnerReference> {
        if namespace != self.namespace {
            return None;
        }
        let mut state = self.state.lock().await;
        if let Some(r) = &state.resolved {
            return Some(r.clone());
        }
        if state.next_try.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        let api = self.api.clone();
        let name = self.name.clone();
        match self
            .calls
            .once(
                "get_owner_deployment",
                async move { api.get_opt(&name).await },
            )
            .await
        {
            Ok(Some(d)) => {
                let r = reference(&d);
                if r.is_none() {
                    tracing::warn!(deployment = %self.name, namespace = %self.namespace, "the owner Deployment has no uid yet; the leader Lease and webhook Secret are written without an owner for now");
                }
                state.resolved.clone_from(&r);
                state.next_try = r.is_none().then(|| Instant::now() + RETRY_AFTER);
                r
            }
            Ok(None) => {
                tracing::warn!(deployment = %self.name, namespace = %self.namespace, "the owner Deployment named by --owner-deployment does not exist, so the leader Lease and webhook Secret are written without an owner and will outlive an uninstall; fix the flag (it must name the operator's own Deployment) or delete them by hand after uninstalling");
                state.next_try = Some(Instant::now() + RETRY_AFTER);
                None
            }
            Err(e) => {
                tracing::warn!(deployment = %self.name, namespace = %self.namespace, error = %e, "cannot read the owner Deployment; the leader Lease and webhook Secret are written without an owner until it can be read (retried within a minute)");
                state.next_try = Some(Instant::now() + RETRY_AFTER);
                None
            }
        }
    }
}

/// The owner reference naming `deployment`: not a controller reference (the Deployment does
/// not manage the object) and without `blockOwnerDeletion` (which would need write access
/// to the Deployment's finalizers, and nothing should wait on these objects).
fn reference(deployment: &Deployment) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: "apps/v1".to_owned(),
        kind: "Deployment".to_owned(),
        name: deployment.metadata.name.clone()?,
        uid: deployment.metadata.uid.clone()?,
        controller: None,
        block_owner_deletion: None,
    })
}

/// Puts `owner` into `meta`'s owner references, keeping every other one; a reference to the
/// same kind and name with another uid (the Deployment was re-created) is replaced. Returns
/// whether `meta` changed.
pub fn adopt(meta: &mut ObjectMeta, owner: &OwnerReference) -> bool {
    let refs = meta.owner_references.get_or_insert_with(Vec::new);
    if refs.iter().any(|r| r.uid == owner.uid) {
        return false;
    }
    match refs.iter_mut().find(|r| {
        r.kind == owner.kind && r.name == owner.name && r.api_version == owner.api_version
    }) {
        Some(stale) => *stale = owner.clone(),
        None => refs.push(owner.clone()),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "prodready".into(),
            uid: uid.into(),
            ..OwnerReference::default()
        }
    }

    #[test]
    fn adopting_adds_once_and_keeps_other_owners() {
        let other = OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "x".into(),
            uid: "9".into(),
            ..OwnerReference::default()
        };
        let mut meta = ObjectMeta {
            owner_references: Some(vec![other.clone()]),
            ..ObjectMeta::default()
        };
        assert!(adopt(&mut meta, &owner("1")));
        assert!(!adopt(&mut meta, &owner("1")), "already owned: no write");
        assert_eq!(meta.owner_references, Some(vec![other, owner("1")]));
    }

    #[test]
    fn a_recreated_deployment_replaces_the_stale_reference() {
        let mut meta = ObjectMeta::default();
        assert!(adopt(&mut meta, &owner("1")));
        assert!(adopt(&mut meta, &owner("2")));
        assert_eq!(meta.owner_references, Some(vec![owner("2")]));
    }

    #[test]
    fn a_deployment_without_uid_gives_no_reference() {
        let mut d = Deployment::default();
        d.metadata.name = Some("prodready".into());
        assert_eq!(reference(&d), None);
        d.metadata.uid = Some("u".into());
        assert_eq!(reference(&d), Some(owner("u")));
    }
}
