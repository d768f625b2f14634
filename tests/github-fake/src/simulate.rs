//! What GitHub answers the operations the stand-in simulates.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{Run, RunOutcome, State};

pub(crate) fn respond(
    s: &mut State,
    operation: &str,
    params: &HashMap<String, String>,
    body: Value,
) -> (StatusCode, Value) {
    let repo =
        format!("{}/{}", params.get("owner").map_or("", String::as_str), params.get("repo").map_or("", String::as_str));
    match operation {
        "repos/create-deployment" => create_deployment(s, &repo, body),
        "repos/create-deployment-status" => {
            let id = params["deployment_id"].parse().unwrap_or(0);
            create_status(s, &repo, id, body)
        }
        "actions/create-workflow-dispatch" => dispatch(s, &repo, &params["workflow_id"], body),
        "actions/get-workflow-run" => get_run(s, &repo, params["run_id"].parse().unwrap_or(0)),
        other => {
            (StatusCode::NOT_IMPLEMENTED, json!({ "message": format!("{other} is in the contract but not simulated") }))
        }
    }
}

/// An installation token for a JWT the installation's app signed; why not, otherwise.
pub(crate) fn installation_token(s: &mut State, installation: u64, jwt: &str) -> Result<Value, String> {
    let app = s.apps.iter().find(|a| a.installation == installation).ok_or("no such installation")?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    validation.set_issuer(&[app.id.to_string()]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &app.key, &validation)
        .map_err(|e| format!("A JSON web token could not be decoded: {e}"))?
        .claims;
    let (iat, exp) = (claims["iat"].as_i64().unwrap_or(0), claims["exp"].as_i64().unwrap_or(i64::MAX));
    if exp - iat > 600 {
        return Err("'Expiration time' claim ('exp') is too far in the future".into());
    }
    let token = format!("ghs_{}_{}", app.id, s.issued.len() + 1);
    s.issued.push(token.clone());
    Ok(json!({ "token": token, "expires_at": "2099-01-01T00:00:00Z" }))
}

fn next_id(s: &mut State) -> u64 {
    s.next_id += 1;
    s.next_id
}

fn create_deployment(s: &mut State, repo: &str, body: Value) -> (StatusCode, Value) {
    let id = next_id(s);
    let environment = body["environment"].as_str().unwrap_or("production").to_owned();
    let deployment = json!({
        "id": id,
        "url": format!("https://api.github.com/repos/{repo}/deployments/{id}"),
        "repository": repo,
        "sha": body["ref"],
        "ref": body["ref"],
        "task": body.get("task").cloned().unwrap_or(json!("deploy")),
        "payload": body.get("payload").cloned().unwrap_or(json!({})),
        "environment": environment,
        "production_environment": body["production_environment"].as_bool().unwrap_or(environment == "production"),
        "transient_environment": body["transient_environment"].as_bool().unwrap_or(false),
        "description": body.get("description").cloned().unwrap_or(Value::Null),
    });
    s.deployments.push(deployment.clone());
    (StatusCode::CREATED, deployment)
}

fn create_status(s: &mut State, repo: &str, deployment_id: u64, body: Value) -> (StatusCode, Value) {
    let Some(deployment) = s.deployments.iter().find(|d| d["id"] == deployment_id && d["repository"] == repo).cloned()
    else {
        return (StatusCode::NOT_FOUND, json!({ "message": "Not Found" }));
    };
    let state = body["state"].as_str().unwrap_or_default().to_owned();
    let id = next_id(s);
    let status = json!({
        "id": id,
        "state": state,
        "description": body.get("description").cloned().unwrap_or(json!("")),
        "environment": body.get("environment").cloned().unwrap_or(deployment["environment"].clone()),
        "log_url": body.get("log_url").cloned().unwrap_or(json!("")),
        "environment_url": body.get("environment_url").cloned().unwrap_or(json!("")),
    });
    s.statuses.push((deployment_id, status.clone()));
    let transient = deployment["transient_environment"] == true;
    if state == "success" && body["auto_inactive"].as_bool() != Some(false) && !transient {
        inactivate_earlier(s, &deployment);
    }
    (StatusCode::CREATED, status)
}

/// GitHub marks earlier non-production, non-transient deployments to the same environment
/// inactive once a newer one succeeds, if their latest state was a success.
fn inactivate_earlier(s: &mut State, newer: &Value) {
    let earlier: Vec<u64> = s
        .deployments
        .iter()
        .filter(|d| d["repository"] == newer["repository"] && d["environment"] == newer["environment"])
        .filter(|d| d["production_environment"] != true && d["transient_environment"] != true)
        .filter_map(|d| d["id"].as_u64())
        .filter(|id| Some(*id) != newer["id"].as_u64())
        .collect();
    for id in earlier {
        let last = s.statuses.iter().rev().find(|(d, _)| *d == id).map(|(_, v)| v["state"].clone());
        if last == Some(json!("success")) {
            let status_id = next_id(s);
            s.statuses.push((id, json!({ "id": status_id, "state": "inactive" })));
        }
    }
}

fn dispatch(s: &mut State, repo: &str, workflow: &str, body: Value) -> (StatusCode, Value) {
    let id = next_id(s);
    let outcome = s.script.pop_front().unwrap_or(RunOutcome::Succeed);
    let run = Run {
        id,
        workflow: workflow.to_owned(),
        git_ref: body["ref"].as_str().unwrap_or_default().to_owned(),
        inputs: body.get("inputs").cloned().unwrap_or(json!({})),
        outcome,
        reads: 0,
    };
    s.runs.push(run);
    if body["return_run_details"] == true {
        let details = json!({
            "workflow_run_id": id,
            "run_url": format!("https://api.github.com/repos/{repo}/actions/runs/{id}"),
            "html_url": format!("https://github.com/{repo}/actions/runs/{id}"),
        });
        return (StatusCode::OK, details);
    }
    (StatusCode::NO_CONTENT, Value::Null)
}

fn get_run(s: &mut State, repo: &str, id: u64) -> (StatusCode, Value) {
    let Some(run) = s.runs.iter_mut().find(|r| r.id == id) else {
        return (StatusCode::NOT_FOUND, json!({ "message": "Not Found" }));
    };
    run.reads += 1;
    let (status, conclusion) = match (run.outcome, run.reads) {
        (_, 1) | (RunOutcome::Hang, _) => ("in_progress", Value::Null),
        (RunOutcome::Succeed, _) => ("completed", json!("success")),
        (RunOutcome::Fail, _) => ("completed", json!("failure")),
    };
    let body = json!({
        "id": run.id,
        "path": format!(".github/workflows/{}", run.workflow),
        "head_branch": run.git_ref,
        "status": status,
        "conclusion": conclusion,
        "html_url": format!("https://github.com/{repo}/actions/runs/{}", run.id),
    });
    (StatusCode::OK, body)
}
