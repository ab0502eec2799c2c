//! Policy reports: one namespaced report per workload, in the shape the policy ecosystem reads
//! (OpenReports `openreports.io/v1alpha1` `Report`, or its predecessor `wgpolicyk8s.io/v1alpha2`
//! `PolicyReport`). A pure function of a workload's evaluations under every policy that
//! matches it, so `prodready audit -o openreports` and the controller's report writer produce
//! the same document for the same workload.
//!
//! A report carries no timestamp: its content changes only when a verdict does, so the
//! controller writes only then and an idle cluster costs no report traffic.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::{Deserialize, Serialize};

use crate::api::{Severity, WorkloadKind};
use crate::engine::{
    AppliedExemption, Evaluation, ExemptionSource, Outcome, RuleResult, Violation,
};

/// The `source` of every report and result prodready writes.
pub const SOURCE: &str = "prodready";
/// The label every report prodready writes carries (value [`SOURCE`]); the controller watches
/// and deletes only reports with it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The annotation holding the workload key (`Kind/namespace/name`) a report is about.
pub const WORKLOAD_ANNOTATION: &str = "prodready.dev/workload";
/// The label naming the cluster a report comes from (`--cluster-name`, or the kubeconfig
/// context in a fleet audit), when the name is a valid label value: Policy Reporter and
/// `kubectl get reports -l` select on it.
pub const CLUSTER_LABEL: &str = "prodready.dev/cluster-name";
/// The result property naming the cluster (always, whatever its characters): a result read
/// apart from its report (a central UI, a SARIF or JUnit converter) still says where it is.
pub const CLUSTER_PROPERTY: &str = "cluster-name";

/// Which report API to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ReportApi {
    /// `openreports.io/v1alpha1` `Report`.
    #[value(name = "openreports")]
    OpenReports,
    /// `wgpolicyk8s.io/v1alpha2` `PolicyReport` (severities critical → high: old CRDs allow
    /// only high, medium and low).
    #[value(name = "policyreport")]
    PolicyReport,
}

impl ReportApi {
    /// The API group.
    pub fn group(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "openreports.io",
            ReportApi::PolicyReport => "wgpolicyk8s.io",
        }
    }

    /// The version.
    pub fn version(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "v1alpha1",
            ReportApi::PolicyReport => "v1alpha2",
        }
    }

    /// `group/version`.
    pub fn api_version(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "openreports.io/v1alpha1",
            ReportApi::PolicyReport => "wgpolicyk8s.io/v1alpha2",
        }
    }

    /// The kind.
    pub fn kind(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "Report",
            ReportApi::PolicyReport => "PolicyReport",
        }
    }

    /// The resource (plural).
    pub fn plural(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "reports",
            ReportApi::PolicyReport => "policyreports",
        }
    }

    /// The name the CRD has (`plural.group`).
    pub fn crd_name(self) -> &'static str {
        match self {
            ReportApi::OpenReports => "reports.openreports.io",
            ReportApi::PolicyReport => "policyreports.wgpolicyk8s.io",
        }
    }

    /// A severity as this API accepts it: one to one for OpenReports; critical becomes high
    /// for PolicyReport, whose original CRD allows only high, medium and low (the exact
    /// severity stays in the result's `properties`).
    pub fn severity(self, s: Severity) -> &'static str {
        match (self, s) {
            (ReportApi::PolicyReport, Severity::Critical) => "high",
            _ => s.as_str(),
        }
    }
}

/// What goes into a report beyond failures, exemptions and unknowns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReportOptions {
    /// The API to write.
    pub api: ReportApi,
    /// Whether passing rules get a `pass` result (they dominate the volume).
    pub include_passes: bool,
    /// The cluster's name (`--cluster-name`), put on every report ([`Report::name_cluster`]);
    /// `None` leaves reports as they were. `'static`: the operator sets it once per process.
    pub cluster: Option<&'static str>,
}

/// The workload a report is about.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its uid, when known (from the cluster): then the report is owned by the workload and
    /// is garbage-collected with it.
    pub uid: Option<&'a str>,
}

/// A report's counts per result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSummary {
    /// Passing rules.
    #[serde(default)]
    pub pass: u32,
    /// Failing rules.
    #[serde(default)]
    pub fail: u32,
    /// Never used by prodready (kept for the schema).
    #[serde(default)]
    pub warn: u32,
    /// Rules that could not decide.
    #[serde(default)]
    pub error: u32,
    /// Exempt rules.
    #[serde(default)]
    pub skip: u32,
}

