//! What the controller remembers of its last judgement of every workload, so a round costs
//! what changed — pure: no IO, no clock.
//!
//! Per workload the ledger keeps the stored object it judged (a pointer into the store), its
//! [`Tally`] under each policy (about 40 bytes), the earliest instant its verdict can change by
//! itself, the digest of its report and the Lease it names. Per policy it keeps the counts of
//! the status and the metrics, every failing (workload, rule) pair in the order of the status's
//! violation list, and per rule the workloads it could not decide, all updated as workloads are
//! judged again. A round evaluates a workload again only when
//!
//! - the watch replaced, added or removed it ([`Dirt::workloads`]; an update that leaves what
//!   rules read unchanged, such as a status change, is not recorded; every Job change is, since
//!   a Job may be a standalone workload);
//! - something in its namespace that rules read changed ([`Dirt::namespaces`]: a Service, PDB,
//!   NetworkPolicy, HPA, a CronJob's Job run, the Namespace's labels);
//! - the Lease it names changed ([`Dirt::leases`]);
//! - its report was edited or deleted by hand, its write failed, or an Event about it could
//!   not be published (the controller adds those to [`Dirt::workloads`]).
//!
//! Then the statuses, metric series and lists are built from the per-policy aggregates; only
//! the workloads the bounded lists show are evaluated again, for their messages.
//!
//! Everything is evaluated again (a full pass) when a policy, a ServiceMonitor or PodMonitor
//! changes, when a watch lists again ([`Dirt::everything`]), when an instant passes at which a
//! verdict changes by itself (an exemption expiry, a Lease going stale, a CronJob falling
//! overdue, an `enforceAfter`), when reports start or stop, and at every resync. The property
//! test `controller::ledger::tests::incremental_rounds_equal_full_evaluation` checks, over
//! random change sequences, that an incremental round's result always equals a full
//! evaluation's.

use std::collections::{BTreeSet, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashbrown::{Equivalent, HashMap};
use k8s_openapi::jiff::Timestamp;

use super::events::RuleSet;
use super::reports::{Digest, ReportKey, ReportPlan, ReportRequest};
use super::status::{StatusBuilder, Tally, Want};
use super::stores::Tracked;
use crate::api::{PolicySummary, Severity};
use crate::engine::{CompiledPolicy, Evaluation, ExemptionSource, Outcome, WorkloadVerdict};
use crate::reports::{Report, Subject};
use crate::snapshot::Snapshot;

/// What changed since the last round: recorded by the watches (and the controller), taken by
/// each round.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dirt {
    /// Evaluate everything again.
    pub everything: bool,
    /// Namespaces in which something the rules read changed.
    pub namespaces: HashSet<String>,
    /// Leases (`namespace`, `name`) that changed.
    pub leases: HashSet<(String, String)>,
    /// Workloads (`Kind/namespace/name`) added, changed or removed, or to evaluate again.
    pub workloads: HashSet<String>,
}

impl Dirt {
    /// Dirt that asks for a full pass.
    pub fn everything() -> Dirt {
        Dirt {
            everything: true,
            ..Dirt::default()
        }
    }

    /// Whether nothing is recorded.
    pub fn is_clean(&self) -> bool {
        !self.everything
            && self.namespaces.is_empty()
            && self.leases.is_empty()
            && self.workloads.is_empty()
    }

    /// Adds what `other` records.
    pub fn merge(&mut self, other: Dirt) {
        self.everything |= other.everything;
        self.namespaces.extend(other.namespaces);
        self.leases.extend(other.leases);
        self.workloads.extend(other.workloads);
    }
}

/// One `prodready_violations` series of a policy: (namespace, rule id, severity, count).
pub type Series<'a> = (&'a str, &'static str, &'static str, i64);

/// Where a round finds the stored workloads.
pub trait Workloads: Sync {
    /// The stored workload of `kind` (its API name, e.g. `Deployment`) under `namespace` and
    /// `name`, if any.
    fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Arc<Tracked>>;
    /// Every stored workload.
    fn all(&self) -> Vec<Arc<Tracked>>;
}

impl Workloads for Vec<Arc<Tracked>> {
    fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Arc<Tracked>> {
        self.iter()
            .find(|t| t.kind.as_str() == kind && t.namespace == namespace && t.name == name)
            .cloned()
    }
    fn all(&self) -> Vec<Arc<Tracked>> {
        self.clone()
    }
}

/// A stored workload as a map key: equal by kind, namespace and name, whichever version of
/// the object it points to, so the store's newer object finds the entry of the older one.
#[derive(Clone)]
struct ByName(Arc<Tracked>);

impl PartialEq for ByName {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind == other.0.kind
            && self.0.name == other.0.name
            && self.0.namespace == other.0.namespace
    }
}

impl Eq for ByName {}

impl Hash for ByName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Names {
            kind: self.0.kind.as_str(),
            namespace: &self.0.namespace,
            name: &self.0.name,
        }
        .hash(state);
    }
}

/// (namespace, name, kind): the order in which the status lists break ties.
impl Ord for ByName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        order(&self.0).cmp(&order(&other.0))
    }
}

impl PartialOrd for ByName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A workload's names, to find its entry without its object (when it is gone).
#[derive(Hash)]
struct Names<'a> {
    namespace: &'a str,
    name: &'a str,
    kind: &'a str,
}

impl Equivalent<ByName> for Names<'_> {
    fn equivalent(&self, key: &ByName) -> bool {
        key.0.kind.as_str() == self.kind
            && key.0.namespace == self.namespace
            && key.0.name == self.name
    }
}

