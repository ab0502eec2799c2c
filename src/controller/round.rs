//! One evaluation round as a plan. Pure functions from what the stores hold (policies,
//! workloads, context), the Event memory and `now` to what the round should publish: the
//! snapshot for the webhook ([`snapshot`]), each policy's status, the metric series and the
//! instant of the next time-driven round ([`plan`]), and the Events to announce
//! ([`event_steps`]). The controller (`reconcile.rs`) gathers the inputs, applies the plan
//! behind the leader claim, and never decides anything itself.
//!
//! Because a round is a function of the stores' current contents, cross-object verdicts do not
//! depend on the order objects were created in: a PDB created after its Deployment is simply
//! in the next round's context.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;

use super::events::{EventMemory, Planned, RuleSet};
use super::ledger::{Dirt, Ledger, Round, VERDICTS, Workloads};
use super::metrics::{ViolationLabels, WorkloadLabels};
use super::reports::{ReportPlan, ReportRequest};
use super::status;
use super::stores::Tracked;
use crate::api::{ProductionPolicy, ProductionPolicyStatus};
use crate::engine::context::LeaseLookup;
use crate::engine::{CompiledPolicy, Context, PolicyError, RuleDef, Workload};
use crate::snapshot::Snapshot;

/// Compiles the policies over `catalog` (sorted by name) into the snapshot the webhook judges
/// from, and returns the policies that do not compile beside it.
pub fn snapshot(
    objects: &[Arc<ProductionPolicy>],
    context: Context,
    now: Timestamp,
    catalog: &[&'static RuleDef],
) -> (Snapshot, Vec<(Arc<ProductionPolicy>, PolicyError)>) {
    let mut policies = Vec::new();
    let mut invalid = Vec::new();
    for obj in objects {
        match CompiledPolicy::compile(obj, catalog) {
            Ok(p) => policies.push(Arc::new(p)),
            Err(e) => invalid.push((Arc::clone(obj), e)),
        }
    }
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    let snapshot = Snapshot {
        policies,
        invalid: invalid.iter().map(|(_, e)| e.clone()).collect(),
        context,
        synced: true,
        built_at: Some(now),
    };
    (snapshot, invalid)
}

/// What a round reads.
pub struct Inputs<'a> {
    /// The compiled policies and the context (from [`snapshot`]).
    pub snapshot: &'a Snapshot,
    /// The policy objects as stored: their current status is the "old" one.
    pub objects: &'a [Arc<ProductionPolicy>],
    /// The policies that do not compile (from [`snapshot`]).
    pub invalid: &'a [(Arc<ProductionPolicy>, PolicyError)],
    /// The stored workloads.
    pub workloads: &'a dyn Workloads,
    /// The evaluation instant (also stamped as `lastEvaluationTime`).
    pub now: Timestamp,
    /// Bound of `status.violations` (the counts stay exact).
    pub max_violations: usize,
    /// Whether this replica leads: only then are failing sets kept for Events (followers
    /// never publish, so they do not hold them).
    pub leader: bool,
    /// Whether to plan the Events of every matched workload, not only of those evaluated
    /// again (the Event memory was seeded anew: this replica just became leader).
    pub all_events: bool,
    /// Whether reports can be written (the `Reported` condition).
    pub reports_state: status::ReportsState,
    /// What to put into each workload's report and what the cluster holds, when this round
    /// should build them (leader, report CRD installed, existing reports listed); `None`: no
    /// reports this round.
    pub reports: Option<ReportRequest<'a>>,
}

/// One valid policy's result.
pub struct PolicyPlan<'a> {
    /// The compiled policy, from the snapshot.
    pub policy: &'a CompiledPolicy,
    /// Its status as stored.
    pub old: Option<&'a ProductionPolicyStatus>,
    /// Its status as this round computed it.
    pub status: ProductionPolicyStatus,
    /// Leader only: each matched workload evaluated this round (every one when
    /// [`Plan::events_complete`]) with the rules it fails (empty: compliant).
    pub failing: Vec<(Arc<Tracked>, RuleSet)>,
    /// Time spent evaluating it (measured with the caller's clock).
    pub took: Duration,
}

/// One invalid policy's result.
pub struct InvalidPlan<'a> {
    /// The policy object.
    pub object: &'a ProductionPolicy,
    /// Why it does not compile.
    pub error: &'a PolicyError,
    /// Its `Ready=False` status.
    pub status: ProductionPolicyStatus,
    /// Whether the status differs from the stored one (then a Warning Event is due).
    pub changed: bool,
}

