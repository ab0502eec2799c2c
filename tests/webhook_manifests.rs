//! The webhook manifests under config/webhook say what docs/admission.md promises: failure
//! policy Ignore, a 3 s timeout, no side effects, v1 reviews, the operator's namespace and
//! kube-system excluded, every workload kind on CREATE and UPDATE, through the Service.

use std::path::PathBuf;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Service;

fn read(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("config/webhook")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn validating_webhook_configuration_is_safe_by_default() {
    let vwc: ValidatingWebhookConfiguration =
        serde_saphyr::from_str(&read("validatingwebhookconfiguration.yaml")).expect("valid YAML");
    assert_eq!(vwc.metadata.name.as_deref(), Some("prodready"));
    let hooks = vwc.webhooks.expect("webhooks");
    assert_eq!(hooks.len(), 1);
    let h = &hooks[0];
    assert_eq!(h.failure_policy.as_deref(), Some("Ignore"));
    assert_eq!(h.timeout_seconds, Some(3));
    assert_eq!(h.side_effects, "None");
    assert_eq!(h.admission_review_versions, ["v1"]);
    let svc = h.client_config.service.as_ref().expect("service");
    assert_eq!(svc.name, "prodready-webhook");
    assert_eq!(svc.path.as_deref(), Some("/validate"));

    let expr = h
        .namespace_selector
        .as_ref()
        .and_then(|s| s.match_expressions.as_ref())
        .and_then(|e| e.first())
        .expect("namespaceSelector expression");
    assert_eq!(expr.key, "kubernetes.io/metadata.name");
    assert_eq!(expr.operator, "NotIn");
    let excluded = expr.values.clone().unwrap_or_default();
    assert!(
        excluded.contains(&"prodready-system".to_owned())
            && excluded.contains(&"kube-system".to_owned())
    );

    let mut covered = Vec::new();
    for rule in h.rules.iter().flatten() {
        assert_eq!(
            rule.operations.as_deref(),
            Some(&["CREATE".to_owned(), "UPDATE".to_owned()][..])
        );
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                covered.push(format!("{group}/{resource}"));
            }
        }
    }
    covered.sort();
    assert_eq!(
        covered,
        [
            "/pods",
            "apps/daemonsets",
            "apps/deployments",
            "apps/replicasets",
            "apps/statefulsets",
            "batch/cronjobs",
            "batch/jobs"
        ]
    );
}

#[test]
fn service_targets_the_webhook_port() {
    let svc: Service = serde_saphyr::from_str(&read("service.yaml")).expect("valid YAML");
    assert_eq!(svc.metadata.name.as_deref(), Some("prodready-webhook"));
    let port = &svc.spec.and_then(|s| s.ports).expect("ports")[0];
    assert_eq!(port.port, 443);
    assert_eq!(
        port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("webhook".into()))
    );
}

#[test]
fn kustomization_lists_every_manifest() {
    let k = read("kustomization.yaml");
    for f in ["service.yaml", "validatingwebhookconfiguration.yaml"] {
        assert!(
            k.contains(&format!("- {f}")),
            "{f} missing from kustomization.yaml"
        );
        read(f);
    }
}
