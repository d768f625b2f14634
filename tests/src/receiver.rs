//! A webhook receiver for notification tests: it checks each delivery's Standard Webhooks
//! signature with its own code, keeps what it received, and fails or stalls on demand.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub body: Value,
    /// Whether `webhook-signature` holds a `v1` signature made with the receiver's secret.
    pub verified: bool,
}

#[derive(Default)]
struct State {
    secret: Option<String>,
    failures: u32,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct WebhookReceiver {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl WebhookReceiver {
    /// Listens on a random loopback port until the test ends.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let state = shared.clone();
            async move { receive(&state, &headers, &body) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/gantry", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, state }
    }

    /// The `whsec_` secret deliveries are checked with.
    pub fn set_secret(&self, secret: &str) {
        self.state.lock().unwrap().secret = Some(secret.to_owned());
    }

    /// Answers the next `n` deliveries 503.
    pub fn fail_next(&self, n: u32) {
        self.state.lock().unwrap().failures = n;
    }

    /// Every delivery, the failed ones included, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

fn receive(state: &Mutex<State>, headers: &HeaderMap, body: &[u8]) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    let mut s = state.lock().unwrap();
    let verified = s.secret.as_deref().is_some_and(|secret| {
        let b64 = base64::engine::general_purpose::STANDARD;
        let key = b64.decode(secret.trim_start_matches("whsec_")).unwrap_or_default();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
        header("webhook-signature").split(' ').any(|candidate| candidate == expected)
    });
    let body = serde_json::from_slice(body).unwrap_or(Value::Null);
    s.received.push(Received { id, timestamp, body, verified });
    if s.failures > 0 {
        s.failures -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::NO_CONTENT
}
