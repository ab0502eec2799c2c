//! `prodready audit`: the engine applied to manifests, for CI pipelines. No cluster needed.
//!
//! Loading ([`load`]) and reporting ([`output`]) are the only IO; the verdicts come from the
//! same [`CompiledPolicy::evaluate`] the controller and the webhook use.

pub mod clusters;
pub mod config;
pub mod load;
mod node;
pub mod output;
pub mod render;
mod strict;
mod yaml;

use k8s_openapi::jiff::Timestamp;
use rayon::iter::{IntoParallelIterator as _, ParallelIterator as _};
use serde::Serialize;

use crate::api::{Severity, WorkloadKind};
use crate::engine::{CompiledPolicy, Evaluation, ExemptionSource, Outcome, WorkloadVerdict};
use crate::reports::{ReportOptions, Subject};
pub use load::{Excludes, InputError, Inputs, LoadOptions, Loaded, Skipped, Source};

/// The result of one rule on one workload, as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResultKind {
    /// The rule fails.
    Fail,
    /// The rule could not decide.
    Unknown,
    /// An exemption applies.
    Exempt,
    /// The rule holds.
    Pass,
    /// The rule does not concern the workload.
    NotApplicable,
}

impl ResultKind {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultKind::Fail => "fail",
            ResultKind::Unknown => "unknown",
            ResultKind::Exempt => "exempt",
            ResultKind::Pass => "pass",
            ResultKind::NotApplicable => "not-applicable",
        }
    }
}

/// An exemption as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExemptionInfo {
    /// Its reason.
    pub reason: String,
    /// When it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `policy` or `annotation`.
    pub source: &'static str,
}

/// One reported result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The stable, kebab-case rule id.
    pub rule: &'static str,
    /// `fail`, `unknown`, `exempt` or (with `--show-passed`) `pass`.
    pub result: ResultKind,
    /// The severity the rule carries under the policy.
    pub severity: Severity,
    /// The workload's kind.
    pub kind: WorkloadKind,
    /// The workload's namespace.
    pub namespace: String,
    /// The workload's name.
    pub name: String,
    /// The container concerned, where the rule is per container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// What is wrong (or why the rule could not decide).
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remediation: String,
    /// The policy that produced it.
    pub policy: String,
    /// Where the workload came from.
    pub source: Source,
    /// The exemption, for `exempt` results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exemption: Option<ExemptionInfo>,
    /// The cluster the workload was read from, in a fleet audit or with `--cluster-name`
    /// ([`clusters::name_cluster`]); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// Per-workload standing, for reports that list every workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkloadSummary {
    /// The workload's kind.
    pub kind: WorkloadKind,
    /// `default` when the manifest names none.
    pub namespace: String,
    /// `metadata.name` (or `generateName`).
    pub name: String,
    /// Where it came from.
    pub source: Source,
    /// The worst verdict across policies.
    pub verdict: &'static str,
    /// Rules evaluated (per policy), for JUnit's one testcase per workload × rule.
    #[serde(skip)]
    pub evaluated: Vec<(String, &'static str)>,
    /// Notes about the evaluation (e.g. ignored exemption annotations).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The cluster it was read from, as [`Finding::cluster`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// Exact totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Workloads audited.
    pub workloads: usize,
    /// Workloads with no failing, unknown or exempt rule.
    pub compliant: usize,
    /// Workloads with at least one failing rule.
    pub violating: usize,
    /// Workloads whose would-be failures are all exempt.
    pub exempt: usize,
    /// Workloads with a rule that could not decide, and no failure.
    pub unknown: usize,
    /// Failing results by severity.
    pub failures: FailureCounts,
}

/// Failing results by severity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FailureCounts {
    /// Critical.
    pub critical: usize,
    /// High.
    pub high: usize,
    /// Medium.
    pub medium: usize,
    /// Low.
    pub low: usize,
}

impl FailureCounts {
    fn add(&mut self, s: Severity) {
        match s {
            Severity::Critical => self.critical += 1,
            Severity::High => self.high += 1,
            Severity::Medium => self.medium += 1,
            Severity::Low => self.low += 1,
        }
    }
}

