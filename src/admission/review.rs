//! The admission decision, as a pure function of the request, the policies, the context and
//! the instant.
//!
//! [`review`] decodes the object (and the old object of an UPDATE) through the same
//! [`object::decode`] the CLI and the controller use, evaluates every matching policy whose
//! action at `now` is Warn or Enforce, and turns the findings into warnings or a denial.
//! Enforce denies only findings at or above the policy's `denyAtOrAbove` that the old object
//! did not already have (the ratchet): old debt never blocks a hotfix, it comes back as a
//! warning. A rule that cannot decide adds nothing to the response; it is counted instead.
//! Nothing here does IO, logs, or reads the clock.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::response::{Status, StatusSummary};
use serde_json::{Map, Value};

use crate::api::{EnforcementAction, Severity, WorkloadKind};
use crate::engine::object::{self, Object};
use crate::engine::workload::judged_at_owner;
use crate::engine::{CompiledPolicy, Context, Outcome, Workload};
use crate::error::Categorized;
use crate::text::truncate;

/// The API server's limit on one warning, in bytes (longer ones are truncated by it).
pub const MAX_WARNING_BYTES: usize = 256;
/// The API server's limit on all warnings of one response together, in bytes.
pub const MAX_WARNINGS_TOTAL_BYTES: usize = 4096;
/// How many findings a denial message lists before summarising the rest.
pub const MAX_DENIAL_ITEMS: usize = 20;

/// What the webhook did with a request (the `decision` label of
/// `prodready_admission_reviews_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Decision {
    /// Admitted with no warnings.
    Allowed,
    /// Admitted with warnings.
    Warned,
    /// Denied (Enforce).
    Denied,
    /// The request could not be judged (malformed, undecodable object); admitted, as the
    /// `Ignore` failure policy would.
    Error,
}

impl Decision {
    /// Its `decision` label value in `prodready_admission_reviews_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Warned => "warned",
            Decision::Denied => "denied",
            Decision::Error => "error",
        }
    }
}

/// The full outcome of one review: the response plus what the server needs for metrics and
/// logs.
#[derive(Clone, Debug)]
pub struct Review {
    /// The response to send.
    pub response: AdmissionResponse,
    /// What was decided.
    pub decision: Decision,
    /// The workload as `kind/name` (lowercase kind), when the object was a workload.
    pub workload: Option<String>,
    /// Findings that denied the request.
    pub denied: usize,
    /// Findings returned as warnings (before the 4 KiB budget summarised any).
    pub warned: usize,
    /// Rule ids whose result was Unknown (no warning is returned for them).
    pub unknown_rules: Vec<&'static str>,
    /// Why the request could not be judged, for [`Decision::Error`].
    pub error: Option<String>,
}

impl Review {
    /// The answer while the snapshot is not synced: admitted, unjudged, without warnings (a
    /// half-filled context would give wrong cross-object verdicts).
    pub fn not_synced(request: &AdmissionRequest<DynamicObject>) -> Self {
        Review::new(AdmissionResponse::from(request), Decision::Allowed)
    }

    fn new(response: AdmissionResponse, decision: Decision) -> Self {
        Review {
            response,
            decision,
            workload: None,
            denied: 0,
            warned: 0,
            unknown_rules: Vec::new(),
            error: None,
        }
    }
}

/// One failing (rule, container) under one policy.
#[derive(Clone, Debug)]
struct Finding<'p> {
    policy: &'p str,
    severity: Severity,
    rule: &'static str,
    container: Option<String>,
    message: String,
    remediation: String,
    deny: bool,
}

/// Decides an admission request. See the module documentation.
pub fn review(
    request: &AdmissionRequest<DynamicObject>,
    policies: &[Arc<CompiledPolicy>],
    context: &Context,
    now: Timestamp,
) -> AdmissionResponse {
    review_detailed(request, policies, context, now).response
}

