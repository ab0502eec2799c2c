//! The controller's evaluation rounds at scale, in process: fills the controller's own stores
//! with the objects of `operator-bench large` (`bench::operator::truth::generate`: 80,000
//! Deployments, 20,000 CronJobs with one Job each, Services and PDBs, 2,000 namespaces), runs
//! the baseline policy's full pass, then incremental rounds in which `--changes` Deployments lose
//! their liveness probe (what the churn scenario does per round), and prints the median time of
//! each phase of a round, as `Controller::round` runs them. No API server: this isolates the
//! round's own cost from the watch, the webhook and the writes.
//!
//! ```sh
//! cargo run --release -p bench --bin round-bench -- --changes 136 --rounds 10
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde_json::Value;

use bench::operator::{Size, generate};
use prodready::api::ProductionPolicy;
use prodready::controller::Stores;
use prodready::controller::ledger::Ledger;
use prodready::controller::round::{self, Inputs};
use prodready::controller::status::ReportsState;
use prodready::controller::stores::{Slim, Store, key};

#[derive(Parser)]
#[command(about = "Times the controller's full and incremental rounds in process")]
struct Args {
    /// Deployments to generate.
    #[arg(long, default_value_t = 80_000)]
    deployments: usize,
    /// CronJobs to generate (one Job each).
    #[arg(long, default_value_t = 20_000)]
    cronjobs: usize,
    /// Namespaces they spread over.
    #[arg(long, default_value_t = 2_000)]
    namespaces: usize,
    /// Deployments changed before each incremental round.
    #[arg(long, default_value_t = 136)]
    changes: usize,
    /// Incremental rounds to time.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
}

fn put<K: Slim + kube::Resource + DeserializeOwned>(
    store: &Store<K::Stored>,
    v: Value,
) -> anyhow::Result<()> {
    let obj: K = serde_json::from_value(v).context("a generated object does not decode")?;
    if obj.wanted() {
        store.put(key(&obj), Arc::new(obj.slim()), K::matters);
    }
    Ok(())
}

fn fill(stores: &Stores, v: Value) -> anyhow::Result<()> {
    match v["kind"].as_str().unwrap_or_default() {
        "Namespace" => put::<Namespace>(&stores.namespaces, v),
        "Deployment" => put::<Deployment>(&stores.deployments, v),
        "CronJob" => put::<CronJob>(&stores.cronjobs, v),
        "Job" => put::<Job>(&stores.jobs, v),
        "Service" => put::<Service>(&stores.services, v),
        "PodDisruptionBudget" => put::<PodDisruptionBudget>(&stores.pdbs, v),
        other => bail!("unexpected kind {other}"),
    }
}

/// Phase times of one round.
#[derive(Default, Clone, Copy)]
struct Phases {
    take_dirt: Duration,
    context: Duration,
    plan: Duration,
    evaluated: usize,
}

fn round(stores: &Stores, policies: &[Arc<ProductionPolicy>], ledger: &mut Ledger) -> Phases {
    let mut p = Phases::default();
    let t = Instant::now();
    let dirt = stores.take_dirt();
    p.take_dirt = t.elapsed();
    let t = Instant::now();
    let now = Timestamp::now();
    let (snap, invalid) =
        round::snapshot(policies, stores.context(), now, &prodready::rules::CATALOG);
    p.context = t.elapsed();
    let t = Instant::now();
    let plan = round::plan(
        ledger,
        &Inputs {
            snapshot: &snap,
            objects: policies,
            invalid: &invalid,
            workloads: stores,
            now,
            max_violations: 100,
            leader: true,
            all_events: false,
            reports_state: ReportsState::Disabled,
            reports: None,
        },
        &dirt,
        Instant::now,
    );
    p.plan = t.elapsed();
    p.evaluated = plan.evaluated;
    p
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let size = Size {
        deployments: args.deployments,
        cronjobs: args.cronjobs,
        namespaces: args.namespaces,
    };
    let (namespaces, objects) = generate(size);
    let stores = Stores::default();
    let mut deployments = Vec::new();
    for v in namespaces {
        fill(&stores, v)?;
    }
    for v in objects {
        if v["kind"] == "Deployment" {
            deployments.push(v.clone());
        }
        fill(&stores, v)?;
    }
    let policy_yaml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(bench::operator::POLICY_FILE),
    )?;
    let policy: ProductionPolicy =
        serde_saphyr::from_str(&policy_yaml).context("the sample policy does not parse")?;
    let policies = vec![Arc::new(policy)];
    let mut ledger = Ledger::default();
    let full = round(&stores, &policies, &mut ledger);
    println!(
        "full pass: {} workloads evaluated; context {:.1} ms, plan {:.1} ms",
        full.evaluated,
        ms(full.context),
        ms(full.plan)
    );
    let mut phases = Vec::new();
    let mut next = 0;
    let count = deployments.len().max(1);
    for _ in 0..args.rounds {
        for _ in 0..args.changes {
            let Some(v) = deployments.get_mut(next % count) else {
                break;
            };
            next += 1;
            // Alternately drop and restore the probe, so every change is a change.
            let container = &mut v["spec"]["template"]["spec"]["containers"][0];
            if container.get("livenessProbe").is_some() {
                if let Some(o) = container.as_object_mut() {
                    o.remove("livenessProbe");
                }
            } else {
                container["livenessProbe"] =
                    serde_json::json!({"httpGet": {"path": "/health/live", "port": "http"}});
            }
            put::<Deployment>(&stores.deployments, v.clone())?;
        }
        phases.push(round(&stores, &policies, &mut ledger));
    }
    let col = |f: fn(&Phases) -> Duration| median(phases.iter().map(|p| ms(f(p))).collect());
    println!(
        "incremental rounds ({} of {} changed Deployments each, median): take dirt {:.2} ms, context {:.1} ms, plan {:.1} ms; {} workloads evaluated per round",
        args.rounds,
        args.changes,
        col(|p| p.take_dirt),
        col(|p| p.context),
        col(|p| p.plan),
        phases.first().map_or(0, |p| p.evaluated)
    );
    Ok(())
}
