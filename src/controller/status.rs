//! Building a policy's status from its evaluations — pure: no IO, no clock (`now` is passed).
//!
//! Conditions are data: types and reasons are constants, and `lastTransitionTime` is kept
//! from the old status unless the condition's status flips. Counts are exact; the violation
//! list is bounded and ordered most severe first, so the status stays small however many
//! workloads violate.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::events::RuleSet;
use crate::api::{
    ExemptContainer, ExpiringExemption, PolicySummary, ProductionPolicyStatus, RuleCount, Severity,
    ViolationRef,
};
use crate::engine::{
    CompiledPolicy, Evaluation, ExemptionSource, Outcome, PolicyError, RuleResult, Workload,
    WorkloadVerdict,
};

/// Condition `Ready`: the policy is valid and was evaluated.
pub const READY: &str = "Ready";
/// Condition `Compliant`: no matched workload has a failing rule.
pub const COMPLIANT: &str = "Compliant";
/// Condition `Degraded`: some rule could not be evaluated.
pub const DEGRADED: &str = "Degraded";

/// Ready=True: evaluated.
pub const REASON_EVALUATED: &str = "Evaluated";
/// Ready=False (and Compliant=Unknown): the policy cannot be compiled.
pub const REASON_INVALID: &str = "InvalidPolicy";
/// Compliant=True.
pub const REASON_NO_VIOLATIONS: &str = "NoViolations";
/// Compliant=False.
pub const REASON_VIOLATIONS: &str = "ViolationsFound";
/// Degraded=False.
pub const REASON_ALL_EVALUATED: &str = "AllRulesEvaluated";
/// Degraded=True: ServiceMonitors/PodMonitors cannot be read (their CRDs are not installed).
pub const REASON_MONITORS_UNAVAILABLE: &str = "MonitoringUnavailable";
/// Degraded=True: some other rule could not decide.
pub const REASON_RULES_UNKNOWN: &str = "RulesUnknown";

/// Condition `Reported`: the policy's results are written as policy reports (only present
/// when `--reports` is not `none`).
pub const REPORTED: &str = "Reported";
/// Reported=True.
pub const REASON_REPORTS_WRITTEN: &str = "ReportsWritten";
/// Reported=False: the report CRD is not installed.
pub const REASON_REPORT_CRD_MISSING: &str = "ReportCRDMissing";
/// Reported=Unknown: the CRD is installed but the existing reports are not listed yet.
pub const REASON_REPORTS_PENDING: &str = "ReportsPending";

