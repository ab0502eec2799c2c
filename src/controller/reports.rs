//! The policy report writer's state and IO: whether the report CRD is installed
//! ([`discover`], re-checked every discovery interval, so reports start without a restart
//! when the CRD appears), the reports prodready wrote as the API server holds them (a watch on
//! its label, so a report edited or deleted by hand is seen and restored), and the writes a
//! round's plan asks for ([`ReportSink::sync`]): server-side apply only of reports whose
//! content differs, deletion of those no policy matches any more, behind the leader gate.
//!
//! Every replica watches, so a new leader writes nothing that is already right; what it keeps
//! of each report is only its key and [`Report::content_digest`] (about 100 bytes with the map's
//! overhead, instead of the decoded report's 2 KiB or more: 12,000 reports held about 25 MB in every replica).
//!
//! Which writes are due is decided by the pure [`changes`]; everything else here is IO.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::status::ReportsState;
use super::stores::WatchBackoff;
use crate::error::Categorized;
use crate::kubeapi::{ApiCalls, ApiError};
use crate::leader::Leadership;
use crate::reports::{MANAGED_BY_LABEL, Report, ReportApi, ReportOptions, SOURCE};

/// The field manager of every report write (the one of status writes too).
const FIELD_MANAGER: &str = "prodready";

/// `(namespace, name)` of a report.
pub type ReportKey = (String, String);

/// What is kept of a report the cluster holds: [`Report::content_digest`].
pub type Digest = u64;

fn key_of(r: &Report) -> ReportKey {
    (
        r.metadata.namespace.clone().unwrap_or_default(),
        r.metadata.name.clone().unwrap_or_default(),
    )
}

/// How many report writes (applies, then deletes) are in flight at once. Each one waits
/// mostly on the API server (about 6.7 ms for one apply), so a few in parallel cut a full
/// rewrite of 12,000 reports from minutes to seconds without flooding the server.
pub const WRITES_IN_FLIGHT: usize = 8;

/// What a round needs to build reports: the options, and the digest of the report the
/// cluster holds under a key (read-only, so the round stays free of IO).
#[derive(Clone, Copy)]
pub struct ReportRequest<'a> {
    /// What to put into each report.
    pub options: ReportOptions,
    /// The stored digest of a key, if prodready's report under that key exists.
    pub held: &'a (dyn Fn(&ReportKey) -> Option<Digest> + Sync),
}

impl std::fmt::Debug for ReportRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportRequest")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A round's reports, kept lean: only the reports whose content differs from what the
/// cluster holds (absent, changed, edited by hand), and the key of every desired report (so
/// the rest of prodready's reports can be deleted). Reports already right are dropped as soon
/// as they are built.
#[derive(Debug, Default)]
pub struct ReportPlan {
    /// The reports to write.
    pub changed: Vec<Report>,
    /// The key of every desired report, written or not (when `complete`).
    pub desired: HashSet<ReportKey>,
    /// Whether `desired` holds every desired report (a full pass): then every other report of
    /// prodready's is deleted; otherwise only those in `gone` are.
    pub complete: bool,
    /// Reports no longer desired (when not `complete`).
    pub gone: Vec<ReportKey>,
    /// How many reports are desired.
    pub total: usize,
}

impl ReportPlan {
    /// Keeps `report` to write when `held` says the cluster holds another content (or none)
    /// under its key.
    pub fn offer(&mut self, report: Report, held: &dyn Fn(&ReportKey) -> Option<Digest>) {
        if held(&key_of(&report)) != Some(report.content_digest()) {
            self.changed.push(report);
        }
    }

    /// Adds a desired report to a complete plan: its key, and the report itself as
    /// [`ReportPlan::offer`] keeps it.
    pub fn add(&mut self, report: Report, held: &dyn Fn(&ReportKey) -> Option<Digest>) {
        self.desired.insert(key_of(&report));
        self.offer(report, held);
    }

