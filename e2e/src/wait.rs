//! Polling with a deadline instead of sleeping in assertions.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;

/// Polls `probe` until it returns `Ok(value)` or `timeout` passes.
///
/// `Err(reason)` means "not yet"; the last reason is reported in the [`Error::Timeout`], so make
/// it say what was observed. Each probe is itself cut off at the deadline. Polling starts at
/// 50 ms and backs off to 500 ms.
///
/// ```no_run
/// # async fn example(api: kube::Api<k8s_openapi::api::core::v1::ConfigMap>) -> Result<(), e2e::Error> {
/// use std::time::Duration;
/// let cm = e2e::wait_for(Duration::from_secs(10), "configmap x", || async {
///     api.get_opt("x").await.map_err(|e| e.to_string())?.ok_or("not found yet")
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn wait_for<T, E, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(50);
    let mut last = String::from("no probe finished");
    loop {
        match tokio::time::timeout_at(deadline, probe()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(reason)) => last = reason.to_string(),
            Err(_) => last = format!("probe still running at the deadline (before: {last})"),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout {
                what: what.to_string(),
                after: timeout,
                last,
            });
        }
        tokio::time::sleep_until((now + interval).min(deadline)).await;
        interval = (interval * 2).min(Duration::from_millis(500));
    }
}
