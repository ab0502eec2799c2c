//! prodready in a real single-node cluster ([`e2e::Cluster`]): the released chart installed by
//! helm, the released image run by containerd under the kubelet, the webhook reached through
//! its Service, failover between pods, an upgrade under admission load, a drain, real
//! workloads (a Deployment whose pods serve, a leader-elected program, a CronJob that runs
//! Jobs) and API server / etcd faults.
//!
//! One test, in phases that build on each other (the install is what every later phase runs
//! against); each phase's failure names the phase. It fails, never skips, when the node cannot
//! start. The figures it measures are printed as `FIGURE name = value` lines (run with
//! `--nocapture` to see them) and are the ones quoted in e2e/README.md and the README.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use e2e::{Cluster, ControlPlane, Package, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use prodready::api::ProductionPolicyStatus;

const NS: &str = "prodready-system";
const RELEASE: &str = "prodready";
const LEASE: &str = "prodready-leader";
const OPERATOR_SELECTOR: &str = "app.kubernetes.io/name=prodready";
/// The chart's default preStop sleep (values.yaml `preStopSleepSeconds`).
const PRE_STOP: Duration = Duration::from_secs(5);
/// The apps' namespace and the policy that judges exactly it.
const APPS: &str = "apps";
const POLICY: &str = "in-cluster";

fn figure(name: &str, value: impl std::fmt::Display) {
    println!("FIGURE {name} = {value}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prodready_runs_in_a_real_cluster() -> anyhow::Result<()> {
    let suite = Instant::now();
    let cluster = Cluster::start()
        .await
        .context("phase: starting the single-node cluster")?;
    let t = cluster.timings();
    figure("node_ready_s", format!("{:.1}", t.node_ready.as_secs_f64()));
    let free = cluster.free_disk()?;
    figure(
        "disk_free_gib",
        format!("{:.1}", free as f64 / f64::from(1u32 << 30)),
    );
    let plane = cluster.plane();
    let client = plane.client().await?;

    // On a failed phase, what the node and its pods looked like goes with the error.
    let phases = async {
        let (package, _dist) = install(&cluster).await.context("phase: helm install")?;
        apps(&cluster, &client)
            .await
            .context("phase: real workloads")?;
        scheduled_runs(plane, &client)
            .await
            .context("phase: cronjob-health from runs the CronJob controller really made")?;
        admission(plane)
            .await
            .context("phase: admission through the Service")?;
        failover(&cluster, &client)
            .await
            .context("phase: failover between pods")?;
        upgrade(plane, &client, &package)
            .await
            .context("phase: helm upgrade under admission load")?;
        drain(plane, &client)
            .await
            .context("phase: kubectl drain")?;
        leader_program(plane, &client)
            .await
            .context("phase: leader-elected program")?;
        faults(&cluster, &client)
            .await
            .context("phase: API server and etcd faults")?;
        latency(plane, &client)
            .await
            .context("phase: webhook latency")?;
        kustomize(plane, &client)
            .await
            .context("phase: kustomize install")?;
        quick_start(plane, &client)
            .await
            .context("phase: the README's quick start")?;
        anyhow::Ok(())
    };
    if let Err(e) = phases.await {
        let state = cluster.diagnose().await;
        return Err(e.context(format!("the cluster when the phase failed:\n{state}")));
    }
    figure("suite_s", format!("{:.0}", suite.elapsed().as_secs_f64()));
    let down = Instant::now();
    drop(cluster);
    figure("teardown_s", format!("{:.1}", down.elapsed().as_secs_f64()));
    leftovers().context("phase: teardown left something behind")?;
    Ok(())
}

/// Packages the release (`hack/package.sh`), imports its image into containerd, and runs
/// docs/install.md's commands: `helm install` of the packaged chart, `rollout status`.
async fn install(cluster: &Cluster) -> anyhow::Result<(Package, tempfile::TempDir)> {
    let plane = cluster.plane();
    let out = tempfile::tempdir()?;
    let package = e2e::package(
        &e2e::release_binary()?,
        &e2e::release_binary_arm64()?,
        out.path(),
    )
    .await?;
    // The chart names the image by digest; containerd must know it by that name.
    cluster
        .import_layout(
            &package.image,
            "ghcr.io/prodready/prodready",
            &package.digest,
        )
        .await?;
    let images = cluster.ctr(["images", "ls", "-q"], None).await?;
    let by_digest = format!("ghcr.io/prodready/prodready@{}", package.digest);
    ensure!(
        images.lines().any(|l| l == by_digest),
        "containerd does not know {by_digest}; it has:\n{images}"
    );
    e2e::install_monitoring_crds(&plane.client().await?).await?;

    // docs/install.md's "From a release" commands, as written, on the packaged archive.
    let began = Instant::now();
    let dist = package
        .chart
        .parent()
        .context("the chart has no directory")?;
    for command in doc_commands("## From a release (no checkout)")? {
        let first = command.first().map(String::as_str);
        // A file the release ships is found in the release directory.
        let args = |skip: usize| paths_in(dist, &command[skip..]);
        match first {
            Some("helm")
                if command.get(1).is_some_and(|a| a == "install")
                    && command.iter().any(|a| a.ends_with(".tgz")) =>
            {
                plane.helm(args(1)).await?.ok()?;
            }
            Some("kubectl") => {
                plane.kubectl(args(1)).await?.ok()?;
            }
            // The OCI-registry install, checksum and download lines need a registry or the
            // internet; the release test covers the checksums.
            _ => {}
        }
    }
    figure(
        "helm_install_to_ready_s",
        format!("{:.1}", began.elapsed().as_secs_f64()),
    );
    let pods = operator_pods(&plane.client().await?).await?;
    ensure!(pods.len() == 2, "want 2 operator pods, got {}", pods.len());
    for pod in &pods {
        let image = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        ensure!(image == by_digest, "pod runs {image}, not {by_digest}");
        ensure!(ready(pod), "pod {} is not Ready", name_of(pod));
        // The in-cluster service account, not a kubeconfig.
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone());
        ensure!(sa.as_deref() == Some("prodready"), "service account {sa:?}");
    }
    // The first policy, the sample docs/install.md names (its chart-value twin is run by
    // e2e/tests/packaging.rs on a fresh control plane).
    let sample = e2e::repo_root().join("config/samples/baseline.yaml");
    plane
        .kubectl(["apply", "-f", &sample.display().to_string()])
        .await?
        .ok()?;
    Ok((package, out))
}

