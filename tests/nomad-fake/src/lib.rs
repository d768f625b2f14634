//! A Nomad HTTP API stand-in for tests. No Nomad binary can be had here, so deployments to
//! Nomad are tested against this: every request is checked against
//! `contract/nomad-openapi-v1.yaml` (path, method, declared query parameters,
//! required parameters, and the body against its schema) and refused with 400 and a recorded
//! violation when it breaks it. The operations a deployer needs are simulated: jobs with
//! versions and `JobModifyIndex`, plans, registration with `EnforceIndex`, evaluations,
//! deployments that a test scripts to succeed, fail or stall, `deployment/fail` and `revert`.

pub use gantry_contract as contract;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contract::{Request, StandIn};
use serde_json::{Value, json};

/// What the next registration's deployment does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeed,
    Fail,
    /// Stays `running` until failed through the API.
    Stall,
}

#[derive(Default)]
struct State {
    index: u64,
    jobs: HashMap<String, Vec<Value>>,
    evaluations: HashMap<String, Value>,
    deployments: Vec<Value>,
    script: VecDeque<Outcome>,
    token: Option<String>,
    /// The `traceparent` header of every request that carried one, in order.
    traceparents: Vec<String>,
}

#[derive(Clone)]
pub struct FakeNomad {
    pub url: String,
    state: Arc<Mutex<State>>,
    stand_in: Arc<StandIn>,
}

gantry_contract::deref_stand_in!(FakeNomad);

const CONTRACT: &str = include_str!("../contract/nomad-openapi-v1.yaml");

/// A job spec without the fields Nomad sets, for comparing versions.
fn spec(job: &Value) -> Value {
    let mut j = job.clone();
    if let Some(o) = j.as_object_mut() {
        for k in ["Version", "JobModifyIndex", "ModifyIndex", "CreateIndex", "SubmitTime", "Stable", "Status"] {
            o.remove(k);
        }
    }
    j
}

impl FakeNomad {
    /// Serves on a random loopback port until the test ends.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let stand_in = StandIn::new(CONTRACT, "/v1");
        let url = stand_in.serve(state.clone(), handle).await;
        Self { url, state, stand_in }
    }

    /// As [`Self::start`], serving `https://` with `tls` (a test's certificates; it may
    /// demand a client certificate, as a Nomad agent with `verify_https_client` does).
    pub async fn start_tls(tls: Arc<contract::rustls::ServerConfig>) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let stand_in = StandIn::new(CONTRACT, "/v1");
        let url = stand_in.serve_tls(state.clone(), handle, tls).await;
        Self { url, state, stand_in }
    }

    /// Requests without this `X-Nomad-Token` are refused with 403.
    pub fn require_token(&self, token: &str) {
        self.state.lock().unwrap().token = Some(token.to_owned());
    }

    /// Makes a job exist, as version 0.
    pub fn seed_job(&self, mut job: Value) {
        let mut s = self.state.lock().unwrap();
        s.index += 1;
        job["Version"] = json!(0);
        job["JobModifyIndex"] = json!(s.index);
        let id = job["ID"].as_str().expect("a job has an ID").to_owned();
        s.jobs.insert(id, vec![job]);
    }

    /// Makes a service job `id` exist, as version 0: one group of one allocation in `dc1`
    /// whose Docker tasks, named `tasks`, run the image `old`.
    pub fn seed_service(&self, id: &str, tasks: &[&str]) {
        let tasks: Vec<Value> =
            tasks.iter().map(|t| json!({ "Name": t, "Driver": "docker", "Config": { "image": "old" } })).collect();
        self.seed_job(json!({ "ID": id, "Name": id, "Type": "service", "Datacenters": ["dc1"],
            "TaskGroups": [{ "Name": id, "Count": 1, "Tasks": tasks }] }));
    }

    /// Outcomes for the next registrations, in order; `Succeed` once they run out.
    pub fn script(&self, outcomes: impl IntoIterator<Item = Outcome>) {
        self.state.lock().unwrap().script.extend(outcomes);
    }

    /// The W3C `traceparent` headers received, in order (a traced caller sends one a request).
    pub fn traceparents(&self) -> Vec<String> {
        self.state.lock().unwrap().traceparents.clone()
    }

    /// Every version of a job, oldest first.
    pub fn job_versions(&self, id: &str) -> Vec<Value> {
        self.state.lock().unwrap().jobs.get(id).cloned().unwrap_or_default()
    }
}

