//! `prodready run`: the operator process. Sets up logging, the client, the metric registry,
//! the watches, the controller, the admin server and the leader election, and runs them until
//! SIGTERM/SIGINT — then stops writing, releases the Lease and returns within seconds. If a
//! long-running task ends by itself (the lease task above all) the process exits non-zero
//! rather than run half-alive.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use prometheus_client::registry::Registry;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, Health};
use crate::controller::metrics::ControllerMetrics;
use crate::controller::{self, Controller, ControllerConfig, Stores};
use crate::error::Categorized;
use crate::flags::{self, parse_duration};
use crate::kubeapi::{
    ApiCalls, DependencyMetrics, RetryPolicy, context_names, default_kubeconfig,
    describe_kubeconfig, has_context,
};
use crate::leader::{self, LeaderConfig, LeaderMetrics, Leadership};
use crate::metrics::HttpMetrics;
use crate::owner::Owner;
use crate::snapshot::SharedSnapshot;
use crate::telemetry::{self, LogFormat};

/// Arguments of `prodready run`. Every flag can also be set by its environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Kubeconfig file. Without it: $KUBECONFIG, ~/.kube/config, or the in-cluster service
    /// account, in that order.
    #[arg(long, env = "PRODREADY_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use (default: the current context).
    #[arg(long, env = "PRODREADY_CONTEXT")]
    pub context: Option<String>,

    /// Address of the admin server (/health/live, /health/ready, /metrics), plain HTTP.
    #[arg(long, env = "PRODREADY_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
    pub admin_addr: SocketAddr,

    /// Name of the coordination.k8s.io Lease used for leader election.
    #[arg(long, env = "PRODREADY_LEASE_NAME", default_value = "prodready-leader")]
    pub lease_name: String,

    /// Namespace of the leader Lease (default: $POD_NAMESPACE, else prodready-system).
    #[arg(long, env = "PRODREADY_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// This replica's identity in the Lease and on Events (default: $POD_NAME, else the
    /// hostname).
    #[arg(long, env = "PRODREADY_IDENTITY")]
    pub identity: Option<String>,

    /// How long a leader's claim lasts without renewal; another replica takes over after it.
    #[arg(long, env = "PRODREADY_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,

    /// How often the leader renews its claim and the others try to acquire it.
    #[arg(long, env = "PRODREADY_LEASE_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration)]
    pub lease_retry_period: Duration,

    /// The operator's own Deployment, in its namespace ($POD_NAMESPACE). The leader Lease and
    /// the self-managed webhook Secret get an owner reference to it, so they are garbage
    /// collected with it (`helm uninstall`, `kubectl delete -k`). The chart and the kustomize
    /// tree set it; unset (e.g. a local run), they stay until deleted by hand.
    #[arg(long, env = "PRODREADY_OWNER_DEPLOYMENT", value_name = "NAME")]
    pub owner_deployment: Option<String>,

    /// Log line format.
    #[arg(long, env = "PRODREADY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// Log level filter, tracing EnvFilter syntax (`info`, `prodready=debug,kube=info`, …).
    #[arg(long, env = "PRODREADY_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Re-evaluate every policy at least this often, even when nothing changed.
    #[arg(long, env = "PRODREADY_RESYNC_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub resync_interval: Duration,

    /// Most violations listed in a policy's status (the counts stay exact).
    #[arg(long, env = "PRODREADY_MAX_VIOLATIONS", default_value_t = 100)]
    pub max_violations: usize,

    /// Quiet time after a change before evaluating, so bursts cost one evaluation.
    #[arg(long, env = "PRODREADY_DEBOUNCE", default_value = "500ms", value_parser = parse_duration)]
    pub debounce: Duration,

    /// How often to look for the ServiceMonitor/PodMonitor CRDs (monitoring.coreos.com/v1)
    /// and the policy report CRD of --reports.
    #[arg(long, env = "PRODREADY_DISCOVERY_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub discovery_interval: Duration,

    /// Most Events published per second. Evaluation never waits for them: the rest queue,
    /// latest state per workload, and follow in the next seconds.
    #[arg(long, env = "PRODREADY_MAX_EVENTS_PER_SECOND", default_value_t = 50)]
    pub max_events_per_second: usize,

    /// How watches read the cluster's state at start (and after falling too far behind):
    /// `stream` (a streaming list: each object sent from the API server's watch cache as an
    /// event; Kubernetes 1.32+), `pages` (a LIST in pages of 100) or `auto` (stream when a
    /// probe at start shows the API server supports it, else pages).
    #[arg(long, env = "PRODREADY_INITIAL_LIST", value_enum, default_value_t = InitialListArg::Auto)]
    pub initial_list: InitialListArg,

    /// Timeout of each API request (retried when transient).
    #[arg(long, env = "PRODREADY_API_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub api_timeout: Duration,

    /// Write each matched workload's results as a policy report in its namespace:
    /// `openreports` (openreports.io/v1alpha1 Report), `policyreport` (wgpolicyk8s.io/v1alpha2
    /// PolicyReport) or `none`. While the CRD is not installed the policies say so in their
    /// `Reported` condition; reports start when it appears, without a restart.
    #[arg(long, env = "PRODREADY_REPORTS", value_enum, default_value_t = ReportsArg::Openreports)]
    pub reports: ReportsArg,

    /// Also give passing rules a `pass` result in the reports (they dominate the volume).
    #[arg(long, env = "PRODREADY_REPORTS_INCLUDE_PASSES")]
    pub reports_include_passes: bool,

    /// This cluster's name in a fleet: a label (`prodready.dev/cluster-name`) and a result
    /// property (`cluster-name`) of every policy report, and an annotation of every Event, so
    /// that a central view (Policy Reporter, an event router) tells clusters apart. Use the
    /// `cluster` external label of this cluster's Prometheus (docs/many-clusters.md). Empty:
    /// none, and reports and Events stay as they are.
    #[arg(long, env = "PRODREADY_CLUSTER_NAME", default_value = "", value_name = "NAME",
          value_parser = |s: &str| crate::cluster_name::parse(s))]
    pub cluster_name: String,

    /// The admission webhook's flags (`--webhook-*`, `--tls-*`).
    #[command(flatten)]
    pub webhook: crate::admission::WebhookArgs,
}

