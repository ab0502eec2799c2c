//! Reports over several clusters: each cluster is audited apart (its own workloads, context and
//! policies), its report names the cluster on every finding, workload and policy report
//! ([`name_cluster`]), and the reports are put together in the order the clusters were given
//! ([`merge`]). A single-cluster audit without a cluster name never passes through here, so
//! its report stays exactly what it was.

use super::{FailureCounts, Inputs, Report, Summary};

/// Names `cluster` on every finding, workload and policy report of `report`.
pub fn name_cluster(report: &mut Report, cluster: &str) {
    for f in &mut report.findings {
        f.cluster = Some(cluster.to_owned());
    }
    for w in &mut report.workloads {
        w.cluster = Some(cluster.to_owned());
    }
    for r in &mut report.reports {
        r.name_cluster(cluster);
    }
}

/// One report of several: findings, workloads, policy reports and errors in the order of
/// `reports`, totals added up, each policy name once (in order of first appearance), inputs
/// added up.
pub fn merge(reports: Vec<Report>) -> Report {
    let mut out = Report {
        version: 1,
        ..Report::default()
    };
    for r in reports {
        out.findings.extend(r.findings);
        out.errors.extend(r.errors);
        out.workloads.extend(r.workloads);
        out.reports.extend(r.reports);
        add_summary(&mut out.summary, &r.summary);
        for p in r.policies {
            if !out.policies.contains(&p) {
                out.policies.push(p);
            }
        }
        add_inputs(&mut out.inputs, r.inputs);
    }
    out
}

fn add_summary(to: &mut Summary, s: &Summary) {
    to.workloads += s.workloads;
    to.compliant += s.compliant;
    to.violating += s.violating;
    to.exempt += s.exempt;
    to.unknown += s.unknown;
    let FailureCounts {
        critical,
        high,
        medium,
        low,
    } = &s.failures;
    to.failures.critical += critical;
    to.failures.high += high;
    to.failures.medium += medium;
    to.failures.low += low;
}