/// The apps namespace, judged by exactly one policy, with a Deployment whose pods really run
/// (probes, Service, ServiceMonitor, PDB) and a CronJob that really runs Jobs.
async fn apps(cluster: &Cluster, client: &Client) -> anyhow::Result<()> {
    let plane = cluster.plane();
    plane
        .kubectl_with_stdin(["apply", "-f", "-"], Some(&apps_yaml()))
        .await?
        .ok()?;
    wait_for(
        Duration::from_secs(120),
        "the web Deployment's pods Ready",
        || async {
            let d: Api<Deployment> = Api::namespaced(client.clone(), APPS);
            let dep = d.get("web").await.map_err(|e| e.to_string())?;
            let ready = dep.status.and_then(|s| s.ready_replicas).unwrap_or(0);
            if ready == 2 {
                Ok(())
            } else {
                Err(format!("{ready}/2 ready"))
            }
        },
    )
    .await?;
    // web is compliant, legacy violates: exact counts, and `kubectl get` shows them.
    let status = e2e::wait_status(
        client,
        POLICY,
        Duration::from_secs(60),
        "web compliant, legacy violating",
        |s| {
            let sum = s.summary.as_ref().ok_or("no summary")?;
            if (sum.matched, sum.compliant, sum.violating) == (3, 2, 1) {
                Ok(())
            } else {
                Err(format!(
                    "matched/compliant/violating {}/{}/{}",
                    sum.matched, sum.compliant, sum.violating
                ))
            }
        },
    )
    .await;
    ensure!(
        status.violations.iter().all(|v| v.name == "legacy"),
        "only legacy may violate: {:?}",
        status
            .violations
            .iter()
            .map(|v| (&v.name, &v.rule))
            .collect::<Vec<_>>()
    );
    let table = plane
        .kubectl(["get", "productionpolicies", POLICY])
        .await?
        .ok()?;
    let row: Vec<&str> = table
        .stdout
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    ensure!(
        row.get(..4) == Some(&[POLICY, "Warn", "3", "1"][..]),
        "kubectl get productionpolicies: {}",
        table.stdout
    );
    // The CronJob really runs a Job to completion.
    let began = Instant::now();
    wait_for(
        Duration::from_secs(150),
        "a Job of the CronJob succeeds",
        || async {
            let jobs: Api<Job> = Api::namespaced(client.clone(), APPS);
            let list = jobs
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            let done = list
                .items
                .iter()
                .filter(|j| j.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) > 0)
                .count();
            if done > 0 {
                Ok(())
            } else {
                Err(format!("{} Jobs, none succeeded", list.items.len()))
            }
        },
    )
    .await?;
    figure(
        "cronjob_first_success_s",
        format!("{:.0}", began.elapsed().as_secs_f64()),
    );
    Ok(())
}

