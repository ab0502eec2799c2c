//! Exemptions: from the policy (always), and from workload annotations (only where the
//! policy allows them). An expired exemption stops applying at its instant.

use k8s_openapi::jiff::Timestamp;

use super::workload::{ANNOTATION_EXEMPT, ANNOTATION_EXEMPT_REASON, ANNOTATION_EXEMPT_UNTIL};
use super::{CompiledPolicy, Workload, selector};
use crate::api::Exemption;

/// Where an exemption was granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExemptionSource {
    /// `spec.exemptions[index]` of the policy.
    Policy {
        /// Index in `spec.exemptions`.
        index: usize,
    },
    /// The workload's `prodready.dev/exempt` annotations.
    Annotation,
}

/// An exemption that applies to a (workload, rule) pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedExemption {
    /// Its stated reason.
    pub reason: String,
    /// When it stops applying.
    pub expires: Option<Timestamp>,
    /// Where it was granted.
    pub source: ExemptionSource,
}

/// The exemptions that concern one workload, found once and then asked per rule.
#[derive(Debug, Default)]
pub(crate) struct WorkloadExemptions<'p> {
    policy: Vec<(usize, &'p Exemption)>,
    annotation: Option<(Vec<String>, AppliedExemption)>,
    /// Why the workload's own exemption annotations were not honoured, if they were not.
    pub ignored_annotation: Option<String>,
}

fn covers(rules: &[String], id: &str) -> bool {
    rules.iter().any(|r| r == "*" || r == id)
}

impl<'p> WorkloadExemptions<'p> {
    pub(crate) fn find(policy: &'p CompiledPolicy, w: &Workload, now: Timestamp) -> Self {
        let mut out = WorkloadExemptions::default();
        for (index, ex) in policy.spec.exemptions.iter().enumerate() {
            let live = ex.expires.as_ref().is_none_or(|t| now < t.0);
            let ns_ok = ex.namespaces.is_empty() || ex.namespaces.contains(&w.namespace);
            let name_ok = ex.names.is_empty() || ex.names.contains(&w.name);
            let sel_ok = ex
                .selector
                .as_ref()
                .is_none_or(|s| selector::matches(s, &w.labels));
            if live && ns_ok && name_ok && sel_ok {
                out.policy.push((index, ex));
            }
        }
        if let Some(list) = w.annotation(ANNOTATION_EXEMPT) {
            let rules: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let reason = w
                .annotation(ANNOTATION_EXEMPT_REASON)
                .map(str::trim)
                .unwrap_or("");
            let until = w.annotation(ANNOTATION_EXEMPT_UNTIL).map(str::trim);
            let expires = until.map(|u| u.parse::<Timestamp>());
            out.ignored_annotation = if !policy.spec.allow_annotation_exemptions {
                Some(format!(
                    "annotation {ANNOTATION_EXEMPT} ignored: policy {} does not allow annotation exemptions",
                    policy.name
                ))
            } else if reason.is_empty() {
                Some(format!(
                    "annotation {ANNOTATION_EXEMPT} ignored: {ANNOTATION_EXEMPT_REASON} is missing"
                ))
            } else if let Some(Err(e)) = &expires {
                Some(format!(
                    "annotation {ANNOTATION_EXEMPT} ignored: {ANNOTATION_EXEMPT_UNTIL} is not an RFC 3339 instant ({e})"
                ))
            } else if let Some(Ok(t)) = &expires
                && *t <= now
            {
                Some(format!("annotation {ANNOTATION_EXEMPT} expired at {t}"))
            } else {
                let expires = expires.and_then(Result::ok);
                out.annotation = Some((
                    rules,
                    AppliedExemption {
                        reason: reason.to_owned(),
                        expires,
                        source: ExemptionSource::Annotation,
                    },
                ));
                None
            };
        }
        out
    }

    /// The exemption of the policy that covers a rule for one container (an exemption that
    /// names `containers`), if any.
    pub(crate) fn for_container(&self, id: &str, container: &str) -> Option<AppliedExemption> {
        self.policy
            .iter()
            .find(|(_, ex)| covers(&ex.rules, id) && ex.containers.iter().any(|c| c == container))
            .map(|(index, ex)| AppliedExemption {
                reason: ex.reason.clone(),
                expires: ex.expires.as_ref().map(|t| t.0),
                source: ExemptionSource::Policy { index: *index },
            })
    }

    /// The exemption that applies to a rule for the whole workload, if any (policy
    /// exemptions first; those naming `containers` cover only those containers).
    pub(crate) fn for_rule(&self, id: &str) -> Option<AppliedExemption> {
        if let Some((index, ex)) = self
            .policy
            .iter()
            .find(|(_, ex)| ex.containers.is_empty() && covers(&ex.rules, id))
        {
            return Some(AppliedExemption {
                reason: ex.reason.clone(),
                expires: ex.expires.as_ref().map(|t| t.0),
                source: ExemptionSource::Policy { index: *index },
            });
        }
        match &self.annotation {
            Some((rules, applied)) if covers(rules, id) => Some(applied.clone()),
            _ => None,
        }
    }

    /// The earliest expiry among the exemptions found (for scheduling a re-evaluation).
    pub(crate) fn next_expiry(&self) -> Option<Timestamp> {
        let policy = self
            .policy
            .iter()
            .filter_map(|(_, e)| e.expires.as_ref().map(|t| t.0));
        let annotation = self.annotation.as_ref().and_then(|(_, a)| a.expires);
        policy.chain(annotation).min()
    }
}
