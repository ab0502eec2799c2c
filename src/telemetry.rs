//! Logging and tracing for `prodready run`: JSON lines (timestamp, level, message, target and
//! the event's fields — `policy`, `namespace`, `workload`, `rule` — at the top level) or
//! human text, with an `EnvFilter` level. Lifecycle at INFO, retries at WARN, failures at ERROR.
//!
//! When `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, spans
//! (`evaluation_round`, `evaluate_policy`) are also exported with OTLP over HTTP/protobuf
//! (plain HTTP, e.g. `http://otel-collector:4318`), batched on a background thread. The
//! standard `OTEL_*` variables (service name, headers, timeouts) apply.

use crate::error::Categorized;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// A logging set-up failure.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The level filter does not parse.
    #[error(
        "invalid --log-level `{filter}`: {source}; give a level (error, warn, info, debug, trace) or directives like prodready=debug,kube=info"
    )]
    Filter {
        /// `--log-level` as given.
        filter: String,
        /// Why it does not parse.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// The OTLP exporter cannot be built from the `OTEL_*` settings.
    #[error(
        "cannot set up OpenTelemetry export: {0}; fix the OTEL_EXPORTER_OTLP_* environment variables, or unset OTEL_EXPORTER_OTLP_ENDPOINT to run without export"
    )]
    Otlp(#[source] opentelemetry_otlp::ExporterBuildError),
}

/// Keeps the trace exporter alive; [`Telemetry::shutdown`] flushes it.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes and stops the exporter (blocking: call off the async workers).
    pub fn shutdown(self) {
        if let Some(p) = self.provider
            && let Err(e) = p.shutdown()
        {
            tracing::warn!(error = %e, "cannot flush OpenTelemetry spans");
        }
    }
}

/// Whether the environment asks for OTLP export.
pub fn otlp_requested() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
}

fn otlp_provider() -> Result<SdkTracerProvider, TelemetryError> {
    // The endpoint, headers and timeout come from the standard OTEL_* variables.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(TelemetryError::Otlp)?;
    let service = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "prodready".to_owned());
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .build())
}

/// Installs the global subscriber. A second call (tests running several operators in one
/// process) keeps the first subscriber. Builds the OTLP exporter when asked to; it uses a
/// blocking HTTP client, so call this before the async runtime or from a blocking task.
pub fn init(format: LogFormat, level: &str) -> Result<Telemetry, TelemetryError> {
    let filter = EnvFilter::try_new(level).map_err(|source| TelemetryError::Filter {
        filter: level.to_owned(),
        source,
    })?;
    let provider = if otlp_requested() {
        Some(otlp_provider()?)
    } else {
        None
    };
    // Only prodready's own spans: the client libraries' debug spans would be noise.
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("prodready"))
            .with_filter(Targets::new().with_target("prodready", Level::INFO))
    });
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
        LogFormat::Text => fmt.with_ansi(false).boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init();
    Ok(Telemetry { provider })
}

impl Categorized for TelemetryError {
    fn category(&self) -> &'static str {
        match self {
            TelemetryError::Filter { .. } => "log_filter",
            TelemetryError::Otlp(_) => "otlp",
        }
    }
}
