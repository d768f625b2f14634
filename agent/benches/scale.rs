//! An environment of 200 targets (`GANTRY_BENCH_AGENTS`), promoted once through 200 pull
//! agents and once as 200 direct targets, against the API and a deployer worker spawned on
//! the local emulator (`make emulator-up`; `cargo bench -p gantry-agent`). The agents are the
//! real agent loop (signed requests, long-poll claims, job verification) in one process; the
//! engine is a stub that takes `GANTRY_BENCH_ENGINE_MS` (1000) per target for both.
//!
//! It prints, for each: approve to DEPLOYED, DynamoDB requests per target, the deployer's
//! busy time (what Lambda would bill it), the API's time held by claims, and an estimated cost
//! per promotion. It asserts nothing: figures belong here, not in tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gantry_domain::artifacts::Applied;
use gantry_domain::deployments::{Attempt, DriverOutcome, Drivers, TargetDriver};
use gantry_domain::ids::PromotionId;
use gantry_domain::model::Release;
use gantry_domain::promotions::{PromotionRepository, PromotionStatus};
use gantry_domain::targets::{DeploymentTarget, TargetKind};
use gantry_tests::app::{TestApp, digest};
use gantry_tests::prices::{
    DYNAMODB_READ_UNIT, DYNAMODB_WRITE_UNIT, FUNCTION_MB, LAMBDA_GB_SECOND, SQS_STANDARD_REQUEST,
};
use gantry_tests::recorder::Request;
use serde_json::json;

/// The stub engine: takes its time, then reports what the real driver would have applied.
struct Stub(Duration);

#[async_trait]
impl TargetDriver for Stub {
    async fn deploy(
        &self,
        target: &DeploymentTarget,
        release: &Release,
        _: &dyn Attempt,
    ) -> gantry_domain::Result<DriverOutcome> {
        tokio::time::sleep(self.0).await;
        let applied = gantry_targets::docker::render(target, release)?;
        Ok(DriverOutcome { succeeded: true, message: "stub engine".into(), applied: Some(applied) })
    }