    /// How many reports are desired.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether no report is desired.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

/// What a round must do so the cluster holds exactly the desired reports of `plan`: the
/// reports to apply (absent or different, checked again against `stored`, which the watch
/// may have updated since the round) and the keys to delete (written by prodready, no longer
/// desired). Consumes the plan, so reports are moved into the writes, never cloned.
pub fn changes(
    stored: &HashMap<ReportKey, Digest>,
    plan: ReportPlan,
) -> (Vec<Report>, Vec<ReportKey>) {
    let ReportPlan {
        changed,
        desired,
        complete,
        gone,
        total: _,
    } = plan;
    let apply = changed
        .into_iter()
        .filter(|r| stored.get(&key_of(r)) != Some(&r.content_digest()))
        .collect();
    let mut delete: Vec<ReportKey> = if complete {
        stored
            .keys()
            .filter(|k| !desired.contains(*k))
            .cloned()
            .collect()
    } else {
        gone.into_iter()
            .filter(|k| stored.contains_key(k))
            .collect()
    };
    delete.sort();
    (apply, delete)
}

/// Labels of `prodready_report_writes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// `apply` or `delete`.
    pub op: &'static str,
    /// `success`, `gone` (the namespace or workload went away meanwhile) or `error`.
    pub result: &'static str,
}

/// Labels of `prodready_report_crd_installed`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// `openreports.io/v1alpha1` or `wgpolicyk8s.io/v1alpha2`.
    pub api: &'static str,
}

/// The report writer's metric families.
#[derive(Clone, Debug, Default)]
pub struct ReportMetrics {
    writes: Family<WriteLabels, Counter>,
    installed: Family<ApiLabels, Gauge>,
    reports: Gauge,
}

impl ReportMetrics {
    /// Registers the families.
    pub fn register(registry: &mut Registry) -> Self {
        let m = ReportMetrics::default();
        registry.register(
            "prodready_report_writes",
            "Policy report writes (server-side apply or delete), by operation and result",
            m.writes.clone(),
        );
        registry.register(
            "prodready_report_crd_installed",
            "1 while the CRD of the configured report API is installed, 0 while it is not",
            m.installed.clone(),
        );
        registry.register(
            "prodready_reports",
            "Policy reports prodready holds in the cluster (as last listed or written)",
            m.reports.clone(),
        );
        m
    }

    fn wrote(&self, op: &'static str, result: &'static str) {
        self.writes.get_or_create(&WriteLabels { op, result }).inc();
    }
}

#[derive(Debug, Default)]
struct State {
    installed: bool,
    /// The stored reports have been listed since the watch (re)started.
    synced: bool,
    stored: HashMap<ReportKey, Digest>,
    /// Workloads (`Kind/namespace/name`) whose report the cluster no longer holds as written
    /// (edited or deleted by hand, or its write failed): the next round judges them again.
    touched: HashSet<String>,
}

/// The workload a report is about (`Kind/namespace/name`, from its annotation).
fn workload_of(r: &Report) -> Option<String> {
    r.metadata
        .annotations
        .as_ref()?
        .get(crate::reports::WORKLOAD_ANNOTATION)
        .cloned()
}

/// The report writer: configuration, CRD presence, and the reports the cluster holds.
#[derive(Debug)]
pub struct ReportSink {
    options: ReportOptions,
    resource: ApiResource,
    state: Mutex<State>,
    metrics: ReportMetrics,
}

/// The `ApiResource` of a report API.
pub fn api_resource(api: ReportApi) -> ApiResource {
    ApiResource {
        group: api.group().to_owned(),
        version: api.version().to_owned(),
        api_version: api.api_version().to_owned(),
        kind: api.kind().to_owned(),
        plural: api.plural().to_owned(),
    }
}

fn decode(obj: DynamicObject) -> Option<Report> {
    let value = serde_json::to_value(obj).ok()?;
    serde_json::from_value(value).ok()
}

