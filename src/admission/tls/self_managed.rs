//! The self-managed certificate's IO: every replica converges on one Secret. The first
//! replica creates it; a replica that loses the create race (409) re-reads and uses the
//! winner's. Renewal is a replace with the Secret's resourceVersion, so two replicas renewing
//! at once cannot both win: the loser re-reads. What to write and when to look again are
//! decided by [`super::bundle`]; this file only reads the clock, calls the API and reloads
//! rustls.

use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio_util::sync::CancellationToken;

use super::bundle::{Bundle, next_check, plan};
use super::config::server_config;
use super::error::TlsError;
use crate::admission::metrics::AdmissionMetrics;
use crate::error::Categorized;
use crate::kubeapi::{ApiCalls, ApiError};
use crate::owner::{Owner, adopt};

/// The field manager of the CA-bundle patch.
const FIELD_MANAGER: &str = "prodready-webhook";

/// Read-and-write rounds before [`TlsError::Contended`] (the caller retries later).
const WRITE_ROUNDS: u32 = 5;

/// One replica's handle on the shared certificate Secret and the webhook configuration.
pub(super) struct SelfManaged {
    pub(super) secrets: Api<Secret>,
    pub(super) configurations: Api<ValidatingWebhookConfiguration>,
    pub(super) calls: ApiCalls,
    pub(super) secret_name: String,
    pub(super) namespace: String,
    pub(super) configuration: String,
    pub(super) sans: Vec<String>,
    pub(super) validity: Duration,
    pub(super) ca_validity: Duration,
    pub(super) check_interval: Duration,
    /// What the Secret belongs to (`--owner-deployment`).
    pub(super) owner: Option<Arc<Owner>>,
}

fn conflict(e: &ApiError) -> bool {
    matches!(e.code(), Some(409))
}

