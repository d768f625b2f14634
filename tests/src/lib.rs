//! Support for the end-to-end tests in tests/: real processes the tests drive.

pub mod app;
pub mod cosign;
pub mod dockerd;
pub mod haproxy;
pub mod otlp;
pub mod pki;
pub mod prices;
pub mod probes;
pub mod receiver;
pub mod recorder;
pub mod registry;
pub mod routed;
pub mod signed;

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// POSTs a GraphQL request to `url`, with `token` as the bearer when given; the status and
/// the JSON body (`null` when the body is not JSON).
pub async fn post_graphql(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let mut req = http.post(url).json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Polls `check` until it gives `Some`, for up to `limit`; panics naming `what` otherwise.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The AWS configuration of every client a test builds: the local emulator
/// (`AWS_ENDPOINT_URL`, 127.0.0.1:4566 by default), its region and static test credentials,
/// so no request ever leaves loopback.
pub fn emulator() -> aws_config::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned());
    let credentials = aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "gantry-tests");
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(credentials))
        .build()
}

/// Stores `value` in the emulator's Secrets Manager as `name`; the reference to give a target.
pub async fn put_secret(name: &str, value: &str) -> String {
    let client = aws_sdk_secretsmanager::Client::new(&emulator());
    client.create_secret().name(name).secret_string(value).send().await.expect("a secret in the emulator");
    format!("secretsmanager:{name}")
}

/// Stores `value` in the emulator's SSM Parameter Store as a SecureString at `path`; the
/// reference to give a target.
pub async fn put_parameter(path: &str, value: &str) -> String {
    let client = aws_sdk_ssm::Client::new(&emulator());
    client
        .put_parameter()
        .name(path)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("a parameter in the emulator");
    format!("ssm:{path}")
}

/// The artifact of each deployment of a promotion, after checking that each is named by the
/// sha256 of its content and that the promotion's `deployment_result` evidence names it.
pub async fn artifacts(app: &app::TestApp, promotion: &str) -> Vec<serde_json::Value> {
    let q = "query($id: ID!) { promotion(id: $id) { deployments { artifact { kind sha256 size content } } }
        evidence(promotionId: $id) { kind payload } }";
    let found = app.ok(q, serde_json::json!({ "id": promotion })).await;
    let result = found["evidence"].as_array().unwrap().iter().find(|e| e["kind"] == "deployment_result").cloned();
    let named: Vec<serde_json::Value> = result
        .map(|r| r["payload"].as_array().unwrap().iter().map(|d| d["artifact"]["sha256"].clone()).collect())
        .unwrap_or_default();
    let deployments = found["promotion"]["deployments"].as_array().unwrap().clone();
    deployments
        .into_iter()
        .map(|d| {
            let artifact = d["artifact"].clone();
            let content = artifact["content"].as_str().unwrap_or_default();
            let digest = gantry_domain::values::Digest::of(content.as_bytes()).to_string();
            assert_eq!(artifact["sha256"], digest.as_str(), "named by its content: {artifact:#}");
            assert_eq!(artifact["size"].as_u64(), Some(content.len() as u64));
            assert!(named.contains(&artifact["sha256"]), "the evidence names it: {named:?}");
            artifact
        })
        .collect()
}

/// The environment once `release` runs there again after a rollback, with the hold the
/// rollback set: `{ currentRelease { id } hold { reason } }`.
pub async fn rolled_back_to(app: &app::TestApp, environment: &str, release: &str) -> Value {
    let q = "query($e: ID!) { environment(id: $e) { currentRelease { id } hold { reason } } }";
    eventually(Duration::from_secs(30), "the rollback", || async {
        let env = app.ok(q, json!({ "e": environment })).await["environment"].clone();
        (env["currentRelease"]["id"] == release && env["hold"].is_object()).then_some(env)
    })
    .await
}