/// `cronjob-health` on runs kube-controller-manager really makes: a CronJob whose Jobs exit 1
/// fails the rule in the policy status (and gets a Warning Event) once its run failed; with
/// its step fixed, the next successful run turns it back (a Normal Event). Then it goes.
async fn scheduled_runs(plane: &ControlPlane, client: &Client) -> anyhow::Result<()> {
    let began = Instant::now();
    let apply = |exit: u8| {
        let yaml = flaky_cronjob_yaml(exit);
        async move {
            plane
                .kubectl_with_stdin(["apply", "-f", "-"], Some(&yaml))
                .await?
                .ok()
        }
    };
    apply(1).await?;
    let failing = |s: &ProductionPolicyStatus| {
        s.violations
            .iter()
            .any(|v| v.name == "flaky" && v.rule == "cronjob-health")
    };
    e2e::wait_status(
        client,
        POLICY,
        Duration::from_secs(180),
        "cronjob-health failing for the CronJob whose run failed",
        |s| {
            if failing(s) {
                Ok(())
            } else {
                Err("flaky not reported yet".to_owned())
            }
        },
    )
    .await;
    figure(
        "cronjob_health_fail_after_s",
        format!("{:.0}", began.elapsed().as_secs_f64()),
    );
    e2e::wait_for_events(
        client,
        APPS,
        "flaky",
        "ProductionReadinessViolation",
        Duration::from_secs(60),
        |e| {
            e.iter().any(|e| {
                e.message
                    .as_deref()
                    .is_some_and(|n| n.contains("cronjob-health"))
            })
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let fixed = Instant::now();
    apply(0).await?;
    e2e::wait_status(
        client,
        POLICY,
        Duration::from_secs(180),
        "cronjob-health passing again after a successful run",
        |s| {
            if failing(s) {
                Err("flaky still failing".to_owned())
            } else {
                Ok(())
            }
        },
    )
    .await;
    figure(
        "cronjob_health_pass_after_fix_s",
        format!("{:.0}", fixed.elapsed().as_secs_f64()),
    );
    e2e::wait_for_events(
        client,
        APPS,
        "flaky",
        "ProductionReady",
        Duration::from_secs(60),
        |e| !e.is_empty(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    plane
        .kubectl(["-n", APPS, "delete", "cronjob", "flaky", "--wait"])
        .await?
        .ok()?;
    Ok(())
}

/// A CronJob running every minute whose step exits `exit`; otherwise production ready.
fn flaky_cronjob_yaml(exit: u8) -> String {
    let image = e2e::TESTAPP_IMAGE;
    format!(
        r#"apiVersion: batch/v1
kind: CronJob
metadata: {{name: flaky, namespace: {APPS}}}
spec:
  schedule: "*/1 * * * *"
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 60
  failedJobsHistoryLimit: 1
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: step
              image: {image}
              imagePullPolicy: Never
              args: [job, --sleep, 1s, --exit, "{exit}"]
              resources:
                requests: {{cpu: 10m, memory: 16Mi}}
                limits: {{memory: 32Mi}}
"#
    )
}

fn apps_yaml() -> String {
    let image = e2e::TESTAPP_IMAGE;
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {APPS}
  labels: {{prodready.dev/in-cluster: "true"}}
---
apiVersion: prodready.dev/v1alpha1
kind: ProductionPolicy
metadata:
  name: {POLICY}
spec:
  profile: baseline
  match:
    kinds: [Deployment, StatefulSet, DaemonSet, CronJob]
    namespaceSelector: {{matchLabels: {{prodready.dev/in-cluster: "true"}}}}
  enforcement:
    action: Warn
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {APPS}}}
spec:
  replicas: 2
  revisionHistoryLimit: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
        - name: app
          image: {image}
          imagePullPolicy: Never
          args: [serve, --port, "8080"]
          ports: [{{name: http, containerPort: 8080}}]
          livenessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 5}}
          readinessProbe: {{httpGet: {{path: /readyz, port: http}}, periodSeconds: 2}}
          lifecycle: {{preStop: {{sleep: {{seconds: 2}}}}}}
          resources:
            requests: {{cpu: 10m, memory: 16Mi}}
            limits: {{memory: 64Mi}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {APPS}, labels: {{app: web}}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {{name: web, namespace: {APPS}}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  endpoints: [{{port: http}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: web, namespace: {APPS}}}
spec:
  maxUnavailable: 1
  selector: {{matchLabels: {{app: web}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: legacy, namespace: {APPS}}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: legacy}}}}
  template:
    metadata: {{labels: {{app: legacy}}}}
    spec:
      containers:
        - name: app
          image: {image}
          args: [serve]
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: nightly, namespace: {APPS}}}
spec:
  schedule: "*/1 * * * *"
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 60
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: step
              image: {image}
              imagePullPolicy: Never
              args: [job, --sleep, 1s]
              resources:
                requests: {{cpu: 10m, memory: 16Mi}}
                limits: {{memory: 32Mi}}
"#
    )
}

/// `kubectl apply` of a violating Deployment prints prodready's warnings (the API server
/// reached the webhook through its Service); an Enforce policy denies.
async fn admission(plane: &ControlPlane) -> anyhow::Result<()> {
    let violating = violating_deployment("bad", APPS);
    let out = plane
        .kubectl_with_stdin(["apply", "--dry-run=server", "-f", "-"], Some(&violating))
        .await?
        .ok()?;
    ensure!(
        out.stderr.contains("Warning: prodready[in-cluster]"),
        "no prodready warning from kubectl apply: {}",
        out.stderr
    );
    let enforce = r#"apiVersion: v1
kind: Namespace
metadata: {name: strict-apps, labels: {prodready.dev/enforced: "true"}}
---
apiVersion: prodready.dev/v1alpha1
kind: ProductionPolicy
metadata: {name: enforced}
spec:
  profile: baseline
  match:
    kinds: [Deployment]
    namespaceSelector: {matchLabels: {prodready.dev/enforced: "true"}}
  enforcement: {action: Enforce, denyAtOrAbove: high}
"#;
    plane
        .kubectl_with_stdin(["apply", "-f", "-"], Some(enforce))
        .await?
        .ok()?;
    // The webhook serves from the snapshot the controller publishes: wait for the policy.
    let denied = wait_for(Duration::from_secs(30), "an Enforce denial", || async {
        let out = plane
            .kubectl_with_stdin(
                ["apply", "--dry-run=server", "-f", "-"],
                Some(&violating_deployment("bad", "strict-apps")),
            )
            .await
            .map_err(|e| e.to_string())?;
        if !out.success() && out.stderr.contains("denied the request") {
            Ok(out.stderr)
        } else {
            Err(format!("exit {}, stderr {}", out.status, out.stderr))
        }
    })
    .await?;
    ensure!(
        denied.contains("prodready"),
        "denial does not name prodready: {denied}"
    );
    Ok(())
}

