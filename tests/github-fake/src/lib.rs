//! A GitHub REST API stand-in for tests. Every request is checked against
//! `contract/github-rest-excerpt.yaml`, an excerpt of GitHub's published OpenAPI description
//! (path, method, declared query parameters, path parameter types, and the body against its
//! schema, enums included); a request that breaks it is refused with 422 and recorded as a
//! violation. What Gantry calls is simulated: deployments and their statuses (a success makes
//! earlier successful deployments of the environment inactive, as GitHub does), workflow
//! dispatches and the runs they start, which a test scripts to succeed, fail or never finish.
//! A test can also make the next requests fail with 502, be rate limited, or answer slowly.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gantry_contract::{Request, StandIn};

pub use gantry_contract::Fault;
use serde_json::{Value, json};

mod simulate;

/// How a dispatched workflow run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Succeed,
    Fail,
    /// Stays `in_progress` for good.
    Hang,
}

/// A workflow run started by a dispatch.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub id: u64,
    pub workflow: String,
    pub git_ref: String,
    pub inputs: Value,
    pub outcome: RunOutcome,
    /// How often it has been read; it completes on the second read.
    reads: u32,
}

/// A GitHub App the stand-in knows: its id, installation and public key.
struct App {
    id: u64,
    installation: u64,
    key: jsonwebtoken::DecodingKey,
}

#[derive(Default)]
struct State {
    /// Whether requests must present a token: one of `tokens`, or one this stand-in issued.
    auth: bool,
    tokens: Vec<String>,
    apps: Vec<App>,
    /// Installation tokens issued, in order.
    issued: Vec<String>,
    next_id: u64,
    deployments: Vec<Value>,
    /// `(deployment id, status)`, in the order they were made.
    statuses: Vec<(u64, Value)>,
    runs: Vec<Run>,
    script: VecDeque<RunOutcome>,
    /// A primary rate limit in force until then (epoch seconds), and for how long one lasts.
    limited_until: Option<u64>,
    limit_window: std::time::Duration,
    /// Requests that came while a rate limit was in force, before its reset.
    early: u32,
}

#[derive(Clone)]
pub struct FakeGitHub {
    pub url: String,
    state: Arc<Mutex<State>>,
    stand_in: Arc<StandIn>,
}

gantry_contract::deref_stand_in!(FakeGitHub);

const CONTRACT: &str = include_str!("../contract/github-rest-excerpt.yaml");

impl FakeGitHub {
    /// Serves on a random loopback port until the test ends.
    pub async fn start() -> Self {
        let window = std::time::Duration::from_secs(2);
        let state = Arc::new(Mutex::new(State { next_id: 1000, limit_window: window, ..State::default() }));
        let stand_in = StandIn::new(CONTRACT, "");
        let url = stand_in.serve(state.clone(), handle).await;
        Self { url, state, stand_in }
    }

    /// Requests without `Authorization: Bearer <token>` (or `token <token>`, or a token this
    /// stand-in issued) get 401.
    pub fn require_token(&self, token: &str) {
        let mut s = self.state.lock().unwrap();
        s.auth = true;
        s.tokens.push(token.to_owned());
    }

