//! A GitLab REST API stand-in for tests. Every request is checked against
//! `contract/gitlab-rest-excerpt.yaml`, an excerpt of GitLab's published OpenAPI description
//! (Swagger 2.0: path, method, path parameter types, and the body against its definition,
//! enums included); a request that breaks it is refused with 400 and recorded as a violation.
//!
//! What Gantry calls is simulated: commit statuses (a status that has finished cannot move
//! again, as in GitLab), and pipelines created on a ref, which a test scripts to succeed, fail
//! or never finish. Requests must carry `PRIVATE-TOKEN` with a token the test names. A test
//! can also make the next requests fail with 502, be rate limited, or answer slowly.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gantry_contract::{Request, StandIn};
use serde_json::{Value, json};

pub use gantry_contract::Fault;

/// How a created pipeline ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineOutcome {
    Succeed,
    Fail,
    /// Stays `running` for good.
    Hang,
}

/// A pipeline created through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub id: u64,
    pub project: String,
    pub git_ref: String,
    /// `(key, value)` of the variables it was given.
    pub variables: Vec<(String, String)>,
    pub outcome: PipelineOutcome,
    /// How often it has been read; it ends on the second read.
    reads: u32,
}

/// A commit status as posted.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitStatus {
    pub project: String,
    pub sha: String,
    pub name: String,
    pub state: String,
    pub target_url: Option<String>,
    pub description: Option<String>,
    /// The branch or tag, when the status names one.
    pub git_ref: Option<String>,
}

#[derive(Default)]
struct State {
    tokens: Vec<String>,
    next_id: u64,
    statuses: Vec<CommitStatus>,
    pipelines: Vec<Pipeline>,
    script: VecDeque<PipelineOutcome>,
}

#[derive(Clone)]
pub struct FakeGitLab {
    pub url: String,
    state: Arc<Mutex<State>>,
    stand_in: Arc<StandIn>,
}

gantry_contract::deref_stand_in!(FakeGitLab);

const CONTRACT: &str = include_str!("../contract/gitlab-rest-excerpt.yaml");

impl FakeGitLab {
    /// Serves on a random loopback port until the test ends; `token` opens it.
    pub async fn start(token: &str) -> Self {
        let state = Arc::new(Mutex::new(State { next_id: 500, tokens: vec![token.to_owned()], ..State::default() }));
        let stand_in = StandIn::new(CONTRACT, "");
        let url = stand_in.serve(state.clone(), handle).await;
        Self { url, state, stand_in }
    }

    /// Outcomes of the next created pipelines, in order; `Succeed` once they run out.
    pub fn script(&self, outcomes: impl IntoIterator<Item = PipelineOutcome>) {
        self.state.lock().unwrap().script.extend(outcomes);
    }

    /// Makes a pipeline report its end (as scripted) the next time it is read.
    pub fn finish_pipeline(&self, id: u64) {
        let mut s = self.state.lock().unwrap();
        if let Some(p) = s.pipelines.iter_mut().find(|p| p.id == id) {
            p.reads = p.reads.max(1);
        }
    }

    /// Every commit status posted and taken, in order.
    pub fn statuses(&self) -> Vec<CommitStatus> {
        self.state.lock().unwrap().statuses.clone()
    }

    /// Every pipeline created, oldest first.
    pub fn pipelines(&self) -> Vec<Pipeline> {
        self.state.lock().unwrap().pipelines.clone()
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// GitLab's answer to a fault.
fn fault_answer(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited | Fault::SecondaryRateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1"), ("ratelimit-remaining", "0")],
            axum::Json(json!({ "message": "Retry later" })),
        )
            .into_response(),
        _ => answer(StatusCode::BAD_GATEWAY, json!({ "message": "502 Bad Gateway" })),
    }
}

/// A URL-encoded project path (`acme%2Fshop`) as GitLab reads it.
fn decoded(project: &str) -> String {
    project.replace("%2F", "/").replace("%2f", "/")
}

