//! `cronjob-single-runner`: a CronJob never runs two jobs at once, and a missed run is not
//! started arbitrarily late.

use super::{Check, Examples, RuleDef, Verdict, Violation};
use crate::api::{Severity, WorkloadKind};

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "cronjob-single-runner",
    summary: "CronJob concurrencyPolicy is Forbid (or Replace where allowed) and startingDeadlineSeconds is set",
    rubric: "C8",
    default_enabled: true,
    default_severity: Severity::High,
    rationale: "A CronJob defaults to `concurrencyPolicy: Allow`: when a run is slow, the next \
        one starts beside it, and two copies of scheduled work (billing, cleanup, exports) \
        race on the same data. Without `startingDeadlineSeconds`, runs missed during a \
        controller outage are started late, whenever the controller returns, and a CronJob \
        that misses more than 100 schedules stops being scheduled at all. Suspended CronJobs \
        are checked too: they run again as soon as they are resumed.",
    example: "spec:\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: Forbid\n  startingDeadlineSeconds: 300",
    checks: "A CronJob must set `concurrencyPolicy: Forbid` (or `Replace` when `allowReplace` is \
        true), and, when `requireStartingDeadline` is true (the default), \
        `startingDeadlineSeconds`; a `startingDeadlineSeconds` below 10 is a finding too, since \
        the CronJob controller syncs every 10 seconds and may skip runs. One finding per \
        problem. Every other kind is not applicable.",
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
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
            - name: report
              image: ghcr.io/acme/report:2.0.1
"#;

/// A manifest the rule passes.
const PASS: &str = r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly-report
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
"#;

/// The CronJob controller syncs every 10 s; a smaller deadline can make every run be missed.
const MIN_STARTING_DEADLINE_SECONDS: i64 = 10;

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    let cron = match (w.kind, &w.cron) {
        (WorkloadKind::CronJob, Some(cron)) => cron,
        _ => return Verdict::NotApplicable,
    };
    let allowed = if c.params.cronjob_allow_replace {
        "Forbid or Replace"
    } else {
        "Forbid"
    };
    let mut violations = Vec::new();
    match cron.concurrency_policy.as_deref() {
        Some("Forbid") => {}
        Some("Replace") if c.params.cronjob_allow_replace => {}
        None => violations.push(Violation::workload(
            "concurrencyPolicy is unset, so the default Allow lets runs overlap",
            format!("set concurrencyPolicy: {allowed}"),
        )),
        Some(other) => violations.push(Violation::workload(
            format!("concurrencyPolicy is \"{other}\", which lets two runs overlap"),
            format!("set concurrencyPolicy: {allowed}"),
        )),
    }
    match cron.starting_deadline_seconds {
        None if c.params.cronjob_require_starting_deadline => {
            violations.push(Violation::workload(
                "startingDeadlineSeconds is unset, so missed runs start arbitrarily late",
                "set startingDeadlineSeconds (e.g. 300)",
            ))
        }
        Some(s) if s < MIN_STARTING_DEADLINE_SECONDS => violations.push(Violation::workload(
            format!(
                "startingDeadlineSeconds is {s}, below the controller's 10s sync, so runs may be skipped"
            ),
            "set startingDeadlineSeconds to at least 10 (e.g. 300)",
        )),
        _ => {}
    }
    Verdict::from_violations(violations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Context;
    use crate::rules::Params;
    use crate::rules::testing::{check, check_with, violations, workload};

    fn cronjob(spec_extra: &str) -> String {
        format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: nightly}}\nspec:\n  schedule: '0 3 * * *'\n{spec_extra}  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{{name: job, image: 'job:1'}}]\n"
        )
    }

    fn messages(v: Verdict) -> Vec<String> {
        violations(v).into_iter().map(|v| v.message).collect()
    }

    #[test]
    fn passes_with_forbid_and_a_deadline() {
        let w = workload(&cronjob(
            "  concurrencyPolicy: Forbid\n  startingDeadlineSeconds: 300\n",
        ));
        assert_eq!(check(&RULE, &w), Verdict::Pass);
    }

    #[test]
    fn unset_policy_and_deadline_are_separate_violations() {
        let w = workload(&cronjob(""));
        let v = violations(check(&RULE, &w));
        assert_eq!(
            v.iter().map(|v| v.message.as_str()).collect::<Vec<_>>(),
            vec![
                "concurrencyPolicy is unset, so the default Allow lets runs overlap",
                "startingDeadlineSeconds is unset, so missed runs start arbitrarily late",
            ]
        );
        assert!(v.iter().all(|v| v.container.is_none()));
        assert_eq!(v[0].remediation, "set concurrencyPolicy: Forbid");
    }

    #[test]
    fn explicit_allow_fails() {
        let w = workload(&cronjob(
            "  concurrencyPolicy: Allow\n  startingDeadlineSeconds: 60\n",
        ));
        assert_eq!(
            messages(check(&RULE, &w)),
            vec!["concurrencyPolicy is \"Allow\", which lets two runs overlap"]
        );
    }

    #[test]
    fn replace_depends_on_the_parameter() {
        let w = workload(&cronjob(
            "  concurrencyPolicy: Replace\n  startingDeadlineSeconds: 60\n",
        ));
        assert_eq!(
            messages(check(&RULE, &w)),
            vec!["concurrencyPolicy is \"Replace\", which lets two runs overlap"]
        );
        let params = Params {
            cronjob_allow_replace: true,
            ..Params::default()
        };
        assert_eq!(
            check_with(&RULE, &w, &Context::default(), &params),
            Verdict::Pass
        );
    }

    #[test]
    fn deadline_is_optional_when_not_required_but_never_below_ten_seconds() {
        let params = Params {
            cronjob_require_starting_deadline: false,
            ..Params::default()
        };
        let unset = workload(&cronjob("  concurrencyPolicy: Forbid\n"));
        assert_eq!(
            check_with(&RULE, &unset, &Context::default(), &params),
            Verdict::Pass
        );
        let tiny = workload(&cronjob(
            "  concurrencyPolicy: Forbid\n  startingDeadlineSeconds: 5\n",
        ));
        assert_eq!(
            messages(check_with(&RULE, &tiny, &Context::default(), &params)),
            vec![
                "startingDeadlineSeconds is 5, below the controller's 10s sync, so runs may be skipped"
            ]
        );
    }

    #[test]
    fn suspended_cronjobs_are_still_checked() {
        let w = workload(&cronjob("  suspend: true\n  startingDeadlineSeconds: 60\n"));
        assert_eq!(messages(check(&RULE, &w)).len(), 1);
    }

    #[test]
    fn other_kinds_are_not_applicable() {
        for yaml in [
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: 'a:1'}]\n",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
        ] {
            assert_eq!(check(&RULE, &workload(yaml)), Verdict::NotApplicable);
        }
    }

    #[test]
    fn cronjob_without_spec_fails_on_defaults() {
        let w = workload("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\n");
        assert_eq!(messages(check(&RULE, &w)).len(), 2);
    }
}