fn add_inputs(to: &mut Inputs, i: Inputs) {
    to.files += i.files;
    to.rendered.extend(i.rendered);
    to.skipped.extend(i.skipped);
    to.excluded.extend(i.excluded);
    for (kind, n) in i.not_judged {
        *to.not_judged.entry(kind).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::audit::{InputError, Loaded};
    use crate::engine::CompiledPolicy;
    use crate::reports::{ReportApi, ReportOptions};

    const VIOLATING: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  template:\n    spec:\n      containers: [{name: app, image: 'nginx:latest'}]\n";

    fn report_of(text: &str) -> Report {
        let mut loaded = Loaded::default();
        loaded.add_text("cluster:x", text, false);
        let policies = [CompiledPolicy::builtin(
            crate::api::Profile::Baseline,
            &crate::rules::CATALOG,
        )];
        let options = ReportOptions {
            api: ReportApi::OpenReports,
            include_passes: false,
            cluster: None,
        };
        crate::audit::audit_jobs(
            &loaded,
            &policies,
            Timestamp::UNIX_EPOCH,
            false,
            1,
            Some(options),
        )
    }

    #[test]
    fn every_finding_workload_and_policy_report_names_its_cluster() {
        let mut report = report_of(VIOLATING);
        assert!(!report.findings.is_empty());
        name_cluster(&mut report, "eu-1");
        assert!(
            report
                .findings
                .iter()
                .all(|f| f.cluster.as_deref() == Some("eu-1"))
        );
        assert!(
            report
                .workloads
                .iter()
                .all(|w| w.cluster.as_deref() == Some("eu-1"))
        );
        let r = &report.reports[0];
        assert_eq!(
            r.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(crate::reports::CLUSTER_LABEL))
                .map(String::as_str),
            Some("eu-1")
        );
        assert!(r.results.iter().all(|x| {
            x.properties
                .get(crate::reports::CLUSTER_PROPERTY)
                .map(String::as_str)
                == Some("eu-1")
        }));
    }

    #[test]
    fn a_name_that_is_no_label_value_is_a_property_only() {
        let mut report = report_of(VIOLATING);
        name_cluster(&mut report, "arn:aws:eks:eu-west-1:1:cluster/prod");
        let r = &report.reports[0];
        assert!(
            r.metadata
                .labels
                .as_ref()
                .is_some_and(|l| !l.contains_key(crate::reports::CLUSTER_LABEL))
        );
        assert!(
            r.results
                .iter()
                .all(|x| x.properties.contains_key(crate::reports::CLUSTER_PROPERTY))
        );
    }

    #[test]
    fn merged_reports_keep_order_and_add_up() {
        let mut a = report_of(VIOLATING);
        name_cluster(&mut a, "a");
        let mut b = report_of(VIOLATING);
        name_cluster(&mut b, "b");
        b.errors.push(InputError {
            file: "cluster:c".into(),
            document: None,
            line: None,
            message: "unreachable".into(),
        });
        let (fa, fb) = (a.findings.len(), b.findings.len());
        let merged = merge(vec![a, b]);
        assert_eq!(merged.findings.len(), fa + fb);
        assert_eq!(merged.findings[0].cluster.as_deref(), Some("a"));
        assert_eq!(merged.findings[fa].cluster.as_deref(), Some("b"));
        assert_eq!(merged.summary.workloads, 2);
        assert_eq!(merged.summary.violating, 2);
        assert_eq!(merged.policies, vec!["baseline".to_owned()]);
        assert_eq!(merged.errors.len(), 1);
        assert_eq!(merged.exit_code(None), 2);
    }

    fn rendered(report: &Report, format: crate::audit::output::Format) -> String {
        let mut out = Vec::new();
        assert!(crate::audit::output::write(report, format, false, &mut out).is_ok());
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Two clusters with the same workload: every format says which cluster each finding is
    /// from, and keeps the two apart.
    #[test]
    fn every_format_names_the_cluster_of_every_finding() {
        use crate::audit::output::Format;
        let mut a = report_of(VIOLATING);
        name_cluster(&mut a, "a");
        let mut b = report_of(VIOLATING);
        name_cluster(&mut b, "b");
        let per_cluster = a.findings.len();
        let fleet = merge(vec![a, b]);

        let json: serde_json::Value =
            serde_json::from_str(&rendered(&fleet, Format::Json)).unwrap_or_default();
        let findings = json["findings"].as_array().cloned().unwrap_or_default();
        assert_eq!(findings.len(), 2 * per_cluster);
        assert!(findings[..per_cluster].iter().all(|f| f["cluster"] == "a"));
        assert!(findings[per_cluster..].iter().all(|f| f["cluster"] == "b"));

        let sarif: serde_json::Value =
            serde_json::from_str(&rendered(&fleet, Format::Sarif)).unwrap_or_default();
        let results = sarif["runs"][0]["results"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(results.len(), 2 * per_cluster);
        assert!(
            results
                .iter()
                .all(|r| r["properties"]["cluster"].is_string())
        );
        let prints: std::collections::BTreeSet<String> = results
            .iter()
            .map(|r| r["partialFingerprints"]["prodready/v1"].to_string())
            .collect();
        assert_eq!(
            prints.len(),
            results.len(),
            "one fingerprint per cluster's finding"
        );

        let junit = rendered(&fleet, Format::Junit);
        let cases = junit.matches("<testcase ").count();
        assert!(cases > 0);
        assert_eq!(
            junit
                .matches("<property name=\"cluster\" value=\"a\"/>")
                .count()
                + junit
                    .matches("<property name=\"cluster\" value=\"b\"/>")
                    .count(),
            cases,
            "{junit}"
        );
        assert!(
            junit.contains("classname=\"a/Deployment/shop/web\""),
            "{junit}"
        );
        assert!(
            junit.contains("classname=\"b/Deployment/shop/web\""),
            "{junit}"
        );

        let table = rendered(&fleet, Format::Table);
        assert!(table.contains("· 2 clusters ·"), "{table}");
        let (first, second) = table.split_once("Cluster b").unwrap_or_default();
        assert!(
            first.contains("Cluster a") && first.contains("Deployment shop/web"),
            "{table}"
        );
        assert!(second.contains("Deployment shop/web"), "{table}");

        let yaml = rendered(&fleet, Format::Openreports);
        let docs = yaml.matches("apiVersion: openreports.io/v1alpha1").count();
        assert_eq!(docs, 2);
        assert_eq!(
            yaml.matches("prodready.dev/cluster-name: a").count(),
            1,
            "{yaml}"
        );
        assert_eq!(
            yaml.matches("prodready.dev/cluster-name: b").count(),
            1,
            "{yaml}"
        );
        assert!(yaml.contains("cluster-name: a"), "{yaml}");
    }
}