/// The whole audit.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The report format version.
    pub version: u32,
    /// Fail, exempt and unknown results (and passes when asked for), grouped by workload in
    /// input order, most severe first within a workload.
    pub findings: Vec<Finding>,
    /// Inputs that could not be read or understood.
    pub errors: Vec<InputError>,
    /// Totals.
    pub summary: Summary,
    /// The names of the policies applied (a profile's name for a built-in one).
    pub policies: Vec<String>,
    /// What was read besides workloads: rendered directories, documents that are not
    /// Kubernetes objects, excluded paths, objects of kinds not judged.
    pub inputs: Inputs,
    /// Every workload with its verdict.
    #[serde(skip)]
    pub workloads: Vec<WorkloadSummary>,
    /// One policy report per workload a policy matched, in input order (only when asked for,
    /// see [`audit_jobs`]).
    #[serde(skip)]
    pub reports: Vec<crate::reports::Report>,
}

impl Report {
    /// The exit code: 2 on any input error, 1 on a failure at or above `fail_on`
    /// (`None` = never), 0 otherwise.
    pub fn exit_code(&self, fail_on: Option<Severity>) -> i32 {
        if !self.errors.is_empty() {
            return 2;
        }
        let failing = fail_on.is_some_and(|threshold| {
            self.findings
                .iter()
                .any(|f| f.result == ResultKind::Fail && f.severity >= threshold)
        });
        i32::from(failing)
    }
}