/// [`review`], with the decision and counts the server records.
pub fn review_detailed(
    request: &AdmissionRequest<DynamicObject>,
    policies: &[Arc<CompiledPolicy>],
    context: &Context,
    now: Timestamp,
) -> Review {
    let allowed = AdmissionResponse::from(request);
    if matches!(request.operation, Operation::Delete | Operation::Connect) {
        return Review::new(allowed, Decision::Allowed);
    }
    // Only workload kinds are ever judged; anything else is admitted without decoding.
    if WorkloadKind::parse(&request.kind.kind).is_none() || policies.is_empty() {
        return Review::new(allowed, Decision::Allowed);
    }
    let Some(obj) = &request.object else {
        let mut r = Review::new(allowed, Decision::Error);
        r.error = Some("the review has no object".to_owned());
        return r;
    };
    // ReplicaSets of Deployments, Pods of any controller, Jobs of CronJobs are judged at their
    // owner (as the controller and `audit` do). Judging them again would repeat every warning
    // to the controller and, under Enforce, deny the Pods of a Deployment admitted through the
    // ratchet.
    let controlled = WorkloadKind::parse(&request.kind.kind)
        .is_some_and(|kind| judged_at_owner(kind, obj.metadata.owner_references.as_deref()));
    if controlled {
        return Review::new(allowed, Decision::Allowed);
    }
    let workload = match decode_workload(obj, request) {
        Ok(Some(w)) => w,
        Ok(None) => return Review::new(allowed, Decision::Allowed),
        Err(e) => {
            let mut r = Review::new(allowed, Decision::Error);
            r.error = Some(e.to_string());
            return r;
        }
    };
    let label = format!(
        "{}/{}",
        workload.kind.as_str().to_ascii_lowercase(),
        workload.name
    );
    let matching: Vec<&CompiledPolicy> = policies
        .iter()
        .map(Arc::as_ref)
        .filter(|p| p.action_at(now) != EnforcementAction::Audit && p.matches(&workload, context))
        .collect();
    if matching.is_empty() {
        let mut r = Review::new(allowed, Decision::Allowed);
        r.workload = Some(label);
        return r;
    }

    // The old object only matters where something could be denied.
    let needs_old = request.operation == Operation::Update
        && matching
            .iter()
            .any(|p| p.action_at(now) == EnforcementAction::Enforce);
    let old_workload = if needs_old {
        request
            .old_object
            .as_ref()
            .and_then(|o| decode_workload(o, request).ok().flatten())
    } else {
        None
    };

    let mut findings = Vec::new();
    let mut notes = Vec::new();
    let mut unknown_rules = Vec::new();
    for policy in matching {
        let enforce = policy.action_at(now) == EnforcementAction::Enforce;
        let threshold = policy.spec.enforcement.deny_at_or_above;
        let evaluation = policy.evaluate(&workload, context, now);
        unknown_rules.extend(evaluation.results.iter().filter_map(|r| match r.outcome {
            Outcome::Unknown(_) => Some(r.rule.id),
            _ => None,
        }));
        let old_debt: HashSet<(&'static str, Option<String>)> = match (&old_workload, enforce) {
            (Some(old), true) => policy
                .evaluate(old, context, now)
                .failures()
                .flat_map(|(r, vs)| vs.iter().map(|v| (r.rule.id, v.container.clone())))
                .collect(),
            _ => HashSet::new(),
        };
        for (result, violations) in evaluation.failures() {
            for v in violations {
                let new = !old_debt.contains(&(result.rule.id, v.container.clone()));
                findings.push(Finding {
                    policy: &policy.name,
                    severity: result.severity,
                    rule: result.rule.id,
                    container: v.container.clone(),
                    message: v.message.clone(),
                    remediation: v.remediation.clone(),
                    deny: enforce && result.severity >= threshold && new,
                });
            }
        }
        for note in evaluation.notes {
            notes.push((&*policy.name, note));
        }
    }
    // Most severe first across policies; the sort is stable, so catalog order breaks ties.
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));

    let (denials, warnings): (Vec<_>, Vec<_>) = findings.into_iter().partition(|f| f.deny);
    let mut lines: Vec<(String, &str)> = warnings
        .iter()
        .map(|f| (warning_line(f, &label), f.policy))
        .collect();
    lines.extend(
        notes
            .into_iter()
            .map(|(policy, note)| (format!("prodready[{policy}] {label}: {note}"), policy)),
    );

    let mut response = allowed;
    let warned = lines.len();
    let warning_list = budget_warnings(lines);
    if !warning_list.is_empty() {
        response.warnings = Some(warning_list);
    }
    let decision = if !denials.is_empty() {
        response.allowed = false;
        response.result = Status {
            status: Some(StatusSummary::Failure),
            code: 403,
            message: denial_message(&denials, &label),
            reason: "Forbidden".to_owned(),
            ..Status::default()
        };
        Decision::Denied
    } else if response.warnings.is_some() {
        Decision::Warned
    } else {
        Decision::Allowed
    };
    unknown_rules.sort_unstable();
    unknown_rules.dedup();
    Review {
        response,
        decision,
        workload: Some(label),
        denied: denials.len(),
        warned,
        unknown_rules,
        error: None,
    }
}