/// Whether reports can be written, as the round sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportsState {
    /// `--reports none`: no condition.
    Disabled,
    /// The CRD of this API (`group/version`, resource) is not installed.
    CrdMissing(&'static str, &'static str),
    /// The CRD of this API (`group/version`) is installed, but prodready's existing reports
    /// are not listed yet (no write before that; a lasting state means the watch fails).
    Pending(&'static str),
    /// The CRD is installed and the existing reports are listed: reports are written.
    Installed(&'static str),
}

/// The `Reported` condition for `state` (`None` when reports are disabled).
pub fn reports_condition(
    state: ReportsState,
    generation: Option<i64>,
    now: Timestamp,
    old: Option<&ProductionPolicyStatus>,
) -> Option<Condition> {
    match state {
        ReportsState::Disabled => None,
        ReportsState::CrdMissing(api, resource) => Some(condition(
            REPORTED,
            "False",
            REASON_REPORT_CRD_MISSING,
            format!(
                "results are not written as policy reports: the {resource} CRD ({api}) is not installed; install it (or set --reports none) and reports start without a restart"
            ),
            generation,
            now,
            old,
        )),
        ReportsState::Pending(api) => Some(condition(
            REPORTED,
            "Unknown",
            REASON_REPORTS_PENDING,
            format!(
                "the {api} report CRD is installed; reports are written once prodready's existing reports are listed (if this lasts, the operator's log says why the watch fails, e.g. missing RBAC)"
            ),
            generation,
            now,
            old,
        )),
        ReportsState::Installed(api) => Some(condition(
            REPORTED,
            "True",
            REASON_REPORTS_WRITTEN,
            format!("results are written as {api} reports, one per matched workload"),
            generation,
            now,
            old,
        )),
    }
}

/// How far ahead an exemption counts as expiring.
pub const EXPIRING_WITHIN: SignedDuration = SignedDuration::from_hours(7 * 24);

/// Timestamps in status have whole seconds (that is what round-trips through the API).
pub fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
    old: Option<&ProductionPolicyStatus>,
) -> Condition {
    let last_transition_time = old
        .and_then(|o| o.conditions.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .map_or_else(
            || Time(whole_seconds(now)),
            |c| c.last_transition_time.clone(),
        );
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// One evaluated workload.
pub struct Evaluated<'a> {
    /// The workload as the engine saw it (decoded once per round).
    pub workload: &'a Workload,
    /// Its evaluation under the policy.
    pub evaluation: Evaluation,
}

/// The status of a valid policy after evaluating every workload it matches.
pub fn build_status(
    policy: &CompiledPolicy,
    evaluated: &[Evaluated<'_>],
    now: Timestamp,
    max_violations: usize,
    old: Option<&ProductionPolicyStatus>,
) -> ProductionPolicyStatus {
    let mut builder = StatusBuilder::new(policy, now, max_violations);
    for e in evaluated {
        builder.add(e.workload, &e.evaluation);
    }
    builder.finish(old)
}

/// Builds a policy's status one evaluated workload at a time, so a round never holds every
/// evaluation at once: counts are exact, and the violation list keeps only what can still
/// make the bounded, ordered list.
pub struct StatusBuilder<'p> {
    policy: &'p CompiledPolicy,
    now: Timestamp,
    horizon: Timestamp,
    max_violations: usize,
    summary: PolicySummary,
    per_rule: BTreeMap<&'static str, (Severity, u32)>,
    violations: Vec<ViolationRef>,
    violations_seen: usize,
    unknown: BTreeMap<&'static str, (u32, Option<String>)>,
    expiring: Vec<ExpiringExemption>,
    /// The [`RuleSet::bit`] of each of the policy's rules, in its order.
    bits: Vec<u64>,
}

/// What a policy's status counts of one matched workload: its verdict, the rules it fails and
/// the rules that could not decide. The controller keeps it per workload and policy (40
/// bytes), so a round counts a workload it has no reason to evaluate again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    /// The workload's verdict under the policy.
    pub verdict: WorkloadVerdict,
    /// The rules it fails.
    pub failing: RuleSet,
    /// The rules that could not decide.
    pub unknown: RuleSet,
}

impl Tally {
    /// The tally of an evaluation.
    pub fn of(evaluation: &Evaluation) -> Tally {
        let mut failing = RuleSet::new();
        let mut unknown = RuleSet::new();
        for r in &evaluation.results {
            match r.outcome {
                Outcome::Fail(_) => failing.insert(r.rule.id),
                Outcome::Unknown(_) => unknown.insert(r.rule.id),
                _ => {}
            }
        }
        Tally {
            verdict: evaluation.verdict(),
            failing,
            unknown,
        }
    }
}

/// Which details [`StatusBuilder::detail`] keeps of an evaluation.
#[derive(Clone, Copy, Debug)]
pub struct Want {
    /// Its violations, for the bounded list.
    pub violations: bool,
    /// The reason of each of these rules it could not decide.
    pub reasons: RuleSet,
    /// Its annotation exemptions that expire within [`EXPIRING_WITHIN`].
    pub expiring: bool,
}

impl Want {
    /// Every detail.
    pub const EVERYTHING: Want = Want {
        violations: true,
        reasons: RuleSet::ALL,
        expiring: true,
    };
}

/// The containers of a failing rule that an exemption naming them covers, once each.
fn exempt_containers(r: &RuleResult) -> Vec<ExemptContainer> {
    let mut out: Vec<ExemptContainer> = Vec::new();
    for e in &r.exempt {
        let (Some(container), ExemptionSource::Policy { index }) =
            (e.violation.container.as_deref(), &e.exemption.source)
        else {
            continue;
        };
        if out.iter().any(|x| x.container == container) {
            continue;
        }
        out.push(ExemptContainer {
            container: container.to_owned(),
            exemption: u32::try_from(*index).unwrap_or(u32::MAX),
            reason: e.exemption.reason.clone(),
            expires: e.exemption.expires.map(Time),
        });
    }
    out
}