impl<'a> Names<'a> {
    /// Splits `Kind/namespace/name`.
    fn parse(key: &'a str) -> Option<Names<'a>> {
        let (kind, rest) = key.split_once('/')?;
        let (namespace, name) = rest.split_once('/')?;
        Some(Names {
            namespace,
            name,
            kind,
        })
    }
}

/// One workload's standing under one policy that matches it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mark {
    tally: Tally,
    /// Expiry of each annotation exemption in use (the status lists those expiring soon).
    expiries: Option<Box<[Timestamp]>>,
}

/// The last judgement of one workload.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Judged {
    /// The stored object could not be decoded: it is in no count.
    Undecodable,
    Evaluated {
        /// Per policy of the snapshot (in its order): `None` where it does not match.
        marks: Box<[Option<Mark>]>,
        /// The earliest instant after the evaluation at which its verdict can change by itself.
        wake: Option<Timestamp>,
        /// The digest of its report (`None`: no report, or reports off).
        report: Option<Digest>,
        /// The Lease it names (`namespace`, `name`).
        lease: Option<Box<(String, String)>>,
    },
}

impl Judged {
    fn marks(&self) -> &[Option<Mark>] {
        match self {
            Judged::Undecodable => &[],
            Judged::Evaluated { marks, .. } => marks,
        }
    }

    fn report(&self) -> Option<Digest> {
        match self {
            Judged::Undecodable => None,
            Judged::Evaluated { report, .. } => *report,
        }
    }

    fn wake(&self) -> Option<Timestamp> {
        match self {
            Judged::Undecodable => None,
            Judged::Evaluated { wake, .. } => *wake,
        }
    }

    fn names_lease(&self, leases: &HashSet<(String, String)>) -> bool {
        matches!(self, Judged::Evaluated { lease: Some(l), .. } if leases.contains(l.as_ref()))
    }
}

/// A failing (workload, rule) pair in the order of the status's violation list: most severe
/// first, then namespace, name, kind and rule.
#[derive(Clone, PartialEq, Eq)]
struct Listed {
    severity: Severity,
    workload: ByName,
    rule: &'static str,
}

impl Ord for Listed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .severity
            .cmp(&self.severity)
            .then_with(|| self.workload.cmp(&other.workload))
            .then_with(|| self.rule.cmp(other.rule))
    }
}

impl PartialOrd for Listed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// One policy's counts and lists over every workload it matches, kept up to date as
/// workloads are judged again.
#[derive(Default)]
struct Aggregate {
    summary: PolicySummary,
    /// Per rule of the policy (in its order): failing workloads.
    failing: Vec<u32>,
    /// Per rule of the policy: workloads it could not decide, in (namespace, name, kind) order.
    undecided: Vec<BTreeSet<ByName>>,
    /// Every failing (workload, rule) pair, in the violation list's order.
    listed: BTreeSet<Listed>,
    /// Per namespace, failing workloads per rule of the policy (the violation metric series).
    series: HashMap<Box<str>, Box<[u32]>>,
    /// Matched workloads per verdict (compliant, violating, exempt, unknown).
    verdicts: [i64; 4],
    /// Workloads with an annotation exemption that has an expiry.
    expiring: hashbrown::HashSet<ByName>,
    /// The policy's rules: (bit, id, severity).
    rules: Vec<(u64, &'static str, Severity)>,
}

/// The verdicts in the order of [`Aggregate::verdicts`] and the `prodready_workloads` series.
pub const VERDICTS: [WorkloadVerdict; 4] = [
    WorkloadVerdict::Compliant,
    WorkloadVerdict::Violating,
    WorkloadVerdict::Exempt,
    WorkloadVerdict::Unknown,
];

impl Aggregate {
    fn new(policy: &CompiledPolicy) -> Self {
        let rules: Vec<(u64, &'static str, Severity)> = policy
            .rules
            .iter()
            .map(|r| (RuleSet::bit(r.def.id), r.def.id, r.severity))
            .collect();
        Aggregate {
            failing: vec![0; rules.len()],
            undecided: vec![BTreeSet::new(); rules.len()],
            rules,
            ..Aggregate::default()
        }
    }

    /// Adds (`add`) or removes one workload's mark.
    fn apply(&mut self, t: &Arc<Tracked>, mark: &Mark, add: bool) {
        let step = |n: &mut u32| {
            *n = if add {
                n.saturating_add(1)
            } else {
                n.saturating_sub(1)
            }
        };
        step(&mut self.summary.matched);
        match mark.tally.verdict {
            WorkloadVerdict::Compliant => step(&mut self.summary.compliant),
            WorkloadVerdict::Violating => step(&mut self.summary.violating),
            WorkloadVerdict::Exempt => step(&mut self.summary.exempt),
            WorkloadVerdict::Unknown => step(&mut self.summary.unknown),
        }
        if let Some(i) = VERDICTS.iter().position(|v| *v == mark.tally.verdict) {
            self.verdicts[i] += if add { 1 } else { -1 };
        }
        if mark.expiries.is_some() {
            if add {
                self.expiring.insert(ByName(Arc::clone(t)));
            } else {
                self.expiring.remove(&ByName(Arc::clone(t)));
            }
        }
        let tally = &mark.tally;
        if tally.failing.is_empty() && tally.unknown.is_empty() {
            return;
        }
        let n = self.rules.len();
        let series = if tally.failing.is_empty() {
            None
        } else {
            Some(
                self.series
                    .entry_ref(t.namespace.as_str())
                    .or_insert_with(|| vec![0; n].into_boxed_slice()),
            )
        };
        let mut series = series;
        for (i, (bit, id, severity)) in self.rules.iter().enumerate() {
            if tally.failing.has(*bit) {
                if let Some(f) = self.failing.get_mut(i) {
                    step(f);
                }
                if let Some(s) = series.as_mut().and_then(|s| s.get_mut(i)) {
                    step(s);
                }
                let listed = Listed {
                    severity: *severity,
                    workload: ByName(Arc::clone(t)),
                    rule: id,
                };
                if add {
                    self.listed.insert(listed);
                } else {
                    self.listed.remove(&listed);
                }
            }
            if tally.unknown.has(*bit)
                && let Some(set) = self.undecided.get_mut(i)
            {
                if add {
                    set.insert(ByName(Arc::clone(t)));
                } else {
                    set.remove(&ByName(Arc::clone(t)));
                }
            }
        }
        if !add
            && let Some(s) = self.series.get(t.namespace.as_str())
            && s.iter().all(|n| *n == 0)
        {
            self.series.remove(t.namespace.as_str());
        }
    }
}

struct Entry {
    judged: Judged,
}

/// What the ledger was computed for: a change of any of it asks for a full pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Basis {
    /// Each policy's name and generation, in snapshot order.
    policies: Vec<(String, Option<i64>)>,
    /// The report options the digests were computed with (`None`: no reports).
    reports: Option<crate::reports::ReportOptions>,
}

/// The controller's memory of every workload's last judgement (see the module docs).
#[derive(Default)]
pub struct Ledger {
    entries: HashMap<ByName, Entry>,
    aggregates: Vec<Aggregate>,
    basis: Option<Basis>,
    /// The earliest instant at which a verdict changes by itself (then a full pass is due).
    wake: Option<Timestamp>,
}

/// The evaluation-side result of [`Ledger::update`].
pub struct Update {
    /// Whether every workload was evaluated again.
    pub full: bool,
    /// Per policy (snapshot order), each re-evaluated workload it matches with the rules it
    /// fails; every matched workload when `complete`.
    pub failing: Vec<Vec<(Arc<Tracked>, RuleSet)>>,
    /// Whether `failing` holds every matched workload.
    pub complete: bool,
    /// `(policy, Kind/namespace/name)` pairs that no longer exist (the workload is gone or
    /// the policy no longer matches it), when not `complete`.
    pub forget: Vec<(String, String)>,
    /// The reports whose content differs from what the cluster holds, and either every
    /// desired key (a full pass: `complete`) or the reports no longer desired (`gone`); its
    /// `total` is left to the caller ([`Ledger::reports`]).
    pub reports: ReportPlan,
    /// Re-evaluated workloads that could not be decoded, with the reason.
    pub undecodable: Vec<(Arc<Tracked>, String)>,
    /// Time spent evaluating under each policy.
    pub took: Vec<Duration>,
    /// How many workloads were evaluated.
    pub evaluated: usize,
}

/// What an [`Ledger::update`] reads besides the workloads.
pub struct Round<'a> {
    /// The compiled policies and the context.
    pub snapshot: &'a Snapshot,
    /// The evaluation instant.
    pub now: Timestamp,
    /// Whether to keep failing sets for Events (leader only).
    pub leader: bool,
    /// Whether `failing` must hold every matched workload (the Event memory was re-seeded).
    pub all_events: bool,
    /// Reports to build, when asked.
    pub reports: Option<ReportRequest<'a>>,
}

