//! Polling with a deadline instead of sleeping in assertions.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;

/// One observation of a polled condition (harness-internal; [`wait_for`] has no `Fatal`).
pub(crate) enum Probe<T> {
    Ready(T),
    NotYet(String),
    /// Waiting longer cannot help (e.g. the process exited): stop at once.
    Fatal(String),
}

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
///     match api.get_opt("x").await {
///         Ok(Some(cm)) => Ok(cm),
///         Ok(None) => Err("not found yet".to_string()),
///         Err(e) => Err(e.to_string()),
///     }
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
    poll_until(timeout, what, || {
        let fut = probe();
        async move {
            match fut.await {
                Ok(value) => Probe::Ready(value),
                Err(reason) => Probe::NotYet(reason.to_string()),
            }
        }
    })
    .await
}

/// [`wait_for`] with a way out: `Probe::Fatal` ends the wait with that reason.
pub(crate) async fn poll_until<T, F, Fut>(
    timeout: Duration,
    what: &str,
    mut probe: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Probe<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(50);
    let mut last = String::from("no probe finished");
    loop {
        match tokio::time::timeout_at(deadline, probe()).await {
            Ok(Probe::Ready(value)) => return Ok(value),
            Ok(Probe::NotYet(reason)) => last = reason,
            Ok(Probe::Fatal(reason)) => {
                return Err(Error::GaveUp {
                    what: what.to_string(),
                    reason,
                });
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_ready_value() {
        let mut calls = 0;
        let value = wait_for(Duration::from_secs(5), "third call", || {
            calls += 1;
            let n = calls;
            async move {
                if n >= 3 {
                    Ok(n)
                } else {
                    Err(format!("call {n}"))
                }
            }
        })
        .await
        .expect("ready on the third call");
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn times_out_with_the_last_observation() {
        let err = wait_for(Duration::from_millis(200), "never", || async {
            Err::<(), _>("still pending")
        })
        .await
        .unwrap_err();
        assert!(
            matches!(&err, Error::Timeout { last, .. } if last == "still pending"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn fatal_ends_the_wait_early() {
        let started = Instant::now();
        let err = poll_until(Duration::from_secs(30), "doomed", || async {
            Probe::<()>::Fatal("exited".into())
        })
        .await
        .unwrap_err();
        assert!(
            matches!(&err, Error::GaveUp { reason, .. } if reason == "exited"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
