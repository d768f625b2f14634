//! What analysis probes measure in tests: an HTTP service whose answers a test scripts, and a
//! Prometheus stand-in (`/api/v1/query`, instant queries) whose samples a test scripts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// One scripted answer of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub delay: Duration,
}

/// A service at `url/health` answering `ok` with the scripted statuses and delays, then 200.
#[derive(Clone)]
pub struct Service {
    pub url: String,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

impl Service {
    pub async fn start() -> Self {
        let script: Arc<Mutex<VecDeque<Answer>>> = Arc::default();
        let shared = script.clone();
        let app = Router::new().route(
            "/health",
            get(move || {
                let next = shared.lock().unwrap().pop_front();
                async move {
                    let answer = next.unwrap_or(Answer { status: 200, delay: Duration::ZERO });
                    tokio::time::sleep(answer.delay).await;
                    (StatusCode::from_u16(answer.status).unwrap(), "ok")
                }
            }),
        );
        Self { url: format!("{}/health", serve(app).await), script }
    }

    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().unwrap().extend(answers);
    }
}

/// A Prometheus stand-in: each instant query answers the next scripted sample as a
/// one-series vector (then the last one again); an empty query is refused as Prometheus
/// refuses it.
#[derive(Clone)]
pub struct FakePrometheus {
    pub url: String,
    samples: Arc<Mutex<VecDeque<f64>>>,
    queries: Arc<Mutex<Vec<String>>>,
}

impl FakePrometheus {
    pub async fn start() -> Self {
        let samples: Arc<Mutex<VecDeque<f64>>> = Arc::default();
        let queries: Arc<Mutex<Vec<String>>> = Arc::default();
        let (s, q) = (samples.clone(), queries.clone());
        let app = Router::new().route(
            "/api/v1/query",
            get(move |Query(params): Query<std::collections::HashMap<String, String>>| {
                let (s, q) = (s.clone(), q.clone());
                async move { answer(&s, &q, params.get("query").cloned().unwrap_or_default()) }
            }),
        );
        Self { url: serve(app).await, samples, queries }
    }

    pub fn script(&self, samples: impl IntoIterator<Item = f64>) {
        self.samples.lock().unwrap().extend(samples);
    }

    /// Every query asked, in order.
    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }
}

fn answer(
    samples: &Mutex<VecDeque<f64>>,
    queries: &Mutex<Vec<String>>,
    query: String,
) -> (StatusCode, axum::Json<Value>) {
    if query.trim().is_empty() {
        let refusal =
            json!({ "status": "error", "errorType": "bad_data", "error": "parse error: no expression found in input" });
        return (StatusCode::BAD_REQUEST, axum::Json(refusal));
    }
    queries.lock().unwrap().push(query);
    let mut samples = samples.lock().unwrap();
    let sample = if samples.len() > 1 { samples.pop_front() } else { samples.front().copied() }.unwrap_or(0.0);
    let result = json!([{ "metric": { "job": "shop" }, "value": [1_700_000_000.0, sample.to_string()] }]);
    (StatusCode::OK, axum::Json(json!({ "status": "success", "data": { "resultType": "vector", "result": result } })))
}