/// Most severe first, then by namespace, name, kind and rule.
fn violation_order(a: &ViolationRef, b: &ViolationRef) -> std::cmp::Ordering {
    b.severity
        .cmp(&a.severity)
        .then_with(|| a.namespace.cmp(&b.namespace))
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| a.kind.as_str().cmp(b.kind.as_str()))
        .then_with(|| a.rule.cmp(&b.rule))
}

impl<'p> StatusBuilder<'p> {
    /// An empty status for `policy` evaluated at `now`.
    pub fn new(policy: &'p CompiledPolicy, now: Timestamp, max_violations: usize) -> Self {
        StatusBuilder {
            policy,
            now,
            horizon: now.saturating_add(EXPIRING_WITHIN).unwrap_or(now),
            max_violations,
            summary: PolicySummary::default(),
            per_rule: BTreeMap::new(),
            violations: Vec::new(),
            violations_seen: 0,
            unknown: BTreeMap::new(),
            expiring: Vec::new(),
            bits: policy
                .rules
                .iter()
                .map(|r| RuleSet::bit(r.def.id))
                .collect(),
        }
    }

    /// Counts one matched workload and its evaluation, and keeps the details the status
    /// lists: the same as [`StatusBuilder::count`] of its [`Tally`] and
    /// [`StatusBuilder::detail`] of everything.
    pub fn add(&mut self, workload: &Workload, evaluation: &Evaluation) {
        self.count(&Tally::of(evaluation));
        self.detail(workload, evaluation, Want::EVERYTHING);
    }

