//! Policy reports on a real API server with the official CRDs (OpenReports' `reports-api`
//! module and Kyverno's PolicyReport CRD, read from the Go module cache): the controller's
//! reports are accepted by their schemas, equal `prodready audit -o openreports` for the same
//! objects, are written only when their content changes, are restored when edited or deleted
//! by hand, go away with their workload or their policy, and a missing (or removed) CRD is a
//! condition, a log line and a metric — never a crash.

use std::path::Path;
use std::time::{Duration, Instant};

use e2e::{
    CRD_FILE, ControlPlane, Operator, apply_yaml, condition, deployment, install_crd_file,
    install_openreports_crds, install_policyreport_crd, metric_value, policy_yaml, repo_root,
    wait_for, wait_status,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use prodready::controller::reports::api_resource;
use prodready::reports::ReportApi;
use serde_json::{Value, json};

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_prodready-operator"))
}

const SETTLE: Duration = Duration::from_secs(30);

fn policy() -> String {
    policy_yaml(
        "reports",
        "{namespaces: [default]}",
        &["livenessProbe", "readinessProbe", "replicasHa"],
        "  exemptions:\n    - rules: [replicas-ha]\n      names: [bad]\n      reason: single replica by design\n      expires: \"2099-01-01T00:00:00Z\"\n",
    )
}

fn objects() -> String {
    format!(
        "{}\n---\n{}",
        deployment("good", 2, true, ""),
        deployment("bad", 1, false, "")
    )
}

