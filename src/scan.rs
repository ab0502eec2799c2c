//! `prodready audit --cluster`: a read-only scan of a live cluster. It is the controller's read
//! path without the writes: the controller's [`Stores`] filled by its own watches
//! ([`controller::spawn_watches_in`], initial lists streamed where the API server serves them,
//! paged otherwise), the ServiceMonitor/PodMonitor CRDs discovered as the controller discovers
//! them, and the engine context built by [`Stores::context`], "CRD missing" reasons included.
//! Once every store has synced, the workloads and the context are taken once, the watches are
//! stopped, and the audit machinery judges them like manifests read from files. Nothing is
//! written to the cluster.
//!
//! Each workload's [`Source`] is `cluster:<context>` (the kubeconfig context it was read
//! through), document = its position in the scan (sorted by namespace, kind, name), line 1.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use prometheus_client::registry::Registry;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::audit::{InputError, Loaded, Source};
use crate::controller::{self, Stores, WatchFailure, WatchScope};
use crate::engine::{CompiledPolicy, Workload};
use crate::flags::{format_duration, parse_duration};
use crate::kubeapi::{
    ApiCalls, ApiError, DependencyMetrics, RetryPolicy, context_names, default_kubeconfig,
    describe_kubeconfig, has_context,
};
use crate::run::InitialListArg;

/// Where the read-only ClusterRole a scan needs is kept (and documented).
pub const AUDIT_ROLE: &str = "config/rbac/audit_role.yaml (docs/audit-cluster.md)";

/// The `--cluster` flags of `prodready audit`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Audit the live cluster through the kubeconfig instead of files (read-only: list and
    /// watch only; see docs/audit-cluster.md for the RBAC it needs). Without --policy or
    /// --profile the cluster's own ProductionPolicies are applied, else the baseline profile.
    #[arg(long)]
    pub cluster: bool,

    /// With --cluster: the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else
    /// the in-cluster service account).
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub kubeconfig: Option<PathBuf>,

    /// With --cluster: the kubeconfig context (default: its current context). Repeat it to
    /// audit several clusters into one report (docs/many-clusters.md): every finding names its
    /// cluster (the context's name), and a cluster that cannot be read is an error in the
    /// report (exit code 2) while the others are still audited.
    #[arg(long, value_name = "NAME", requires = "cluster")]
    pub context: Vec<String>,

    /// With --cluster: audit every context of the kubeconfig into one report, as repeated
    /// --context would.
    #[arg(long, requires = "cluster", conflicts_with = "context")]
    pub all_contexts: bool,

    /// With --cluster and one context: the cluster's name, put on every finding (JSON
    /// `cluster`, SARIF and JUnit properties, the table's heading, the policy reports' label
    /// and property). Several contexts are named by their context names.
    #[arg(
        long,
        value_name = "NAME",
        requires = "cluster",
        conflicts_with = "all_contexts"
    )]
    pub cluster_name: Option<String>,

    /// With --cluster: audit the workloads of this namespace only.
    #[arg(long, value_name = "NS", requires = "cluster")]
    pub namespace: Option<String>,

    /// With --cluster: timeout of each API request, and how long a failing list is retried
    /// before the scan gives up.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub api_timeout: Duration,

    /// With --cluster: how the objects are read: `stream` (streaming lists, Kubernetes
    /// 1.32+), `pages` (LIST in pages) or `auto` (stream when the API server supports it).
    #[arg(long, value_enum, default_value_t = InitialListArg::Auto, requires = "cluster")]
    pub initial_list: InitialListArg,
}

/// Which policies a scan applied, and why (said on stderr).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySource {
    /// `--policy` or `--profile` was given.
    Explicit,
    /// The cluster's ProductionPolicies (by name).
    Cluster(Vec<String>),
    /// The baseline profile, because the cluster has no ProductionPolicy to apply.
    Baseline {
        /// Why: the CRD is not installed, or no policy exists.
        why: &'static str,
    },
}

impl PolicySource {
    /// One line for stderr.
    pub fn describe(&self) -> String {
        match self {
            PolicySource::Explicit => "applying the policies given by --policy/--profile".into(),
            PolicySource::Cluster(names) => format!(
                "applying the cluster's ProductionPolicies ({}), as the operator does; give --policy or --profile to apply others",
                names.join(", ")
            ),
            PolicySource::Baseline { why } => {
                format!("applying the built-in baseline profile: {why}")
            }
        }
    }
}

