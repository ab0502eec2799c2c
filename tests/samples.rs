//! Every sample policy under config/samples compiles, and applies to the examples.

use std::path::PathBuf;

use prodready::audit::Loaded;
use prodready::engine::CompiledPolicy;

#[test]
fn every_sample_policy_compiles() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/samples");
    let loaded = Loaded::from_paths(&[dir]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert!(
        loaded.policies.len() >= 3,
        "expected baseline, strict and a ramp sample"
    );
    for (policy, source) in &loaded.policies {
        if let Err(e) = CompiledPolicy::compile(policy, &prodready::rules::CATALOG) {
            panic!("{}: {e}", source.file);
        }
    }
}

/// `kubectl apply -f config/samples/` (not recursive) must never install a policy that denies:
/// every file directly in the directory is Audit or Warn, with no Warn→Enforce ramp. The
/// Enforce examples live in `config/samples/enforce/`, applied only by name.
#[test]
fn the_top_level_samples_never_enforce() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/samples");
    let mut top: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("config/samples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    top.sort();
    assert!(!top.is_empty(), "no samples in {}", dir.display());
    let loaded = Loaded::from_paths(&top);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.policies.len(), top.len(), "one policy per file");
    for (policy, source) in &loaded.policies {
        let enforcement = serde_json::to_value(&policy.spec.enforcement).expect("to JSON");
        assert!(
            enforcement["action"] != "Enforce" && enforcement["enforceAfter"].is_null(),
            "{} enforces ({enforcement}): move it to config/samples/enforce/",
            source.file
        );
    }
    let opt_in = dir.join("enforce");
    let enforcing = Loaded::from_paths(&[opt_in]);
    assert!(
        enforcing
            .policies
            .iter()
            .any(
                |(p, _)| serde_json::to_value(&p.spec.enforcement).expect("to JSON")["action"]
                    == "Enforce"
            ),
        "config/samples/enforce/ holds the Enforce examples"
    );
}
