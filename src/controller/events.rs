//! Kubernetes Events on workloads: a Warning `ProductionReadinessViolation` when a workload's
//! set of failing rules changes (the note lists the rule ids), a Normal `ProductionReady` when
//! it becomes compliant again.
//!
//! Deduplication is a map `(policy, workload) → last published rule set`, in memory. It is
//! seeded when this replica becomes leader from the Events prodready already published (one
//! list call, `reportingComponent=prodready`): the note of the latest one per (policy,
//! workload) states the set, so a restart or a leader change does not repeat an Event whose
//! set has not changed. Events expire in the API server after an hour by default; after
//! that a restart re-announces standing violations once, which is the intended reminder.
//! Each round publishes at most a bounded number of Events; the rest follow next round.
//!
//! An Event is created directly ([`build`] here, the create call in the reconcile shell), not
//! through kube's `Recorder`: that one keeps every Event it created to count repeats into a
//! series, which at ten thousand violating workloads is tens of MiB this memory makes
//! needless, since a (policy, workload) is announced only when its state changes.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;

/// Reason of the Warning Event on a violating workload.
pub const REASON_VIOLATION: &str = "ProductionReadinessViolation";
/// Reason of the Normal Event on a workload that became compliant.
pub const REASON_READY: &str = "ProductionReady";
/// Reason of the Warning Event on an invalid policy.
pub const REASON_INVALID_POLICY: &str = "InvalidPolicy";
/// The reporting controller name of every Event prodready publishes.
pub const REPORTER: &str = "prodready";

/// The most bytes of an Event's note: under the API server's 1 KiB limit.
pub const NOTE_LIMIT: usize = 1000;
/// The longest object name the API server accepts (a DNS subdomain).
const NAME_LIMIT: usize = 253;
/// The annotation naming the cluster (`--cluster-name`) on every Event prodready publishes.
pub const CLUSTER_ANNOTATION: &str = crate::reports::CLUSTER_LABEL;

/// Where the Event on a cluster-scoped object (a policy) goes, as kube's `Recorder` put it.
const CLUSTER_EVENTS_NAMESPACE: &str = "default";

const NOTE_PREFIX: &str = "ProductionPolicy ";
const FAILING: &str = ": failing rules: ";
const COMPLIANT: &str = ": all rules pass";

/// A set of rule ids, one bit per rule of the catalog: what the Event memory, the outbox and a
/// round's failing sets hold per workload (8 bytes, where a tree of strings took ≈ 400).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RuleSet(u64);

/// The bit of an id that is not (or no longer) in the catalog, read from an old Event: such a
/// set equals no set a round computes, so the workload's state is announced again.
const UNKNOWN_RULE: u64 = 1 << 63;

impl RuleSet {
    /// The empty set.
    pub const fn new() -> Self {
        RuleSet(0)
    }

    /// Every rule (and the unknown-rule bit).
    pub const ALL: RuleSet = RuleSet(u64::MAX);

    /// Adds a rule id.
    pub fn insert(&mut self, id: &str) {
        self.0 |= Self::bit(id);
    }

    /// Whether it holds no rule.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The bit of a catalog id (the unknown-rule bit for an id not in the catalog).
    pub fn bit(id: &str) -> u64 {
        crate::rules::CATALOG
            .iter()
            .position(|r| r.id == id)
            .filter(|i| *i < 63)
            .map_or(UNKNOWN_RULE, |i| 1 << i)
    }

    /// Whether it holds every rule of `bit` (from [`RuleSet::bit`]).
    pub fn has(&self, bit: u64) -> bool {
        self.0 & bit == bit
    }

    /// Adds the rule of `bit` (from [`RuleSet::bit`]).
    pub fn add(&mut self, bit: u64) {
        self.0 |= bit;
    }

    /// The catalog ids it holds, sorted (as Event notes list them).
    pub fn ids(&self) -> Vec<&'static str> {
        let mut ids: Vec<&'static str> = crate::rules::CATALOG
            .iter()
            .enumerate()
            .filter(|(i, _)| *i < 63 && self.0 & (1 << i) != 0)
            .map(|(_, r)| r.id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

impl<S: AsRef<str>> FromIterator<S> for RuleSet {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut set = RuleSet::new();
        for id in iter {
            set.insert(id.as_ref());
        }
        set
    }
}

impl<S: AsRef<str>, const N: usize> From<[S; N]> for RuleSet {
    fn from(ids: [S; N]) -> Self {
        ids.into_iter().collect()
    }
}

/// The note of a workload Event: which policy, which rules (empty = compliant).
pub fn note(policy: &str, rules: &RuleSet) -> String {
    if rules.is_empty() {
        format!("{NOTE_PREFIX}{policy}{COMPLIANT}")
    } else {
        format!("{NOTE_PREFIX}{policy}{FAILING}{}", rules.ids().join(", "))
    }
}

/// Reads a note written by [`note`] back.
pub fn parse_note(note: &str) -> Option<(String, RuleSet)> {
    let rest = note.strip_prefix(NOTE_PREFIX)?;
    if let Some(policy) = rest.strip_suffix(COMPLIANT) {
        return Some((policy.to_owned(), RuleSet::new()));
    }
    let (policy, rules) = rest.split_once(FAILING)?;
    Some((policy.to_owned(), rules.split(", ").collect()))
}

/// An Event's severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Nothing to act on.
    Normal,
    /// Something to look at.
    Warning,
}

