//! What the flags of `prodready run` and of its webhook share: the duration syntax and the
//! namespace a flag falls back to. A low module, so the operator shell and the webhook read
//! their flags the same way without importing each other.

use crate::error::Categorized;
use std::time::Duration;

/// The namespace used when neither a flag nor `$POD_NAMESPACE` names one.
pub const DEFAULT_NAMESPACE: &str = "prodready-system";

/// A flag value that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The number part does not parse.
    #[error("`{0}` is not a duration like 500ms, 10s, 5m or 1h")]
    Syntax(String),
    /// The unit is not one of ms, s, m, h.
    #[error("`{0}` has an unknown unit; use ms, s, m or h")]
    Unit(String),
    /// Negative, or too large to represent.
    #[error("`{0}` is out of range for a duration")]
    Range(String),
}

/// Parses `500ms`, `10s`, `5m`, `1h` (or plain seconds).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num
        .parse()
        .map_err(|_| DurationError::Syntax(s.to_owned()))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(DurationError::Unit(s.to_owned())),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| DurationError::Range(s.to_owned()))
}

/// A duration as a person writes it in a flag: `500ms`, `10s`, `5m`, `1h`, `1.5s` (what
/// [`parse_duration`] reads back), for messages; never Debug's `10.000000001s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms.is_multiple_of(3_600_000) {
        return format!("{}h", ms / 3_600_000);
    }
    if ms.is_multiple_of(60_000) {
        return format!("{}m", ms / 60_000);
    }
    if ms.is_multiple_of(1000) {
        return format!("{}s", ms / 1000);
    }
    let tenths = (ms + 50) / 100;
    format!("{}.{}s", tenths / 10, tenths % 10)
}

/// The namespace a namespace flag resolves to: the flag, else `pod_namespace` (the
/// downward-API `$POD_NAMESPACE`, ignored when empty), else [`DEFAULT_NAMESPACE`].
pub fn namespace_or_default(flag: Option<&str>, pod_namespace: Option<String>) -> String {
    flag.map(str::to_owned)
        .or_else(|| pod_namespace.filter(|s| !s.is_empty()))
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
}

/// [`namespace_or_default`] with this process's `$POD_NAMESPACE`.
pub fn namespace_from_env(flag: Option<&str>) -> String {
    namespace_or_default(flag, std::env::var("POD_NAMESPACE").ok())
}

impl Categorized for DurationError {
    fn category(&self) -> &'static str {
        match self {
            DurationError::Syntax(_) => "syntax",
            DurationError::Unit(_) => "unit",
            DurationError::Range(_) => "range",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_as_flags_take_them() {
        for (d, text) in [
            (Duration::from_millis(250), "250ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(12_345), "12.3s"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(2160 * 3600), "2160h"),
        ] {
            assert_eq!(format_duration(d), text);
        }
        // What is written reads back (to the millisecond, for whole tenths).
        for text in ["500ms", "10s", "5m", "1h", "1.5s"] {
            let d = parse_duration(text).unwrap_or_default();
            assert_eq!(format_duration(d), text);
        }
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(
            parse_duration("5 parsecs"),
            Err(DurationError::Unit("5 parsecs".into()))
        );
        assert_eq!(
            parse_duration(""),
            Err(DurationError::Syntax(String::new()))
        );
    }

    #[test]
    fn namespace_prefers_the_flag_then_the_pod_namespace() {
        assert_eq!(namespace_or_default(Some("ops"), Some("pod".into())), "ops");
        assert_eq!(namespace_or_default(None, Some("pod".into())), "pod");
        assert_eq!(
            namespace_or_default(None, Some(String::new())),
            DEFAULT_NAMESPACE
        );
        assert_eq!(namespace_or_default(None, None), DEFAULT_NAMESPACE);
    }
}
