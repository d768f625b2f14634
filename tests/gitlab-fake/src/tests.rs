use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;

const PROJECT: &str = "api/v4/projects/acme%2Fshop";
const SHA: &str = "4c8d2a9e1f0b3c5d7e9f1a2b3c4d5e6f7a8b9c0d";

async fn call(gl: &FakeGitLab, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}/{PROJECT}/{path}", gl.url));
    req = req.header("private-token", "glpat-test");
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn post(gl: &FakeGitLab, path: &str, body: Value) -> (u16, Value) {
    call(gl, reqwest::Method::POST, path, Some(body)).await
}

#[tokio::test]
async fn requests_are_checked_against_the_description() {
    let gl = FakeGitLab::start("glpat-test").await;
    let (status, _) = post(&gl, &format!("statuses/{SHA}"), json!({ "state": "running", "name": "gantry/dev" })).await;
    assert_eq!(status, 200);
    let bad = [
        (format!("statuses/{SHA}"), json!({ "state": "done" })),
        (format!("statuses/{SHA}"), json!({ "name": "no state" })),
        ("pipeline".to_owned(), json!({ "variables": [] })),
        (
            "pipeline".to_owned(),
            json!({ "ref": "main", "variables": [{ "key": "A", "value": "1", "variable_type": "secret" }] }),
        ),
        ("pipelines".to_owned(), json!({ "ref": "main" })),
    ];
    for (path, body) in bad {
        let (status, _) = post(&gl, &path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}");
    }
    let (status, _) = call(&gl, reqwest::Method::GET, "pipelines/not-a-number", None).await;
    assert_eq!(status, 400);
    assert_eq!(gl.violations().len(), 6, "{:#?}", gl.violations());
    assert_eq!(gl.operations(), ["postApiV4ProjectsIdStatusesSha"]);
}

#[tokio::test]
async fn a_finished_status_cannot_move_and_a_token_is_required() {
    let gl = FakeGitLab::start("glpat-test").await;
    for state in ["pending", "running", "success"] {
        let (status, _) = post(&gl, &format!("statuses/{SHA}"), json!({ "state": state, "name": "gantry/dev" })).await;
        assert_eq!(status, 200, "{state}");
    }
    let (status, body) =
        post(&gl, &format!("statuses/{SHA}"), json!({ "state": "failed", "name": "gantry/dev" })).await;
    assert_eq!((status, body["message"].as_str()), (400, Some("Cannot transition status via :failed from :success")));
    let states: Vec<String> = gl.statuses().into_iter().map(|s| s.state).collect();
    assert_eq!(states, ["pending", "running", "success"]);
    assert_eq!(gl.statuses()[0].project, "acme/shop");
    let res = reqwest::Client::new()
        .post(format!("{}/{PROJECT}/statuses/{SHA}", gl.url))
        .header("private-token", "wrong")
        .json(&json!({ "state": "pending" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
}

#[tokio::test]
async fn pipelines_run_as_scripted() {
    let gl = FakeGitLab::start("glpat-test").await;
    gl.script([PipelineOutcome::Fail, PipelineOutcome::Hang]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let vars = json!([{ "key": "GANTRY_ENVIRONMENT", "value": "staging" }]);
        let (status, created) = post(&gl, "pipeline", json!({ "ref": "v1.0.0", "variables": vars })).await;
        assert_eq!((status, created["status"].as_str()), (201, Some("created")));
        ids.push(created["id"].as_u64().unwrap());
    }
    let read = |id: u64| {
        let gl = gl.clone();
        async move { call(&gl, reqwest::Method::GET, &format!("pipelines/{id}"), None).await.1["status"].clone() }
    };
    for id in &ids {
        assert_eq!(read(*id).await, "running");
    }
    assert_eq!(
        (read(ids[0]).await, read(ids[1]).await, read(ids[2]).await),
        (json!("failed"), json!("running"), json!("success"))
    );
    let first = &gl.pipelines()[0];
    assert_eq!((first.git_ref.as_str(), first.variables[0].1.as_str()), ("v1.0.0", "staging"));
    let (status, _) = call(&gl, reqwest::Method::GET, "pipelines/9999", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn faults_come_in_order() {
    let gl = FakeGitLab::start("glpat-test").await;
    gl.faults([Fault::ServerError, Fault::RateLimited, Fault::Slow(Duration::from_millis(300))]);
    let body = json!({ "state": "pending" });
    assert_eq!(post(&gl, &format!("statuses/{SHA}"), body.clone()).await.0, 502);
    let limited = reqwest::Client::new()
        .post(format!("{}/{PROJECT}/statuses/{SHA}", gl.url))
        .header("private-token", "glpat-test")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!((limited.status().as_u16(), limited.headers()["retry-after"].to_str().unwrap()), (429, "1"));
    let started = Instant::now();
    assert_eq!(post(&gl, &format!("statuses/{SHA}"), body).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}