    fn render(&self, target: &DeploymentTarget, release: &Release) -> gantry_domain::Result<Applied> {
        gantry_targets::docker::render(target, release)
    }
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Figures {
    what: &'static str,
    elapsed: Duration,
    dynamodb: Vec<Request>,
    sqs: usize,
    deployer_busy: Duration,
    api_held: Duration,
}

impl Figures {
    fn print(&self, targets: u64) {
        let writes = self.dynamodb.iter().filter(|r| is_write(&r.operation)).count();
        let reads = self.dynamodb.len() - writes;
        // Estimated: a write of at most 1 KB is a unit, a job (its signed payload) about 4;
        // an eventually consistent read is half a unit.
        let jobs = self.dynamodb.iter().filter(|r| r.operation == "PutItem" && r.body.len() > 2048).count();
        let write_units = (writes + jobs * 3) as f64;
        let gb_seconds = (self.deployer_busy + self.api_held).as_secs_f64() * FUNCTION_MB / 1024.0;
        let dollars = (write_units * DYNAMODB_WRITE_UNIT
            + reads as f64 * 0.5 * DYNAMODB_READ_UNIT
            + self.sqs as f64 * SQS_STANDARD_REQUEST
            + gb_seconds * LAMBDA_GB_SECOND)
            / 1_000_000.0;
        println!("\n{} ({targets} targets):", self.what);
        println!("  approve to DEPLOYED: {:.1} s", self.elapsed.as_secs_f64());
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        for r in &self.dynamodb {
            *counts.entry(r.operation.as_str()).or_default() += 1;
        }
        let per: Vec<String> =
            counts.iter().map(|(op, c)| format!("{op} ×{:.1}", *c as f64 / targets as f64)).collect();
        println!("  DynamoDB per target, by operation: {}", per.join(", "));
        if std::env::var_os("GANTRY_BENCH_DETAIL").is_some() {
            detail(&self.dynamodb, targets);
        }
        println!(
            "  DynamoDB requests per target: {:.1} ({:.1} writes, {:.1} reads); SQS requests: {}",
            self.dynamodb.len() as f64 / targets as f64,
            writes as f64 / targets as f64,
            reads as f64 / targets as f64,
            self.sqs
        );
        println!(
            "  deployer busy: {:.1} s ({:.0} ms per target); API held by waiting claims (at most): {:.0} s",
            self.deployer_busy.as_secs_f64(),
            self.deployer_busy.as_secs_f64() * 1000.0 / targets as f64,
            self.api_held.as_secs_f64()
        );
        println!("  estimated cost per promotion: ${dollars:.5} (${:.2} per thousand)", dollars * 1000.0);
    }
}

/// Requests per target by operation and the kinds of item they touch (`GANTRY_BENCH_DETAIL`).
fn detail(requests: &[Request], targets: u64) {
    let kind = |pk: &serde_json::Value, sk: &serde_json::Value| {
        let part = |v: &serde_json::Value| {
            let s = v["S"].as_str().unwrap_or("?");
            s.split('#').next().unwrap_or(s).to_owned()
        };
        format!("{}/{}", part(pk), part(sk))
    };
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for r in requests {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let mut kinds: Vec<String> = match r.operation.as_str() {
            "Query" => vec![kind(&body["ExpressionAttributeValues"][":pk"], &serde_json::Value::Null)],
            "TransactWriteItems" => body["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| item.as_object()?.iter().next().map(|(op, v)| (op.clone(), v.clone())))
                .map(|(op, v)| {
                    let key = if v["Item"].is_object() { &v["Item"] } else { &v["Key"] };
                    format!("{op}:{}", kind(&key["PK"], &key["SK"]))
                })
                .collect(),
            _ => {
                let key = if body["Item"].is_object() { &body["Item"] } else { &body["Key"] };
                vec![kind(&key["PK"], &key["SK"])]
            }
        };
        kinds.sort();
        *counts.entry(format!("{} [{}]", r.operation, kinds.join(", "))).or_default() += 1;
    }
    for (what, count) in counts {
        println!("    {:>6.2}  {what}", count as f64 / targets as f64);
    }
}

fn is_write(operation: &str) -> bool {
    matches!(operation, "PutItem" | "UpdateItem" | "DeleteItem" | "TransactWriteItems" | "BatchWriteItem")
}

/// An environment at `order` with `n` Docker targets, each named by `target(i)`.
async fn estate(
    app: &TestApp,
    (name, order): (&str, i64),
    n: u64,
    target: impl Fn(u64) -> serde_json::Value,
) -> String {
    let env = app.create_environment_with(json!({ "name": name, "order": order })).await;
    for i in 0..n {
        app.ok(
            "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }",
            json!({ "e": env, "t": target(i) }),
        )
        .await;
    }
    env
}

async fn promote(app: &TestApp, release: &str, env: &str) -> Duration {
    let started = Instant::now();
    let id = app.request_promotion(release, env).await["id"].as_str().unwrap().to_owned();
    let id = PromotionId::parse(&id).unwrap();
    loop {
        let promotion = app.repo.get_promotion(id).await.unwrap().unwrap();
        match promotion.status {
            PromotionStatus::Deployed => return started.elapsed(),
            PromotionStatus::Deploying | PromotionStatus::Approved => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => panic!("the promotion ended {}", other.as_str()),
        }
    }
}

#[tokio::main]
async fn main() {
    drop(tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default()));
    let n = setting("GANTRY_BENCH_AGENTS", 200);
    let engine = Duration::from_millis(setting("GANTRY_BENCH_ENGINE_MS", 1000));
    let app = TestApp::spawn_with(&[("GANTRY_REQUEST_TIMEOUT_MS", "25000")]).await;
    let component = app.create_component("bench-web").await;
    app.add_version(&component, "1.0.0", &digest("bench-web-1")).await;
    let release = app.ready_release("bench-1", json!([{ "componentId": component, "version": "1.0.0" }])).await;

    // The deployer worker: its own state (as a Lambda has), with the stub engine for direct
    // Docker targets, its busy time summed per batch.
    let stub = Arc::new(Stub(engine));
    let drivers = Drivers::from([(TargetKind::Docker, stub.clone() as Arc<dyn TargetDriver>)]);
    let (state, deployer_dynamodb, deployer_sqs) = app.worker_state_with(drivers);
    let busy = Arc::new(AtomicU64::new(0));
    for _ in 0..4 {
        let (state, busy) = (state.clone(), busy.clone());
        tokio::spawn(async move {
            let queue = state.deploy_jobs.clone();
            queue
                .poll(|event| {
                    let (state, busy) = (state.clone(), busy.clone());
                    // One message per invocation, as the template's event source mapping
                    // (BatchSize 1) delivers them: each message's time is what Lambda bills.
                    async move {
                        let each = event.records.into_iter().map(|record| {
                            let (state, busy) = (state.clone(), busy.clone());
                            let mut one = aws_lambda_events::event::sqs::SqsEvent::default();
                            one.records = vec![record];
                            async move {
                                let started = Instant::now();
                                let answer = gantry_deployer::handle(state, one).await;
                                busy.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                                answer
                            }
                        });
                        let mut merged = aws_lambda_events::event::sqs::SqsBatchResponse::default();
                        for answer in futures::future::join_all(each).await {
                            merged.batch_item_failures.extend(answer.batch_item_failures);
                        }
                        merged
                    }
                })
                .await;
        });
    }

    let agents = agents::spawn(&app, n, stub).await;
    let env = estate(&app, ("bench-agents", 0), n, |i| {
        json!({ "name": format!("agent-{i}"), "type": "DOCKER", "docker": {
            "agentId": agents.ids[i as usize], "containerName": format!("web-{i}"), "componentId": component } })
    })
    .await;
    let mut measured = measure(&app, (&deployer_dynamodb, &deployer_sqs, &busy), "through pull agents", async {
        promote(&app, &release, &env).await
    })
    .await;
    // At most: every agent held a claim open in the API the whole time.
    measured.api_held = measured.elapsed * n as u32;
    measured.print(n);

    // The next environment of the path, where the same release goes next.
    let env = estate(&app, ("bench-direct", 10), n, |i| {
        json!({ "name": format!("direct-{i}"), "type": "DOCKER", "docker": {
            "endpoint": "unix:///run/bench.sock", "containerName": format!("web-{i}"), "componentId": component } })
    })
    .await;
    let measured = measure(&app, (&deployer_dynamodb, &deployer_sqs, &busy), "direct targets", async {
        promote(&app, &release, &env).await
    })
    .await;
    measured.print(n);
}

async fn measure(
    app: &TestApp,
    (dynamodb, sqs, busy): (&gantry_tests::recorder::Recorder, &gantry_tests::recorder::Recorder, &AtomicU64),
    what: &'static str,
    run: impl Future<Output = Duration>,
) -> Figures {
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.requests.take();
    app.sqs_requests.take();
    dynamodb.take();
    sqs.take();
    let busy_before = busy.load(Ordering::Relaxed);
    let elapsed = run.await;
    let mut requests = app.requests.take_requests();
    requests.extend(dynamodb.take_requests());
    Figures {
        what,
        elapsed,
        dynamodb: requests,
        sqs: app.sqs_requests.take().len() + sqs.take().len(),
        deployer_busy: Duration::from_micros(busy.load(Ordering::Relaxed) - busy_before),
        api_held: Duration::ZERO,
    }
}

mod agents {
    use super::*;

