//! Test helpers shared by the rules' unit tests: build workloads and contexts from YAML.

use k8s_openapi::jiff::Timestamp;

use super::{Check, Params, RuleDef, Verdict, Violation};
use crate::engine::object::{Object, decode};
use crate::engine::{Context, Workload};

/// The fixed instant unit tests evaluate at: 2026-06-01T00:00:00Z.
pub fn now() -> Timestamp {
    Timestamp::from_second(1_780_272_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn parse(yaml: &str) -> serde_json::Value {
    serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("test YAML does not parse: {e}\n{yaml}"))
}

/// A workload from one YAML document. Panics (test-only) if it is not a workload.
pub fn workload(yaml: &str) -> Workload {
    match decode(parse(yaml)) {
        Ok(Object::Workload(w)) => *w,
        other => panic!("not a workload: {other:?}"),
    }
}

/// A context from `---`-separated YAML documents of context objects. Leases are known
/// (as in a live cluster) when any Lease document is given, unavailable otherwise.
pub fn context(yaml: &str) -> Context {
    let mut ctx = Context::default();
    for doc in yaml.split("\n---") {
        if doc.trim().is_empty() {
            continue;
        }
        let obj = decode(parse(doc)).unwrap_or_else(|e| panic!("bad context doc: {e}"));
        if let Some(other) = ctx.add_object(obj) {
            panic!("not a context object: {other:?}");
        }
    }
    ctx
}

/// Runs a rule with an empty context and default parameters.
pub fn check(rule: &RuleDef, w: &Workload) -> Verdict {
    check_with(rule, w, &Context::default(), &Params::default())
}

/// Runs a rule with the given context and parameters.
pub fn check_with(rule: &RuleDef, w: &Workload, ctx: &Context, params: &Params) -> Verdict {
    (rule.check)(&Check {
        workload: w,
        context: ctx,
        params,
        now: now(),
    })
}

/// The violations of a failing verdict. Panics (test-only) on any other verdict.
pub fn violations(v: Verdict) -> Vec<Violation> {
    match v {
        Verdict::Fail(v) => v,
        other => panic!("expected Fail, got {other:?}"),
    }
}

/// The containers named by a failing verdict's violations.
pub fn failing_containers(v: Verdict) -> Vec<String> {
    violations(v)
        .into_iter()
        .filter_map(|v| v.container)
        .collect()
}

/// A Deployment named `web` whose pod spec is the given YAML (indented six spaces).
pub fn deployment(pod: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  selector: {{}}\n  template:\n    spec:\n{pod}"
    )
}

/// `spec.rules` of a ProductionPolicy in YAML flow style: every catalog rule, enabled only if
/// its id is in `enabled`.
pub fn rule_toggles(enabled: &[&str]) -> String {
    let toggles: Vec<String> = super::CATALOG
        .iter()
        .map(|r| {
            let camel: String =
                r.id.split('-')
                    .enumerate()
                    .map(|(i, part)| {
                        if i == 0 {
                            part.to_owned()
                        } else {
                            part[..1].to_uppercase() + &part[1..]
                        }
                    })
                    .collect();
            format!("{camel}: {{enabled: {}}}", enabled.contains(&r.id))
        })
        .collect();
    format!("{{{}}}", toggles.join(", "))
}