    /// Sets the counts at once (kept up to date elsewhere, e.g. by the controller's ledger),
    /// as [`StatusBuilder::count`] of every matched workload would have: the summary, per rule
    /// the failing workloads (with the rule's severity) and the undecided ones, and how many
    /// (workload, rule) failures there are.
    pub fn set_counts(
        &mut self,
        summary: PolicySummary,
        rules: impl IntoIterator<Item = (&'static str, Severity, u32, u32)>,
        violations: usize,
    ) {
        self.summary = summary;
        for (id, severity, failing, unknown) in rules {
            if failing > 0 {
                self.per_rule.insert(id, (severity, failing));
            }
            if unknown > 0 {
                self.unknown.insert(id, (unknown, None));
            }
        }
        self.violations_seen = violations;
    }

    /// Counts one matched workload from its tally: the summary, the failures per rule, the
    /// workloads each rule could not decide, and the violations the bounded list chooses from.
    pub fn count(&mut self, tally: &Tally) {
        self.summary.matched += 1;
        match tally.verdict {
            WorkloadVerdict::Compliant => self.summary.compliant += 1,
            WorkloadVerdict::Violating => self.summary.violating += 1,
            WorkloadVerdict::Exempt => self.summary.exempt += 1,
            WorkloadVerdict::Unknown => self.summary.unknown += 1,
        }
        if tally.failing.is_empty() && tally.unknown.is_empty() {
            return;
        }
        for (rule, bit) in self.policy.rules.iter().zip(&self.bits) {
            if tally.failing.has(*bit) {
                self.per_rule
                    .entry(rule.def.id)
                    .or_insert((rule.severity, 0))
                    .1 += 1;
                self.violations_seen += 1;
            }
            if tally.unknown.has(*bit) {
                self.unknown.entry(rule.def.id).or_insert((0, None)).0 += 1;
            }
        }
    }

    /// Keeps what `want` asks of a counted workload's evaluation for the lists: its
    /// violations (the bounded list keeps the first of all, in order), the reason of each rule
    /// in `want.reasons` it could not decide (the first reason given is kept), and its
    /// annotation exemptions expiring soon. Counts nothing.
    pub fn detail(&mut self, workload: &Workload, evaluation: &Evaluation, want: Want) {
        let now = self.now;
        for r in &evaluation.results {
            match &r.outcome {
                Outcome::Fail(vs) if want.violations => {
                    let Some(first) = vs.first() else { continue };
                    let mut message = first.message.clone();
                    if vs.len() > 1 {
                        message.push_str(&format!(" (and {} more)", vs.len() - 1));
                    }
                    self.push_violation(ViolationRef {
                        kind: workload.kind,
                        namespace: workload.namespace.clone(),
                        name: workload.name.clone(),
                        rule: r.rule.id.to_owned(),
                        severity: r.severity,
                        container: first.container.clone(),
                        message,
                        exempt_containers: exempt_containers(r),
                    });
                }
                Outcome::Unknown(reason) if want.reasons.has(RuleSet::bit(r.rule.id)) => {
                    if let Some(slot) = self.unknown.get_mut(r.rule.id)
                        && slot.1.is_none()
                    {
                        slot.1 = Some(reason.clone());
                    }
                }
                Outcome::Exempt { exemption, .. } if want.expiring => {
                    if exemption.source == ExemptionSource::Annotation
                        && let Some(t) = exemption.expires
                        && t > now
                        && t <= self.horizon
                    {
                        let workload = workload.display_name();
                        if let Some(x) = self
                            .expiring
                            .iter_mut()
                            .find(|x| x.workload.as_deref() == Some(workload.as_str()))
                        {
                            if !x.rules.iter().any(|id| id == r.rule.id) {
                                x.rules.push(r.rule.id.to_owned());
                            }
                        } else {
                            self.expiring.push(ExpiringExemption {
                                index: None,
                                workload: Some(workload),
                                rules: vec![r.rule.id.to_owned()],
                                reason: exemption.reason.clone(),
                                expires: Time(t),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The instant up to which an annotation exemption counts as expiring soon.
    pub fn horizon(&self) -> Timestamp {
        self.horizon
    }

    /// Keeps at most twice the bound between trims: sorting and cutting back to the bound
    /// whenever that fills keeps exactly the first `max_violations` of the whole list.
    fn push_violation(&mut self, v: ViolationRef) {
        self.violations.push(v);
        if self.violations.len() >= self.max_violations.saturating_mul(2).max(64) {
            self.violations.sort_by(violation_order);
            self.violations.truncate(self.max_violations);
        }
    }

    /// The status, keeping each condition's transition time from `old` where it holds.
    pub fn finish(self, old: Option<&ProductionPolicyStatus>) -> ProductionPolicyStatus {
        let StatusBuilder {
            policy,
            now,
            horizon,
            max_violations,
            summary,
            per_rule,
            mut violations,
            violations_seen,
            unknown,
            mut expiring,
            bits: _,
        } = self;
        for (index, ex) in policy.spec.exemptions.iter().enumerate() {
            if let Some(t) = &ex.expires
                && t.0 > now
                && t.0 <= horizon
            {
                expiring.push(ExpiringExemption {
                    index: u32::try_from(index).ok(),
                    workload: None,
                    rules: ex.rules.clone(),
                    reason: ex.reason.clone(),
                    expires: t.clone(),
                });
            }
        }
        expiring.sort_by(|a, b| {
            (a.expires.0, &a.index, &a.workload).cmp(&(b.expires.0, &b.index, &b.workload))
        });
        expiring.truncate(max_violations);

        let mut rules: Vec<RuleCount> = per_rule
            .into_iter()
            .map(|(rule, (severity, violations))| RuleCount {
                rule: rule.to_owned(),
                severity,
                violations,
            })
            .collect();
        rules.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.rule.cmp(&b.rule))
        });

        violations.sort_by(violation_order);
        let violations_truncated = violations_seen > max_violations;
        violations.truncate(max_violations);

        let generation = policy.generation;
        let ready = condition(
            READY,
            "True",
            REASON_EVALUATED,
            format!("evaluated {} matched workloads", summary.matched),
            generation,
            now,
            old,
        );
        let compliant = if summary.violating == 0 {
            condition(
                COMPLIANT,
                "True",
                REASON_NO_VIOLATIONS,
                format!(
                    "none of {} matched workloads violates a rule",
                    summary.matched
                ),
                generation,
                now,
                old,
            )
        } else {
            condition(
                COMPLIANT,
                "False",
                REASON_VIOLATIONS,
                format!(
                    "{} of {} matched workloads violate at least one rule",
                    summary.violating, summary.matched
                ),
                generation,
                now,
                old,
            )
        };
        let degraded = if unknown.is_empty() {
            condition(
                DEGRADED,
                "False",
                REASON_ALL_EVALUATED,
                "every enabled rule was evaluated".to_owned(),
                generation,
                now,
                old,
            )
        } else {
            let monitors_only = unknown.keys().all(|r| *r == "service-monitor");
            let detail: Vec<String> = unknown
                .iter()
                .map(|(rule, (n, reason))| {
                    format!(
                        "{rule} unknown for {n} workloads: {}",
                        reason.as_deref().unwrap_or_default()
                    )
                })
                .collect();
            condition(
                DEGRADED,
                "True",
                if monitors_only {
                    REASON_MONITORS_UNAVAILABLE
                } else {
                    REASON_RULES_UNKNOWN
                },
                detail.join("; "),
                generation,
                now,
                old,
            )
        };

        ProductionPolicyStatus {
            observed_generation: generation,
            conditions: vec![ready, compliant, degraded],
            summary: Some(summary),
            rules,
            violations,
            violations_truncated,
            expiring_exemptions: expiring,
            last_evaluation_time: Some(Time(whole_seconds(now))),
        }
    }
}

/// The status of a policy that cannot be compiled: `Ready=False` with the problems.
pub fn invalid_status(
    generation: Option<i64>,
    error: &PolicyError,
    now: Timestamp,
    old: Option<&ProductionPolicyStatus>,
) -> ProductionPolicyStatus {
    let message = error.problems.join("; ");
    ProductionPolicyStatus {
        observed_generation: generation,
        conditions: vec![
            condition(
                READY,
                "False",
                REASON_INVALID,
                message.clone(),
                generation,
                now,
                old,
            ),
            condition(
                COMPLIANT,
                "Unknown",
                REASON_INVALID,
                message,
                generation,
                now,
                old,
            ),
        ],
        last_evaluation_time: Some(Time(whole_seconds(now))),
        ..ProductionPolicyStatus::default()
    }
}

/// Whether a new status differs from the old one in anything but `lastEvaluationTime`.
pub fn differs(old: Option<&ProductionPolicyStatus>, new: &ProductionPolicyStatus) -> bool {
    let Some(old) = old else { return true };
    let mut a = old.clone();
    a.last_evaluation_time = None;
    let mut b = new.clone();
    b.last_evaluation_time = None;
    a != b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ProductionPolicySpec;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::batch::v1::CronJob;

    use crate::engine::Context;

    fn deployment(ns: &str, name: &str, good: bool) -> Workload {
        let probe = if good {
            r#"
          livenessProbe: {httpGet: {path: /live, port: 8080}}
          readinessProbe: {httpGet: {path: /ready, port: 8080}}
          lifecycle: {preStop: {sleep: {seconds: 5}}}
          resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 64Mi}}"#
        } else {
            ""
        };
        let yaml = format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: app
          image: example/app:1.0{probe}
"#
        );
        let d: Deployment = serde_saphyr::from_str(&yaml).unwrap_or_default();
        Workload::from(d)
    }

    fn cronjob(ns: &str, name: &str) -> Workload {
        let yaml = format!(
            r#"
apiVersion: batch/v1
kind: CronJob
metadata: {{name: {name}, namespace: {ns}}}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{{name: job, image: "example/job:1.0"}}]
"#
        );
        let c: CronJob = serde_saphyr::from_str(&yaml).unwrap_or_default();
        Workload::from(c)
    }

    fn policy(spec_yaml: &str) -> CompiledPolicy {
        let spec: ProductionPolicySpec = serde_saphyr::from_str(spec_yaml).unwrap_or_default();
        let mut p = CompiledPolicy::from_spec("p", spec, &crate::rules::CATALOG)
            .unwrap_or_else(|e| panic!("{e}"));
        p.generation = Some(3);
        p
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn evaluate<'a>(p: &CompiledPolicy, ws: &'a [Workload], now: Timestamp) -> Vec<Evaluated<'a>> {
        let mut ctx = Context::default();
        ctx.set_leases_known();
        ws.iter()
            .map(|w| Evaluated {
                workload: w,
                evaluation: p.evaluate(w, &ctx, now),
            })
            .collect()
    }

    fn cond<'a>(s: &'a ProductionPolicyStatus, t: &str) -> &'a Condition {
        s.conditions
            .iter()
            .find(|c| c.type_ == t)
            .unwrap_or_else(|| panic!("no {t} condition"))
    }

    const ONLY_PROBES_AND_CRON: &str = r#"
