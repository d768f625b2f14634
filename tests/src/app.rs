//! Spawns the API on a random loopback port over a fresh table on the local emulator,
//! with every DynamoDB request recorded.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use gantry_domain::values::Digest;
use gantry_platform::{AppState, Config};
use gantry_store::DynamoRepository;
use serde_json::{Value, json};

pub use crate::recorder::{Recorder, Refuse};

pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    /// A client without the recorder, for the test's own reads and writes.
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub repo: DynamoRepository,
    pub table: String,
    pub requests: Recorder,
    /// The SQS requests the app sends.
    pub sqs_requests: Recorder,
    /// A client without the recorder, for the test's own queue reads.
    pub sqs: aws_sdk_sqs::Client,
    /// This test's own events queue (and its dead-letter queue), as `infra/queues.json` defines them.
    pub events_queue: String,
    /// This test's own deploy-jobs queue.
    pub deploy_queue: String,
    /// This test's own notifications queue.
    pub notify_queue: String,
    /// An admin's token, which `gql` and friends send.
    pub token: String,
    /// The running app's state, for driving workers by hand.
    pub state: std::sync::Arc<AppState>,
}

/// The HS256 key of the tests' tokens.
pub const JWT_SECRET: &str = "test-only-jwt-secret-0123456789abcdef";
/// The OIDC issuer whose keys are `tests/fixtures/keys`.
pub const OIDC_ISSUER: &str = "https://idp.example.test";

/// A token Gantry would issue: signed with the test key, for `subject` with `roles`.
pub fn token(subject: &str, roles: &[gantry_domain::access::Role]) -> String {
    gantry_auth::LocalIssuer::new(JWT_SECRET.as_bytes(), "gantry", "gantry")
        .sign(subject, roles, &[], chrono::Utc::now() + chrono::Duration::hours(1), None)
        .unwrap()
}

/// A development data key; deployments read theirs from Secrets Manager.
const DATA_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The dockerd the Docker tests deploy to: `make test` starts one and says where.
pub fn docker_host() -> String {
    std::env::var("GANTRY_TEST_DOCKER_HOST")
        .unwrap_or_else(|_| format!("unix://{}/../.run/docker/docker.sock", env!("CARGO_MANIFEST_DIR")))
}

pub fn ecs_client() -> aws_sdk_ecs::Client {
    aws_sdk_ecs::Client::new(&crate::emulator())
}

fn sqs_client(recorder: Option<Recorder>) -> aws_sdk_sqs::Client {
    let mut config = aws_sdk_sqs::config::Builder::from(&crate::emulator());
    if let Some(recorder) = recorder {
        config = config.interceptor(recorder);
    }
    aws_sdk_sqs::Client::from_conf(config.build())
}

/// Creates this test's queues from `infra/queues.json`, names prefixed; returns the URLs of
/// the ones with a dead-letter queue, by their name in the file.
async fn create_queues(sqs: &aws_sdk_sqs::Client, prefix: &str) -> std::collections::HashMap<String, String> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let defs: Value = serde_json::from_str(include_str!("../../infra/queues.json")).unwrap();
    let mut main = std::collections::HashMap::new();
    for q in defs["Queues"].as_array().unwrap() {
        let mut create = sqs.create_queue().queue_name(format!("{prefix}-{}", q["Name"].as_str().unwrap()));
        for (k, v) in q["Attributes"].as_object().unwrap() {
            create = create.attributes(QueueAttributeName::from(k.as_str()), v.as_str().unwrap());
        }
        if let Some(dl) = q.get("DeadLetter") {
            let dlq = sqs
                .get_queue_url()
                .queue_name(format!("{prefix}-{}", dl["Queue"].as_str().unwrap()))
                .send()
                .await
                .unwrap();
            let arn = sqs
                .get_queue_attributes()
                .queue_url(dlq.queue_url.unwrap())
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .unwrap()
                .attributes
                .unwrap()[&QueueAttributeName::QueueArn]
                .clone();
            let policy = json!({ "deadLetterTargetArn": arn, "maxReceiveCount": dl["MaxReceiveCount"] }).to_string();
            create = create.attributes(QueueAttributeName::RedrivePolicy, policy);
        }
        let url = create.send().await.expect("create a test queue").queue_url.unwrap();
        if q.get("DeadLetter").is_some() {
            main.insert(q["Name"].as_str().unwrap().to_owned(), url);
        }
    }
    main
}