/// What a scan read: the inputs of the audit.
#[derive(Debug)]
pub struct Scanned {
    /// The workloads, the context and any problem (invalid cluster policies).
    pub loaded: Loaded,
    /// The policies to apply.
    pub policies: Vec<CompiledPolicy>,
    /// Where they came from.
    pub source: PolicySource,
}

/// The cluster a scan reads, as error messages name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The kubeconfig context (`in-cluster` for the service account).
    pub context: String,
    /// The kubeconfig file(s) read, or `the in-cluster service account`.
    pub kubeconfig: String,
    /// The API server's URL.
    pub server: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (context \"{}\" of {})",
            self.server, self.context, self.kubeconfig
        )
    }
}

/// Why a scan could not read the cluster. Every message is a sentence: what failed, why,
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// No kubeconfig could be read or used.
    #[error(
        "cannot use the kubeconfig {kubeconfig}: {reason}; give --kubeconfig FILE (or set KUBECONFIG) and --context NAME naming a cluster you can reach"
    )]
    Kubeconfig {
        /// The file(s) tried.
        kubeconfig: String,
        /// What kube said.
        reason: String,
    },
    /// `--context` names a context the kubeconfig does not define.
    #[error(
        "the kubeconfig {kubeconfig} has no context \"{context}\" (it has: {available}); give --context one of those, or --kubeconfig the file that defines it"
    )]
    NoContext {
        /// The file(s) read.
        kubeconfig: String,
        /// `--context` as given.
        context: String,
        /// The contexts it defines, comma-separated.
        available: String,
    },
    /// The API server accepted the connection but did not answer in time.
    #[error(
        "the API server at {target} did not answer within {} when prodready tried to {doing}; check that it is up and reachable from here, or raise --api-timeout (now {}) if it is only slow",
        format_duration(*limit),
        format_duration(*limit)
    )]
    Timeout {
        /// The cluster.
        target: Box<Target>,
        /// What was asked, in words.
        doing: String,
        /// `--api-timeout`.
        limit: Duration,
    },
    /// The API server did not answer.
    #[error(
        "cannot reach the API server at {target}: {reason}; check that the cluster is running and reachable from here, or choose another with --context/--kubeconfig"
    )]
    Unreachable {
        /// The cluster.
        target: Box<Target>,
        /// What failed.
        reason: String,
    },
    /// The credentials were rejected.
    #[error(
        "the API server at {target} rejected the credentials: {reason}; renew them (log in again) or choose others with --context/--kubeconfig"
    )]
    Unauthorized {
        /// The cluster.
        target: Box<Target>,
        /// What the API server said.
        reason: String,
    },
    /// RBAC refused a read.
    #[error(
        "the credentials of {target} may not {verb} {resource}: {reason}; bind them to the read-only ClusterRole prodready-audit in {AUDIT_ROLE}"
    )]
    Forbidden {
        /// The cluster.
        target: Box<Target>,
        /// `list`, `watch` or `get`.
        verb: &'static str,
        /// The resource, e.g. `deployments.apps`.
        resource: String,
        /// What the API server said.
        reason: String,
    },
    /// A read kept failing.
    #[error(
        "cannot read the {kind} objects of {target}: {reason} (still failing after {}); retry, or raise --api-timeout if the API server is slow",
        format_duration(*after)
    )]
    Failed {
        /// The kind.
        kind: &'static str,
        /// The cluster.
        target: Box<Target>,
        /// What failed last.
        reason: String,
        /// How long it was retried.
        after: Duration,
    },
    /// `--namespace` names a namespace the cluster does not have.
    #[error(
        "the namespace {namespace} does not exist at {target}; check the name (kubectl get namespaces) or the context"
    )]
    NoNamespace {
        /// The namespace given.
        namespace: String,
        /// The cluster.
        target: Box<Target>,
    },
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Scans the cluster on a runtime of its own (the rest of `prodready audit` is synchronous).
/// `explicit`: the policies of --policy/--profile, if given. `progress`: show progress on
/// stderr (only on a terminal).
pub fn scan_blocking(
    args: &ClusterArgs,
    explicit: Option<Vec<CompiledPolicy>>,
    now: Timestamp,
    progress: bool,
) -> Result<Scanned, ScanError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ScanError::Runtime)?;
    runtime.block_on(scan(
        args,
        args.context.first().map(String::as_str),
        explicit,
        now,
        progress,
    ))
}

/// Whether progress should be shown: stderr is a terminal.
pub fn progress_wanted() -> bool {
    std::io::stderr().is_terminal()
}