/// The `--initial-list` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InitialListArg {
    /// Streaming lists when the API server supports them (probed at start), else pages.
    Auto,
    /// Streaming lists (`sendInitialEvents`); the API server must support them.
    Stream,
    /// Paged LISTs, then a watch.
    Pages,
}

impl InitialListArg {
    /// The fixed choice, or `None` for `auto`.
    pub fn fixed(self) -> Option<controller::InitialList> {
        match self {
            InitialListArg::Auto => None,
            InitialListArg::Stream => Some(controller::InitialList::Stream),
            InitialListArg::Pages => Some(controller::InitialList::Pages),
        }
    }
}

/// The `--reports` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportsArg {
    /// openreports.io/v1alpha1 `Report`.
    Openreports,
    /// wgpolicyk8s.io/v1alpha2 `PolicyReport`.
    Policyreport,
    /// No reports.
    None,
}

impl ReportsArg {
    /// The report API, unless `none`.
    pub fn api(self) -> Option<crate::reports::ReportApi> {
        match self {
            ReportsArg::Openreports => Some(crate::reports::ReportApi::OpenReports),
            ReportsArg::Policyreport => Some(crate::reports::ReportApi::PolicyReport),
            ReportsArg::None => None,
        }
    }
}

/// Why the operator stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Logging could not be set up.
    #[error(transparent)]
    Telemetry(#[from] telemetry::TelemetryError),
    /// No usable kubeconfig or in-cluster configuration (the message names the file, the
    /// context and the flag).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The admin address cannot be bound.
    #[error(
        "the admin server cannot listen on {addr}: {source}; choose another address with --admin-addr (or PRODREADY_ADMIN_ADDR)"
    )]
    Listen {
        /// The `--admin-addr` that could not be bound.
        addr: SocketAddr,
        /// What the operating system said (in use, permission denied …).
        #[source]
        source: std::io::Error,
    },
    /// A task that must run for the whole process life ended.
    #[error(
        "the {task} task stopped unexpectedly: {detail}; prodready exits with code 1 so that it is restarted (the log lines before this one say more)"
    )]
    TaskEnded {
        /// Which task: `leader election`, `controller`, `admin server`, `admission webhook`.
        task: &'static str,
        /// Its error message, or how it ended without one (never a Debug dump).
        detail: String,
    },
}