/// One rule's result under one policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportResult {
    /// Always [`SOURCE`].
    #[serde(default)]
    pub source: String,
    /// The ProductionPolicy (or built-in profile) name.
    pub policy: String,
    /// The rule id.
    #[serde(default)]
    pub rule: String,
    /// The rubric code(s) of the rule.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub category: String,
    /// `critical`, `high`, `medium` or `low` (no `critical` for PolicyReport).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub severity: String,
    /// `pass`, `fail`, `error` (could not decide) or `skip` (exempt).
    pub result: String,
    /// What is wrong, why the rule could not decide, or what it checks (for passes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Details: `remediation`, `containers`, the exemption's `exemptionReason`,
    /// `exemptionExpires` and `exemptionSource`, and `severity` where the API mapped it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// A report (OpenReports `Report` or wgpolicyk8s.io `PolicyReport`: same shape).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `openreports.io/v1alpha1` or `wgpolicyk8s.io/v1alpha2`.
    pub api_version: String,
    /// `Report` or `PolicyReport`.
    pub kind: String,
    /// Name, namespace, labels, the workload annotation and (in the cluster) the owner.
    pub metadata: ObjectMeta,
    /// The workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ObjectReference>,
    /// Always [`SOURCE`] (OpenReports only; PolicyReport has no such field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Exact counts of `results`.
    #[serde(default)]
    pub summary: ReportSummary,
    /// One per (policy, enabled rule) that failed, was exempt or could not decide, and (when
    /// asked) passed, plus one `skip` per exemption that covers some containers of a rule
    /// (beside that rule's `fail` when other containers still fail); sorted by policy, then
    /// rule, the rule's own result first.
    #[serde(default)]
    pub results: Vec<ReportResult>,
}

impl Report {
    /// Names the cluster the report comes from: the [`CLUSTER_LABEL`] label when `cluster` is
    /// a valid label value (63 characters at most, alphanumerics, `-`, `_` and `.` inside), and
    /// the [`CLUSTER_PROPERTY`] property on every result.
    pub fn name_cluster(&mut self, cluster: &str) {
        if crate::cluster_name::is_label_value(cluster) {
            self.metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(CLUSTER_LABEL.to_owned(), cluster.to_owned());
        }
        for r in &mut self.results {
            r.properties
                .insert(CLUSTER_PROPERTY.to_owned(), cluster.to_owned());
        }
    }

    /// The fields prodready writes, which [`Report::same_content`] compares and
    /// [`Report::content_digest`] hashes (server-assigned metadata such as `resourceVersion`
    /// and `creationTimestamp` left out; of the owner references, the controller's only).
    fn content(&self) -> impl PartialEq + Serialize + '_ {
        let owners: Vec<&OwnerReference> = self
            .metadata
            .owner_references
            .iter()
            .flatten()
            .filter(|o| o.controller == Some(true))
            .collect();
        (
            &self.api_version,
            &self.kind,
            &self.scope,
            &self.source,
            &self.summary,
            &self.results,
            &self.metadata.name,
            &self.metadata.namespace,
            &self.metadata.labels,
            &self.metadata.annotations,
            owners,
        )
    }

    /// Whether `other` says the same: the fields prodready writes (server-assigned metadata
    /// such as `resourceVersion` and `creationTimestamp` are not compared).
    pub fn same_content(&self, other: &Report) -> bool {
        self.content() == other.content()
    }

    /// A digest of exactly what [`Report::same_content`] compares: reports with the same
    /// content have the same digest, and a different content a different one except with a
    /// probability of about 2^-64. The controller keeps this digest per report instead of the
    /// report (8 bytes instead of about 2 KiB) and compares digests to decide writes. Stable
    /// within a process only (std's SipHash with its fixed keys), which is all that needs.
    pub fn content_digest(&self) -> u64 {
        /// Feeds serde_json's output straight into the hasher: no buffer per report.
        struct Sink(std::hash::DefaultHasher);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::hash::Hasher::write(&mut self.0, buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let content = self.content();
        let mut sink = Sink(std::hash::DefaultHasher::new());
        if serde_json::to_writer(&mut sink, &content).is_err() {
            // Cannot happen (string map keys only). Were it to, the debug text (server fields
            // included) makes the digests differ: a needless rewrite, never a skipped one.
            std::hash::Hasher::write(&mut sink.0, format!("{self:?}").as_bytes());
        }
        std::hash::Hasher::finish(&sink.0)
    }
}