fn violating_deployment(name: &str, ns: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\n\
         spec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    \
         metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n        \
         - {{name: app, image: {}}}\n",
        "localhost/prodready-e2e/testapp:latest"
    )
}

/// Deleting the leader pod hands the Lease over right after SIGTERM (the other pod takes
/// it); killing the leader's container with SIGKILL restores leadership within the lease's
/// lapse (the kubelet restarts the container, and whichever process wins renews the Lease);
/// status keeps being written, and the audit log shows no two leaders writing at once.
async fn failover(cluster: &Cluster, client: &Client) -> anyhow::Result<()> {
    let plane = cluster.plane();
    // Graceful: delete the leader pod.
    let leader = lease_holder(client)
        .await?
        .context("nobody holds the Lease")?;
    let deleted_at = k8s_openapi::jiff::Timestamp::now();
    plane
        .kubectl(["-n", NS, "delete", "pod", &leader, "--wait=false"])
        .await?
        .ok()?;
    let new = wait_new_holder(client, &leader, Duration::from_secs(40)).await?;
    // From the Lease's own acquireTime, not from when this test polled it. SIGTERM comes
    // after the preStop sleep; counting it from the deletion overstates the takeover by the
    // kubelet's reaction time, never understates it.
    let acquired = Api::<Lease>::namespaced(client.clone(), NS)
        .get(LEASE)
        .await?
        .spec
        .and_then(|s| s.acquire_time)
        .context("the new holder's Lease has no acquireTime")?
        .0;
    let after_sigterm = Duration::from_millis(
        u64::try_from(acquired.as_millisecond() - deleted_at.as_millisecond()).unwrap_or(0),
    )
    .saturating_sub(PRE_STOP);
    figure(
        "takeover_after_sigterm_s",
        format!("{:.2}", after_sigterm.as_secs_f64()),
    );
    ensure!(
        after_sigterm <= Duration::from_secs(3),
        "takeover took {after_sigterm:?} after SIGTERM (limit 3 s)"
    );
    status_follows(plane, client, "after-graceful").await?;

    // Crash: SIGKILL the new leader's container.
    let pod: Api<Pod> = Api::namespaced(client.clone(), NS);
    let container = pod
        .get(&new)
        .await?
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|c| c.into_iter().next())
        .and_then(|c| c.container_id)
        .context("the leader has no container id")?;
    let id = container.trim_start_matches("containerd://").to_string();
    let began = Instant::now();
    let killed_at = k8s_openapi::jiff::Timestamp::now();
    cluster
        .ctr(["tasks", "kill", "--signal", "SIGKILL", &id], None)
        .await?;
    let holder = wait_for(
        Duration::from_secs(40),
        "the Lease renewed after the kill",
        || async {
            let api: Api<Lease> = Api::namespaced(client.clone(), NS);
            let spec = api
                .get(LEASE)
                .await
                .map_err(|e| e.to_string())?
                .spec
                .ok_or("no spec")?;
            let renewed = spec.renew_time.map(|t| t.0);
            let holder = spec.holder_identity.unwrap_or_default();
            match renewed {
                Some(t)
                    if t.as_millisecond() > killed_at.as_millisecond() + 100
                        && !holder.is_empty() =>
                {
                    Ok(holder)
                }
                _ => Err(format!("holder {holder:?}, renewed {renewed:?}")),
            }
        },
    )
    .await?;
    let crash = began.elapsed();
    figure(
        "takeover_after_sigkill_s",
        format!("{:.2}", crash.as_secs_f64()),
    );
    figure(
        "takeover_after_sigkill_by",
        if holder == new {
            "the restarted container"
        } else {
            "the other pod"
        },
    );
    ensure!(
        crash <= Duration::from_secs(17),
        "leadership came back {crash:?} after SIGKILL (limit 17 s)"
    );
    status_follows(plane, client, "after-crash").await?;
    no_two_writers(&cluster.audit_log())?;
    Ok(())
}

/// A new violating Deployment shows in the policy's status: the (new) leader writes.
async fn status_follows(plane: &ControlPlane, client: &Client, name: &str) -> anyhow::Result<()> {
    let before = status(client)
        .await?
        .summary
        .map(|s| s.violating)
        .unwrap_or(0);
    plane
        .kubectl_with_stdin(
            ["apply", "-f", "-"],
            Some(&violating_deployment(name, APPS)),
        )
        .await?
        .ok()?;
    e2e::wait_status(
        client,
        POLICY,
        Duration::from_secs(30),
        "one more violating workload",
        |s| {
            let v = s.summary.as_ref().map(|s| s.violating).unwrap_or(0);
            if v == before + 1 {
                Ok(())
            } else {
                Err(format!("violating {v}, want {}", before + 1))
            }
        },
    )
    .await;
    Ok(())
}