impl Categorized for RunError {
    fn category(&self) -> &'static str {
        match self {
            RunError::Telemetry(_) => "telemetry",
            RunError::Config(_) => "config",
            RunError::Listen { .. } => "listen",
            RunError::TaskEnded { .. } => "task_ended",
        }
    }
}

/// Why no Kubernetes client could be built. Every message names the kubeconfig (and
/// context) and the flag that chooses another.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--kubeconfig` (or `$KUBECONFIG`) names a file that cannot be read or parsed.
    #[error(
        "cannot read the kubeconfig {kubeconfig}: {}; point --kubeconfig (or PRODREADY_KUBECONFIG, or KUBECONFIG) at a kubeconfig file that exists",
        describe_kubeconfig(source)
    )]
    Read {
        /// The file given, as messages name it.
        kubeconfig: String,
        /// What kube said.
        #[source]
        source: KubeconfigError,
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
    /// The kubeconfig was read but names no usable context, cluster or credentials.
    #[error(
        "the kubeconfig {kubeconfig} cannot be used with {}: {}; fix that entry, or choose another with --context or --kubeconfig",
        context.as_deref().map_or_else(|| "its current context".to_owned(), |c| format!("context \"{c}\"")),
        describe_kubeconfig(source)
    )]
    Kubeconfig {
        /// The file(s) read.
        kubeconfig: String,
        /// `--context`, if given.
        context: Option<String>,
        /// What kube said.
        #[source]
        source: KubeconfigError,
    },
    /// Neither $KUBECONFIG, ~/.kube/config nor an in-cluster service account is usable.
    #[error(
        "found no usable kubeconfig ({}: {}) and no in-cluster service account; give --kubeconfig FILE (or set KUBECONFIG), or run prodready in a pod with a service account",
        default_kubeconfig(),
        infer_reason(.0)
    )]
    Infer(#[source] kube::config::InferConfigError),
    /// The configuration is complete but the client cannot be built from it (TLS, proxy).
    #[error(
        "the Kubernetes client cannot be built from the kubeconfig {kubeconfig}: {source}; check its cluster's certificate authority and proxy settings, or choose another with --context or --kubeconfig"
    )]
    Client {
        /// The file(s) read, or `the in-cluster service account`.
        kubeconfig: String,
        /// What kube said.
        #[source]
        source: kube::Error,
    },
}

/// Why the default kubeconfig could not be used (kube keeps it as the source of its
/// inference error; its own message quotes paths with Debug).
fn infer_reason(e: &kube::config::InferConfigError) -> String {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<KubeconfigError>())
        .map_or_else(|| e.to_string(), describe_kubeconfig)
}

