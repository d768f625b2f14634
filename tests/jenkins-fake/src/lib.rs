//! A Jenkins stand-in for tests. Every request is checked against
//! `contract/jenkins-remote-access.yaml`, an excerpt of the published Jenkins API description
//! (path, method, path parameter types, and a form body); a request that breaks it is refused
//! with 400 and recorded as a violation. Requests must sign in with HTTP basic as the user and
//! API token the test names.
//!
//! What Gantry calls is simulated as Jenkins does it: `buildWithParameters` on a job the test
//! created answers 201 with the queue item in `Location`; the queue item gets its build on its
//! second read; the build is `building` on its first read, then ends as the test scripted (or
//! never, for `Hang`). A test can also make the next requests fail with 502, be rate limited,
//! or answer slowly.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use gantry_contract::{Request, StandIn};
use serde_json::{Value, json};

pub use gantry_contract::Fault;

/// How a queued build ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildOutcome {
    Succeed,
    Fail,
    Abort,
    /// Stays `building` for good.
    Hang,
}

/// A build asked for through `buildWithParameters`.
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    pub job: String,
    pub queue_id: u64,
    pub number: u64,
    /// The form fields it was given.
    pub parameters: Vec<(String, String)>,
    pub outcome: BuildOutcome,
    queue_reads: u32,
    reads: u32,
}

#[derive(Default)]
struct State {
    authorization: String,
    jobs: Vec<String>,
    next_queue_id: u64,
    builds: Vec<Build>,
    script: VecDeque<BuildOutcome>,
}

#[derive(Clone)]
pub struct FakeJenkins {
    pub url: String,
    state: Arc<Mutex<State>>,
    stand_in: Arc<StandIn>,
}

gantry_contract::deref_stand_in!(FakeJenkins);

const CONTRACT: &str = include_str!("../contract/jenkins-remote-access.yaml");

impl FakeJenkins {
    /// Serves on a random loopback port until the test ends; `user` and `api_token` sign in.
    pub async fn start(user: &str, api_token: &str) -> Self {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{api_token}"));
        let state = State { authorization: format!("Basic {encoded}"), next_queue_id: 100, ..State::default() };
        let state = Arc::new(Mutex::new(state));
        let stand_in = StandIn::new(CONTRACT, "");
        let url = stand_in.serve(state.clone(), handle).await;
        Self { url, state, stand_in }
    }

    /// Creates a job builds may be asked of.
    pub fn add_job(&self, name: &str) {
        self.state.lock().unwrap().jobs.push(name.to_owned());
    }

    /// Outcomes of the next builds, in order; `Succeed` once they run out.
    pub fn script(&self, outcomes: impl IntoIterator<Item = BuildOutcome>) {
        self.state.lock().unwrap().script.extend(outcomes);
    }

    /// Every build asked for, oldest first.
    pub fn builds(&self) -> Vec<Build> {
        self.state.lock().unwrap().builds.clone()
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Jenkins (or the proxy before it) answering a fault.
fn fault_answer(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited | Fault::SecondaryRateLimited => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "Too Many Requests").into_response()
        }
        _ => (StatusCode::BAD_GATEWAY, "Bad Gateway").into_response(),
    }
}

async fn handle(stand_in: Arc<StandIn>, state: Arc<Mutex<State>>, req: Request) -> Response {
    let (op, params) = match stand_in.check(&req) {
        Ok(found) => found,
        Err(violation) => return (StatusCode::BAD_REQUEST, violation.reason).into_response(),
    };
    if let Some(response) = stand_in.fault(fault_answer).await {
        return response;
    }
    let mut s = state.lock().unwrap();
    if req.header("authorization") != s.authorization {
        return (StatusCode::UNAUTHORIZED, "Invalid password/token for user").into_response();
    }
    stand_in.answered(&op);
    let number = |name: &str| params.get(name).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    match op.id.as_str() {
        "postJobBuildWithParameters" => queue_build(&mut s, &params["name"], &req.body, &req.uri),
        "getQueueItem" => queue_item(&mut s, number("number")),
        "getJobBuild" => build(&mut s, &params["name"], number("number")),
        other => answer(StatusCode::NOT_IMPLEMENTED, json!({ "message": format!("{other} is not simulated") })),
    }
}

fn queue_build(s: &mut State, job: &str, body: &[u8], uri: &Uri) -> Response {
    if !s.jobs.iter().any(|j| j == job) {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    s.next_queue_id += 1;
    let number = s.builds.iter().filter(|b| b.job == job).count() as u64 + 1;
    s.builds.push(Build {
        job: job.to_owned(),
        queue_id: s.next_queue_id,
        number,
        parameters: gantry_contract::form_pairs(body),
        outcome: s.script.pop_front().unwrap_or(BuildOutcome::Succeed),
        queue_reads: 0,
        reads: 0,
    });
    let host = uri.authority().map(|a| a.as_str()).unwrap_or("jenkins");
    let location = format!("http://{host}/queue/item/{}/", s.next_queue_id);
    (StatusCode::CREATED, [("location", location)]).into_response()
}

fn queue_item(s: &mut State, id: u64) -> Response {
    let Some(build) = s.builds.iter_mut().find(|b| b.queue_id == id) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    build.queue_reads += 1;
    if build.queue_reads == 1 {
        let why = "Waiting for next available executor";
        return answer(
            StatusCode::OK,
            json!({ "id": id, "blocked": false, "buildable": true, "why": why, "task": { "name": build.job } }),
        );
    }
    let executable = json!({ "number": build.number, "url": format!("https://jenkins.example.com/job/{}/{}/", build.job, build.number) });
    answer(
        StatusCode::OK,
        json!({ "id": id, "cancelled": false, "executable": executable, "task": { "name": build.job } }),
    )
}

fn build(s: &mut State, job: &str, number: u64) -> Response {
    let Some(build) = s.builds.iter_mut().find(|b| b.job == job && b.number == number && b.queue_reads > 1) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    build.reads += 1;
    let result = match (build.outcome, build.reads) {
        (_, 1) | (BuildOutcome::Hang, _) => Value::Null,
        (BuildOutcome::Succeed, _) => json!("SUCCESS"),
        (BuildOutcome::Fail, _) => json!("FAILURE"),
        (BuildOutcome::Abort, _) => json!("ABORTED"),
    };
    let url = format!("https://jenkins.example.com/job/{job}/{number}/");
    answer(StatusCode::OK, json!({ "number": number, "building": result.is_null(), "result": result, "url": url }))
}

#[cfg(test)]
mod tests;