impl EventType {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// What an Event says about its object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// Normal or Warning.
    pub type_: EventType,
    /// `ProductionReadinessViolation`, `ProductionReady`, `InvalidPolicy`.
    pub reason: &'static str,
    /// What prodready did: `Evaluate`, `Compile`.
    pub action: &'static str,
    /// The text a person reads; cut to [`NOTE_LIMIT`].
    pub note: String,
}

/// The `events.k8s.io/v1` Event on `regarding` that prodready's replica `instance` reports at
/// `now`, with the fields kube's `Recorder` set on a first occurrence: the name is the
/// object's name and the time in nanoseconds as hex (cut so the whole stays a valid name), the
/// namespace the object's or, for a cluster-scoped object, `default`. The API server lists it
/// as a core/v1 Event whose `reportingComponent` is [`REPORTER`], as [`EventMemory::seed`]
/// reads it back. `cluster` (`--cluster-name`) becomes the [`CLUSTER_ANNOTATION`], so an
/// Event exported off the cluster (an event router, a log pipeline) still says where it
/// happened.
pub fn build(
    draft: Draft,
    regarding: ObjectReference,
    instance: &str,
    cluster: Option<&str>,
    now: Timestamp,
) -> Event {
    let namespace = regarding
        .namespace
        .clone()
        .unwrap_or_else(|| CLUSTER_EVENTS_NAMESPACE.to_owned());
    let name = event_name(regarding.name.as_deref().unwrap_or(REPORTER), now);
    Event {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace),
            annotations: cluster.map(|c| {
                std::collections::BTreeMap::from([(CLUSTER_ANNOTATION.to_owned(), c.to_owned())])
            }),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        reporting_controller: Some(REPORTER.to_owned()),
        reporting_instance: Some(instance.to_owned()),
        regarding: Some(regarding),
        reason: Some(draft.reason.to_owned()),
        note: Some(crate::text::truncate(draft.note, NOTE_LIMIT)),
        action: Some(draft.action.to_owned()),
        type_: Some(draft.type_.as_str().to_owned()),
        ..Event::default()
    }
}

/// `object.<nanoseconds as hex>`, the object's part cut (and stripped of a trailing `-` or
/// `.`, which would end a DNS label) so the name stays within [`NAME_LIMIT`].
fn event_name(object: &str, now: Timestamp) -> String {
    let suffix = format!(".{:x}", now.as_nanosecond());
    let room = NAME_LIMIT.saturating_sub(suffix.len());
    let mut end = object.len().min(room);
    while !object.is_char_boundary(end) {
        end -= 1;
    }
    let prefix = object[..end].trim_end_matches(['-', '.']);
    format!("{prefix}{suffix}")
}

/// What to publish for one workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Planned {
    /// Warning: the failing set changed and is not empty.
    Violation,
    /// Normal: it was failing and now is not.
    Ready,
}

/// The last published rule set per (policy, workload key `Kind/namespace/name`).
#[derive(Clone, Debug, Default)]
pub struct EventMemory {
    last: HashMap<(String, String), RuleSet>,
    epoch: Option<u64>,
}

impl EventMemory {
    /// How many (policy, workload) pairs it remembers.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// Whether it remembers none.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    /// Whether this memory belongs to leadership term `epoch`; a new term must reseed.
    pub fn is_for(&self, epoch: u64) -> bool {
        self.epoch == Some(epoch)
    }

