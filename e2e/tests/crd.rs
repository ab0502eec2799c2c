//! The ProductionPolicy CRD on a real API server: every sample policy is accepted, invalid
//! policies are rejected with the schema's or the CEL rule's own message, and
//! `kubectl get productionpolicies` shows the printer columns.

use std::path::PathBuf;

use e2e::{CRD_FILE, ControlPlane, install_crd_file, repo_root};

async fn plane_with_crd() -> &'static ControlPlane {
    let cp = ControlPlane::shared()
        .await
        .expect("start the shared control plane");
    let client = cp.client().await.expect("client");
    install_crd_file(&client, CRD_FILE)
        .await
        .expect("install the ProductionPolicy CRD");
    cp
}

/// Every sample policy: `config/samples/*.yaml` (Warn only) and the opt-in Enforce examples
/// in `config/samples/enforce/`.
fn samples() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["config/samples", "config/samples/enforce"] {
        let dir = repo_root().join(dir);
        files.extend(
            std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml")),
        );
    }
    files.sort();
    files
}

#[tokio::test]
async fn every_sample_policy_is_accepted() {
    let cp = plane_with_crd().await;
    let files = samples();
    assert!(
        files.len() >= 3,
        "expected sample policies, found {files:?}"
    );
    for f in files {
        let path = f.display().to_string();
        let out = cp
            .kubectl(["apply", "--dry-run=server", "-f", &path])
            .await
            .expect("kubectl");
        assert!(out.success(), "{path} rejected:\n{}", out.stderr);
    }
}

/// Applies a policy (server-side dry run) and returns kubectl's stderr, asserting rejection.
async fn rejected(cp: &ControlPlane, name: &str, spec: &str) -> String {
    let doc = format!(
        "apiVersion: prodready.dev/v1alpha1\nkind: ProductionPolicy\nmetadata:\n  name: {name}\nspec:\n{spec}"
    );
    let out = cp
        .kubectl_with_stdin(["apply", "--dry-run=server", "-f", "-"], Some(&doc))
        .await
        .expect("kubectl");
    assert!(
        !out.success(),
        "policy {name} was accepted but should not be:\n{doc}"
    );
    out.stderr
}

#[tokio::test]
async fn invalid_policies_are_rejected_with_the_rule_message() {
    let cp = plane_with_crd().await;

    let e = rejected(
        cp,
        "empty-reason",
        "  exemptions:\n    - rules: [replicas-ha]\n      reason: \"  \"\n",
    )
    .await;
    assert!(e.contains("an exemption needs a non-empty reason"), "{e}");

    let e = rejected(
        cp,
        "unknown-rule",
        "  exemptions:\n    - rules: [replica-ha]\n      reason: typo\n",
    )
    .await;
    assert!(e.contains("unknown rule id in exemption rules"), "{e}");

    let e = rejected(
        cp,
        "ramp-on-audit",
        "  enforcement:\n    action: Audit\n    enforceAfter: \"2027-01-01T00:00:00Z\"\n",
    )
    .await;
    assert!(
        e.contains("enforceAfter ramps Warn to Enforce; it cannot be used with action Audit"),
        "{e}"
    );

    let e = rejected(
        cp,
        "bad-severity",
        "  enforcement:\n    denyAtOrAbove: urgent\n",
    )
    .await;
    assert!(e.contains("Unsupported value: \"urgent\""), "{e}");

    let e = rejected(cp, "bad-action", "  enforcement:\n    action: Block\n").await;
    assert!(e.contains("Unsupported value: \"Block\""), "{e}");

    let e = rejected(
        cp,
        "missing-reason",
        "  exemptions:\n    - rules: [\"*\"]\n",
    )
    .await;
    assert!(e.contains("reason: Required value"), "{e}");

    let e = rejected(
        cp,
        "no-rules",
        "  exemptions:\n    - rules: []\n      reason: x\n",
    )
    .await;
    assert!(e.contains("should have at least 1 items"), "{e}");

    let e = rejected(cp, "bad-kind", "  match:\n    kinds: [Deploymnt]\n").await;
    assert!(e.contains("Unsupported value: \"Deploymnt\""), "{e}");

    let e = rejected(
        cp,
        "bad-min",
        "  rules:\n    replicasHa: {minReplicas: 0}\n",
    )
    .await;
    assert!(e.contains("should be greater than or equal to 1"), "{e}");
}