rules:
  livenessProbe: {enabled: true, severity: high}
  readinessProbe: {enabled: true, severity: medium}
  cronjobSingleRunner: {enabled: true, severity: critical}
  cronjobHealth: {enabled: false}
  distinctProbes: {enabled: false}
  startupProbe: {enabled: false}
  resourceRequests: {enabled: false}
  memoryLimit: {enabled: false}
  imagePinned: {enabled: false}
  leaderLease: {enabled: false}
  serviceMonitor: {enabled: false}
  gracefulShutdown: {enabled: false}
  replicasHa: {enabled: false}
  disruptionBudget: {enabled: false}
  rolloutHistory: {enabled: false}
  secretLiteralEnv: {enabled: false}
"#;

    #[test]
    fn counts_ordering_and_truncation() {
        let p = policy(ONLY_PROBES_AND_CRON);
        let ws = vec![
            deployment("a", "good", true),
            deployment("a", "bad1", false),
            deployment("b", "bad2", false),
            cronjob("a", "cron"),
        ];
        let now = ts("2026-01-01T00:00:00Z");
        let ev = evaluate(&p, &ws, now);
        let s = build_status(&p, &ev, now, 3, None);
        assert_eq!(
            s.summary,
            Some(PolicySummary {
                matched: 4,
                compliant: 1,
                violating: 3,
                exempt: 0,
                unknown: 0
            })
        );
        let rules: Vec<(&str, Severity, u32)> = s
            .rules
            .iter()
            .map(|r| (r.rule.as_str(), r.severity, r.violations))
            .collect();
        assert_eq!(
            rules,
            vec![
                ("cronjob-single-runner", Severity::Critical, 1),
                ("liveness-probe", Severity::High, 2),
                ("readiness-probe", Severity::Medium, 2),
            ]
        );
        // 5 violations in all, bounded to 3, most severe first.
        assert!(s.violations_truncated);
        let v: Vec<(&str, &str)> = s
            .violations
            .iter()
            .map(|v| (v.name.as_str(), v.rule.as_str()))
            .collect();
        assert_eq!(
            v,
            vec![
                ("cron", "cronjob-single-runner"),
                ("bad1", "liveness-probe"),
                ("bad2", "liveness-probe"),
            ]
        );
        assert_eq!(cond(&s, COMPLIANT).status, "False");
        assert_eq!(cond(&s, READY).status, "True");
        assert_eq!(cond(&s, DEGRADED).status, "False");
        assert_eq!(s.observed_generation, Some(3));
        let untruncated = build_status(&p, &ev, now, 100, None);
        assert!(!untruncated.violations_truncated);
        assert_eq!(untruncated.violations.len(), 5);
    }

    #[test]
    fn last_transition_time_moves_only_on_flip() {
        let p = policy(ONLY_PROBES_AND_CRON);
        let bad = vec![deployment("a", "bad", false)];
        let good = vec![deployment("a", "bad", true)];
        let t0 = ts("2026-01-01T00:00:00Z");
        let t1 = ts("2026-01-01T00:05:00Z");
        let t2 = ts("2026-01-01T00:10:00Z");
        let s0 = build_status(&p, &evaluate(&p, &bad, t0), t0, 100, None);
        let s1 = build_status(&p, &evaluate(&p, &bad, t1), t1, 100, Some(&s0));
        assert_eq!(cond(&s1, COMPLIANT).last_transition_time.0, t0);
        assert!(!differs(Some(&s0), &s1), "only lastEvaluationTime moved");
        let s2 = build_status(&p, &evaluate(&p, &good, t2), t2, 100, Some(&s1));
        assert_eq!(cond(&s2, COMPLIANT).status, "True");
        assert_eq!(cond(&s2, COMPLIANT).last_transition_time.0, t2);
        assert_eq!(cond(&s2, READY).last_transition_time.0, t0);
        assert!(differs(Some(&s1), &s2));
    }

    #[test]
    fn degraded_when_monitors_unavailable() {
        let p = policy("rules: {serviceMonitor: {enabled: true}}");
        let ws = [deployment("a", "web", true)];
        let now = ts("2026-01-01T00:00:00Z");
        let mut ctx = Context::default();
        ctx.set_leases_known();
        ctx.set_service_monitors_unavailable("the ServiceMonitor CRD is not installed");
        ctx.set_pod_monitors_unavailable("the PodMonitor CRD is not installed");
        let ev: Vec<Evaluated> = ws
            .iter()
            .map(|w| Evaluated {
                workload: w,
                evaluation: p.evaluate(w, &ctx, now),
            })
            .collect();
        let s = build_status(&p, &ev, now, 100, None);
        let d = cond(&s, DEGRADED);
        assert_eq!(d.status, "True");
        assert_eq!(d.reason, REASON_MONITORS_UNAVAILABLE);
        assert!(d.message.contains("service-monitor"), "{}", d.message);
    }

    #[test]
    fn a_container_exemption_beside_a_failure_is_listed_with_the_violation() {
        let p = policy(&format!(
            "{ONLY_PROBES_AND_CRON}exemptions:\n  - {{rules: [liveness-probe], containers: [istio-proxy], reason: injected by the mesh, expires: \"2026-03-01T00:00:00Z\"}}\n"
        ));
        let yaml = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: a}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - {name: app, image: "example/app:1.0", readinessProbe: {httpGet: {path: /r, port: 80}}}
        - {name: istio-proxy, image: "proxy:1", readinessProbe: {httpGet: {path: /r, port: 15021}}}