fn report_key(t: &Tracked) -> ReportKey {
    (
        t.namespace.clone(),
        crate::reports::report_name(t.kind, &t.name),
    )
}

/// The judgement of one workload under every policy (and its report, when asked).
fn judge(
    t: &Tracked,
    round: &Round<'_>,
    took: &mut [Duration],
    clock: fn() -> Instant,
) -> (Judged, Option<Report>, Option<String>) {
    let w = match t.workload() {
        Ok(w) => w,
        Err(e) => return (Judged::Undecodable, None, Some(e.to_string())),
    };
    let snap = round.snapshot;
    let now = round.now;
    let mut wake: Option<Timestamp> = None;
    let mut earliest = |t: Option<Timestamp>| {
        if let Some(t) = t.filter(|t| *t > now) {
            wake = Some(wake.map_or(t, |w| w.min(t)));
        }
    };
    let overdue = crate::rules::cronjob_overdue_at(&w, &snap.context);
    let mut evaluations: Vec<(&str, Evaluation)> = Vec::new();
    let mut marks = Vec::with_capacity(snap.policies.len());
    for (policy, took) in snap.policies.iter().zip(took.iter_mut()) {
        let started = clock();
        let mark = if policy.matches(&w, &snap.context) {
            earliest(overdue);
            let evaluation = policy.evaluate(&w, &snap.context, now);
            earliest(evaluation.next_expiry);
            earliest(super::round::lease_stale_at(&snap.context, &w, policy));
            let mark = Mark {
                tally: Tally::of(&evaluation),
                expiries: annotation_expiries(&evaluation),
            };
            if round.reports.is_some() {
                evaluations.push((policy.name.as_str(), evaluation));
            }
            Some(mark)
        } else {
            None
        };
        marks.push(mark);
        *took += clock().saturating_duration_since(started);
    }
    let report = round.reports.and_then(|request| {
        let subject = Subject {
            kind: t.kind,
            namespace: &t.namespace,
            name: &t.name,
            uid: t.uid.as_deref(),
        };
        let pairs: Vec<(&str, &Evaluation)> = evaluations.iter().map(|(p, e)| (*p, e)).collect();
        crate::reports::build(&subject, &pairs, request.options)
    });
    let lease = w.lease_name().and_then(|value| {
        let (namespace, name) = value.split_once('/').unwrap_or((&w.namespace, value));
        (!namespace.is_empty() && !name.is_empty())
            .then(|| Box::new((namespace.to_owned(), name.to_owned())))
    });
    let judged = Judged::Evaluated {
        marks: marks.into_boxed_slice(),
        wake,
        report: report.as_ref().map(Report::content_digest),
        lease,
    };
    (judged, report, None)
}

fn annotation_expiries(evaluation: &Evaluation) -> Option<Box<[Timestamp]>> {
    let found: Vec<Timestamp> = evaluation
        .results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Exempt { exemption, .. }
                if exemption.source == ExemptionSource::Annotation =>
            {
                exemption.expires
            }
            _ => None,
        })
        .collect();
    (!found.is_empty()).then(|| found.into_boxed_slice())
}

