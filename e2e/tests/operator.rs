//! `prodready run` against a real API server: status, cross-object verdicts, CRD discovery,
//! Lease verification, exemption expiry, Events, metrics, logs, leader election and API-server
//! outages.
//!
//! The operator runs as a subprocess (`prodready-operator`, the same library code as
//! `prodready run`) so tests can read its logs, scrape its admin port, SIGTERM and SIGKILL it.
//! Most tests share one control plane and one operator and isolate themselves with a
//! namespace and a policy that matches only it. Tests that need a cluster of their own (a
//! missing CRD, two operators competing for a Lease, a stopped API server) start a private
//! control plane.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::{
    CRD_FILE, ControlPlane, Operator, OperatorProcess, apply_yaml, condition, counts, cronjob,
    deployment, expect_counts, free_port, install_crd_file, install_monitoring_crds, metric_value,
    otlp_sink, policy_yaml, repo_root, status_of, tail_lines, wait_for, wait_for_events,
    wait_status, workload_events,
};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use prodready::api::ProductionPolicy;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// The suite's operator binary (`prodready run` that stops when its stdin closes).
fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_prodready-operator"))
}

/// How long a status may take to reflect a change (debounce 200 ms + evaluation + write).
const SETTLE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// The operator process
// ---------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------
// Shared control plane and operator
// ---------------------------------------------------------------------------------------

struct Shared {
    cp: &'static ControlPlane,
    operator: Operator,
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();

/// The shared control plane (with our CRD and the monitoring CRDs) and its one operator.
async fn shared() -> &'static Shared {
    SHARED
        .get_or_init(|| async {
            let cp = ControlPlane::shared().await.expect("shared control plane");
            let client = cp.client().await.expect("client");
            install_crd_file(&client, repo_root().join(CRD_FILE))
                .await
                .expect("install the ProductionPolicy CRD");
            install_monitoring_crds(&client)
                .await
                .expect("install the monitoring CRDs");
            let operator = Operator::start(
                program(),
                cp.kubeconfig(),
                "shared-operator",
                "e2e-shared",
                &[],
            );
            operator.wait_ready(Duration::from_secs(60)).await;
            Shared { cp, operator }
        })
        .await
}

// ---------------------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------------------

async fn apply(client: &Client, ns: &str, yaml: &str) {
    apply_yaml(client, Some(ns), yaml)
        .await
        .unwrap_or_else(|e| panic!("apply: {e:#}\n{yaml}"));
}

// ---------------------------------------------------------------------------------------
// Tests on the shared control plane
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn mixed_workloads_get_exact_counts_rules_and_violations() {
    let sh = shared().await;
    let ns = sh.cp.temp_namespace("mixed").await.expect("namespace");
    let client = sh.cp.client().await.expect("client");
    let name = ns.name().to_owned();
    for (w, good) in [
        ("good-a", true),
        ("good-b", true),
        ("bad-a", false),
        ("bad-b", false),
        ("bad-c", false),
    ] {
        apply(&client, &name, &deployment(w, 1, good, "")).await;
    }
    apply(&client, &name, &cronjob("cron-ok", true)).await;
    apply(&client, &name, &cronjob("cron-bad", false)).await;
    // Every watched workload kind: a compliant StatefulSet, a violating DaemonSet.
    apply(
        &client,
        &name,
        &deployment("sts-ok", 1, true, "")
            .replace("kind: Deployment", "kind: StatefulSet")
            .replace(
                "spec:\n  replicas: 1",
                "spec:\n  serviceName: sts-ok\n  replicas: 1",
            ),
    )
    .await;
    apply(
        &client,
        &name,
        &deployment("ds-bad", 1, false, "")
            .replace("kind: Deployment", "kind: DaemonSet")
            .replace("  replicas: 1\n", ""),
    )
    .await;
    apply(
        &client,
        &name,
        &policy_yaml(
            &name,
            &format!("{{namespaces: [{name}]}}"),
            &["livenessProbe", "readinessProbe", "cronjobSingleRunner"],
            "",
        )
        .replace(
            "readinessProbe: {enabled: true}",
            "readinessProbe: {enabled: true, severity: medium}",
        ),
    )
    .await;

    let s = wait_status(
        &client,
        &name,
        SETTLE,
        "exact counts",
        expect_counts((9, 4, 5, 0, 0)),
    )
    .await;
    let rules: Vec<(String, String, u32)> = s
        .rules
        .iter()
        .map(|r| (r.rule.clone(), r.severity.to_string(), r.violations))
        .collect();
    assert_eq!(
        rules,
        vec![
            ("cronjob-single-runner".into(), "high".into(), 1),
            ("liveness-probe".into(), "high".into(), 4),
            ("readiness-probe".into(), "medium".into(), 4),
        ]
    );
    assert_eq!(s.violations.len(), 9, "{:?}", s.violations);
    // Most severe first: the five high findings, then the four medium ones.
    let severities: Vec<String> = s
        .violations
        .iter()
        .map(|v| v.severity.to_string())
        .collect();
    assert_eq!(
        severities,
        [vec!["high"; 5], vec!["medium"; 4]].concat(),
        "{:?}",
        s.violations
    );
    assert!(!s.violations_truncated);
    let mut pairs: Vec<(String, String)> = s
        .violations
        .iter()
        .map(|v| (v.name.clone(), v.rule.clone()))
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            ("bad-a".into(), "liveness-probe".into()),
            ("bad-a".into(), "readiness-probe".into()),
            ("bad-b".into(), "liveness-probe".into()),
            ("bad-b".into(), "readiness-probe".into()),
            ("bad-c".into(), "liveness-probe".into()),
            ("bad-c".into(), "readiness-probe".into()),
            ("cron-bad".into(), "cronjob-single-runner".into()),
            ("ds-bad".into(), "liveness-probe".into()),
            ("ds-bad".into(), "readiness-probe".into()),
        ]
    );
    assert_eq!(condition(&s, "Ready"), Some(("True", "Evaluated")));
    assert_eq!(
        condition(&s, "Compliant"),
        Some(("False", "ViolationsFound"))
    );
    assert_eq!(
        condition(&s, "Degraded"),
        Some(("False", "AllRulesEvaluated"))
    );
    assert!(s.observed_generation.is_some());
    assert!(s.last_evaluation_time.is_some());

    let out = sh
        .cp
        .kubectl(["get", "productionpolicies", &name])
        .await
        .expect("kubectl");
    assert!(out.success(), "{}", out.stderr);
    let row = out.stdout.lines().nth(1).unwrap_or_default().to_owned();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cols.get(1..5),
        Some(&["Audit", "9", "5", "True"][..]),
        "{}",
        out.stdout
    );

    // Status is written by one field manager, on the status subresource only.
    let api: Api<ProductionPolicy> = Api::all(client.clone());
    let p = api.get(&name).await.expect("policy");
    let managers: Vec<(String, Option<String>)> = p
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.subresource.as_deref() == Some("status"))
        .map(|m| (m.manager.unwrap_or_default(), m.operation))
        .collect();
    assert_eq!(
        managers,
        vec![("prodready".to_owned(), Some("Apply".to_owned()))]
    );
}

#[tokio::test]
async fn cross_object_verdicts_do_not_depend_on_creation_order() {
    let sh = shared().await;
    let ns = sh.cp.temp_namespace("order").await.expect("namespace");
    let client = sh.cp.client().await.expect("client");
    let name = ns.name().to_owned();
    apply(&client, &name, &deployment("web", 2, true, "")).await;
    apply(
        &client,
        &name,
        &policy_yaml(
            &name,
            &format!("{{namespaces: [{name}]}}"),
            &["serviceMonitor", "disruptionBudget"],
            "",
        ),
    )
    .await;
    let s = wait_status(
        &client,
        &name,
        SETTLE,
        "violating first",
        expect_counts((1, 0, 1, 0, 0)),
    )
    .await;
    let rules: Vec<&str> = s.rules.iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(rules, vec!["disruption-budget", "service-monitor"]);

    apply(
        &client,
        &name,
        r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: metrics, port: 9090, targetPort: metrics}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: web}
spec:
  selector: {matchLabels: {}}
  endpoints: [{port: metrics}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: web}}
"#,
    )
    .await;
    wait_status(
        &client,
        &name,
        SETTLE,
        "compliant once the Service, ServiceMonitor and PDB exist",
        expect_counts((1, 1, 0, 0, 0)),
    )
    .await;

    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &name);
    pdbs.delete("web", &DeleteParams::default())
        .await
        .expect("delete PDB");
    let s = wait_status(
        &client,
        &name,
        SETTLE,
        "violating again without the PDB",
        expect_counts((1, 0, 1, 0, 0)),
    )
    .await;
    assert_eq!(
        s.violations.first().map(|v| v.rule.as_str()),
        Some("disruption-budget")
    );
}