/// The reports prodready holds, by name, as JSON.
async fn reports(client: &Client, api: ReportApi) -> Vec<Value> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &api_resource(api));
    let list = api
        .list(&Default::default())
        .await
        .unwrap_or_else(|e| panic!("list reports: {e}"));
    let mut out: Vec<Value> = list
        .items
        .into_iter()
        .map(|o| serde_json::to_value(o).unwrap_or_default())
        .collect();
    out.sort_by_key(|r| {
        r["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    });
    out
}

/// `(rule, result)` of a report's results.
fn results(r: &Value) -> Vec<(String, String)> {
    r["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            (
                x["rule"].as_str().unwrap_or_default().to_owned(),
                x["result"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// What `prodready audit -o openreports` says for the same objects and policy, per report name:
/// `(summary, results)`.
fn audited(api: ReportApi) -> Vec<(String, Value, Value)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let objects_file = dir.path().join("objects.yaml");
    let policy_file = dir.path().join("policy.yaml");
    std::fs::write(&objects_file, objects()).expect("write objects");
    std::fs::write(&policy_file, policy()).expect("write policy");
    let loaded = prodready::audit::Loaded::from_paths(&[objects_file]);
    let policies: Vec<_> = prodready::audit::Loaded::from_paths(&[policy_file])
        .policies
        .into_iter()
        .map(|(p, _)| {
            prodready::engine::CompiledPolicy::compile(&p, &prodready::rules::CATALOG)
                .expect("the policy compiles")
        })
        .collect();
    let report = prodready::audit::audit_jobs(
        &loaded,
        &policies,
        k8s_openapi::jiff::Timestamp::now(),
        false,
        1,
        Some(prodready::reports::ReportOptions {
            api,
            include_passes: false,
            cluster: None,
        }),
    );
    let mut out: Vec<(String, Value, Value)> = report
        .reports
        .iter()
        .map(|r| {
            let v = serde_json::to_value(r).unwrap_or_default();
            (
                r.metadata.name.clone().unwrap_or_default(),
                v["summary"].clone(),
                v["results"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn writes(op: &Operator) -> f64 {
    metric_value(
        &op.metrics(),
        "prodready_report_writes_total{op=\"apply\",result=\"success\"}",
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn openreports_follow_the_verdicts_and_survive_hand_edits_deletes_and_a_missing_crd() {
    let cp = ControlPlane::start().await.expect("private control plane");
    let client = cp.client().await.expect("client");
    install_crd_file(&client, repo_root().join(CRD_FILE))
        .await
        .expect("install the ProductionPolicy CRD");
    let op = Operator::start(
        program(),
        cp.kubeconfig(),
        "reports-operator",
        "reports",
        &[],
    );
    op.wait_ready(Duration::from_secs(60)).await;
    apply_yaml(&client, Some("default"), &objects())
        .await
        .expect("apply the workloads");
    apply_yaml(&client, None, &policy())
        .await
        .expect("apply the policy");

    // No CRD yet: the policy says so, the metric says so, everything else works.
    let s = wait_status(
        &client,
        "reports",
        SETTLE,
        "Reported=False",
        |s| match condition(s, "Reported") {
            Some(("False", "ReportCRDMissing")) => Ok(()),
            other => Err(format!("Reported is {other:?}")),
        },
    )
    .await;
    assert_eq!(condition(&s, "Ready"), Some(("True", "Evaluated")));
    let metric = "prodready_report_crd_installed{api=\"openreports.io/v1alpha1\"}";
    assert_eq!(metric_value(&op.metrics(), metric), Some(0.0));
    assert!(
        op.logs().contains("policy report CRD not installed"),
        "{}",
        op.log_tail(20)
    );

    // The official CRDs appear: reports start, without a restart.
    install_openreports_crds(&client)
        .await
        .expect("install the OpenReports CRDs");
    let installed = Instant::now();
    let got = wait_for(SETTLE, "two reports", || {
        let client = client.clone();
        async move {
            let rs = reports(&client, ReportApi::OpenReports).await;
            if rs.len() == 2 {
                Ok(rs)
            } else {
                Err(format!("{} reports", rs.len()))
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", op.log_tail(30)));
    eprintln!(
        "reports written {:?} after the CRDs were installed",
        installed.elapsed()
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    for r in &got {
        let name = r["scope"]["name"].as_str().unwrap_or_default();
        let uid = deployments
            .get(name)
            .await
            .expect("deployment")
            .metadata
            .uid
            .unwrap_or_default();
        assert_eq!(r["scope"]["uid"], uid.as_str());
        assert_eq!(r["metadata"]["ownerReferences"][0]["uid"], uid.as_str());
        assert_eq!(
            r["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "prodready"
        );
        assert_eq!(r["source"], "prodready");
    }
    let bad = &got[0];
    assert_eq!(bad["metadata"]["name"], "prodready-deployment-bad");
    assert_eq!(
        results(bad),
        vec![
            ("liveness-probe".to_owned(), "fail".to_owned()),
            ("readiness-probe".to_owned(), "fail".to_owned()),
            ("replicas-ha".to_owned(), "skip".to_owned()),
        ]
    );
    assert_eq!(
        bad["results"][2]["properties"]["exemptionReason"],
        "single replica by design"
    );
    assert_eq!(
        bad["results"][2]["properties"]["exemptionExpires"],
        "2099-01-01T00:00:00Z"
    );
    assert_eq!(
        bad["summary"],
        json!({"pass": 0, "fail": 2, "warn": 0, "error": 0, "skip": 1})
    );
    assert!(results(&got[1]).is_empty(), "good is compliant: {}", got[1]);
    // The controller and `audit -o openreports` agree report for report.
    let offline = audited(ReportApi::OpenReports);
    let online: Vec<(String, Value, Value)> = got
        .iter()
        .map(|r| {
            (
                r["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                r["summary"].clone(),
                r.get("results").cloned().unwrap_or(json!([])),
            )
        })
        .collect();
    assert_eq!(online, offline);
    let s = wait_status(
        &client,
        "reports",
        SETTLE,
        "Reported=True",
        |s| match condition(s, "Reported") {
            Some(("True", "ReportsWritten")) => Ok(()),
            other => Err(format!("Reported is {other:?}")),
        },
    )
    .await;
    assert!(s.summary.is_some());
    assert_eq!(metric_value(&op.metrics(), metric), Some(1.0));

    // kubectl shows them with the CRD's columns.
    let out = cp.kubectl(["get", "reports", "-A"]).await.expect("kubectl");
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains("PASS") && out.stdout.contains("FAIL"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("prodready-deployment-bad"),
        "{}",
        out.stdout
    );

    // Idle: resyncs (every 4 s) write nothing.
    let before = writes(&op);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        writes(&op),
        before,
        "an idle cluster costs no report writes"
    );

    // Edited by hand: restored.
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &api_resource(ReportApi::OpenReports),
    );
    api.patch(
        "prodready-deployment-bad",
        &PatchParams::default(),
        &Patch::Merge(json!({"results": [], "summary": {"fail": 0, "skip": 0}})),
    )
    .await
    .expect("edit the report");
    wait_for(SETTLE, "the edited report restored", || {
        let api = api.clone();
        async move {
            let r = api
                .get("prodready-deployment-bad")
                .await
                .map_err(|e| e.to_string())?;
            let v = serde_json::to_value(r).unwrap_or_default();
            if results(&v).len() == 3 && v["summary"]["fail"] == 2 {
                Ok(())
            } else {
                Err(format!("results {:?}", results(&v)))
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", op.log_tail(30)));

    // Deleted by hand: restored.
    api.delete("prodready-deployment-good", &DeleteParams::default())
        .await
        .expect("delete the report");
    wait_for(SETTLE, "the deleted report restored", || {
        let api = api.clone();
        async move {
            api.get_opt("prodready-deployment-good")
                .await
                .map_err(|e| e.to_string())?
                .map(|_| ())
                .ok_or_else(|| "not yet".to_owned())
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", op.log_tail(30)));

    // The workload goes: its report goes (here by the controller; in a cluster with a
    // garbage collector, the owner reference does it too).
    deployments
        .delete("bad", &DeleteParams::default())
        .await
        .expect("delete the workload");
    wait_for(SETTLE, "the report of a deleted workload removed", || {
        let api = api.clone();
        async move {
            match api.get_opt("prodready-deployment-bad").await {
                Ok(None) => Ok(()),
                Ok(Some(_)) => Err("still there".to_owned()),
                Err(e) => Err(e.to_string()),
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", op.log_tail(30)));

    // No policy matches any more: no report.
    let policies: Api<prodready::api::ProductionPolicy> = Api::all(client.clone());
    policies
        .delete("reports", &DeleteParams::default())
        .await
        .expect("delete the policy");
    wait_for(SETTLE, "no reports without a policy", || {
        let client = client.clone();
        async move {
            let n = reports(&client, ReportApi::OpenReports).await.len();
            if n == 0 {
                Ok(())
            } else {
                Err(format!("{n} reports"))
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", op.log_tail(30)));

    // The CRD removed while running: said so, no crash, still ready.
    apply_yaml(&client, None, &policy())
        .await
        .expect("apply the policy again");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete("reports.openreports.io", &DeleteParams::default())
        .await
        .expect("delete the CRD");
    wait_status(
        &client,
        "reports",
        SETTLE,
        "Reported=False after removal",
        |s| match condition(s, "Reported") {
            Some(("False", "ReportCRDMissing")) => Ok(()),
            other => Err(format!("Reported is {other:?}")),
        },
    )
    .await;
    assert!(
        op.exited().is_none(),
        "the operator crashed:\n{}",
        op.log_tail(30)
    );
    op.wait_ready(Duration::from_secs(10)).await;
    assert!(
        op.logs().contains("policy report CRD removed"),
        "{}",
        op.log_tail(20)
    );
}

#[tokio::test]
async fn policyreports_are_accepted_by_the_wgpolicyk8s_crd() {
    let cp = ControlPlane::start().await.expect("private control plane");
    let client = cp.client().await.expect("client");
    install_crd_file(&client, repo_root().join(CRD_FILE))
        .await
        .expect("install the ProductionPolicy CRD");
    install_policyreport_crd(&client)
        .await
        .expect("install the PolicyReport CRD");
    let op = Operator::start(
        program(),
        cp.kubeconfig(),
        "policyreport-operator",
        "policyreports",
        &["--reports", "policyreport", "--reports-include-passes"],
    );
    op.wait_ready(Duration::from_secs(60)).await;
    apply_yaml(&client, Some("default"), &objects())
        .await
        .expect("apply the workloads");
    apply_yaml(&client, None, &policy())
        .await
        .expect("apply the policy");
    let got = wait_for(SETTLE, "two policy reports", || {
        let client = client.clone();
        async move {
            let rs = reports(&client, ReportApi::PolicyReport).await;
            if rs.len() == 2 {
                Ok(rs)
            } else {
                Err(format!("{} reports", rs.len()))
            }
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", op.log_tail(30)));
    assert_eq!(got[0]["kind"], "PolicyReport");
    assert_eq!(got[0]["summary"]["fail"], 2);
    // With passes on, good's report lists its three passing rules.
    assert_eq!(got[1]["summary"]["pass"], 3, "{}", got[1]);

    // A restart (a new leader): it lists the reports, finds them right, writes nothing, and
    // there are no duplicates.
    let args = ["--reports", "policyreport", "--reports-include-passes"];
    drop(op);
    let next = Operator::start(
        program(),
        cp.kubeconfig(),
        "policyreport-next",
        "policyreports",
        &args,
    );
    next.wait_ready(Duration::from_secs(60)).await;
    wait_for(SETTLE, "the new operator leads", || async {
        if next.is_leader() {
            Ok(())
        } else {
            Err("not yet")
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", next.log_tail(30)));
    // Two resyncs (4 s each) as leader.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let after = reports(&client, ReportApi::PolicyReport).await;
    assert_eq!(after.len(), 2, "no duplicates after a restart");
    assert_eq!(results(&after[0]), results(&got[0]));
    let applied = metric_value(
        &next.metrics(),
        "prodready_report_writes_total{op=\"apply\",result=\"success\"}",
    );
    assert_eq!(
        applied,
        None,
        "the new leader rewrote reports that were right:\n{}",
        next.log_tail(30)
    );
    assert!(
        next.logs().contains("policy reports listed"),
        "{}",
        next.log_tail(30)
    );
}

#[tokio::test]
async fn a_namespace_being_deleted_is_not_a_crash_loop_or_an_error() {
    let cp = ControlPlane::start().await.expect("private control plane");
    let client = cp.client().await.expect("client");
    install_crd_file(&client, repo_root().join(CRD_FILE))
        .await
        .expect("install the ProductionPolicy CRD");
    install_openreports_crds(&client)
        .await
        .expect("install the OpenReports CRDs");
    let op = Operator::start(program(), cp.kubeconfig(), "ns-operator", "ns-reports", &[]);
    op.wait_ready(Duration::from_secs(60)).await;
    apply_yaml(
        &client,
        None,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: doomed}\n",
    )
    .await
    .expect("namespace");
    apply_yaml(&client, Some("doomed"), &deployment("bad", 1, false, ""))
        .await
        .expect("workload");
    apply_yaml(
        &client,
        None,
        &policy_yaml("doomed", "{namespaces: [doomed]}", &["livenessProbe"], ""),
    )
    .await
    .expect("policy");
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "doomed",
        &api_resource(ReportApi::OpenReports),
    );
    wait_for(SETTLE, "the report", || {
        let api = api.clone();
        async move {
            api.get_opt("prodready-deployment-bad")
                .await
                .map_err(|e| e.to_string())?
                .map(|_| ())
                .ok_or_else(|| "not yet".to_owned())
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", op.log_tail(30)));
    // The bare control plane has no namespace controller: the namespace stays Terminating,
    // and the API server refuses to create anything in it. The report deleted meanwhile
    // cannot be recreated: counted as `gone`, logged at info, no error, no crash.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .expect("delete the namespace");
    api.delete("prodready-deployment-bad", &DeleteParams::default())
        .await
        .expect("delete the report");
    let gone = "prodready_report_writes_total{op=\"apply\",result=\"gone\"}";
    wait_for(SETTLE, "a write refused as gone", || async {
        match metric_value(&op.metrics(), gone) {
            Some(n) if n >= 1.0 => Ok(()),
            other => Err(format!("{gone} = {other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", op.log_tail(30)));
    let errors = "prodready_report_writes_total{op=\"apply\",result=\"error\"}";
    assert_eq!(
        metric_value(&op.metrics(), errors),
        None,
        "{}",
        op.log_tail(30)
    );
    assert!(
        op.logs()
            .contains("report not written: its namespace or workload is going away"),
        "{}",
        op.log_tail(30)
    );
    assert!(
        op.exited().is_none(),
        "the operator crashed:\n{}",
        op.log_tail(30)
    );
    op.wait_ready(Duration::from_secs(10)).await;
}