fn dynamodb_client(recorder: Option<Recorder>) -> aws_sdk_dynamodb::Client {
    let mut config = aws_sdk_dynamodb::config::Builder::from(&crate::emulator());
    if let Some(recorder) = recorder {
        config = config.interceptor(recorder);
    }
    aws_sdk_dynamodb::Client::from_conf(config.build())
}

/// Sends the app's logs (INFO and up) to the test harness, which shows them for a test
/// that fails and keeps them out of the way otherwise.
fn capture_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::INFO)
        .compact()
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

/// The Ed25519 job-signing key (PKCS#8, base64 of the DER) tests sign agent jobs with.
pub const JOB_SIGNING_KEY: &str = "MC4CAQAwBQYDK2VwBCIEILourV6HnjQ51gcoGFyW6y2hsJ8K7xhSDlnzLiAA7i4S";

/// The Ed25519 key tests sign evidence with (PKCS#8, base64 of the DER).
pub const EVIDENCE_SIGNING_KEY: &str = "MC4CAQAwBQYDK2VwBCIEIJp6kk5OK8iO6eB9JE/jUFMwL10HqFdo5z2ep2diOgd/";

/// The configuration tests run with, over `table` and the two queues; `overrides` replace
/// or add settings.
pub fn test_config(table: &str, events_queue: &str, deploy_queue: &str, overrides: &[(&str, &str)]) -> Config {
    Config::from_lookup(|name| {
        if let Some((_, value)) = overrides.iter().find(|(n, _)| *n == name) {
            return Some((*value).to_owned());
        }
        let value = match name {
            "GANTRY_TABLE" => table,
            "GANTRY_EVENTS_QUEUE_URL" => events_queue,
            "GANTRY_DEPLOY_QUEUE_URL" => deploy_queue,
            // Tests that use notifications name their queue in `overrides`.
            "GANTRY_NOTIFY_QUEUE_URL" => deploy_queue,
            // Stalled rollouts give up quickly in tests.
            "GANTRY_DEPLOY_TIMEOUT_SECONDS" => "4",
            // Steps waiting for a CI run check it every second.
            "GANTRY_STEP_POLL_SECONDS" => "1",
            "GANTRY_DATA_KEY" => DATA_KEY,
            "GANTRY_JWT_SECRET" => JWT_SECRET,
            "GANTRY_EVIDENCE_KEY" => "test-only-evidence-key-0123456789abcdef",
            "GANTRY_JOB_SIGNING_KEY" => JOB_SIGNING_KEY,
            "GANTRY_EVIDENCE_SIGNING_KEY" => EVIDENCE_SIGNING_KEY,
            "GANTRY_OIDC_ISSUER" => OIDC_ISSUER,
            "GANTRY_OIDC_AUDIENCE" => "gantry-api",
            "GANTRY_OIDC_JWKS" => include_str!("../fixtures/keys/jwks.json"),
            _ => return None,
        };
        Some(value.to_owned())
    })
    .unwrap()
}

impl TestApp {
    /// A fresh table and queues, and the API and webhook routers running on them.
    pub async fn spawn() -> Self {
        Self::start(false, &[]).await
    }

