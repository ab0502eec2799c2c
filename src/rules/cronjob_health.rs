//! `cronjob-health`: a CronJob's scheduled work really runs. Decided from the CronJob's
//! `status` and the Jobs it controls (the context's runs), so it is live: the operator decides
//! it continuously, `audit` decides it when its input carries the status (e.g.
//! `kubectl get cronjobs,jobs -o yaml`) and says `unknown` otherwise.
//!
//! It fails when the CronJob is suspended, when more than one Job of a Forbid/Replace CronJob
//! runs at once, when its last runs all failed, or when no run has succeeded for longer than
//! the schedule allows: the run due first after the last success (or after creation) may be
//! missed or fail, and so may the next, but once a third scheduled time (plus
//! `startingDeadlineSeconds`) has passed without a success, the work is not being done.

use k8s_openapi::jiff::{Timestamp, tz::TimeZone};

use super::{Check, Examples, RuleDef, Verdict, Violation};
use crate::api::{Severity, WorkloadKind};
use crate::engine::context::{JobRun, RunState};
use crate::engine::workload::{CronSchedule, CronStatus};
use crate::engine::{Context, Params, Workload};

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "cronjob-health",
    summary: "a CronJob's runs really happen: a recent success, no overlapping runs under Forbid/Replace, not only failures, not suspended",
    rubric: "C8, O1",
    default_enabled: true,
    default_severity: Severity::High,
    rationale: "A CronJob can be configured perfectly and still do nothing: its Jobs fail every \
        night, its schedule is missed while the controller is down, two of its Jobs run at once \
        although it forbids it, or someone suspended it and forgot. Nothing in Kubernetes tells \
        anyone. This rule reads the CronJob's status and its Jobs: it fails when no run has \
        succeeded since the third scheduled time after the last success (or after creation) \
        plus `startingDeadlineSeconds` (the schedule is read in `spec.timeZone`), when more \
        than one Job of a Forbid or Replace CronJob is active, when the last `failedRuns` \
        finished Jobs all failed (at most `failedJobsHistoryLimit`, since older failed Jobs \
        are deleted), and when the CronJob is suspended. The operator decides it live; `audit` \
        decides it from the status in its input (`kubectl get cronjobs,jobs -o yaml`) and \
        reports `unknown` for manifests, which have none.",
    example: "# Find out why the runs fail, fix the job, then check its latest run:\n\
        #   kubectl get jobs -l batch.kubernetes.io/cronjob-name=NAME\n\
        #   kubectl logs job/NAME-28934460\n\
        spec:\n  schedule: \"0 3 * * *\"\n  timeZone: Europe/Berlin\n  concurrencyPolicy: Forbid\n  startingDeadlineSeconds: 300\n  suspend: false",
    checks: "Reads the CronJob's `status` and the Jobs it controls (those whose controller \
        ownerReference names it). It fails when the CronJob is suspended; when more than one of \
        its Jobs runs at once under `concurrencyPolicy` Forbid or Replace; when its last \
        `failedRuns` finished Jobs all failed; or when no run has succeeded since the third \
        scheduled time (plus `startingDeadlineSeconds`) after its last success or creation. \
        Without a `status` (a manifest from git rather than from the cluster) it is unknown: \
        audit `kubectl get cronjobs,jobs -o yaml` to judge live CronJobs; the operator judges \
        them continuously. Other kinds are not applicable. The verdict depends on the evaluation \
        instant: the examples below are judged at the fixed instant named under them.",
    examples: Examples {
        settings: "",
        fail: FAIL,
        pass: PASS,
    },
    check,
};

/// A manifest the rule fails (its page shows it; a test runs it).
const FAIL: &str = r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly-report
spec:
  schedule: "0 3 * * *"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: report
              image: ghcr.io/acme/report:2.0.1
status: {}
"#;

/// A manifest the rule passes.
const PASS: &str = r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly-report
  creationTimestamp: "2026-05-01T00:00:00Z"