"#;
        let d: Deployment = serde_saphyr::from_str(yaml).unwrap_or_default();
        let ws = [Workload::from(d)];
        let now = ts("2026-01-01T00:00:00Z");
        let s = build_status(&p, &evaluate(&p, &ws, now), now, 100, None);
        assert_eq!(s.summary.as_ref().map(|s| s.violating), Some(1));
        let [v] = s.violations.as_slice() else {
            panic!("one violation expected: {:?}", s.violations);
        };
        assert_eq!(v.rule, "liveness-probe");
        assert_eq!(v.container.as_deref(), Some("app"));
        assert!(!v.message.contains("more"), "{}", v.message);
        assert_eq!(
            v.exempt_containers,
            vec![ExemptContainer {
                container: "istio-proxy".into(),
                exemption: 0,
                reason: "injected by the mesh".into(),
                expires: Some(Time(ts("2026-03-01T00:00:00Z"))),
            }]
        );
        // Only the sidecar failing: the workload reads exempt, no violation is listed.
        let d: Deployment = serde_saphyr::from_str(&yaml.replace(
            "readinessProbe: {httpGet: {path: /r, port: 80}}",
            "readinessProbe: {httpGet: {path: /r, port: 80}}, livenessProbe: {httpGet: {path: /l, port: 80}}",
        ))
        .unwrap_or_default();
        let ws = [Workload::from(d)];
        let s = build_status(&p, &evaluate(&p, &ws, now), now, 100, None);
        assert_eq!(s.summary.as_ref().map(|s| s.exempt), Some(1));
        assert!(s.violations.is_empty(), "{:?}", s.violations);
    }

    #[test]
    fn expiring_exemptions_within_seven_days() {
        let p = policy(
            r#"
exemptions:
  - {rules: [liveness-probe], reason: soon, expires: "2026-01-03T00:00:00Z"}
  - {rules: ["*"], reason: later, expires: "2026-02-01T00:00:00Z"}
  - {rules: ["*"], reason: past, expires: "2025-12-01T00:00:00Z"}
"#,
        );
        let now = ts("2026-01-01T00:00:00Z");
        let s = build_status(&p, &[], now, 100, None);
        assert_eq!(s.expiring_exemptions.len(), 1);
        assert_eq!(s.expiring_exemptions[0].index, Some(0));
        assert_eq!(s.expiring_exemptions[0].reason, "soon");
    }

    #[test]
    fn invalid_policy_is_not_ready() {
        let err = PolicyError {
            policy: "p".into(),
            problems: vec!["bad selector".into()],
        };
        let s = invalid_status(Some(2), &err, ts("2026-01-01T00:00:00Z"), None);
        let r = cond(&s, READY);
        assert_eq!(
            (r.status.as_str(), r.reason.as_str()),
            ("False", REASON_INVALID)
        );
        assert!(r.message.contains("bad selector"));
    }
}
