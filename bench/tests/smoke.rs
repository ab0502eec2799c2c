//! The audit benchmark at 1/100 scale, so it cannot rot: generate 100 workloads in both
//! layouts and check that prodready's audit reads both the same and sees every workload.
//! (The peers are not run here: they are installed only by bench/peers.sh.)

use std::path::PathBuf;

use k8s_openapi::jiff::Timestamp;
use prodready::api::Profile;
use prodready::audit::{Loaded, audit};
use prodready::engine::CompiledPolicy;

#[test]
fn hundred_workloads_both_layouts_audit_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = bench::Spec {
        workloads: 100,
        namespaces: 5,
        seed: 42,
    };
    let stats = bench::write_corpus(spec, tmp.path()).unwrap();
    assert_eq!(stats.workloads, 100);
    assert_eq!(stats.files, 100);
    let kinds: usize = ["Deployment", "StatefulSet", "CronJob"]
        .iter()
        .map(|k| stats.by_kind.get(*k).copied().unwrap_or(0))
        .sum();
    assert_eq!(kinds, 100, "{:?}", stats.by_kind);
    assert!(
        stats.documents > 100,
        "companions are generated too: {stats:?}"
    );

    let layout = bench::Layout::new(tmp.path());
    // The single file is exactly the library's rendering.
    assert_eq!(
        std::fs::read_to_string(&layout.file).unwrap(),
        prodready::corpus::to_yaml(spec)
    );

    let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let policies = [CompiledPolicy::builtin(
        Profile::Baseline,
        &prodready::rules::CATALOG,
    )];
    let run = |path: PathBuf| {
        let loaded = Loaded::from_paths(&[path]);
        let files = loaded.inputs.files;
        (files, audit(loaded, &policies, now, false))
    };
    let (file_count, single) = run(layout.file.clone());
    let (dir_count, dir) = run(layout.dir.clone());
    assert_eq!(file_count, 1);
    assert_eq!(dir_count, 100);
    assert!(single.errors.is_empty(), "{:?}", single.errors);
    assert!(dir.errors.is_empty(), "{:?}", dir.errors);
    assert_eq!(single.summary.workloads, 100);
    assert_eq!(single.summary, dir.summary);
    assert_eq!(single.findings.len(), dir.findings.len());
    // A realistic mix: some compliant, some violating.
    assert!(
        single.summary.violating > 0 && single.summary.violating < 100,
        "{:?}",
        single.summary
    );
}

#[test]
fn same_seed_same_bytes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let spec = bench::Spec {
        workloads: 30,
        namespaces: 3,
        seed: 7,
    };
    bench::write_corpus(spec, a.path()).unwrap();
    bench::write_corpus(spec, b.path()).unwrap();
    let read = |d: &std::path::Path| std::fs::read(d.join("corpus.yaml")).unwrap();
    assert_eq!(read(a.path()), read(b.path()));
    // Rewriting over earlier output leaves no stale files behind.
    bench::write_corpus(
        bench::Spec {
            workloads: 10,
            ..spec
        },
        a.path(),
    )
    .unwrap();
    let files: usize = std::fs::read_dir(a.path().join("files"))
        .unwrap()
        .map(|ns| std::fs::read_dir(ns.unwrap().path()).unwrap().count())
        .sum();
    assert_eq!(files, 10);
}

/// `round-bench` at 1/100 scale: a full pass over every generated workload, then incremental
/// rounds that each evaluate exactly the changed Deployments.
#[test]
fn round_bench_at_one_hundredth() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_round-bench"))
        .args([
            "--deployments",
            "800",
            "--cronjobs",
            "200",
            "--namespaces",
            "20",
            "--changes",
            "7",
            "--rounds",
            "3",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("full pass: 1000 workloads evaluated"),
        "{stdout}"
    );
    assert!(
        stdout.contains("; 7 workloads evaluated per round"),
        "{stdout}"
    );
}
