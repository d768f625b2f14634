//! Sending a request with bounded retries: 5xx answers, rate limits and timeouts are tried
//! again after a wait (the provider's `retry-after` when it gives one, within a cap); any
//! other refusal is final and says what the provider said.

use std::time::Duration;

use gantry_domain::{DomainError, Result};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;

/// How many times a call is made, how long each may take, and the longest wait between.
#[derive(Debug, Clone, Copy)]
pub struct Retries {
    pub attempts: u32,
    pub timeout: Duration,
    pub max_wait: Duration,
}

impl Default for Retries {
    fn default() -> Self {
        Self { attempts: 3, timeout: Duration::from_secs(10), max_wait: Duration::from_secs(5) }
    }
}

/// A refusal that waiting may cure, and how long to wait; `None` when it is final.
fn transient(response: &Response) -> Option<Option<Duration>> {
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let retry_after: Option<u64> = header("retry-after");
    match response.status() {
        StatusCode::TOO_MANY_REQUESTS => Some(retry_after.map(Duration::from_secs)),
        StatusCode::FORBIDDEN if header("x-ratelimit-remaining") == Some(0u64) => {
            Some(retry_after.map(Duration::from_secs))
        }
        s if s.is_server_error() => Some(None),
        _ => None,
    }
}

/// What a final refusal means, with the provider's message (bounded).
async fn refused(provider: &str, what: &str, response: Response) -> DomainError {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let message: String = body["message"].as_str().unwrap_or("no message").chars().take(200).collect();
    let text = format!("{provider} refused {what} ({status}): {message}");
    match status {
        StatusCode::UNAUTHORIZED => DomainError::Unauthorized(text),
        StatusCode::FORBIDDEN => DomainError::Forbidden(text),
        _ => DomainError::validation(text),
    }
}

/// Sends the request `build` makes, retrying what may work later; the answer's JSON body
/// (`Null` when empty).
pub(crate) async fn send(
    retries: Retries,
    provider: &str,
    what: &str,
    build: impl Fn() -> RequestBuilder,
) -> Result<Value> {
    send_for_headers(retries, provider, what, build).await.map(|(_, body)| body)
}

/// As [`send`], with the answer's headers.
pub(crate) async fn send_for_headers(
    retries: Retries,
    provider: &str,
    what: &str,
    build: impl Fn() -> RequestBuilder,
) -> Result<(reqwest::header::HeaderMap, Value)> {
    let mut last = String::new();
    for attempt in 0..retries.attempts.max(1) {
        let wait = match build().timeout(retries.timeout).send().await {
            Ok(response) if response.status().is_success() => {
                let headers = response.headers().clone();
                let bytes = response.bytes().await.map_err(|e| DomainError::unavailable(format!("{provider}: {e}")))?;
                return Ok((headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null)));
            }
            Ok(response) => match transient(&response) {
                Some(wait) => {
                    last = format!("{} answered {}", provider, response.status());
                    wait
                }
                None => return Err(refused(provider, what, response).await),
            },
            Err(err) if err.is_timeout() || err.is_connect() || err.is_request() => {
                last = format!("{provider} did not answer: {err}");
                None
            }
            Err(err) => return Err(DomainError::internal(format!("{provider} {what}: {err}"))),
        };
        if attempt + 1 < retries.attempts {
            let backoff = Duration::from_millis(200 << attempt.min(5));
            tokio::time::sleep(wait.unwrap_or(backoff).min(retries.max_wait)).await;
        }
    }
    tracing::warn!(provider, what, error = %last, "giving up for now");
    Err(DomainError::unavailable(format!("{what} did not go through: {last}")))
}
