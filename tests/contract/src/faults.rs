//! Faults a stand-in meets instead of answering (or before it), scripted by a test.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use axum::response::Response;

/// What the next request meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `502 Bad Gateway`.
    ServerError,
    /// The provider's primary rate limit (GitHub: `403` with `x-ratelimit-remaining: 0`;
    /// GitLab: `429`).
    RateLimited,
    /// A rate limit that says when to come back (`429` with `retry-after: 1`).
    SecondaryRateLimited,
    /// The answer comes after this long.
    Slow(Duration),
}

/// Faults waiting for the next requests, one each, in order.
#[derive(Default)]
pub struct Faults(Mutex<VecDeque<Fault>>);

impl Faults {
    pub fn push(&self, faults: impl IntoIterator<Item = Fault>) {
        self.0.lock().unwrap().extend(faults);
    }

    /// The provider's answer to the next fault (as `answer` words it), or `None` to go on,
    /// after a delay for `Slow`.
    pub async fn meet(&self, answer: impl Fn(Fault) -> Response) -> Option<Response> {
        let next = self.0.lock().unwrap().pop_front();
        match next? {
            Fault::Slow(delay) => {
                tokio::time::sleep(delay).await;
                None
            }
            fault => Some(answer(fault)),
        }
    }
}