/// Whether an error means the target went away under us (a namespace being deleted, the
/// workload gone): nothing to retry, the next round no longer wants the report.
fn gone(e: &ApiError) -> bool {
    matches!(e.code(), Some(404 | 409)) || e.namespace_terminating()
}

impl ReportSink {
    /// A writer of `options.api` reports.
    pub fn new(options: ReportOptions, metrics: ReportMetrics) -> Self {
        metrics
            .installed
            .get_or_create(&ApiLabels {
                api: options.api.api_version(),
            })
            .set(0);
        ReportSink {
            resource: api_resource(options.api),
            options,
            state: Mutex::new(State::default()),
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state a round reports in the `Reported` condition.
    pub fn state(&self) -> ReportsState {
        let s = self.lock();
        if s.installed && s.synced {
            ReportsState::Installed(self.options.api.api_version())
        } else if s.installed {
            ReportsState::Pending(self.options.api.api_version())
        } else {
            ReportsState::CrdMissing(self.options.api.api_version(), self.options.api.plural())
        }
    }

    /// The options a round builds reports with, once the CRD is installed and the stored
    /// reports are listed (before that, a round would rewrite every report).
    pub fn ready(&self) -> Option<ReportOptions> {
        let s = self.lock();
        (s.installed && s.synced).then_some(self.options)
    }

    fn set_installed(&self, installed: bool) {
        let mut s = self.lock();
        s.installed = installed;
        if !installed {
            s.synced = false;
            s.stored.clear();
            self.metrics.reports.set(0);
        }
        self.metrics
            .installed
            .get_or_create(&ApiLabels {
                api: self.options.api.api_version(),
            })
            .set(i64::from(installed));
    }

    /// Workloads whose report changed in the cluster since the last call (see `State`).
    pub fn take_touched(&self) -> HashSet<String> {
        std::mem::take(&mut self.lock().touched)
    }

    /// The stored digest of the report under `key`, if prodready's report exists.
    pub fn held(&self, key: &ReportKey) -> Option<Digest> {
        self.lock().stored.get(key).copied()
    }

    /// Applies and deletes what [`changes`] says, at most [`WRITES_IN_FLIGHT`] at a time,
    /// each behind the leader gate (stopping at once when leadership is lost); returns
    /// `(applied, deleted, failed)`.
    pub async fn sync(
        &self,
        client: &Client,
        calls: &ApiCalls,
        leadership: &Leadership,
        plan: ReportPlan,
    ) -> (usize, usize, usize) {
        let (apply, delete) = changes(&self.lock().stored, plan);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let (params, resource) = (&params, &self.resource);
        let (mut applied, mut deleted, mut failed) = (0, 0, 0);
        let mut writes = futures::stream::iter(apply)
            .map(|report| async move {
                let (namespace, name) = key_of(&report);
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), &namespace, resource);
                let patch = Patch::Apply(&report);
                let written = leadership
                    .gated(calls.call("apply_report", || api.patch(&name, params, &patch)))
                    .await;
                (namespace, name, report, written)
            })
            .buffer_unordered(WRITES_IN_FLIGHT);
        while let Some((namespace, name, report, written)) = writes.next().await {
            match written {
                None => return (applied, deleted, failed), // leadership lost: stop at once
                Some(Ok(obj)) => {
                    applied += 1;
                    self.metrics.wrote("apply", "success");
                    // What the server returned (the next watch event says the same).
                    let digest = decode(obj)
                        .map_or_else(|| report.content_digest(), |served| served.content_digest());
                    self.lock().stored.insert((namespace, name), digest);
                }
                Some(Err(e)) if gone(&e) => {
                    self.metrics.wrote("apply", "gone");
                    tracing::info!(namespace = %namespace, report = %name, error = %e, "report not written: its namespace or workload is going away");
                }
                Some(Err(e)) => {
                    failed += 1;
                    self.metrics.wrote("apply", "error");
                    if let Some(w) = workload_of(&report) {
                        self.lock().touched.insert(w);
                    }
                    tracing::error!(namespace = %namespace, report = %name, error = %e, category = e.category(), "cannot write policy report; the next round retries");
                }
            }
        }
        drop(writes);
        let dp = DeleteParams::default();
        let dp = &dp;
        let mut deletes = futures::stream::iter(delete)
            .map(|(namespace, name)| async move {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), &namespace, resource);
                let done = leadership
                    .gated(calls.call("delete_report", || api.delete(&name, dp)))
                    .await;
                (namespace, name, done)
            })
            .buffer_unordered(WRITES_IN_FLIGHT);
        while let Some((namespace, name, done)) = deletes.next().await {
            match done {
                None => return (applied, deleted, failed),
                Some(Ok(_)) => {
                    deleted += 1;
                    self.metrics.wrote("delete", "success");
                    self.lock().stored.remove(&(namespace, name));
                }
                Some(Err(e)) if e.code() == Some(404) => {
                    self.metrics.wrote("delete", "gone");
                    self.lock().stored.remove(&(namespace, name));
                }
                Some(Err(e)) => {
                    failed += 1;
                    self.metrics.wrote("delete", "error");
                    tracing::error!(namespace = %namespace, report = %name, error = %e, category = e.category(), "cannot delete stale policy report; the next round retries");
                }
            }
        }
        drop(deletes);
        self.metrics
            .reports
            .set(i64::try_from(self.lock().stored.len()).unwrap_or(i64::MAX));
        (applied, deleted, failed)
    }

    /// Keeps `stored` equal to the reports prodready's label selects, triggering a round when
    /// one differs from what was last written (edited or deleted by hand) or the list
    /// (re)completes.
    async fn watch(
        self: Arc<Self>,
        client: Client,
        lists: super::InitialList,
        trigger: Arc<Notify>,
        shutdown: CancellationToken,
    ) {
        let api: Api<DynamicObject> = Api::all_with(client, &self.resource);
        let config = lists
            .config()
            .labels(&format!("{MANAGED_BY_LABEL}={SOURCE}"));
        let stream = watcher::watcher(api, config).backoff(WatchBackoff::default());
        let mut stream = std::pin::pin!(stream);
        let mut initial: Option<HashMap<ReportKey, Digest>> = None;
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return,
                e = stream.next() => e,
            };
            let Some(event) = event else { return };
            match event {
                Ok(Event::Init) => initial = Some(HashMap::new()),
                Ok(Event::InitApply(obj)) => {
                    if let Some(r) = decode(obj) {
                        initial
                            .get_or_insert_with(HashMap::new)
                            .insert(key_of(&r), r.content_digest());
                    }
                }
                Ok(Event::InitDone) => {
                    let fresh = initial.take().unwrap_or_default();
                    let n = fresh.len();
                    {
                        let mut s = self.lock();
                        s.stored = fresh;
                        s.synced = true;
                    }
                    tracing::info!(
                        api = self.options.api.api_version(),
                        reports = n,
                        "policy reports listed"
                    );
                    trigger.notify_one();
                }
                Ok(Event::Apply(obj)) => {
                    let Some(r) = decode(obj) else { continue };
                    let digest = r.content_digest();
                    let mut state = self.lock();
                    let changed = state.stored.insert(key_of(&r), digest) != Some(digest);
                    if changed {
                        if let Some(w) = workload_of(&r) {
                            state.touched.insert(w);
                        }
                        drop(state);
                        trigger.notify_one();
                    }
                }
                Ok(Event::Delete(obj)) => {
                    let Some(r) = decode(obj) else { continue };
                    let mut state = self.lock();
                    if state.stored.remove(&key_of(&r)).is_some() {
                        if let Some(w) = workload_of(&r) {
                            state.touched.insert(w);
                        }
                        drop(state);
                        trigger.notify_one();
                    }
                }
                Err(e) => {
                    tracing::warn!(api = self.options.api.api_version(), error = %e, "watch of policy reports failed; retrying");
                }
            }
        }
    }
}