/// Reads the cluster of `context` (`None`: the kubeconfig's current one) once; see the module
/// documentation.
pub async fn scan(
    args: &ClusterArgs,
    context: Option<&str>,
    explicit: Option<Vec<CompiledPolicy>>,
    now: Timestamp,
    progress: bool,
) -> Result<Scanned, ScanError> {
    let started = Instant::now();
    let (client, target) = connect(args, context).await?;
    let calls = ApiCalls::with_policy(
        DependencyMetrics::register(&mut Registry::default()),
        RetryPolicy {
            timeout: args.api_timeout,
            attempts: 1,
            ..RetryPolicy::default()
        },
    );
    calls
        .once("get_version", client.apiserver_version())
        .await
        .map_err(|e| api_error(&e, &target, "get", "/version"))?;
    let lists = controller::initial_list::choose(args.initial_list.fixed(), &client, &calls).await;
    let monitors = controller::monitoring_served(&client, &calls)
        .await
        .map_err(|e| api_error(&e, &target, "get", "monitoring.coreos.com/v1 (discovery)"))?;
    let cluster_policies = match explicit {
        Some(_) => false,
        None => policies_served(&client, &calls)
            .await
            .map_err(|e| api_error(&e, &target, "get", "prodready.dev/v1alpha1 (discovery)"))?,
    };

    let stores = Arc::new(Stores::default());
    let trigger = Arc::new(Notify::new());
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let scope = WatchScope {
        namespace: args.namespace.as_deref(),
        policies: cluster_policies,
    };
    controller::spawn_watches_in(
        &client, scope, lists, &stores, &trigger, &shutdown, &mut tasks,
    );
    controller::watch_monitors(&client, lists, &stores, monitors, &trigger, &shutdown);
    let synced = wait_synced(
        &stores,
        cluster_policies,
        args.api_timeout,
        &target,
        progress,
    )
    .await;
    shutdown.cancel();
    tasks.abort_all();
    synced?;
    if let Some(namespace) = &args.namespace
        && stores.namespaces.is_empty()
    {
        return Err(ScanError::NoNamespace {
            namespace: namespace.clone(),
            target: Box::new(target),
        });
    }

    let mut errors = Vec::new();
    let workloads = workloads(&stores, &target, &mut errors);
    let context = stores.context();
    if progress {
        eprintln!(
            "\rprodready: read {} workloads from {} in {:.1} s ({} lists)      ",
            workloads.len(),
            target.context,
            started.elapsed().as_secs_f64(),
            lists.name()
        );
    }
    let (policies, source, context) = match explicit {
        Some(policies) => (policies, PolicySource::Explicit, context),
        None => cluster_policy_set(
            &stores,
            cluster_policies,
            context,
            now,
            &target,
            &mut errors,
        ),
    };
    Ok(Scanned {
        loaded: Loaded {
            workloads,
            policies: Vec::new(),
            context,
            errors,
            inputs: crate::audit::Inputs::default(),
        },
        policies,
        source,
    })
}

/// The kubeconfig of --kubeconfig, else $KUBECONFIG or ~/.kube/config; `None` when neither
/// exists and no context was asked for (then the in-cluster service account is used).
pub fn read_kubeconfig(
    args: &ClusterArgs,
    context_asked: bool,
) -> Result<Option<Kubeconfig>, ScanError> {
    match &args.kubeconfig {
        Some(path) => Ok(Some(Kubeconfig::read_from(path).map_err(|e| {
            ScanError::Kubeconfig {
                kubeconfig: path.display().to_string(),
                reason: describe_kubeconfig(&e),
            }
        })?)),
        None => match Kubeconfig::read() {
            Ok(kc) => Ok(Some(kc)),
            Err(e) if context_asked => Err(ScanError::Kubeconfig {
                kubeconfig: default_kubeconfig(),
                reason: describe_kubeconfig(&e),
            }),
            // Neither $KUBECONFIG nor ~/.kube/config: inside a pod, its service account.
            Err(_) => Ok(None),
        },
    }
}

/// How messages name the kubeconfig read.
pub fn kubeconfig_name(args: &ClusterArgs) -> String {
    match &args.kubeconfig {
        Some(path) => path.display().to_string(),
        None => default_kubeconfig(),
    }
}