/// The name of a workload's report: `prodready-<kind>-<name>`, stable across restarts and
/// leaders (so reports converge without duplicates), shortened with a hash suffix when it
/// would exceed the 253 characters of an object name.
pub fn report_name(kind: WorkloadKind, name: &str) -> String {
    let full = format!("prodready-{}-{name}", kind.as_str().to_ascii_lowercase());
    if full.len() <= 253 {
        return full;
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut short: String = full.chars().take(253 - 17).collect();
    while short.ends_with(['-', '.']) {
        short.pop();
    }
    let _ = write!(short, "-{hash:016x}");
    short
}

/// A rule's results under one policy: one `pass`, `fail`, `error` or `skip` result, and beside
/// it one `skip` per exemption that covers some of its containers (so a failure of the app
/// container and the exempt findings of an injected sidecar both show, each as what it is).
fn results(
    api: ReportApi,
    policy: &str,
    r: &RuleResult,
    include_passes: bool,
) -> Vec<ReportResult> {
    let mut out = Vec::new();
    match &r.outcome {
        Outcome::NotApplicable => {}
        Outcome::Pass if !include_passes => {}
        Outcome::Pass => out.push(one(
            api,
            policy,
            r,
            "pass",
            r.rule.summary.to_owned(),
            BTreeMap::new(),
        )),
        Outcome::Unknown(reason) => {
            out.push(one(
                api,
                policy,
                r,
                "error",
                reason.clone(),
                BTreeMap::new(),
            ));
        }
        Outcome::Fail(violations) => {
            let mut properties = BTreeMap::new();
            describe(violations, &mut properties);
            out.push(one(
                api,
                policy,
                r,
                "fail",
                join_messages(violations),
                properties,
            ));
        }
        // Every finding was a container's an exemption covers: those results follow.
        Outcome::Exempt { violations, .. } if violations.is_empty() && !r.exempt.is_empty() => {}
        Outcome::Exempt {
            exemption,
            violations,
        } => out.push(skip(api, policy, r, exemption, violations)),
    }
    let mut groups: Vec<(&AppliedExemption, Vec<Violation>)> = Vec::new();
    for e in &r.exempt {
        match groups.iter_mut().find(|(ex, _)| *ex == &e.exemption) {
            Some((_, vs)) => vs.push(e.violation.clone()),
            None => groups.push((&e.exemption, vec![e.violation.clone()])),
        }
    }
    for (exemption, violations) in groups {
        out.push(skip(api, policy, r, exemption, &violations));
    }
    out
}

/// A `skip` result: findings an exemption covers, with its reason, expiry and source.
fn skip(
    api: ReportApi,
    policy: &str,
    r: &RuleResult,
    exemption: &AppliedExemption,
    violations: &[Violation],
) -> ReportResult {
    let mut properties = BTreeMap::new();
    describe(violations, &mut properties);
    properties.insert("exemptionReason".to_owned(), exemption.reason.clone());
    if let Some(t) = exemption.expires {
        properties.insert(
            "exemptionExpires".to_owned(),
            t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    }
    let source = match exemption.source {
        ExemptionSource::Policy { index } => format!("policy spec.exemptions[{index}]"),
        ExemptionSource::Annotation => "workload annotation".to_owned(),
    };
    properties.insert("exemptionSource".to_owned(), source);
    let message = if violations.is_empty() {
        format!("exempt: {}", exemption.reason)
    } else {
        format!("exempt: {}", join_messages(violations))
    };
    one(api, policy, r, "skip", message, properties)
}

fn one(
    api: ReportApi,
    policy: &str,
    r: &RuleResult,
    kind: &str,
    message: String,
    mut properties: BTreeMap<String, String>,
) -> ReportResult {
    let severity = api.severity(r.severity);
    if severity != r.severity.as_str() {
        properties.insert("severity".to_owned(), r.severity.as_str().to_owned());
    }
    ReportResult {
        source: SOURCE.to_owned(),
        policy: policy.to_owned(),
        rule: r.rule.id.to_owned(),
        category: r.rule.rubric.to_owned(),
        severity: severity.to_owned(),
        result: kind.to_owned(),
        message,
        properties,
    }
}

fn join_messages(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| v.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Puts the remediation(s) and the containers concerned into `properties`.
fn describe(violations: &[Violation], properties: &mut BTreeMap<String, String>) {
    let mut remediations: Vec<&str> = violations.iter().map(|v| v.remediation.as_str()).collect();
    remediations.retain(|r| !r.is_empty());
    remediations.dedup();
    if !remediations.is_empty() {
        properties.insert("remediation".to_owned(), remediations.join("; "));
    }
    let containers: Vec<&str> = violations
        .iter()
        .filter_map(|v| v.container.as_deref())
        .collect();
    if !containers.is_empty() {
        properties.insert("containers".to_owned(), containers.join(","));
    }
}

/// The report of one workload from its evaluation under every policy that matches it
/// (`(policy name, evaluation)`, any order). `None` when no policy matches: such a workload
/// has no report (and the controller deletes one it wrote before).
pub fn build(
    subject: &Subject<'_>,
    evaluations: &[(&str, &Evaluation)],
    options: ReportOptions,
) -> Option<Report> {
    if evaluations.is_empty() {
        return None;
    }
    let api = options.api;
    let mut results: Vec<ReportResult> = evaluations
        .iter()
        .flat_map(|(policy, e)| {
            e.results
                .iter()
                .flat_map(move |r| results(api, policy, r, options.include_passes))
        })
        .collect();
    results.sort_by(|a, b| (&a.policy, &a.rule).cmp(&(&b.policy, &b.rule)));
    let mut summary = ReportSummary::default();
    for r in &results {
        match r.result.as_str() {
            "pass" => summary.pass += 1,
            "fail" => summary.fail += 1,
            "error" => summary.error += 1,
            _ => summary.skip += 1,
        }
    }
    let scope = ObjectReference {
        api_version: Some(subject.kind.api_version().to_owned()),
        kind: Some(subject.kind.as_str().to_owned()),
        namespace: Some(subject.namespace.to_owned()),
        name: Some(subject.name.to_owned()),
        uid: subject.uid.map(str::to_owned),
        ..ObjectReference::default()
    };
    let owner = subject.uid.map(|uid| {
        vec![OwnerReference {
            api_version: subject.kind.api_version().to_owned(),
            kind: subject.kind.as_str().to_owned(),
            name: subject.name.to_owned(),
            uid: uid.to_owned(),
            controller: Some(true),
            block_owner_deletion: None,
        }]
    });
    let metadata = ObjectMeta {
        name: Some(report_name(subject.kind, subject.name)),
        namespace: Some(subject.namespace.to_owned()),
        labels: Some(BTreeMap::from([(
            MANAGED_BY_LABEL.to_owned(),
            SOURCE.to_owned(),
        )])),
        annotations: Some(BTreeMap::from([(
            WORKLOAD_ANNOTATION.to_owned(),
            format!(
                "{}/{}/{}",
                subject.kind.as_str(),
                subject.namespace,
                subject.name
            ),
        )])),
        owner_references: owner,
        ..ObjectMeta::default()
    };
    let mut report = Report {
        api_version: api.api_version().to_owned(),
        kind: api.kind().to_owned(),
        metadata,
        scope: Some(scope),
        source: (api == ReportApi::OpenReports).then(|| SOURCE.to_owned()),
        summary,
        results,
    };
    if let Some(cluster) = options.cluster {
        report.name_cluster(cluster);
    }
    Some(report)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::rules::CATALOG;

    fn rule(id: &str) -> &'static crate::engine::RuleDef {
        CATALOG
            .iter()
            .copied()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no rule {id}"))
    }

    fn eval(results: Vec<(&str, Severity, Outcome)>) -> Evaluation {
        Evaluation {
            results: results
                .into_iter()
                .map(|(id, severity, outcome)| RuleResult {
                    rule: rule(id),
                    severity,
                    outcome,
                    exempt: Vec::new(),
                })
                .collect(),
            notes: Vec::new(),
            next_expiry: None,
        }
    }

    const WEB: Subject<'static> = Subject {
        kind: WorkloadKind::Deployment,
        namespace: "shop",
        name: "web",
        uid: Some("1234"),
    };

    fn options(api: ReportApi, include_passes: bool) -> ReportOptions {
        ReportOptions {
            api,
            include_passes,
            cluster: None,
        }
    }

    fn sample() -> Evaluation {
        let expires = Timestamp::from_second(1_900_000_000).unwrap_or_default();
        eval(vec![
            (
                "liveness-probe",
                Severity::High,
                Outcome::Fail(vec![
                    Violation::container(
                        "app",
                        "container \"app\" has no livenessProbe",
                        "add one",
                    ),
                    Violation::container(
                        "side",
                        "container \"side\" has no livenessProbe",
                        "add one",
                    ),
                ]),
            ),
            ("readiness-probe", Severity::High, Outcome::Pass),
            ("topology-spread", Severity::Low, Outcome::NotApplicable),
            (
                "service-monitor",
                Severity::Medium,
                Outcome::Unknown("the ServiceMonitor CRD is not installed".into()),
            ),
            (
                "replicas-ha",
                Severity::Medium,
                Outcome::Exempt {
                    exemption: AppliedExemption {
                        reason: "single replica by design".into(),
                        expires: Some(expires),
                        source: ExemptionSource::Policy { index: 0 },
                    },
                    violations: vec![Violation::workload("1 replica", "run 2")],
                },
            ),
            (
                "secret-literal-env",
                Severity::Critical,
                Outcome::Fail(vec![Violation::container(
                    "app",
                    "env PASSWORD is a literal",
                    "use a Secret",
                )]),
            ),
        ])
    }

    #[test]
    fn every_outcome_maps_to_its_result_and_the_summary_is_exact() {
        let e = sample();
        let r = build(
            &WEB,
            &[("baseline", &e)],
            options(ReportApi::OpenReports, true),
        )
        .unwrap_or_else(|| panic!("no report"));
        assert_eq!(r.api_version, "openreports.io/v1alpha1");
        assert_eq!(r.kind, "Report");
        assert_eq!(r.source.as_deref(), Some("prodready"));
        let got: Vec<(&str, &str, &str)> = r
            .results
            .iter()
            .map(|x| (x.rule.as_str(), x.result.as_str(), x.severity.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("liveness-probe", "fail", "high"),
                ("readiness-probe", "pass", "high"),
                ("replicas-ha", "skip", "medium"),
                ("secret-literal-env", "fail", "critical"),
                ("service-monitor", "error", "medium"),
            ]
        );
        assert_eq!(
            r.summary,
            ReportSummary {
                pass: 1,
                fail: 2,
                warn: 0,
                error: 1,
                skip: 1
            }
        );
        let live = &r.results[0];
        assert_eq!(live.category, "F7");
        assert_eq!(live.policy, "baseline");
        assert_eq!(live.source, "prodready");
        assert_eq!(live.properties["containers"], "app,side");
        assert_eq!(live.properties["remediation"], "add one");
        assert!(live.message.contains("\"side\""), "{}", live.message);
        let skip = &r.results[2];
        assert_eq!(
            skip.properties["exemptionReason"],
            "single replica by design"
        );
        assert_eq!(skip.properties["exemptionExpires"], "2030-03-17T17:46:40Z");
        assert_eq!(
            skip.properties["exemptionSource"],
            "policy spec.exemptions[0]"
        );
        assert_eq!(
            r.results[4].message,
            "the ServiceMonitor CRD is not installed"
        );
    }

    #[test]
    fn exempt_containers_beside_a_failure_are_a_skip_result_of_their_own() {
        let expires = Timestamp::from_second(1_900_000_000).unwrap_or_default();
        let sidecar = |index| crate::engine::ExemptViolation {
            violation: Violation::container(
                "istio-proxy",
                "container \"istio-proxy\" has no livenessProbe",
                "add one",
            ),
            exemption: AppliedExemption {
                reason: "injected by the mesh".into(),
                expires: Some(expires),
                source: ExemptionSource::Policy { index },
            },
        };
        let mixed = RuleResult {
            rule: rule("liveness-probe"),
            severity: Severity::High,
            outcome: Outcome::Fail(vec![Violation::container(
                "app",
                "container \"app\" has no livenessProbe",
                "add one",
            )]),
            exempt: vec![sidecar(2)],
        };
        let only_sidecar = RuleResult {
            rule: rule("readiness-probe"),
            severity: Severity::High,
            outcome: Outcome::Exempt {
                exemption: sidecar(2).exemption,
                violations: Vec::new(),
            },
            exempt: vec![sidecar(2)],
        };
        let e = Evaluation {
            results: vec![mixed, only_sidecar],
            notes: Vec::new(),
            next_expiry: Some(expires),
        };
        let r = build(
            &WEB,
            &[("baseline", &e)],
            options(ReportApi::OpenReports, false),
        )
        .unwrap_or_else(|| panic!("no report"));
        let got: Vec<(&str, &str, &str)> = r
            .results
            .iter()
            .map(|x| {
                (
                    x.rule.as_str(),
                    x.result.as_str(),
                    x.properties.get("containers").map_or("", String::as_str),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("liveness-probe", "fail", "app"),
                ("liveness-probe", "skip", "istio-proxy"),
                ("readiness-probe", "skip", "istio-proxy"),
            ]
        );
        assert_eq!((r.summary.fail, r.summary.skip), (1, 2));
        let skip = &r.results[1];
        assert_eq!(skip.properties["exemptionReason"], "injected by the mesh");
        assert_eq!(skip.properties["exemptionExpires"], "2030-03-17T17:46:40Z");
        assert_eq!(
            skip.properties["exemptionSource"],
            "policy spec.exemptions[2]"
        );
        assert!(skip.message.starts_with("exempt: "), "{}", skip.message);
        assert!(!r.results[0].message.contains("istio-proxy"));
    }

    #[test]
    fn passes_are_left_out_unless_asked_for() {
        let e = sample();
        let r = build(
            &WEB,
            &[("baseline", &e)],
            options(ReportApi::OpenReports, false),
        )
        .unwrap_or_else(|| panic!("no report"));
        assert!(r.results.iter().all(|x| x.result != "pass"));
        assert_eq!(r.summary.pass, 0);
        assert_eq!(r.results.len(), 4);
    }

    #[test]
    fn the_report_is_owned_by_the_workload_when_its_uid_is_known() {
        let e = sample();
        let r = build(
            &WEB,
            &[("baseline", &e)],
            options(ReportApi::OpenReports, false),
        )
        .unwrap_or_else(|| panic!("no report"));
        assert_eq!(r.metadata.name.as_deref(), Some("prodready-deployment-web"));
        assert_eq!(r.metadata.namespace.as_deref(), Some("shop"));
        let owners = r.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(owners.len(), 1);
        assert_eq!(
            (owners[0].kind.as_str(), owners[0].uid.as_str()),
            ("Deployment", "1234")
        );
        let scope = r.scope.clone().unwrap_or_default();
        assert_eq!(scope.uid.as_deref(), Some("1234"));
        let offline = Subject { uid: None, ..WEB };
        let r = build(
            &offline,
            &[("baseline", &e)],
            options(ReportApi::OpenReports, false),
        )
        .unwrap_or_else(|| panic!("no report"));
        assert_eq!(r.metadata.owner_references, None);
    }

    #[test]
    fn no_matching_policy_means_no_report_and_a_compliant_workload_an_empty_one() {
        assert_eq!(
            build(&WEB, &[], options(ReportApi::OpenReports, false)),
            None
        );
        let clean = eval(vec![("readiness-probe", Severity::High, Outcome::Pass)]);
        let r = build(
            &WEB,
            &[("baseline", &clean)],
            options(ReportApi::OpenReports, false),
        )
        .unwrap_or_else(|| panic!("no report"));
        assert!(r.results.is_empty());
        assert_eq!(r.summary, ReportSummary::default());
    }

    #[test]
    fn results_of_several_policies_are_sorted_by_policy_then_rule() {
        let a = sample();
        let b = eval(vec![("liveness-probe", Severity::Low, Outcome::Pass)]);
        let one = build(
            &WEB,
            &[("z", &b), ("a", &a)],
            options(ReportApi::OpenReports, true),
        );
        let two = build(
            &WEB,
            &[("a", &a), ("z", &b)],
            options(ReportApi::OpenReports, true),
        );
        assert_eq!(one, two);
        let r = one.unwrap_or_else(|| panic!("no report"));
        assert_eq!(r.results.last().map(|x| x.policy.as_str()), Some("z"));
        assert_eq!(r.summary.pass, 2);
    }

    #[test]
    fn policyreport_maps_critical_to_high_and_keeps_the_exact_severity() {
        let e = sample();
        let r = build(
            &WEB,
            &[("baseline", &e)],
            options(ReportApi::PolicyReport, false),
        )
        .unwrap_or_else(|| panic!("no report"));
        assert_eq!(r.api_version, "wgpolicyk8s.io/v1alpha2");
        assert_eq!(r.kind, "PolicyReport");
        assert_eq!(r.source, None);
        let secret = r
            .results
            .iter()
            .find(|x| x.rule == "secret-literal-env")
            .unwrap_or_else(|| panic!("no result"));
        assert_eq!(secret.severity, "high");
        assert_eq!(secret.properties["severity"], "critical");
        assert!(
            r.results
                .iter()
                .all(|x| ["high", "medium", "low"].contains(&x.severity.as_str()))
        );
    }

    #[test]
    fn long_names_are_shortened_stably_and_stay_valid() {
        let long = "a".repeat(250);
        let n = report_name(WorkloadKind::StatefulSet, &long);
        assert!(n.len() <= 253, "{}", n.len());
        assert_eq!(n, report_name(WorkloadKind::StatefulSet, &long));
        assert_ne!(
            n,
            report_name(WorkloadKind::StatefulSet, &format!("{long}b"))
        );
        assert_eq!(
            report_name(WorkloadKind::CronJob, "nightly"),
            "prodready-cronjob-nightly"
        );
    }

    #[test]
    fn content_comparison_ignores_server_fields_and_sees_hand_edits() {
        let e = sample();
        let want = build(
            &WEB,
            &[("baseline", &e)],
            options(ReportApi::OpenReports, false),
        )
        .unwrap_or_else(|| panic!("no report"));
        let mut stored = want.clone();
        stored.metadata.resource_version = Some("42".into());
        stored.metadata.uid = Some("r-1".into());
        assert!(want.same_content(&stored));
        stored.results[0].result = "pass".into();
        assert!(!want.same_content(&stored));
        let mut relabelled = want.clone();
        relabelled.metadata.labels = None;
        assert!(!want.same_content(&relabelled));
    }

    #[test]
    fn the_content_digest_agrees_with_the_content_comparison() {
        let e = sample();
        let want = build(
            &WEB,
            &[("baseline", &e)],
            options(ReportApi::OpenReports, false),
        )
        .unwrap_or_else(|| panic!("no report"));
        let mut served = want.clone();
        served.metadata.resource_version = Some("42".into());
        served.metadata.uid = Some("r-1".into());
        served.metadata.creation_timestamp = None;
        assert_eq!(want.content_digest(), served.content_digest());
        let mut edits: Vec<Report> = Vec::new();
        let mut r = want.clone();
        r.results[0].result = "pass".into();
        edits.push(r);
        let mut r = want.clone();
        r.summary.fail += 1;
        edits.push(r);
        let mut r = want.clone();
        r.metadata.labels = None;
        edits.push(r);
        let mut r = want.clone();
        r.results[0]
            .properties
            .insert("exemptionReason".into(), "by hand".into());
        edits.push(r);
        let mut r = want.clone();
        r.results.pop();
        edits.push(r);
        let mut r = want.clone();
        r.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "other".into(),
            uid: "u-2".into(),
            controller: Some(true),
            ..OwnerReference::default()
        }]);
        edits.push(r);
        for edited in &edits {
            assert!(!want.same_content(edited));
            assert_ne!(want.content_digest(), edited.content_digest(), "{edited:?}");
        }
    }

    #[test]
    fn it_serializes_to_the_openreports_field_names() {
        let e = sample();
        let r = build(
            &WEB,
            &[("baseline", &e)],
            options(ReportApi::OpenReports, false),
        )
        .unwrap_or_else(|| panic!("no report"));
        let json = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(json["apiVersion"], "openreports.io/v1alpha1");
        assert_eq!(json["scope"]["kind"], "Deployment");
        assert_eq!(json["summary"]["fail"], 2);
        assert_eq!(json["results"][0]["result"], "fail");
        assert!(json.get("timestamp").is_none());
        let back: Report = serde_json::from_value(json).unwrap_or_default();
        assert_eq!(back, r);
    }
}