/// `exemptions[].containers`: container names (DNS-1123 labels), each listed once; the same
/// rules `prodready audit` applies when it compiles a policy file.
#[tokio::test]
async fn exemption_containers_are_checked_by_cel() {
    let cp = plane_with_crd().await;
    let spec = |containers: &str| {
        format!(
            "  exemptions:\n    - rules: [liveness-probe, readiness-probe]\n      containers: {containers}\n      reason: injected by the mesh\n"
        )
    };
    for (name, containers) in [
        ("upper-case", r#"[Istio-Proxy]"#),
        ("underscore", r#"[istio_proxy]"#),
        ("trailing-dash", r#"[istio-]"#),
        ("dotted", r#"[istio.proxy]"#),
    ] {
        let e = rejected(cp, name, &spec(containers)).await;
        assert!(
            e.contains("each name in containers must be a container name"),
            "{name}: {e}"
        );
    }
    let e = rejected(cp, "twice", &spec("[istio-proxy, app, istio-proxy]")).await;
    assert!(
        e.contains("containers names the same container more than once; list each name once"),
        "{e}"
    );
    let e = rejected(cp, "empty-name", &spec(r#"[""]"#)).await;
    assert!(e.contains("should be at least 1 chars long"), "{e}");
    let e = rejected(cp, "too-long", &spec(&format!("[{}]", "a".repeat(64)))).await;
    assert!(
        e.contains("may not be more than 63 bytes") || e.contains("63"),
        "{e}"
    );
    let many: Vec<String> = (0..33).map(|i| format!("c{i}")).collect();
    let e = rejected(cp, "too-many", &spec(&format!("[{}]", many.join(", ")))).await;
    assert!(e.contains("must have at most 32 items"), "{e}");

    // Accepted: sidecar names, a native sidecar's name, the longest label, 32 names.
    let mut accepted = vec![
        "[istio-proxy]".to_owned(),
        "[linkerd-proxy, istio-init, app2]".to_owned(),
        format!("[{}]", "a".repeat(63)),
    ];
    accepted.push(format!("[{}]", many[..32].join(", ")));
    for (i, containers) in accepted.iter().enumerate() {
        let doc = format!(
            "apiVersion: prodready.dev/v1alpha1\nkind: ProductionPolicy\nmetadata:\n  name: containers-ok-{i}\nspec:\n{}",
            spec(containers)
        );
        let out = cp
            .kubectl_with_stdin(["apply", "--dry-run=server", "-f", "-"], Some(&doc))
            .await
            .expect("kubectl");
        assert!(out.success(), "{containers} rejected:\n{}", out.stderr);
    }
}

#[tokio::test]
async fn kubectl_get_shows_printer_columns_and_explain_documents_fields() {
    let cp = plane_with_crd().await;
    let doc = "apiVersion: prodready.dev/v1alpha1\nkind: ProductionPolicy\nmetadata:\n  name: e2e-columns\nspec:\n  enforcement: {action: Enforce}\n";
    let out = cp
        .kubectl_with_stdin(["apply", "-f", "-"], Some(doc))
        .await
        .expect("kubectl apply");
    assert!(out.success(), "{}", out.stderr);
    let out = cp
        .kubectl(["get", "productionpolicies", "e2e-columns"])
        .await
        .expect("kubectl get");
    assert!(out.success(), "{}", out.stderr);
    let header = out.stdout.lines().next().unwrap_or_default().to_owned();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        ["NAME", "ACTION", "MATCHED", "VIOLATING", "READY", "AGE"],
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Enforce"), "{}", out.stdout);
    // The short name works too.
    let out = cp
        .kubectl(["get", "ppol", "e2e-columns", "-o", "name"])
        .await
        .expect("kubectl get");
    assert_eq!(
        out.stdout.trim(),
        "productionpolicy.prodready.dev/e2e-columns"
    );
    // `kubectl explain` shows the doc comments.
    let out = cp
        .kubectl(["explain", "productionpolicy.spec.exemptions.expires"])
        .await
        .expect("kubectl explain");
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("after which the exemption no longer applies"),
        "{}",
        out.stdout
    );
    let out = cp
        .kubectl(["delete", "productionpolicy", "e2e-columns"])
        .await
        .expect("kubectl delete");
    assert!(out.success(), "{}", out.stderr);
}
