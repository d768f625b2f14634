use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;

const REPO: &str = "repos/acme/shop";

async fn post(gh: &FakeGitHub, path: &str, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/{REPO}/{path}", gh.url))
        .header("authorization", "Bearer ghs_test")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn get(gh: &FakeGitHub, path: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(format!("{}/{REPO}/{path}", gh.url))
        .header("authorization", "Bearer ghs_test")
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn requests_are_checked_against_the_description() {
    let gh = FakeGitHub::start().await;
    let (status, deployment) = post(&gh, "deployments", json!({ "ref": "abc123", "environment": "staging" })).await;
    assert_eq!(status, 201);
    let id = deployment["id"].as_u64().unwrap();
    let bad = [
        ("deployments", json!({ "environment": "staging" })),
        (&format!("deployments/{id}/statuses"), json!({ "state": "done" })),
        ("deployments/not-a-number/statuses", json!({ "state": "success" })),
        ("deployments", json!({ "ref": "abc", "production_environment": "yes" })),
        ("actions/workflows/deploy.yml/dispatches", json!({ "inputs": {} })),
        ("pulls", json!({})),
    ];
    for (path, body) in bad {
        assert_eq!(post(&gh, path, body).await.0, 422, "{path}");
    }
    let reasons: Vec<String> = gh.violations().into_iter().map(|v| v.reason).collect();
    assert_eq!(reasons.len(), 6, "{reasons:#?}");
    assert!(reasons[0].contains("ref"), "{}", reasons[0]);
    assert!(reasons[1].contains("done"), "the state enum: {}", reasons[1]);
    assert!(reasons[2].contains("integer"), "{}", reasons[2]);
    assert!(reasons[5].contains("no path"), "{}", reasons[5]);
    let undeclared = get(&gh, "actions/runs/1?colour=blue").await;
    assert_eq!(undeclared.0, 422);
    assert_eq!(gh.operations(), ["repos/create-deployment"]);
}

#[tokio::test]
async fn a_success_makes_earlier_deployments_inactive() {
    let gh = FakeGitHub::start().await;
    let mut ids = Vec::new();
    for sha in ["a1", "b2"] {
        let (_, d) =
            post(&gh, "deployments", json!({ "ref": sha, "environment": "staging", "production_environment": false }))
                .await;
        let id = d["id"].as_u64().unwrap();
        for state in ["queued", "in_progress", "success"] {
            let (status, _) = post(
                &gh,
                &format!("deployments/{id}/statuses"),
                json!({ "state": state, "log_url": "https://gantry/x" }),
            )
            .await;
            assert_eq!(status, 201);
        }
        ids.push(id);
    }
    assert_eq!(gh.states(ids[0]), ["queued", "in_progress", "success", "inactive"]);
    assert_eq!(gh.states(ids[1]), ["queued", "in_progress", "success"]);
    assert_eq!(post(&gh, "deployments/999/statuses", json!({ "state": "success" })).await.0, 404);
    // Production deployments are left as they are: GitHub does this outside production only.
    let mut prod = Vec::new();
    for sha in ["c3", "d4"] {
        let (_, d) =
            post(&gh, "deployments", json!({ "ref": sha, "environment": "prod", "production_environment": true }))
                .await;
        let id = d["id"].as_u64().unwrap();
        post(&gh, &format!("deployments/{id}/statuses"), json!({ "state": "success" })).await;
        prod.push(id);
    }
    assert_eq!(gh.states(prod[0]), ["success"]);
}

#[tokio::test]
async fn dispatched_runs_end_as_scripted() {
    let gh = FakeGitHub::start().await;
    gh.script([RunOutcome::Fail, RunOutcome::Hang]);
    let mut ends = Vec::new();
    for _ in 0..3 {
        let (status, details) = post(
            &gh,
            "actions/workflows/smoke.yml/dispatches",
            json!({ "ref": "main", "inputs": { "GANTRY_ENVIRONMENT": "staging" }, "return_run_details": true }),
        )
        .await;
        assert_eq!(status, 200);
        let run = details["workflow_run_id"].as_u64().unwrap();
        assert_eq!(get(&gh, &format!("actions/runs/{run}")).await.1["status"], "in_progress");
        ends.push(get(&gh, &format!("actions/runs/{run}")).await.1);
    }
    let conclusions: Vec<&Value> = ends.iter().map(|r| &r["conclusion"]).collect();
    assert_eq!(conclusions, [&json!("failure"), &Value::Null, &json!("success")]);
    assert_eq!(ends[1]["status"], "in_progress", "a hung run never completes");
    assert_eq!(gh.runs()[0].inputs, json!({ "GANTRY_ENVIRONMENT": "staging" }));
    let (status, _) = post(&gh, "actions/workflows/smoke.yml/dispatches", json!({ "ref": "main" })).await;
    assert_eq!(status, 204, "without return_run_details, an empty answer");
}

#[tokio::test]
async fn faults_tokens_and_rate_limits() {
    let gh = FakeGitHub::start().await;
    gh.require_token("ghs_test");
    let anonymous = reqwest::Client::new()
        .post(format!("{}/{REPO}/deployments", gh.url))
        .json(&json!({ "ref": "a" }))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    gh.faults([
        Fault::ServerError,
        Fault::RateLimited,
        Fault::SecondaryRateLimited,
        Fault::Slow(Duration::from_millis(300)),
    ]);
    assert_eq!(post(&gh, "deployments", json!({ "ref": "a" })).await.0, 502);
    let limited = reqwest::Client::new()
        .post(format!("{}/{REPO}/deployments", gh.url))
        .header("authorization", "Bearer ghs_test")
        .json(&json!({ "ref": "a" }))
        .send()
        .await
        .unwrap();
    assert_eq!((limited.status().as_u16(), limited.headers()["x-ratelimit-remaining"].to_str().unwrap()), (403, "0"));
    // The primary limit lasts until its reset, as GitHub's does: every request meanwhile is
    // refused the same way, and counted as early.
    let reset: u64 = limited.headers()["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(reset > now, "{reset} is in the future");
    assert_eq!(post(&gh, "deployments", json!({ "ref": "a" })).await.0, 403);
    assert_eq!(gh.early_requests(), 1);
    tokio::time::sleep(Duration::from_secs(reset - now)).await;
    assert_eq!(post(&gh, "deployments", json!({ "ref": "a" })).await.0, 429);
    let started = Instant::now();
    assert_eq!(post(&gh, "deployments", json!({ "ref": "a" })).await.0, 201);
    assert!(started.elapsed() >= Duration::from_millis(300), "a slow answer");
    assert_eq!(gh.deployments().len(), 1, "faulted requests create nothing");
}
