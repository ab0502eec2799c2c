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

/// A finding about one container that an exemption naming that container covers: shown as
/// exempt, never counted as a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExemptViolation {
    /// The finding (its `container` is always set).
    pub violation: Violation,
    /// The exemption that covers it (a policy exemption naming `containers`).
    pub exemption: AppliedExemption,
}

/// One rule's result with the severity it carries under the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleResult {
    /// The catalog entry (its id is the stable rule id).
    pub rule: &'static RuleDef,
    /// Its severity under this policy.
    pub severity: Severity,
    /// Pass, fail, exempt, unknown or not applicable, with the details of each. Findings
    /// that a container exemption covers are never in it: they are in `exempt`.
    pub outcome: Outcome,
    /// The findings about containers that an exemption naming them covers. Beside a `Fail`
    /// outcome this is the mixed case (other containers or the workload still fail); beside
    /// an `Exempt` outcome with no violations of its own, every finding was such a one.
    pub exempt: Vec<ExemptViolation>,
}

impl RuleResult {
    /// Every exempt finding with the exemption that covers it: the outcome's own (a
    /// whole-workload exemption) and the per-container ones, in that order. Empty for an
    /// exempt rule that could not decide, and for results that are not exempt at all.
    pub fn exempt_findings(&self) -> Vec<(&Violation, &AppliedExemption)> {
        let whole = match &self.outcome {
            Outcome::Exempt {
                exemption,
                violations,
            } => violations.iter().map(|v| (v, exemption)).collect(),
            _ => Vec::new(),
        };
        let mut out: Vec<_> = whole;
        out.extend(self.exempt.iter().map(|e| (&e.violation, &e.exemption)));
        out
    }
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

/// Applies exemptions that name containers: a violation of an exempt container is exempt
/// (kept, with its exemption), the others (other containers, the workload as a whole) still
/// fail. Some still failing: `Fail` with them; none: `Exempt` under the first container
/// exemption used, with no violations of its own (the exempt findings carry theirs).
fn per_container(
    exemptions: &WorkloadExemptions<'_>,
    rule: &str,
    violations: Vec<Violation>,
) -> (Outcome, Vec<ExemptViolation>) {
    let mut failing = Vec::new();
    let mut exempt = Vec::new();
    for v in violations {
        match v
            .container
            .as_deref()
            .and_then(|c| exemptions.for_container(rule, c))
        {
            Some(exemption) => exempt.push(ExemptViolation {
                violation: v,
                exemption,
            }),
            None => failing.push(v),
        }
    }
    let outcome = match exempt.first() {
        Some(first) if failing.is_empty() => Outcome::Exempt {
            exemption: first.exemption.clone(),
            violations: Vec::new(),
        },
        _ => Outcome::Fail(failing),
    };
    (outcome, exempt)
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
                let mut exempt = Vec::new();
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
                            let (outcome, covered) =
                                per_container(&exemptions, active.def.id, violations);
                            used_exemption |= !covered.is_empty();
                            exempt = covered;
                            outcome
                        }
                    },
                };
                RuleResult {
                    rule: active.def,
                    severity: active.severity,
                    outcome,
                    exempt,
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
