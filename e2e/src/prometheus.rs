//! A real Prometheus for the suites (built by `e2e/k8s-binaries.sh`): started on a loopback
//! port with a configuration the test writes, and its HTTP API as the tests read it (instant
//! queries, alerts, rules), plus every query of the shipped Grafana dashboard.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use crate::binaries::Binaries;
use crate::chart::chart_dir;
use crate::http::http_get;
use crate::process::{Daemon, free_port};
use crate::wait::wait_for;

/// The job the shipped rules and dashboard select (the chart's metrics Service for release
/// `prodready`).
pub const PRODREADY_JOB: &str = "prodready-metrics";
/// The shipped alert rules, as Prometheus loads them.
pub const RULES_FILE: &str = "charts/prodready/files/prometheus-rules.yaml";

/// A prometheus.yml that scrapes the operator at `admin` every second as [`PRODREADY_JOB`] and
/// evaluates the shipped rules every second; `cluster` becomes the external label `cluster`, as
/// a cluster of a fleet sets it (docs/many-clusters.md).
pub fn operator_scrape_config(admin: SocketAddr, cluster: Option<&str>) -> String {
    let labels = cluster
        .map(|c| format!(", external_labels: {{cluster: {c}}}"))
        .unwrap_or_default();
    format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s{labels}}}\n\
         rule_files: [{rules:?}]\n\
         scrape_configs:\n  - job_name: {PRODREADY_JOB}\n    static_configs: [{{targets: [\"{admin}\"]}}]\n",
        rules = crate::binaries::repo_root()
            .join(RULES_FILE)
            .display()
            .to_string()
    )
}

/// A running Prometheus; stopped on drop (its [`Daemon`]).
pub struct Prometheus {
    /// The process.
    pub server: Daemon,
    /// Its web address (API and UI).
    pub addr: SocketAddr,
}

impl Prometheus {
    /// Starts Prometheus with `config` (a prometheus.yml) in `dir/<name>` on a free loopback
    /// port and waits (at most 30 s) until it answers `/-/ready`.
    pub async fn start(
        bins: &Binaries,
        dir: &Path,
        name: &str,
        config: &str,
    ) -> anyhow::Result<Self> {
        let home = dir.join(name);
        std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
        let file = home.join("prometheus.yml");
        std::fs::write(&file, config).with_context(|| format!("writing {}", file.display()))?;
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let mut server = Daemon::start(
            "prometheus",
            &bins.prometheus(),
            &[
                format!("--config.file={}", file.display()),
                format!("--storage.tsdb.path={}", home.join("data").display()),
                format!("--web.listen-address={addr}"),
                "--log.level=warn".to_owned(),
            ],
            &home.join("prometheus.log"),
        )
        .with_context(|| format!("starting prometheus {name}"))?;
        let ready = wait_for(Duration::from_secs(30), "Prometheus ready", || async {
            match http_get(addr, "/-/ready") {
                Ok((200, _)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        if let Err(e) = ready {
            anyhow::bail!("prometheus {name}: {e}\n{}", server.log_tail(30));
        }
        if let Some(status) = server.exited() {
            anyhow::bail!(
                "prometheus {name} exited: {status}\n{}",
                server.log_tail(30)
            );
        }
        Ok(Self { server, addr })
    }

    /// `GET path` on the API, its `data`.
    pub fn api(&self, path: &str) -> Result<Value, String> {
        prometheus_api(self.addr, path)
    }

    /// An instant query's samples.
    pub fn query(&self, promql: &str) -> Result<Vec<(Value, f64)>, String> {
        query(self.addr, promql)
    }

    /// The alerts it holds now: (labels, state).
    pub fn alerts(&self) -> Result<Vec<(Value, String)>, String> {
        let data = self.api("/api/v1/alerts")?;
        Ok(data["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    a["labels"].clone(),
                    a["state"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }
}

/// Percent-encodes a query parameter (everything but RFC 3986's unreserved characters).
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET path` on the Prometheus API at `prometheus`, its `data`; an error says what failed.
pub fn prometheus_api(prometheus: SocketAddr, path: &str) -> Result<Value, String> {
    let (status, body) = http_get(prometheus, path)?;
    let v: Value = serde_json::from_str(&body)
        .map_err(|e| format!("GET {path}: {status}, not JSON ({e}): {body}"))?;
    if status != 200 || v["status"] != "success" {
        return Err(format!("GET {path}: {status} {body}"));
    }
    Ok(v["data"].clone())
}

/// The instant query's samples as (labels, value); NaN and infinities are left out.
pub fn query(prometheus: SocketAddr, promql: &str) -> Result<Vec<(Value, f64)>, String> {
    let data = prometheus_api(
        prometheus,
        &format!("/api/v1/query?query={}", encode(promql)),
    )?;
    let samples = match data["resultType"].as_str() {
        Some("vector") => data["result"].as_array().cloned().unwrap_or_default(),
        Some("scalar") => vec![serde_json::json!({"metric": {}, "value": data["result"]})],
        other => return Err(format!("{promql}: result type {other:?}")),
    };
    Ok(samples
        .iter()
        .filter_map(|s| {
            let v: f64 = s["value"][1].as_str()?.parse().ok()?;
            v.is_finite().then(|| (s["metric"].clone(), v))
        })
        .collect())
}

/// Every query of the shipped dashboard (panel targets, and the `label_values` of its
/// variables as the equivalent `count by`), named, with `substitute` applied to each (the
/// template variables: `$cluster`, `$job`, `$policy`, `$namespace`, `$__rate_interval`).
pub fn dashboard_queries(substitute: &dyn Fn(&str) -> String) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(chart_dir().join("dashboards/prodready.json"))
        .expect("dashboard file");
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut out = Vec::new();
    for p in dash["panels"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                let title = p["title"].as_str().unwrap_or("?");
                let legend = t["legendFormat"].as_str().unwrap_or_default();
                out.push((format!("panel {title:?} {legend}"), substitute(e)));
            }
        }
    }
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        let Some(q) = v["query"]["query"].as_str() else {
            continue;
        };
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|r| r.rsplit_once(','))
            .unwrap_or_else(|| panic!("variable query {q} is not label_values(metric, label)"));
        out.push((
            format!("variable {}", v["name"].as_str().unwrap_or("?")),
            substitute(&format!("count by ({}) ({})", inner.1.trim(), inner.0)),
        ));
    }
    assert!(out.len() >= 20, "{out:?}");
    out
}