/// Everything a round publishes.
pub struct Plan<'a> {
    /// Valid policies, in snapshot order.
    pub policies: Vec<PolicyPlan<'a>>,
    /// Invalid policies.
    pub invalid: Vec<InvalidPlan<'a>>,
    /// `prodready_violations` series.
    pub violations: Vec<(ViolationLabels, i64)>,
    /// `prodready_workloads` series.
    pub workloads: Vec<(WorkloadLabels, i64)>,
    /// When the next round must run even if nothing changes: an `enforceAfter`, an exemption
    /// expiry or a named Lease going stale, whichever comes first.
    pub wake: Option<Timestamp>,
    /// Stored workloads that could not be decoded (left out of this round), with the reason.
    pub undecodable: Vec<(Arc<Tracked>, String)>,
    /// The reports to write (those whose content differs from what the cluster holds) and
    /// the key of every workload's report (workloads no policy matches have none), when
    /// [`Inputs::reports`] asked for them.
    pub reports: Option<ReportPlan>,
    /// Whether every workload was evaluated (a full pass).
    pub full: bool,
    /// Whether the policies' `failing` lists hold every matched workload: then Event state of
    /// pairs not in them is dropped; otherwise only the pairs in [`Plan::forget`] are.
    pub events_complete: bool,
    /// `(policy, Kind/namespace/name)` pairs gone since the last round (incremental rounds).
    pub forget: Vec<(String, String)>,
    /// How many workloads were evaluated.
    pub evaluated: usize,
}

/// Evaluates what changed since the ledger's last update (everything on a full pass, see
/// [`Ledger`]) and builds the round's plan from the ledger: every policy's status and metric
/// series, the wake-up instant, the Event pairs to plan and the reports to write. `clock` only
/// measures how long each policy took (for the duration histogram); no decision reads it.
pub fn plan<'a>(
    ledger: &mut Ledger,
    inputs: &Inputs<'a>,
    dirt: &Dirt,
    clock: fn() -> Instant,
) -> Plan<'a> {
    let now = inputs.now;
    let snap = inputs.snapshot;
    let by_name: HashMap<&str, &ProductionPolicy> = inputs
        .objects
        .iter()
        .filter_map(|o| o.metadata.name.as_deref().map(|n| (n, o.as_ref())))
        .collect();
    let round = Round {
        snapshot: snap,
        now,
        leader: inputs.leader,
        all_events: inputs.all_events,
        reports: inputs.reports,
    };
    let update = ledger.update(&round, inputs.workloads, dirt, clock);

    let mut violations = Vec::new();
    let mut workloads = Vec::new();
    let policies = snap
        .policies
        .iter()
        .enumerate()
        .zip(update.failing)
        .zip(update.took)
        .map(|(((index, policy), failing), took)| {
            let old = by_name
                .get(policy.name.as_str())
                .and_then(|o| o.status.as_ref());
            let started = clock();
            let (per, verdicts) = ledger.series(index);
            for (namespace, rule, severity, n) in per {
                violations.push((
                    ViolationLabels {
                        policy: policy.name.clone(),
                        namespace: namespace.to_owned(),
                        rule,
                        severity,
                    },
                    n,
                ));
            }
            for (verdict, n) in VERDICTS.iter().zip(verdicts) {
                workloads.push((
                    WorkloadLabels {
                        policy: policy.name.clone(),
                        result: verdict.as_str(),
                    },
                    n,
                ));
            }
            let mut status = ledger
                .status(policy, index, &round, inputs.max_violations)
                .finish(old);
            if let Some(c) =
                status::reports_condition(inputs.reports_state, policy.generation, now, old)
            {
                status.conditions.push(c);
            }
            PolicyPlan {
                policy,
                old,
                status,
                failing,
                took: took + clock().saturating_duration_since(started),
            }
        })
        .collect();
    let invalid = inputs
        .invalid
        .iter()
        .map(|(obj, error)| {
            let old = obj.status.as_ref();
            let status = status::invalid_status(obj.metadata.generation, error, now, old);
            InvalidPlan {
                object: obj,
                error,
                changed: status::differs(old, &status),
                status,
            }
        })
        .collect();
    let reports = inputs.reports.map(|_| ReportPlan {
        total: ledger.reports(),
        ..update.reports
    });
    Plan {
        policies,
        invalid,
        violations,
        workloads,
        wake: ledger.wake(),
        undecodable: update.undecodable,
        reports,
        full: update.full,
        events_complete: update.complete,
        forget: update.forget,
        evaluated: update.evaluated,
    }
}

