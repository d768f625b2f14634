//! Intake is queue-first: a process killed between queueing a webhook's events and storing
//! the delivery leaves the events on the queue, where ingest takes them; one killed before
//! queueing has stored nothing and answered nothing, so the sender's retry is the first
//! delivery. The process here is real: this test binary runs again as the intake, and is
//! sent SIGKILL while a DynamoDB or SQS request is held.

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use gantry_platform::AppState;
use serde_json::{Value, json};

use crate::support::{TestApp, test_config};

const CHILD: &str = "GANTRY_TEST_INTAKE_PROCESS";
const HELD: &str = "gantry-test: request held";

/// Holds for ever the first request whose `X-Amz-Target` ends with `operation` and whose
/// body mentions `marker`, after saying so on stdout.
#[derive(Debug)]
struct Hold {
    operation: &'static str,
    marker: &'static str,
}

impl Intercept for Hold {
    fn name(&self) -> &'static str {
        "Hold"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request();
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        let body = request.body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
        if target.ends_with(self.operation) && body.contains(self.marker) {
            println!("{HELD}");
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        Ok(())
    }
}

/// Not a test of its own: the intake process [`run_and_kill`] starts. It serves the
/// webhooks over the parent's table and queues and holds the request the parent names.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "the intake process of the crash tests, which start it themselves"]
async fn intake_process() {
    let spec: Value = serde_json::from_str(&std::env::var(CHILD).expect("started by a crash test")).unwrap();
    let text = |k: &str| spec[k].as_str().unwrap().to_owned();
    let config = test_config(&text("table"), &text("events"), &text("deploy"), &[]);
    let sdk = gantry_tests::emulator();
    let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(&sdk);
    let mut sqs = aws_sdk_sqs::config::Builder::from(&sdk);
    match text("hold").as_str() {
        "delivery-write" => dynamodb = dynamodb.interceptor(Hold { operation: "PutItem", marker: "DELIVERY#" }),
        _ => sqs = sqs.interceptor(HoldSqs(Hold { operation: "SendMessageBatch", marker: "" })),
    }
    let state = AppState::with_clients(
        config,
        aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
        aws_sdk_sqs::Client::from_conf(sqs.build()),
        gantry_domain::deployments::Drivers::new(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    let timeout = state.config.request_timeout();
    gantry_platform::serve::serve(listener, gantry_webhooks::router(state), timeout, std::future::pending()).await;
}

/// [`Hold`] for the SQS client, whose interceptor trait is its own type.
#[derive(Debug)]
struct HoldSqs(Hold);

impl aws_sdk_sqs::config::Intercept for HoldSqs {
    fn name(&self) -> &'static str {
        "HoldSqs"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_sqs::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        components: &aws_sdk_sqs::config::RuntimeComponents,
        cfg: &mut aws_sdk_sqs::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Intercept::read_before_transmit(&self.0, context, components, cfg)
    }
}

/// Starts the intake process over `app`'s table and queues, POSTs `body` to it, and kills
/// it with SIGKILL once it holds the `hold` request. The POST gets no answer.
async fn run_and_kill(app: &TestApp, hold: &str, auth: &str, body: Vec<u8>) {
    let spec = json!({ "table": app.table, "events": app.events_queue, "deploy": app.deploy_queue, "hold": hold });
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "crash::intake_process", "--nocapture"])
        .env(CHILD, spec.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, seen) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let next = |want: &'static str| {
        let seen = &seen;
        move || loop {
            let line = seen.recv_timeout(Duration::from_secs(60)).expect("the intake process speaks");
            if line.contains(want) {
                return line;
            }
        }
    };
    let url = next("listening on ")().rsplit(' ').next().unwrap().to_owned();
    let post = app.http.post(format!("{url}/webhooks/registry/distribution")).header("authorization", auth).body(body);
    let answer = tokio::spawn(post.send());
    tokio::task::block_in_place(next(HELD));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(answer.await.unwrap().is_err(), "the killed process answered nothing");
}

fn push(id: &str, tag: &str) -> Vec<u8> {
    let event = json!({ "id": id, "action": "push", "target": { "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "repository": "demo/crash", "tag": tag, "digest": crate::support::digest(id) }, "request": { "host": "127.0.0.1:15000" } });
    serde_json::to_vec(&json!({ "events": [event] })).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_after_queueing_leaves_the_events_on_the_queue() {
    let app = TestApp::spawn().await;
    let (_, secret) = app.create_integration("local", "DISTRIBUTION", "http://127.0.0.1:15000").await;
    let auth = format!("Bearer {secret}");
    let before = app.snapshot().await;
    run_and_kill(&app, "delivery-write", &auth, push("crash-1", "1.0.0")).await;
    assert_eq!(app.snapshot().await, before, "killed before the delivery was stored");
    let queued = app.drain_events().await;
    assert_eq!(queued.len(), 1, "but its event is on the queue, for ingest");
    assert_eq!(queued[0]["event"]["deliveryId"], "crash-1");
    // The sender, having heard nothing, sends again: the delivery is stored now, and its
    // event queued again (ingest applies an event once however often it comes).
    let (status, answer) = app
        .post_webhook("/webhooks/registry/distribution", &[("authorization", &auth)], push("crash-1", "1.0.0"))
        .await;
    assert_eq!((status, answer), (202, json!({ "accepted": 1, "duplicates": 0 })));
    let (stored, queued) = (app.snapshot().await.len(), app.drain_events().await);
    assert_eq!((stored, queued.len()), (before.len() + 1, 1));
    assert_eq!(queued[0]["event"]["deliveryId"], "crash-1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_before_queueing_stores_nothing() {
    let app = TestApp::spawn().await;
    let (_, secret) = app.create_integration("local", "DISTRIBUTION", "http://127.0.0.1:15000").await;
    let auth = format!("Bearer {secret}");
    let before = app.snapshot().await;
    run_and_kill(&app, "queue-send", &auth, push("crash-2", "2.0.0")).await;
    assert_eq!(app.snapshot().await, before);
    assert!(app.drain_events().await.is_empty());
    let (status, _) = app
        .post_webhook("/webhooks/registry/distribution", &[("authorization", &auth)], push("crash-2", "2.0.0"))
        .await;
    assert_eq!(status, 202, "the retry is the first delivery");
    assert_eq!(app.drain_events().await.len(), 1);
}