async fn handle(stand_in: Arc<StandIn>, state: Arc<Mutex<State>>, req: Request) -> Response {
    let (op, params) = match stand_in.check(&req) {
        Ok(found) => found,
        Err(violation) => return answer(StatusCode::BAD_REQUEST, json!({ "error": violation.reason })),
    };
    if let Some(response) = stand_in.fault(fault_answer).await {
        return response;
    }
    let mut s = state.lock().unwrap();
    if !s.tokens.iter().any(|t| t == req.header("private-token")) {
        return answer(StatusCode::UNAUTHORIZED, json!({ "message": "401 Unauthorized" }));
    }
    stand_in.answered(&op);
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let project = decoded(&params["id"]);
    match op.id.as_str() {
        "postApiV4ProjectsIdStatusesSha" => post_status(&mut s, project, &params["sha"], &body),
        "postApiV4ProjectsIdPipeline" => create_pipeline(&mut s, project, &body),
        "getApiV4ProjectsIdPipelinesPipelineId" => get_pipeline(&mut s, &project, &params["pipeline_id"]),
        other => answer(StatusCode::NOT_IMPLEMENTED, json!({ "message": format!("{other} is not simulated") })),
    }
}

/// GitLab keeps one status per project, commit, name and ref; a finished one cannot move.
fn post_status(s: &mut State, project: String, sha: &str, body: &Value) -> Response {
    let name = body["name"].as_str().or(body["context"].as_str()).unwrap_or("default").to_owned();
    let state = body["state"].as_str().unwrap_or_default().to_owned();
    let last = s.statuses.iter().rev().find(|c| c.project == project && c.sha == sha && c.name == name);
    if let Some(last) = last.filter(|c| ["success", "failed", "canceled", "skipped"].contains(&c.state.as_str())) {
        let message = format!("Cannot transition status via :{state} from :{}", last.state);
        return answer(StatusCode::BAD_REQUEST, json!({ "message": message }));
    }
    let status = CommitStatus {
        project,
        sha: sha.to_owned(),
        name: name.clone(),
        state: state.clone(),
        target_url: body["target_url"].as_str().map(str::to_owned),
        description: body["description"].as_str().map(str::to_owned),
        git_ref: body["ref"].as_str().map(str::to_owned),
    };
    s.statuses.push(status);
    s.next_id += 1;
    answer(StatusCode::OK, json!({ "id": s.next_id, "sha": sha, "name": name, "status": state }))
}

fn create_pipeline(s: &mut State, project: String, body: &Value) -> Response {
    s.next_id += 1;
    let variables = body["variables"].as_array().into_iter().flatten();
    let pipeline = Pipeline {
        id: s.next_id,
        project,
        git_ref: body["ref"].as_str().unwrap_or_default().to_owned(),
        variables: variables
            .map(|v| {
                (v["key"].as_str().unwrap_or_default().to_owned(), v["value"].as_str().unwrap_or_default().to_owned())
            })
            .collect(),
        outcome: s.script.pop_front().unwrap_or(PipelineOutcome::Succeed),
        reads: 0,
    };
    let shown = pipeline_json(&pipeline, "created");
    s.pipelines.push(pipeline);
    answer(StatusCode::CREATED, shown)
}

fn get_pipeline(s: &mut State, project: &str, id: &str) -> Response {
    let id: u64 = id.parse().unwrap_or(0);
    let Some(pipeline) = s.pipelines.iter_mut().find(|p| p.id == id && p.project == project) else {
        return answer(StatusCode::NOT_FOUND, json!({ "message": "404 Not found" }));
    };
    pipeline.reads += 1;
    let status = match (pipeline.outcome, pipeline.reads) {
        (_, 1) | (PipelineOutcome::Hang, _) => "running",
        (PipelineOutcome::Succeed, _) => "success",
        (PipelineOutcome::Fail, _) => "failed",
    };
    answer(StatusCode::OK, pipeline_json(pipeline, status))
}

fn pipeline_json(p: &Pipeline, status: &str) -> Value {
    json!({ "id": p.id, "ref": p.git_ref, "status": status, "source": "api",
            "web_url": format!("https://gitlab.example.com/{}/-/pipelines/{}", p.project, p.id) })
}

#[cfg(test)]
mod tests;