fn timestamp(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Audits every loaded workload against every policy at `now`, on this thread.
pub fn audit(
    loaded: impl std::borrow::Borrow<Loaded>,
    policies: &[CompiledPolicy],
    now: Timestamp,
    show_passed: bool,
) -> Report {
    audit_jobs(loaded, policies, now, show_passed, 1, None)
}

/// [`audit`] with up to `jobs` workloads judged at once, also building each matched
/// workload's policy report ([`crate::reports::build`], the function the controller's report
/// writer uses) when `reports` is given. The report is the same, byte for byte and in the same
/// order, for every `jobs`: workloads are judged apart and the results are put together in
/// input order.
pub fn audit_jobs(
    loaded: impl std::borrow::Borrow<Loaded>,
    policies: &[CompiledPolicy],
    now: Timestamp,
    show_passed: bool,
    jobs: usize,
    reports: Option<ReportOptions>,
) -> Report {
    let loaded = loaded.borrow();
    let judge = |(w, source): &(crate::engine::Workload, Source)| {
        judge(
            w,
            source,
            policies,
            &loaded.context,
            now,
            show_passed,
            reports,
        )
    };
    let judged: Vec<Option<Judged>> = map_in_order(loaded.workloads.iter().collect(), jobs, judge);
    let mut report = Report {
        version: 1,
        errors: loaded.errors.clone(),
        policies: policies.iter().map(|p| p.name.clone()).collect(),
        inputs: loaded.inputs.clone(),
        ..Default::default()
    };
    let summary = &mut report.summary;
    for j in judged.into_iter().flatten() {
        for f in &j.findings {
            if f.result == ResultKind::Fail {
                summary.failures.add(f.severity);
            }
        }
        report.findings.extend(j.findings);
        report.reports.extend(j.report);
        summary.workloads += 1;
        match j.verdict {
            WorkloadVerdict::Compliant => summary.compliant += 1,
            WorkloadVerdict::Violating => summary.violating += 1,
            WorkloadVerdict::Exempt => summary.exempt += 1,
            WorkloadVerdict::Unknown => summary.unknown += 1,
        }
        report.workloads.push(j.workload);
    }
    report
}

/// `f` over `items` on up to `jobs` threads, the results in the items' order. One thread (or
/// no thread pool to be had) does the same work on the calling thread.
pub(crate) fn map_in_order<T: Send, R: Send>(
    items: Vec<T>,
    jobs: usize,
    f: impl Fn(T) -> R + Sync + Send,
) -> Vec<R> {
    if jobs > 1
        && items.len() > 1
        && let Ok(pool) = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()
    {
        return pool.install(|| items.into_par_iter().map(f).collect());
    }
    items.into_iter().map(f).collect()
}

/// An applied exemption as reported.
fn exemption_info(exemption: &crate::engine::AppliedExemption) -> ExemptionInfo {
    ExemptionInfo {
        reason: exemption.reason.clone(),
        expires: exemption.expires.map(timestamp),
        source: match exemption.source {
            ExemptionSource::Policy { .. } => "policy",
            ExemptionSource::Annotation => "annotation",
        },
    }
}

/// One workload's results under every policy that matches it.
struct Judged {
    findings: Vec<Finding>,
    report: Option<crate::reports::Report>,
    verdict: WorkloadVerdict,
    workload: WorkloadSummary,
}

/// Judges one workload; `None` when no policy matches it.
fn judge(
    w: &crate::engine::Workload,
    source: &Source,
    policies: &[CompiledPolicy],
    context: &crate::engine::Context,
    now: Timestamp,
    show_passed: bool,
    reports: Option<ReportOptions>,
) -> Option<Judged> {
    let mut worst: Option<WorkloadVerdict> = None;
    let mut evaluated = Vec::new();
    let mut notes = Vec::new();
    let mut findings = Vec::new();
    let mut evaluations = Vec::new();
    for policy in policies {
        if !policy.matches(w, context) {
            continue;
        }
        let eval = policy.evaluate(w, context, now);
        let verdict = eval.verdict();
        worst = Some(worst.map_or(verdict, |v| v.max(verdict)));
        notes.extend(eval.notes.iter().cloned());
        for r in &eval.results {
            evaluated.push((policy.name.clone(), r.rule.id));
            let finding =
                |result, container, message: String, remediation: String, exemption| Finding {
                    rule: r.rule.id,
                    result,
                    severity: r.severity,
                    kind: w.kind,
                    namespace: w.namespace.clone(),
                    name: w.name.clone(),
                    container,
                    message,
                    remediation,
                    policy: policy.name.clone(),
                    source: source.clone(),
                    exemption,
                    cluster: None,
                };
            match &r.outcome {
                Outcome::Fail(vs) => {
                    for v in vs {
                        findings.push(finding(
                            ResultKind::Fail,
                            v.container.clone(),
                            v.message.clone(),
                            v.remediation.clone(),
                            None,
                        ));
                    }
                }
                Outcome::Unknown(reason) => findings.push(finding(
                    ResultKind::Unknown,
                    None,
                    reason.clone(),
                    String::new(),
                    None,
                )),
                Outcome::Exempt { exemption, .. } if r.exempt_findings().is_empty() => findings
                    .push(finding(
                        ResultKind::Exempt,
                        None,
                        format!("exempt: {}", exemption.reason),
                        String::new(),
                        Some(exemption_info(exemption)),
                    )),
                Outcome::Exempt { .. } => {}
                Outcome::Pass if show_passed => findings.push(finding(
                    ResultKind::Pass,
                    None,
                    r.rule.summary.to_owned(),
                    String::new(),
                    None,
                )),
                Outcome::Pass | Outcome::NotApplicable => {}
            }
            // Exempt findings (a whole-workload exemption's, and the containers an exemption
            // names, also beside a failure) are shown, each with its own exemption.
            for (v, exemption) in r.exempt_findings() {
                findings.push(finding(
                    ResultKind::Exempt,
                    v.container.clone(),
                    v.message.clone(),
                    v.remediation.clone(),
                    Some(exemption_info(exemption)),
                ));
            }
        }
        if reports.is_some() {
            evaluations.push((policy.name.as_str(), eval));
        }
    }
    let built = match reports {
        Some(options) => {
            let subject = Subject {
                kind: w.kind,
                namespace: &w.namespace,
                name: &w.name,
                uid: None,
            };
            let pairs: Vec<(&str, &Evaluation)> =
                evaluations.iter().map(|(p, e)| (*p, e)).collect();
            crate::reports::build(&subject, &pairs, options)
        }
        None => None,
    };
    // Most severe first within the workload, failures before the rest.
    findings.sort_by(|a, b| a.result.cmp(&b.result).then(b.severity.cmp(&a.severity)));
    let verdict = worst?;
    Some(Judged {
        findings,
        report: built,
        verdict,
        workload: WorkloadSummary {
            kind: w.kind,
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            source: source.clone(),
            verdict: verdict.as_str(),
            evaluated,
            notes,
            cluster: None,
        },
    })
}