    /// Knows a GitHub App: an RS256 JWT it signs (issuer the app id, at most ten minutes
    /// long) buys an installation token, which then opens every other call.
    pub fn register_app(&self, app_id: u64, installation_id: u64, public_key_pem: &[u8]) {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key_pem).expect("an RSA public key");
        let mut s = self.state.lock().unwrap();
        s.apps.push(App { id: app_id, installation: installation_id, key });
        s.auth = true;
    }

    /// The installation tokens issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.clone()
    }

    /// Outcomes of the next dispatched runs, in order; `Succeed` once they run out.
    pub fn script(&self, outcomes: impl IntoIterator<Item = RunOutcome>) {
        self.state.lock().unwrap().script.extend(outcomes);
    }

    /// How long a primary rate limit ([`Fault::RateLimited`]) lasts: until then every
    /// request gets `403` with `x-ratelimit-remaining: 0` and the reset, as GitHub answers.
    pub fn rate_limit_window(&self, window: std::time::Duration) {
        self.state.lock().unwrap().limit_window = window;
    }

    /// Requests made while a rate limit was in force, before the `x-ratelimit-reset` it
    /// announced: GitHub's documentation asks clients to make none.
    pub fn early_requests(&self) -> u32 {
        self.state.lock().unwrap().early
    }

    /// Every deployment created, oldest first.
    pub fn deployments(&self) -> Vec<Value> {
        self.state.lock().unwrap().deployments.clone()
    }

    /// The states posted for a deployment, in order (those GitHub adds itself included).
    pub fn states(&self, deployment_id: u64) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.statuses
            .iter()
            .filter(|(d, _)| *d == deployment_id)
            .map(|(_, v)| v["state"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// Every status posted, with its deployment id.
    pub fn statuses(&self) -> Vec<(u64, Value)> {
        self.state.lock().unwrap().statuses.clone()
    }

    /// Makes a run report its end (as scripted) the next time it is read, as a run that
    /// finished before its `workflow_run` webhook went out.
    pub fn finish_run(&self, run_id: u64) {
        let mut s = self.state.lock().unwrap();
        if let Some(run) = s.runs.iter_mut().find(|r| r.id == run_id) {
            run.reads = run.reads.max(1);
        }
    }

    /// Every run dispatched, oldest first.
    pub fn runs(&self) -> Vec<Run> {
        self.state.lock().unwrap().runs.clone()
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn epoch_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// GitHub's primary rate limit: `403`, no requests left, and when they come back.
fn limited(reset: u64) -> Response {
    let reset = reset.to_string();
    let headers = [
        ("x-ratelimit-limit", "5000".to_owned()),
        ("x-ratelimit-remaining", "0".to_owned()),
        ("x-ratelimit-reset", reset),
    ];
    (StatusCode::FORBIDDEN, headers, axum::Json(json!({ "message": "API rate limit exceeded" }))).into_response()
}

/// GitHub's answer to a fault. A primary rate limit lasts its window, whole seconds.
fn fault_answer(fault: Fault, state: &Mutex<State>) -> Response {
    match fault {
        Fault::RateLimited => {
            let mut s = state.lock().unwrap();
            let reset = epoch_now() + s.limit_window.as_secs().max(1);
            s.limited_until = Some(reset);
            limited(reset)
        }
        Fault::SecondaryRateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            axum::Json(json!({ "message": "You have exceeded a secondary rate limit." })),
        )
            .into_response(),
        _ => answer(StatusCode::BAD_GATEWAY, json!({ "message": "Server Error" })),
    }
}

async fn handle(stand_in: Arc<StandIn>, state: Arc<Mutex<State>>, req: Request) -> Response {
    let (op, params) = match stand_in.check(&req) {
        Ok(found) => found,
        Err(violation) => {
            let refusal = json!({ "message": "Validation Failed", "errors": [violation.reason] });
            return answer(StatusCode::UNPROCESSABLE_ENTITY, refusal);
        }
    };
    let in_force = {
        let mut s = state.lock().unwrap();
        let reset = s.limited_until.filter(|reset| epoch_now() < *reset);
        s.early += u32::from(reset.is_some());
        reset
    };
    if let Some(reset) = in_force {
        return limited(reset);
    }
    if let Some(response) = stand_in.fault(|fault| fault_answer(fault, &state)).await {
        return response;
    }
    let mut s = state.lock().unwrap();
    let presented = req.header("authorization");
    let bearer = presented.strip_prefix("Bearer ").or_else(|| presented.strip_prefix("token ")).unwrap_or_default();
    if op.id == "apps/create-installation-access-token" {
        let installation = params["installation_id"].parse().unwrap_or(0);
        return match simulate::installation_token(&mut s, installation, bearer) {
            Ok(token) => {
                stand_in.answered(&op);
                answer(StatusCode::CREATED, token)
            }
            Err(message) => answer(StatusCode::UNAUTHORIZED, json!({ "message": message })),
        };
    }
    let known = s.tokens.iter().chain(&s.issued).any(|t| t == bearer);
    if s.auth && !known {
        return answer(StatusCode::UNAUTHORIZED, json!({ "message": "Bad credentials" }));
    }
    stand_in.answered(&op);
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    match simulate::respond(&mut s, &op.id, &params, body) {
        (StatusCode::NO_CONTENT, _) => StatusCode::NO_CONTENT.into_response(),
        (status, reply) => answer(status, reply),
    }
}

#[cfg(test)]
mod tests;
