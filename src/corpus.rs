//! A deterministic synthetic corpus of manifests, for benchmarks and scale tests.
//!
//! Workloads come with the objects real clusters pair them with (Services, ServiceMonitors,
//! PodDisruptionBudgets) and a realistic mix of compliant and violating settings. The same
//! seed always yields the same bytes, so figures from different runs and tools compare.

use std::fmt::Write as _;

/// A small, fast, deterministic PRNG (xorshift64*); not for anything but test data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is remapped: xorshift cannot leave the zero state).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Number of workloads.
    pub workloads: usize,
    /// Number of namespaces they spread over.
    pub namespaces: usize,
    /// Seeds the pseudo-random choices: the same seed gives the same corpus, byte for byte.
    pub seed: u64,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            workloads: 10_000,
            namespaces: 500,
            seed: 42,
        }
    }
}

/// One generated workload with its companion objects, as YAML documents.
pub struct Generated {
    /// The workload's kind.
    pub kind: &'static str,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The workload and its companions, each a YAML document without `---`.
    pub documents: Vec<String>,
}

fn container(out: &mut String, rng: &mut Rng, indent: &str, long_running: bool) {
    let tag = if rng.chance(10) {
        "latest".to_owned()
    } else {
        format!("1.{}.{}", rng.below(30), rng.below(10))
    };
    let _ = writeln!(out, "{indent}- name: app");
    let _ = writeln!(out, "{indent}  image: registry.example.com/team/app:{tag}");
    if long_running {
        let _ = writeln!(
            out,
            "{indent}  ports:\n{indent}    - {{name: http, containerPort: 8080}}\n{indent}    - {{name: metrics, containerPort: 9090}}"
        );
        if rng.chance(85) {
            let _ = writeln!(
                out,
                "{indent}  livenessProbe:\n{indent}    httpGet: {{path: /health/live, port: http}}\n{indent}    periodSeconds: 10"
            );
        }
        if rng.chance(80) {
            let path = if rng.chance(10) {
                "/health/live"
            } else {
                "/health/ready"
            };
            let _ = writeln!(
                out,
                "{indent}  readinessProbe:\n{indent}    httpGet: {{path: {path}, port: http}}"
            );
        }
        if rng.chance(70) {
            let _ = writeln!(
                out,
                "{indent}  lifecycle:\n{indent}    preStop:\n{indent}      sleep: {{seconds: 5}}"
            );
        }
    }
    let _ = writeln!(
        out,
        "{indent}  env:\n{indent}    - {{name: LOG_LEVEL, value: info}}"
    );
    if rng.chance(3) {
        let _ = writeln!(out, "{indent}    - {{name: DB_PASSWORD, value: hunter2}}");
    } else {
        let _ = writeln!(
            out,
            "{indent}    - name: DB_PASSWORD\n{indent}      valueFrom:\n{indent}        secretKeyRef: {{name: db, key: password}}"
        );
    }
    if rng.chance(85) {
        let _ = writeln!(
            out,
            "{indent}  resources:\n{indent}    requests: {{cpu: 100m, memory: 128Mi}}"
        );
        if rng.chance(90) {
            let _ = writeln!(out, "{indent}    limits: {{memory: 256Mi}}");
        }
    }
}

/// Generates the workloads of a spec, one at a time.
pub fn generate(spec: Spec) -> impl Iterator<Item = Generated> {
    let mut rng = Rng::new(spec.seed);
    (0..spec.workloads).map(move |i| {
        let namespace = format!("team-{:03}", i % spec.namespaces.max(1));
        let roll = rng.below(100);
        let (kind, name) = match roll {
            0..60 => ("Deployment", format!("web-{i:05}")),
            60..85 => ("StatefulSet", format!("db-{i:05}")),
            _ => ("CronJob", format!("job-{i:05}")),
        };
        let mut doc = String::with_capacity(2048);
        let labels = format!("{{app: {name}, team: t{}}}", i % 17);
        let _ = writeln!(doc, "apiVersion: {}\nkind: {kind}", if kind == "CronJob" { "batch/v1" } else { "apps/v1" });
        let _ = writeln!(doc, "metadata:\n  name: {name}\n  namespace: {namespace}\n  labels: {labels}");
        let mut documents = Vec::with_capacity(4);
        if kind == "CronJob" {
            let policy = if rng.chance(70) { "Forbid" } else { "Allow" };
            let _ = writeln!(doc, "spec:\n  schedule: \"{} 3 * * *\"\n  concurrencyPolicy: {policy}", rng.below(60));
            if rng.chance(70) {
                let _ = writeln!(doc, "  startingDeadlineSeconds: 300");
            }
            let _ = writeln!(doc, "  jobTemplate:\n    spec:\n      template:\n        metadata:\n          labels: {labels}\n        spec:\n          restartPolicy: OnFailure\n          containers:");
            container(&mut doc, &mut rng, "            ", false);
            documents.push(doc);
        } else {
            let replicas = if rng.chance(20) { 1 } else { 2 + rng.below(3) };
            let _ = writeln!(doc, "spec:\n  replicas: {replicas}");
            if kind == "StatefulSet" {
                let _ = writeln!(doc, "  serviceName: {name}");
            }
            let _ = writeln!(doc, "  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {labels}\n    spec:\n      terminationGracePeriodSeconds: 30\n      containers:");
            container(&mut doc, &mut rng, "        ", true);
            documents.push(doc);
            documents.push(format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels: {{app: {name}}}\nspec:\n  selector: {{app: {name}}}\n  ports:\n    - {{name: http, port: 80, targetPort: http}}\n    - {{name: metrics, port: 9090, targetPort: metrics}}\n"
            ));
            if rng.chance(70) {
                documents.push(format!(
                    "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  endpoints:\n    - {{port: metrics, interval: 30s}}\n"
                ));
            }
            if replicas > 1 && rng.chance(60) {
                documents.push(format!(
                    "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  maxUnavailable: 1\n  selector:\n    matchLabels: {{app: {name}}}\n"
                ));
            }
        }
        Generated { kind, namespace, name, documents }
    })
}

/// The whole corpus as one multi-document YAML stream.
pub fn to_yaml(spec: Spec) -> String {
    let mut out = String::with_capacity(spec.workloads * 2400);
    for g in generate(spec) {
        for d in g.documents {
            out.push_str("---\n");
            out.push_str(&d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic() {
        let spec = Spec {
            workloads: 50,
            namespaces: 5,
            seed: 7,
        };
        let a = to_yaml(spec);
        assert_eq!(a, to_yaml(spec));
        // That it also parses is tested where parsing lives (`audit::load`).
    }
}
