//! Spawns the API on a random loopback port over a fresh table on the local emulator,
//! with every DynamoDB request recorded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_dynamodb::types::AttributeValue;
use gantry_domain::values::Digest;
use gantry_platform::{AppState, Config, LogFormat};
use gantry_store::DynamoRepository;
use serde_json::{Value, json};

/// Records the operation of every request the SDK sends (`DynamoDB_20120810.Query`, ...).
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<String>>>);

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "Recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("?")
            .to_owned();
        self.0
            .lock()
            .unwrap()
            .push(target.trim_start_matches("DynamoDB_20120810.").to_owned());
        Ok(())
    }
}

impl Recorder {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    /// A client without the recorder, for the test's own reads and writes.
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub repo: DynamoRepository,
    pub table: String,
    pub requests: Recorder,
}

fn dynamodb_client(recorder: Option<Recorder>) -> aws_sdk_dynamodb::Client {
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned());
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "gantry-tests"));
    if let Some(recorder) = recorder {
        config = config.interceptor(recorder);
    }
    aws_sdk_dynamodb::Client::from_conf(config.build())
}

impl TestApp {
    /// A fresh table and a running API on it.
    pub async fn spawn() -> Self {
        let table = format!("gantry-test-{}", uuid::Uuid::new_v4().simple());
        let dynamodb = dynamodb_client(None);
        gantry_store::table::create_table(&dynamodb, &table)
            .await
            .expect("create the test table: is the emulator running? (make test starts it)");
        let requests = Recorder::default();
        let config = Config {
            table: table.clone(),
            log_format: LogFormat::Pretty,
        };
        let state = AppState::with_dynamodb(config, dynamodb_client(Some(requests.clone())));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, gantry_api::router(state))
                .await
                .unwrap()
        });
        let repo = DynamoRepository::new(dynamodb.clone(), table.clone());
        Self {
            url,
            http: reqwest::Client::new(),
            dynamodb,
            repo,
            table,
            requests,
        }
    }

    /// The whole GraphQL response.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let res = self
            .http
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request the API");
        assert_eq!(res.status(), 200, "GraphQL answers 200 even for errors");
        res.json().await.expect("JSON response")
    }

    /// `data`, after checking there were no errors.
    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        let res = self.gql(query, variables).await;
        assert!(res.get("errors").is_none(), "unexpected errors: {res:#}");
        res["data"].clone()
    }

    /// The first error's `extensions.code`, after checking there was one, and its message.
    pub async fn error(&self, query: &str, variables: Value) -> (String, String) {
        let res = self.gql(query, variables).await;
        let err = &res["errors"][0];
        assert!(err.is_object(), "expected an error: {res:#}");
        let code = err["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("error without code: {res:#}"));
        (
            code.to_owned(),
            err["message"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// Asserts `query` fails with `code` and leaves the table exactly as it was.
    pub async fn assert_rejected(&self, code: &str, query: &str, variables: Value) -> String {
        let before = self.snapshot().await;
        let (got, message) = self.error(query, variables).await;
        assert_eq!(got, code, "wrong code; message: {message}");
        assert!(!message.is_empty(), "errors carry a message");
        assert_eq!(
            self.snapshot().await,
            before,
            "a rejected request must write nothing ({code}: {message})"
        );
        message
    }

    /// Every item in the test's table, in key order. Test-only: request paths never scan.
    pub async fn snapshot(&self) -> Vec<BTreeMap<String, Value>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .dynamodb
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for item in out.items.unwrap_or_default() {
                items.push(
                    item.into_iter()
                        .map(|(k, v)| (k, canonical(&v)))
                        .collect::<BTreeMap<_, _>>(),
                );
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        items.sort_by_key(|item| (item["PK"].to_string(), item["SK"].to_string()));
        items
    }

    pub async fn create_component(&self, name: &str) -> String {
        let data = self
            .ok(
                "mutation($input: CreateComponentInput!) { createComponent(input: $input) { id } }",
                json!({ "input": { "name": name, "imageRepository": format!("registry.example.com/acme/{name}") } }),
            )
            .await;
        data["createComponent"]["id"].as_str().unwrap().to_owned()
    }

    /// Maps `tag` of a component to `digest`; semver and channel follow from the tag.
    pub async fn add_version(&self, component_id: &str, tag: &str, digest: &str) -> Value {
        let data = self
            .ok(
                "mutation($input: CreateVersionMapInput!) { createVersionMap(input: $input) { id tag digest semver channel } }",
                json!({ "input": { "componentId": component_id, "tag": tag, "digest": digest } }),
            )
            .await;
        data["createVersionMap"].clone()
    }

    pub async fn create_environment(&self, name: &str, order: i64) -> String {
        let data = self
            .ok(
                "mutation($input: CreateEnvironmentInput!) { createEnvironment(input: $input) { id } }",
                json!({ "input": { "name": name, "order": order } }),
            )
            .await;
        data["createEnvironment"]["id"].as_str().unwrap().to_owned()
    }

    pub async fn create_release(&self, name: &str, components: Value) -> Value {
        let data = self
            .ok(
                "mutation($input: CreateReleaseInput!) { createRelease(input: $input) { id name status components { componentId componentName version digest channel tag } } }",
                json!({ "input": { "name": name, "components": components } }),
            )
            .await;
        data["createRelease"].clone()
    }
}

/// A well-formed digest derived from a label, so tests can tell digests apart.
pub fn digest(label: &str) -> String {
    Digest::of(label.as_bytes()).to_string()
}

/// An attribute value as JSON with sorted keys, so snapshots compare equal when the data is.
fn canonical(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::L(items) => json!({ "L": items.iter().map(canonical).collect::<Vec<_>>() }),
        AttributeValue::M(map) => {
            json!({ "M": map.iter().map(|(k, v)| (k.clone(), canonical(v))).collect::<serde_json::Map<_, _>>() })
        }
        other => json!({ "OTHER": format!("{other:?}") }),
    }
}