/// The client and how messages name the cluster, from --kubeconfig and `context`, else
/// $KUBECONFIG or ~/.kube/config, else the in-cluster service account.
async fn connect(args: &ClusterArgs, context: Option<&str>) -> Result<(Client, Target), ScanError> {
    let read = read_kubeconfig(args, context.is_some())?;
    let kubeconfig = match &read {
        Some(_) => kubeconfig_name(args),
        None => "the in-cluster service account".to_owned(),
    };
    let mut config = match read {
        Some(kc) => {
            if let Some(context) = context
                && !has_context(&kc, context)
            {
                return Err(ScanError::NoContext {
                    available: context_names(&kc),
                    kubeconfig,
                    context: context.to_owned(),
                });
            }
            let context = context
                .map(str::to_owned)
                .or_else(|| kc.current_context.clone())
                .unwrap_or_default();
            let options = KubeConfigOptions {
                context: Some(context.clone()).filter(|c| !c.is_empty()),
                ..KubeConfigOptions::default()
            };
            let config = kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| ScanError::Kubeconfig {
                    kubeconfig: format!("{kubeconfig} (context \"{context}\")"),
                    reason: describe_kubeconfig(&e),
                })?;
            (config, context)
        }
        None => {
            // Why no kubeconfig was read, for the message when there is no pod either.
            let unread = Kubeconfig::read()
                .err()
                .map(|e| describe_kubeconfig(&e))
                .unwrap_or_default();
            (
                kube::Config::incluster().map_err(|e| ScanError::Kubeconfig {
                    kubeconfig: default_kubeconfig(),
                    reason: format!(
                        "{unread}, and there is no in-cluster service account either ({e})"
                    ),
                })?,
                "in-cluster".to_owned(),
            )
        }
    };
    config.0.connect_timeout = Some(args.api_timeout);
    let target = Target {
        context: config.1,
        kubeconfig,
        server: config.0.cluster_url.to_string(),
    };
    let client = Client::try_from(config.0).map_err(|e| ScanError::Kubeconfig {
        kubeconfig: target.kubeconfig.clone(),
        reason: format!("the client cannot be built from it: {e}"),
    })?;
    Ok((client, target))
}

