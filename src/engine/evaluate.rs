//! Evaluating one workload against one compiled policy.

use k8s_openapi::jiff::Timestamp;

use super::exemption::WorkloadExemptions;
use super::rule::{Check, RuleDef, Verdict, Violation};
use super::{AppliedExemption, CompiledPolicy, Context, Workload};
use crate::api::Severity;

/// The result of one rule on one workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The rule holds.
    Pass,
    /// The rule does not concern this workload.
    NotApplicable,
    /// The rule could not decide; the reason says why.
    Unknown(String),
    /// The rule fails.
    Fail(Vec<Violation>),
    /// The rule would fail (or could not decide) but an exemption applies.
    Exempt {
        /// Which exemption applied (policy or annotation), with its reason and expiry.
        exemption: AppliedExemption,
        /// What it exempts from (empty when the rule could not decide).
        violations: Vec<Violation>,
    },
}

/// One rule's result with the severity it carries under the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleResult {
    /// The catalog entry (its id is the stable rule id).
    pub rule: &'static RuleDef,
    /// Its severity under this policy.
    pub severity: Severity,
    /// Pass, fail, exempt, unknown or not applicable, with the details of each.
    pub outcome: Outcome,
}

/// A workload's overall standing under one policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkloadVerdict {
    /// Every rule passed or did not apply.
    Compliant,
    /// No failure, but some rule could not decide.
    Unknown,
    /// No failure, but only thanks to an exemption.
    Exempt,
    /// At least one rule fails.
    Violating,
}

impl WorkloadVerdict {
    /// The verdict's lowercase name (metrics labels, JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadVerdict::Compliant => "compliant",
            WorkloadVerdict::Unknown => "unknown",
            WorkloadVerdict::Exempt => "exempt",
            WorkloadVerdict::Violating => "violating",
        }
    }
}

/// Every enabled rule's result for one workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// One result per enabled rule, in catalog order.
    pub results: Vec<RuleResult>,
    /// Notes about the evaluation itself (e.g. an exemption annotation that was ignored).
    pub notes: Vec<String>,
    /// The earliest expiry of an exemption in use, when the verdict may change by itself.
    pub next_expiry: Option<Timestamp>,
}

impl Evaluation {
    /// The workload's overall verdict.
    pub fn verdict(&self) -> WorkloadVerdict {
        let mut verdict = WorkloadVerdict::Compliant;
        for r in &self.results {
            let v = match r.outcome {
                Outcome::Fail(_) => return WorkloadVerdict::Violating,
                Outcome::Exempt { .. } => WorkloadVerdict::Exempt,
                Outcome::Unknown(_) => WorkloadVerdict::Unknown,
                Outcome::Pass | Outcome::NotApplicable => WorkloadVerdict::Compliant,
            };
            verdict = verdict.max(v);
        }
        verdict
    }

    /// The failing results, most severe first.
    pub fn failures(&self) -> impl Iterator<Item = (&RuleResult, &[Violation])> {
        let mut v: Vec<_> = self
            .results
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Fail(v) => Some((r, v.as_slice())),
                _ => None,
            })
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.0.severity));
        v.into_iter()
    }
}

/// Applies exemptions that name containers: a violation of an exempt container is exempt,
/// the others (other containers, the workload as a whole) still fail. All exempt: the result
/// is `Exempt` with those violations; some: `Fail` with the rest. The flag says whether an
/// exemption was used (its expiry then schedules a re-evaluation).
fn per_container(
    exemptions: &WorkloadExemptions<'_>,
    rule: &str,
    violations: Vec<Violation>,
) -> (Outcome, bool) {
    let mut applied: Option<AppliedExemption> = None;
    let (exempt, failing): (Vec<Violation>, Vec<Violation>) =
        violations.into_iter().partition(|v| {
            let found = v
                .container
                .as_deref()
                .and_then(|c| exemptions.for_container(rule, c));
            let hit = found.is_some();
            if applied.is_none() {
                applied = found;
            }
            hit
        });
    match applied {
        Some(exemption) if failing.is_empty() => (
            Outcome::Exempt {
                exemption,
                violations: exempt,
            },
            true,
        ),
        Some(_) => (Outcome::Fail(failing), true),
        None => (Outcome::Fail(failing), false),
    }
}

impl CompiledPolicy {
    /// Evaluates a workload at `now`. Does not check [`CompiledPolicy::matches`]: callers
    /// decide which workloads a policy applies to.
    pub fn evaluate(&self, workload: &Workload, context: &Context, now: Timestamp) -> Evaluation {
        let exemptions = WorkloadExemptions::find(self, workload, now);
        let check = Check {
            workload,
            context,
            params: &self.params,
            now,
        };
        let mut used_exemption = false;
        let results = self
            .rules
            .iter()
            .map(|active| {
                let outcome = match (active.def.check)(&check) {
                    Verdict::Pass => Outcome::Pass,
                    Verdict::NotApplicable => Outcome::NotApplicable,
                    Verdict::Unknown(reason) => match exemptions.for_rule(active.def.id) {
                        Some(exemption) => {
                            used_exemption = true;
                            Outcome::Exempt {
                                exemption,
                                violations: Vec::new(),
                            }
                        }
                        None => Outcome::Unknown(reason),
                    },
                    Verdict::Fail(violations) => match exemptions.for_rule(active.def.id) {
                        Some(exemption) => {
                            used_exemption = true;
                            Outcome::Exempt {
                                exemption,
                                violations,
                            }
                        }
                        None => {
                            let (outcome, used) =
                                per_container(&exemptions, active.def.id, violations);
                            used_exemption |= used;
                            outcome
                        }
                    },
                };
                RuleResult {
                    rule: active.def,
                    severity: active.severity,
                    outcome,
                }
            })
            .collect();
        Evaluation {
            results,
            notes: exemptions.ignored_annotation.iter().cloned().collect(),
            next_expiry: if used_exemption {
                exemptions.next_expiry()
            } else {
                None
            },
        }
    }
}