/// Why the object under review cannot be read as a workload.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// Its metadata does not serialize back to JSON.
    #[error("the object's metadata cannot be read: {0}")]
    Metadata(#[source] serde_json::Error),
    /// It names a workload kind but does not decode as one.
    #[error(transparent)]
    Decode(#[from] object::DecodeError),
}

/// Turns the request's object into a workload, or `None` when it is not one.
fn decode_workload(
    obj: &DynamicObject,
    request: &AdmissionRequest<DynamicObject>,
) -> Result<Option<Workload>, WorkloadError> {
    let mut map = match &obj.data {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let (api_version, kind) = match &obj.types {
        Some(t) => (t.api_version.clone(), t.kind.clone()),
        None => {
            let gvk = &request.kind;
            let api_version = if gvk.group.is_empty() {
                gvk.version.clone()
            } else {
                format!("{}/{}", gvk.group, gvk.version)
            };
            (api_version, gvk.kind.clone())
        }
    };
    let mut meta = serde_json::to_value(&obj.metadata).map_err(WorkloadError::Metadata)?;
    if let Value::Object(m) = &mut meta {
        // Large and never read by a rule.
        m.remove("managedFields");
        if !m.contains_key("namespace")
            && let Some(ns) = &request.namespace
        {
            m.insert("namespace".to_owned(), Value::String(ns.clone()));
        }
        if !m.contains_key("name") && !m.contains_key("generateName") && !request.name.is_empty() {
            m.insert("name".to_owned(), Value::String(request.name.clone()));
        }
    }
    map.insert("metadata".to_owned(), meta);
    map.insert("apiVersion".to_owned(), Value::String(api_version));
    map.insert("kind".to_owned(), Value::String(kind));
    match object::decode(Value::Object(map)) {
        Ok(Object::Workload(w)) => Ok(Some(*w)),
        Ok(_) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn finding_text(f: &Finding<'_>) -> String {
    match &f.container {
        // Rule messages name their container; make sure the reader always sees it.
        Some(c) if !f.message.contains(&format!("\"{c}\"")) => {
            format!("container \"{c}\": {} ({})", f.message, f.rule)
        }
        _ => format!("{} ({})", f.message, f.rule),
    }
}

fn warning_line(f: &Finding<'_>, workload: &str) -> String {
    format!(
        "prodready[{}] {workload}: {}; fix: {}",
        f.policy,
        finding_text(f),
        f.remediation
    )
}

/// Applies the API server's limits: each warning at most [`MAX_WARNING_BYTES`], all together
/// at most [`MAX_WARNINGS_TOTAL_BYTES`], the rest summarised in one last line that says where
/// to read them.
fn budget_warnings(lines: Vec<(String, &str)>) -> Vec<String> {
    let total = lines.len();
    // Room for the summary line, which is itself at most one warning long.
    let budget = MAX_WARNINGS_TOTAL_BYTES - MAX_WARNING_BYTES;
    let mut out = Vec::new();
    let mut used = 0;
    let mut rest = BTreeSet::new();
    for (i, (line, policy)) in lines.iter().enumerate() {
        let line = truncate(line.clone(), MAX_WARNING_BYTES);
        if rest.is_empty() && used + line.len() <= budget {
            used += line.len();
            out.push(line);
        } else {
            if rest.is_empty() && i == total - 1 && used + line.len() <= MAX_WARNINGS_TOTAL_BYTES {
                // The last one fits where the summary would have gone.
                out.push(line);
                break;
            }
            rest.insert(*policy);
        }
    }
    if !rest.is_empty() {
        let more = total - out.len();
        let names: Vec<&str> = rest.into_iter().collect();
        out.push(truncate(
            format!(
                "+{more} more, see `kubectl describe productionpolicy {}`",
                names.join(" ")
            ),
            MAX_WARNING_BYTES,
        ));
    }
    out
}

fn denial_message(denials: &[Finding<'_>], workload: &str) -> String {
    let policies: BTreeSet<&str> = denials.iter().map(|f| f.policy).collect();
    let n = denials.len();
    let mut msg = format!(
        "prodready denied {workload}: {n} finding{} must be fixed (enforced by policy {}):",
        if n == 1 { "" } else { "s" },
        policies.into_iter().collect::<Vec<_>>().join(", ")
    );
    for f in denials.iter().take(MAX_DENIAL_ITEMS) {
        msg.push_str(&format!(
            "\n- [{}] {} [{}]; fix: {}",
            f.policy,
            finding_text(f),
            f.severity,
            f.remediation
        ));
    }
    if n > MAX_DENIAL_ITEMS {
        msg.push_str(&format!(
            "\n- +{} more, see `kubectl describe productionpolicy`",
            n - MAX_DENIAL_ITEMS
        ));
    }
    msg
}

impl Categorized for WorkloadError {
    fn category(&self) -> &'static str {
        match self {
            WorkloadError::Metadata(_) => "metadata",
            WorkloadError::Decode(e) => e.category(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ProductionPolicySpec;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-11-23T12:00:00Z".parse().expect("instant")
    }

    fn policy(name: &str, spec_yaml: &str) -> Arc<CompiledPolicy> {
        let spec: ProductionPolicySpec = serde_saphyr::from_str(spec_yaml).expect("spec yaml");
        Arc::new(
            CompiledPolicy::from_spec(name, spec, &crate::rules::CATALOG).expect("valid policy"),
        )
    }

    /// A Deployment that passes every baseline rule except the ones `tweak` breaks.
    fn deployment(name: &str, tweak: impl FnOnce(&mut Value)) -> Value {
        let mut d = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": name}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [container("app", "registry.example/web:1.2.3")]}
                }
            }
        });
        tweak(&mut d);
        d
    }

    fn container(name: &str, image: &str) -> Value {
        json!({
            "name": name,
            "image": image,
            "ports": [{"name": "http", "containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/health/live", "port": 8080}},
            "readinessProbe": {"httpGet": {"path": "/health/ready", "port": 8080}},
            "resources": {
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"memory": "256Mi"}
            },
            "lifecycle": {"preStop": {"sleep": {"seconds": 5}}}
        })
    }

    fn containers(d: &mut Value) -> &mut Vec<Value> {
        d["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .expect("containers")
    }

    fn drop_readiness(d: &mut Value) {
        containers(d)[0]
            .as_object_mut()
            .expect("container")
            .remove("readinessProbe");
    }

    fn request(
        operation: &str,
        object: Option<Value>,
        old: Option<Value>,
    ) -> AdmissionRequest<DynamicObject> {
        let kind = object
            .as_ref()
            .or(old.as_ref())
            .and_then(|o| o["kind"].as_str())
            .unwrap_or("Deployment")
            .to_owned();
        let (group, version, resource) = match kind.as_str() {
            "Pod" => ("", "v1", "pods"),
            "ConfigMap" => ("", "v1", "configmaps"),
            "CronJob" => ("batch", "v1", "cronjobs"),
            "Job" => ("batch", "v1", "jobs"),
            _ => ("apps", "v1", "deployments"),
        };
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": group, "version": version, "kind": kind},
                "resource": {"group": group, "version": version, "resource": resource},
                "name": "web",
                "namespace": "shop",
                "operation": operation,
                "userInfo": {"username": "dev"},
                "object": object,
                "oldObject": old,
                "dryRun": false
            }
        });
        let review: kube::core::admission::AdmissionReview<DynamicObject> =
            serde_json::from_value(review).expect("review");
        review.try_into().expect("request")
    }

    fn run(req: &AdmissionRequest<DynamicObject>, policies: &[Arc<CompiledPolicy>]) -> Review {
        review_detailed(req, policies, &Context::default(), now())
    }

    fn warnings(r: &Review) -> Vec<String> {
        r.response.warnings.clone().unwrap_or_default()
    }

    /// Baseline without the cross-object rules, so a lone Deployment can be compliant.
    const WARN: &str = "enforcement: {action: Warn}\nrules: {serviceMonitor: {enabled: false}, disruptionBudget: {enabled: false}}\n";
    const ENFORCE: &str = "enforcement: {action: Enforce}\nrules: {serviceMonitor: {enabled: false}, disruptionBudget: {enabled: false}}\n";

    #[test]
    fn compliant_deployment_is_allowed_without_warnings() {
        let req = request("CREATE", Some(deployment("web", |_| {})), None);
        let r = run(&req, &[policy("baseline", WARN)]);
        assert!(r.response.allowed);
        assert_eq!(r.response.warnings, None, "{:?}", r.response.warnings);
        assert_eq!(r.decision, Decision::Allowed);
        assert_eq!(r.response.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
    }

    #[test]
    fn warn_returns_one_warning_per_finding_naming_policy_workload_container_rule_and_fix() {
        let req = request("CREATE", Some(deployment("web", drop_readiness)), None);
        let r = run(&req, &[policy("baseline", WARN)]);
        assert!(r.response.allowed);
        assert_eq!(r.decision, Decision::Warned);
        assert_eq!(
            warnings(&r),
            vec![
                "prodready[baseline] deployment/web: container \"app\" has no readinessProbe \
                 (readiness-probe); fix: add a readinessProbe that checks the pod can serve \
                 (e.g. httpGet /health/ready)"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn audit_is_allowed_silently() {
        let req = request("CREATE", Some(deployment("web", drop_readiness)), None);
        let audit = "enforcement: {action: Audit}\n";
        let r = run(&req, &[policy("baseline", audit)]);
        assert!(r.response.allowed);
        assert_eq!(r.response.warnings, None);
        assert_eq!(r.decision, Decision::Allowed);
    }

    #[test]
    fn warnings_are_most_severe_first() {
        let d = deployment("web", |d| {
            drop_readiness(d);
            // medium: replicas-ha; critical: secret-literal-env; high: image-pinned.
            d["spec"]["replicas"] = json!(1);
            containers(d)[0]["env"] = json!([{"name": "DB_PASSWORD", "value": "hunter2"}]);
            containers(d)[0]["image"] = json!("web:latest");
        });
        let r = run(
            &request("CREATE", Some(d), None),
            &[policy("baseline", WARN)],
        );
        let w = warnings(&r);
        let rules: Vec<&str> = w
            .iter()
            .map(|l| {
                crate::rules::CATALOG
                    .iter()
                    .map(|r| r.id)
                    .find(|id| l.contains(&format!("({id}); fix:")))
                    .expect("a rule id")
            })
            .collect();
        assert_eq!(rules.first(), Some(&"secret-literal-env"), "{w:#?}");
        assert_eq!(rules.last(), Some(&"replicas-ha"), "{w:#?}");
        assert!(rules.contains(&"image-pinned") && rules.contains(&"readiness-probe"));
    }

    #[test]
    fn enforce_denies_with_403_and_a_message_listing_the_fix() {
        let req = request("CREATE", Some(deployment("web", drop_readiness)), None);
        let r = run(&req, &[policy("baseline", ENFORCE)]);
        assert!(!r.response.allowed);
        assert_eq!(r.decision, Decision::Denied);
        assert_eq!(r.response.result.code, 403);
        assert_eq!(r.response.result.reason, "Forbidden");
        let msg = &r.response.result.message;
        assert!(msg.starts_with("prodready denied deployment/web: 1 finding must be fixed (enforced by policy baseline):"), "{msg}");
        assert!(msg.contains("- [baseline] container \"app\" has no readinessProbe (readiness-probe) [high]; fix: add a readinessProbe"), "{msg}");
        assert_eq!(r.denied, 1);
    }

    #[test]
    fn enforce_warns_about_findings_below_deny_at_or_above() {
        let d = deployment("web", |d| {
            drop_readiness(d);
            d["spec"]["replicas"] = json!(1); // replicas-ha, medium
        });
        let r = run(
            &request("CREATE", Some(d), None),
            &[policy("baseline", ENFORCE)],
        );
        assert!(!r.response.allowed);
        assert!(!r.response.result.message.contains("replicas-ha"));
        let w = warnings(&r);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("(replicas-ha)"), "{w:?}");
    }

    #[test]
    fn enforce_with_only_low_findings_is_allowed_with_warnings() {
        let d = deployment("web", |d| d["spec"]["replicas"] = json!(1));
        let r = run(
            &request("CREATE", Some(d), None),
            &[policy("baseline", ENFORCE)],
        );
        assert!(r.response.allowed);
        assert_eq!(r.decision, Decision::Warned);
    }

    #[test]
    fn deny_at_or_above_critical_only_denies_critical() {
        let spec = ENFORCE.replace(
            "action: Enforce",
            "action: Enforce, denyAtOrAbove: critical",
        );
        let d = deployment("web", drop_readiness);
        let r = run(&request("CREATE", Some(d), None), &[policy("p", &spec)]);
        assert!(r.response.allowed);
        let d = deployment("web", |d| {
            containers(d)[0]["env"] = json!([{"name": "API_TOKEN", "value": "abc"}]);
        });
        let r = run(&request("CREATE", Some(d), None), &[policy("p", &spec)]);
        assert!(!r.response.allowed);
        assert!(
            r.response
                .result
                .message
                .contains("(secret-literal-env) [critical]")
        );
    }

    #[test]
    fn enforce_after_in_the_past_enforces_and_in_the_future_warns() {
        let past = ENFORCE.replace(
            "action: Enforce",
            "action: Enforce, enforceAfter: \"2026-01-01T00:00:00Z\"",
        );
        let future = ENFORCE.replace(
            "action: Enforce",
            "action: Enforce, enforceAfter: \"2027-01-01T00:00:00Z\"",
        );
        let req = request("CREATE", Some(deployment("web", drop_readiness)), None);
        let r = run(&req, &[policy("p", &past)]);
        assert_eq!(r.decision, Decision::Denied);
        let r = run(&req, &[policy("p", &future)]);
        assert_eq!(r.decision, Decision::Warned);
        assert!(r.response.allowed);
        // The ramp flips at the instant itself.
        let at = ENFORCE.replace(
            "action: Enforce",
            "action: Enforce, enforceAfter: \"2026-11-23T12:00:00Z\"",
        );
        assert_eq!(run(&req, &[policy("p", &at)]).decision, Decision::Denied);
    }

    #[test]
    fn update_ratchets_old_debt_to_warnings() {
        let old = deployment("web", drop_readiness);
        let new = deployment("web", |d| {
            drop_readiness(d);
            containers(d)[0]["image"] = json!("registry.example/web:1.2.4");
        });
        let r = run(
            &request("UPDATE", Some(new), Some(old)),
            &[policy("baseline", ENFORCE)],
        );
        assert!(r.response.allowed, "{}", r.response.result.message);
        assert_eq!(r.decision, Decision::Warned);
        assert!(warnings(&r)[0].contains("(readiness-probe)"));
    }

    #[test]
    fn update_adding_a_violation_is_denied_for_the_new_one_only() {
        let old = deployment("web", drop_readiness);
        let new = deployment("web", |d| {
            drop_readiness(d);
            containers(d)[0]["image"] = json!("registry.example/web:latest");
        });
        let r = run(
            &request("UPDATE", Some(new), Some(old)),
            &[policy("baseline", ENFORCE)],
        );
        assert!(!r.response.allowed);
        let msg = &r.response.result.message;
        assert!(msg.contains("(image-pinned)"), "{msg}");
        assert!(!msg.contains("(readiness-probe)"), "{msg}");
        assert!(warnings(&r).iter().any(|w| w.contains("(readiness-probe)")));
    }

    #[test]
    fn ratchet_is_per_container() {
        // The old debt is on "app"; a new container without a probe is new debt.
        let old = deployment("web", drop_readiness);
        let new = deployment("web", |d| {
            drop_readiness(d);
            let mut side = container("side", "registry.example/side:1");
            side.as_object_mut().expect("c").remove("readinessProbe");
            containers(d).push(side);
        });
        let r = run(
            &request("UPDATE", Some(new), Some(old)),
            &[policy("baseline", ENFORCE)],
        );
        assert!(!r.response.allowed);
        let msg = &r.response.result.message;
        assert!(msg.contains("container \"side\""), "{msg}");
        assert!(!msg.contains("container \"app\""), "{msg}");
    }

    #[test]
    fn update_without_old_object_judges_everything_as_new() {
        let new = deployment("web", drop_readiness);
        let r = run(
            &request("UPDATE", Some(new), None),
            &[policy("baseline", ENFORCE)],
        );
        assert!(!r.response.allowed);
    }

    #[test]
    fn delete_and_connect_are_allowed_untouched() {
        for op in ["DELETE", "CONNECT"] {
            let req = request(op, None, Some(deployment("web", drop_readiness)));
            let r = run(&req, &[policy("baseline", ENFORCE)]);
            assert!(r.response.allowed, "{op}");
            assert_eq!(r.response.warnings, None);
            assert_eq!(r.decision, Decision::Allowed);
        }
    }

    #[test]
    fn kinds_that_are_not_workloads_are_allowed_fast() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let r = run(
            &request("CREATE", Some(cm), None),
            &[policy("baseline", ENFORCE)],
        );
        assert!(r.response.allowed);
        assert_eq!(r.decision, Decision::Allowed);
        assert_eq!(r.workload, None);
    }

    #[test]
    fn workloads_no_policy_matches_are_allowed() {
        let spec = format!("match: {{namespaces: [payments]}}\n{ENFORCE}");
        let req = request("CREATE", Some(deployment("web", drop_readiness)), None);
        let r = run(&req, &[policy("payments", &spec)]);
        assert!(r.response.allowed);
        assert_eq!(r.response.warnings, None);
        let spec = format!("match: {{kinds: [CronJob]}}\n{ENFORCE}");
        assert!(run(&req, &[policy("cron", &spec)]).response.allowed);
    }

    #[test]
    fn no_policies_means_allowed() {
        let req = request("CREATE", Some(deployment("web", drop_readiness)), None);
        let r = run(&req, &[]);
        assert!(r.response.allowed);
        assert_eq!(r.decision, Decision::Allowed);
    }

    #[test]
    fn objects_owned_by_a_controller_are_judged_at_their_owner() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-7d9f-abcde", "namespace": "shop", "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f",
                "uid": "0b0b0b0b-0000-0000-0000-000000000000", "controller": true}]},
            "spec": {"containers": [{"name": "app", "image": "web:latest"}]}
        });
        let r = run(
            &request("CREATE", Some(pod.clone()), None),
            &[policy("baseline", ENFORCE)],
        );
        assert!(r.response.allowed);
        assert_eq!(r.response.warnings, None);
        // A non-controller owner does not count.
        let mut loose = pod;
        loose["metadata"]["ownerReferences"][0]["controller"] = json!(false);
        let r = run(
            &request("CREATE", Some(loose), None),
            &[policy("baseline", ENFORCE)],
        );
        assert!(!r.response.allowed);
    }

    /// The same file `audit` reads in `tests/audit_cli.rs` and the controller's store keeps
    /// in `controller::stores`: all three judge the operator-owned workloads on their own.
    const OPERATOR_OWNED: &str = include_str!("../../tests/fixtures/owned/operator-owned.yaml");

    #[test]
    fn workloads_another_operator_controls_are_judged_their_pods_are_not() {
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(OPERATOR_OWNED).unwrap_or_else(|e| panic!("{e}"));
        let by_name = |name: &str| {
            docs.iter()
                .find(|d| d["metadata"]["name"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("no {name} in the fixture"))
        };
        let warned = |name: &str| {
            let r = run(
                &request("CREATE", Some(by_name(name)), None),
                &[policy("baseline", WARN)],
            );
            assert!(r.response.allowed);
            warnings(&r)
        };
        let w = warned("kafka-exporter");
        assert!(
            w.iter().any(|w| w.starts_with("prodready[baseline] deployment/kafka-exporter: container \"exporter\" has no readinessProbe (readiness-probe)")),
            "{w:?}"
        );
        let w = warned("db");
        assert!(
            w.iter()
                .any(|w| w.contains("container \"postgres\" has no livenessProbe")),
            "{w:?}"
        );
        let w = warned("db-backup");
        assert!(
            w.iter().any(|w| w.contains("(cronjob-single-runner)")),
            "{w:?}"
        );
        // Controlled by workloads prodready judges: left to them.
        assert!(warned("db-0").is_empty());
        assert!(warned("kafka-exporter-5d8f9c").is_empty());
        // Under Enforce the operator-owned Deployment is denied like any other.
        let r = run(
            &request("CREATE", Some(by_name("kafka-exporter")), None),
            &[policy("baseline", ENFORCE)],
        );
        assert!(!r.response.allowed);
    }

    #[test]
    fn dry_run_is_evaluated_the_same() {
        let mut req = request("CREATE", Some(deployment("web", drop_readiness)), None);
        let wet = run(&req, &[policy("baseline", WARN)]);
        req.dry_run = true;
        let dry = run(&req, &[policy("baseline", WARN)]);
        assert_eq!(wet.response.warnings, dry.response.warnings);
        assert_eq!(wet.decision, dry.decision);
    }

    #[test]
    fn policy_exemption_silences_the_finding() {
        let spec = format!(
            "{WARN}exemptions:\n  - rules: [readiness-probe]\n    names: [web]\n    reason: \"probe lands next sprint\"\n"
        );
        let r = run(
            &request("CREATE", Some(deployment("web", drop_readiness)), None),
            &[policy("baseline", &spec)],
        );
        assert!(r.response.allowed);
        assert_eq!(r.response.warnings, None);
        // An expired exemption no longer applies.
        let expired = spec.replace(
            "reason: \"probe lands next sprint\"",
            "reason: \"probe lands next sprint\"\n    expires: \"2026-01-01T00:00:00Z\"",
        );
        let r = run(
            &request("CREATE", Some(deployment("web", drop_readiness)), None),
            &[policy("baseline", &expired)],
        );
        assert_eq!(r.decision, Decision::Warned);
    }

    fn annotated(d: &mut Value) {
        drop_readiness(d);
        d["metadata"]["annotations"] = json!({
            "prodready.dev/exempt": "readiness-probe",
            "prodready.dev/exempt-reason": "legacy"
        });
    }

    #[test]
    fn annotation_exemption_applies_only_where_the_policy_allows_it() {
        let req = request("CREATE", Some(deployment("web", annotated)), None);
        let r = run(&req, &[policy("baseline", ENFORCE)]);
        assert!(!r.response.allowed, "annotation must not exempt");
        let w = warnings(&r);
        assert!(
            w.iter()
                .any(|l| l.contains("annotation prodready.dev/exempt ignored")),
            "{w:?}"
        );
        let allowing = format!("{ENFORCE}allowAnnotationExemptions: true\n");
        let r = run(&req, &[policy("baseline", &allowing)]);
        assert!(r.response.allowed);
        assert_eq!(r.response.warnings, None);
    }

    #[test]
    fn an_autoscaled_deployment_is_judged_by_its_hpa_min_replicas_at_admission() {
        // As a validating webhook sees it: replicas defaulted to 1, uid set, no apply record.
        let d = deployment("web", |d| {
            d["spec"]["replicas"] = json!(1);
            d["metadata"]["uid"] = json!("u-web");
        });
        let hpa = |min: i32| {
            let mut ctx = Context::default();
            ctx.add_autoscaler(Arc::new(crate::engine::autoscaler::Autoscaler {
                namespace: "shop".into(),
                name: "web".into(),
                target_kind: "Deployment".into(),
                target_name: "web".into(),
                min_replicas: min,
                max_replicas: 10,
            }));
            ctx
        };
        let req = request("CREATE", Some(d), None);
        let policies = [policy("baseline", ENFORCE)];
        let ha = |ctx: &Context| {
            review_detailed(&req, &policies, ctx, now())
                .response
                .warnings
                .unwrap_or_default()
                .into_iter()
                .filter(|w| w.contains("replicas-ha"))
                .collect::<Vec<_>>()
        };
        assert_eq!(ha(&hpa(3)), Vec::<String>::new());
        let low = ha(&hpa(1));
        assert_eq!(low.len(), 1, "{low:?}");
        assert!(
            low[0].contains("scales down to minReplicas 1 of HorizontalPodAutoscaler \"web\""),
            "{low:?}"
        );
        // Without the HPA, the defaulted replica is all there is.
        assert!(
            ha(&Context::default())[0].contains("runs 1 replica"),
            "{:?}",
            ha(&Context::default())
        );
    }

    #[test]
    fn unknown_results_add_no_warning_and_are_counted() {
        // leader-lease cannot verify a Lease the context does not know.
        let d = deployment("web", |d| {
            d["metadata"]["annotations"] = json!({
                "prodready.dev/single-runner": "true",
                "prodready.dev/lease": "web-leader"
            });
        });
        let r = run(
            &request("CREATE", Some(d), None),
            &[policy("baseline", WARN)],
        );
        assert!(r.response.allowed);
        assert!(
            !warnings(&r).iter().any(|w| w.contains("leader-lease")),
            "{:?}",
            warnings(&r)
        );
        assert!(
            r.unknown_rules.contains(&"leader-lease"),
            "{:?}",
            r.unknown_rules
        );
    }

    #[test]
    fn several_policies_each_name_themselves() {
        let req = request("CREATE", Some(deployment("web", drop_readiness)), None);
        let r = run(&req, &[policy("baseline", WARN), policy("team", WARN)]);
        let w = warnings(&r);
        assert_eq!(w.len(), 2);
        assert!(w[0].starts_with("prodready[baseline] ") && w[1].starts_with("prodready[team] "));
    }

    #[test]
    fn each_warning_is_at_most_256_bytes_and_all_at_most_4_kib() {
        let d = deployment("web", |d| {
            let cs = containers(d);
            cs.clear();
            for i in 0..60 {
                // A long, multi-byte name makes every line overflow.
                let name = format!("c{i}-{}", "ü".repeat(40));
                cs.push(json!({"name": name, "image": "x"}));
            }
        });
        let r = run(
            &request("CREATE", Some(d), None),
            &[policy("baseline", WARN)],
        );
        let w = warnings(&r);
        assert!(r.warned > w.len());
        assert!(w.iter().all(|l| l.len() <= MAX_WARNING_BYTES), "{w:#?}");
        let total: usize = w.iter().map(String::len).sum();
        assert!(total <= MAX_WARNINGS_TOTAL_BYTES, "{total}");
        let last = w.last().expect("summary");
        assert!(
            last.starts_with(&format!(
                "+{} more, see `kubectl describe productionpolicy baseline`",
                r.warned - (w.len() - 1)
            )),
            "{last}"
        );
        assert!(w.iter().any(|l| l.ends_with('…')));
    }

    #[test]
    fn the_last_warning_replaces_the_summary_when_it_fits() {
        let lines: Vec<(String, &str)> = (0..16).map(|i| (format!("{i:0>255}"), "p")).collect();
        let out = budget_warnings(lines);
        assert_eq!(out.len(), 16);
        assert!(!out[15].starts_with('+'));
        let lines: Vec<(String, &str)> = (0..17).map(|i| (format!("{i:0>255}"), "p")).collect();
        let out = budget_warnings(lines);
        assert_eq!(out.len(), 16);
        assert_eq!(
            out[15],
            "+2 more, see `kubectl describe productionpolicy p`"
        );
    }

    #[test]
    fn truncate_cuts_on_a_char_boundary() {
        assert_eq!(truncate("abc".into(), 3), "abc");
        assert_eq!(truncate("abcdef".into(), 4), "a…");
        let s = truncate("üüüü".into(), 6);
        assert!(s.len() <= 6 && s.ends_with('…'), "{s}");
        assert_eq!(truncate("ü".repeat(300), 256).len(), 255);
    }

    #[test]
    fn denial_message_is_bounded() {
        let d = deployment("web", |d| {
            let cs = containers(d);
            cs.clear();
            for i in 0..30 {
                cs.push(json!({"name": format!("c{i}"), "image": "x"}));
            }
        });
        let r = run(
            &request("CREATE", Some(d), None),
            &[policy("baseline", ENFORCE)],
        );
        let msg = &r.response.result.message;
        assert_eq!(msg.lines().count(), 1 + MAX_DENIAL_ITEMS + 1, "{msg}");
        assert!(
            msg.lines().last().is_some_and(|l| l.starts_with("- +")),
            "{msg}"
        );
    }

    #[test]
    fn object_without_namespace_takes_the_requests() {
        let d = deployment("web", |d| {
            drop_readiness(d);
            d["metadata"]
                .as_object_mut()
                .expect("meta")
                .remove("namespace");
        });
        let spec = format!("match: {{namespaces: [shop]}}\n{WARN}");
        let r = run(&request("CREATE", Some(d), None), &[policy("shop", &spec)]);
        assert_eq!(r.decision, Decision::Warned);
    }

    #[test]
    fn generate_name_pods_are_named_by_prefix() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "web-7d9f-", "namespace": "shop"},
            "spec": {"containers": [{"name": "app", "image": "web:latest"}]}
        });
        let r = run(
            &request("CREATE", Some(pod), None),
            &[policy("baseline", WARN)],
        );
        assert_eq!(r.workload.as_deref(), Some("pod/web-7d9f-"));
        assert!(warnings(&r).iter().any(|w| w.contains("(image-pinned)")));
    }

    #[test]
    fn cronjob_findings_are_reported() {
        let cj = json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": "shop"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure",
                "containers": [{"name": "job", "image": "job:1",
                  "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}}]
            }}}}}
        });
        let r = run(
            &request("CREATE", Some(cj), None),
            &[policy("baseline", ENFORCE)],
        );
        assert!(!r.response.allowed);
        assert!(r.response.result.message.contains("cronjob/nightly"));
        assert!(
            r.response
                .result
                .message
                .contains("(cronjob-single-runner)")
        );
    }

    #[test]
    fn undecodable_object_is_an_error_and_admitted() {
        let bad = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": "three"}
        });
        let r = run(
            &request("CREATE", Some(bad), None),
            &[policy("baseline", ENFORCE)],
        );
        assert!(r.response.allowed);
        assert_eq!(r.decision, Decision::Error);
        assert!(
            r.error.as_deref().is_some_and(|e| e.contains("Deployment")),
            "{:?}",
            r.error
        );
    }

    #[test]
    fn create_without_object_is_an_error_and_admitted() {
        let r = run(
            &request("CREATE", None, None),
            &[policy("baseline", ENFORCE)],
        );
        assert!(r.response.allowed);
        assert_eq!(r.decision, Decision::Error);
    }

    #[test]
    fn review_matches_review_detailed() {
        let req = request("CREATE", Some(deployment("web", drop_readiness)), None);
        let policies = [policy("baseline", ENFORCE)];
        let plain = review(&req, &policies, &Context::default(), now());
        assert_eq!(plain, run(&req, &policies).response);
    }
}
