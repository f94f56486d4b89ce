//! Retries of transient API failures, for the requests where repeating is safe.
//!
//! kube-rs's client already retries 429, 503 and 504 (honouring `Retry-After`) when it is built
//! from a configuration. What it leaves to us, and what this module retries:
//!
//! | failure | read (get, list, discovery) | server-side apply, idempotent patch, delete |
//! |---|---|---|
//! | 500, 502, 503, 504, 429 | yes | yes |
//! | 409 Conflict (not `AlreadyExists`) | — | apply and idempotent patches only |
//! | connection reset / refused, broken transport | yes | yes |
//!
//! Server-side apply is declarative (the same intent applied twice gives the same object), an
//! annotation merge patch sets the same keys again, and deleting twice ends in the same absence
//! (the second answer is a 404, which callers read as "gone"). A 409 on a forced apply is a race
//! with another writer inside the API server; applying again wins it. Writes that are not
//! idempotent (a create with `generateName`, a patch carrying a `resourceVersion`) are never
//! retried here: their callers re-read and recompute instead.
//!
//! Bounded: at most [`MAX_RETRIES`] retries, exponential back-off from [`FIRST_BACKOFF`] (with
//! jitter) capped at [`MAX_BACKOFF`], or the server's `retryAfterSeconds` when it sends one (at
//! most [`MAX_RETRY_AFTER`]; a longer request is not honoured and the error is returned).
//!
//! Generic Kubernetes access: knows nothing of Terraform or Flux, and depends on nothing else in
//! this crate but [`super::status`].

use std::future::Future;
use std::time::Duration;

use super::status::api_status;

/// How many times a failed request is repeated at most.
pub const MAX_RETRIES: u32 = 4;
/// The first pause.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest pause between attempts without a server hint.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// What kind of request is repeated, which decides what may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Safety {
    /// A read: get, list, discovery.
    Read,
    /// A write that gives the same result when repeated: server-side apply, a merge patch of
    /// fixed keys, a delete.
    Idempotent,
}

/// Whether `error` is transient for a request of `safety`, and how long the server asked to
/// wait (its `retryAfterSeconds`), if it did.
pub fn transient(error: &kube::Error, safety: Safety) -> Option<Option<Duration>> {
    match api_status(error) {
        Some(status) => {
            let retryable = match status.code {
                500 | 502 | 503 | 504 | 429 => true,
                409 => safety == Safety::Idempotent && status.reason != "AlreadyExists",
                _ => false,
            };
            retryable.then(|| {
                status
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|s| *s > 0)
                    .map(|s| Duration::from_secs(u64::from(s)))
            })
        }
        // The server never answered: the connection was refused, reset or broke.
        None => matches!(
            error,
            kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_)
        )
        .then_some(None),
    }
}

/// The pause before retry number `attempt` (1-based): exponential with ±25 % jitter, capped.
fn backoff(attempt: u32) -> Duration {
    let exponential = FIRST_BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let capped = exponential.min(MAX_BACKOFF);
    // Jitter from the clock's sub-second noise: enough to spread concurrent clients.
    let noise = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let factor = 0.75 + f64::from(noise % 1000) / 2000.0;
    capped.mul_f64(factor)
}

/// Runs `request` until it succeeds, fails permanently, or [`MAX_RETRIES`] retries were made;
/// `what` names the request in the log.
///
/// # Errors
///
/// The last error.
pub async fn retrying<T, F, Fut>(
    safety: Safety,
    what: &str,
    mut request: F,
) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 0;
    loop {
        let error = match request().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let Some(hint) = transient(&error, safety) else {
            return Err(error);
        };
        if attempt >= MAX_RETRIES || hint.is_some_and(|h| h > MAX_RETRY_AFTER) {
            tracing::debug!(
                what,
                attempts = attempt + 1,
                "giving up on a transient failure"
            );
            return Err(error);
        }
        attempt += 1;
        let pause = hint.unwrap_or_else(|| backoff(attempt));
        tracing::debug!(
            what,
            attempt,
            pause_ms = pause.as_millis() as u64,
            status = api_status(&error).map(|s| s.code).unwrap_or_default(),
            "retrying after a transient failure"
        );
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn api(code: u16, reason: &str, retry_after: i32) -> kube::Error {
        let mut status = Status::failure("boom", reason).with_code(code);
        if retry_after > 0 {
            status.details =
                serde_json::from_value(serde_json::json!({ "retryAfterSeconds": retry_after }))
                    .ok();
        }
        kube::Error::Api(status.boxed())
    }

    #[test]
    fn classification() {
        let cases = [
            (api(500, "InternalError", 0), Safety::Read, Some(None)),
            (api(409, "Conflict", 0), Safety::Read, None),
            (api(409, "Conflict", 0), Safety::Idempotent, Some(None)),
            (api(409, "AlreadyExists", 0), Safety::Idempotent, None),
            (
                api(429, "TooManyRequests", 3),
                Safety::Read,
                Some(Some(Duration::from_secs(3))),
            ),
            (api(422, "Invalid", 0), Safety::Idempotent, None),
            (api(404, "NotFound", 0), Safety::Read, None),
            (api(403, "Forbidden", 0), Safety::Read, None),
        ];
        for (error, safety, want) in cases {
            assert_eq!(transient(&error, safety), want, "{error} {safety:?}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..=8 {
            let pause = backoff(attempt);
            let base = FIRST_BACKOFF
                .saturating_mul(1 << (attempt - 1))
                .min(MAX_BACKOFF);
            assert!(
                pause >= base.mul_f64(0.75) && pause <= base.mul_f64(1.25),
                "{attempt}: {pause:?}"
            );
        }
    }

    #[tokio::test]
    async fn retries_are_bounded_and_honour_retry_after() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result: Result<(), _> = retrying(Safety::Read, "test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(api(500, "InternalError", 0))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), MAX_RETRIES + 1);
        // 0.2 + 0.4 + 0.8 + 1.6 s, ±25 %.
        let elapsed = started.elapsed();
        assert!(
            elapsed > Duration::from_millis(2200) && elapsed < Duration::from_secs(5),
            "{elapsed:?}"
        );

        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result = retrying(Safety::Idempotent, "test", || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(api(429, "TooManyRequests", 1)),
                1 => Err(api(409, "Conflict", 0)),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(result.ok(), Some(7));
        assert!(started.elapsed() >= Duration::from_secs(1));

        // A permanent error is returned at once; a Retry-After beyond the cap is not waited for.
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retrying(Safety::Idempotent, "test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(api(422, "Invalid", 0))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retrying(Safety::Read, "test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(api(503, "ServiceUnavailable", 600))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
