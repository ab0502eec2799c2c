//! The committed CRD must be exactly what the Rust types generate.

#[test]
fn committed_crd_matches_generated() {
    let generated = prodready::crd::yaml().expect("CRD renders");
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/productionpolicies.prodready.dev.yaml"
    );
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: regenerate it with `cargo run -- crd > crds/productionpolicies.prodready.dev.yaml`",
        prodready::crd::PATH
    );
}

#[test]
fn crd_has_descriptions_validations_and_columns() {
    let y = prodready::crd::yaml().expect("CRD renders");
    for needle in [
        "x-kubernetes-validations",
        "an exemption needs a non-empty reason",
        "unknown rule id in exemption rules",
        "enforceAfter ramps Warn to Enforce",
        "each name in containers must be a container name",
        "containers names the same container more than once",
        "name: Action",
        "name: Matched",
        "name: Violating",
        "name: Ready",
        "name: Age",
        "scope: Cluster",
    ] {
        assert!(y.contains(needle), "CRD lacks {needle}");
    }
    assert!(
        !y.contains("Auto-generated derived type"),
        "root description is missing"
    );
}
