//! The LZ4 dictionaries stored workloads are compressed with, one per kind.
//!
//! A stored workload is its slimmed object encoded as JSON (`stores::Tracked`): ≈ 1.2 KiB for
//! a Deployment with one container, most of it key names and the values the API server
//! defaults (`terminationMessagePath`, `imagePullPolicy`, probe thresholds, the rollout
//! strategy). Compressed alone, 1.2 KiB of JSON barely shrinks; compressed against a
//! dictionary that already holds those keys and defaults it takes a few hundred bytes at most.
//!
//! Each dictionary is a representative object of its kind, written here by hand from the
//! Kubernetes API's field names and defaults (no cluster's data), and encoded by the same
//! serializer as the stored objects so that keys come in the same order. It never changes
//! while the process runs: an object compressed with it is decompressed with it.

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::{Value, json};

use crate::api::WorkloadKind;

/// The dictionary for `kind`.
pub fn for_kind(kind: WorkloadKind) -> &'static [u8] {
    static DEPLOYMENT: LazyLock<Vec<u8>> = LazyLock::new(|| {
        typed::<k8s_openapi::api::apps::v1::Deployment>(json!({
            "metadata": metadata(),
            "spec": {
                "replicas": 3,
                "selector": selector(),
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "minReadySeconds": 0,
                "template": template("Always"),
            }
        }))
    });
    static STATEFULSET: LazyLock<Vec<u8>> = LazyLock::new(|| {
        typed::<k8s_openapi::api::apps::v1::StatefulSet>(json!({
            "metadata": metadata(),
            "spec": {
                "replicas": 3,
                "serviceName": "app",
                "podManagementPolicy": "OrderedReady",
                "selector": selector(),
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "revisionHistoryLimit": 10,
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "template": template("Always"),
            }
        }))
    });
    static DAEMONSET: LazyLock<Vec<u8>> = LazyLock::new(|| {
        typed::<k8s_openapi::api::apps::v1::DaemonSet>(json!({
            "metadata": metadata(),
            "spec": {
                "selector": selector(),
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                "revisionHistoryLimit": 10,
                "template": template("Always"),
            }
        }))
    });
    static REPLICASET: LazyLock<Vec<u8>> = LazyLock::new(|| {
        typed::<k8s_openapi::api::apps::v1::ReplicaSet>(json!({
            "metadata": metadata(),
            "spec": {"replicas": 3, "selector": selector(), "template": template("Always")}
        }))
    });
    static CRONJOB: LazyLock<Vec<u8>> = LazyLock::new(|| {
        typed::<k8s_openapi::api::batch::v1::CronJob>(json!({
            "metadata": metadata(),
            "spec": {
                "schedule": "*/5 * * * *",
                "timeZone": "Etc/UTC",
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 300,
                "suspend": false,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 1,
                "jobTemplate": {"metadata": {"labels": {"app": "app"}}, "spec": job_spec()},
            },
            "status": {"lastScheduleTime": "2026-01-01T00:00:00Z", "lastSuccessfulTime": "2026-01-01T00:00:00Z"}
        }))
    });
    static JOB: LazyLock<Vec<u8>> = LazyLock::new(|| {
        typed::<k8s_openapi::api::batch::v1::Job>(
            json!({"metadata": metadata(), "spec": job_spec()}),
        )
    });
    static POD: LazyLock<Vec<u8>> = LazyLock::new(|| {
        let t = template("Always");
        typed::<k8s_openapi::api::core::v1::Pod>(json!({"metadata": metadata(), "spec": t["spec"]}))
    });
    match kind {
        WorkloadKind::Deployment => &DEPLOYMENT,
        WorkloadKind::StatefulSet => &STATEFULSET,
        WorkloadKind::DaemonSet => &DAEMONSET,
        WorkloadKind::ReplicaSet => &REPLICASET,
        WorkloadKind::CronJob => &CRONJOB,
        WorkloadKind::Job => &JOB,
        WorkloadKind::Pod => &POD,
    }
}

/// `value` read as `K` and encoded again, so the keys come in the order the stored objects'
/// encoder writes them. Empty if the hand-written value does not fit `K` (a unit test checks
/// that every dictionary is not).
fn typed<K: serde::de::DeserializeOwned + Serialize>(value: Value) -> Vec<u8> {
    serde_json::from_value::<K>(value)
        .ok()
        .and_then(|k| serde_json::to_vec(&k).ok())
        .unwrap_or_default()
}

fn metadata() -> Value {
    json!({
        "name": "app",
        "namespace": "default",
        "labels": {"app": "app", "app.kubernetes.io/name": "app", "app.kubernetes.io/instance": "app",
                   "app.kubernetes.io/component": "server", "app.kubernetes.io/part-of": "app",
                   "app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/version": "1.0.0",
                   "helm.sh/chart": "app-1.0.0", "team": "team"},
        "annotations": {"deployment.kubernetes.io/revision": "1", "meta.helm.sh/release-name": "app",
                        "meta.helm.sh/release-namespace": "default"}
    })
}

fn selector() -> Value {
    json!({"matchLabels": {"app": "app", "app.kubernetes.io/name": "app", "app.kubernetes.io/instance": "app"}})
}

fn job_spec() -> Value {
    json!({
        "backoffLimit": 6,
        "completionMode": "NonIndexed",
        "completions": 1,
        "parallelism": 1,
        "manualSelector": false,
        "podReplacementPolicy": "TerminatingOrFailed",
        "suspend": false,
        "activeDeadlineSeconds": 600,
        "ttlSecondsAfterFinished": 3600,
        "template": template("OnFailure"),
    })
}

fn probe(path: &str) -> Value {
    json!({
        "httpGet": {"path": path, "port": "http", "scheme": "HTTP"},
        "initialDelaySeconds": 5,
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3
    })
}

fn container(name: &str) -> Value {
    json!({
        "name": name,
        "image": "registry.local/team/app:1.0.0",
        "imagePullPolicy": "IfNotPresent",
        "args": ["--config", "/etc/app/config.yaml"],
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                {"name": "LOG_LEVEL", "value": "info"},
                {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "app", "key": "password"}}}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "livenessProbe": probe("/healthz"),
        "readinessProbe": probe("/ready"),
        "startupProbe": {"tcpSocket": {"port": "http"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 30},
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "readOnlyRootFilesystem": true,
                            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": true}],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File"
    })
}

fn template(restart: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": "app", "app.kubernetes.io/name": "app", "app.kubernetes.io/instance": "app"},
                     "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}},
        "spec": {
            "containers": [container("app")],
            "initContainers": [container("init")],
            "volumes": [{"name": "config", "configMap": {"name": "app", "defaultMode": 420}}],
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "app",
            "serviceAccount": "app",
            "securityContext": {"fsGroup": 1000, "runAsNonRoot": true},
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"labelSelector": selector(), "topologyKey": "kubernetes.io/hostname"}}]}},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                           "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": selector()}],
            "priorityClassName": "app",
            "schedulerName": "default-scheduler",
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_dictionary_within_lz4s_window() {
        for kind in [
            WorkloadKind::Deployment,
            WorkloadKind::StatefulSet,
            WorkloadKind::DaemonSet,
            WorkloadKind::ReplicaSet,
            WorkloadKind::CronJob,
            WorkloadKind::Job,
            WorkloadKind::Pod,
        ] {
            let d = for_kind(kind);
            assert!(
                d.len() > 1000 && d.len() < 64 * 1024,
                "{kind:?}: {} bytes",
                d.len()
            );
        }
    }
}