/// An HPA-managed Deployment as a chart renders it: no `replicas` (the API server defaults it
/// to 1).
const AUTOSCALED: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: "example.org/app:1.0"}]
"#;

fn hpa(min: i32) -> String {
    format!(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: web}}\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}\n  minReplicas: {min}\n  maxReplicas: 10\n"
    )
}

#[tokio::test]
async fn a_late_hpa_flips_replicas_ha_and_its_min_replicas_decides() {
    let sh = shared().await;
    let ns = sh.cp.temp_namespace("hpa").await.expect("namespace");
    let client = sh.cp.client().await.expect("client");
    let name = ns.name().to_owned();
    apply(&client, &name, AUTOSCALED).await;
    apply(
        &client,
        &name,
        &policy_yaml(
            &name,
            &format!("{{namespaces: [{name}]}}"),
            &["replicasHa"],
            "",
        ),
    )
    .await;
    // Before its autoscaler exists, the defaulted single replica is all there is.
    let s = wait_status(
        &client,
        &name,
        SETTLE,
        "violating while no HPA scales it",
        expect_counts((1, 0, 1, 0, 0)),
    )
    .await;
    assert_eq!(
        s.violations.first().map(|v| v.message.as_str()),
        Some("runs 1 replica: a node drain or crash takes it down")
    );

    // The HPA arrives later, with minReplicas 3: compliant, no restart.
    apply(&client, &name, &hpa(3)).await;
    wait_status(
        &client,
        &name,
        SETTLE,
        "compliant once an HPA with minReplicas 3 scales it",
        expect_counts((1, 1, 0, 0, 0)),
    )
    .await;

    // minReplicas lowered to 1: violating again, and the message names the autoscaler.
    apply(&client, &name, &hpa(1)).await;
    let s = wait_status(
        &client,
        &name,
        SETTLE,
        "violating with minReplicas 1",
        expect_counts((1, 0, 1, 0, 0)),
    )
    .await;
    assert_eq!(
        s.violations.first().map(|v| v.message.as_str()),
        Some(
            "scales down to minReplicas 1 of HorizontalPodAutoscaler \"web\": a node drain or crash takes it down"
        )
    );

    // The HPA's status (written by the HPA controller in a real cluster) is not stored and
    // changes nothing; deleting the HPA flips the verdict back to the single replica.
    let hpas: Api<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler> =
        Api::namespaced(client.clone(), &name);
    hpas.delete("web", &DeleteParams::default())
        .await
        .expect("delete the HPA");
    let s = wait_status(
        &client,
        &name,
        SETTLE,
        "violating on the single replica once the HPA is gone",
        |s| {
            expect_counts((1, 0, 1, 0, 0))(s)?;
            match s.violations.first().map(|v| v.message.as_str()) {
                Some("runs 1 replica: a node drain or crash takes it down") => Ok(()),
                other => Err(format!("violation {other:?}")),
            }
        },
    )
    .await;
    assert_eq!(s.violations.len(), 1);
}