fn reply(status: StatusCode, index: u64, body: Value) -> Response {
    (status, [("X-Nomad-Index", index.to_string())], axum::Json(body)).into_response()
}

async fn handle(stand_in: Arc<StandIn>, state: Arc<Mutex<State>>, req: Request) -> Response {
    let mut s = state.lock().unwrap();
    let (op, params) = match stand_in.check(&req) {
        Ok(found) => found,
        Err(violation) => return reply(StatusCode::BAD_REQUEST, s.index, json!({ "error": violation.reason })),
    };
    if s.token.as_ref().is_some_and(|token| req.header("X-Nomad-Token") != token) {
        return reply(StatusCode::FORBIDDEN, s.index, json!({ "error": "Permission denied" }));
    }
    stand_in.answered(&op);
    let traceparent = req.header("traceparent");
    if !traceparent.is_empty() {
        s.traceparents.push(traceparent.to_owned());
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    respond(&mut s, &op.id, &params, body)
}

/// What Nomad would answer an operation that kept to the contract.
fn respond(s: &mut State, operation: &str, params: &HashMap<String, String>, body: Value) -> Response {
    let index = s.index;
    let job_name = params.get("jobName").cloned().unwrap_or_default();
    match operation {
        "GetJob" => match s.jobs.get(&job_name).and_then(|v| v.last()) {
            Some(job) => reply(StatusCode::OK, index, job.clone()),
            None => reply(StatusCode::NOT_FOUND, index, json!({ "error": "job not found" })),
        },
        "PostJobPlan" => {
            let current = s.jobs.get(&job_name).and_then(|v| v.last()).cloned();
            let changed = current.as_ref().is_none_or(|c| spec(c) != spec(&body["Job"]));
            let modify_index = current.map_or(0, |c| c["JobModifyIndex"].as_u64().unwrap_or(0));
            reply(
                StatusCode::OK,
                index,
                json!({ "Diff": { "Type": if changed { "Edited" } else { "None" } }, "JobModifyIndex": modify_index, "Annotations": {} }),
            )
        }
        "PostJob" | "RegisterJob" => post_job(s, job_name, body),
        "GetEvaluation" => match s.evaluations.get(params.get("evalID").map(String::as_str).unwrap_or_default()) {
            Some(eval) => reply(StatusCode::OK, index, eval.clone()),
            None => reply(StatusCode::NOT_FOUND, index, json!({ "error": "eval not found" })),
        },
        "GetJobDeployment" => match s.deployments.iter().rev().find(|d| d["JobID"] == job_name.as_str()) {
            Some(d) => reply(StatusCode::OK, index, d.clone()),
            None => reply(StatusCode::OK, index, Value::Null),
        },
        "GetDeployment" => match s
            .deployments
            .iter()
            .find(|d| d["ID"] == params.get("deploymentID").map(String::as_str).unwrap_or_default())
        {
            Some(d) => reply(StatusCode::OK, index, d.clone()),
            None => reply(StatusCode::NOT_FOUND, index, json!({ "error": "deployment not found" })),
        },
        "PostDeploymentFail" => {
            let id = params.get("deploymentID").cloned().unwrap_or_default();
            s.index += 1;
            let new_index = s.index;
            match s.deployments.iter_mut().find(|d| d["ID"] == id.as_str()) {
                Some(d) => {
                    d["Status"] = json!("failed");
                    d["StatusDescription"] = json!("Deployment marked as failed");
                    d["ModifyIndex"] = json!(new_index);
                    reply(StatusCode::OK, new_index, json!({ "DeploymentModifyIndex": new_index, "Index": new_index }))
                }
                None => reply(StatusCode::NOT_FOUND, index, json!({ "error": "deployment not found" })),
            }
        }
        "PostJobRevert" => revert(s, &job_name, &body),
        "DeleteJob" => stop(s, &job_name),
        "PostDeploymentPromote" => {
            let id = params.get("deploymentID").cloned().unwrap_or_default();
            s.index += 1;
            let new_index = s.index;
            match s.deployments.iter_mut().find(|d| d["ID"] == id.as_str()) {
                Some(d) if d["Status"] == "running" => {
                    d["Status"] = json!("successful");
                    d["StatusDescription"] = json!("Deployment completed successfully");
                    for group in d["TaskGroups"].as_object_mut().into_iter().flat_map(|g| g.values_mut()) {
                        group["Promoted"] = json!(true);
                    }
                    reply(StatusCode::OK, new_index, json!({ "DeploymentModifyIndex": new_index, "Index": new_index }))
                }
                Some(_) => {
                    reply(StatusCode::BAD_REQUEST, index, json!({ "error": "can't promote terminal deployment" }))
                }
                None => reply(StatusCode::NOT_FOUND, index, json!({ "error": "deployment not found" })),
            }
        }
        other => reply(
            StatusCode::NOT_IMPLEMENTED,
            index,
            json!({ "error": format!("{other} is in the contract but not simulated") }),
        ),
    }
}

/// Registers a job, refusing a stale `JobModifyIndex` when the caller enforces it.
fn post_job(s: &mut State, job_name: String, body: Value) -> Response {
    let index = s.index;
    let job = body["Job"].clone();
    let id = job["ID"].as_str().map(str::to_owned).unwrap_or(job_name);
    let current = s.jobs.get(&id).and_then(|v| v.last()).cloned();
    if body["EnforceIndex"].as_bool() == Some(true) {
        let have = current.as_ref().map_or(0, |c| c["JobModifyIndex"].as_u64().unwrap_or(0));
        if body["JobModifyIndex"].as_u64() != Some(have) {
            return reply(
                StatusCode::BAD_REQUEST,
                index,
                json!({ "error": format!("Enforcing job modify index {}: job exists with conflicting job modify index: {have}", body["JobModifyIndex"]) }),
            );
        }
    }
    let outcome = s.script.pop_front().unwrap_or(Outcome::Succeed);
    register(s, &id, job, current.as_ref(), outcome)
}

/// Stops a job, as `DELETE /v1/job/:id` without `purge` does: a new version with `Stop` set,
/// whose status is `dead` (its allocations stopped).
fn stop(s: &mut State, job_name: &str) -> Response {
    let index = s.index;
    let Some(mut job) = s.jobs.get(job_name).and_then(|v| v.last()).cloned() else {
        return reply(StatusCode::NOT_FOUND, index, json!({ "error": "job not found" }));
    };
    s.index += 1;
    let index = s.index;
    job["Version"] = json!(job["Version"].as_u64().unwrap_or(0) + 1);
    job["JobModifyIndex"] = json!(index);
    job["Stop"] = json!(true);
    job["Status"] = json!("dead");
    s.jobs.entry(job_name.to_owned()).or_default().push(job);
    let eval_id = uuid::Uuid::new_v4().to_string();
    s.evaluations.insert(
        eval_id.clone(),
        json!({ "ID": eval_id, "JobID": job_name, "Status": "complete", "ModifyIndex": index }),
    );
    reply(
        StatusCode::OK,
        index,
        json!({ "EvalID": eval_id, "EvalCreateIndex": index, "JobModifyIndex": index, "Index": index }),
    )
}

/// Reverts a job to an earlier version, or does nothing when its spec is the current one.
fn revert(s: &mut State, job_name: &str, body: &Value) -> Response {
    let index = s.index;
    let versions = s.jobs.get(job_name).cloned().unwrap_or_default();
    let wanted = body["JobVersion"].as_u64();
    let Some(target) = versions.iter().find(|v| v["Version"].as_u64() == wanted).cloned() else {
        return reply(StatusCode::BAD_REQUEST, index, json!({ "error": "job version not found" }));
    };
    let current = versions.last().cloned();
    if current.as_ref().is_some_and(|c| spec(c) == spec(&target)) {
        // Reverting to a version whose spec equals the current one does nothing.
        return reply(
            StatusCode::OK,
            index,
            json!({ "EvalID": "", "JobModifyIndex": current.map_or(0, |c| c["JobModifyIndex"].as_u64().unwrap_or(0)) }),
        );
    }
    register(s, job_name, target, current.as_ref(), Outcome::Succeed)
}

/// The first task group and its canary count, when the job's update stanza (or the group's)
/// places canaries.
fn canaries(job: &Value) -> Option<(String, u64)> {
    let group = job["TaskGroups"].get(0)?;
    let count = group["Update"]["Canary"].as_u64().or(job["Update"]["Canary"].as_u64()).filter(|n| *n > 0)?;
    Some((group["Name"].as_str().unwrap_or("group").to_owned(), count))
}

/// Stores a new job version with an evaluation and a deployment whose end `outcome` decides.
fn register(s: &mut State, id: &str, mut job: Value, current: Option<&Value>, outcome: Outcome) -> Response {
    s.index += 1;
    let index = s.index;
    let version = current.map_or(0, |c| c["Version"].as_u64().unwrap_or(0) + 1);
    job["Version"] = json!(version);
    job["JobModifyIndex"] = json!(index);
    job["ID"] = json!(id);
    job["Status"] = json!(if outcome == Outcome::Fail { "dead" } else { "running" });
    s.jobs.entry(id.to_owned()).or_default().push(job);
    let deployment_id = uuid::Uuid::new_v4().to_string();
    let canaries = canaries(s.jobs[id].last().unwrap_or(&Value::Null));
    let (status, description) = match (outcome, &canaries) {
        (Outcome::Succeed, Some(_)) => ("running", "Deployment is running but requires manual promotion"),
        (Outcome::Succeed, None) => ("successful", "Deployment completed successfully"),
        (Outcome::Fail, _) => ("failed", "Failed due to unhealthy allocations"),
        (Outcome::Stall, _) => ("running", "Deployment is running"),
    };
    // Canaries are placed and healthy, waiting for promotion, unless the rollout stalls.
    let groups = canaries.map(|(group, n)| {
        let healthy = if outcome == Outcome::Succeed { n } else { 0 };
        json!({ group: { "DesiredCanaries": n, "HealthyAllocs": healthy, "PlacedCanaries": vec!["canary"; n as usize], "Promoted": false } })
    });
    s.deployments.push(json!({ "ID": deployment_id, "JobID": id, "JobVersion": version, "Status": status, "StatusDescription": description, "ModifyIndex": index, "TaskGroups": groups }));
    let eval_id = uuid::Uuid::new_v4().to_string();
    s.evaluations.insert(eval_id.clone(), json!({ "ID": eval_id, "JobID": id, "Status": "complete", "DeploymentID": deployment_id, "ModifyIndex": index }));
    reply(
        StatusCode::OK,
        index,
        json!({ "EvalID": eval_id, "EvalCreateIndex": index, "JobModifyIndex": index, "Index": index }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(image: &str) -> Value {
        json!({ "ID": "web", "Name": "web", "Type": "service", "Datacenters": ["dc1"],
                "TaskGroups": [{ "Name": "web", "Count": 1, "Tasks": [{ "Name": "server", "Driver": "docker", "Config": { "image": image } }] }] })
    }

    #[tokio::test]
    async fn requests_are_checked_against_the_contract() {
        let nomad = FakeNomad::start().await;
        nomad.seed_job(job("web:1"));
        let http = reqwest::Client::new();
        let ok = http.get(format!("{}/v1/job/web?namespace=default", nomad.url)).send().await.unwrap();
        assert_eq!(ok.status(), 200);
        assert!(ok.headers().contains_key("x-nomad-index"));
        let undeclared = http.get(format!("{}/v1/job/web?colour=blue", nomad.url)).send().await.unwrap();
        assert_eq!(undeclared.status(), 400);
        let wrong_method = http.put(format!("{}/v1/job/web", nomad.url)).send().await.unwrap();
        assert_eq!(wrong_method.status(), 400);
        let bad_body = http
            .post(format!("{}/v1/job/web", nomad.url))
            .json(&json!({ "Job": job("x"), "EnforceIndex": "yes" }))
            .send()
            .await
            .unwrap();
        assert_eq!(bad_body.status(), 400);
        let no_path = http.get(format!("{}/v1/nothing/here", nomad.url)).send().await.unwrap();
        assert_eq!(no_path.status(), 400);
        let reasons: Vec<_> = nomad.violations().into_iter().map(|v| v.reason).collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].contains("colour"));
        assert!(reasons[2].contains("EnforceIndex") || reasons[2].contains("boolean"), "{}", reasons[2]);
        assert_eq!(nomad.operations(), ["GetJob"]);
    }

    #[tokio::test]
    async fn registrations_deploy_as_scripted() {
        let nomad = FakeNomad::start().await;
        nomad.seed_job(job("web:1"));
        nomad.script([Outcome::Fail, Outcome::Stall]);
        let http = reqwest::Client::new();
        let register = |index: u64, image: &str| {
            http.post(format!("{}/v1/job/web", nomad.url))
                .json(&json!({ "Job": job(image), "EnforceIndex": true, "JobModifyIndex": index }))
                .send()
        };
        let stale = register(999, "web:2").await.unwrap();
        assert_eq!(stale.status(), 400, "EnforceIndex refuses a stale index");
        let res: Value = register(1, "web:2").await.unwrap().json().await.unwrap();
        let eval: Value = http
            .get(format!("{}/v1/evaluation/{}", nomad.url, res["EvalID"].as_str().unwrap()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let deployment: Value = http
            .get(format!("{}/v1/deployment/{}", nomad.url, eval["DeploymentID"].as_str().unwrap()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(deployment["Status"], "failed");
        // Revert to version 0: a new version with version 0's spec.
        let reverted = http
            .post(format!("{}/v1/job/web/revert", nomad.url))
            .json(&json!({ "JobID": "web", "JobVersion": 0 }))
            .send()
            .await
            .unwrap();
        assert_eq!(reverted.status(), 200);
        let versions = nomad.job_versions("web");
        assert_eq!(versions.len(), 3);
        assert_eq!(versions[2]["TaskGroups"][0]["Tasks"][0]["Config"]["image"], "web:1");
        // Reverting to what already runs does nothing.
        http.post(format!("{}/v1/job/web/revert", nomad.url))
            .json(&json!({ "JobID": "web", "JobVersion": 0 }))
            .send()
            .await
            .unwrap();
        assert_eq!(nomad.job_versions("web").len(), 3);
        // A stalled deployment runs until failed through the API.
        let index = nomad.job_versions("web")[2]["JobModifyIndex"].as_u64().unwrap();
        register(index, "web:3").await.unwrap();
        let latest: Value =
            http.get(format!("{}/v1/job/web/deployment", nomad.url)).send().await.unwrap().json().await.unwrap();
        assert_eq!(latest["Status"], "running");
        let failed = http
            .post(format!("{}/v1/deployment/fail/{}", nomad.url, latest["ID"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(failed.status(), 200);
        let latest: Value =
            http.get(format!("{}/v1/job/web/deployment", nomad.url)).send().await.unwrap().json().await.unwrap();
        assert_eq!(latest["Status"], "failed");
        assert!(nomad.violations().is_empty(), "{:?}", nomad.violations());
    }

    #[tokio::test]
    async fn tokens_are_required_when_set() {
        let nomad = FakeNomad::start().await;
        nomad.seed_job(job("web:1"));
        nomad.require_token("s3cret");
        let http = reqwest::Client::new();
        assert_eq!(http.get(format!("{}/v1/job/web", nomad.url)).send().await.unwrap().status(), 403);
        assert_eq!(
            http.get(format!("{}/v1/job/web", nomad.url))
                .header("X-Nomad-Token", "s3cret")
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
}
