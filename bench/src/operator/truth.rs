//! The truth every figure is checked against: the generated workloads, created in the API
//! server, and the summary the prodready engine computes over them as the server returns them.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::{Client, Resource};
use prodready::api::ProductionPolicy;
use prodready::engine::context::JobRun;
use prodready::engine::{CompiledPolicy, Context, Workload, WorkloadVerdict};
use serde_json::{Value, json};

use super::*;

// ---------------------------------------------------------------------------------------
// The workloads
// ---------------------------------------------------------------------------------------

/// How many objects to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    /// Deployments.
    pub deployments: usize,
    /// CronJobs.
    pub cronjobs: usize,
    /// Namespaces they spread over.
    pub namespaces: usize,
}

impl Size {
    /// Issue 7's cluster (10,000 Deployments, 2,000 CronJobs, 500 namespaces) times `scale`.
    pub fn scaled(scale: f64) -> Size {
        let n = |base: f64| ((base * scale).round() as usize).max(1);
        Size {
            deployments: n(10_000.0),
            cronjobs: n(2_000.0),
            namespaces: n(500.0),
        }
    }

    /// `workloads` in all, five Deployments per CronJob, 24 workloads per namespace.
    pub fn workloads(workloads: usize) -> Size {
        let cronjobs = workloads / 6;
        Size {
            deployments: workloads - cronjobs,
            cronjobs,
            namespaces: workloads.div_ceil(24).max(1),
        }
    }

    /// Deployments + CronJobs.
    pub fn total(&self) -> usize {
        self.deployments + self.cronjobs
    }
}

fn namespace_of(i: usize, size: Size) -> String {
    format!("bench-{:03}", i % size.namespaces.max(1))
}

/// The name of the `i`-th Deployment and its namespace.
pub fn deployment_name(i: usize, size: Size) -> (String, String) {
    (namespace_of(i, size), format!("web-{i:05}"))
}

/// The generated objects: namespaces, then Deployments (with a Service and, when replicated,
/// a PodDisruptionBudget for every third), then CronJobs. Deterministic: a mix of compliant
/// and violating settings drawn from a fixed seed; every workload has its liveness probe.
pub fn generate(size: Size) -> (Vec<Value>, Vec<Value>) {
    let mut rng = prodready::corpus::Rng::new(7);
    let namespaces = (0..size.namespaces)
        .map(|n| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("bench-{n:03}")}}))
        .collect();
    let mut objects = Vec::with_capacity(size.total() * 2);
    for i in 0..size.deployments {
        let (ns, name) = deployment_name(i, size);
        let good = rng.chance(60);
        let defect = |rng: &mut prodready::corpus::Rng, p| !good && rng.chance(p);
        let replicas = if defect(&mut rng, 25) { 1 } else { 2 + i % 2 };
        let tag = if defect(&mut rng, 25) {
            "latest".to_owned()
        } else {
            format!("1.{}.{}", i % 30, i % 7)
        };
        let mut container = json!({
            "name": "app",
            "image": format!("registry.example.com/team/app:{tag}"),
            "ports": [{"name": "http", "containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/health/live", "port": "http"}, "periodSeconds": 10},
        });
        if !defect(&mut rng, 30) {
            container["readinessProbe"] =
                json!({"httpGet": {"path": "/health/ready", "port": "http"}});
        }
        if !defect(&mut rng, 30) {
            let mut resources = json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}});
            if i % 4 == 0 {
                resources["limits"]["cpu"] = json!("500m");
            }
            container["resources"] = resources;
        }
        if !defect(&mut rng, 30) {
            container["lifecycle"] = json!({"preStop": {"sleep": {"seconds": 5}}});
        }
        objects.push(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name, "team": format!("t{}", i % 17)}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"terminationGracePeriodSeconds": 30, "containers": [container]},
                },
            },
        }));
        if i % 3 == 0 {
            objects.push(json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": ns},
                // Headless: the test control plane's service range is a /24.
                "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
            }));
            if replicas > 1 {
                objects.push(json!({
                    "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": name}}},
                }));
            }
        }
    }
    for j in 0..size.cronjobs {
        let ns = namespace_of(j, size);
        let name = format!("job-{j:05}");
        let policy = if rng.chance(70) { "Forbid" } else { "Allow" };
        let mut container = json!({
            "name": "job",
            "image": format!("registry.example.com/team/job:2.{}.0", j % 13),
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        });
        if rng.chance(10) {
            container["image"] = json!("registry.example.com/team/job:latest");
        }
        objects.push(json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "schedule": format!("{} 3 * * *", j % 60),
                "concurrencyPolicy": policy,
                "startingDeadlineSeconds": 300,
                "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [container.clone()]}}}},
            },
        }));
        // One run per CronJob, as its controller would have created it (the bare control
        // plane has none): the operator keeps it as a run for cronjob-health.
        objects.push(json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": format!("{name}-1"), "namespace": ns, "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "CronJob", "name": name,
                "uid": format!("00000000-0000-0000-0000-{j:012}"), "controller": true}]},
            "spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [container]}}},
        }));
    }
    (namespaces, objects)
}