/// From the API server's audit log: every status write came from the pod that last wrote
/// the Lease (acquired or renewed it), so no two leaders ever wrote at once.
fn no_two_writers(audit: &std::path::Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(audit).with_context(|| format!("reading {}", audit.display()))?;
    let mut holder: Option<String> = None;
    let (mut writes, mut lease_writes) = (0, 0);
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let code = event["responseStatus"]["code"].as_i64().unwrap_or(0);
        if !(200..300).contains(&code) {
            continue;
        }
        let pod = event["user"]["extra"]["authentication.kubernetes.io/pod-name"][0]
            .as_str()
            .map(str::to_string);
        let r = &event["objectRef"];
        let resource = r["resource"].as_str().unwrap_or_default();
        if resource == "leases" && r["name"] == LEASE && r["namespace"] == NS {
            lease_writes += 1;
            holder = pod;
        } else if resource == "productionpolicies" && r["subresource"] == "status" {
            writes += 1;
            ensure!(
                pod.is_some() && pod == holder,
                "status written by {pod:?} while the Lease was last written by {holder:?}: {line}"
            );
        }
    }
    ensure!(
        writes > 0 && lease_writes > 0,
        "the audit log shows {writes} status writes and {lease_writes} Lease writes"
    );
    figure("audited_status_writes", writes);
    Ok(())
}