/// Builds the client from the flags.
pub async fn client(args: &RunArgs) -> Result<Client, RunError> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let (read, kubeconfig) = match &args.kubeconfig {
        Some(path) => {
            let name = path.display().to_string();
            let kc = Kubeconfig::read_from(path).map_err(|source| ConfigError::Read {
                kubeconfig: name.clone(),
                source,
            })?;
            (Some(kc), name)
        }
        None if args.context.is_some() => {
            let kc = Kubeconfig::read().map_err(|source| ConfigError::Read {
                kubeconfig: default_kubeconfig(),
                source,
            })?;
            (Some(kc), default_kubeconfig())
        }
        None => (None, "the inferred configuration".to_owned()),
    };
    let config = match read {
        Some(kc) => {
            if let Some(context) = &args.context
                && !has_context(&kc, context)
            {
                return Err(ConfigError::NoContext {
                    available: context_names(&kc),
                    kubeconfig,
                    context: context.clone(),
                }
                .into());
            }
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|source| ConfigError::Kubeconfig {
                    kubeconfig: kubeconfig.clone(),
                    context: args.context.clone(),
                    source,
                })?
        }
        None => kube::Config::infer().await.map_err(ConfigError::Infer)?,
    };
    Ok(Client::try_from(config).map_err(|source| ConfigError::Client { kubeconfig, source })?)
}

fn identity(args: &RunArgs) -> String {
    args.identity
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| format!("prodready-{}", std::process::id()))
}

/// How often freed memory is handed back to the system.
const TRIM_EVERY: Duration = Duration::from_secs(2);

/// Hands the memory the allocator holds but no longer uses back to the system every `every`
/// ([`crate::memory::release_free_memory`]): the first LIST's pages, rounds, the Event
/// publisher, watch events and reviews all allocate and free, and without it glibc keeps the
/// busiest moment's pages resident (20 MiB of a 73 MiB RSS at 12,000 workloads, read 5 s
/// after convergence, bench/RESULTS.md section 6). A trim walks the allocator's free lists
/// (a few milliseconds at most), so it runs off the runtime's workers; glibc's own counters
/// cannot tell whether there is anything left to release, so it simply runs on a timer.
async fn keep_trimmed(every: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let started = std::time::Instant::now();
        if let Err(e) = tokio::task::spawn_blocking(crate::memory::release_free_memory).await {
            tracing::warn!(error = %e, "cannot hand freed memory back to the system");
        }
        tracing::trace!(
            took_ms = started.elapsed().as_millis(),
            "freed memory handed back"
        );
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn signalled() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = int.recv() => tracing::info!("SIGINT: shutting down"),
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the operator until SIGTERM or SIGINT.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        signalled().await;
        on_signal.cancel();
    });
    run_until(args, shutdown).await
}

/// The error for a task that ended by itself: what it returned, as its message (never a
/// Debug dump).
fn ended<E: std::fmt::Display>(
    task: &'static str,
    r: Result<Result<(), E>, tokio::task::JoinError>,
) -> RunError {
    RunError::TaskEnded {
        task,
        detail: match r {
            Ok(Ok(())) => "it returned without an error".to_owned(),
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("it panicked or was cancelled ({e})"),
        },
    }
}