spec:
  schedule: "0 3 * * *"
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 300
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: report
              image: ghcr.io/acme/report:2.0.1
status:
  lastScheduleTime: "2026-06-01T03:00:00Z"
  lastSuccessfulTime: "2026-06-01T03:04:10Z"
"#;

/// Why the rule cannot decide from a manifest.
pub const NO_STATUS: &str = "the CronJob has no status in this input, so whether its runs \
    succeed cannot be told offline; the operator decides it live, or audit the cluster's \
    objects (kubectl get cronjobs,jobs -o yaml)";

/// How many scheduled times after the last success pass before the CronJob counts as
/// overdue: the first run may be missed or fail, and so may the second.
const SCHEDULES_ALLOWED: usize = 3;

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    let cron = match (w.kind, &w.cron) {
        (WorkloadKind::CronJob, Some(cron)) => cron,
        _ => return Verdict::NotApplicable,
    };
    let Some(status) = &cron.status else {
        return Verdict::Unknown(NO_STATUS.to_owned());
    };
    if cron.suspend {
        return Verdict::Fail(vec![Violation::workload(
            "the CronJob is suspended, so none of its scheduled runs start",
            "resume it (spec.suspend: false), or exempt it with a reason while it is paused on purpose",
        )]);
    }
    let runs = c.context.job_runs(&w.namespace, &w.name);
    let mut violations = Vec::new();
    if let Some(v) = overlapping(cron, status, &runs) {
        violations.push(v);
    }
    if let Some(v) = failing(cron, c.params, &runs) {
        violations.push(v);
    }
    match overdue(cron, status, &runs) {
        Ok(Some(o)) if c.now >= o.at => violations.push(Violation::workload(
            format!(
                "no run has succeeded since {} ({}); the runs scheduled for {} should have by now",
                o.since,
                if o.ever_succeeded {
                    "its last success"
                } else {
                    "its creation; it never succeeded"
                },
                o.missed
                    .iter()
                    .map(Timestamp::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "check why its Jobs fail or are not created (kubectl describe cronjob, kubectl get jobs, the Jobs' logs)",
        )),
        Ok(_) => {}
        Err(reason) if violations.is_empty() => return Verdict::Unknown(reason),
        Err(_) => {}
    }
    Verdict::from_violations(violations)
}

/// More than one Job running at once although the CronJob forbids it.
fn overlapping(cron: &CronSchedule, status: &CronStatus, runs: &[&JobRun]) -> Option<Violation> {
    let policy = cron.concurrency_policy.as_deref()?;
    if policy != "Forbid" && policy != "Replace" {
        return None;
    }
    let mut active: Vec<&str> = status.active.iter().map(String::as_str).collect();
    active.extend(
        runs.iter()
            .filter(|r| r.state == RunState::Running)
            .map(|r| r.name.as_str()),
    );
    active.sort_unstable();
    active.dedup();
    (active.len() > 1).then(|| {
        Violation::workload(
            format!(
                "{} Jobs run at once although concurrencyPolicy is {policy}: {}",
                active.len(),
                active.join(", ")
            ),
            "delete the extra Jobs and find out who creates them (a manual `kubectl create job --from`, a second controller, a Replace that cannot stop the old run)",
        )
    })
}

/// How many of the last finished runs must all have failed: `failedRuns`, but no more than
/// the CronJob keeps (`failedJobsHistoryLimit`, default 1); 0 when it keeps no failed Job.
fn failed_runs_needed(cron: &CronSchedule, params: &Params) -> usize {
    let kept = usize::try_from(cron.failed_jobs_history_limit.unwrap_or(1)).unwrap_or(0);
    usize::try_from(params.cronjob_failed_runs.max(1))
        .unwrap_or(1)
        .min(kept)
}

/// The last runs all failed.
fn failing(cron: &CronSchedule, params: &Params, runs: &[&JobRun]) -> Option<Violation> {
    let needed = failed_runs_needed(cron, params);
    if needed == 0 {
        return None;
    }
    let finished: Vec<&JobRun> = runs
        .iter()
        .copied()
        .filter(|r| r.state != RunState::Running)
        .collect();
    let last = finished.get(finished.len().checked_sub(needed)?..)?;
    last.iter().all(|r| r.state == RunState::Failed).then(|| {
        let names: Vec<&str> = last.iter().map(|r| r.name.as_str()).collect();
        Violation::workload(
            if needed == 1 {
                format!("its last run failed (Job {})", names.join(", "))
            } else {
                format!(
                    "its last {needed} runs all failed (Jobs {})",
                    names.join(", ")
                )
            },
            "read the failed Jobs' pods and logs (kubectl logs job/NAME) and fix the job",
        )
    })
}

/// When a CronJob becomes overdue, and the facts the message names.
#[derive(Debug, PartialEq)]
pub struct Overdue {
    /// The instant from which it counts as overdue.
    pub at: Timestamp,
    /// The last success, or the creation when it never succeeded.
    pub since: Timestamp,
    /// Whether it ever succeeded.
    pub ever_succeeded: bool,
    /// The scheduled times that passed without a success.
    pub missed: Vec<Timestamp>,
}

/// When the CronJob counts as overdue if no run succeeds before; `Ok(None)` when it never
/// will (its status is unknown or the schedule fires no more), `Err` when the schedule or time
/// zone cannot be read.
pub fn overdue(
    cron: &CronSchedule,
    status: &CronStatus,
    runs: &[&JobRun],
) -> Result<Option<Overdue>, String> {
    let success = runs
        .iter()
        .filter(|r| r.state == RunState::Succeeded)
        .filter_map(|r| r.finished)
        .chain(status.last_successful)
        .max();
    let Some(since) = success.or(cron.created) else {
        return Err(
            "the CronJob has never succeeded and its creation time is unknown, so \
            how overdue it is cannot be told"
                .to_owned(),
        );
    };
    let (pattern, zone) = schedule_and_zone(cron)?;
    let cron_expr = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(&pattern)
        .map_err(|e| format!("the schedule \"{}\" cannot be read: {e}", cron.schedule))?;
    let mut at = since.to_zoned(zone);
    let mut missed = Vec::with_capacity(SCHEDULES_ALLOWED);
    for _ in 0..SCHEDULES_ALLOWED {
        at = match cron_expr.find_next_occurrence(&at, false) {
            Ok(next) => next,
            // The schedule fires no more (e.g. 30 February): nothing can be overdue.
            Err(croner::errors::CronError::TimeSearchLimitExceeded) => return Ok(None),
            Err(e) => {
                return Err(format!(
                    "the next times of schedule \"{}\" cannot be computed: {e}",
                    cron.schedule
                ));
            }
        };
        missed.push(at.timestamp());
    }
    let deadline = cron.starting_deadline_seconds.unwrap_or(0).max(0);
    let at = at
        .timestamp()
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(deadline))
        .map_err(|e| format!("the overdue instant cannot be computed: {e}"))?;
    Ok(Some(Overdue {
        at,
        since,
        ever_succeeded: success.is_some(),
        missed,
    }))
}

