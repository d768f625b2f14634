//! The deployed stack, as `scripts/deploy-local.sh up` left it: its URLs, token and
//! outputs from the file `GANTRY_STACK_ENV` names (`make test` deploys `gantry-test`), or
//! from `.run/stack/gantry-local.env` (`make deploy-local`), and clients for the emulator.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

pub struct Stack {
    pub api_url: String,
    pub webhooks_url: String,
    pub token: String,
    outputs: HashMap<String, String>,
    pub http: reqwest::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
}

impl Stack {
    pub async fn load() -> Self {
        let path = std::env::var("GANTRY_STACK_ENV")
            .unwrap_or_else(|_| format!("{}/../.run/stack/gantry-local.env", env!("CARGO_MANIFEST_DIR")));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!("{path} is missing: deploy the stack first (`make deploy-local`; `make test` does it)")
        });
        let outputs: HashMap<String, String> =
            text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        let sdk = gantry_tests::emulator();
        Self {
            api_url: outputs["API_URL"].clone(),
            webhooks_url: outputs["WEBHOOKS_URL"].clone(),
            token: outputs["TOKEN"].clone(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            lambda: aws_sdk_lambda::Client::new(&sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(&sdk),
            outputs,
        }
    }

    /// A stack output (`EventsQueueUrl`, `IngestFunctionName`, …).
    pub fn output(&self, name: &str) -> &str {
        self.outputs.get(name).unwrap_or_else(|| panic!("the stack has no output {name}"))
    }

    /// POSTs a GraphQL request to the api function's URL with `token`; status and body.
    pub async fn gql_as(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        gantry_tests::post_graphql(&self.http, &format!("{}graphql", self.api_url), token, query, variables).await
    }

    /// The `data` of a request that must succeed as the admin.
    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.gql_as(Some(&self.token), query, variables).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{query}: {body:#}");
        body["data"].clone()
    }

    /// A component `name` of `image` with version 1.0.0 at `digest`, an environment first in
    /// the promotion path whose one target is `target` (given the component's id), and a
    /// READY release of that version: (environment, release).
    pub async fn estate(
        &self,
        name: &str,
        (image, digest): (&str, &str),
        target: impl Fn(&Value) -> Value,
    ) -> (Value, Value) {
        let component = self
            .ok(
                "mutation($input: CreateComponentInput!) { createComponent(input: $input) { id } }",
                json!({ "input": { "name": name, "imageRepository": image } }),
            )
            .await["createComponent"]["id"]
            .clone();
        self.ok(
            "mutation($c: ID!, $d: String!) { createVersionMap(input: { componentId: $c, tag: \"1.0.0\", digest: $d }) { semver } }",
            json!({ "c": component, "d": digest }),
        )
        .await;
        let environment = self
            .ok(
                "mutation($n: String!, $o: Int!) { createEnvironment(input: { name: $n, order: $o }) { id } }",
                json!({ "n": unique(name), "o": self.first_order().await }),
            )
            .await["createEnvironment"]["id"]
            .clone();
        self.ok(
            "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }",
            json!({ "e": environment, "t": target(&component) }),
        )
        .await;
        let release = self
            .ok(
                "mutation($n: String!, $c: ID!) { createRelease(input: { name: $n, components: [{ componentId: $c, version: \"1.0.0\" }] }) { id } }",
                json!({ "n": unique(name), "c": component }),
            )
            .await["createRelease"]["id"]
            .clone();
        self.ok(
            "mutation($id: ID!) { updateRelease(id: $id, input: { status: READY }) { status } }",
            json!({ "id": release }),
        )
        .await;
        (environment, release)
    }

    /// Requests the promotion of `release` to `environment` and waits until it settles.
    pub async fn promote(&self, release: &Value, environment: &Value) -> Value {
        let promotion = self
            .ok(
                "mutation($r: ID!, $e: ID!) { requestPromotion(releaseId: $r, environmentId: $e) { id } }",
                json!({ "r": release, "e": environment }),
            )
            .await["requestPromotion"]["id"]
            .clone();
        eventually(Duration::from_secs(120), "the promotion to settle", || async {
            let q = "query($id: ID!) { promotion(id: $id) { status reason deployments { state message } } }";
            let p = self.ok(q, json!({ "id": promotion })).await["promotion"].clone();
            (!["APPROVED", "DEPLOYING", "PENDING_APPROVAL"].contains(&p["status"].as_str().unwrap_or(""))).then_some(p)
        })
        .await
    }

    /// An order that puts a new environment first in the promotion path, where a promotion
    /// needs no earlier deployment.
    pub async fn first_order(&self) -> i64 {
        let data = self.ok("{ environments { order } }", json!({})).await;
        let lowest = data["environments"].as_array().unwrap().iter().filter_map(|e| e["order"].as_i64()).min();
        let order = lowest.unwrap_or(400_001).min(400_001) - 1;
        assert!(order >= 0, "the stack's promotion path is full: redeploy it");
        order
    }

    /// Every log message of `function` in the emulator's CloudWatch Logs.
    pub async fn function_logs(&self, function: &str) -> Vec<String> {
        let group = format!("/aws/lambda/{function}");
        let mut messages = Vec::new();
        let mut next = None;
        loop {
            let out = match self.logs.filter_log_events().log_group_name(&group).set_next_token(next).send().await {
                Ok(out) => out,
                Err(_) => return messages, // no invocation has logged yet
            };
            messages.extend(out.events.unwrap_or_default().into_iter().filter_map(|e| e.message));
            next = out.next_token;
            if next.is_none() {
                return messages;
            }
        }
    }
}

/// Held by each test that promotes from the front of the promotion path, from creating its
/// environment until its promotion settles: two at once would each put an environment first,
/// and the later would stand before the earlier, whose promotion then waits on it.
pub static FRONT_OF_PATH: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A short unique suffix, so tests sharing one stack never collide.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// An environment order no other test of the stack takes, late in the promotion path
/// (tests that promote go first: see `Stack::first_order`).
pub fn unique_order() -> i64 {
    (uuid::Uuid::new_v4().as_u128() % 500_000) as i64 + 500_000
}

pub use gantry_tests::eventually;
