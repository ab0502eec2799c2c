//! Logging for `prodready run`: JSON lines (timestamp, level, message, target and the event's
//! fields — `policy`, `namespace`, `workload`, `rule` — at the top level) or human text, with
//! an `EnvFilter` level. Lifecycle at INFO, retries at WARN, failures at ERROR.
//!
//! OpenTelemetry export is not built in yet; see `docs/operator.md`.

use tracing_subscriber::EnvFilter;

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
    #[error("invalid --log-level `{filter}`: {message}")]
    Filter {
        /// The filter as given.
        filter: String,
        /// Why it does not parse.
        message: String,
    },
}

/// Installs the global subscriber. A second call (tests running several operators in one
/// process) keeps the first subscriber.
pub fn init(format: LogFormat, level: &str) -> Result<(), TelemetryError> {
    let filter = EnvFilter::try_new(level).map_err(|e| TelemetryError::Filter {
        filter: level.to_owned(),
        message: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
    Ok(())
}
