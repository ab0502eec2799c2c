//! `service-monitor`: Prometheus scrapes the workload, either through a ServiceMonitor that
//! selects a Service selecting the pods (on a port that Service has) or through a PodMonitor
//! that selects the pods (on a port they have).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ContainerPort, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Check, Examples, RuleDef, Verdict, Violation};
use crate::api::Severity;
use crate::engine::Workload;
use crate::engine::monitoring::{PodMetricsEndpoint, ServiceMonitor, ServiceMonitorEndpoint};
use crate::engine::selector::{self, Labels};
use crate::engine::service::ServiceView;

/// The rule.
pub static RULE: RuleDef = RuleDef {
    id: "service-monitor",
    summary: "a ServiceMonitor scrapes a Service that selects the pods, on a port that Service has; or a PodMonitor scrapes the pods",
    rubric: "5.2, O1",
    default_enabled: true,
    default_severity: Severity::Medium,
    rationale: "A service nobody scrapes has no metrics, so no alerts and no dashboards: the first \
        sign of trouble is a user. With the Prometheus Operator, scraping takes a chain of \
        selectors (ServiceMonitor -> Service -> pods) and port names that must all line up; a \
        ServiceMonitor pointing at a port the Service does not define is accepted without \
        complaint and silently scrapes nothing. This rule follows the chain the way Prometheus \
        will. In a cluster where only one of the two CRDs is installed, the missing kind has no \
        objects and the installed one decides; the verdict is unknown only when neither CRD is \
        installed or the monitors cannot be read. Where Prometheus scrapes by annotation \
        instead, the policy parameter acceptScrapeAnnotations counts a prometheus.io/scrape: \
        \"true\" annotation on the pod template or a Service of the pods as coverage (and, \
        with no Prometheus Operator installed, its absence as a failure).",
    example: "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}   # the Service's labels\n  endpoints:\n    - port: metrics                      # a named port of the Service",
    checks: "Applies to long-running workloads. It passes when a PodMonitor selects the pods on \
        a port a long-lived container declares, or when a ServiceMonitor in the namespace (or \
        naming it in `namespaceSelector`) selects a Service that selects the pods, on a port \
        that Service has. With `acceptScrapeAnnotations`, a `prometheus.io/scrape: \"true\"` \
        annotation on the pod template or on such a Service also counts. When the monitoring \
        CRDs cannot be read it is unknown, unless no Service selects the pods; when one CRD is \
        not installed, the other decides. `prodready audit` sees the monitors in its input. \
        Jobs, CronJobs and run-once Pods are not applicable.",
    examples: Examples {
        settings: "",
        fail: FAIL,
        pass: PASS,
    },
    check,
};

/// A manifest the rule fails (its page shows it; a test runs it).
const FAIL: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/web:1.4.2
          ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {app: web}
  ports:
    - {name: http, port: 80, targetPort: http}
"#;

/// A manifest the rule passes.
const PASS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/web:1.4.2
          ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {app: web}
  ports:
    - {name: http, port: 80, targetPort: http}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  endpoints:
    - {port: http}
"#;

/// How far the search got without finding a scrape. When several apply, the message names
/// the most specific: a ServiceMonitor port mismatch, then a PodMonitor port mismatch, then
/// Services nobody monitors, then (no gap) no Service at all.
enum Gap {
    /// A PodMonitor selects the pods but scrapes a port they do not have.
    PodMonitorPort { monitor: String, port: String },
    /// Services select the pods, but no ServiceMonitor selects any of them.
    Unmonitored { services: Vec<String> },
    /// A ServiceMonitor selects a Service of the pods but scrapes a port it does not have.
    ServiceMonitorPort {
        monitor: String,
        service: String,
        port: String,
        ports: String,
    },
}