impl SelfManaged {
    /// Reads the Secret, creating or renewing it if needed; converges with other replicas.
    pub(super) async fn ensure(&self, now: Timestamp) -> Result<Bundle, TlsError> {
        for _ in 0..WRITE_ROUNDS {
            let current = self
                .calls
                .call("get_webhook_secret", || {
                    self.secrets.get_opt(&self.secret_name)
                })
                .await?;
            let existing = current.as_ref().and_then(Bundle::from_secret);
            let Some(next) = plan(
                existing.as_ref(),
                &self.sans,
                now,
                self.validity,
                self.ca_validity,
            )?
            else {
                if let (Some(b), Some(old)) = (existing, current)
                    && self.adopt_existing(old).await
                {
                    return Ok(b);
                }
                // No Secret yet, or it changed under us: look again.
                continue;
            };
            let mut secret = next.to_secret(&self.secret_name, &self.namespace);
            if let Some(old) = &current {
                secret
                    .metadata
                    .owner_references
                    .clone_from(&old.metadata.owner_references);
            }
            if let Some(owner) = self.owner_reference().await {
                adopt(&mut secret.metadata, &owner);
            }
            let post = PostParams::default();
            let written = match &current {
                None => {
                    self.calls
                        .call("create_webhook_secret", || {
                            self.secrets.create(&post, &secret)
                        })
                        .await
                }
                Some(old) => {
                    // Optimistic concurrency: only replace the version we read.
                    secret.metadata.resource_version = old.metadata.resource_version.clone();
                    self.calls
                        .call("replace_webhook_secret", || {
                            self.secrets.replace(&self.secret_name, &post, &secret)
                        })
                        .await
                }
            };
            match written {
                Ok(_) => {
                    tracing::info!(secret = %self.secret_name, namespace = %self.namespace, not_after = %next.serving.not_after, created = current.is_none(), "webhook certificate issued");
                    return Ok(next);
                }
                // Another replica won the race: use what it wrote.
                Err(e) if conflict(&e) => {
                    tracing::debug!(secret = %self.secret_name, "another replica wrote the webhook certificate first; re-reading");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(TlsError::Contended {
            namespace: self.namespace.clone(),
            name: self.secret_name.clone(),
            attempts: WRITE_ROUNDS,
        })
    }

    /// The owner reference to give the Secret, when `--owner-deployment` names one.
    async fn owner_reference(&self) -> Option<OwnerReference> {
        match &self.owner {
            Some(owner) => owner.reference_for(&self.namespace).await,
            None => None,
        }
    }

    /// Gives a valid Secret written without an owner (by an older version, or before the
    /// owner could be read) its owner reference. `false` only on a write conflict (re-read
    /// and try again); any other failure is logged and left for the next check, since the
    /// certificate itself is fine.
    async fn adopt_existing(&self, mut secret: Secret) -> bool {
        let Some(owner) = self.owner_reference().await else {
            return true;
        };
        if !adopt(&mut secret.metadata, &owner) {
            return true;
        }
        secret.metadata.managed_fields = None;
        let post = PostParams::default();
        match self
            .calls
            .call("replace_webhook_secret", || {
                self.secrets.replace(&self.secret_name, &post, &secret)
            })
            .await
        {
            Ok(_) => {
                tracing::info!(secret = %self.secret_name, namespace = %self.namespace, owner = %owner.name, "the webhook Secret now belongs to the operator's Deployment and goes with it on uninstall");
                true
            }
            Err(e) if conflict(&e) => false,
            Err(e) => {
                tracing::warn!(secret = %self.secret_name, namespace = %self.namespace, error = %e, "cannot give the webhook Secret its owner reference; it would outlive an uninstall. Retried at the next certificate check");
                true
            }
        }
    }

    /// Puts the CA bundle into every webhook of the configuration, where it differs.
    pub(super) async fn inject(&self, bundle: &Bundle) -> Result<bool, TlsError> {
        if self.configuration.is_empty() {
            return Ok(false);
        }
        let Some(vwc) = self
            .calls
            .call("get_webhook_configuration", || {
                self.configurations.get_opt(&self.configuration)
            })
            .await?
        else {
            tracing::warn!(configuration = %self.configuration, "ValidatingWebhookConfiguration not found; the CA bundle will be injected once it exists");
            return Ok(false);
        };
        let want = bundle.ca_bundle().into_bytes();
        let stale: Vec<String> = vwc
            .webhooks
            .iter()
            .flatten()
            .filter(|w| w.client_config.ca_bundle.as_ref().map(|b| &b.0) != Some(&want))
            .map(|w| w.name.clone())
            .collect();
        if stale.is_empty() {
            return Ok(false);
        }
        let encoded = serde_json::to_value(ByteString(want)).map_err(TlsError::Encode)?;
        // Strategic merge by webhook name touches only caBundle, whatever else the
        // configuration holds (and whichever API version wrote it).
        let patch = serde_json::json!({
            "webhooks": stale
                .iter()
                .map(|name| serde_json::json!({"name": name, "clientConfig": {"caBundle": encoded}}))
                .collect::<Vec<_>>()
        });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let patch = Patch::Strategic(&patch);
        self.calls
            .call("patch_webhook_configuration", || {
                self.configurations
                    .patch(&self.configuration, &params, &patch)
            })
            .await?;
        tracing::info!(configuration = %self.configuration, webhooks = stale.len(), "CA bundle injected");
        Ok(true)
    }

    /// Re-reads (and renews) the Secret until `shutdown`, hot-reloading a changed certificate
    /// and re-injecting the CA bundle.
    pub(super) async fn watch(
        self,
        rustls: RustlsConfig,
        mut current: Bundle,
        metrics: AdmissionMetrics,
        shutdown: CancellationToken,
    ) {
        let mut failed = false;
        loop {
            let wait = next_check(&current, Timestamp::now(), self.check_interval, failed);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            match self.ensure(Timestamp::now()).await {
                Ok(bundle) => {
                    failed = false;
                    if bundle.serving.cert_pem != current.serving.cert_pem {
                        match server_config(
                            bundle.serving.cert_pem.as_bytes(),
                            bundle.serving.key_pem.as_bytes(),
                        ) {
                            Ok(config) => {
                                // New handshakes get the new certificate; open connections
                                // keep theirs.
                                rustls.reload_from_config(config);
                                metrics.reload(true, Some(bundle.serving.not_after.as_second()));
                                tracing::info!(not_after = %bundle.serving.not_after, "webhook serving certificate rotated");
                            }
                            Err(e) => {
                                metrics.reload(false, None);
                                tracing::error!(error = %e, secret = %self.secret_name, namespace = %self.namespace, "the renewed webhook certificate in the Secret cannot be served, so the previous one stays in use; delete the Secret and prodready issues a new one");
                            }
                        }
                    }
                    if let Err(e) = self.inject(&bundle).await {
                        tracing::warn!(error = %e, configuration = %self.configuration, "cannot inject the CA bundle; will retry");
                    }
                    current = bundle;
                }
                Err(e) => {
                    failed = true;
                    tracing::warn!(error = %e, category = e.category(), "cannot refresh the webhook certificate; will retry");
                }
            }
        }
    }
}
