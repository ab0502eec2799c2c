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