fn check(c: &Check<'_>) -> Verdict {
    let w = c.workload;
    if !w.is_long_running() {
        return Verdict::NotApplicable;
    }
    let container_ports: Vec<&ContainerPort> = w
        .long_lived_containers()
        .flat_map(|c| c.container.ports.iter().flatten())
        .collect();
    let services: Vec<&ServiceView> = c
        .context
        .services(&w.namespace)
        .iter()
        .map(AsRef::as_ref)
        .filter(|s| selects_pods(s, w))
        .collect();
    let accept_annotations = c.params.accept_scrape_annotations;
    if accept_annotations
        && (scrape_annotated(&w.pod_annotations)
            || services.iter().any(|s| scrape_annotated(&s.annotations)))
    {
        return Verdict::Pass;
    }
    let mut gap: Option<Gap> = None;
    let mut unavailable: Vec<&str> = Vec::new();
    // A CRD that is not installed means no such monitors exist: with the other kind's CRD
    // installed, decide from that one. With neither installed there is no monitoring stack
    // to judge, and the verdict stays unknown.
    let (sm_absent, pm_absent) = (
        c.context.service_monitors_absent(),
        c.context.pod_monitors_absent(),
    );
    let skip_pod_monitors = pm_absent && !sm_absent;
    let skip_service_monitors = sm_absent && !pm_absent;

    match c.context.pod_monitors_for(&w.namespace) {
        Err(_) if skip_pod_monitors => {}
        Err(reason) => unavailable.push(reason),
        Ok(monitors) => {
            for pm in monitors {
                if !selector::matches(&pm.spec.selector, &w.pod_labels) {
                    continue;
                }
                let endpoints = &pm.spec.pod_metrics_endpoints;
                if endpoints
                    .iter()
                    .any(|e| pod_endpoint_scrapes(e, &container_ports))
                {
                    return Verdict::Pass;
                }
                if gap.is_none() {
                    gap = Some(Gap::PodMonitorPort {
                        monitor: pm.metadata.name.clone().unwrap_or_default(),
                        port: endpoints
                            .first()
                            .map_or_else(|| "(no endpoints)".to_owned(), describe_pod_endpoint),
                    });
                }
            }
        }
    }

    match c.context.service_monitors_for(&w.namespace) {
        // Without a Service selecting the pods, no ServiceMonitor could scrape them: the
        // verdict does not depend on the monitors we cannot see.
        Err(_) if services.is_empty() => {}
        // No ServiceMonitor exists: the Services that select the pods are unmonitored.
        Err(_) if skip_service_monitors => {
            if gap.is_none() {
                gap = Some(Gap::Unmonitored {
                    services: services.iter().map(|s| name_of(s)).collect(),
                });
            }
        }
        Err(reason) => unavailable.push(reason),
        Ok(monitors) => {
            let monitors: Vec<&ServiceMonitor> = monitors.collect();
            let mut unmonitored = Vec::new();
            for svc in &services {
                let svc_labels = &svc.labels;
                let ports = service_ports(svc);
                let mut monitored = false;
                for sm in &monitors {
                    if !selector::matches(&sm.spec.selector, svc_labels) {
                        continue;
                    }
                    monitored = true;
                    let endpoints = &sm.spec.endpoints;
                    if endpoints
                        .iter()
                        .any(|e| service_endpoint_scrapes(e, ports, &container_ports))
                    {
                        return Verdict::Pass;
                    }
                    if !matches!(gap, Some(Gap::ServiceMonitorPort { .. })) {
                        gap = Some(Gap::ServiceMonitorPort {
                            monitor: sm.metadata.name.clone().unwrap_or_default(),
                            service: name_of(svc),
                            port: endpoints.first().map_or_else(
                                || "(no endpoints)".to_owned(),
                                describe_service_endpoint,
                            ),
                            ports: list_service_ports(ports),
                        });
                    }
                }
                if !monitored {
                    unmonitored.push(name_of(svc));
                }
            }
            if !unmonitored.is_empty() && gap.is_none() {
                gap = Some(Gap::Unmonitored {
                    services: unmonitored,
                });
            }
        }
    }

    // Where Prometheus scrapes by annotation (the policy says so) and no Prometheus Operator
    // is installed, the missing annotation is the answer: nothing scrapes the pods.
    if accept_annotations && sm_absent && pm_absent {
        return Verdict::Fail(vec![Violation::workload(
            format!(
                "no {SCRAPE_ANNOTATION}: \"true\" annotation on the pods of {}/{} or a Service of them, and no Prometheus Operator CRDs are installed",
                w.kind, w.name
            ),
            format!(
                "annotate the pod template with {SCRAPE_ANNOTATION}: \"true\" (and prometheus.io/port)"
            ),
        )]);
    }
    if !unavailable.is_empty() {
        unavailable.dedup();
        return Verdict::Unknown(unavailable.join("; "));
    }
    Verdict::Fail(vec![violation(w, gap)])
}