/// What to do about one (policy, workload) pair's Event.
#[derive(Debug, PartialEq)]
pub enum EventStep {
    /// Announce this state (replacing any announcement still pending for the pair).
    Announce {
        /// `(policy, Kind/namespace/name)`.
        key: (String, String),
        /// The workload the Event is about (its uid goes into the reference).
        tracked: Arc<Tracked>,
        /// Warning or Normal.
        planned: Planned,
        /// The rules it fails (empty for a Normal "ready" Event).
        failing: RuleSet,
    },
    /// Compliant and nothing to announce: remember it as compliant, drop anything pending.
    Settle {
        /// `(policy, Kind/namespace/name)`.
        key: (String, String),
    },
    /// Unchanged since its last Event: drop anything pending.
    Unchanged {
        /// `(policy, Kind/namespace/name)`.
        key: (String, String),
    },
}

impl EventStep {
    /// The pair it is about.
    pub fn key(&self) -> &(String, String) {
        match self {
            EventStep::Announce { key, .. }
            | EventStep::Settle { key }
            | EventStep::Unchanged { key } => key,
        }
    }
}

/// The Event steps for one policy's failing sets, against what `memory` says was announced:
/// one Warning when a workload's failing set changes, one Normal when it becomes compliant,
/// nothing otherwise.
pub fn event_steps(
    memory: &EventMemory,
    policy: &str,
    failing: Vec<(Arc<Tracked>, RuleSet)>,
) -> Vec<EventStep> {
    failing
        .into_iter()
        .map(|(tracked, failing)| {
            let key = (policy.to_owned(), tracked.key());
            match memory.plan(&key.0, &key.1, &failing) {
                Some(planned) => EventStep::Announce {
                    key,
                    tracked,
                    planned,
                    failing,
                },
                None if failing.is_empty() => EventStep::Settle { key },
                None => EventStep::Unchanged { key },
            }
        })
        .collect()
}

/// When the Lease a workload names goes stale for the leader-lease rule.
pub fn lease_stale_at(ctx: &Context, w: &Workload, policy: &CompiledPolicy) -> Option<Timestamp> {
    // `NAME` or `NAMESPACE/NAME`, as the leader-lease rule reads it.
    let (namespace, name) = w
        .lease_name()?
        .split_once('/')
        .unwrap_or((w.namespace.as_str(), w.lease_name()?));
    let LeaseLookup::Found(lease) = ctx.lease(namespace, name) else {
        return None;
    };
    let spec = lease.spec.as_ref()?;
    let renewed = spec.renew_time.as_ref()?.0.as_second();
    let duration = spec
        .lease_duration_seconds
        .filter(|d| *d > 0)
        .map_or(15, i64::from);
    let grace = i64::from(policy.params.lease_grace_seconds.max(0));
    Timestamp::from_second(renewed + duration + grace + 1).ok()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::jiff::SignedDuration;

    use super::*;
    use crate::controller::stores::Slim as _;
    use crate::rules::CATALOG;
    use crate::rules::testing::{context, now, rule_toggles};

    /// A policy over namespace `shop` with only `rules` (kebab-case ids) enabled.
    fn policy(name: &str, rules: &[&str], extra: &str) -> Arc<ProductionPolicy> {
        let yaml = format!(
            "apiVersion: prodready.dev/v1alpha1\nkind: ProductionPolicy\nmetadata: {{name: {name}, generation: 1}}\nspec:\n  match: {{namespaces: [shop]}}\n  rules: {}\n{extra}",
            rule_toggles(rules)
        );
        Arc::new(serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}")))
    }

    fn deployment(name: &str, annotations: &str) -> Arc<Tracked> {
        let yaml = format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: shop, annotations: {{{annotations}}}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: app, image: "shop:1.0", ports: [{{name: metrics, containerPort: 9090}}]}}]