    /// Starts a term from the Events already in the cluster.
    pub fn seed(&mut self, epoch: u64, events: &[CoreEvent]) {
        self.last.clear();
        self.epoch = Some(epoch);
        let mut latest: HashMap<(String, String), (i64, RuleSet)> = HashMap::new();
        for e in events {
            let reason = e.reason.as_deref().unwrap_or_default();
            if reason != REASON_VIOLATION && reason != REASON_READY {
                continue;
            }
            let Some((policy, rules)) = e.message.as_deref().and_then(parse_note) else {
                continue;
            };
            let o = &e.involved_object;
            let workload = crate::api::workload_key(
                o.kind.as_deref().unwrap_or_default(),
                o.namespace.as_deref().unwrap_or_default(),
                o.name.as_deref().unwrap_or_default(),
            );
            let when = e
                .series
                .as_ref()
                .and_then(|s| s.last_observed_time.as_ref())
                .map(|t| t.0)
                .or(e.event_time.as_ref().map(|t| t.0))
                .or(e.last_timestamp.as_ref().map(|t| t.0))
                .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
                .map_or(0, |t| t.as_microsecond());
            let slot = latest
                .entry((policy, workload))
                .or_insert((i64::MIN, RuleSet::new()));
            if when >= slot.0 {
                *slot = (when, rules);
            }
        }
        self.last = latest.into_iter().map(|(k, (_, v))| (k, v)).collect();
    }

    /// What (if anything) to publish for a workload whose failing set is `rules`.
    pub fn plan(&self, policy: &str, workload: &str, rules: &RuleSet) -> Option<Planned> {
        match self.last.get(&(policy.to_owned(), workload.to_owned())) {
            Some(prev) if prev == rules => None,
            Some(prev) if rules.is_empty() && !prev.is_empty() => Some(Planned::Ready),
            Some(_) | None if rules.is_empty() => None,
            _ => Some(Planned::Violation),
        }
    }

    /// Records that `rules` is the published (or, for a first compliant sighting, the
    /// known) state.
    pub fn record(&mut self, policy: &str, workload: &str, rules: RuleSet) {
        self.last
            .insert((policy.to_owned(), workload.to_owned()), rules);
    }

    /// Forgets what was recorded for one (policy, workload): its publication failed.
    pub fn forget(&mut self, policy: &str, workload: &str) {
        self.last.remove(&(policy.to_owned(), workload.to_owned()));
    }

    /// Forgets workloads and policies not seen in the latest round.
    pub fn retain(&mut self, seen: &std::collections::HashSet<(String, String)>) {
        self.last.retain(|k, _| seen.contains(k));
    }