impl Ledger {
    /// How many workloads it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no workload.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The heap it holds (entries, marks and per-policy lists; the workloads are the stores').
    pub fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(ByName, Entry)>() + 1;
        let entries: usize = self
            .entries
            .values()
            .map(|e| match &e.judged {
                Judged::Undecodable => 0,
                Judged::Evaluated { marks, lease, .. } => {
                    marks.len() * std::mem::size_of::<Option<Mark>>()
                        + marks
                            .iter()
                            .flatten()
                            .filter_map(|m| m.expiries.as_ref())
                            .map(|x| x.len() * 16)
                            .sum::<usize>()
                        + lease.as_ref().map_or(0, |l| 48 + l.0.len() + l.1.len())
                }
            })
            .sum();
        // B-tree elements with their share of the nodes (about 1.5 times the element).
        let lists: usize = self
            .aggregates
            .iter()
            .map(|a| {
                a.listed.len() * std::mem::size_of::<Listed>() * 3 / 2
                    + a.undecided.iter().map(BTreeSet::len).sum::<usize>() * 12
                    + a.series.len() * (32 + a.rules.len() * 4)
                    + a.expiring.len() * 9
            })
            .sum();
        self.entries.capacity() * entry + entries + lists
    }

    /// Whether the next update must evaluate everything (see the module docs).
    fn needs_full(&self, round: &Round<'_>, dirt: &Dirt, basis: &Basis) -> bool {
        dirt.everything
            || self.basis.as_ref() != Some(basis)
            || self.wake.is_some_and(|w| w <= round.now)
    }

    fn forget_entry(&mut self, k: &ByName, judged: &Judged) {
        for (agg, mark) in self.aggregates.iter_mut().zip(judged.marks()) {
            if let Some(mark) = mark {
                agg.apply(&k.0, mark, false);
            }
        }
    }

    fn record_entry(&mut self, t: &Arc<Tracked>, judged: &Judged) {
        for (agg, mark) in self.aggregates.iter_mut().zip(judged.marks()) {
            if let Some(mark) = mark {
                agg.apply(t, mark, true);
            }
        }
    }

    /// Brings the ledger up to date: evaluates again what `dirt` says a change can affect
    /// (everything when a full pass is due, see the module docs).
    pub fn update(
        &mut self,
        round: &Round<'_>,
        workloads: &dyn Workloads,
        dirt: &Dirt,
        clock: fn() -> Instant,
    ) -> Update {
        let snap = round.snapshot;
        let basis = Basis {
            policies: snap
                .policies
                .iter()
                .map(|p| (p.name.clone(), p.generation))
                .collect(),
            reports: round.reports.map(|r| r.options),
        };
        let full = self.needs_full(round, dirt, &basis);
        let n = snap.policies.len();
        let complete = full || (round.leader && round.all_events);
        let mut out = Update {
            full,
            failing: vec![Vec::new(); n],
            complete,
            forget: Vec::new(),
            reports: ReportPlan {
                complete: full,
                ..ReportPlan::default()
            },
            undecodable: Vec::new(),
            took: vec![Duration::ZERO; n],
            evaluated: 0,
        };
        // (the entry's key if it has one, the stored workload if any)
        let mut todo: Vec<(Option<ByName>, Option<Arc<Tracked>>)> = Vec::new();
        if full {
            self.entries.clear();
            self.aggregates = snap.policies.iter().map(|p| Aggregate::new(p)).collect();
            self.basis = Some(basis);
            todo.extend(workloads.all().into_iter().map(|t| (None, Some(t))));
        } else {
            let mut seen: hashbrown::HashSet<ByName> = hashbrown::HashSet::new();
            for key in &dirt.workloads {
                let Some(names) = Names::parse(key) else {
                    continue;
                };
                let current = workloads.get(names.kind, names.namespace, names.name);
                let entry = self.entries.get_key_value(&names).map(|(k, _)| k.clone());
                if let Some(k) = entry.clone().or_else(|| current.clone().map(ByName))
                    && seen.insert(k)
                {
                    todo.push((entry, current));
                }
            }
            if !dirt.namespaces.is_empty() || !dirt.leases.is_empty() {
                for (k, e) in &self.entries {
                    if (dirt.namespaces.contains(&k.0.namespace)
                        || e.judged.names_lease(&dirt.leases))
                        && !seen.contains(k)
                    {
                        let current = workloads.get(k.0.kind.as_str(), &k.0.namespace, &k.0.name);
                        todo.push((Some(k.clone()), current));
                    }
                }
            }
        }
        for (key, current) in todo {
            let old = key.and_then(|k| self.entries.remove_entry(&k));
            if let Some((k, e)) = &old {
                self.forget_entry(k, &e.judged);
            }
            let Some(t) = current else {
                // Gone from the store.
                if let Some((k, e)) = old {
                    if round.leader && !complete {
                        for (policy, mark) in snap.policies.iter().zip(e.judged.marks()) {
                            if mark.is_some() {
                                out.forget.push((policy.name.clone(), k.0.key()));
                            }
                        }
                    }
                    if e.judged.report().is_some() {
                        out.reports.gone.push(report_key(&k.0));
                    }
                }
                continue;
            };
            let (judged, report, error) = judge(&t, round, &mut out.took, clock);
            out.evaluated += 1;
            if let Some(e) = error {
                out.undecodable.push((Arc::clone(&t), e));
            }
            if round.leader {
                push_failing(&mut out.failing, &t, &judged);
                if !complete && let Some((_, old)) = &old {
                    forget_unmatched(&mut out.forget, snap, &t, &old.judged, &judged);
                }
            }
            match (report, round.reports) {
                (Some(report), Some(request)) if full => out.reports.add(report, request.held),
                (Some(report), Some(request)) => out.reports.offer(report, request.held),
                _ if old
                    .as_ref()
                    .is_some_and(|(_, o)| o.judged.report().is_some()) =>
                {
                    out.reports.gone.push(report_key(&t));
                }
                _ => {}
            }
            self.record_entry(&t, &judged);
            self.entries.insert(ByName(t), Entry { judged });
        }
        if !full && complete && round.leader {
            for (k, e) in &self.entries {
                push_failing(&mut out.failing, &k.0, &e.judged);
            }
            // Those evaluated this round are in twice: keep each pair once.
            for list in &mut out.failing {
                let mut once = hashbrown::HashSet::new();
                list.retain(|(t, _)| once.insert(ByName(Arc::clone(t))));
            }
        }
        self.wake = self
            .entries
            .values()
            .filter_map(|e| e.judged.wake())
            .chain(
                snap.policies
                    .iter()
                    .filter_map(|p| p.next_transition(round.now)),
            )
            .filter(|w| *w > round.now)
            .min();
        out
    }

    /// How many reports are desired (workloads with one).
    pub fn reports(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.judged.report().is_some())
            .count()
    }

    /// The earliest instant after the last update at which a verdict changes by itself (an
    /// exemption expiry, a Lease going stale, a CronJob falling overdue, an `enforceAfter`).
    pub fn wake(&self) -> Option<Timestamp> {
        self.wake
    }

    /// Builds the status of the policy at `index` of `snapshot` from its aggregate: the
    /// counts as kept; the violation list, the reason of each undecided rule and the expiring
    /// annotation exemptions from evaluating again only the workloads those lists show.
    pub fn status<'p>(
        &self,
        policy: &'p CompiledPolicy,
        index: usize,
        round: &Round<'_>,
        max_violations: usize,
    ) -> StatusBuilder<'p> {
        let mut builder = StatusBuilder::new(policy, round.now, max_violations);
        let Some(agg) = self.aggregates.get(index) else {
            return builder;
        };
        let horizon = builder.horizon();
        let now = round.now;
        builder.set_counts(
            agg.summary.clone(),
            agg.rules.iter().zip(&agg.failing).zip(&agg.undecided).map(
                |(((_, id, severity), failing), undecided)| {
                    (
                        *id,
                        *severity,
                        *failing,
                        u32::try_from(undecided.len()).unwrap_or(u32::MAX),
                    )
                },
            ),
            agg.listed.len(),
        );
        // Which details each workload the lists show gives.
        let none = Want {
            violations: false,
            reasons: RuleSet::new(),
            expiring: false,
        };
        let mut wants: HashMap<ByName, Want> = HashMap::new();
        for l in agg.listed.iter().take(max_violations) {
            wants.entry(l.workload.clone()).or_insert(none).violations = true;
        }
        for ((bit, _, _), undecided) in agg.rules.iter().zip(&agg.undecided) {
            if let Some(first) = undecided.first() {
                wants.entry(first.clone()).or_insert(none).reasons.add(*bit);
            }
        }
        for k in &agg.expiring {
            let soon = self
                .entries
                .get(k)
                .and_then(|e| e.judged.marks().get(index).cloned().flatten())
                .and_then(|m| m.expiries)
                .is_some_and(|x| x.iter().any(|t| *t > now && *t <= horizon));
            if soon {
                wants.entry(k.clone()).or_insert(none).expiring = true;
            }
        }
        for (k, want) in wants {
            // It decoded when it was judged; the store keeps the same bytes.
            let Ok(w) = k.0.workload() else { continue };
            let evaluation = policy.evaluate(&w, &round.snapshot.context, now);
            builder.detail(&w, &evaluation, want);
        }
        builder
    }

    /// The policy at `index`'s metric counts: failing workloads per (namespace, rule id,
    /// severity), and matched workloads per verdict (in [`VERDICTS`] order).
    pub fn series(&self, index: usize) -> (Vec<Series<'_>>, [i64; 4]) {
        let Some(agg) = self.aggregates.get(index) else {
            return (Vec::new(), [0; 4]);
        };
        let mut out = Vec::new();
        for (namespace, counts) in &agg.series {
            for ((_, id, severity), n) in agg.rules.iter().zip(counts.iter()) {
                if *n > 0 {
                    out.push((namespace.as_ref(), *id, severity.as_str(), i64::from(*n)));
                }
            }
        }
        (out, agg.verdicts)
    }

    /// Every workload's key with its tallies and report digest, sorted (for comparisons).
    #[cfg(test)]
    pub fn summary(&self) -> Vec<(String, Vec<Option<Tally>>, Option<Digest>)> {
        let mut out: Vec<_> = self
            .entries
            .iter()
            .map(|(k, e)| {
                (
                    k.0.key(),
                    e.judged
                        .marks()
                        .iter()
                        .map(|m| m.as_ref().map(|m| m.tally))
                        .collect(),
                    e.judged.report(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

fn push_failing(failing: &mut [Vec<(Arc<Tracked>, RuleSet)>], t: &Arc<Tracked>, judged: &Judged) {
    for (out, mark) in failing.iter_mut().zip(judged.marks()) {
        if let Some(mark) = mark {
            out.push((Arc::clone(t), mark.tally.failing));
        }
    }
}

/// The pairs of `t` whose policy matched it before and no longer does.
fn forget_unmatched(
    forget: &mut Vec<(String, String)>,
    snap: &Snapshot,
    t: &Tracked,
    old: &Judged,
    new: &Judged,
) {
    let new_marks = new.marks();
    for (i, (policy, mark)) in snap.policies.iter().zip(old.marks()).enumerate() {
        if mark.is_some() && new_marks.get(i).is_none_or(Option::is_none) {
            forget.push((policy.name.clone(), t.key()));
        }
    }
}

/// The (namespace, name, kind) order the lists use to break ties.
fn order(t: &Tracked) -> (&str, &str, &'static str) {
    (&t.namespace, &t.name, t.kind.as_str())
}
#[cfg(test)]
mod tests {
    //! Incremental rounds against full evaluations, over random change sequences applied to
    //! the controller's own stores (so the changes are recorded exactly as the watches record
    //! them).

    use std::collections::{BTreeMap, HashMap, HashSet};
    use std::sync::Arc;
    use std::time::Instant;

    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{Namespace, Service};
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use k8s_openapi::jiff::{SignedDuration, Timestamp};
    use kube::Resource;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::api::ProductionPolicy;
    use crate::controller::Stores;
    use crate::controller::events::EventMemory;
    use crate::controller::reports::ReportRequest;
    use crate::controller::round::{self, EventStep, Inputs};
    use crate::controller::status::{self, ReportsState};
    use crate::controller::stores::{Slim, Store, key};
    use crate::engine::Workload;
    use crate::reports::{ReportApi, ReportOptions};
    use crate::rules::CATALOG;
    use crate::rules::testing::{now, rule_toggles};

    const NAMESPACES: [&str; 3] = ["shop", "pay", "ops"];
    const WORKLOADS: u8 = 9;

    /// One change to the cluster.
    #[derive(Clone, Debug)]
    enum Change {
        /// Creates or replaces Deployment `i` (namespace `i % 3`).
        Workload {
            i: u8,
            probe: bool,
            app: u8,
            lease: u8,
            exempt: bool,
        },
        /// Deletes Deployment `i`.
        Delete(u8),
        /// A PDB over `app` in a namespace, or none.
        Pdb { ns: u8, app: u8, present: bool },
        /// A Service over `app` in a namespace, or none.
        Service { ns: u8, app: u8, present: bool },
        /// Lease `lock` in a namespace renewed `ago` seconds before now, or none.
        Lease { ns: u8, ago: u8, present: bool },
        /// The `tier` label of a namespace.
        Labels { ns: u8, prod: bool },
        /// An HPA over Deployment `i` with `min` replicas, or none.
        Hpa { i: u8, min: u8, present: bool },
        /// A standalone Job in a namespace (a workload of its own), or none.
        Job { ns: u8, image: u8, present: bool },
        /// Time passes.
        Tick(u8),
        /// The second policy is edited (its rules toggle).
        Policy,
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            4 => (0..WORKLOADS, any::<bool>(), 0..2u8, 0..3u8, any::<bool>()).prop_map(
                |(i, probe, app, lease, exempt)| Change::Workload { i, probe, app, lease, exempt }
            ),
            1 => (0..WORKLOADS).prop_map(Change::Delete),
            1 => (0..3u8, 0..2u8, any::<bool>()).prop_map(|(ns, app, present)| Change::Pdb { ns, app, present }),
            1 => (0..3u8, 0..2u8, any::<bool>()).prop_map(|(ns, app, present)| Change::Service { ns, app, present }),
            1 => (0..3u8, 0..30u8, any::<bool>()).prop_map(|(ns, ago, present)| Change::Lease { ns, ago, present }),
            1 => (0..3u8, any::<bool>()).prop_map(|(ns, prod)| Change::Labels { ns, prod }),
            1 => (0..WORKLOADS, 1..4u8, any::<bool>()).prop_map(|(i, min, present)| Change::Hpa { i, min, present }),
            1 => (0..3u8, 0..2u8, any::<bool>()).prop_map(|(ns, image, present)| Change::Job { ns, image, present }),
            1 => (1..40u8).prop_map(Change::Tick),
            1 => Just(Change::Policy),
        ]
    }

    fn decode<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn put<K: Resource + Slim>(store: &Store<K::Stored>, obj: K) {
        store.put(key(&obj), Arc::new(obj.slim()), K::matters);
    }

    fn at(start: Timestamp, secs: i64) -> Timestamp {
        start
            .checked_add(SignedDuration::from_secs(secs))
            .unwrap_or(start)
    }

    fn policy(name: &str, yaml_spec: &str, generation: i64) -> Arc<ProductionPolicy> {
        let yaml = format!(
            "apiVersion: prodready.dev/v1alpha1\nkind: ProductionPolicy\nmetadata: {{name: {name}, generation: {generation}}}\nspec:\n{yaml_spec}"
        );
        Arc::new(serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}")))
    }

    fn toggles(enabled: &[&str]) -> String {
        format!("  rules: {}\n", rule_toggles(enabled))
    }

    /// The two policies: one over every namespace labelled `tier: prod`, allowing annotation
    /// exemptions; one over `shop` with a policy exemption that expires, whose rules an edit
    /// toggles.
    fn policies(start: Timestamp, edited: bool) -> Vec<Arc<ProductionPolicy>> {
        let first = policy(
            "prod",
            &format!(
                "  match: {{namespaceSelector: {{matchLabels: {{tier: prod}}}}}}\n  allowAnnotationExemptions: true\n{}",
                toggles(&[
                    "disruption-budget",
                    "liveness-probe",
                    "leader-lease",
                    "replicas-ha",
                    "service-monitor",
                    "graceful-shutdown",
                ])
            ),
            1,
        );
        let rules: &[&str] = if edited {
            &["liveness-probe", "replicas-ha"]
        } else {
            &["disruption-budget", "liveness-probe"]
        };
        let second = policy(
            "shop",
            &format!(
                "  match: {{namespaces: [shop]}}\n  exemptions: [{{rules: [disruption-budget], names: [w3], reason: migration, expires: \"{}\"}}]\n{}",
                at(start, 45),
                toggles(rules)
            ),
            if edited { 2 } else { 1 },
        );
        vec![first, second]
    }

    fn deployment(
        start: Timestamp,
        i: u8,
        probe: bool,
        app: u8,
        lease: u8,
        exempt: bool,
    ) -> Deployment {
        let ns = NAMESPACES[usize::from(i % 3)];
        let mut annotations = serde_json::Map::new();
        if lease > 0 {
            annotations.insert("prodready.dev/single-runner".into(), json!("true"));
            let name = if lease == 1 { "lock" } else { "ops/lock" };
            annotations.insert("prodready.dev/lease".into(), json!(name));
        }
        if exempt {
            annotations.insert("prodready.dev/exempt".into(), json!("disruption-budget"));
            annotations.insert("prodready.dev/exempt-reason".into(), json!("migration"));
            annotations.insert(
                "prodready.dev/exempt-until".into(),
                json!(at(start, 30).to_string()),
            );
        }
        let mut container = json!({
            "name": "app",
            "image": "shop:1.0",
            "ports": [{"name": "http", "containerPort": 8080}],
        });
        if probe {
            container["livenessProbe"] = json!({"httpGet": {"path": "/", "port": 8080}});
        }
        decode(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": format!("w{i}"), "namespace": ns, "uid": format!("u-{i}"), "annotations": annotations},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": format!("a{app}")}},
                "template": {
                    "metadata": {"labels": {"app": format!("a{app}")}},
                    "spec": {"containers": [container]},
                },
            },
        }))
    }

    fn apply(stores: &Stores, start: Timestamp, clock: Timestamp, change: &Change) {
        let ns = |n: u8| NAMESPACES[usize::from(n % 3)];
        match *change {
            Change::Workload {
                i,
                probe,
                app,
                lease,
                exempt,
            } => put(
                &stores.deployments,
                deployment(start, i, probe, app, lease, exempt),
            ),
            Change::Delete(i) => {
                stores.deployments.remove(&format!("{}/w{i}", ns(i)));
            }
            Change::Pdb {
                ns: n,
                app,
                present,
            } => {
                if present {
                    put(
                        &stores.pdbs,
                        decode::<PodDisruptionBudget>(json!({
                            "metadata": {"name": "pdb", "namespace": ns(n)},
                            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": format!("a{app}")}}},
                        })),
                    );
                } else {
                    stores.pdbs.remove(&format!("{}/pdb", ns(n)));
                }
            }
            Change::Service {
                ns: n,
                app,
                present,
            } => {
                if present {
                    put(
                        &stores.services,
                        decode::<Service>(json!({
                            "metadata": {"name": "svc", "namespace": ns(n)},
                            "spec": {"selector": {"app": format!("a{app}")}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
                        })),
                    );
                } else {
                    stores.services.remove(&format!("{}/svc", ns(n)));
                }
            }
            Change::Lease {
                ns: n,
                ago,
                present,
            } => {
                if present {
                    let renewed = at(clock, -i64::from(ago));
                    put(
                        &stores.leases,
                        decode::<Lease>(json!({
                            "metadata": {"name": "lock", "namespace": ns(n)},
                            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 10, "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()},
                        })),
                    );
                } else {
                    stores.leases.remove(&format!("{}/lock", ns(n)));
                }
            }
            Change::Labels { ns: n, prod } => {
                let labels = if prod {
                    json!({"tier": "prod"})
                } else {
                    json!({"tier": "dev"})
                };
                put(
                    &stores.namespaces,
                    decode::<Namespace>(json!({"metadata": {"name": ns(n), "labels": labels}})),
                );
            }
            Change::Hpa { i, min, present } => {
                if present {
                    put(
                        &stores.autoscalers,
                        decode::<HorizontalPodAutoscaler>(json!({
                            "metadata": {"name": format!("w{i}"), "namespace": ns(i)},
                            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("w{i}")}, "minReplicas": min, "maxReplicas": 6},
                        })),
                    );
                } else {
                    stores.autoscalers.remove(&format!("{}/w{i}", ns(i)));
                }
            }
            Change::Job {
                ns: n,
                image,
                present,
            } => {
                if present {
                    let image = if image == 0 {
                        "shop:1.0"
                    } else {
                        "shop:latest"
                    };
                    put(
                        &stores.jobs,
                        decode::<k8s_openapi::api::batch::v1::Job>(json!({
                            "metadata": {"name": "once", "namespace": ns(n), "uid": format!("job-{n}")},
                            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "app", "image": image}]}}},
                        })),
                    );
                } else {
                    stores.jobs.remove(&format!("{}/once", ns(n)));
                }
            }
            Change::Tick(_) | Change::Policy => {}
        }
    }

    /// The cluster's reports, as a sink would keep them after applying a plan.
    fn write_reports(
        held: &mut HashMap<ReportKey, Digest>,
        plan: super::super::reports::ReportPlan,
    ) {
        let stored = held.clone();
        let (apply, delete) = super::super::reports::changes(&stored, plan);
        for r in apply {
            held.insert(
                (
                    r.metadata.namespace.clone().unwrap_or_default(),
                    r.metadata.name.clone().unwrap_or_default(),
                ),
                r.content_digest(),
            );
        }
        for k in delete {
            held.remove(&k);
        }
    }

    /// Applies a plan's Event steps to `memory` the way the controller and its publisher do
    /// (every announcement published).
    fn remember(memory: &mut EventMemory, plan: &round::Plan<'_>) {
        let mut seen = HashSet::new();
        for p in &plan.policies {
            for step in round::event_steps(memory, &p.policy.name, p.failing.clone()) {
                seen.insert(step.key().clone());
                match step {
                    EventStep::Announce { key, failing, .. } => {
                        memory.record(&key.0, &key.1, failing)
                    }
                    EventStep::Settle { key } => memory.record(&key.0, &key.1, RuleSet::new()),
                    EventStep::Unchanged { .. } => {}
                }
            }
        }
        if plan.events_complete {
            memory.retain(&seen);
        } else {
            for (policy, workload) in &plan.forget {
                memory.forget(policy, workload);
            }
        }
    }

    /// What must be equal between the two: statuses, metric series, the wake-up instant.
    type Outcome = (
        Vec<crate::api::ProductionPolicyStatus>,
        Vec<String>,
        Option<Timestamp>,
    );

    fn outcome(plan: &round::Plan<'_>) -> Outcome {
        let mut series: Vec<String> = plan
            .violations
            .iter()
            .map(|(l, n)| format!("{l:?}={n}"))
            .chain(plan.workloads.iter().map(|(l, n)| format!("{l:?}={n}")))
            .collect();
        series.sort();
        (
            plan.policies.iter().map(|p| p.status.clone()).collect(),
            series,
            plan.wake,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// After every change of a random sequence, the incremental round's statuses, metric
        /// series, wake-up instant, ledger, Event memory and reports equal those of a full
        /// evaluation of the same stores, and each full evaluation's statuses equal the
        /// straightforward status builder's over every evaluation.
        #[test]
        fn incremental_rounds_equal_full_evaluation(changes in proptest::collection::vec(change(), 1..40)) {
            let start = now();
            let stores = Stores::default();
            for n in 0..3u8 {
                apply(&stores, start, start, &Change::Labels { ns: n, prod: n != 2 });
            }
            let options = ReportOptions { api: ReportApi::OpenReports, include_passes: false, cluster: None };
            let mut ledger = Ledger::default();
            let mut memory = (EventMemory::default(), EventMemory::default());
            let mut held: (HashMap<ReportKey, Digest>, HashMap<ReportKey, Digest>) = Default::default();
            let mut clock = start;
            let mut edited = false;
            let mut rounds = (0, 0); // (incremental, full) among the incremental ledger's rounds
            for change in std::iter::once(Change::Tick(0)).chain(changes) {
                apply(&stores, start, clock, &change);
                match change {
                    Change::Tick(s) => clock = at(clock, i64::from(s)),
                    Change::Policy => {
                        edited = !edited;
                        stores.policies.put(
                            "/shop".to_owned(),
                            Arc::clone(&policies(start, edited)[1]),
                            |_, _| true,
                        );
                    }
                    _ => {}
                }
                let objects = policies(start, edited);
                let dirt = stores.take_dirt();
                let workloads = stores.workloads();
                // The incremental side reads the context the controller caches between rounds;
                // the full side one built anew from every store.
                let (snap, invalid) = round::snapshot(&objects, stores.context(), clock, &CATALOG);
                let (fresh_snap, _) = round::snapshot(&objects, stores.fresh_context(), clock, &CATALOG);
                prop_assert!(invalid.is_empty());
                let inc_held = held.0.clone();
                let inc_lookup = move |k: &ReportKey| inc_held.get(k).copied();
                let full_held = held.1.clone();
                let full_lookup = move |k: &ReportKey| full_held.get(k).copied();
                macro_rules! inputs {
                    ($snap:expr, $held:expr) => {
                        Inputs {
                            snapshot: $snap,
                            objects: &objects,
                            invalid: &invalid,
                            workloads: &stores,
                            now: clock,
                            max_violations: 2,
                            leader: true,
                            all_events: false,
                            reports_state: ReportsState::Installed("openreports.io/v1alpha1"),
                            reports: Some(ReportRequest { options, held: $held }),
                        }
                    };
                }
                let inc_inputs = inputs!(&snap, &inc_lookup);
                let inc = round::plan(&mut ledger, &inc_inputs, &dirt, Instant::now);
                let mut fresh = Ledger::default();
                let full_inputs = inputs!(&fresh_snap, &full_lookup);
                let full = round::plan(&mut fresh, &full_inputs, &Dirt::default(), Instant::now);
                prop_assert!(full.full);
                if inc.full { rounds.1 += 1 } else { rounds.0 += 1 }
                prop_assert_eq!(outcome(&inc), outcome(&full), "after {:?}", change);
                prop_assert_eq!(ledger.summary(), fresh.summary(), "after {:?}", change);
                remember(&mut memory.0, &inc);
                remember(&mut memory.1, &full);
                prop_assert_eq!(format!("{:?}", sorted(&memory.0)), format!("{:?}", sorted(&memory.1)), "after {:?}", change);
                if let Some(r) = inc.reports { write_reports(&mut held.0, r) }
                if let Some(r) = full.reports { write_reports(&mut held.1, r) }
                prop_assert_eq!(&held.0, &held.1, "after {:?}", change);

                // The full evaluation against the straightforward builder, in (namespace,
                // name, kind) order.
                let mut decoded: Vec<Workload> = workloads.iter().filter_map(|t| t.workload().ok()).collect();
                decoded.sort_by(|a, b| (&a.namespace, &a.name, a.kind.as_str()).cmp(&(&b.namespace, &b.name, b.kind.as_str())));
                for (policy, p) in fresh_snap.policies.iter().zip(&full.policies) {
                    let evaluated: Vec<status::Evaluated<'_>> = decoded
                        .iter()
                        .filter(|w| policy.matches(w, &fresh_snap.context))
                        .map(|w| status::Evaluated { workload: w, evaluation: policy.evaluate(w, &fresh_snap.context, clock) })
                        .collect();
                    let mut want = status::build_status(policy, &evaluated, clock, 2, None);
                    if let Some(c) = status::reports_condition(ReportsState::Installed("openreports.io/v1alpha1"), policy.generation, clock, None) {
                        want.conditions.push(c);
                    }
                    prop_assert_eq!(&p.status, &want, "policy {}", policy.name);
                }
            }
            // Not every round was a full pass (the test exercises the incremental path).
            prop_assert!(rounds.0 > 0 || rounds.1 <= 2, "{:?}", rounds);
        }
    }

    fn sorted(memory: &EventMemory) -> BTreeMap<(String, String), RuleSet> {
        memory.pairs().into_iter().collect()
    }
}
