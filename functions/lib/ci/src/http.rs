//! Sending a request with bounded retries: 5xx answers and timeouts are tried again after a
//! short wait; a rate limit is waited out in process when its reset is near, and handed back
//! with its reset time when it is not; any other refusal is final and says what the
//! provider said.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use gantry_domain::{DomainError, Result};
use reqwest::{Request, RequestBuilder, Response, StatusCode};
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

/// What an answer says of waiting: `None` when it is final; `Some(None)` when it may work a
/// moment later (a 5xx); `Some(Some(wait))` when the provider said how long to wait.
///
/// As GitHub documents rate limits: after a `403` or `429` with `x-ratelimit-remaining: 0`,
/// nothing is sent before `x-ratelimit-reset` (epoch seconds); a `retry-after` (a secondary
/// limit) is waited out; a `429` that says neither waits a minute. GitLab's `ratelimit-reset`
/// is read the same way.
fn transient(response: &Response, now: DateTime<Utc>) -> Option<Option<Duration>> {
    let header = |name: &str| -> Option<i64> {
        response.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
    };
    let retry_after = header("retry-after").map(|s| s.clamp(0, i64::from(u32::MAX)));
    let exhausted = header("x-ratelimit-remaining").or_else(|| header("ratelimit-remaining")) == Some(0);
    let reset = header("x-ratelimit-reset").or_else(|| header("ratelimit-reset")).map(|epoch| {
        // Checked: a reset that is no time at all waits a minute.
        epoch.checked_sub(now.timestamp()).and_then(|s| s.checked_add(1)).unwrap_or(60).clamp(0, i64::from(u32::MAX))
    });
    let wait = |seconds: i64| Some(Some(Duration::from_secs(u64::try_from(seconds).unwrap_or(0))));
    match response.status() {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::FORBIDDEN if retry_after.is_some() => wait(retry_after?),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::FORBIDDEN if exhausted && reset.is_some() => wait(reset?),
        StatusCode::TOO_MANY_REQUESTS => wait(60),
        StatusCode::FORBIDDEN if exhausted => wait(60),
        s if s.is_server_error() => Some(None),
        _ => None,
    }
}

/// Until when a provider (its host and credentials) asked not to be called, for every
/// request from this process; deliveries elsewhere learn it from their own first refusal.
static PAUSES: LazyLock<Mutex<HashMap<u64, DateTime<Utc>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// Who a request speaks to, and as whom: its host and port and a hash of its credentials.
fn caller(request: &Request) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    request.url().host_str().hash(&mut hasher);
    request.url().port_or_known_default().hash(&mut hasher);
    request.headers().get(reqwest::header::AUTHORIZATION).map(|v| v.as_bytes()).hash(&mut hasher);
    request.headers().get("private-token").map(|v| v.as_bytes()).hash(&mut hasher);
    hasher.finish()
}

fn paused_until(key: u64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut pauses = PAUSES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    pauses.retain(|_, until| *until > now);
    pauses.get(&key).copied()
}

fn pause(key: u64, until: DateTime<Utc>) {
    let mut pauses = PAUSES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let at = pauses.entry(key).or_insert(until);
    *at = (*at).max(until);
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

/// As [`send`], with the answer's headers. A rate limit whose reset is further away than
/// the longest in-process wait ends the call at once with [`DomainError::Unavailable`] and
/// its `retry_at`, so the caller waits through its queue.
pub(crate) async fn send_for_headers(
    retries: Retries,
    provider: &str,
    what: &str,
    build: impl Fn() -> RequestBuilder,
) -> Result<(reqwest::header::HeaderMap, Value)> {
    let mut last = String::new();
    for attempt in 0..retries.attempts.max(1) {
        let (client, request) = build().timeout(retries.timeout).build_split();
        let request = request.map_err(|e| DomainError::internal(format!("{provider} {what}: {e}")))?;
        let key = caller(&request);
        if let Some(until) = paused_until(key, Utc::now()) {
            return Err(DomainError::unavailable_until(format!("{provider} rate limit: not before {until}"), until));
        }
        let wait = match gantry_telemetry::execute(&client, request).await {
            Ok(response) if response.status().is_success() => {
                let headers = response.headers().clone();
                let bytes = response.bytes().await.map_err(|e| DomainError::unavailable(format!("{provider}: {e}")))?;
                return Ok((headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null)));
            }
            Ok(response) => match transient(&response, Utc::now()) {
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
        if let Some(wait) = wait
            && (wait > retries.max_wait || attempt + 1 >= retries.attempts)
        {
            let until = Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
            pause(key, until);
            tracing::warn!(provider, what, retry_at = %until, "rate limited: not calling again before the reset");
            return Err(DomainError::unavailable_until(format!("{what} was rate limited: {last}"), until));
        }
        if attempt + 1 < retries.attempts {
            let backoff = Duration::from_millis(200 << attempt.min(5));
            tokio::time::sleep(wait.unwrap_or(backoff.min(retries.max_wait))).await;
        }
    }
    tracing::warn!(provider, what, error = %last, "giving up for now");
    Err(DomainError::unavailable(format!("{what} did not go through: {last}")))
}