/// `helm upgrade` rolls both pods while a client sends a server-side dry-run apply every
/// 200 ms: every one is admitted with prodready's warnings.
async fn upgrade(plane: &ControlPlane, client: &Client, package: &Package) -> anyhow::Result<()> {
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let load = {
        let (sent, stop, failures) = (sent.clone(), stop.clone(), failures.clone());
        let kubeconfig = plane.kubeconfig().to_path_buf();
        tokio::spawn(async move {
            let plane = ControlPlane::external(kubeconfig);
            let plane = Arc::new(plane);
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            let mut tasks = Vec::new();
            // Bounded: at most 5 minutes of load.
            for _ in 0..1500 {
                tick.tick().await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
                let (plane, failures) = (plane.clone(), failures.clone());
                tasks.push(tokio::spawn(async move {
                    let yaml = violating_deployment("upgrade-probe", APPS);
                    let out = plane
                        .kubectl_with_stdin(["apply", "--dry-run=server", "-f", "-"], Some(&yaml))
                        .await;
                    let problem = match out {
                        Err(e) => Some(format!("{e:#}")),
                        Ok(o) if !o.success() => Some(format!("failed: {}", o.stderr)),
                        Ok(o) if !o.stderr.contains("Warning: prodready[in-cluster]") => {
                            Some(format!("unwarned: {}", o.stderr))
                        }
                        Ok(_) => None,
                    };
                    if let Some(p) = problem {
                        failures
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(p);
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    };
    // Let the load run before, during and after the rollout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let chart = package.chart.display().to_string();
    let rolled = plane
        .helm([
            "upgrade",
            RELEASE,
            &chart,
            "--namespace",
            NS,
            "--reuse-values",
            "--set",
            "podAnnotations.prodready\\.dev/rolled=yes",
        ])
        .await?
        .ok();
    let status = plane
        .kubectl([
            "-n",
            NS,
            "rollout",
            "status",
            "deployment/prodready",
            "--timeout=240s",
        ])
        .await?
        .ok();
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    load.await?;
    rolled?;
    status?;
    let sent = sent.load(Ordering::Relaxed);
    let failures = failures
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    figure("upgrade_admissions", sent);
    figure("upgrade_failed_or_unwarned", failures.len());
    ensure!(
        sent >= 50,
        "only {sent} admissions were sent during the upgrade"
    );
    ensure!(
        failures.is_empty(),
        "{} of {sent} admissions failed or were unwarned: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    // Both new pods run the annotation.
    let pods = operator_pods(client).await?;
    ensure!(
        pods.len() == 2 && pods.iter().all(ready),
        "after the upgrade: {} pods",
        pods.len()
    );
    Ok(())
}

/// `kubectl drain` evicts one operator pod and is then held by the chart's PDB.
async fn drain(plane: &ControlPlane, client: &Client) -> anyhow::Result<()> {
    let out = plane
        .kubectl([
            "drain",
            e2e::NODE_NAME,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--pod-selector",
            OPERATOR_SELECTOR,
            "--timeout=25s",
        ])
        .await?;
    plane.kubectl(["uncordon", e2e::NODE_NAME]).await?.ok()?;
    ensure!(
        !out.success(),
        "drain succeeded despite the PDB: {}",
        out.stdout
    );
    ensure!(
        out.stderr.contains("disruption budget"),
        "drain did not stop at the PDB: {}",
        out.stderr
    );
    wait_for(
        Duration::from_secs(120),
        "2 operator pods Ready after the drain",
        || async {
            let pods = operator_pods(client).await.map_err(|e| e.to_string())?;
            let n = pods.iter().filter(|p| ready(p)).count();
            if n == 2 {
                Ok(())
            } else {
                Err(format!("{n} ready"))
            }
        },
    )
    .await?;
    Ok(())
}

/// A real leader-elected program (client-go leader election on a Lease) makes `leader-lease`
/// pass while it runs, and fail within its lease duration once scaled to zero.
async fn leader_program(plane: &ControlPlane, client: &Client) -> anyhow::Result<()> {
    let image = e2e::TESTAPP_IMAGE;
    let yaml = format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: runner, namespace: {APPS}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: runner-lease, namespace: {APPS}}}
rules:
  - apiGroups: [coordination.k8s.io]
    resources: [leases]
    verbs: [get, create, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: runner-lease, namespace: {APPS}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: runner-lease}}
subjects: [{{kind: ServiceAccount, name: runner, namespace: {APPS}}}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: runner
  namespace: {APPS}
  annotations: {{prodready.dev/single-runner: "true", prodready.dev/lease: runner-leader}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: runner}}}}
  template:
    metadata: {{labels: {{app: runner}}}}
    spec:
      serviceAccountName: runner
      containers:
        - name: app
          image: {image}
          imagePullPolicy: Never
          args: [lease, --name, runner-leader, --duration, 10s]
          env:
            - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
            - {{name: POD_NAMESPACE, valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}}}
"#
    );
    plane
        .kubectl_with_stdin(["apply", "-f", "-"], Some(&yaml))
        .await?
        .ok()?;
    let lease_rule = |s: &ProductionPolicyStatus| {
        s.violations
            .iter()
            .any(|v| v.name == "runner" && v.rule == "leader-lease")
    };
    // Held and renewed: no leader-lease violation once the program leads.
    wait_for(
        Duration::from_secs(90),
        "the runner's Lease held and leader-lease passing",
        || async {
            let leases: Api<Lease> = Api::namespaced(client.clone(), APPS);
            let held = leases
                .get_opt("runner-leader")
                .await
                .map_err(|e| e.to_string())?
                .and_then(|l| l.spec)
                .and_then(|s| s.holder_identity)
                .is_some_and(|h| !h.is_empty());
            let s = status(client).await.map_err(|e| e.to_string())?;
            if held && !lease_rule(&s) {
                Ok(())
            } else {
                Err(format!("held {held}, violation {}", lease_rule(&s)))
            }
        },
    )
    .await?;
    plane
        .kubectl(["-n", APPS, "scale", "deployment/runner", "--replicas=0"])
        .await?
        .ok()?;
    let began = Instant::now();
    e2e::wait_status(
        client,
        POLICY,
        Duration::from_secs(40),
        "leader-lease failing for the runner",
        |s| {
            if lease_rule(s) {
                Ok(())
            } else {
                Err("leader-lease still passes".into())
            }
        },
    )
    .await;
    figure(
        "leader_lease_fail_after_scale_to_zero_s",
        format!("{:.1}", began.elapsed().as_secs_f64()),
    );
    ensure!(
        began.elapsed() <= Duration::from_secs(10 + 5),
        "leader-lease failed only after {:?}",
        began.elapsed()
    );
    Ok(())
}

/// The API server stopped for 20 s with etcd restarted meanwhile: the kubelet restarts no
/// operator container (liveness stays green), readiness drops and recovers, and status is
/// exact afterwards.
async fn faults(cluster: &Cluster, client: &Client) -> anyhow::Result<()> {
    let pods = operator_pods(client).await?;
    let restarts_before: BTreeMap<String, i32> =
        pods.iter().map(|p| (name_of(p), restarts(p))).collect();
    let addrs: Vec<SocketAddr> = pods
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.as_ref()?.parse().ok())
        .map(|ip| SocketAddr::new(ip, 8080))
        .collect();
    ensure!(addrs.len() == 2, "operator pod IPs: {addrs:?}");
    cluster.stop_apiserver();
    let down = Instant::now();
    let (mut saw_unready, mut live_failures) = (false, Vec::new());
    let mut etcd_restarted = false;
    while down.elapsed() < Duration::from_secs(20) {
        for addr in &addrs {
            match cluster.http_get(*addr, "/health/ready") {
                Ok((503, _)) => saw_unready = true,
                Ok(_) => {}
                Err(e) => live_failures.push(format!("ready probe of {addr}: {e}")),
            }
            match cluster.http_get(*addr, "/health/live") {
                Ok((200, _)) => {}
                other => live_failures.push(format!("live probe of {addr}: {other:?}")),
            }
        }
        if !etcd_restarted && down.elapsed() > Duration::from_secs(8) {
            cluster.restart_etcd().await?;
            etcd_restarted = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    cluster.start_apiserver().await?;
    ensure!(
        live_failures.is_empty(),
        "liveness failed while the API server was down: {live_failures:?}"
    );
    ensure!(
        saw_unready,
        "readiness never dropped while the API server was down"
    );
    let recovered = wait_for(
        Duration::from_secs(60),
        "both operator pods ready again",
        || async {
            let answers: Vec<_> = addrs
                .iter()
                .map(|addr| cluster.http_get(*addr, "/health/ready"))
                .collect();
            if answers.iter().all(|a| matches!(a, Ok((200, _)))) {
                Ok(())
            } else {
                // What each pod says about why it is not ready.
                Err(format!("/health/ready answers: {answers:?}"))
            }
        },
    )
    .await;
    if let Err(e) = recovered {
        let logs = cluster
            .plane()
            .kubectl([
                "-n",
                NS,
                "logs",
                "-l",
                OPERATOR_SELECTOR,
                "--tail=40",
                "--prefix",
            ])
            .await
            .map(|o| o.stdout + &o.stderr)
            .unwrap_or_else(|e| format!("(kubectl logs failed: {e:#})"));
        bail!("{e}\n--- the operator pods' logs ---\n{logs}");
    }
    let pods = operator_pods(client).await?;
    for pod in &pods {
        let before = restarts_before.get(&name_of(pod)).copied();
        ensure!(
            before == Some(restarts(pod)),
            "pod {} restarted: {before:?} → {}",
            name_of(pod),
            restarts(pod)
        );
    }
    status_follows(cluster.plane(), client, "after-faults").await?;
    Ok(())
}

/// p50/p99 of a server-side dry-run create (what `kubectl apply --dry-run=server` sends for
/// a new object), 500 each with prodready's webhook registered and without.
async fn latency(plane: &ControlPlane, client: &Client) -> anyhow::Result<()> {
    let deployment: Deployment =
        serde_saphyr::from_str(&violating_deployment("latency", APPS)).context("parsing YAML")?;
    let api: Api<Deployment> = Api::namespaced(client.clone(), APPS);
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let measure = async |label: &str| -> anyhow::Result<()> {
        let mut times = Vec::with_capacity(500);
        for _ in 0..500 {
            let t = Instant::now();
            api.create(&params, &deployment).await?;
            times.push(t.elapsed());
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        figure(
            &format!("dry_run_p50_ms_{label}"),
            format!("{:.2}", ms(times[249])),
        );
        figure(
            &format!("dry_run_p99_ms_{label}"),
            format!("{:.2}", ms(times[494])),
        );
        Ok(())
    };
    measure("with_webhook").await?;
    let vwc = plane
        .kubectl(["get", "validatingwebhookconfigurations", "-o", "name"])
        .await?
        .ok()?;
    for name in vwc.stdout.lines().filter(|l| l.contains("prodready")) {
        plane.kubectl(["delete", name]).await?.ok()?;
    }
    measure("without_webhook").await?;
    Ok(())
}

/// docs/install.md's `helm uninstall`, as written; the garbage collector then removes the
/// webhook Secret and the leader Lease the operator created (their owner is the chart's
/// Deployment), which the doc's check command shows. Then docs/install.md's kustomize install
/// (`kubectl apply -k config/default`) brings two pods to Ready the same way; `kubectl delete
/// -k` removes it.
async fn kustomize(plane: &ControlPlane, client: &Client) -> anyhow::Result<()> {
    let uninstall = doc_commands("## Uninstall")?;
    ensure!(
        uninstall.len() == 1 && uninstall[0].first().is_some_and(|c| c == "helm"),
        "docs/install.md#uninstall: {uninstall:?}"
    );
    plane.helm(&uninstall[0][1..]).await?.ok()?;
    wait_for(
        Duration::from_secs(60),
        "the helm release's pods gone",
        || async {
            let n = operator_pods(client)
                .await
                .map_err(|e| e.to_string())?
                .len();
            if n == 0 {
                Ok(())
            } else {
                Err(format!("{n} pods left"))
            }
        },
    )
    .await?;
    // What the operator created goes with the Deployment: the doc's check prints nothing.
    let check = doc_commands("Check that nothing is left")?;
    ensure!(
        check.len() == 1 && check[0].first().is_some_and(|c| c == "kubectl"),
        "docs/install.md's check: {check:?}"
    );
    wait_for(
        Duration::from_secs(90),
        "the garbage collector removing the webhook Secret and the leader Lease",
        || async {
            let out = plane
                .kubectl(&check[0][1..])
                .await
                .map_err(|e| format!("{e:#}"))?;
            if out.success() && out.stdout.trim().is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "exit {}, left: {}{}",
                    out.status, out.stdout, out.stderr
                ))
            }
        },
    )
    .await?;
    // docs/install.md's kustomize commands, as written (paths from the repository root).
    for command in doc_commands("## kustomize")? {
        ensure!(
            command.first().is_some_and(|c| c == "kubectl"),
            "not a kubectl command: {command:?}"
        );
        plane.kubectl(repo_paths(&command[1..])).await?.ok()?;
    }
    rollout_status(plane).await?;
    let pods = operator_pods(client).await?;
    ensure!(
        pods.len() == 2 && pods.iter().all(ready),
        "kustomize install: {} pods",
        pods.len()
    );
    // The webhook answers through its Service here too, once the operator has injected its CA
    // into the freshly applied (empty) caBundle; until then failurePolicy Ignore admits silently.
    wait_for(
        Duration::from_secs(30),
        "a prodready warning from the kustomize install",
        || async {
            let out = plane
                .kubectl_with_stdin(
                    ["apply", "--dry-run=server", "-f", "-"],
                    Some(&violating_deployment("kustomized", APPS)),
                )
                .await
                .map_err(|e| format!("{e:#}"))?;
            if out.success() && out.stderr.contains("Warning: prodready[") {
                Ok(())
            } else {
                Err(format!("exit {}, stderr {}", out.status, out.stderr))
            }
        },
    )
    .await?;
    Ok(())
}

