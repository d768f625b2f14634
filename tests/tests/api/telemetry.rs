//! Traces across processes. Each function runs as a process of its own (this test binary
//! again, as the crash tests do), exporting over OTLP/HTTP to a receiver in the test: one
//! registry push yields one trace through the gateway, the events queue and ingest; one
//! promotion yields one trace through the API, the deploy-jobs queue, the deployer and the
//! engine, continuing the caller's `traceparent`. The log lines name the same trace.

use std::collections::{BTreeSet, HashMap};
use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_nomad_fake::FakeNomad;
use gantry_platform::AppState;
use gantry_tests::otlp::{OtlpReceiver, ReceivedSpan};
use serde_json::{Value, json};

use crate::registry::{Registry, free_port};
use crate::support::{TestApp, digest, test_config};

const CHILD: &str = "GANTRY_TEST_TRACED_PROCESS";

/// Not a test of its own: a function process the tests below start. It runs one role
/// (`webhooks`, `api`, `ingest`, `deployer`) over the parent's table and queues, with
/// tracing set up as a function's `main` sets it up.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a traced function process, which the tracing tests start themselves"]
async fn traced_process() {
    let spec: Value = serde_json::from_str(&std::env::var(CHILD).expect("started by a tracing test")).unwrap();
    let text = |k: &str| spec[k].as_str().unwrap().to_owned();
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap();
    let overrides = [
        ("GANTRY_NOTIFY_QUEUE_URL", text("notify")),
        ("GANTRY_LOG_FORMAT", "json".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
    ];
    let overrides: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = test_config(&text("table"), &text("events"), &text("deploy"), &overrides);
    let role = text("role");
    gantry_platform::init_tracing(&config, &format!("gantry-{role}"));
    let sdk = gantry_tests::emulator();
    let drivers = gantry_targets::from_sdk(&sdk, config.driver_settings());
    let state =
        AppState::with_clients(config, aws_sdk_dynamodb::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk), drivers);
    let serve = |router: axum::Router| async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening on http://{}", listener.local_addr().unwrap());
        let timeout = state.config.request_timeout();
        gantry_platform::serve::serve(listener, router, timeout, std::future::pending()).await;
    };
    match role.as_str() {
        "webhooks" => serve(gantry_webhooks::router(state.clone())).await,
        "api" => serve(gantry_api::router(state.clone())).await,
        "ingest" => state.events.poll(|event| gantry_ingest::handle(state.clone(), event)).await,
        "deployer" => state.deploy_jobs.poll(|event| gantry_deployer::handle(state.clone(), event)).await,
        other => panic!("no role {other}"),
    }
}

/// A function process, killed when dropped, whose stdout lines are kept.
struct Function {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Function {
    fn start(app: &TestApp, receiver: &OtlpReceiver, role: &str) -> Self {
        let spec = json!({ "role": role, "table": app.table, "events": app.events_queue,
            "deploy": app.deploy_queue, "notify": app.notify_queue });
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "telemetry::traced_process", "--nocapture"])
            .env(CHILD, spec.to_string())
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url)
            // Export every tenth of a second: the test waits for what arrives.
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env_remove("OTEL_SERVICE_NAME")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (kept, stdout) = (lines.clone(), child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    /// The URL an HTTP function listens on, once it says.
    async fn url(&self) -> String {
        gantry_tests::eventually(Duration::from_secs(60), "the function to listen", || async {
            let lines = self.lines.lock().unwrap();
            lines.iter().find_map(|l| l.strip_prefix("listening on ").map(str::to_owned))
        })
        .await
    }

    /// Its JSON log lines.
    fn logs(&self) -> Vec<Value> {
        self.lines.lock().unwrap().iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The spans of `trace`.
fn of_trace<'a>(spans: &'a [ReceivedSpan], trace: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.trace_id == trace).collect()
}

/// Every span's parent is in the trace, except the root's (empty, or `outside`, a caller's
/// span): one connected tree, whatever process each span came from.
fn assert_one_tree(spans: &[&ReceivedSpan], outside: &str) {
    let roots: Vec<&&ReceivedSpan> =
        spans.iter().filter(|s| s.parent_span_id.is_empty() || s.parent_span_id == outside).collect();
    assert_eq!(roots.len(), 1, "one root: {roots:#?}");
    if let Some(span) = unlinked(spans, outside).first() {
        panic!("{} ({}) has a parent outside the trace: {spans:#?}", span.name, span.service);
    }
}

