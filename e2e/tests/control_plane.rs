//! The control plane itself: the API groups prodready relies on are served and watchable, our
//! CRD installs, the real kubectl works, and objects survive an API-server restart.

use std::fmt::Debug;
use std::time::Duration;

use e2e::{CRD_FILE, ControlPlane, apply_yaml, install_crd_file, pinned_version, wait_for};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt as _};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

const WATCH_TIMEOUT: Duration = Duration::from_secs(20);

async fn shared() -> &'static ControlPlane {
    ControlPlane::shared()
        .await
        .expect("start the shared control plane")
}

#[tokio::test]
async fn apiserver_reports_the_pinned_version() {
    let cp = shared().await;
    let client = cp.client().await.expect("client");
    let info = client.apiserver_version().await.expect("GET /version");
    if cp.is_local() {
        assert_eq!(
            Some(info.git_version.as_str()),
            pinned_version("K8S_VERSION")
        );
    } else {
        assert!(info.git_version.starts_with("v1."), "{info:?}");
    }
}

#[tokio::test]
async fn productionpolicy_crd_installs_and_is_established() {
    let cp = shared().await;
    let client = cp.client().await.expect("client");
    let crds = install_crd_file(&client, CRD_FILE)
        .await
        .expect("install the ProductionPolicy CRD");
    let crd = crds.first().expect("one CRD in the file");
    assert_eq!(crd.spec.group, "prodready.dev");
    assert_eq!(crd.spec.names.kind, "ProductionPolicy");
    // Discovery serves it: the real kubectl can list the new kind.
    let out = cp
        .kubectl(["get", &crd.spec.names.plural, "--all-namespaces"])
        .await
        .expect("run kubectl");
    assert!(out.success(), "kubectl get failed: {}", out.stderr);
}

/// Starts a watch, waits for its initial list to finish, creates `obj` and returns the watch
/// event that announces it: proof that the kind is both writable and watchable.
async fn create_and_observe<K>(api: Api<K>, obj: K) -> K
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Serialize + Send + 'static,
{
    let name = obj.name_any();
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher::watcher(api.clone(), config).boxed();
    tokio::time::timeout(WATCH_TIMEOUT, async {
        while let Some(event) = events.try_next().await.expect("watch stream") {
            if matches!(event, Event::InitDone) {
                return;
            }
        }
        panic!("watch stream ended before its initial list finished");
    })
    .await
    .expect("initial list of the watch");

    api.create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {} {name}: {e}", K::kind(&())));

    tokio::time::timeout(WATCH_TIMEOUT, async {
        while let Some(event) = events.try_next().await.expect("watch stream") {
            if let Event::Apply(seen) = event
                && seen.name_any() == name
            {
                return seen;
            }
        }
        panic!("watch stream ended before {name} was seen");
    })
    .await
    .unwrap_or_else(|_| panic!("no watch event for {} {name}", K::kind(&())))
}

fn from_json<K: DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).expect("a valid test object")
}

#[tokio::test]
async fn workload_kinds_are_served_and_watchable() {
    let cp = shared().await;
    let ns = cp.temp_namespace("kinds").await.expect("namespace");
    let client = cp.client().await.expect("client");
    let n = ns.name();
    let labels = json!({"app": "web"});
    let pod_template = json!({
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1.0"}]},
    });

    let deployment: Deployment = from_json(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": pod_template},
    }));
    let seen = create_and_observe(Api::namespaced(client.clone(), n), deployment).await;
    assert_eq!(seen.spec.and_then(|s| s.replicas), Some(2));

    let cronjob: CronJob = from_json(json!({
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {
            "spec": {"restartPolicy": "OnFailure",
                     "containers": [{"name": "job", "image": "registry.invalid/job:1.0"}]},
        }}}},
    }));
    let seen = create_and_observe(Api::namespaced(client.clone(), n), cronjob).await;
    assert_eq!(seen.spec.map(|s| s.schedule).as_deref(), Some("0 3 * * *"));

    let service: Service = from_json(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
    }));
    let seen = create_and_observe(Api::namespaced(client.clone(), n), service).await;
    // The API server allocated a ClusterIP from --service-cluster-ip-range.
    let ip = seen.spec.and_then(|s| s.cluster_ip).unwrap_or_default();
    assert!(ip.starts_with("10.0.0."), "cluster IP {ip:?}");

    let pdb: PodDisruptionBudget = from_json(json!({
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}},
    }));
    let seen = create_and_observe(Api::namespaced(client.clone(), n), pdb).await;
    assert!(seen.spec.and_then(|s| s.min_available).is_some());

    let lease: Lease = from_json(json!({
        "metadata": {"name": "prodready-leader"},
        "spec": {"holderIdentity": "replica-a", "leaseDurationSeconds": 15},
    }));
    let seen = create_and_observe(Api::namespaced(client.clone(), n), lease).await;
    assert_eq!(
        seen.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("replica-a")
    );
}

