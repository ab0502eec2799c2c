//! `cronjob-single-runner`: placeholder until implemented.

use super::{Check, RuleDef, Verdict};
use crate::api::Severity;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "cronjob-single-runner",
    summary: "TODO",
    rubric: "TODO",
    default_enabled: false,
    default_severity: Severity::Low,
    rationale: "TODO",
    example: "TODO",
    check,
};

fn check(_c: &Check<'_>) -> Verdict {
    Verdict::NotApplicable
}