/// Discovers the report API at start and every `interval`: when its CRD appears, watches
/// prodready's reports (initial list as `lists` says) and lets rounds write them; when it goes, stops, forgets them, and
/// says so (log, `Reported=False` condition, `prodready_report_crd_installed 0`).
pub async fn discover(
    client: Client,
    lists: super::InitialList,
    calls: ApiCalls,
    sink: Arc<ReportSink>,
    trigger: Arc<Notify>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let api = sink.options.api;
    let mut running: Option<CancellationToken> = None;
    let mut first = true;
    loop {
        let found = calls
            .once(
                "discover_reports",
                client.list_api_group_resources(api.api_version()),
            )
            .await;
        let present = match found {
            Ok(list) => list.resources.iter().any(|r| r.name == api.plural()),
            Err(e) if e.code() == Some(404) => false,
            Err(e) => {
                tracing::warn!(api = api.api_version(), error = %e, "cannot discover the policy report API; keeping the last answer");
                running.is_some()
            }
        };
        match (present, running.is_some()) {
            (true, false) => {
                tracing::info!(
                    api = api.api_version(),
                    crd = api.crd_name(),
                    "policy report CRD found; writing reports"
                );
                let token = shutdown.child_token();
                tokio::spawn(Arc::clone(&sink).watch(
                    client.clone(),
                    lists,
                    Arc::clone(&trigger),
                    token.clone(),
                ));
                running = Some(token);
                sink.set_installed(true);
                trigger.notify_one();
            }
            (false, true) => {
                tracing::warn!(
                    api = api.api_version(),
                    crd = api.crd_name(),
                    "policy report CRD removed; reports are not written until it is installed again"
                );
                if let Some(t) = running.take() {
                    t.cancel();
                }
                sink.set_installed(false);
                trigger.notify_one();
            }
            (false, false) if first => {
                tracing::warn!(
                    api = api.api_version(),
                    crd = api.crd_name(),
                    "policy report CRD not installed; reports start when it is (or set --reports none)"
                );
                trigger.notify_one();
            }
            _ => {}
        }
        first = false;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Severity, WorkloadKind};
    use crate::engine::{Evaluation, Outcome, RuleResult, Violation};
    use crate::reports::{Subject, build};
    use crate::rules::CATALOG;

    fn report(name: &str, fail: bool) -> Report {
        let rule = CATALOG[0];
        let e = Evaluation {
            results: vec![RuleResult {
                rule,
                severity: Severity::High,
                outcome: if fail {
                    Outcome::Fail(vec![Violation::workload("bad", "fix")])
                } else {
                    Outcome::Pass
                },
                exempt: Vec::new(),
            }],
            notes: Vec::new(),
            next_expiry: None,
        };
        let subject = Subject {
            kind: WorkloadKind::Deployment,
            namespace: "shop",
            name,
            uid: Some("u"),
        };
        build(
            &subject,
            &[("baseline", &e)],
            ReportOptions {
                api: ReportApi::OpenReports,
                include_passes: false,
                cluster: None,
            },
        )
        .unwrap_or_else(|| panic!("no report"))
    }

    fn stored(reports: &[Report]) -> HashMap<ReportKey, Digest> {
        reports
            .iter()
            .map(|r| (key_of(r), r.content_digest()))
            .collect()
    }

    /// The plan a round builds from `desired` while the cluster holds `held`.
    fn plan_of(held: &HashMap<ReportKey, Digest>, desired: &[Report]) -> ReportPlan {
        let mut plan = ReportPlan {
            complete: true,
            ..ReportPlan::default()
        };
        for r in desired {
            plan.add(r.clone(), &|k| held.get(k).copied());
        }
        plan.total = plan.desired.len();
        plan
    }

    #[test]
    fn the_plan_keeps_only_changed_reports_and_stale_ones_are_still_deleted() {
        let desired = [report("a", true), report("b", true), report("c", false)];
        // a is right, b differs, c is absent, gone is no longer desired.
        let held = stored(&[report("a", true), report("b", false), report("gone", true)]);
        let plan = plan_of(&held, &desired);
        let kept: Vec<_> = plan.changed.iter().map(|r| key_of(r).1).collect();
        assert_eq!(kept, ["prodready-deployment-b", "prodready-deployment-c"]);
        assert_eq!(plan.len(), 3, "every desired key is known");
        let (apply, delete) = changes(&held, plan);
        let names: Vec<_> = apply.iter().map(|r| key_of(r).1).collect();
        assert_eq!(names, ["prodready-deployment-b", "prodready-deployment-c"]);
        assert_eq!(
            delete,
            vec![("shop".to_owned(), "prodready-deployment-gone".to_owned())]
        );
        // The watch saw b written meanwhile: not applied again.
        let mut now_held = held.clone();
        now_held.insert(key_of(&desired[1]), desired[1].content_digest());
        let (apply, _) = changes(&now_held, plan_of(&held, &desired));
        let names: Vec<_> = apply.iter().map(|r| key_of(r).1).collect();
        assert_eq!(names, ["prodready-deployment-c"]);
    }

    #[test]
    fn nothing_is_written_when_the_cluster_holds_the_desired_reports() {
        let desired = [report("a", true), report("b", false)];
        let held = stored(&desired);
        let (apply, delete) = changes(&held, plan_of(&held, &desired));
        assert!(apply.is_empty());
        assert!(delete.is_empty());
    }

    #[test]
    fn a_new_a_changed_and_a_hand_edited_report_are_applied() {
        let desired = [report("a", true), report("b", false), report("c", true)];
        let held = stored(&[report("a", false), report("b", false)]);
        let (apply, _) = changes(&held, plan_of(&held, &desired));
        let names: Vec<_> = apply.iter().map(|r| key_of(r).1).collect();
        assert_eq!(names, ["prodready-deployment-a", "prodready-deployment-c"]);
        // Someone changed the counts of b by hand: restored.
        let mut edited = report("b", false);
        edited.summary.fail = 7;
        let held = stored(&[report("a", true), edited]);
        let (apply, _) = changes(&held, plan_of(&held, &desired));
        assert!(
            apply
                .iter()
                .any(|r| key_of(r).1 == "prodready-deployment-b")
        );
    }

    #[test]
    fn reports_no_longer_desired_are_deleted_and_server_fields_do_not_count() {
        let mut served = [report("a", true), report("gone", true)];
        for r in &mut served {
            r.metadata.resource_version = Some("9".into());
            r.metadata.uid = Some("r-9".into());
        }
        let held = stored(&served);
        let desired = [report("a", true)];
        let (apply, delete) = changes(&held, plan_of(&held, &desired));
        assert!(apply.is_empty());
        assert_eq!(
            delete,
            vec![("shop".to_owned(), "prodready-deployment-gone".to_owned())]
        );
    }

    #[test]
    fn the_state_follows_the_crd_and_rounds_wait_for_the_list() {
        let sink = ReportSink::new(
            ReportOptions {
                api: ReportApi::OpenReports,
                include_passes: false,
                cluster: None,
            },
            ReportMetrics::default(),
        );
        assert_eq!(
            sink.state(),
            ReportsState::CrdMissing("openreports.io/v1alpha1", "reports")
        );
        assert_eq!(sink.ready(), None);
        sink.set_installed(true);
        assert_eq!(
            sink.state(),
            ReportsState::Pending("openreports.io/v1alpha1")
        );
        assert_eq!(
            sink.ready(),
            None,
            "not before the stored reports are listed"
        );
        sink.lock().synced = true;
        assert_eq!(
            sink.state(),
            ReportsState::Installed("openreports.io/v1alpha1")
        );
        assert!(sink.ready().is_some());
        sink.lock().stored = stored(&[report("a", true)]);
        sink.set_installed(false);
        assert_eq!(sink.ready(), None);
        assert!(sink.lock().stored.is_empty(), "forgotten with the CRD");
    }
}