/// The spans whose parent is neither in `spans` nor `outside` (nor absent: a root).
fn unlinked<'a>(spans: &[&'a ReceivedSpan], outside: &str) -> Vec<&'a ReceivedSpan> {
    let ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let linked = |s: &ReceivedSpan| {
        s.parent_span_id.is_empty() || s.parent_span_id == outside || ids.contains(s.parent_span_id.as_str())
    };
    spans.iter().copied().filter(|s| !linked(s)).collect()
}

fn names_in<'a>(spans: &[&'a ReceivedSpan], service: &str) -> BTreeSet<&'a str> {
    spans.iter().filter(|s| s.service == service).map(|s| s.name.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_registry_push_is_one_trace_through_the_gateway_the_queue_and_ingest() {
    let app = TestApp::spawn().await;
    let receiver = OtlpReceiver::start().await;
    let (gateway, ingest) = (Function::start(&app, &receiver, "webhooks"), Function::start(&app, &receiver, "ingest"));
    let port = free_port();
    let (_, secret) = app.create_integration("local", "DISTRIBUTION", &format!("http://127.0.0.1:{port}")).await;
    let component = app
        .create_component_with(json!({ "name": "web", "imageRepository": format!("127.0.0.1:{port}/demo/web") }))
        .await;
    let registry = Registry::start(port, &format!("{}/webhooks/registry/distribution", gateway.url().await), &secret);
    let pushed = registry.push("demo/web", "1.0.0", "web 1.0.0");
    let q = "query($id: ID!) { componentVersions(componentId: $id) { digest } }";
    gantry_tests::eventually(Duration::from_secs(30), "the pushed version", || async {
        let versions = app.ok(q, json!({ "id": component })).await["componentVersions"].clone();
        (versions[0]["digest"] == pushed).then_some(())
    })
    .await;

    // The consumer span of the event that made the version, and everything of its trace.
    let spans = receiver
        .wait_for(30, |spans| {
            spans.iter().any(|s| s.service == "gantry-ingest" && s.kind == 5)
                && spans.iter().any(|s| s.service == "gantry-ingest" && s.name.starts_with("DynamoDB."))
        })
        .await;
    let consumer = spans.iter().find(|s| s.service == "gantry-ingest" && s.kind == 5).expect("ingest's consumer span");
    let trace = of_trace(&spans, &consumer.trace_id);
    assert_one_tree(&trace, "");
    let root = trace.iter().find(|s| s.parent_span_id.is_empty()).unwrap();
    assert_eq!((root.service.as_str(), root.kind), ("gantry-webhooks", 2), "the webhook's server span is the root");
    assert_eq!(root.name, "POST /webhooks/registry/{source}");
    assert_eq!(root.attributes.get("http.response.status_code").map(String::as_str), Some("202"));
    let gateway_names = names_in(&trace, "gantry-webhooks");
    assert!(gateway_names.contains("SQS.SendMessageBatch"), "the gateway queues the event: {gateway_names:?}");
    assert!(gateway_names.iter().any(|n| n.starts_with("DynamoDB.")), "and records the delivery: {gateway_names:?}");
    let parent = trace.iter().find(|s| s.span_id == consumer.parent_span_id).unwrap();
    assert_eq!(parent.service, "gantry-webhooks", "ingest continues the trace the message carried");
    let ingest_names = names_in(&trace, "gantry-ingest");
    assert!(ingest_names.iter().any(|n| n.starts_with("DynamoDB.")), "ingest writes the version: {ingest_names:?}");
    let asked = trace.iter().find(|s| s.service == "gantry-ingest" && s.name == "digest_of");
    let asked = asked.unwrap_or_else(|| panic!("ingest asks the registry for the digest: {ingest_names:?}"));
    assert_eq!((asked.kind, asked.attributes["url"].as_str()), (3, format!("http://127.0.0.1:{port}").as_str()));
    assert_eq!(consumer.attributes.get("messaging.system").map(String::as_str), Some("aws_sqs"));

    // Every trace the gateway started is whole: a push is never split across traces.
    let roots = spans.iter().filter(|s| s.parent_span_id.is_empty()).count();
    let traces: BTreeSet<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(roots, traces.len(), "one root a trace");

    // Ingest's log line names the trace and its span.
    let handled =
        ingest.logs().into_iter().find(|l| l["message"] == "message handled" && l["trace_id"] == *consumer.trace_id);
    let handled = handled.unwrap_or_else(|| panic!("ingest's log names the trace: {:#?}", ingest.logs()));
    assert_eq!(handled["span_id"], *consumer.span_id, "written in the consumer span");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_promotion_is_one_trace_through_the_api_the_deployer_and_the_engine() {
    let app = TestApp::spawn().await;
    let receiver = OtlpReceiver::start().await;
    let (api, _deployer) = (Function::start(&app, &receiver, "api"), Function::start(&app, &receiver, "deployer"));
    let nomad = FakeNomad::start().await;
    nomad.seed_service("shop", &["api"]);
    let prod = app.create_environment("prod", 10).await;
    let component = app.create_component("api").await;
    app.add_version(&component, "1.0.0", &digest("api-1.0.0")).await;
    let target = json!({ "name": "nomad", "type": "NOMAD",
        "nomad": { "address": nomad.url, "jobId": "shop", "tasks": [{ "name": "api", "componentId": component }] } });
    app.ok(
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }",
        json!({ "e": prod, "t": target }),
    )
    .await;
    let release = app.ready_release("api-1.0.0", json!([{ "componentId": component, "version": "1.0.0" }])).await;

    // The caller is traced: the promotion's trace continues its span.
    let (trace, caller) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let request = "mutation($r: ID!, $e: ID!) { requestPromotion(releaseId: $r, environmentId: $e) { id } }";
    let answer: Value = app
        .http
        .post(format!("{}/graphql", api.url().await))
        .bearer_auth(&app.token)
        .header("traceparent", format!("00-{trace}-{caller}-01"))
        .json(&json!({ "query": request, "variables": { "r": release, "e": prod } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let promotion = answer["data"]["requestPromotion"]["id"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned();
    assert_eq!(app.settled(&promotion).await["status"], "DEPLOYED");

    let spans = receiver
        .wait_for(30, |spans| {
            spans.iter().any(|s| s.trace_id == trace && s.service == "gantry-deployer" && s.kind == 3)
                && spans
                    .iter()
                    .any(|s| s.trace_id == trace && s.service == "gantry-deployer" && s.name == "SQS.SendMessage")
                // A parent ends after its children, so it may come in a later export.
                && unlinked(&of_trace(spans, trace), caller).is_empty()
        })
        .await;
    let traced = of_trace(&spans, trace);
    assert_one_tree(&traced, caller);
    let root = traced.iter().find(|s| s.parent_span_id == caller).unwrap();
    assert_eq!((root.service.as_str(), root.name.as_str(), root.kind), ("gantry-api", "POST /graphql", 2));
    let api_names = names_in(&traced, "gantry-api");
    assert!(api_names.contains("SQS.SendMessageBatch"), "the API queues the deploy job: {api_names:?}");
    let consumers: Vec<_> = traced.iter().filter(|s| s.service == "gantry-deployer" && s.kind == 5).collect();
    assert!(!consumers.is_empty(), "the deployer continues the trace: {traced:#?}");
    let by_id: HashMap<&str, &&ReceivedSpan> = traced.iter().map(|s| (s.span_id.as_str(), s)).collect();
    assert_eq!(by_id[consumers[0].parent_span_id.as_str()].service, "gantry-api", "the first job came from the API");
    let engine: Vec<_> = traced.iter().filter(|s| s.service == "gantry-deployer" && s.kind == 3).collect();
    assert!(engine.iter().any(|s| s.name == "POST 127.0.0.1"), "the deployer registers the job: {engine:#?}");
    assert!(engine.iter().all(|s| s.attributes.get("server.address").map(String::as_str) == Some("127.0.0.1")));

    // Nomad was told the trace with every request, each time as the child of a client span.
    let sent = nomad.traceparents();
    assert!(!sent.is_empty(), "the engine received traceparent headers");
    for header in &sent {
        let parts: Vec<&str> = header.split('-').collect();
        assert_eq!(parts[1], trace, "{header}");
        assert!(engine.iter().any(|s| s.span_id == parts[2]), "{header} names a client span of the deployer");
    }
}