fn resource_of(kind: &str) -> anyhow::Result<ApiResource> {
    Ok(match kind {
        "Namespace" => ApiResource::erase::<Namespace>(&()),
        "Deployment" => ApiResource::erase::<Deployment>(&()),
        "CronJob" => ApiResource::erase::<CronJob>(&()),
        "Job" => ApiResource::erase::<Job>(&()),
        "Service" => ApiResource::erase::<Service>(&()),
        "PodDisruptionBudget" => ApiResource::erase::<PodDisruptionBudget>(&()),
        other => bail!("no resource for kind {other}"),
    })
}

/// Creates the objects with `concurrency` requests in flight; returns how many were created.
pub async fn create_all(
    client: &Client,
    objects: Vec<Value>,
    concurrency: usize,
) -> anyhow::Result<usize> {
    let n = objects.len();
    futures::stream::iter(objects.into_iter().map(|v| {
        let client = client.clone();
        async move {
            let kind = v["kind"].as_str().unwrap_or_default().to_owned();
            let ar = resource_of(&kind)?;
            let obj: DynamicObject = serde_json::from_value(v)?;
            let api: Api<DynamicObject> = match obj.metadata.namespace.as_deref() {
                Some(ns) => Api::namespaced_with(client, ns, &ar),
                None => Api::all_with(client, &ar),
            };
            let name = obj.metadata.name.clone().unwrap_or_default();
            api.create(&PostParams::default(), &obj)
                .await
                .with_context(|| format!("creating {kind} {name}"))?;
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(concurrency.max(1))
    .try_collect::<Vec<()>>()
    .await?;
    Ok(n)
}

async fn list_all<K>(client: &Client) -> anyhow::Result<Vec<K>>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    let mut out = Vec::new();
    let mut lp = ListParams::default().limit(500);
    loop {
        let page = api.list(&lp).await?;
        out.extend(page.items);
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => return Ok(out),
        }
    }
}

/// The summary the status must show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// `summary.matched`.
    pub matched: u32,
    /// `summary.violating`.
    pub violating: u32,
    /// `summary.compliant`.
    pub compliant: u32,
    /// `summary.unknown`.
    pub unknown: u32,
    /// `rules[CHURN_RULE].violations`.
    pub churn_rule: u32,
}

/// The policy as it is in the API server (compiled, with its generation), the operator's
/// context (leases known; ServiceMonitor/PodMonitor CRDs not installed) and every workload
/// with its uid, as the server returns them.
async fn engine_inputs(
    client: &Client,
) -> anyhow::Result<(
    CompiledPolicy,
    i64,
    Context,
    Vec<(Workload, Option<String>)>,
)> {
    let policy = Api::<ProductionPolicy>::all(client.clone())
        .get(POLICY)
        .await?;
    let generation = policy.metadata.generation.unwrap_or_default();
    let compiled = CompiledPolicy::compile(&policy, &prodready::rules::CATALOG)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut ctx = Context::default();
    ctx.set_leases_known();
    // The operator's own reasons: they are the `error` results' messages in the reports.
    ctx.set_service_monitors_unavailable(prodready::controller::SERVICE_MONITOR_CRD_MISSING);
    ctx.set_pod_monitors_unavailable(prodready::controller::POD_MONITOR_CRD_MISSING);
    for ns in Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await?
    {
        let labels = ns.metadata.labels.clone().unwrap_or_default();
        ctx.add_namespace(ns.metadata.name.unwrap_or_default(), labels);
    }
    for s in list_all::<Service>(client).await? {
        ctx.add_service(Arc::new(s.into()));
    }
    for p in list_all::<PodDisruptionBudget>(client).await? {
        ctx.add_pdb(Arc::new(p.into()));
    }
    for j in list_all::<Job>(client).await? {
        if let Some(run) = JobRun::from_job(&j) {
            ctx.add_job_run(Arc::new(run));
        }
    }
    let mut workloads: Vec<(Workload, Option<String>)> = list_all::<Deployment>(client)
        .await?
        .into_iter()
        .map(|d| {
            let uid = d.metadata.uid.clone();
            (Workload::from(d), uid)
        })
        .collect();
    // Read live, a CronJob always has a status (the operator stores an empty one when the
    // API server returns none), so cronjob-health is decided, not unknown.
    workloads.extend(list_all::<CronJob>(client).await?.into_iter().map(|mut c| {
        c.status.get_or_insert_with(Default::default);
        let uid = c.metadata.uid.clone();
        (Workload::from(c), uid)
    }));
    Ok((compiled, generation, ctx, workloads))
}

/// The OpenReports reports the operator must hold: the engine's evaluation of every matched
/// workload through the same report builder.
pub async fn expected_reports(client: &Client) -> anyhow::Result<Vec<prodready::reports::Report>> {
    let (compiled, _, ctx, workloads) = engine_inputs(client).await?;
    let now = Timestamp::now();
    let options = prodready::reports::ReportOptions {
        api: prodready::reports::ReportApi::OpenReports,
        include_passes: false,
        cluster: None,
    };
    Ok(workloads
        .iter()
        .filter(|(w, _)| compiled.matches(w, &ctx))
        .filter_map(|(w, uid)| {
            let eval = compiled.evaluate(w, &ctx, now);
            let subject = prodready::reports::Subject {
                kind: w.kind,
                namespace: &w.namespace,
                name: &w.name,
                uid: uid.as_deref(),
            };
            prodready::reports::build(&subject, &[(compiled.name.as_str(), &eval)], options)
        })
        .collect())
}

/// Evaluates the policy as it is in the API server over the workloads as they are there, in
/// the operator's context (leases known; ServiceMonitor/PodMonitor CRDs not installed).
pub async fn expected(client: &Client) -> anyhow::Result<(Expected, i64)> {
    let (compiled, generation, ctx, workloads) = engine_inputs(client).await?;
    let workloads: Vec<Workload> = workloads.into_iter().map(|(w, _)| w).collect();
    let now = Timestamp::now();
    let mut e = Expected::default();
    for w in &workloads {
        if !compiled.matches(w, &ctx) {
            continue;
        }
        e.matched += 1;
        let eval = compiled.evaluate(w, &ctx, now);
        match eval.verdict() {
            WorkloadVerdict::Violating => e.violating += 1,
            WorkloadVerdict::Compliant => e.compliant += 1,
            WorkloadVerdict::Unknown => e.unknown += 1,
            WorkloadVerdict::Exempt => {}
        }
        if eval.results.iter().any(|r| {
            r.rule.id == CHURN_RULE && matches!(r.outcome, prodready::engine::Outcome::Fail(_))
        }) {
            e.churn_rule += 1;
        }
    }
    Ok((e, generation))
}