/// Whether the ProductionPolicy CRD is installed.
async fn policies_served(client: &Client, calls: &ApiCalls) -> Result<bool, ApiError> {
    match calls
        .once(
            "discover_policies",
            client.list_api_group_resources("prodready.dev/v1alpha1"),
        )
        .await
    {
        Ok(list) => Ok(list
            .resources
            .iter()
            .any(|r| r.name == "productionpolicies")),
        Err(e) if e.code() == Some(404) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The scan error of a failed request.
fn api_error(e: &ApiError, target: &Target, verb: &'static str, resource: &str) -> ScanError {
    if let ApiError::Timeout { op, timeout } = e {
        return ScanError::Timeout {
            target: Box::new(target.clone()),
            doing: crate::kubeapi::action(op).into_owned(),
            limit: *timeout,
        };
    }
    let reason = e.to_string();
    match e.code() {
        Some(401) => ScanError::Unauthorized {
            target: Box::new(target.clone()),
            reason,
        },
        Some(403) => ScanError::Forbidden {
            target: Box::new(target.clone()),
            verb,
            resource: resource.to_owned(),
            reason,
        },
        _ => ScanError::Unreachable {
            target: Box::new(target.clone()),
            reason,
        },
    }
}

/// The resource (`deployments.apps`) a store's kind is read from, for RBAC messages.
pub fn resource_of(kind: &str) -> &'static str {
    match kind {
        "Deployment" => "deployments.apps",
        "StatefulSet" => "statefulsets.apps",
        "DaemonSet" => "daemonsets.apps",
        "ReplicaSet" => "replicasets.apps",
        "CronJob" => "cronjobs.batch",
        "Job" => "jobs.batch",
        "Pod" => "pods",
        "Service" => "services",
        "Namespace" => "namespaces",
        "PodDisruptionBudget" => "poddisruptionbudgets.policy",
        "NetworkPolicy" => "networkpolicies.networking.k8s.io",
        "HorizontalPodAutoscaler" => "horizontalpodautoscalers.autoscaling",
        "Lease" => "leases.coordination.k8s.io",
        "ProductionPolicy" => "productionpolicies.prodready.dev",
        "ServiceMonitor" => "servicemonitors.monitoring.coreos.com",
        "PodMonitor" => "podmonitors.monitoring.coreos.com",
        _ => "an unnamed resource",
    }
}

/// What to do about the failures seen while waiting: `Err` to stop the scan. A permanent
/// refusal (401, 403, other 4xx) stops it at once; any other failure once it has lasted
/// `patience` (`first` remembers since when each kind fails).
pub fn judge_failures(
    failures: &[(&'static str, WatchFailure)],
    first: &mut HashMap<&'static str, Instant>,
    now: Instant,
    patience: Duration,
    target: &Target,
) -> Result<(), ScanError> {
    first.retain(|kind, _| failures.iter().any(|(k, _)| k == kind));
    for (kind, failure) in failures {
        let since = *first.entry(kind).or_insert(now);
        let reason = failure.message.clone();
        match failure.code {
            Some(401) => {
                return Err(ScanError::Unauthorized {
                    target: Box::new(target.clone()),
                    reason,
                });
            }
            Some(403) => {
                return Err(ScanError::Forbidden {
                    target: Box::new(target.clone()),
                    // A streaming list is a watch; a paged one a list: the role grants both.
                    verb: "list and watch",
                    resource: resource_of(kind).to_owned(),
                    reason,
                });
            }
            _ if failure.is_permanent() || now.duration_since(since) >= patience => {
                return Err(ScanError::Failed {
                    kind,
                    target: Box::new(target.clone()),
                    reason,
                    after: now.duration_since(since),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Waits until every store the scan reads has synced, showing progress when asked.
async fn wait_synced(
    stores: &Stores,
    policies: bool,
    patience: Duration,
    target: &Target,
    progress: bool,
) -> Result<(), ScanError> {
    let started = Instant::now();
    let mut first = HashMap::new();
    let mut shown = Instant::now();
    let mut printed = false;
    loop {
        let pending: Vec<&'static str> = stores
            .unsynced()
            .into_iter()
            .filter(|k| policies || *k != stores.policies.kind())
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let failures: Vec<_> = stores
            .failures()
            .into_iter()
            .filter(|(k, _)| pending.contains(k))
            .collect();
        if let Err(e) = judge_failures(&failures, &mut first, Instant::now(), patience, target) {
            if printed {
                // The error's line starts on a line of its own, not after the progress.
                eprintln!();
            }
            return Err(e);
        }
        if progress && shown.elapsed() >= Duration::from_millis(250) {
            shown = Instant::now();
            printed = true;
            eprint!(
                "\rprodready: listing {} from {}: {} workloads synced, waiting for {} kind(s) ({:.0} s)   ",
                target.server,
                target.context,
                stores.workloads().len(),
                pending.len(),
                started.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every stored workload as the engine sees it, sorted by namespace, kind and name, with its
/// source; a stored copy that cannot be decoded is an input error.
fn workloads(
    stores: &Stores,
    target: &Target,
    errors: &mut Vec<InputError>,
) -> Vec<(Workload, Source)> {
    let mut tracked = stores.workloads();
    tracked.sort_by(|a, b| {
        (a.namespace.as_str(), a.kind.as_str(), a.name.as_str()).cmp(&(
            b.namespace.as_str(),
            b.kind.as_str(),
            b.name.as_str(),
        ))
    });
    let file = format!("cluster:{}", target.context);
    let mut out = Vec::with_capacity(tracked.len());
    for t in tracked {
        match t.workload() {
            Ok(w) => {
                let document = out.len();
                out.push((
                    w,
                    Source {
                        file: file.clone(),
                        document,
                        line: 1,
                        item: None,
                        helm_source: None,
                        rendered_by: None,
                    },
                ));
            }
            Err(e) => errors.push(InputError {
                file: format!("{file}/{}", t.key()),
                document: None,
                line: None,
                message: format!("the workload cannot be read: {e}"),
            }),
        }
    }
    out
}

/// The cluster's policies compiled as the controller compiles them (sorted by name), or the
/// baseline profile when there are none; a policy that does not compile is not applied (as in
/// the controller) and is reported as an input error.
fn cluster_policy_set(
    stores: &Stores,
    installed: bool,
    context: crate::engine::Context,
    now: Timestamp,
    target: &Target,
    errors: &mut Vec<InputError>,
) -> (Vec<CompiledPolicy>, PolicySource, crate::engine::Context) {
    let objects = stores.policies.all();
    if !installed || objects.is_empty() {
        let why = if installed {
            "the cluster has no ProductionPolicy; give --policy FILE or --profile NAME to apply others"
        } else {
            "the ProductionPolicy CRD (productionpolicies.prodready.dev) is not installed in the cluster; install it (kubectl apply -f crds/productionpolicies.prodready.dev.yaml) to apply the cluster's own policies, or give --policy FILE or --profile NAME"
        };
        let baseline =
            CompiledPolicy::builtin(crate::api::Profile::Baseline, &crate::rules::CATALOG);
        return (vec![baseline], PolicySource::Baseline { why }, context);
    }
    let (snapshot, invalid) =
        controller::round::snapshot(&objects, context, now, &crate::rules::CATALOG);
    for (policy, e) in invalid {
        errors.push(InputError {
            file: format!(
                "cluster:{}/productionpolicies/{}",
                target.context,
                policy.metadata.name.as_deref().unwrap_or_default()
            ),
            document: None,
            line: None,
            message: format!(
                "the policy is not applied (the operator does not apply it either): {e}"
            ),
        });
    }
    let policies: Vec<CompiledPolicy> = snapshot
        .policies
        .into_iter()
        .map(|p| Arc::try_unwrap(p).unwrap_or_else(|p| (*p).clone()))
        .collect();
    let names = policies.iter().map(|p| p.name.clone()).collect();
    (policies, PolicySource::Cluster(names), snapshot.context)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            context: "prod".into(),
            kubeconfig: "/k/config".into(),
            server: "https://10.0.0.1:6443/".into(),
        }
    }

    fn failure(code: Option<u16>, message: &str) -> WatchFailure {
        WatchFailure {
            code,
            message: message.into(),
        }
    }

    #[test]
    fn a_refused_list_stops_the_scan_at_once_naming_the_resource_and_the_role() {
        let mut first = HashMap::new();
        let failures = [(
            "CronJob",
            failure(
                Some(403),
                "the API server answered 403 Forbidden: cronjobs.batch is forbidden",
            ),
        )];
        let err = judge_failures(
            &failures,
            &mut first,
            Instant::now(),
            Duration::from_secs(10),
            &target(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains("may not list and watch cronjobs.batch"),
            "{err}"
        );
        assert!(err.contains("context \"prod\" of /k/config"), "{err}");
        assert!(err.contains("config/rbac/audit_role.yaml"), "{err}");
    }

    #[test]
    fn a_transient_failure_is_retried_until_the_patience_runs_out() {
        let mut first = HashMap::new();
        let failures = [("Service", failure(None, "connection refused"))];
        let t0 = Instant::now();
        let patience = Duration::from_secs(10);
        assert!(judge_failures(&failures, &mut first, t0, patience, &target()).is_ok());
        let later = t0 + Duration::from_secs(5);
        assert!(judge_failures(&failures, &mut first, later, patience, &target()).is_ok());
        // Recovered (and failing again later) starts the clock again.
        assert!(judge_failures(&[], &mut first, later, patience, &target()).is_ok());
        assert!(first.is_empty());
        let much_later = t0 + Duration::from_secs(12);
        assert!(judge_failures(&failures, &mut first, much_later, patience, &target()).is_ok());
        let end = much_later + patience;
        let err = judge_failures(&failures, &mut first, end, patience, &target())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("cannot read the Service objects of https://10.0.0.1:6443/"),
            "{err}"
        );
        assert!(err.contains("connection refused"), "{err}");
    }

    #[test]
    fn unauthorized_and_other_refusals_stop_at_once() {
        let mut first = HashMap::new();
        let now = Instant::now();
        let long = Duration::from_secs(600);
        let unauthorized = [("Pod", failure(Some(401), "Unauthorized"))];
        let err = judge_failures(&unauthorized, &mut first, now, long, &target())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("rejected the credentials"), "{err}");
        let gone = [("Pod", failure(Some(404), "the server could not find it"))];
        assert!(judge_failures(&gone, &mut first, now, long, &target()).is_err());
        let throttled = [("Pod", failure(Some(429), "too many requests"))];
        assert!(judge_failures(&throttled, &mut HashMap::new(), now, long, &target()).is_ok());
    }

    #[test]
    fn every_store_kind_names_its_resource() {
        let stores = Stores::default();
        for kind in stores.unsynced() {
            assert_ne!(resource_of(kind), "an unnamed resource", "{kind}");
        }
        assert_eq!(
            resource_of(stores.service_monitors.kind()),
            "servicemonitors.monitoring.coreos.com"
        );
    }

    #[test]
    fn the_policy_source_is_said_in_one_line() {
        let cluster = PolicySource::Cluster(vec!["baseline".into(), "strict".into()]);
        assert!(cluster.describe().contains("(baseline, strict)"));
        let none = PolicySource::Baseline {
            why: "the cluster has no ProductionPolicy",
        };
        assert_eq!(
            none.describe(),
            "applying the built-in baseline profile: the cluster has no ProductionPolicy"
        );
    }
}