/// The cron pattern croner reads and the time zone it is read in: `spec.timeZone`, or a
/// `CRON_TZ=`/`TZ=` prefix of the schedule (older CronJobs), else UTC (the controller
/// manager's zone in practice). Kubernetes' `@midnight` is croner's `@daily`.
fn schedule_and_zone(cron: &CronSchedule) -> Result<(String, TimeZone), String> {
    let mut schedule = cron.schedule.trim();
    let mut zone_name = cron.time_zone.as_deref();
    for prefix in ["CRON_TZ=", "TZ="] {
        if let Some(rest) = schedule.strip_prefix(prefix) {
            let (zone, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            zone_name = zone_name.or(Some(zone));
            schedule = rest.trim();
        }
    }
    let pattern = if schedule.eq_ignore_ascii_case("@midnight") {
        "@daily".to_owned()
    } else if schedule.to_ascii_lowercase().starts_with("@every") {
        return Err(format!(
            "the schedule \"{}\" is an interval (@every), which prodready does not read",
            cron.schedule
        ));
    } else {
        schedule.to_owned()
    };
    let zone = match zone_name.map(str::trim).filter(|z| !z.is_empty()) {
        None => TimeZone::UTC,
        Some(name) => TimeZone::get(name).map_err(|e| {
            format!("the time zone \"{name}\" of the schedule is unknown ({e}); the CronJob controller does not run it either")
        })?,
    };
    Ok((pattern, zone))
}

/// When the verdict of `cronjob-health` on `w` changes by itself (the CronJob becomes overdue
/// unless a run succeeds first), for the controller's wake-up. `None` when it never will.
pub fn overdue_at(w: &Workload, ctx: &Context) -> Option<Timestamp> {
    let cron = w.cron.as_ref().filter(|c| !c.suspend)?;
    let status = cron.status.as_ref()?;
    let runs = ctx.job_runs(&w.namespace, &w.name);
    overdue(cron, status, &runs).ok().flatten().map(|o| o.at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{check, check_with, context, now, violations, workload};

    /// A CronJob with the given spec lines (indented two) and status block (indented two;
    /// empty for none).
    fn cronjob(spec_extra: &str, status: &str) -> Workload {
        let status = if status.is_empty() {
            String::new()
        } else {
            format!("status:\n{status}")
        };
        workload(&format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: nightly, namespace: ops, creationTimestamp: '2026-05-01T00:00:00Z'}}\nspec:\n  schedule: '0 3 * * *'\n{spec_extra}  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{{name: job, image: 'job:1'}}]\n{status}"
        ))
    }

    /// A Job of `nightly` created at `created`, in state `state` (`running`, `ok`, `failed`)
    /// finished at `finished`.
    fn job(name: &str, created: &str, state: &str, finished: &str) -> String {
        let status = match state {
            "ok" => format!(
                "status: {{completionTime: '{finished}', conditions: [{{type: Complete, status: 'True', lastTransitionTime: '{finished}'}}]}}"
            ),
            "failed" => format!(
                "status: {{failed: 1, conditions: [{{type: Failed, status: 'True', lastTransitionTime: '{finished}'}}]}}"
            ),
            _ => "status: {active: 1}".to_owned(),
        };
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n  namespace: ops\n  creationTimestamp: '{created}'\n  ownerReferences: [{{apiVersion: batch/v1, kind: CronJob, name: nightly, uid: u1, controller: true}}]\nspec:\n  template:\n    spec: {{containers: [{{name: job, image: 'job:1'}}]}}\n{status}\n---\n"
        )
    }

    fn run(w: &Workload, jobs: &str) -> Verdict {
        check_with(&RULE, w, &context(jobs), &Params::default())
    }

    // The tests evaluate at 2026-06-01T00:00:00Z; the schedule runs at 03:00 every day.
    const RECENT: &str = "  lastScheduleTime: '2026-05-31T03:00:00Z'\n  lastSuccessfulTime: '2026-05-31T03:05:00Z'\n";

    #[test]
    fn a_recent_success_passes() {
        assert_eq!(run(&cronjob("", RECENT), ""), Verdict::Pass);
    }

    #[test]
    fn other_kinds_are_not_applicable_and_a_manifest_is_unknown() {
        let d = workload(&crate::rules::testing::deployment(
            "      containers: [{name: a, image: 'a:1'}]\n",
        ));
        assert_eq!(check(&RULE, &d), Verdict::NotApplicable);
        assert_eq!(
            check(&RULE, &cronjob("", "")),
            Verdict::Unknown(NO_STATUS.to_owned())
        );
    }

    #[test]
    fn no_success_for_three_schedules_fails_two_do_not() {
        // Last success on 05-28 after the 03:00 run: 05-29, 05-30 and 05-31 03:00 passed.
        let stale = "  lastSuccessfulTime: '2026-05-28T03:05:00Z'\n";
        let v = violations(run(&cronjob("", stale), ""));
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message
                .contains("since 2026-05-28T03:05:00Z (its last success)"),
            "{}",
            v[0].message
        );
        assert!(
            v[0].message.contains("2026-05-31T03:00:00Z"),
            "{}",
            v[0].message
        );
        // Success on 05-29: only 05-30 and 05-31 passed.
        let two = "  lastSuccessfulTime: '2026-05-29T03:05:00Z'\n";
        assert_eq!(run(&cronjob("", two), ""), Verdict::Pass);
    }

    #[test]
    fn the_starting_deadline_extends_the_allowance() {
        // Third schedule at 05-31T23:00 (hourly at :00 from 21:30): now is 06-01T00:00.
        let w = |deadline: &str| {
            cronjob(
                &format!("  startingDeadlineSeconds: {deadline}\n"),
                "  lastSuccessfulTime: '2026-05-31T20:30:00Z'\n",
            )
        };
        let hourly = |mut w: Workload| {
            if let Some(c) = w.cron.as_mut() {
                c.schedule = "0 * * * *".to_owned();
            }
            w
        };
        // 21:00, 22:00, 23:00 passed; deadline 300 s → overdue at 23:05.
        assert!(matches!(run(&hourly(w("300")), ""), Verdict::Fail(_)));
        // Deadline 7200 s → overdue at 01:00, not yet.
        assert_eq!(run(&hourly(w("7200")), ""), Verdict::Pass);
    }

    #[test]
    fn a_cronjob_that_never_ran_counts_from_its_creation() {
        // Created 05-01 (see `cronjob`), never succeeded.
        let v = violations(run(&cronjob("", "  {}\n"), ""));
        assert!(
            v[0].message.contains("its creation; it never succeeded"),
            "{}",
            v[0].message
        );
        // Created yesterday evening: only one schedule passed.
        let mut fresh = cronjob("", "  {}\n");
        if let Some(c) = fresh.cron.as_mut() {
            c.created = Timestamp::from_second(now().as_second() - 6 * 3600).ok();
        }
        assert_eq!(run(&fresh, ""), Verdict::Pass);
        // No creation time and no success: cannot tell.
        if let Some(c) = fresh.cron.as_mut() {
            c.created = None;
        }
        assert!(matches!(run(&fresh, ""), Verdict::Unknown(r) if r.contains("creation time")));
    }

    #[test]
    fn the_time_zone_moves_the_schedule() {
        // A success at 05-29T05:00Z. In UTC the runs of 05-30, 05-31 and 06-01 at 03:00Z are
        // due: the third has not come yet. 03:00 in Pacific/Kiritimati (UTC+14) is 13:00Z the
        // day before: 05-29, 05-30 and 05-31 at 13:00Z have all passed.
        let status = "  lastSuccessfulTime: '2026-05-29T05:00:00Z'\n";
        assert_eq!(run(&cronjob("", status), ""), Verdict::Pass);
        let v = run(&cronjob("  timeZone: Pacific/Kiritimati\n", status), "");
        assert!(
            matches!(&v, Verdict::Fail(v) if v[0].message.contains("2026-05-29T13:00:00Z, 2026-05-30T13:00:00Z, 2026-05-31T13:00:00Z")),
            "{v:?}"
        );
        // The legacy CRON_TZ= prefix is honoured the same way.
        let mut legacy = cronjob("", status);
        if let Some(c) = legacy.cron.as_mut() {
            c.schedule = "CRON_TZ=Pacific/Kiritimati 0 3 * * *".to_owned();
        }
        assert!(matches!(run(&legacy, ""), Verdict::Fail(_)));
    }

    #[test]
    fn an_unknown_zone_or_an_unreadable_schedule_is_unknown() {
        let v = run(&cronjob("  timeZone: Mars/Olympus\n", RECENT), "");
        assert!(
            matches!(&v, Verdict::Unknown(r) if r.contains("Mars/Olympus")),
            "{v:?}"
        );
        let mut every = cronjob("", RECENT);
        if let Some(c) = every.cron.as_mut() {
            c.schedule = "@every 5m".to_owned();
        }
        assert!(matches!(run(&every, ""), Verdict::Unknown(r) if r.contains("@every")));
        let mut bad = cronjob("", RECENT);
        if let Some(c) = bad.cron.as_mut() {
            c.schedule = "61 * * * *".to_owned();
        }
        assert!(matches!(run(&bad, ""), Verdict::Unknown(r) if r.contains("cannot be read")));
        // Kubernetes' @midnight reads as @daily.
        let mut midnight = cronjob("", RECENT);
        if let Some(c) = midnight.cron.as_mut() {
            c.schedule = "@midnight".to_owned();
        }
        assert_eq!(run(&midnight, ""), Verdict::Pass);
    }

    #[test]
    fn a_schedule_that_never_fires_is_never_overdue() {
        let mut w = cronjob("", "  lastSuccessfulTime: '2020-01-01T00:00:00Z'\n");
        if let Some(c) = w.cron.as_mut() {
            c.schedule = "0 0 30 2 *".to_owned();
        }
        assert_eq!(run(&w, ""), Verdict::Pass);
    }

    #[test]
    fn a_suspended_cronjob_is_reported_as_such() {
        let v = violations(run(&cronjob("  suspend: true\n", RECENT), ""));
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("suspended"));
    }

    #[test]
    fn two_running_jobs_of_a_forbid_cronjob_fail_of_an_allow_cronjob_do_not() {
        let jobs = job("nightly-1", "2026-05-31T03:00:00Z", "running", "")
            + &job("nightly-2", "2026-05-31T23:00:00Z", "running", "");
        let forbid = cronjob("  concurrencyPolicy: Forbid\n", RECENT);
        let v = violations(run(&forbid, &jobs));
        assert_eq!(v.len(), 1);
        assert!(
            v[0].message.contains(
                "2 Jobs run at once although concurrencyPolicy is Forbid: nightly-1, nightly-2"
            ),
            "{}",
            v[0].message
        );
        let replace = cronjob("  concurrencyPolicy: Replace\n", RECENT);
        assert!(matches!(run(&replace, &jobs), Verdict::Fail(_)));
        assert_eq!(run(&cronjob("", RECENT), &jobs), Verdict::Pass);
        // One running Job is fine; the status's active list counts as well.
        let one = job("nightly-1", "2026-05-31T03:00:00Z", "running", "");
        assert_eq!(run(&forbid, &one), Verdict::Pass);
        let status = format!("{RECENT}  active: [{{name: nightly-0}}]\n");
        let w = cronjob("  concurrencyPolicy: Forbid\n", &status);
        assert!(matches!(run(&w, &one), Verdict::Fail(_)));
        // The same Job in both is counted once.
        let status = format!("{RECENT}  active: [{{name: nightly-1}}]\n");
        let w = cronjob("  concurrencyPolicy: Forbid\n", &status);
        assert_eq!(run(&w, &one), Verdict::Pass);
    }

    #[test]
    fn the_last_runs_all_failed_fails_a_later_success_passes() {
        let failed = job(
            "nightly-1",
            "2026-05-29T03:00:00Z",
            "failed",
            "2026-05-29T03:10:00Z",
        ) + &job(
            "nightly-2",
            "2026-05-30T03:00:00Z",
            "failed",
            "2026-05-30T03:10:00Z",
        ) + &job(
            "nightly-3",
            "2026-05-31T03:00:00Z",
            "failed",
            "2026-05-31T03:10:00Z",
        );
        // The default failedJobsHistoryLimit (1): the last run failing is enough.
        let v = violations(run(&cronjob("", RECENT), &failed));
        assert_eq!(v[0].message, "its last run failed (Job nightly-3)");
        // Keeping 5 failed Jobs: the default failedRuns (3) applies.
        let keeps = cronjob("  failedJobsHistoryLimit: 5\n", RECENT);
        let v = violations(run(&keeps, &failed));
        assert_eq!(
            v[0].message,
            "its last 3 runs all failed (Jobs nightly-1, nightly-2, nightly-3)"
        );
        // Two failures after a success are not three.
        let mixed = job(
            "nightly-1",
            "2026-05-29T03:00:00Z",
            "ok",
            "2026-05-29T03:10:00Z",
        ) + &job(
            "nightly-2",
            "2026-05-30T03:00:00Z",
            "failed",
            "2026-05-30T03:10:00Z",
        ) + &job(
            "nightly-3",
            "2026-05-31T03:00:00Z",
            "failed",
            "2026-05-31T03:10:00Z",
        );
        assert_eq!(run(&keeps, &mixed), Verdict::Pass);
        // A later success turns it back; a running Job does not count as finished.
        let healed = failed.clone()
            + &job(
                "nightly-4",
                "2026-05-31T12:00:00Z",
                "ok",
                "2026-05-31T12:10:00Z",
            )
            + &job("nightly-5", "2026-05-31T23:00:00Z", "running", "");
        assert_eq!(run(&keeps, &healed), Verdict::Pass);
        // No failed Job kept: the check cannot see failures (the schedule check still can).
        let none = cronjob("  failedJobsHistoryLimit: 0\n", RECENT);
        assert_eq!(run(&none, &failed), Verdict::Pass);
        // failedRuns is a policy parameter.
        let params = Params {
            cronjob_failed_runs: 2,
            ..Params::default()
        };
        let v = violations(check_with(&RULE, &keeps, &context(&failed), &params));
        assert_eq!(
            v[0].message,
            "its last 2 runs all failed (Jobs nightly-2, nightly-3)"
        );
    }

    #[test]
    fn a_succeeded_job_counts_as_a_success_before_the_status_says_so() {
        let stale = cronjob("", "  lastSuccessfulTime: '2026-05-20T03:05:00Z'\n");
        assert!(matches!(run(&stale, ""), Verdict::Fail(_)));
        let ok = job(
            "nightly-9",
            "2026-05-31T03:00:00Z",
            "ok",
            "2026-05-31T03:04:00Z",
        );
        assert_eq!(run(&stale, &ok), Verdict::Pass);
    }

    #[test]
    fn runs_of_other_cronjobs_or_namespaces_do_not_count() {
        let other = job("nightly-1", "2026-05-31T03:00:00Z", "running", "")
            .replace("name: nightly,", "name: weekly,")
            + &job("nightly-2", "2026-05-31T03:00:00Z", "running", "")
                .replace("namespace: ops", "namespace: dev");
        let forbid = cronjob("  concurrencyPolicy: Forbid\n", RECENT);
        assert_eq!(run(&forbid, &other), Verdict::Pass);
    }

    #[test]
    fn overdue_at_is_the_instant_the_verdict_flips() {
        let w = cronjob("  startingDeadlineSeconds: 60\n", RECENT);
        let at = overdue_at(&w, &Context::default());
        assert_eq!(
            at.map(|t| t.to_string()),
            Some("2026-06-03T03:01:00Z".to_owned())
        );
        let suspended = cronjob("  suspend: true\n", RECENT);
        assert_eq!(overdue_at(&suspended, &Context::default()), None);
    }
}