/// Runs the operator until `shutdown` is cancelled.
pub async fn run_until(args: RunArgs, shutdown: CancellationToken) -> Result<(), RunError> {
    // The OTLP exporter's HTTP client is blocking: build it off the async workers.
    let (format, level) = (args.log_format, args.log_level.clone());
    let telemetry = tokio::task::spawn_blocking(move || telemetry::init(format, &level))
        .await
        .map_err(|e| RunError::TaskEnded {
            task: "telemetry set-up",
            detail: e.to_string(),
        })??;
    let client = client(&args).await?;
    let identity = identity(&args);

    let mut registry = Registry::default();
    let deps = DependencyMetrics::register(&mut registry);
    let calls = ApiCalls::with_policy(
        deps.clone(),
        RetryPolicy {
            timeout: args.api_timeout,
            ..RetryPolicy::default()
        },
    );
    let probe_calls = ApiCalls::with_policy(
        deps,
        RetryPolicy {
            timeout: args.api_timeout.min(Duration::from_secs(5)),
            attempts: 1,
            ..RetryPolicy::default()
        },
    );
    let http = HttpMetrics::register(&mut registry);
    let controller_metrics = ControllerMetrics::register(&mut registry);
    let cluster_name = (!args.cluster_name.is_empty()).then(|| args.cluster_name.clone());
    // Leaked once per process: every report the ledger builds carries it, and `ReportOptions`
    // stays `Copy`.
    let report_cluster: Option<&'static str> = cluster_name
        .clone()
        .map(|name| &*Box::leak(name.into_boxed_str()));
    let report_sink = args.reports.api().map(|api| {
        Arc::new(controller::reports::ReportSink::new(
            crate::reports::ReportOptions {
                api,
                include_passes: args.reports_include_passes,
                cluster: report_cluster,
            },
            controller::reports::ReportMetrics::register(&mut registry),
        ))
    });
    let leader_metrics = LeaderMetrics::register(&mut registry);
    let snapshot = SharedSnapshot::default();
    // The admission webhook reads `snapshot` (published by the controller), serves on every
    // replica and stops on `shutdown`.
    let webhook_metrics = crate::admission::WebhookMetrics {
        admission: crate::admission::AdmissionMetrics::register(&mut registry),
        http: http.clone(),
    };
    let webhook_calls = calls.clone();

    let stores = Arc::new(Stores::default());
    let trigger = Arc::new(Notify::new());
    let mut background = JoinSet::new();
    let lists =
        controller::initial_list::choose(args.initial_list.fixed(), &client, &probe_calls).await;
    controller::spawn_watches(
        &client,
        lists,
        &stores,
        &trigger,
        &shutdown,
        &mut background,
    );
    background.spawn(controller::discover_monitors(
        client.clone(),
        lists,
        probe_calls.clone(),
        Arc::clone(&stores),
        Arc::clone(&trigger),
        args.discovery_interval,
        shutdown.clone(),
    ));
    if let Some(sink) = &report_sink {
        background.spawn(controller::reports::discover(
            client.clone(),
            lists,
            probe_calls.clone(),
            Arc::clone(sink),
            Arc::clone(&trigger),
            args.discovery_interval,
            shutdown.clone(),
        ));
    }
    background.spawn(keep_trimmed(TRIM_EVERY, shutdown.clone()));
    let health = Health::new(Arc::clone(&stores));
    health.register(&mut registry);
    let registry = Arc::new(registry);
    background.spawn(admin::probe_api(
        client.clone(),
        probe_calls,
        Arc::clone(&health),
        // 0.25 requests/s; readiness wants an answer within `API_FRESHNESS` (10 s), so two
        // probes may fail before it drops.
        Duration::from_secs(4),
        shutdown.clone(),
    ));

    let listener = tokio::net::TcpListener::bind(args.admin_addr)
        .await
        .map_err(|source| RunError::Listen {
            addr: args.admin_addr,
            source,
        })?;
    let admin_addr = listener.local_addr().unwrap_or(args.admin_addr);
    let lease_namespace = flags::namespace_from_env(args.lease_namespace.as_deref());
    tracing::info!(%admin_addr, %identity, lease = %args.lease_name, lease_namespace = %lease_namespace, version = env!("CARGO_PKG_VERSION"), otlp_export = telemetry.exporting(), "prodready started");

    let owner = args.owner_deployment.as_deref().map(|name| {
        Arc::new(Owner::deployment(
            client.clone(),
            calls.clone(),
            name,
            &flags::namespace_from_env(None),
        ))
    });
    let leadership = Leadership::default();
    // The lease outlives the controller: it is released only once writing has stopped.
    let lease_shutdown = CancellationToken::new();
    let mut leader_task = tokio::spawn(leader::run(
        client.clone(),
        calls.clone(),
        LeaderConfig {
            name: args.lease_name.clone(),
            namespace: lease_namespace,
            identity: identity.clone(),
            lease_duration: args.lease_duration,
            retry_period: args.lease_retry_period,
            owner: owner.clone(),
        },
        leadership.clone(),
        leader_metrics,
        Arc::clone(&trigger),
        lease_shutdown.clone(),
    ));
    let controller = Controller::new(
        client.clone(),
        calls,
        Arc::clone(&stores),
        snapshot.clone(),
        leadership,
        controller_metrics,
        Arc::clone(&trigger),
        ControllerConfig {
            debounce: args.debounce,
            resync: args.resync_interval,
            max_violations: args.max_violations,
            max_events: args.max_events_per_second,
            identity,
            cluster_name,
            reports: report_sink,
        },
    );
    let heap = controller.heap_probe();
    let mut controller_task = tokio::spawn(controller.run(shutdown.clone()));
    let mut admin_task = tokio::spawn(admin::serve(
        listener,
        admin::router(health, registry, http).merge(controller::heap::router(heap)),
        shutdown.clone(),
    ));
    let mut webhook_task = tokio::spawn(crate::admission::serve(
        args.webhook.clone(),
        crate::admission::WebhookApi {
            client: client.clone(),
            calls: webhook_calls,
            owner,
        },
        snapshot.clone(),
        webhook_metrics,
        shutdown.clone(),
    ));

    let (mut controller_done, mut leader_done, mut admin_done) = (false, false, false);
    let mut webhook_done = false;
    // A task that ends because shutdown began is not a failure.
    let result = tokio::select! {
        biased;
        () = shutdown.cancelled() => Ok(()),
        r = &mut leader_task => { leader_done = true; Err(ended("leader election", r)) }
        r = &mut controller_task => { controller_done = true; Err(ended("controller", r.map(Ok::<(), std::convert::Infallible>))) }
        r = &mut admin_task => { admin_done = true; Err(ended("admin server", r)) }
        r = &mut webhook_task => { webhook_done = true; Err(ended("admission webhook", r)) }
    };
    let result = if shutdown.is_cancelled() && !leader_done {
        Ok(())
    } else {
        result
    };
    if let Err(e) = &result {
        tracing::error!(error = %e, category = e.category(), "shutting down");
    }
    shutdown.cancel();
    let grace = Duration::from_secs(3);
    if !controller_done {
        let _ = tokio::time::timeout(grace, &mut controller_task).await;
    }
    lease_shutdown.cancel();
    if !leader_done {
        let _ = tokio::time::timeout(grace, &mut leader_task).await;
    }
    if !admin_done {
        let _ = tokio::time::timeout(grace, &mut admin_task).await;
    }
    if !webhook_done {
        let _ = tokio::time::timeout(grace, &mut webhook_task).await;
    }
    background.abort_all();
    tracing::info!("prodready stopped");
    if telemetry.exporting() {
        let flush = tokio::task::spawn_blocking(move || telemetry.shutdown());
        let _ = tokio::time::timeout(grace, flush).await;
    }
    result
}

impl Categorized for ConfigError {
    fn category(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "kubeconfig_read",
            ConfigError::NoContext { .. } | ConfigError::Kubeconfig { .. } => "kubeconfig",
            ConfigError::Infer(_) => "no_config",
            ConfigError::Client { .. } => "client",
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::{Cli, Command};

    fn cluster_name(argv: &[&str]) -> Result<String, String> {
        let argv = ["prodready", "run"].iter().chain(argv).copied();
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Run(args),
            }) => Ok(args.cluster_name),
            Ok(_) => Err("not run".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn the_cluster_name_is_empty_by_default_and_must_be_a_label_value() {
        assert_eq!(cluster_name(&[]).as_deref(), Ok(""));
        assert_eq!(
            cluster_name(&["--cluster-name", "eu-west-1"]).as_deref(),
            Ok("eu-west-1")
        );
        let e = cluster_name(&["--cluster-name", "arn:aws:eks:x/prod"])
            .err()
            .unwrap_or_default();
        assert!(
            e.contains(
                "'--cluster-name <NAME>': \"arn:aws:eks:x/prod\" is not a valid label value"
            ),
            "{e}"
        );
    }
}