    /// Every remembered pair with its set (for comparisons in tests).
    #[cfg(test)]
    pub fn pairs(&self) -> Vec<((String, String), RuleSet)> {
        self.last.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(rules: &[&str]) -> RuleSet {
        rules.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn note_round_trips() {
        let r = set(&["liveness-probe", "readiness-probe"]);
        assert_eq!(
            parse_note(&note("baseline", &r)),
            Some(("baseline".to_owned(), r))
        );
        assert_eq!(
            parse_note(&note("baseline", &RuleSet::new())),
            Some(("baseline".to_owned(), RuleSet::new()))
        );
        assert_eq!(parse_note("something else"), None);
    }

    #[test]
    fn plans_only_on_change() {
        let mut m = EventMemory::default();
        let bad = set(&["liveness-probe"]);
        assert_eq!(m.plan("p", "Deployment/a/w", &RuleSet::new()), None);
        assert_eq!(
            m.plan("p", "Deployment/a/w", &bad),
            Some(Planned::Violation)
        );
        m.record("p", "Deployment/a/w", bad);
        assert_eq!(m.plan("p", "Deployment/a/w", &bad), None);
        let worse = set(&["liveness-probe", "memory-limit"]);
        assert_eq!(
            m.plan("p", "Deployment/a/w", &worse),
            Some(Planned::Violation)
        );
        assert_eq!(
            m.plan("p", "Deployment/a/w", &RuleSet::new()),
            Some(Planned::Ready)
        );
    }

    #[test]
    fn seeds_from_latest_event() {
        let ev = |reason: &str, msg: String, micros: i64| CoreEvent {
            reason: Some(reason.to_owned()),
            message: Some(msg),
            involved_object: ObjectReference {
                kind: Some("Deployment".into()),
                namespace: Some("a".into()),
                name: Some("w".into()),
                ..ObjectReference::default()
            },
            event_time: Some(MicroTime(
                k8s_openapi::jiff::Timestamp::from_microsecond(micros).unwrap_or_default(),
            )),
            ..CoreEvent::default()
        };
        let bad = set(&["liveness-probe"]);
        let mut m = EventMemory::default();
        m.seed(
            1,
            &[
                ev(REASON_READY, note("p", &RuleSet::new()), 1),
                ev(REASON_VIOLATION, note("p", &bad), 2),
            ],
        );
        assert!(m.is_for(1));
        assert_eq!(m.plan("p", "Deployment/a/w", &bad), None);
        assert_eq!(
            m.plan("p", "Deployment/a/w", &RuleSet::new()),
            Some(Planned::Ready)
        );
    }

    fn at(nanos: i128) -> Timestamp {
        Timestamp::from_nanosecond(nanos).unwrap_or_else(|e| panic!("{e}"))
    }

    fn draft(note: String) -> Draft {
        Draft {
            type_: EventType::Warning,
            reason: REASON_VIOLATION,
            action: "Evaluate",
            note,
        }
    }

    #[test]
    fn an_event_on_a_workload_carries_what_the_recorder_set() {
        let regarding = ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some("Deployment".into()),
            namespace: Some("shop".into()),
            name: Some("web".into()),
            uid: Some("u-1".into()),
            ..ObjectReference::default()
        };
        let now = at(1_764_500_000_123_456_789);
        let note = note("baseline", &set(&["liveness-probe"]));
        let e = build(
            draft(note.clone()),
            regarding.clone(),
            "prodready-0",
            None,
            now,
        );
        assert_eq!(
            e.metadata.name.as_deref(),
            Some(format!("web.{:x}", 1_764_500_000_123_456_789_i128).as_str())
        );
        assert_eq!(e.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(e.event_time, Some(MicroTime(now)));
        assert_eq!(e.reporting_controller.as_deref(), Some(REPORTER));
        assert_eq!(e.reporting_instance.as_deref(), Some("prodready-0"));
        assert_eq!(e.regarding, Some(regarding));
        assert_eq!(e.reason.as_deref(), Some(REASON_VIOLATION));
        assert_eq!(e.action.as_deref(), Some("Evaluate"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.note, Some(note));
        // A first occurrence: no series, no related object, none of the core/v1 fields.
        assert_eq!(e.series, None);
        assert_eq!(e.related, None);
        assert_eq!(e.deprecated_count, None);
    }

    #[test]
    fn an_event_on_a_policy_goes_to_the_default_namespace() {
        let regarding = ObjectReference {
            api_version: Some("prodready.dev/v1alpha1".into()),
            kind: Some("ProductionPolicy".into()),
            name: Some("baseline".into()),
            ..ObjectReference::default()
        };
        let mut d = draft("x".repeat(5000));
        d.type_ = EventType::Normal;
        let e = build(d.clone(), regarding.clone(), "prodready-0", None, at(255));
        assert_eq!(
            e.metadata.annotations, None,
            "no --cluster-name: no annotation"
        );
        let named = build(
            d.clone(),
            regarding.clone(),
            "prodready-0",
            Some("eu-1"),
            at(255),
        );
        assert_eq!(
            named
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CLUSTER_ANNOTATION))
                .map(String::as_str),
            Some("eu-1")
        );
        assert_eq!(e.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(e.metadata.name.as_deref(), Some("baseline.ff"));
        assert_eq!(e.type_.as_deref(), Some("Normal"));
        let note = e.note.unwrap_or_default();
        assert!(note.len() <= NOTE_LIMIT && note.ends_with('…'), "{note}");
    }

    #[test]
    fn an_event_name_stays_a_valid_name_for_the_longest_object_names() {
        let now = at(1_764_500_000_123_456_789);
        let suffix = format!(".{:x}", 1_764_500_000_123_456_789_i128);
        let long = "a".repeat(NAME_LIMIT);
        let name = event_name(&long, now);
        assert_eq!(name.len(), NAME_LIMIT);
        assert!(name.ends_with(&suffix), "{name}");
        // A cut that would leave a label ending in `-` or `.` drops those too.
        let cut = NAME_LIMIT - suffix.len();
        let dashed = format!("{}-.-{}", "b".repeat(cut - 3), "c".repeat(10));
        let name = event_name(&dashed, now);
        assert_eq!(name, format!("{}{suffix}", "b".repeat(cut - 3)));
        // No object name: the reporter's, as the Recorder did.
        let e = build(
            draft(String::new()),
            ObjectReference::default(),
            "i",
            None,
            now,
        );
        assert_eq!(e.metadata.name, Some(format!("{REPORTER}{suffix}")));
    }

    #[test]
    fn a_rule_set_is_a_bit_per_catalog_rule_and_lists_its_ids_sorted() {
        assert!(
            crate::rules::CATALOG.len() < 63,
            "one bit per rule, one for unknown ids"
        );
        let s = set(&["readiness-probe", "liveness-probe"]);
        assert_eq!(s.ids(), vec!["liveness-probe", "readiness-probe"]);
        assert_eq!(s, set(&["liveness-probe", "readiness-probe"]));
        // An id from an old Event that no rule has any more: never equal to a computed set.
        let old = set(&["liveness-probe", "renamed-rule"]);
        assert_ne!(old, set(&["liveness-probe"]));
        assert!(!old.is_empty());
        assert_eq!(old.ids(), vec!["liveness-probe"]);
        for r in crate::rules::CATALOG {
            assert_eq!(set(&[r.id]).ids(), vec![r.id]);
        }
    }
}