    pub struct Fleet {
        pub ids: Vec<String>,
    }

    /// `n` enrolled agents running the real job loop with the stub engine (no heartbeats:
    /// they would only add noise to the counts).
    pub async fn spawn(app: &TestApp, n: u64, stub: Arc<Stub>) -> Fleet {
        let mut ids = Vec::new();
        let dir = std::env::temp_dir().join(format!("gantry-bench-{}", uuid::Uuid::new_v4().simple()));
        for i in 0..n {
            let (token, _) = app
                .state
                .agents
                .create_enrollment(&format!("bench-{i}"), Default::default(), 3600, "bench")
                .await
                .unwrap();
            let (key, _) = gantry_signing::SigningKey::generate();
            let enrolled = app.state.agents.enroll(&token, &key.public().encode()).await.unwrap();
            let identity = gantry_agent::state::Identity {
                url: app.url.clone(),
                agent_id: enrolled.agent_id.to_string(),
                job_signing_key: enrolled.job_signing_key.clone(),
            };
            ids.push(identity.agent_id.clone());
            let agent = Arc::new(gantry_agent::run::Agent {
                api: gantry_agent::client::Api::new(&app.url).unwrap(),
                key,
                pinned: gantry_signing::PublicKey::parse(&identity.job_signing_key).unwrap(),
                identity,
                state: gantry_agent::state::StateDir(dir.join(i.to_string())),
                docker_host: String::new(),
                heartbeat: Duration::from_secs(3600),
                engine: Some(stub.clone()),
            });
            tokio::spawn(async move { agent.jobs().await });
        }
        Fleet { ids }
    }
}