    /// As [`TestApp::spawn`], with settings replaced or added.
    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        Self::start(false, overrides).await
    }

    /// As [`TestApp::spawn`], with the ingest worker polling the events queue, as the
    /// devserver runs it.
    pub async fn spawn_with_workers() -> Self {
        Self::start(true, &[]).await
    }

    /// As [`TestApp::spawn_with_workers`], with settings replaced or added.
    pub async fn spawn_with_workers_and(overrides: &[(&str, &str)]) -> Self {
        Self::start(true, overrides).await
    }

    async fn start(workers: bool, overrides: &[(&str, &str)]) -> Self {
        capture_logs();
        let table = format!("gantry-test-{}", uuid::Uuid::new_v4().simple());
        let dynamodb = dynamodb_client(None);
        gantry_store::table::create_table(&dynamodb, &table)
            .await
            .expect("create the test table: is the emulator running? (make test starts it)");
        let sqs = sqs_client(None);
        let queues = create_queues(&sqs, &table).await;
        let events_queue = queues["gantry-events"].clone();
        let deploy_queue = queues["gantry-deploy-jobs"].clone();
        let (requests, sqs_requests) = (Recorder::default(), Recorder::default());
        let notify_queue = queues["gantry-notifications"].clone();
        let overrides: Vec<(&str, &str)> =
            overrides.iter().copied().chain([("GANTRY_NOTIFY_QUEUE_URL", notify_queue.as_str())]).collect();
        let config = test_config(&table, &events_queue, &deploy_queue, &overrides);
        let keys = std::sync::Arc::new(gantry_secrets::Secrets::new(config.key_env.clone(), &crate::emulator()));
        let state = AppState::with_stores(
            config.clone(),
            (dynamodb_client(Some(requests.clone())), sqs_client(Some(sqs_requests.clone()))),
            gantry_targets::from_sdk(&crate::emulator(), config.driver_settings()),
            keys,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        if workers {
            let worker = state.clone();
            tokio::spawn(async move {
                let queue = worker.events.clone();
                queue.poll(|event| gantry_ingest::handle(worker.clone(), event)).await;
            });
            let deployer = state.clone();
            tokio::spawn(async move {
                let queue = deployer.deploy_jobs.clone();
                queue.poll(|event| gantry_deployer::handle(deployer.clone(), event)).await;
            });
            let notifier = state.clone();
            tokio::spawn(async move {
                let queue = notifier.notify_jobs.clone();
                queue.poll(|event| gantry_notifier::handle(notifier.clone(), event)).await;
            });
        }
        let app = gantry_api::router(state.clone()).merge(gantry_webhooks::router(state.clone()));
        let header_timeout = state.config.request_timeout();
        tokio::spawn(gantry_platform::serve::serve(listener, app, header_timeout, std::future::pending()));
        let repo = DynamoRepository::new(dynamodb.clone(), table.clone());
        Self {
            url,
            http: reqwest::Client::new(),
            dynamodb,
            repo,
            table,
            requests,
            sqs_requests,
            sqs,
            events_queue,
            deploy_queue,
            notify_queue,
            token: token("test-admin", &[gantry_domain::access::Role::Admin]),
            state,
        }
    }

    /// Another state over this app's table and queues, its settings replaced or added by
    /// `overrides` (another Gantry process, configured differently).
    pub fn state_with(&self, overrides: &[(&str, &str)]) -> std::sync::Arc<AppState> {
        let config = test_config(&self.table, &self.events_queue, &self.deploy_queue, overrides);
        let drivers = gantry_targets::from_sdk(&crate::emulator(), config.driver_settings());
        AppState::with_clients(config, dynamodb_client(None), sqs_client(None), drivers)
    }

    /// Another state over this app's table and queues whose table refuses every request that
    /// mentions `marker` (see [`Refuse`]).
    pub fn state_refusing(&self, marker: &'static str) -> std::sync::Arc<AppState> {
        let config = self.state.config.clone();
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(&crate::emulator()).interceptor(Refuse(marker));
        let drivers = gantry_targets::from_sdk(&crate::emulator(), config.driver_settings());
        AppState::with_clients(config, aws_sdk_dynamodb::Client::from_conf(dynamodb.build()), sqs_client(None), drivers)
    }

    /// A second state over this app's table and queues, with recorders of its own: for
    /// driving a worker whose requests are counted apart from the API's.
    pub fn worker_state(&self) -> (std::sync::Arc<AppState>, Recorder, Recorder) {
        let config = self.state.config.clone();
        self.worker_state_with(gantry_targets::from_sdk(&crate::emulator(), config.driver_settings()))
    }

    /// As [`Self::worker_state`], with `drivers` (a bench's stub engine).
    pub fn worker_state_with(
        &self,
        drivers: gantry_domain::deployments::Drivers,
    ) -> (std::sync::Arc<AppState>, Recorder, Recorder) {
        let (dynamodb, sqs) = (Recorder::default(), Recorder::default());
        let config = self.state.config.clone();
        let state = AppState::with_clients(
            config,
            dynamodb_client(Some(dynamodb.clone())),
            sqs_client(Some(sqs.clone())),
            drivers,
        );
        (state, dynamodb, sqs)
    }

    /// The whole GraphQL response, as the admin.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.gql_as(Some(&self.token), query, variables).await;
        assert_eq!(status, 200, "GraphQL answers 200 even for errors: {body}");
        body
    }

    /// Status and body of a GraphQL request with `token` (or none).
    pub async fn gql_as(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        crate::post_graphql(&self.http, &format!("{}/graphql", self.url), token, query, variables).await
    }

    /// `data`, after checking there were no errors.
    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        let mut res = self.gql(query, variables).await;
        assert!(res.get("errors").is_none(), "unexpected errors: {res:#}");
        res["data"].take()
    }

    /// The first error's `extensions.code`, after checking there was one, and its message.
    pub async fn error(&self, query: &str, variables: Value) -> (String, String) {
        let res = self.gql(query, variables).await;
        let err = &res["errors"][0];
        assert!(err.is_object(), "expected an error: {res:#}");
        let code = err["extensions"]["code"].as_str().unwrap_or_else(|| panic!("error without code: {res:#}"));
        (code.to_owned(), err["message"].as_str().unwrap_or_default().to_owned())
    }

    /// Asserts `query` fails with `code` and leaves the table exactly as it was.
    pub async fn assert_rejected(&self, code: &str, query: &str, variables: Value) -> String {
        let before = self.snapshot().await;
        let (got, message) = self.error(query, variables).await;
        assert_eq!(got, code, "wrong code; message: {message}");
        assert!(!message.is_empty(), "errors carry a message");
        assert_eq!(self.snapshot().await, before, "a rejected request must write nothing ({code}: {message})");
        message
    }

    /// Every item in the test's table, in key order. Test-only: request paths never scan.
    pub async fn snapshot(&self) -> Vec<BTreeMap<String, Value>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self.dynamodb.scan().table_name(&self.table).set_exclusive_start_key(start).send().await.unwrap();
            for item in out.items.unwrap_or_default() {
                items.push(item.into_iter().map(|(k, v)| (k, canonical(&v))).collect::<BTreeMap<_, _>>());
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        items.sort_by_key(|item| (item["PK"].to_string(), item["SK"].to_string()));
        items
    }

    /// The items of partition `pk` whose sort key begins with `prefix`, in key order, as
    /// stored (one page: a test's partitions are small).
    pub async fn items_under(
        &self,
        pk: &str,
        prefix: &str,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        use aws_sdk_dynamodb::types::AttributeValue::S;
        let query = self.dynamodb.query().table_name(&self.table);
        let query = query.key_condition_expression("PK = :pk AND begins_with(SK, :prefix)");
        let query = query.expression_attribute_values(":pk", S(pk.into()));
        let query = query.expression_attribute_values(":prefix", S(prefix.into()));
        query.send().await.unwrap().items.unwrap_or_default()
    }

    pub async fn create_component(&self, name: &str) -> String {
        self.create_component_with(
            json!({ "name": name, "imageRepository": format!("registry.example.com/acme/{name}") }),
        )
        .await
    }

    /// Creates a component from a full `CreateComponentInput`; returns its id.
    pub async fn create_component_with(&self, input: Value) -> String {
        let q = "mutation($input: CreateComponentInput!) { createComponent(input: $input) { id } }";
        let data = self.ok(q, json!({ "input": input })).await;
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

    /// Creates an environment from a full `CreateEnvironmentInput`; returns its id.
    pub async fn create_environment_with(&self, input: Value) -> String {
        let data = self
            .ok(
                "mutation($input: CreateEnvironmentInput!) { createEnvironment(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        data["createEnvironment"]["id"].as_str().unwrap().to_owned()
    }

    /// Creates a release of `components` and marks it READY; returns its id.
    pub async fn ready_release(&self, name: &str, components: Value) -> String {
        self.ready_release_with(json!({ "name": name, "components": components })).await
    }

    /// A release made from a whole `CreateReleaseInput`, moved to READY.
    pub async fn ready_release_with(&self, input: Value) -> String {
        let id = self.create_release_with(input).await["id"].as_str().unwrap().to_owned();
        self.ok(
            "mutation($id: ID!) { updateRelease(id: $id, input: { status: READY }) { status } }",
            json!({ "id": id }),
        )
        .await;
        id
    }

    pub async fn create_release(&self, name: &str, components: Value) -> Value {
        self.create_release_with(json!({ "name": name, "components": components })).await
    }

    pub async fn create_release_with(&self, input: Value) -> Value {
        let data = self
            .ok(
                "mutation($input: CreateReleaseInput!) { createRelease(input: $input) { id name status components { componentId componentName version digest channel tag } } }",
                json!({ "input": input }),
            )
            .await;
        data["createRelease"].clone()
    }
}

impl TestApp {
    /// Bodies of the messages waiting on this test's events queue (received and deleted).
    pub async fn drain_events(&self) -> Vec<Value> {
        let mut bodies = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.events_queue)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return bodies;
            }
            for m in messages {
                bodies.push(serde_json::from_str(m.body.as_deref().unwrap()).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(&self.events_queue)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// Creates a registry integration and returns `(id, webhook secret)`.
    pub async fn create_integration(&self, name: &str, kind: &str, url: &str) -> (String, String) {
        let data = self
            .ok(
                "mutation($input: CreateRegistryIntegrationInput!) { createRegistryIntegration(input: $input) { integration { id } webhookSecret } }",
                json!({ "input": { "name": name, "type": kind, "url": url } }),
            )
            .await;
        let created = &data["createRegistryIntegration"];
        (
            created["integration"]["id"].as_str().unwrap().to_owned(),
            created["webhookSecret"].as_str().unwrap().to_owned(),
        )
    }

    /// Posts a webhook body with headers; returns status and JSON body.
    /// Requests the promotion of `release` into `environment`: its `id` and `status`.
    pub async fn request_promotion(&self, release: &str, environment: &str) -> Value {
        let q = "mutation($r: ID!, $e: ID!) { requestPromotion(releaseId: $r, environmentId: $e) { id status } }";
        self.ok(q, json!({ "r": release, "e": environment })).await["requestPromotion"].clone()
    }

    /// Requests a promotion that needs no approval and waits until it has [`settled`].
    ///
    /// [`settled`]: TestApp::settled
    pub async fn promote(&self, release: &str, environment: &str) -> Value {
        let requested = self.request_promotion(release, environment).await;
        self.settled(requested["id"].as_str().unwrap()).await
    }

    /// The promotion once it is no longer approved or deploying (within a minute), with its
    /// deployments, and its release's record written after it (the release no longer
    /// `PROMOTING`: a settled promotion is saved first, its release moved just after).
    pub async fn settled(&self, promotion: &str) -> Value {
        let release = "query($id: ID!) { promotion(id: $id) { release { status } } }";
        crate::eventually(Duration::from_secs(60), "the promotion to settle", || async {
            let p = self.promotion(promotion).await;
            if ["APPROVED", "DEPLOYING"].contains(&p["status"].as_str().unwrap()) {
                return None;
            }
            let moved =
                self.ok(release, json!({ "id": promotion })).await["promotion"]["release"]["status"] != "PROMOTING";
            moved.then_some(p)
        })
        .await
    }

    /// A promotion's status and reason, with its deployments.
    pub async fn promotion(&self, id: &str) -> Value {
        let q = "query($id: ID!) { promotion(id: $id) { id status reason
            deployments { targetName type state attempt message } } }";
        self.ok(q, json!({ "id": id })).await["promotion"].clone()
    }

    /// The kinds of a promotion's evidence records, in chain order.
    pub async fn evidence_kinds(&self, promotion: &str) -> Vec<String> {
        let q = "query($p: ID!) { evidence(promotionId: $p) { kind } }";
        let found = self.ok(q, json!({ "p": promotion })).await["evidence"].clone();
        found.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
    }

    /// How many messages of a queue wait, and how many are in flight (received, not yet
    /// deleted or back), as SQS approximates them.
    pub async fn queue_depth(&self, queue: &str) -> (String, String) {
        use aws_sdk_sqs::types::QueueAttributeName::{
            ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible,
        };
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(ApproximateNumberOfMessages)
            .attribute_names(ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        let count = |a| attrs.get(&a).cloned().unwrap_or_default();
        (count(ApproximateNumberOfMessages), count(ApproximateNumberOfMessagesNotVisible))
    }

    pub async fn post_webhook(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.url)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

/// A captured sample from `tests/fixtures/samples`: its body, and its headers when it has them.
pub fn sample(name: &str) -> (Vec<u8>, Value) {
    let raw: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}/fixtures/samples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap(),
    )
    .unwrap();
    match raw.get("body") {
        Some(Value::String(body)) => (body.clone().into_bytes(), raw["headers"].clone()),
        _ => (serde_json::to_vec(&raw).unwrap(), Value::Null),
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