/// `kubectl delete -k config/default`, then the README's quick start as written: step 1
/// (`helm install` of the chart in the source tree, `rollout status`) and step 2 (the Warn-only
/// samples, `kubectl get` and `describe`).
async fn quick_start(plane: &ControlPlane, client: &Client) -> anyhow::Result<()> {
    let tree = e2e::repo_root()
        .join("config/default")
        .display()
        .to_string();
    plane
        .kubectl(["delete", "-k", &tree, "--wait=true", "--timeout=120s"])
        .await?
        .ok()?;
    let mut commands = commands_in("README.md", "**1. Install the operator**")?;
    commands.extend(commands_in("README.md", "**2. Your first policy.**")?);
    for command in &commands {
        match command.first().map(String::as_str) {
            Some("helm") => plane.helm(repo_paths(&command[1..])).await?.ok()?,
            Some("kubectl") => plane.kubectl(repo_paths(&command[1..])).await?.ok()?,
            _ => bail!("the quick start has a command the suite does not know: {command:?}"),
        };
    }
    let pods = operator_pods(client).await?;
    ensure!(
        pods.len() == 2 && pods.iter().all(ready),
        "quick start install: {} pods",
        pods.len()
    );
    let table = plane
        .kubectl(["get", "productionpolicies", "baseline"])
        .await?
        .ok()?;
    ensure!(
        table.stdout.contains("Warn"),
        "baseline is not Warn: {}",
        table.stdout
    );
    Ok(())
}