#[tokio::test]
async fn leader_lease_rule_follows_a_live_lease() {
    let sh = shared().await;
    let ns = sh.cp.temp_namespace("lease").await.expect("namespace");
    let client = sh.cp.client().await.expect("client");
    let name = ns.name().to_owned();
    apply(
        &client,
        &name,
        &deployment(
            "worker",
            2,
            true,
            "prodready.dev/single-runner: \"true\", prodready.dev/lease: worker-lock",
        ),
    )
    .await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &name);
    let renew = |leases: Api<Lease>| async move {
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "worker-lock"},
            "spec": {"holderIdentity": "worker-0", "leaseDurationSeconds": 2,
                      "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(Timestamp::now())},
        });
        leases
            .patch(
                "worker-lock",
                &PatchParams::apply("e2e").force(),
                &Patch::Apply(&lease),
            )
            .await
            .expect("renew the Lease");
    };
    renew(leases.clone()).await;
    apply(
        &client,
        &name,
        &policy_yaml(
            &name,
            &format!("{{namespaces: [{name}]}}"),
            &["leaderLease"],
            "",
        )
        .replace(
            "leaderLease: {enabled: true}",
            "leaderLease: {enabled: true, graceSeconds: 0}",
        ),
    )
    .await;
    // Renewed every second: passes, and keeps passing.
    let renewing = {
        let leases = leases.clone();
        tokio::spawn(async move {
            loop {
                renew(leases.clone()).await;
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
        })
    };
    wait_status(
        &client,
        &name,
        SETTLE,
        "compliant while renewed",
        expect_counts((1, 1, 0, 0, 0)),
    )
    .await;
    let before = Instant::now();
    while before.elapsed() < Duration::from_secs(5) {
        let s = status_of(&client, &name).await.expect("status");
        assert_eq!(
            counts(&s),
            (1, 1, 0, 0, 0),
            "a renewed Lease must keep passing"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Renewals stop: stale after duration + grace, with no other change to the cluster.
    renewing.abort();
    let s = wait_status(
        &client,
        &name,
        Duration::from_secs(15),
        "violating once the Lease is stale",
        expect_counts((1, 0, 1, 0, 0)),
    )
    .await;
    assert!(
        s.violations[0].message.contains("worker-lock"),
        "{}",
        s.violations[0].message
    );
    // Deleted: fails, naming the Lease.
    leases
        .delete("worker-lock", &DeleteParams::default())
        .await
        .expect("delete Lease");
    wait_status(
        &client,
        &name,
        SETTLE,
        "violation names the missing Lease",
        |s| {
            let m = s
                .violations
                .first()
                .map(|v| v.message.clone())
                .unwrap_or_default();
            if counts(s).2 == 1 && m.contains("worker-lock") && !m.contains("renewed") {
                Ok(())
            } else {
                Err(format!("message: {m}"))
            }
        },
    )
    .await;
}

#[tokio::test]
async fn an_expiring_exemption_stops_applying_at_its_instant() {
    let sh = shared().await;
    let ns = sh.cp.temp_namespace("expiry").await.expect("namespace");
    let client = sh.cp.client().await.expect("client");
    let name = ns.name().to_owned();
    apply(&client, &name, &deployment("legacy", 1, false, "")).await;
    let expires = Timestamp::from_second(Timestamp::now().as_second() + 10).expect("time");
    let extra = format!(
        "  exemptions:\n    - {{rules: [liveness-probe], names: [legacy], reason: \"migration ticket OPS-1\", expires: \"{expires}\"}}\n"
    );
    apply(
        &client,
        &name,
        &policy_yaml(
            &name,
            &format!("{{namespaces: [{name}]}}"),
            &["livenessProbe"],
            &extra,
        ),
    )
    .await;
    let s = wait_status(
        &client,
        &name,
        SETTLE,
        "exempt before expiry",
        expect_counts((1, 0, 0, 1, 0)),
    )
    .await;
    assert_eq!(s.expiring_exemptions.len(), 1);
    assert_eq!(s.expiring_exemptions[0].expires.0, expires);
    wait_status(
        &client,
        &name,
        Duration::from_secs(25),
        "violating after expiry",
        expect_counts((1, 0, 1, 0, 0)),
    )
    .await;
    let flipped = Timestamp::now();
    assert!(
        flipped >= expires,
        "flipped at {flipped}, before the expiry {expires}"
    );
    assert!(
        flipped.duration_since(expires) < SignedDuration::from_secs(5),
        "flipped at {flipped}, long after the expiry {expires}"
    );
}

#[tokio::test]
async fn a_violating_deployment_gets_one_warning_event_and_resyncs_add_none() {
    let sh = shared().await;
    let ns = sh.cp.temp_namespace("events").await.expect("namespace");
    let client = sh.cp.client().await.expect("client");
    let name = ns.name().to_owned();
    apply(&client, &name, &deployment("noisy", 1, false, "")).await;
    apply(
        &client,
        &name,
        &policy_yaml(
            &name,
            &format!("{{namespaces: [{name}]}}"),
            &["livenessProbe", "readinessProbe"],
            "",
        ),
    )
    .await;
    let events = wait_for_events(
        &client,
        &name,
        "noisy",
        "ProductionReadinessViolation",
        SETTLE,
        |e| !e.is_empty(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(e.involved_object.kind.as_deref(), Some("Deployment"));
    assert!(e.involved_object.uid.is_some());
    let msg = e.message.clone().unwrap_or_default();
    assert!(
        msg.contains("liveness-probe") && msg.contains("readiness-probe"),
        "{msg}"
    );
    assert_eq!(e.reporting_component.as_deref(), Some("prodready"));

    // Two resyncs later (each bumps lastEvaluationTime), still exactly one Event.
    let first = status_of(&client, &name)
        .await
        .and_then(|s| s.last_evaluation_time)
        .expect("evaluated");
    wait_status(&client, &name, SETTLE, "two resyncs", |s| {
        let t = s
            .last_evaluation_time
            .as_ref()
            .map_or(0, |t| t.0.as_second());
        if t >= first.0.as_second() + 8 {
            Ok(())
        } else {
            Err(format!("lastEvaluationTime {t}"))
        }
    })
    .await;
    let events = workload_events(&client, &name, "noisy", "ProductionReadinessViolation").await;
    assert_eq!(events.len(), 1, "a resync must not repeat the Event");
    assert_eq!(events[0].count.unwrap_or(1), 1);

    // Fixed: one Normal Event.
    apply(&client, &name, &deployment("noisy", 1, true, "")).await;
    wait_for_events(&client, &name, "noisy", "ProductionReady", SETTLE, |e| {
        e.len() == 1
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn metrics_and_logs_describe_the_evaluation() {
    let sh = shared().await;
    let ns = sh.cp.temp_namespace("metrics").await.expect("namespace");
    let client = sh.cp.client().await.expect("client");
    let name = ns.name().to_owned();
    apply(&client, &name, &deployment("m-bad", 1, false, "")).await;
    apply(&client, &name, &deployment("m-good", 1, true, "")).await;
    apply(
        &client,
        &name,
        &policy_yaml(
            &name,
            &format!("{{namespaces: [{name}]}}"),
            &["livenessProbe"],
            "",
        ),
    )
    .await;
    wait_status(
        &client,
        &name,
        SETTLE,
        "evaluated",
        expect_counts((2, 1, 1, 0, 0)),
    )
    .await;
    let op = &sh.operator;
    let violations = format!(
        r#"prodready_violations{{policy="{name}",namespace="{name}",rule="liveness-probe",severity="high"}}"#
    );
    let text = wait_for(SETTLE, "metrics for the policy", || async {
        let m = op.metrics();
        if metric_value(&m, &violations) == Some(1.0) {
            Ok(m)
        } else {
            Err("not yet".to_owned())
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    for (series, want) in [
        (
            format!(r#"prodready_workloads{{policy="{name}",result="violating"}}"#),
            Some(1.0),
        ),
        (
            format!(r#"prodready_workloads{{policy="{name}",result="compliant"}}"#),
            Some(1.0),
        ),
        (
            format!(r#"prodready_workloads{{policy="{name}",result="exempt"}}"#),
            Some(0.0),
        ),
        ("prodready_leader".to_owned(), Some(1.0)),
    ] {
        assert_eq!(metric_value(&text, &series), want, "{series}\n{text}");
    }
    let positive = |series: &str| metric_value(&text, series).is_some_and(|v| v >= 1.0);
    assert!(positive("prodready_leader_transitions_total"), "{text}");
    assert!(
        positive(r#"prodready_reconcile_total{result="success"}"#),
        "{text}"
    );
    assert!(
        positive("prodready_reconcile_duration_seconds_count"),
        "{text}"
    );
    assert!(
        positive(
            r#"dependency_requests_total{dep="kube-apiserver",op="patch_status",status="ok"}"#
        ),
        "{text}"
    );
    assert!(
        positive(
            r#"dependency_requests_total{dep="kube-apiserver",op="create_event",status="ok"}"#
        ),
        "{text}"
    );
    assert!(
        positive(
            r#"dependency_request_duration_seconds_count{dep="kube-apiserver",op="patch_status"}"#
        ),
        "{text}"
    );
    assert!(
        positive(r#"http_server_requests_total{route="/health/ready",method="GET",status="200"}"#),
        "{text}"
    );
    assert!(
        positive(
            r#"http_server_request_duration_seconds_count{route="/health/ready",method="GET"}"#
        ),
        "{text}"
    );
    assert!(
        !text.contains("m-bad"),
        "a workload name leaked into a label"
    );
    // Events are published asynchronously (rate-limited): the violation's must be out
    // before the fix, or the fix would settle it unpublished.
    wait_for(SETTLE, "the violation Event published", || async {
        let published = op.logs().lines().any(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| {
                v["message"] == "published Event"
                    && v["policy"] == name.as_str()
                    && v["workload"] == "m-bad"
            })
        });
        if published { Ok(()) } else { Err("not yet") }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", tail_lines(&op.logs(), 30)));

    // Fixed → the violation series goes away.
    apply(&client, &name, &deployment("m-bad", 1, true, "")).await;
    wait_for(SETTLE, "violation series removed", || async {
        if op.metrics().contains(&violations) {
            Err("still there")
        } else {
            Ok(())
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    // A reconcile log line is JSON with the fields.
    let logs = op.logs();
    let line = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| {
            v["message"] == "published Event"
                && v["policy"] == name.as_str()
                && v["workload"] == "m-bad"
        })
        .unwrap_or_else(|| panic!("no Event log line for {name}\n{}", tail_lines(&logs, 30)));
    for field in [
        "timestamp",
        "level",
        "message",
        "policy",
        "namespace",
        "workload",
        "rule",
    ] {
        assert!(line.get(field).is_some(), "{field} missing in {line}");
    }
    assert_eq!(line["namespace"], name.as_str());
    assert_eq!(line["rule"], "liveness-probe");
    assert_eq!(line["level"], "INFO");
    assert!(
        logs.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|v| v["message"] == "policy evaluated"
                && v["policy"] == name.as_str()
                && v["matched"] == 2)
    );
}

#[tokio::test]
async fn an_invalid_policy_is_not_ready_and_gets_a_warning_event() {
    let sh = shared().await;
    let ns = sh.cp.temp_namespace("invalid").await.expect("namespace");
    let client = sh.cp.client().await.expect("client");
    let name = ns.name().to_owned();
    // The schema cannot see this; only the operator can.
    let bad = format!(
        "{{namespaces: [{name}], selector: {{matchExpressions: [{{key: app, operator: Near}}]}}}}"
    );
    apply(
        &client,
        "default",
        &policy_yaml(&name, &bad, &["livenessProbe"], ""),
    )
    .await;
    let s = wait_status(
        &client,
        &name,
        SETTLE,
        "Ready=False InvalidPolicy",
        |s| match condition(s, "Ready") {
            Some(("False", "InvalidPolicy")) => Ok(()),
            other => Err(format!("Ready {other:?}")),
        },
    )
    .await;
    let msg = s
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(msg.contains("Near"), "{msg}");
    assert_eq!(s.summary, None);
    wait_for(
        SETTLE,
        "a Warning InvalidPolicy Event on the policy",
        || async {
            let e = workload_events(&client, "default", &name, "InvalidPolicy").await;
            match e.as_slice() {
                [one]
                    if one.type_.as_deref() == Some("Warning")
                        && one.involved_object.kind.as_deref() == Some("ProductionPolicy") =>
                {
                    Ok(())
                }
                other => Err(format!("{} events", other.len())),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // Fixed: Ready again.
    apply(
        &client,
        "default",
        &policy_yaml(
            &name,
            &format!("{{namespaces: [{name}]}}"),
            &["livenessProbe"],
            "",
        ),
    )
    .await;
    wait_status(
        &client,
        &name,
        SETTLE,
        "Ready=True once fixed",
        |s| match condition(s, "Ready") {
            Some(("True", "Evaluated")) => Ok(()),
            other => Err(format!("Ready {other:?}")),
        },
    )
    .await;
}

#[tokio::test]
async fn a_thousand_deployments_in_fifty_namespaces_converge() {
    let sh = shared().await;
    let client = sh.cp.client().await.expect("client");
    let mut namespaces = Vec::new();
    for _ in 0..50 {
        namespaces.push(sh.cp.temp_namespace("smoke").await.expect("namespace"));
    }
    let run = namespaces[0].name().to_owned();
    let started = Instant::now();
    let api_of = |ns: &str| Api::<Deployment>::namespaced(client.clone(), ns);
    let jobs: Vec<(Api<Deployment>, String)> = namespaces
        .iter()
        .flat_map(|ns| (0..20).map(move |i| (ns.name().to_owned(), i)))
        .map(|(ns, i)| {
            let yaml = deployment(&format!("d{i}"), 1, true, "").replace(
                "metadata:\n  name:",
                &format!("metadata:\n  labels: {{smoke: {run}}}\n  name:"),
            );
            (api_of(&ns), yaml)
        })
        .collect();
    futures::stream::iter(jobs)
        .map(|(api, yaml)| async move {
            let obj: Deployment = serde_saphyr::from_str(&yaml).expect("deployment yaml");
            let name = obj.metadata.name.clone().unwrap_or_default();
            api.patch(
                &name,
                &PatchParams::apply("e2e").force(),
                &Patch::Apply(&obj),
            )
            .await
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .expect("create 1,000 Deployments");
    let created = started.elapsed();
    apply(
        &client,
        "default",
        &policy_yaml(
            &run,
            &format!("{{selector: {{matchLabels: {{smoke: {run}}}}}}}"),
            &["livenessProbe"],
            "",
        ),
    )
    .await;
    wait_status(
        &client,
        &run,
        Duration::from_secs(60),
        "1,000 matched and compliant",
        expect_counts((1000, 1000, 0, 0, 0)),
    )
    .await;
    let rss = std::fs::read_to_string(format!("/proc/{}/status", sh.operator.pid()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    eprintln!(
        "1,000 Deployments: created in {created:?}, converged {:?} after start; operator {rss}",
        started.elapsed()
    );
}

#[tokio::test]
async fn spans_are_exported_over_otlp_when_an_endpoint_is_set() {
    let sh = shared().await;
    let (sink, seen) = otlp_sink();
    let endpoint = format!("http://{sink}");
    // A follower of the shared operator's Lease: it evaluates (and traces) but never writes.
    let op = Operator::start_with_env(
        program(),
        sh.cp.kubeconfig(),
        "otel-follower",
        "e2e-shared",
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "prodready-e2e"),
        ],
    );
    op.wait_ready(Duration::from_secs(60)).await;
    let ns = sh.cp.temp_namespace("otel").await.expect("namespace");
    let client = sh.cp.client().await.expect("client");
    apply(&client, ns.name(), &deployment("traced", 1, false, "")).await;
    let posts = wait_for(Duration::from_secs(30), "an OTLP export", || async {
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if seen
            .iter()
            .any(|s| s.starts_with("/v1/traces application/x-protobuf"))
        {
            Ok(seen)
        } else {
            Err(format!("received {seen:?}"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", tail_lines(&op.logs(), 20)));
    assert!(!op.is_leader(), "the follower took the shared Lease");
    assert!(
        op.logs().contains(r#""otlp_export":true"#),
        "{}",
        tail_lines(&op.logs(), 20)
    );
    eprintln!("OTLP requests: {posts:?}");
    op.signal(libc::SIGTERM).expect("send the signal");
    let exit = wait_for(Duration::from_secs(10), "exit after SIGTERM", || async {
        op.exited().ok_or("still running")
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(exit.success(), "{exit}");
}

// ---------------------------------------------------------------------------------------
// Tests with a private control plane
// ---------------------------------------------------------------------------------------

async fn private() -> (ControlPlane, Client) {
    let cp = ControlPlane::start().await.expect("private control plane");
    let client = cp.client().await.expect("client");
    install_crd_file(&client, repo_root().join(CRD_FILE))
        .await
        .expect("install the CRD");
    (cp, client)
}

/// Watches read their initial state with a streaming list where the API server supports it
/// (WatchList, on by default since 1.32) and with paged LISTs where it does not: the probe at
/// start chooses, the log says which and why, and verdicts are the same either way, for
/// objects there before the start and for changes after it.
#[tokio::test]
async fn initial_lists_stream_where_supported_and_page_where_not() {
    for (gate, want) in [
        (None, "stream"),
        (Some("--feature-gates=WatchList=false"), "pages"),
    ] {
        let cp = ControlPlane::start_with(gate.as_slice())
            .await
            .expect("private control plane");
        let client = cp.client().await.expect("client");
        install_crd_file(&client, repo_root().join(CRD_FILE))
            .await
            .expect("install the CRD");
        apply(&client, "default", &deployment("web", 2, true, "")).await;
        apply(
            &client,
            "default",
            &policy_yaml("lists", "{namespaces: [default]}", &["livenessProbe"], ""),
        )
        .await;
        let op = Operator::start(program(), cp.kubeconfig(), "lists-operator", "lists", &[]);
        op.wait_ready(Duration::from_secs(60)).await;
        wait_status(
            &client,
            "lists",
            SETTLE,
            "the workload listed at start",
            expect_counts((1, 1, 0, 0, 0)),
        )
        .await;
        apply(&client, "default", &deployment("bare", 1, false, "")).await;
        wait_status(
            &client,
            "lists",
            SETTLE,
            "a workload created after the initial list",
            expect_counts((2, 1, 1, 0, 0)),
        )
        .await;
        let logs = op.logs();
        let chosen = format!(r#""initial_list":"{want}""#);
        for line in logs.lines().filter(|l| l.contains(&chosen)) {
            eprintln!("{line}");
        }
        assert!(
            logs.contains(&chosen),
            "want {chosen} in the log:\n{}",
            tail_lines(&logs, 30)
        );
        if want == "pages" {
            // The fallback says why: the API server refused sendInitialEvents.
            assert!(
                logs.contains("a streaming list could not be used")
                    && logs.contains("sendInitialEvents"),
                "{}",
                tail_lines(&logs, 30)
            );
        }
    }
}

#[tokio::test]
async fn service_monitor_is_unknown_until_its_crd_is_installed() {
    let (cp, client) = private().await;
    let op = Operator::start(program(), cp.kubeconfig(), "crd-operator", "crd", &[]);
    op.wait_ready(Duration::from_secs(60)).await;
    apply(&client, "default", &deployment("web", 2, true, "")).await;
    apply(
        &client,
        "default",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{name: metrics, port: 9090}]\n",
    )
    .await;
    apply(
        &client,
        "default",
        &policy_yaml(
            "monitors",
            "{namespaces: [default]}",
            &["serviceMonitor"],
            "",
        ),
    )
    .await;
    let s = wait_status(
        &client,
        "monitors",
        SETTLE,
        "unknown without the CRD",
        expect_counts((1, 0, 0, 0, 1)),
    )
    .await;
    assert_eq!(
        condition(&s, "Degraded"),
        Some(("True", "MonitoringUnavailable"))
    );
    let msg = s
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(msg.contains("ServiceMonitor CRD"), "{msg}");

    install_monitoring_crds(&client)
        .await
        .expect("install the monitoring CRDs");
    let installed = Instant::now();
    // Evaluated within the discovery interval (2 s) plus a watch list and a debounce.
    let s = wait_status(
        &client,
        "monitors",
        Duration::from_secs(10),
        "evaluated once the CRD exists",
        expect_counts((1, 0, 1, 0, 0)),
    )
    .await;
    assert_eq!(
        condition(&s, "Degraded"),
        Some(("False", "AllRulesEvaluated"))
    );
    eprintln!(
        "service-monitor evaluated {:?} after the CRDs were installed",
        installed.elapsed()
    );
    apply(
        &client,
        "default",
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {}}\n  endpoints: [{port: metrics}]\n",
    )
    .await;
    wait_status(
        &client,
        "monitors",
        SETTLE,
        "compliant with a ServiceMonitor",
        expect_counts((1, 1, 0, 0, 0)),
    )
    .await;
}

#[tokio::test]
async fn one_leader_writes_and_another_takes_over_on_kill_and_on_sigterm() {
    let (cp, client) = private().await;
    let a = Operator::start(program(), cp.kubeconfig(), "replica-a", "race", &[]);
    let b = Operator::start(program(), cp.kubeconfig(), "replica-b", "race", &[]);
    a.wait_ready(Duration::from_secs(60)).await;
    b.wait_ready(Duration::from_secs(60)).await;
    let (leader, follower) = wait_for(Duration::from_secs(20), "exactly one leader", || async {
        match (a.is_leader(), b.is_leader()) {
            (true, false) => Ok((&a, &b)),
            (false, true) => Ok((&b, &a)),
            other => Err(format!("leader flags {other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let holder = leases
        .get("race")
        .await
        .ok()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity);
    assert_eq!(holder.as_deref(), Some(leader.identity.as_str()));

    apply(
        &client,
        "default",
        &policy_yaml("race", "{namespaces: [default]}", &["livenessProbe"], ""),
    )
    .await;
    apply(&client, "default", &deployment("one", 1, false, "")).await;
    wait_status(
        &client,
        "race",
        SETTLE,
        "first status",
        expect_counts((1, 0, 1, 0, 0)),
    )
    .await;
    let events = wait_for_events(
        &client,
        "default",
        "one",
        "ProductionReadinessViolation",
        SETTLE,
        |e| !e.is_empty(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(events.len(), 1, "only the leader publishes");
    assert_eq!(
        events[0].reporting_instance.as_deref(),
        Some(leader.identity.as_str())
    );
    assert_eq!(
        metric_value(
            &follower.metrics(),
            r#"dependency_requests_total{dep="kube-apiserver",op="patch_status",status="ok"}"#
        ),
        None,
        "the follower wrote status"
    );

    // kill -9 the leader: the follower takes over within lease duration (4 s) + 5 s.
    leader.signal(libc::SIGKILL).expect("send the signal");
    let killed = Instant::now();
    apply(&client, "default", &deployment("two", 1, false, "")).await;
    wait_status(
        &client,
        "race",
        Duration::from_secs(9),
        "status updated by the new leader",
        expect_counts((2, 0, 2, 0, 0)),
    )
    .await;
    assert!(follower.is_leader());
    eprintln!(
        "takeover after kill -9: status updated {:?} after the kill",
        killed.elapsed()
    );
    // The new leader announces the new violation, and not the one the old leader announced.
    wait_for_events(
        &client,
        "default",
        "two",
        "ProductionReadinessViolation",
        SETTLE,
        |e| {
            matches!(e, [one] if one.reporting_instance.as_deref() == Some(follower.identity.as_str()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let first = workload_events(&client, "default", "one", "ProductionReadinessViolation").await;
    assert_eq!(
        first.len(),
        1,
        "the new leader repeated an unchanged violation"
    );

    // Bring a new replica up, then SIGTERM the current leader: takeover within 3 s.
    let c = Operator::start(program(), cp.kubeconfig(), "replica-c", "race", &[]);
    c.wait_ready(Duration::from_secs(60)).await;
    assert!(!c.is_leader());
    follower.signal(libc::SIGTERM).expect("send the signal");
    let termed = Instant::now();
    wait_for(
        Duration::from_secs(3),
        "replica-c leads within 3 s of SIGTERM",
        || async {
            if c.is_leader() {
                Ok(())
            } else {
                Err("not yet")
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", tail_lines(&follower.logs(), 20)));
    eprintln!("takeover after SIGTERM: {:?}", termed.elapsed());
    let exit = wait_for(
        Duration::from_secs(5),
        "SIGTERMed replica exits",
        || async { follower.exited().ok_or("still running") },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(exit.success(), "exit status {exit}");
    assert!(
        follower.logs().contains("released the leader Lease"),
        "{}",
        tail_lines(&follower.logs(), 20)
    );
    apply(&client, "default", &deployment("three", 1, false, "")).await;
    wait_status(
        &client,
        "race",
        SETTLE,
        "status updated by replica-c",
        expect_counts((3, 0, 3, 0, 0)),
    )
    .await;
}

#[tokio::test]
async fn an_api_server_outage_makes_it_unready_then_it_recovers() {
    let (cp, client) = private().await;
    let op = Operator::start(program(), cp.kubeconfig(), "outage-operator", "outage", &[]);
    op.wait_ready(Duration::from_secs(60)).await;
    apply(
        &client,
        "default",
        &policy_yaml("outage", "{namespaces: [default]}", &["livenessProbe"], ""),
    )
    .await;
    apply(&client, "default", &deployment("before", 1, false, "")).await;
    wait_status(
        &client,
        "outage",
        SETTLE,
        "before the outage",
        expect_counts((1, 0, 1, 0, 0)),
    )
    .await;
    wait_for_events(
        &client,
        "default",
        "before",
        "ProductionReadinessViolation",
        SETTLE,
        |e| e.len() == 1,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    cp.stop_apiserver().expect("stop the API server");
    let stopped = Instant::now();
    wait_for(Duration::from_secs(20), "/health/ready 503", || async {
        match op.get("/health/ready") {
            Ok((503, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    while stopped.elapsed() < Duration::from_secs(20) {
        assert!(
            op.exited().is_none(),
            "the operator died during the outage\n{}",
            tail_lines(&op.logs(), 30)
        );
        assert_eq!(op.get("/health/live").map(|r| r.0), Ok(200));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    cp.start_apiserver().await.expect("start the API server");
    op.wait_ready(Duration::from_secs(60)).await;
    let client = cp.client().await.expect("client");
    apply(&client, "default", &deployment("after", 1, false, "")).await;
    wait_status(
        &client,
        "outage",
        SETTLE,
        "after the outage",
        expect_counts((2, 0, 2, 0, 0)),
    )
    .await;
    wait_for_events(
        &client,
        "default",
        "after",
        "ProductionReadinessViolation",
        SETTLE,
        |e| e.len() == 1,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let before =
        workload_events(&client, "default", "before", "ProductionReadinessViolation").await;
    assert_eq!(before.len(), 1, "no duplicate Event after the outage");
    assert_eq!(before[0].count.unwrap_or(1), 1);
}

/// The local `prodready run` line of README.md and docs/operator.md (they must agree).
fn documented_run_line() -> String {
    let find = |file: &str| {
        let text = std::fs::read_to_string(repo_root().join(file))
            .unwrap_or_else(|e| panic!("read {file}: {e}"));
        text.lines()
            .find(|l| l.starts_with("prodready run --kubeconfig ~/.kube/config"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("{file} has no local `prodready run` example"))
    };
    let readme = find("README.md");
    assert_eq!(readme, find("docs/operator.md"), "the two examples differ");
    readme
}

/// The documented local example, run verbatim against a fresh control plane that has no
/// `prodready-system` (only the kubeconfig path is substituted; the admin and webhook ports
/// are moved through their environment variables so parallel suites cannot collide): the
/// process stays up and reconciles, says in one sentence why the webhook has no certificate,
/// and once the namespace exists the webhook serves without a restart.
#[tokio::test]
async fn the_documented_local_run_reconciles_and_the_webhook_waits_for_its_namespace() {
    let line = documented_run_line();
    // A control plane that has never seen the CRD: the block's `kubectl` lines before the
    // `prodready run` line install it and the sample, as written (README.md and
    // docs/operator.md; repository paths made absolute, the suite's kubeconfig).
    let cp = ControlPlane::start().await.expect("private control plane");
    let client = cp.client().await.expect("client");
    for (file, anchor) in [
        ("README.md", "## In the cluster: `prodready run`"),
        (
            "docs/operator.md",
            "# Running the operator: `prodready run`",
        ),
    ] {
        let block = e2e::doc_sh_block(file, anchor).unwrap_or_else(|e| panic!("{e:#}"));
        let before_run = block
            .iter()
            .take_while(|l| !l.starts_with("prodready run"))
            .collect::<Vec<_>>();
        assert!(before_run.len() >= 3, "{file}: {before_run:?}");
        for l in before_run {
            let command = l.split(" #").next().unwrap_or(l).trim();
            let words: Vec<String> = command
                .split_whitespace()
                .map(|w| {
                    let path = repo_root().join(w);
                    if !w.starts_with('-') && path.exists() {
                        path.display().to_string()
                    } else {
                        w.to_owned()
                    }
                })
                .collect();
            assert_eq!(words[0], "kubectl", "{file}: `{command}`");
            let out = cp.kubectl(&words[1..]).await.expect("kubectl runs");
            assert!(out.success(), "{file}: `{command}`: {}", out.stderr);
        }
    }
    apply(&client, "default", &deployment("web", 2, false, "")).await;

    let kubeconfig = cp.kubeconfig().display().to_string();
    let args: Vec<String> = line
        .split_whitespace()
        .skip(1)
        .map(|a| {
            if a == "~/.kube/config" {
                kubeconfig.clone()
            } else {
                a.to_owned()
            }
        })
        .collect();
    let admin = format!("127.0.0.1:{}", free_port().expect("a free port"));
    let webhook: SocketAddr = format!("127.0.0.1:{}", free_port().expect("a free port"))
        .parse()
        .expect("address");
    let dir = tempfile::tempdir().expect("temp dir");
    let program = Path::new(env!("CARGO_BIN_EXE_prodready-operator"));
    let op = OperatorProcess::start(
        program,
        &args,
        &[
            ("PRODREADY_ADMIN_ADDR", admin.as_str()),
            ("PRODREADY_WEBHOOK_ADDR", &webhook.to_string()),
        ],
        &dir.path().join("operator.log"),
    )
    .expect("start the documented command");
    if let Err(e) = op.wait_ready(Duration::from_secs(60)).await {
        panic!("{e}");
    }

    wait_status(
        &client,
        "baseline",
        SETTLE,
        "the baseline policy reconciled",
        |s| match s.summary.as_ref().map(|x| x.matched) {
            Some(n) if n >= 1 => Ok(()),
            other => Err(format!("matched {other:?}")),
        },
    )
    .await;

    let sentence = wait_for(
        SETTLE,
        "a log line about the webhook certificate",
        || async {
            op.logs()
                .lines()
                .find(|l| l.contains("The admission webhook cannot store its certificate"))
                .map(str::to_owned)
                .ok_or_else(|| format!("none yet:\n{}", op.log_tail(20)))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sentence.contains("namespace \"prodready-system\" does not exist")
            && sentence.contains("kubectl create namespace prodready-system"),
        "{sentence}"
    );
    for dump in ["Status {", "Kube {", "Err(", "Api("] {
        assert!(!sentence.contains(dump), "a Debug dump in: {sentence}");
    }
    assert!(op.exited().is_none(), "exited:\n{}", op.log_tail(20));
    assert_eq!(
        metric_value(&op.metrics(), "prodready_webhook_ready"),
        Some(0.0)
    );

    let pid = op.pid();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "prodready-system"}}))
                .expect("namespace"),
        )
        .await
        .expect("create prodready-system");
    wait_for(Duration::from_secs(60), "the webhook serving", || async {
        if let Some(status) = op.exited() {
            return Err(format!("exited with {status}"));
        }
        match metric_value(&op.metrics(), "prodready_webhook_ready") {
            Some(1.0) => Ok(()),
            other => Err(format!("prodready_webhook_ready = {other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", op.log_tail(20)));
    assert_eq!(op.pid(), pid, "no restart");
    TcpStream::connect_timeout(&webhook, Duration::from_secs(5))
        .expect("the webhook port accepts connections");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "prodready-system");
    assert!(
        secrets
            .get_opt("prodready-webhook-tls")
            .await
            .expect("get the Secret")
            .is_some(),
        "the certificate Secret was created"
    );
}

// ---------------------------------------------------------------------------------------
// cronjob-health and the owner-aware kinds (issue 14)
// ---------------------------------------------------------------------------------------

/// A Job of the CronJob `cron` (uid `uid`), as its controller would create it.
fn job_of(name: &str, cron: &str, uid: &str) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "CronJob", "name": cron, "uid": uid,
            "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "job", "image": "example.org/job:1.0"}]}}}
    })
}

/// Sets a Job's status through the status subresource the way the Job controller does:
/// `running`, `succeeded` or `failed` (with the conditions API validation requires).
async fn set_job_status(client: &Client, ns: &str, name: &str, state: &str) {
    use k8s_openapi::api::batch::v1::Job;
    let api: Api<Job> = Api::namespaced(client.clone(), ns);
    let now = Timestamp::now();
    let start = (now - SignedDuration::from_secs(60)).to_string();
    let now = now.to_string();
    let status = match state {
        "running" => json!({"startTime": start, "active": 1}),
        "succeeded" => json!({
            "startTime": start, "completionTime": now, "active": 0, "succeeded": 1, "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": now, "lastProbeTime": now},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": now, "lastProbeTime": now}]
        }),
        _ => json!({
            "startTime": start, "active": 0, "failed": 1, "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "lastTransitionTime": now, "lastProbeTime": now},
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "lastTransitionTime": now, "lastProbeTime": now}]
        }),
    };
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .unwrap_or_else(|e| panic!("set {ns}/{name} {state}: {e}"));
}

/// The `cronjob-health` messages of the policy's status on one CronJob.
fn health_messages(s: &prodready::api::ProductionPolicyStatus, name: &str) -> Vec<String> {
    s.violations
        .iter()
        .filter(|v| v.name == name && v.rule == "cronjob-health")
        .map(|v| v.message.clone())
        .collect()
}

#[tokio::test]
async fn cronjob_health_follows_the_cronjobs_runs() {
    use k8s_openapi::api::batch::v1::{CronJob, Job};
    let sh = shared().await;
    let ns = sh.cp.temp_namespace("cronhealth").await.expect("namespace");
    let client = sh.cp.client().await.expect("client");
    let name = ns.name().to_owned();
    // Every night at 03:00 Berlin time, Forbid, keeping 3 failed Jobs.
    apply(
        &client,
        &name,
        &cronjob("nightly", true).replace(
            "\"*/5 * * * *\"",
            "\"0 3 * * *\"\n  timeZone: Europe/Berlin\n  failedJobsHistoryLimit: 3",
        ),
    )
    .await;
    apply(
        &client,
        &name,
        &policy_yaml(
            &name,
            &format!("{{namespaces: [{name}]}}"),
            &["cronjobHealth"],
            "",
        ),
    )
    .await;
    // Created just now, never run: nothing is overdue yet.
    wait_status(
        &client,
        &name,
        SETTLE,
        "a new CronJob passes",
        expect_counts((1, 1, 0, 0, 0)),
    )
    .await;

    // Its last success was five days ago: three nights passed without one.
    let crons: Api<CronJob> = Api::namespaced(client.clone(), &name);
    let five_days_ago = (Timestamp::now() - SignedDuration::from_hours(120)).to_string();
    crons
        .patch_status(
            "nightly",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"lastScheduleTime": five_days_ago, "lastSuccessfulTime": five_days_ago}})),
        )
        .await
        .expect("CronJob status");
    let s = wait_status(
        &client,
        &name,
        SETTLE,
        "overdue",
        expect_counts((1, 0, 1, 0, 0)),
    )
    .await;
    let messages = health_messages(&s, "nightly");
    assert!(
        messages.len() == 1 && messages[0].contains("no run has succeeded since"),
        "{messages:?}"
    );
    let events = wait_for_events(
        &client,
        &name,
        "nightly",
        "ProductionReadinessViolation",
        SETTLE,
        |e| !e.is_empty(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(events[0].involved_object.kind.as_deref(), Some("CronJob"));
    assert!(
        events[0]
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("cronjob-health")
    );

    // A successful run turns it back, and a Normal Event says so.
    let uid = crons
        .get("nightly")
        .await
        .expect("CronJob")
        .metadata
        .uid
        .expect("uid");
    let jobs: Api<Job> = Api::namespaced(client.clone(), &name);
    apply_objects_json(&jobs, job_of("nightly-1", "nightly", &uid)).await;
    set_job_status(&client, &name, "nightly-1", "succeeded").await;
    wait_status(
        &client,
        &name,
        SETTLE,
        "healed by a success",
        expect_counts((1, 1, 0, 0, 0)),
    )
    .await;
    wait_for_events(&client, &name, "nightly", "ProductionReady", SETTLE, |e| {
        e.len() == 1
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    // Three failed runs after it: failing again, naming them.
    for j in ["nightly-2", "nightly-3", "nightly-4"] {
        apply_objects_json(&jobs, job_of(j, "nightly", &uid)).await;
        set_job_status(&client, &name, j, "failed").await;
    }
    let s = wait_status(
        &client,
        &name,
        SETTLE,
        "three failures",
        expect_counts((1, 0, 1, 0, 0)),
    )
    .await;
    assert_eq!(
        health_messages(&s, "nightly"),
        vec!["its last 3 runs all failed (Jobs nightly-2, nightly-3, nightly-4)".to_owned()]
    );
    // A success turns it back again.
    apply_objects_json(&jobs, job_of("nightly-5", "nightly", &uid)).await;
    set_job_status(&client, &name, "nightly-5", "succeeded").await;
    wait_status(
        &client,
        &name,
        SETTLE,
        "healed again",
        expect_counts((1, 1, 0, 0, 0)),
    )
    .await;

    // Two Jobs running at once under Forbid are reported.
    for j in ["nightly-6", "nightly-7"] {
        apply_objects_json(&jobs, job_of(j, "nightly", &uid)).await;
        set_job_status(&client, &name, j, "running").await;
    }
    let s = wait_status(
        &client,
        &name,
        SETTLE,
        "two at once",
        expect_counts((1, 0, 1, 0, 0)),
    )
    .await;
    assert_eq!(
        health_messages(&s, "nightly"),
        vec![
            "2 Jobs run at once although concurrencyPolicy is Forbid: nightly-6, nightly-7"
                .to_owned()
        ]
    );
    // The Jobs of a CronJob are runs, never workloads of their own: MATCHED stayed 1.
    assert_eq!(counts(&s).0, 1);
}

/// Creates an object through a typed Api from JSON.
async fn apply_objects_json<K>(api: &Api<K>, obj: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let typed: K = serde_json::from_value(obj).expect("object");
    api.create(&kube::api::PostParams::default(), &typed)
        .await
        .unwrap_or_else(|e| panic!("create: {e}"));
}

#[tokio::test]
async fn jobs_pods_and_replicasets_are_counted_exactly_as_audit_counts_them() {
    let sh = shared().await;
    let ns = sh.cp.temp_namespace("kinds").await.expect("namespace");
    let client = sh.cp.client().await.expect("client");
    let name = ns.name().to_owned();
    let pod = |n: &str, image: &str, owner: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {n}\n  labels: {{app: {n}}}\n{owner}spec:\n  containers: [{{name: app, image: '{image}'}}]\n"
        )
    };
    let rs = |n: &str, image: &str, owner: &str| {
        format!(
            "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: {n}\n{owner}spec:\n  selector: {{matchLabels: {{app: {n}}}}}\n  template:\n    metadata: {{labels: {{app: {n}}}}}\n    spec:\n      containers: [{{name: app, image: '{image}'}}]\n"
        )
    };
    let job = |n: &str, image: &str, owner: &str| {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {n}\n{owner}spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{{name: app, image: '{image}'}}]\n"
        )
    };
    let owned = |kind: &str, api: &str, owner: &str| {
        format!(
            "  ownerReferences: [{{apiVersion: {api}, kind: {kind}, name: {owner}, uid: 0b0b0b0b-0000-0000-0000-000000000000, controller: true}}]\n"
        )
    };
    // Judged: a bare Pod (bad), a ReplicaSet without a Deployment (good), a standalone Job
    // (bad), a Job of a custom controller (good). Not judged: a Pod of a ReplicaSet, a
    // ReplicaSet of a Deployment, a Job of a CronJob (bad images all).
    for doc in [
        pod("bare", "example.org/app:latest", ""),
        pod(
            "owned",
            "example.org/app:latest",
            &owned("ReplicaSet", "apps/v1", "loose"),
        ),
        rs("loose", "example.org/app:1.0", ""),
        rs(
            "web-7d9f",
            "example.org/app:latest",
            &owned("Deployment", "apps/v1", "web"),
        ),
        job("adhoc", "example.org/job:latest", ""),
        job(
            "custom",
            "example.org/job:1.0",
            &owned("Workflow", "example.org/v1", "wf"),
        ),
        job(
            "nightly-1",
            "example.org/job:latest",
            &owned("CronJob", "batch/v1", "nightly"),
        ),
    ] {
        apply(&client, &name, &doc).await;
    }
    let policy = policy_yaml(
        &name,
        &format!("{{kinds: [Job, Pod, ReplicaSet], namespaces: [{name}]}}"),
        &["imagePinned"],
        "",
    );
    apply(&client, &name, &policy).await;
    let s = wait_status(
        &client,
        &name,
        SETTLE,
        "exact counts",
        expect_counts((4, 2, 2, 0, 0)),
    )
    .await;
    let mut violating: Vec<String> = s
        .violations
        .iter()
        .map(|v| format!("{}/{}", v.kind, v.name))
        .collect();
    violating.sort();
    assert_eq!(
        violating,
        vec!["Job/adhoc".to_owned(), "Pod/bare".to_owned()]
    );

    // audit on the same objects, as a user gets them from the API server, agrees.
    let out = sh
        .cp
        .kubectl(["get", "jobs,pods,replicasets", "-n", &name, "-o", "yaml"])
        .await
        .expect("kubectl");
    assert!(out.success(), "{}", out.stderr);
    let mut loaded = prodready::audit::Loaded::default();
    loaded.add_text("cluster.yaml", &out.stdout, false);
    loaded.add_text("policy.yaml", &policy, false);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let policies: Vec<prodready::engine::CompiledPolicy> = loaded
        .policies
        .iter()
        .map(|(p, _)| {
            prodready::engine::CompiledPolicy::compile(p, &prodready::rules::CATALOG)
                .expect("policy")
        })
        .collect();
    let report = prodready::audit::audit(&loaded, &policies, Timestamp::now(), false);
    let (matched, compliant, violating, _, _) = counts(&s);
    assert_eq!(
        (
            report.summary.workloads,
            report.summary.compliant,
            report.summary.violating
        ),
        (matched as usize, compliant as usize, violating as usize)
    );
}

// ---------------------------------------------------------------------------------------
// What "serving" and "unknown" mean, live (graceful-shutdown, service-monitor)
// ---------------------------------------------------------------------------------------

/// A finding as `(workload, rule, container, message)`.
type Found = (String, String, String, String);

/// The status's violations as findings, sorted (one violation per workload and rule here, so
/// the status's first message is the whole message).
fn status_findings(s: &prodready::api::ProductionPolicyStatus) -> Vec<Found> {
    let mut out: Vec<Found> = s
        .violations
        .iter()
        .map(|v| {
            (
                v.name.clone(),
                v.rule.clone(),
                v.container.clone().unwrap_or_default(),
                v.message.clone(),
            )
        })
        .collect();
    out.sort();
    out
}

/// `prodready audit` of `kubectl get <kinds> -n <ns> -o yaml` (the objects as a user gets
/// them from the API server) under `policy`: its counts in the status's order (matched,
/// compliant, violating, exempt, unknown) and its failing findings, sorted.
async fn audit_live(
    cp: &ControlPlane,
    ns: &str,
    kinds: &str,
    policy: &str,
) -> ((u32, u32, u32, u32, u32), Vec<Found>) {
    let out = cp
        .kubectl(["get", kinds, "-n", ns, "-o", "yaml"])
        .await
        .expect("kubectl");
    assert!(out.success(), "{}", out.stderr);
    let mut loaded = prodready::audit::Loaded::default();
    loaded.add_text("cluster.yaml", &out.stdout, false);
    loaded.add_text("policy.yaml", policy, false);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let policies: Vec<prodready::engine::CompiledPolicy> = loaded
        .policies
        .iter()
        .map(|(p, _)| {
            prodready::engine::CompiledPolicy::compile(p, &prodready::rules::CATALOG)
                .expect("policy")
        })
        .collect();
    let report = prodready::audit::audit(&loaded, &policies, Timestamp::now(), false);
    let n = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
    let s = &report.summary;
    let counts = (
        n(s.workloads),
        n(s.compliant),
        n(s.violating),
        n(s.exempt),
        n(s.unknown),
    );
    let mut found: Vec<Found> = report
        .findings
        .iter()
        .filter(|f| f.result == prodready::audit::ResultKind::Fail)
        .map(|f| {
            (
                f.name.clone(),
                f.rule.to_owned(),
                f.container.clone().unwrap_or_default(),
                f.message.clone(),
            )
        })
        .collect();
    found.sort();
    (counts, found)
}

/// A Deployment with one container `app` and nothing else: `extra` is indented under the
/// container, `pod` under the pod spec.
fn plain(name: &str, container: &str, pod: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n{pod}      containers:\n        - name: app\n          image: example.org/app:1.0\n{container}"
    )
}

#[tokio::test]
async fn graceful_shutdown_serving_and_long_prestop_live_as_audit_says() {
    let sh = shared().await;
    let ns = sh.cp.temp_namespace("serving").await.expect("namespace");
    let client = sh.cp.client().await.expect("client");
    let name = ns.name().to_owned();
    for doc in [
        // No declared port, probed over httpGet on one: serving, and no preStop.
        plain(
            "probed",
            "          readinessProbe: {httpGet: {path: /ready, port: 8080}}\n",
            "",
        ),
        // No port, no probe, but a Service targets it by number: serving, no preStop.
        plain("targeted", "", ""),
        "apiVersion: v1\nkind: Service\nmetadata: {name: targeted}\nspec:\n  selector: {app: targeted}\n  ports: [{port: 80, targetPort: 8080}]\n".to_owned(),
        // Not serving, but its preStop sleeps past the grace period: fails anyway. (An exec
        // hook: the API server itself refuses a native `sleep` action that long.)
        plain(
            "sleepy-worker",
            "          lifecycle: {preStop: {exec: {command: [sh, -c, 'sleep 40']}}}\n",
            "      terminationGracePeriodSeconds: 30\n",
        ),
        // Not serving, no preStop: nothing to drain.
        plain("worker", "", ""),
        // Probed and draining within the grace period.
        plain(
            "good",
            "          readinessProbe: {tcpSocket: {port: 8080}}\n          lifecycle: {preStop: {sleep: {seconds: 5}}}\n",
            "",
        ),
    ] {
        apply(&client, &name, &doc).await;
    }
    let policy = policy_yaml(
        &name,
        &format!("{{namespaces: [{name}]}}"),
        &["gracefulShutdown"],
        "",
    );
    apply(&client, &name, &policy).await;
    let s = wait_status(
        &client,
        &name,
        SETTLE,
        "graceful-shutdown decided",
        expect_counts((5, 2, 3, 0, 0)),
    )
    .await;
    let live = status_findings(&s);
    let failing: Vec<&str> = live.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(failing, ["probed", "sleepy-worker", "targeted"], "{live:?}");
    assert!(
        live.iter()
            .all(|f| f.1 == "graceful-shutdown" && f.2 == "app"),
        "{live:?}"
    );
    let (counts_audit, found) = audit_live(sh.cp, &name, "deployments,services", &policy).await;
    assert_eq!(
        counts_audit,
        counts(&s),
        "audit's counts equal the status's"
    );
    assert_eq!(found, live, "audit's findings equal the status's");
}

#[tokio::test]
async fn service_monitor_decides_from_the_one_installed_crd_and_scrape_annotations() {
    let (cp, client) = private().await;
    let op = Operator::start(
        program(),
        cp.kubeconfig(),
        "one-crd-operator",
        "one-crd",
        &[],
    );
    op.wait_ready(Duration::from_secs(60)).await;
    let ns = "default";
    let service = |name: &str, annotations: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, labels: {{app: {name}}}, annotations: {{{annotations}}}}}\nspec:\n  selector: {{app: {name}}}\n  ports: [{{name: metrics, port: 9090}}]\n"
        )
    };
    for name in ["covered", "bare", "annotated"] {
        apply(&client, ns, &deployment(name, 2, true, "")).await;
    }
    apply(&client, ns, &service("covered", "")).await;
    apply(&client, ns, &service("bare", "")).await;
    apply(
        &client,
        ns,
        &service("annotated", r#""prometheus.io/scrape": "true""#),
    )
    .await;
    let plain = policy_yaml(
        "monitors",
        "{namespaces: [default]}",
        &["serviceMonitor"],
        "",
    );
    let scrape = policy_yaml("scrape", "{namespaces: [default]}", &["serviceMonitor"], "").replace(
        "serviceMonitor: {enabled: true}",
        "serviceMonitor: {enabled: true, acceptScrapeAnnotations: true}",
    );
    assert!(scrape.contains("acceptScrapeAnnotations: true"), "{scrape}");
    apply(&client, ns, &plain).await;
    apply(&client, ns, &scrape).await;

    // No monitoring CRD at all: without the parameter nothing can be known; with it, the
    // annotated Service counts and the others fail, as audit says.
    wait_status(
        &client,
        "monitors",
        SETTLE,
        "unknown with no monitoring stack",
        expect_counts((3, 0, 0, 0, 3)),
    )
    .await;
    let s = wait_status(
        &client,
        "scrape",
        SETTLE,
        "annotations decide with no monitoring stack",
        expect_counts((3, 1, 2, 0, 0)),
    )
    .await;
    // Same verdicts; the messages differ by what each can know: the operator knows no
    // Prometheus Operator CRD is installed, `audit` of a dump only that it holds no monitor.
    let (audit_counts, found) = audit_live(&cp, ns, "deployments,services", &scrape).await;
    assert_eq!(audit_counts, counts(&s));
    let without_message = |f: &[Found]| -> Vec<(String, String, String)> {
        f.iter()
            .map(|(w, r, c, _)| (w.clone(), r.clone(), c.clone()))
            .collect()
    };
    assert_eq!(
        without_message(&found),
        without_message(&status_findings(&s))
    );
    let failing: Vec<String> = found.iter().map(|f| f.0.clone()).collect();
    assert_eq!(failing, ["bare", "covered"]);
    assert!(
        status_findings(&s)
            .iter()
            .all(|f| f.3.contains("no Prometheus Operator CRDs are installed")),
        "{s:?}"
    );

    // Only the ServiceMonitor CRD: no PodMonitor can exist, so ServiceMonitors decide.
    install_crd_file(
        &client,
        e2e::monitoring_crd_file("monitoring.coreos.com_servicemonitors.yaml")
            .expect("the ServiceMonitor CRD file"),
    )
    .await
    .expect("install the ServiceMonitor CRD");
    let s = wait_status(
        &client,
        "monitors",
        SETTLE,
        "decided from ServiceMonitors alone",
        expect_counts((3, 0, 3, 0, 0)),
    )
    .await;
    assert_eq!(
        condition(&s, "Degraded"),
        Some(("False", "AllRulesEvaluated"))
    );
    apply(
        &client,
        ns,
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: covered}\nspec:\n  selector: {matchLabels: {app: covered}}\n  endpoints: [{port: metrics}]\n",
    )
    .await;
    let s = wait_status(
        &client,
        "monitors",
        SETTLE,
        "the ServiceMonitor covers one",
        expect_counts((3, 1, 2, 0, 0)),
    )
    .await;
    let kinds = "deployments,services,servicemonitors";
    let (audit_counts, found) = audit_live(&cp, ns, kinds, &plain).await;
    assert_eq!(audit_counts, counts(&s));
    assert_eq!(found, status_findings(&s));
    let failing: Vec<String> = found.iter().map(|f| f.0.clone()).collect();
    assert_eq!(failing, ["annotated", "bare"]);
    // With the parameter, the annotation counts beside the ServiceMonitor.
    let s = wait_status(
        &client,
        "scrape",
        SETTLE,
        "monitor and annotation both count",
        expect_counts((3, 2, 1, 0, 0)),
    )
    .await;
    let (audit_counts, found) = audit_live(&cp, ns, kinds, &scrape).await;
    assert_eq!(audit_counts, counts(&s));
    assert_eq!(found, status_findings(&s));
    let failing: Vec<String> = found.iter().map(|f| f.0.clone()).collect();
    assert_eq!(failing, ["bare"]);
}

#[tokio::test]
async fn a_container_exemption_is_listed_beside_the_failure_it_does_not_cover() {
    let sh = shared().await;
    let ns = sh.cp.temp_namespace("sidecar").await.expect("namespace");
    let client = sh.cp.client().await.expect("client");
    let name = ns.name().to_owned();
    // The app lacks a readinessProbe; the injected sidecar lacks both probes.
    let meshed = format!(
        "{}        - name: istio-proxy\n          image: example.org/proxyv2:1.24.0\n",
        plain(
            "web",
            "          livenessProbe: {httpGet: {path: /live, port: 8080}}\n",
            ""
        )
    );
    apply(&client, &name, &meshed).await;
    let policy = policy_yaml(
        &name,
        &format!("{{namespaces: [{name}]}}"),
        &["livenessProbe", "readinessProbe"],
        "  exemptions:\n    - rules: [liveness-probe, readiness-probe]\n      containers: [istio-proxy]\n      reason: injected by the mesh\n      expires: \"2099-01-01T00:00:00Z\"\n",
    );
    apply(&client, &name, &policy).await;
    let s = wait_status(
        &client,
        &name,
        SETTLE,
        "the app fails, the sidecar is exempt",
        expect_counts((1, 0, 1, 0, 0)),
    )
    .await;
    let [v] = s.violations.as_slice() else {
        panic!("one violation expected: {:?}", s.violations);
    };
    assert_eq!(
        (v.rule.as_str(), v.container.as_deref()),
        ("readiness-probe", Some("app"))
    );
    let exempt: Vec<(&str, u32, &str)> = v
        .exempt_containers
        .iter()
        .map(|e| (e.container.as_str(), e.exemption, e.reason.as_str()))
        .collect();
    assert_eq!(exempt, [("istio-proxy", 0, "injected by the mesh")]);
    assert_eq!(
        v.exempt_containers[0]
            .expires
            .as_ref()
            .map(|t| t.0.to_string()),
        Some("2099-01-01T00:00:00Z".to_owned())
    );
    // audit agrees: the same counts and failure, and the sidecar's findings read exempt.
    let (audit_counts, found) = audit_live(sh.cp, &name, "deployments", &policy).await;
    assert_eq!(audit_counts, counts(&s));
    assert_eq!(found, status_findings(&s));
}

#[tokio::test]
async fn workloads_another_operator_controls_are_counted_as_audit_and_the_webhook_judge_them() {
    let sh = shared().await;
    let ns = sh.cp.temp_namespace("owned").await.expect("namespace");
    let client = sh.cp.client().await.expect("client");
    let name = ns.name().to_owned();
    // The fixture the unit tests of judged_at_owner, the store and the admission review read:
    // a Deployment, StatefulSet and CronJob controlled by custom resources, a Pod of the
    // StatefulSet and a ReplicaSet of the Deployment.
    let fixture =
        std::fs::read_to_string(repo_root().join("tests/fixtures/owned/operator-owned.yaml"))
            .expect("the fixture")
            .replace("namespace: streaming", &format!("namespace: {name}"));
    apply(&client, &name, &fixture).await;
    let policy = policy_yaml(
        &name,
        &format!("{{namespaces: [{name}]}}"),
        &[
            "livenessProbe",
            "readinessProbe",
            "cronjobSingleRunner",
            "imagePinned",
        ],
        "",
    );
    apply(&client, &name, &policy).await;
    let s = wait_status(
        &client,
        &name,
        SETTLE,
        "the three operator-owned workloads judged, the Pod and ReplicaSet left to their owners",
        expect_counts((3, 0, 3, 0, 0)),
    )
    .await;
    let mut judged: Vec<String> = s
        .violations
        .iter()
        .map(|v| format!("{}/{}", v.kind, v.name))
        .collect();
    judged.sort();
    judged.dedup();
    assert_eq!(
        judged,
        [
            "CronJob/db-backup",
            "Deployment/kafka-exporter",
            "StatefulSet/db"
        ]
    );
    let kinds = "deployments,statefulsets,cronjobs,pods,replicasets";
    let (audit_counts, found) = audit_live(sh.cp, &name, kinds, &policy).await;
    assert_eq!(audit_counts, counts(&s));
    // The status keeps the first message per (workload, rule); compare on those keys.
    let keys = |f: &[Found]| -> Vec<(String, String)> {
        let mut k: Vec<(String, String)> = f
            .iter()
            .map(|(w, r, _, _)| (w.clone(), r.clone()))
            .collect();
        k.dedup();
        k
    };
    assert_eq!(keys(&found), keys(&status_findings(&s)));
}