#[tokio::test]
async fn apply_yaml_applies_every_document() {
    let cp = shared().await;
    let ns = cp.temp_namespace("apply").await.expect("namespace");
    let client = cp.client().await.expect("client");
    let yaml = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: first
data:
  k: "1"
---
# a comment-only document is skipped
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: second}
"#;
    let applied = apply_yaml(&client, Some(ns.name()), yaml)
        .await
        .expect("apply");
    let names: Vec<_> = applied.iter().map(|o| o.name_any()).collect();
    assert_eq!(names, ["first", "second"]);
    // Applying again is a no-op update, not a conflict.
    apply_yaml(&client, Some(ns.name()), yaml)
        .await
        .expect("re-apply");
    let first = Api::<ConfigMap>::namespaced(client, ns.name())
        .get("first")
        .await
        .expect("get first");
    assert_eq!(
        first.data.and_then(|d| d.get("k").cloned()).as_deref(),
        Some("1")
    );
    let managers: Vec<_> = first
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["e2e"]);
}

#[tokio::test]
async fn kubectl_gets_namespaces() {
    let cp = shared().await;
    let ns = cp.temp_namespace("kubectl").await.expect("namespace");
    let out = cp
        .kubectl(["get", "namespaces", "-o", "name"])
        .await
        .expect("run kubectl");
    assert!(out.success(), "kubectl failed: {}", out.stderr);
    assert!(
        out.stdout.lines().any(|l| l == "namespace/default"),
        "{}",
        out.stdout
    );
    let own = format!("namespace/{}", ns.name());
    assert!(out.stdout.lines().any(|l| l == own), "{}", out.stdout);
}

#[tokio::test]
async fn objects_survive_an_apiserver_restart() {
    // Its own control plane: stopping the shared one would break the tests running beside it.
    let cp = ControlPlane::start().await.expect("start a control plane");
    let client = cp.client().await.expect("client");
    let ns = cp.temp_namespace("restart").await.expect("namespace");
    apply_yaml(
        &client,
        Some(ns.name()),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: survivor}\ndata: {state: kept}\n",
    )
    .await
    .expect("apply");

    cp.stop_apiserver().expect("stop kube-apiserver");
    let during = Api::<Namespace>::all(client.clone()).get(ns.name()).await;
    assert!(
        during.is_err(),
        "the API answered while stopped: {during:?}"
    );

    cp.start_apiserver().await.expect("restart kube-apiserver");
    // The client from before the outage reconnects (same port, same certificates); allow it
    // one retry for a pooled connection that died with the old process.
    let configmaps = Api::<ConfigMap>::namespaced(client, ns.name());
    let cm = wait_for(Duration::from_secs(10), "configmap after restart", || {
        configmaps.get("survivor")
    })
    .await
    .expect("the configmap is still there");
    assert_eq!(
        cm.data.and_then(|d| d.get("state").cloned()).as_deref(),
        Some("kept")
    );
    let out = cp
        .kubectl([
            "get",
            "configmap",
            "survivor",
            "-n",
            ns.name(),
            "-o",
            "name",
        ])
        .await
        .expect("run kubectl");
    assert_eq!(out.stdout.trim(), "configmap/survivor", "{}", out.stderr);
}

#[tokio::test]
async fn kubectl_applies_yaml_from_stdin() {
    let cp = shared().await;
    let ns = cp.temp_namespace("stdin").await.expect("namespace");
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: piped}\ndata: {via: stdin}\n";
    let out = cp
        .kubectl_with_stdin(["apply", "-n", ns.name(), "-f", "-"], Some(yaml))
        .await
        .expect("run kubectl");
    assert!(out.success(), "kubectl apply failed: {}", out.stderr);
    assert_eq!(out.stdout.trim(), "configmap/piped created");
}

#[tokio::test]
async fn helm_reaches_the_cluster() {
    let cp = shared().await;
    let out = cp
        .helm(["list", "--all-namespaces", "--output", "json"])
        .await
        .expect("run helm");
    assert!(out.success(), "helm list failed: {}", out.stderr);
    assert_eq!(out.stdout.trim(), "[]");
}