"#
        );
        let d: Deployment = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}"));
        Arc::new(d.slim())
    }

    const PDB: &str = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web, namespace: shop}\nspec: {maxUnavailable: 1, selector: {matchLabels: {app: web}}}\n";
    const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {selector: {app: web}, ports: [{name: metrics, port: 9090}]}\n";
    const MONITOR: &str = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: web, namespace: shop}\nspec: {selector: {}, endpoints: [{port: metrics}]}\n";

    /// What a round concluded, owned: each policy's status, the wake-up instant, and the
    /// failing set of every (policy, workload key).
    struct Outcome {
        statuses: Vec<(String, ProductionPolicyStatus)>,
        wake: Option<Timestamp>,
        failing: Vec<(String, String, RuleSet)>,
    }

    fn run(
        policies: &[Arc<ProductionPolicy>],
        workloads: &[Arc<Tracked>],
        ctx: Context,
        at: Timestamp,
        max_violations: usize,
    ) -> Outcome {
        let (snap, invalid) = snapshot(policies, ctx, at, &CATALOG);
        let workloads = workloads.to_vec();
        let plan = plan(
            &mut Ledger::default(),
            &Inputs {
                snapshot: &snap,
                objects: policies,
                invalid: &invalid,
                workloads: &workloads,
                now: at,
                max_violations,
                leader: true,
                all_events: false,
                reports_state: status::ReportsState::Disabled,
                reports: None,
            },
            &Dirt::everything(),
            Instant::now,
        );
        let mut statuses: Vec<(String, ProductionPolicyStatus)> = plan
            .policies
            .iter()
            .map(|p| (p.policy.name.clone(), p.status.clone()))
            .collect();
        statuses.extend(plan.invalid.iter().map(|i| {
            (
                i.object.metadata.name.clone().unwrap_or_default(),
                i.status.clone(),
            )
        }));
        let failing = plan
            .policies
            .iter()
            .flat_map(|p| {
                p.failing
                    .iter()
                    .map(|(t, f)| (p.policy.name.clone(), t.key(), *f))
            })
            .collect();
        Outcome {
            statuses,
            wake: plan.wake,
            failing,
        }
    }

    /// (matched, compliant, violating, exempt, unknown) of the first policy.
    fn counts(o: &Outcome) -> (u32, u32, u32, u32, u32) {
        let s = o.statuses[0].1.summary.clone().unwrap_or_default();
        (s.matched, s.compliant, s.violating, s.exempt, s.unknown)
    }

    fn later(secs: i64) -> Timestamp {
        now()
            .checked_add(SignedDuration::from_secs(secs))
            .unwrap_or(now())
    }

    #[test]
    fn a_pdb_created_after_its_deployment_flips_the_verdict() {
        let policies = [policy("pdb", &["disruption-budget"], "")];
        let web = [deployment("web", "")];
        let before = run(&policies, &web, Context::default(), now(), 100);
        assert_eq!(counts(&before), (1, 0, 1, 0, 0));
        assert_eq!(
            before.failing,
            vec![(
                "pdb".to_owned(),
                "Deployment/shop/web".to_owned(),
                RuleSet::from(["disruption-budget"])
            )]
        );
        let after = run(&policies, &web, context(PDB), now(), 100);
        assert_eq!(counts(&after), (1, 1, 0, 0, 0));
    }

    #[test]
    fn an_hpa_created_after_its_deployment_flips_replicas_ha() {
        // As the API server stores it: replicas defaulted to 1, no kubectl apply record.
        let live: Deployment = serde_saphyr::from_str(
            "metadata: {name: api, namespace: shop, uid: u-api}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n    spec: {containers: [{name: app, image: 'shop:1.0'}]}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let api = [Arc::new(live.slim())];
        let policies = [policy("ha", &["replicas-ha"], "")];
        let hpa = |min: i32| {
            context(&format!(
                "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: api, namespace: shop}}\nspec: {{scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: api}}, minReplicas: {min}, maxReplicas: 6}}\n"
            ))
        };
        let before = run(&policies, &api, Context::default(), now(), 100);
        assert_eq!(counts(&before), (1, 0, 1, 0, 0));
        let after = run(&policies, &api, hpa(3), now(), 100);
        assert_eq!(counts(&after), (1, 1, 0, 0, 0));
        let too_low = run(&policies, &api, hpa(1), now(), 100);
        assert_eq!(counts(&too_low), (1, 0, 1, 0, 0));
    }

    #[test]
    fn a_deleted_service_monitor_flips_the_verdict_back() {
        let policies = [policy("mon", &["service-monitor"], "")];
        let web = [deployment("web", "")];
        let with = run(
            &policies,
            &web,
            context(&format!("{SERVICE}---\n{MONITOR}")),
            now(),
            100,
        );
        assert_eq!(counts(&with), (1, 1, 0, 0, 0));
        let without = run(&policies, &web, context(SERVICE), now(), 100);
        assert_eq!(counts(&without), (1, 0, 1, 0, 0));
    }

    #[test]
    fn an_exemption_applies_until_its_expiry_and_the_round_wakes_then() {
        let expires = later(60);
        let policies = [policy(
            "ex",
            &["disruption-budget"],
            &format!(
                "  exemptions: [{{rules: [disruption-budget], names: [web], reason: migration, expires: \"{expires}\"}}]\n"
            ),
        )];
        let web = [deployment("web", "")];
        let during = run(&policies, &web, Context::default(), now(), 100);
        assert_eq!(counts(&during), (1, 0, 0, 1, 0));
        assert_eq!(during.wake, Some(expires));
        let after = run(&policies, &web, Context::default(), later(61), 100);
        assert_eq!(counts(&after), (1, 0, 1, 0, 0));
        assert_eq!(after.wake, None);
    }

    #[test]
    fn enforce_after_schedules_a_round_at_the_ramp() {
        let at = later(3600);
        let policies = [policy(
            "ramp",
            &["disruption-budget"],
            &format!("  enforcement: {{action: Enforce, enforceAfter: \"{at}\"}}\n"),
        )];
        let o = run(&policies, &[], Context::default(), now(), 100);
        assert_eq!(o.wake, Some(at));
        assert_eq!(run(&policies, &[], Context::default(), at, 100).wake, None);
    }

    #[test]
    fn a_named_lease_is_judged_live_until_stale_and_the_round_wakes_then() {
        let renewed = later(-5);
        let lease = format!(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: lock, namespace: shop}}\nspec: {{holderIdentity: a, leaseDurationSeconds: 10, renewTime: \"{}\"}}\n",
            renewed.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        );
        let policies = [policy("lease", &["leader-lease"], "")];
        let worker = [deployment(
            "worker",
            r#"prodready.dev/single-runner: "true", prodready.dev/lease: lock"#,
        )];
        let live = run(&policies, &worker, context(&lease), now(), 100);
        assert_eq!(counts(&live), (1, 1, 0, 0, 0));
        // Stale after renewTime + duration (10 s) + the rule's grace (5 s), plus one second.
        let stale_at = renewed
            .checked_add(SignedDuration::from_secs(16))
            .unwrap_or(now());
        assert_eq!(live.wake, Some(stale_at));
        let stale = run(&policies, &worker, context(&lease), stale_at, 100);
        assert_eq!(counts(&stale), (1, 0, 1, 0, 0));
    }

    #[test]
    fn the_violation_list_is_bounded_and_the_counts_stay_exact() {
        let policies = [policy("bound", &["disruption-budget"], "")];
        let many: Vec<Arc<Tracked>> = (0..5).map(|i| deployment(&format!("w{i}"), "")).collect();
        let o = run(&policies, &many, Context::default(), now(), 2);
        assert_eq!(counts(&o), (5, 0, 5, 0, 0));
        assert_eq!(o.statuses[0].1.violations.len(), 2);
    }

    #[test]
    fn an_invalid_policy_gets_a_not_ready_status_and_no_evaluation() {
        let bad = policy(
            "bad",
            &[],
            "  exemptions: [{rules: [no-such-rule], reason: x}]\n",
        );
        let o = run(
            &[bad],
            &[deployment("web", "")],
            Context::default(),
            now(),
            100,
        );
        assert_eq!(o.statuses.len(), 1);
        let ready = o.statuses[0]
            .1
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status.clone());
        assert_eq!(ready.as_deref(), Some("False"));
        assert!(o.failing.is_empty());
    }

    #[test]
    fn events_follow_changes_of_the_failing_set_only() {
        let web = deployment("web", "");
        let key = ("p".to_owned(), "Deployment/shop/web".to_owned());
        let fails = RuleSet::from(["disruption-budget"]);
        let mut memory = EventMemory::default();
        let steps = event_steps(&memory, "p", vec![(Arc::clone(&web), fails)]);
        assert!(matches!(
            steps.as_slice(),
            [EventStep::Announce {
                planned: Planned::Violation,
                ..
            }]
        ));
        memory.record(&key.0, &key.1, fails);
        let steps = event_steps(&memory, "p", vec![(Arc::clone(&web), fails)]);
        assert_eq!(steps, vec![EventStep::Unchanged { key: key.clone() }]);
        let steps = event_steps(&memory, "p", vec![(Arc::clone(&web), RuleSet::new())]);
        assert!(matches!(
            steps.as_slice(),
            [EventStep::Announce {
                planned: Planned::Ready,
                ..
            }]
        ));
        let fresh = EventMemory::default();
        let steps = event_steps(&fresh, "p", vec![(web, RuleSet::new())]);
        assert_eq!(steps, vec![EventStep::Settle { key }]);
    }

    #[test]
    fn reports_are_built_per_matched_workload_and_the_condition_says_where() {
        use crate::reports::ReportApi;
        let policies = [
            policy("pdb", &["disruption-budget"], ""),
            policy("ha", &["replicas-ha"], ""),
        ];
        // No policy matches namespace `other`.
        let other: Deployment = serde_saphyr::from_str(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: elsewhere, namespace: other}\nspec: {selector: {matchLabels: {app: x}}, template: {metadata: {labels: {app: x}}, spec: {containers: [{name: app, image: 'x:1'}]}}}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let workloads = vec![deployment("web", ""), Arc::new(other.slim())];
        let (snap, invalid) = snapshot(&policies, Context::default(), now(), &CATALOG);
        let plan = plan(
            &mut Ledger::default(),
            &Inputs {
                snapshot: &snap,
                objects: &policies,
                invalid: &invalid,
                workloads: &workloads,
                now: now(),
                max_violations: 100,
                leader: true,
                all_events: false,
                reports_state: status::ReportsState::Installed("openreports.io/v1alpha1"),
                reports: Some(ReportRequest {
                    options: crate::reports::ReportOptions {
                        api: ReportApi::OpenReports,
                        include_passes: true,
                        cluster: None,
                    },
                    held: &|_| None,
                }),
            },
            &Dirt::everything(),
            Instant::now,
        );
        let reports = plan.reports.unwrap_or_default();
        assert_eq!(reports.len(), 1, "none for the workload no policy matches");
        assert_eq!(reports.changed.len(), 1, "none held yet: written");
        let r = &reports.changed[0];
        assert_eq!(r.metadata.namespace.as_deref(), Some("shop"));
        let results: Vec<(&str, &str, &str)> = r
            .results
            .iter()
            .map(|x| (x.policy.as_str(), x.rule.as_str(), x.result.as_str()))
            .collect();
        assert_eq!(
            results,
            [
                ("ha", "replicas-ha", "pass"),
                ("pdb", "disruption-budget", "fail")
            ]
        );
        for p in &plan.policies {
            let c = p
                .status
                .conditions
                .iter()
                .find(|c| c.type_ == status::REPORTED);
            assert_eq!(c.map(|c| c.status.as_str()), Some("True"));
        }
        // CRD missing: no reports, Reported=False with the reason.
        let plan = super::plan(
            &mut Ledger::default(),
            &Inputs {
                snapshot: &snap,
                objects: &policies,
                invalid: &invalid,
                workloads: &workloads,
                now: now(),
                max_violations: 100,
                leader: true,
                all_events: false,
                reports_state: status::ReportsState::CrdMissing(
                    "openreports.io/v1alpha1",
                    "reports",
                ),
                reports: None,
            },
            &Dirt::everything(),
            Instant::now,
        );
        assert!(plan.reports.is_none());
        let c = plan.policies[0]
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == status::REPORTED)
            .cloned()
            .unwrap_or_else(|| panic!("no Reported condition"));
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", status::REASON_REPORT_CRD_MISSING)
        );
        assert!(c.message.contains("not installed"), "{}", c.message);
    }

    #[test]
    fn a_named_lease_schedules_a_wake_up_when_it_goes_stale() {
        use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
        let renewed = Timestamp::from_second(1_000).unwrap_or_default();
        let mut ctx = Context::default();
        let mut lease = Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some("a".into()),
                lease_duration_seconds: Some(10),
                renew_time: Some(MicroTime(renewed)),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        };
        lease.metadata.name = Some("lock".into());
        lease.metadata.namespace = Some("other".into());
        ctx.add_lease(Arc::new(lease));
        let policy = CompiledPolicy::builtin(crate::api::Profile::Baseline, &CATALOG);
        let grace = i64::from(policy.params.lease_grace_seconds);
        let mut w =
            crate::engine::Workload::from(k8s_openapi::api::apps::v1::Deployment::default());
        w.namespace = "mine".into();
        for (annotation, want) in [("other/lock", Some(1_000 + 10 + grace + 1)), ("lock", None)] {
            w.annotations = [(
                crate::engine::workload::ANNOTATION_LEASE.to_owned(),
                annotation.to_owned(),
            )]
            .into();
            assert_eq!(
                lease_stale_at(&ctx, &w, &policy).map(|t| t.as_second()),
                want,
                "{annotation}"
            );
        }
    }
}