/// The annotation annotation-based Prometheus scrape configs look for.
const SCRAPE_ANNOTATION: &str = "prometheus.io/scrape";

/// Whether annotations ask Prometheus to scrape (`prometheus.io/scrape: "true"`).
fn scrape_annotated(annotations: &impl Labels) -> bool {
    annotations
        .label(SCRAPE_ANNOTATION)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn violation(w: &Workload, gap: Option<Gap>) -> Violation {
    match gap {
        None => Violation::workload(
            format!(
                "no Service selects the pods of {}/{} (labels {})",
                w.kind,
                w.name,
                describe_labels(&w.pod_labels)
            ),
            "add a Service selecting the pods and a ServiceMonitor for it, or a PodMonitor",
        ),
        Some(Gap::Unmonitored { services }) => {
            let first = services.first().cloned().unwrap_or_default();
            let message = if services.len() == 1 {
                format!(
                    "Service \"{first}\" selects the pods, but no ServiceMonitor selects Service \"{first}\""
                )
            } else {
                format!(
                    "Services {} select the pods, but no ServiceMonitor selects any of them",
                    quoted_list(&services)
                )
            };
            Violation::workload(
                message,
                format!("add a ServiceMonitor whose selector matches Service \"{first}\"'s labels"),
            )
        }
        Some(Gap::ServiceMonitorPort {
            monitor,
            service,
            port,
            ports,
        }) => Violation::workload(
            format!(
                "ServiceMonitor \"{monitor}\" selects Service \"{service}\" but scrapes {port}, which Service \"{service}\" does not define (ports: {ports})"
            ),
            format!("point the endpoint at a port of Service \"{service}\", or add that port"),
        ),
        Some(Gap::PodMonitorPort { monitor, port }) => Violation::workload(
            format!(
                "PodMonitor \"{monitor}\" selects the pods but scrapes {port}, which no container of {}/{} defines",
                w.kind, w.name
            ),
            "point the endpoint at a named container port, or add that port",
        ),
    }
}

/// Whether a Service routes to the workload's pods. ExternalName Services route nowhere.
fn selects_pods(svc: &ServiceView, w: &Workload) -> bool {
    svc.type_.as_deref() != Some("ExternalName")
        && svc
            .selector
            .as_ref()
            .is_some_and(|sel| selector::map_matches(sel, &w.pod_labels))
}

fn service_ports(svc: &ServiceView) -> &[ServicePort] {
    &svc.ports
}

fn name_of(svc: &ServiceView) -> String {
    svc.name.clone()
}

fn non_empty(s: Option<&String>) -> Option<&str> {
    s.map(String::as_str).filter(|s| !s.is_empty())
}

/// Whether a PodMonitor endpoint scrapes one of the pods' ports. The Prometheus Operator
/// honours `port`, then `portNumber`, then `targetPort`; with none of them it keeps every
/// container port of the selected pods, so such an endpoint scrapes the pods.
fn pod_endpoint_scrapes(e: &PodMetricsEndpoint, container_ports: &[&ContainerPort]) -> bool {
    if let Some(name) = non_empty(e.port.as_ref()) {
        return container_ports
            .iter()
            .any(|p| p.name.as_deref() == Some(name));
    }
    if let Some(number) = e.port_number {
        return container_ports.iter().any(|p| p.container_port == number);
    }
    match &e.target_port {
        Some(target) => container_ports.iter().any(|p| container_port_is(p, target)),
        None => true,
    }
}

fn container_port_is(p: &ContainerPort, target: &IntOrString) -> bool {
    match target {
        IntOrString::Int(n) => p.container_port == *n,
        IntOrString::String(s) => p.name.as_deref() == Some(s.as_str()),
    }
}

/// Whether a ServiceMonitor endpoint scrapes one of the Service's ports. `port` names a
/// Service port; `targetPort` (deprecated, still honoured) names or numbers the pod port a
/// Service port leads to; with neither the Prometheus Operator keeps every Service port.
fn service_endpoint_scrapes(
    e: &ServiceMonitorEndpoint,
    ports: &[ServicePort],
    container_ports: &[&ContainerPort],
) -> bool {
    if let Some(name) = non_empty(e.port.as_ref()) {
        return ports.iter().any(|p| p.name.as_deref() == Some(name));
    }
    match &e.target_port {
        Some(target) => ports
            .iter()
            .any(|p| service_port_leads_to(p, target, container_ports)),
        None => !ports.is_empty(),
    }
}

/// Whether a Service port leads to the pod port `target`: directly (same number or name),
/// or through the pods' container ports (a named targetPort resolving to the number, or a
/// numbered one resolving to the name).
fn service_port_leads_to(
    p: &ServicePort,
    target: &IntOrString,
    container_ports: &[&ContainerPort],
) -> bool {
    // An absent targetPort defaults to the port itself.
    let own = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
    if own == *target {
        return true;
    }
    container_ports
        .iter()
        .any(|cp| container_port_is(cp, &own) && container_port_is(cp, target))
}

fn describe_pod_endpoint(e: &PodMetricsEndpoint) -> String {
    if let Some(name) = non_empty(e.port.as_ref()) {
        format!("port \"{name}\"")
    } else if let Some(n) = e.port_number {
        format!("portNumber {n}")
    } else {
        describe_target_port(e.target_port.as_ref())
    }
}

fn describe_service_endpoint(e: &ServiceMonitorEndpoint) -> String {
    match non_empty(e.port.as_ref()) {
        Some(name) => format!("port \"{name}\""),
        None => describe_target_port(e.target_port.as_ref()),
    }
}

fn describe_target_port(t: Option<&IntOrString>) -> String {
    match t {
        Some(IntOrString::Int(n)) => format!("targetPort {n}"),
        Some(IntOrString::String(s)) => format!("targetPort \"{s}\""),
        None => "every port".to_owned(),
    }
}

/// `http, 9090`: Service ports by name, or by number when unnamed.
fn list_service_ports(ports: &[ServicePort]) -> String {
    if ports.is_empty() {
        return "none".to_owned();
    }
    ports
        .iter()
        .map(|p| match non_empty(p.name.as_ref()) {
            Some(n) => n.to_owned(),
            None => p.port.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `app=web,tier=fe`, cut short so the message stays one readable line.
fn describe_labels(labels: &BTreeMap<String, String>) -> String {
    const MAX: usize = 80;
    if labels.is_empty() {
        return "none".to_owned();
    }
    let all = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    if all.chars().count() <= MAX {
        all
    } else {
        let cut: String = all.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Context;
    use crate::rules::Params;
    use crate::rules::testing::{check, check_with, context, violations, workload};

    const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, tier: fe}}
    spec:
      containers:
        - name: app
          image: web:1.0
          ports: [{name: http, containerPort: 8080}, {name: metrics, containerPort: 9090}]
"#;

    const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  selector: {app: web}
  ports:
    - {name: http, port: 80, targetPort: http}
    - {name: metrics, port: 9090, targetPort: 9090}
"#;

    fn service_monitor(ns: &str, extra: &str, endpoints: &str) -> String {
        format!(
            r#"
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  {extra}
  endpoints: {endpoints}
"#
        )
    }

    fn run(ctx: &str) -> Verdict {
        check_with(&RULE, &workload(WEB), &context(ctx), &Params::default())
    }

    fn message(v: Verdict) -> String {
        violations(v).remove(0).message
    }

    #[test]
    fn full_chain_passes() {
        let ctx = format!(
            "{SERVICE}{}",
            service_monitor("shop", "", "[{port: metrics}]")
        );
        assert_eq!(run(&ctx), Verdict::Pass);
    }

    #[test]
    fn service_monitor_target_port_is_resolved_through_the_service() {
        // By number, matching the Service's targetPort.
        let by_number = format!(
            "{SERVICE}{}",
            service_monitor("shop", "", "[{targetPort: 9090}]")
        );
        assert_eq!(run(&by_number), Verdict::Pass);
        // By number, where the Service targets the container port by name (http -> 8080).
        let resolved = format!(
            "{SERVICE}{}",
            service_monitor("shop", "", "[{targetPort: 8080}]")
        );
        assert_eq!(run(&resolved), Verdict::Pass);
        // By name, where the Service targets the number of the container port "metrics".
        let by_name = format!(
            "{SERVICE}{}",
            service_monitor("shop", "", "[{targetPort: metrics}]")
        );
        assert_eq!(run(&by_name), Verdict::Pass);
        let wrong = format!(
            "{SERVICE}{}",
            service_monitor("shop", "", "[{targetPort: 7000}]")
        );
        assert_eq!(
            message(run(&wrong)),
            "ServiceMonitor \"web\" selects Service \"web\" but scrapes targetPort 7000, which Service \"web\" does not define (ports: http, metrics)"
        );
    }

    #[test]
    fn endpoint_without_port_scrapes_every_service_port() {
        let ctx = format!("{SERVICE}{}", service_monitor("shop", "", "[{}]"));
        assert_eq!(run(&ctx), Verdict::Pass);
    }

    #[test]
    fn pod_monitor_passes() {
        for endpoint in [
            "{port: metrics}",
            "{portNumber: 9090}",
            "{targetPort: 9090}",
            "{targetPort: http}",
            "{path: /metrics}",
        ] {
            let ctx = format!(
                "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {{name: web, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{tier: fe}}}}\n  podMetricsEndpoints: [{endpoint}]\n"
            );
            assert_eq!(run(&ctx), Verdict::Pass, "{endpoint}");
        }
    }

    #[test]
    fn pod_monitor_with_wrong_port_fails() {
        let ctx = "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {name: web-pm, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n  podMetricsEndpoints: [{port: prom}]\n";
        assert_eq!(
            message(run(ctx)),
            "PodMonitor \"web-pm\" selects the pods but scrapes port \"prom\", which no container of Deployment/web defines"
        );
    }

    #[test]
    fn pod_monitor_selecting_other_pods_does_not_count() {
        let ctx = "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {name: api, namespace: shop}\nspec:\n  selector: {matchLabels: {app: api}}\n  podMetricsEndpoints: [{port: metrics}]\n";
        assert_eq!(
            message(run(ctx)),
            "no Service selects the pods of Deployment/web (labels app=web,tier=fe)"
        );
    }

    #[test]
    fn missing_service_fails() {
        let v = violations(check(&RULE, &workload(WEB)));
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].message,
            "no Service selects the pods of Deployment/web (labels app=web,tier=fe)"
        );
        assert!(v[0].remediation.contains("PodMonitor"));
    }

    #[test]
    fn service_without_monitor_fails() {
        let other =
            service_monitor("shop", "", "[{port: metrics}]").replace("app: web}}", "app: api}}");
        for ctx in [SERVICE.to_owned(), format!("{SERVICE}{other}")] {
            let v = violations(run(&ctx));
            assert_eq!(
                v[0].message,
                "Service \"web\" selects the pods, but no ServiceMonitor selects Service \"web\""
            );
            assert_eq!(
                v[0].remediation,
                "add a ServiceMonitor whose selector matches Service \"web\"'s labels"
            );
        }
    }

    #[test]
    fn monitor_with_wrong_port_fails() {
        let svc = SERVICE.replace("    - {name: metrics, port: 9090, targetPort: 9090}\n", "");
        let ctx = format!(
            "{svc}{}",
            service_monitor("shop", "", "[{port: metrics, path: /metrics}]")
        );
        assert_eq!(
            message(run(&ctx)),
            "ServiceMonitor \"web\" selects Service \"web\" but scrapes port \"metrics\", which Service \"web\" does not define (ports: http)"
        );
    }

    #[test]
    fn monitor_with_no_endpoints_fails() {
        let ctx = format!("{SERVICE}{}", service_monitor("shop", "", "[]"));
        assert!(message(run(&ctx)).contains("but scrapes (no endpoints)"));
    }

    #[test]
    fn monitor_in_another_namespace_needs_a_namespace_selector() {
        let plain = format!(
            "{SERVICE}{}",
            service_monitor("monitoring", "", "[{port: metrics}]")
        );
        assert!(message(run(&plain)).contains("no ServiceMonitor selects"));
        let named = format!(
            "{SERVICE}{}",
            service_monitor(
                "monitoring",
                "namespaceSelector: {matchNames: [shop]}",
                "[{port: metrics}]"
            )
        );
        assert_eq!(run(&named), Verdict::Pass);
        let any = format!(
            "{SERVICE}{}",
            service_monitor(
                "monitoring",
                "namespaceSelector: {any: true}",
                "[{port: metrics}]"
            )
        );
        assert_eq!(run(&any), Verdict::Pass);
        let elsewhere = format!(
            "{SERVICE}{}",
            service_monitor(
                "monitoring",
                "namespaceSelector: {matchNames: [other]}",
                "[{port: metrics}]"
            )
        );
        assert!(matches!(run(&elsewhere), Verdict::Fail(_)));
    }

    #[test]
    fn crds_unavailable_is_unknown() {
        let mut ctx = Context::default();
        ctx.set_service_monitors_unavailable("ServiceMonitor CRD not installed");
        ctx.set_pod_monitors_unavailable("PodMonitor CRD not installed");
        // Without a Service only the PodMonitors could have decided.
        assert_eq!(
            check_with(&RULE, &workload(WEB), &ctx, &Params::default()),
            Verdict::Unknown("PodMonitor CRD not installed".to_owned())
        );
        let mut ctx = context(SERVICE);
        ctx.set_service_monitors_unavailable("ServiceMonitor CRD not installed");
        ctx.set_pod_monitors_unavailable("PodMonitor CRD not installed");
        assert_eq!(
            check_with(&RULE, &workload(WEB), &ctx, &Params::default()),
            Verdict::Unknown(
                "PodMonitor CRD not installed; ServiceMonitor CRD not installed".to_owned()
            )
        );
    }

    #[test]
    fn one_crd_unavailable_and_nothing_found_is_unknown() {
        let mut ctx = context(SERVICE);
        ctx.set_service_monitors_unavailable("ServiceMonitor CRD not installed");
        assert_eq!(
            check_with(&RULE, &workload(WEB), &ctx, &Params::default()),
            Verdict::Unknown("ServiceMonitor CRD not installed".to_owned())
        );
        let mut ctx = context(SERVICE);
        ctx.set_pod_monitors_unavailable("PodMonitor CRD not installed");
        assert_eq!(
            check_with(&RULE, &workload(WEB), &ctx, &Params::default()),
            Verdict::Unknown("PodMonitor CRD not installed".to_owned())
        );
    }

    #[test]
    fn a_crd_that_is_not_installed_means_none_exist_and_the_installed_one_decides() {
        // PodMonitor CRD absent, ServiceMonitor CRD installed and nothing selects the Service:
        // a failure, not unknown.
        let mut ctx = context(SERVICE);
        ctx.set_pod_monitors_absent("PodMonitor CRD not installed");
        assert_eq!(
            message(check_with(&RULE, &workload(WEB), &ctx, &Params::default())),
            "Service \"web\" selects the pods, but no ServiceMonitor selects Service \"web\""
        );
        // ServiceMonitor CRD absent, PodMonitor CRD installed: the Services are unmonitored.
        let mut ctx = context(SERVICE);
        ctx.set_service_monitors_absent("ServiceMonitor CRD not installed");
        assert_eq!(
            message(check_with(&RULE, &workload(WEB), &ctx, &Params::default())),
            "Service \"web\" selects the pods, but no ServiceMonitor selects Service \"web\""
        );
        // ... and a PodMonitor that scrapes the pods passes.
        let mut ctx = context(&format!(
            "{SERVICE}\n---\napiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {{name: web, namespace: shop}}\nspec: {{selector: {{matchLabels: {{app: web}}}}, podMetricsEndpoints: [{{port: metrics}}]}}\n"
        ));
        ctx.set_service_monitors_absent("ServiceMonitor CRD not installed");
        assert_eq!(
            check_with(&RULE, &workload(WEB), &ctx, &Params::default()),
            Verdict::Pass
        );
        // Neither installed: no monitoring stack at all, unknown with both reasons.
        let mut ctx = context(SERVICE);
        ctx.set_service_monitors_absent("ServiceMonitor CRD not installed");
        ctx.set_pod_monitors_absent("PodMonitor CRD not installed");
        assert_eq!(
            check_with(&RULE, &workload(WEB), &ctx, &Params::default()),
            Verdict::Unknown(
                "PodMonitor CRD not installed; ServiceMonitor CRD not installed".to_owned()
            )
        );
        // One absent, the other installed but unreadable: still unknown.
        let mut ctx = context(SERVICE);
        ctx.set_service_monitors_absent("ServiceMonitor CRD not installed");
        ctx.set_pod_monitors_unavailable("PodMonitors cannot be listed");
        assert!(matches!(
            check_with(&RULE, &workload(WEB), &ctx, &Params::default()),
            Verdict::Unknown(_)
        ));
    }

    #[test]
    fn scrape_annotations_count_only_when_the_policy_accepts_them() {
        let accept = Params {
            accept_scrape_annotations: true,
            ..Params::default()
        };
        let annotated_pods = workload(&WEB.replace(
            "labels: {app: web, tier: fe}",
            "labels: {app: web, tier: fe}, annotations: {prometheus.io/scrape: 'true'}",
        ));
        assert!(
            annotated_pods
                .pod_annotations
                .contains_key("prometheus.io/scrape"),
            "fixture: the annotation is on the pod template"
        );
        let annotated_service = SERVICE.replace(
            "labels: {app: web}",
            "labels: {app: web}, annotations: {prometheus.io/scrape: \"True\"}",
        );
        let absent = |yaml: &str| {
            let mut ctx = context(yaml);
            ctx.set_service_monitors_absent("ServiceMonitor CRD not installed");
            ctx.set_pod_monitors_absent("PodMonitor CRD not installed");
            ctx
        };
        // Off (the default): the annotation changes nothing; no stack at all is unknown.
        assert!(matches!(
            check_with(&RULE, &annotated_pods, &absent(SERVICE), &Params::default()),
            Verdict::Unknown(_)
        ));
        // On: the pod template's or the Service's annotation is coverage.
        assert_eq!(
            check_with(&RULE, &annotated_pods, &absent(SERVICE), &accept),
            Verdict::Pass
        );
        assert_eq!(
            check_with(&RULE, &workload(WEB), &absent(&annotated_service), &accept),
            Verdict::Pass
        );
        // On, no Prometheus Operator, no annotation: nothing scrapes the pods.
        assert_eq!(
            message(check_with(&RULE, &workload(WEB), &absent(SERVICE), &accept)),
            "no prometheus.io/scrape: \"true\" annotation on the pods of Deployment/web or a Service of them, and no Prometheus Operator CRDs are installed"
        );
        // "false" is not coverage; with the operator installed the monitors still decide.
        let off = workload(&WEB.replace(
            "labels: {app: web, tier: fe}",
            "labels: {app: web, tier: fe}, annotations: {prometheus.io/scrape: 'false'}",
        ));
        assert!(matches!(
            check_with(&RULE, &off, &context(SERVICE), &accept),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn one_crd_unavailable_but_the_other_scrapes_passes() {
        let mut ctx = context(&format!(
            "{SERVICE}{}",
            service_monitor("shop", "", "[{port: metrics}]")
        ));
        ctx.set_pod_monitors_unavailable("PodMonitor CRD not installed");
        assert_eq!(
            check_with(&RULE, &workload(WEB), &ctx, &Params::default()),
            Verdict::Pass
        );
    }

    #[test]
    fn service_monitors_unavailable_without_any_service_still_fails() {
        // No Service selects the pods, so no ServiceMonitor could scrape them.
        let mut ctx = Context::default();
        ctx.set_service_monitors_unavailable("ServiceMonitor CRD not installed");
        assert_eq!(
            message(check_with(&RULE, &workload(WEB), &ctx, &Params::default())),
            "no Service selects the pods of Deployment/web (labels app=web,tier=fe)"
        );
    }

    #[test]
    fn service_with_empty_or_foreign_selector_selects_nothing() {
        for selector in ["selector: {}", "", "selector: {app: api}"] {
            let svc = SERVICE.replace("selector: {app: web}", selector);
            let ctx = format!("{svc}{}", service_monitor("shop", "", "[{port: metrics}]"));
            assert!(
                message(run(&ctx)).starts_with("no Service selects the pods"),
                "{selector}"
            );
        }
    }

    #[test]
    fn service_in_another_namespace_does_not_count() {
        let svc = SERVICE.replace("namespace: shop", "namespace: other");
        let ctx = format!("{svc}{}", service_monitor("other", "", "[{port: metrics}]"));
        assert!(message(run(&ctx)).starts_with("no Service selects the pods"));
    }

    #[test]
    fn most_specific_gap_wins_across_services() {
        let second = "\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web-headless, namespace: shop, labels: {app: other}}\nspec:\n  clusterIP: None\n  selector: {app: web}\n  ports: [{name: http, port: 80}]\n";
        let svc = SERVICE.replace("    - {name: metrics, port: 9090, targetPort: 9090}\n", "");
        let ctx = format!(
            "{svc}{second}{}",
            service_monitor("shop", "", "[{port: metrics}]")
        );
        assert!(message(run(&ctx)).starts_with("ServiceMonitor \"web\" selects Service \"web\""));
        let unmonitored = format!("{SERVICE}{second}");
        assert_eq!(
            message(run(&unmonitored)),
            "Services \"web\", \"web-headless\" select the pods, but no ServiceMonitor selects any of them"
        );
    }

    #[test]
    fn sidecar_ports_count_and_init_ports_do_not() {
        let w = workload(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop, labels: {app: web}}
spec:
  initContainers:
    - {name: setup, image: "s:1", ports: [{name: setup-metrics, containerPort: 9100}]}
    - {name: exporter, image: "e:1", restartPolicy: Always, ports: [{name: exp, containerPort: 9200}]}
  containers: [{name: app, image: "a:1"}]
"#,
        );
        let pm = |port: &str| {
            context(&format!(
                "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {{name: p, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  podMetricsEndpoints: [{{port: {port}}}]\n"
            ))
        };
        assert_eq!(
            check_with(&RULE, &w, &pm("exp"), &Params::default()),
            Verdict::Pass
        );
        assert!(matches!(
            check_with(&RULE, &w, &pm("setup-metrics"), &Params::default()),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn batch_kinds_and_run_once_pods_are_not_applicable() {
        let job = workload(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template: {spec: {containers: [{name: a, image: 'a:1'}]}}\n",
        );
        assert_eq!(check(&RULE, &job), Verdict::NotApplicable);
        let cron = workload(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: '* * * * *'\n  jobTemplate: {spec: {template: {spec: {containers: [{name: a, image: 'a:1'}]}}}}\n",
        );
        assert_eq!(check(&RULE, &cron), Verdict::NotApplicable);
        let pod = workload(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  restartPolicy: OnFailure\n  containers: [{name: a, image: 'a:1'}]\n",
        );
        assert_eq!(check(&RULE, &pod), Verdict::NotApplicable);
    }

    #[test]
    fn workload_without_labels_or_spec_fails_cleanly() {
        let w = workload("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: empty}\n");
        assert_eq!(
            message(check(&RULE, &w)),
            "no Service selects the pods of Deployment/empty (labels none)"
        );
    }
}
