//! What every error enum of the crate shares: a stable, bounded category for metric labels
//! and log fields (`category="timeout"`, `"404"`, `"listen"` …). Messages are for people;
//! categories are for dashboards and alerts, and never change with the message.

/// An error with a stable category.
pub trait Categorized {
    /// A short, bounded label: never a message, never an object name.
    fn category(&self) -> &'static str;
}
