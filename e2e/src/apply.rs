//! Server-side apply of YAML manifests and CRD installation.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{self, ApiCapabilities, ApiResource, Scope};
use kube::{Client, ResourceExt as _};
use serde_json::Value;

use crate::wait::wait_for;

/// The field manager of everything the harness applies.
pub const FIELD_MANAGER: &str = "e2e";

/// How long a CRD may take to become Established and discoverable.
const CRD_TIMEOUT: Duration = Duration::from_secs(30);

/// Server-side applies every document of a (multi-document) YAML string, in order, with field
/// manager `e2e` and `force`. `kind: List` documents are flattened. Namespaced objects without
/// `metadata.namespace` go to `default_namespace` (or `default`). Kinds are resolved by
/// discovery on each call, so a CRD installed just before is found.
///
/// Returns the objects as the API server stored them.
pub async fn apply_yaml(
    client: &Client,
    default_namespace: Option<&str>,
    yaml: &str,
) -> anyhow::Result<Vec<DynamicObject>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).context("parsing YAML")?;
    let mut objects = Vec::new();
    for doc in docs {
        match doc {
            Value::Null => {}
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                let items = map.get("items").and_then(Value::as_array).cloned();
                objects.extend(items.unwrap_or_default());
            }
            other => objects.push(other),
        }
    }
    let mut resolved: HashMap<(String, String), (ApiResource, ApiCapabilities)> = HashMap::new();
    let mut applied = Vec::with_capacity(objects.len());
    for value in objects {
        let api_version = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .context("a document has no apiVersion")?
            .to_string();
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .context("a document has no kind")?
            .to_string();
        let key = (api_version.clone(), kind.clone());
        let (ar, caps) = match resolved.get(&key) {
            Some(found) => found.clone(),
            None => {
                let (group, version) = api_version
                    .split_once('/')
                    .unwrap_or(("", api_version.as_str()));
                let gvk = GroupVersionKind::gvk(group, version, &kind);
                let found = discovery::pinned_kind(client, &gvk)
                    .await
                    .with_context(|| format!("discovering {api_version} {kind}"))?;
                resolved.insert(key, found.clone());
                found
            }
        };
        let obj: DynamicObject = serde_json::from_value(value.clone())
            .with_context(|| format!("decoding a {kind} document"))?;
        let Some(name) = obj.metadata.name.clone() else {
            bail!("a {kind} document has no metadata.name (generateName cannot be applied)");
        };
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => {
                let ns = obj
                    .metadata
                    .namespace
                    .as_deref()
                    .or(default_namespace)
                    .unwrap_or("default");
                Api::namespaced_with(client.clone(), ns, &ar)
            }
            Scope::Cluster => Api::all_with(client.clone(), &ar),
        };
        let stored = api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&value),
            )
            .await
            .with_context(|| format!("applying {kind} {name}"))?;
        applied.push(stored);
    }
    Ok(applied)
}

/// Installs (server-side applies) a CRD, waits until it is `Established` and until discovery
/// serves each of its versions, and returns it as stored.
pub async fn install_crd(
    client: &Client,
    crd: &CustomResourceDefinition,
) -> anyhow::Result<CustomResourceDefinition> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.name_any();
    let mut body = serde_json::to_value(crd).context("encoding the CRD")?;
    if let Value::Object(map) = &mut body {
        // Apply bodies need the type; generated CRDs may omit it, and status is not ours.
        map.insert(
            "apiVersion".into(),
            "apiextensions.k8s.io/v1".to_string().into(),
        );
        map.insert("kind".into(), "CustomResourceDefinition".to_string().into());
        map.remove("status");
    }
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .with_context(|| format!("applying CRD {name}"))?;

    let established = wait_for(CRD_TIMEOUT, &format!("CRD {name} Established"), || async {
        let crd = api.get(&name).await.map_err(|e| e.to_string())?;
        let conditions = crd
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        if conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
        {
            Ok(crd)
        } else {
            Err(format!("conditions: {conditions:?}"))
        }
    })
    .await?;

    let group = established.spec.group.clone();
    let kind = established.spec.names.kind.clone();
    for version in established.spec.versions.iter().filter(|v| v.served) {
        let gvk = GroupVersionKind::gvk(&group, &version.name, &kind);
        wait_for(
            CRD_TIMEOUT,
            &format!("discovery of {group}/{} {kind}", version.name),
            || discovery::pinned_kind(client, &gvk),
        )
        .await?;
    }
    Ok(established)
}

/// Reads a CRD manifest (one or more `CustomResourceDefinition` documents) and installs each
/// with [`install_crd`]. Relative paths are taken from the repository root.
pub async fn install_crd_file(
    client: &Client,
    path: impl AsRef<Path>,
) -> anyhow::Result<Vec<CustomResourceDefinition>> {
    let path = crate::binaries::repo_root().join(path.as_ref());
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading CRD file {}", path.display()))?;
    let crds: Vec<CustomResourceDefinition> = serde_saphyr::from_multiple(&text)
        .with_context(|| format!("parsing {} as CustomResourceDefinitions", path.display()))?;
    if crds.is_empty() {
        bail!("{} holds no CustomResourceDefinition", path.display());
    }
    let mut installed = Vec::with_capacity(crds.len());
    for crd in &crds {
        installed.push(install_crd(client, crd).await?);
    }
    Ok(installed)
}
