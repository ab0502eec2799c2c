//! Engine benchmarks: one workload's evaluation, and `audit` end to end (YAML parsing
//! included) over a generated 10,000-workload corpus, on one thread.
//!
//! Run: `cargo bench --bench engine`. Throughput is printed as elements (workloads) per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use k8s_openapi::jiff::Timestamp;
use prodready::api::Profile;
use prodready::audit::{self, Loaded};
use prodready::corpus::{self, Spec};
use prodready::engine::CompiledPolicy;

fn evaluate_one(c: &mut Criterion) {
    let yaml = corpus::to_yaml(Spec {
        workloads: 1,
        namespaces: 1,
        seed: 3,
    });
    let mut loaded = Loaded::default();
    loaded.add_text("one.yaml", &yaml, false);
    let (w, _) = loaded.workloads.pop().expect("one workload");
    let now = Timestamp::now();
    let mut g = c.benchmark_group("evaluate");
    g.throughput(Throughput::Elements(1));
    for profile in [Profile::Baseline, Profile::Strict] {
        let policy = CompiledPolicy::builtin(profile, &prodready::rules::CATALOG);
        g.bench_function(profile.as_str(), |b| {
            b.iter(|| policy.evaluate(&w, &loaded.context, now))
        });
    }
    g.finish();
}

fn audit_corpus(c: &mut Criterion) {
    let spec = Spec::default();
    let yaml = corpus::to_yaml(spec);
    let policy = [CompiledPolicy::builtin(
        Profile::Baseline,
        &prodready::rules::CATALOG,
    )];
    let now = Timestamp::now();
    let mut g = c.benchmark_group("audit");
    g.sample_size(10);
    g.throughput(Throughput::Elements(spec.workloads as u64));
    g.bench_function("10k_workloads_end_to_end", |b| {
        b.iter(|| {
            let mut loaded = Loaded::default();
            loaded.add_text("corpus.yaml", &yaml, false);
            audit::audit(loaded, &policy, now, false)
        })
    });
    g.bench_function("10k_workloads_parse_only", |b| {
        b.iter(|| {
            let mut loaded = Loaded::default();
            loaded.add_text("corpus.yaml", &yaml, false);
            loaded
        })
    });
    g.finish();
}

criterion_group!(benches, evaluate_one, audit_corpus);
criterion_main!(benches);