/// Nothing of the cluster is left: no network namespace, cgroup, mount, bridge or process
/// (veths and iptables rules lived in the deleted namespace).
fn leftovers() -> anyhow::Result<()> {
    let pid = std::process::id();
    ensure!(
        !std::path::Path::new(&format!("/run/netns/prodready-{pid}")).exists(),
        "the cluster's network namespace is still there"
    );
    for hierarchy in ["cpu", "memory", "pids"] {
        let dir = format!("/sys/fs/cgroup/{hierarchy}/prodready-e2e-{pid}");
        ensure!(!std::path::Path::new(&dir).exists(), "{dir} is still there");
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    let ours = format!("/cluster-{pid}-");
    ensure!(
        !mounts.lines().any(|l| l.contains(&ours)),
        "mounts of the cluster's run directory are left"
    );
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()?;
    let links = String::from_utf8_lossy(&links.stdout);
    ensure!(
        !links
            .lines()
            .any(|l| l.contains("cni0") || l.contains("node0") || l.contains("svc0")),
        "cluster links in the root namespace: {links}"
    );
    let out = std::process::Command::new("pgrep")
        .args(["-f", "containerd-shim-runc-v2|kubelet --config"])
        .output()?;
    let left = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !left.is_empty() {
        bail!("processes left: {left}");
    }
    Ok(())
}

/// docs/install.md's `kubectl -n prodready-system rollout status deployment/prodready`.
async fn rollout_status(plane: &ControlPlane) -> anyhow::Result<()> {
    plane
        .kubectl([
            "-n",
            NS,
            "rollout",
            "status",
            "deployment/prodready",
            "--timeout=180s",
        ])
        .await?
        .ok()
        .map(drop)
}

/// The commands of the first `sh` block after `heading` in docs/install.md.
fn doc_commands(heading: &str) -> anyhow::Result<Vec<Vec<String>>> {
    commands_in("docs/install.md", heading)
}

/// The commands of the first `sh` block after `heading` in the repository file `file`:
/// trailing comments dropped, split on whitespace (the docs quote nothing).
fn commands_in(file: &str, heading: &str) -> anyhow::Result<Vec<Vec<String>>> {
    Ok(e2e::doc_sh_block(file, heading)?
        .iter()
        .map(|l| l.split_once(" #").map_or(l.as_str(), |(c, _)| c).trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect())
}

/// Arguments with repository-relative paths (`config/…`) made absolute: the suite does not
/// run from the repository root.
fn repo_paths(args: &[String]) -> Vec<String> {
    paths_in(&e2e::repo_root(), args)
}

/// Arguments that name a file or directory under `dir` made absolute; flags and other
/// arguments as they are.
fn paths_in(dir: &std::path::Path, args: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| {
            if !a.starts_with('-') && dir.join(a).exists() {
                dir.join(a).display().to_string()
            } else {
                a.clone()
            }
        })
        .collect()
}

// --- small readers -----------------------------------------------------------------------

/// The in-cluster policy's status (the e2e kit's reader, with this suite's policy).
async fn status(client: &Client) -> anyhow::Result<ProductionPolicyStatus> {
    e2e::status_of(client, POLICY)
        .await
        .context("the policy has no status yet")
}

async fn operator_pods(client: &Client) -> anyhow::Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), NS);
    let list = api
        .list(&ListParams::default().labels(OPERATOR_SELECTOR))
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect())
}

fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |c| c.iter().map(|c| c.restart_count).sum())
}

async fn lease_holder(client: &Client) -> anyhow::Result<Option<String>> {
    let api: Api<Lease> = Api::namespaced(client.clone(), NS);
    Ok(api
        .get_opt(LEASE)
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty()))
}

async fn wait_new_holder(client: &Client, old: &str, timeout: Duration) -> anyhow::Result<String> {
    Ok(wait_for(timeout, "a new Lease holder", || async {
        match lease_holder(client).await {
            Ok(Some(h)) if h != old => Ok(h),
            Ok(h) => Err(format!("holder {h:?}")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await?)
}
