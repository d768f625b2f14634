//! Promotions end to end, counted: the API's request (READY release to an environment with
//! one Nomad target, no approvals) and the deployer's job, against the Nomad stand-in.

use std::time::Duration;

use gantry_domain::ids::PromotionId;
use gantry_domain::promotions::{PromotionRepository, PromotionStatus};
use gantry_nomad_fake::FakeNomad;
use gantry_tests::app::{TestApp, digest};
use gantry_tests::recorder::Request;
use serde_json::json;

use crate::images::Images;
use crate::measure;
use crate::worker::Worker;

/// What the promotions spent, in all.
pub struct Promoted {
    pub count: usize,
    pub api_dynamodb: Vec<Request>,
    pub api_sqs: Vec<Request>,
    pub api_p50_ms: f64,
    pub deployer_dynamodb: Vec<Request>,
    pub deployer_sqs: Vec<Request>,
    pub batches: usize,
    pub batch_time: Duration,
    pub notifier_dynamodb: Vec<Request>,
    pub notifier_sqs: Vec<Request>,
    pub notifier_batches: usize,
    pub notifier_batch_time: Duration,
    /// The table as the run left it, to bill writes by whole items and their indexes.
    pub images: Images,
}

pub async fn run(app: &TestApp, count: usize) -> Promoted {
    let nomad = FakeNomad::start().await;
    nomad.seed_job(json!({ "ID": "shop", "Name": "shop", "Type": "service", "Datacenters": ["dc1"],
        "TaskGroups": [{ "Name": "shop", "Count": 1, "Tasks": [
            { "Name": "server", "Driver": "docker", "Config": { "image": "registry.example.com/acme/api:0.9" } }] }] }));
    // First in promotion order, so no gate asks for an earlier environment.
    let env = app.create_environment("bench-dev", 0).await;
    let api = app.create_component("bench-api").await;
    let target = json!({ "name": "nomad-dc1", "type": "NOMAD", "nomad": { "address": nomad.url, "jobId": "shop",
        "tasks": [{ "name": "server", "componentId": api }] } });
    app.ok(
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }",
        json!({ "e": env, "t": target }),
    )
    .await;
    let mut releases = Vec::new();
    for i in 0..count {
        let version = format!("1.0.{i}");
        app.add_version(&api, &version, &digest(&version)).await;
        let components = json!([{ "componentId": api, "version": version }]);
        releases.push(app.ready_release(&format!("bench-{version}"), components).await);
    }
    let (state, deployer_dynamodb, deployer_sqs) = app.worker_state();
    let worker = Worker::spawn(state.clone(), state.deploy_jobs.clone(), 1, gantry_deployer::handle);
    // The notifier takes the promotions' events (no subscription here: it reads and drops them).
    let (state, notifier_dynamodb, notifier_sqs) = app.worker_state();
    let notifier = Worker::spawn(state.clone(), state.notify_jobs.clone(), 1, gantry_notifier::handle);
    // Kept, so the bench knows the index keys of what the promotions then update.
    let setup = app.requests.take_requests();
    app.sqs_requests.take();
    let (mut api_dynamodb, mut api_sqs, mut samples) = (Vec::new(), Vec::new(), Vec::new());
    for release in &releases {
        let started = std::time::Instant::now();
        let id = app.request_promotion(release, &env).await["id"].as_str().unwrap().to_owned();
        samples.push(started.elapsed());
        api_dynamodb.extend(app.requests.take_requests());
        api_sqs.extend(app.sqs_requests.take_requests());
        settle(app, &id).await;
    }
    // The last events reach the notifier a moment after the last promotion settles.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (batches, batch_time) = worker.stop();
    let (notifier_batches, notifier_batch_time) = notifier.stop();
    let timing = measure::Run { samples, wall: Duration::ZERO, cpu: Duration::ZERO };
    println!("\n{count} promotions, each deployed to one Nomad target: request {}", timing.latency());
    let (deployer_dynamodb, deployer_sqs) = (deployer_dynamodb.take_requests(), deployer_sqs.take_requests());
    println!("  requests per promotion, API: {}", per_operation(&api_dynamodb, &api_sqs, count));
    println!("  requests per promotion, deployer: {}", per_operation(&deployer_dynamodb, &deployer_sqs, count));
    let (notifier_dynamodb, notifier_sqs) = (notifier_dynamodb.take_requests(), notifier_sqs.take_requests());
    println!("  requests per promotion, notifier: {}", per_operation(&notifier_dynamodb, &notifier_sqs, count));
    let all: Vec<Request> = api_dynamodb.iter().chain(&deployer_dynamodb).chain(&notifier_dynamodb).cloned().collect();
    let history: Vec<Request> = setup.into_iter().chain(all.iter().cloned()).collect();
    let images = Images::scan(&app.dynamodb, &app.table, &history).await;
    print_write_units(&all, &images, count);
    Promoted {
        count,
        api_dynamodb,
        api_sqs,
        api_p50_ms: timing.percentile(0.5).as_secs_f64() * 1000.0,
        deployer_dynamodb,
        deployer_sqs,
        batches,
        batch_time,
        notifier_dynamodb,
        notifier_sqs,
        notifier_batches,
        notifier_batch_time,
        images,
    }
}

/// Where a promotion's write units go, in the table and in its indexes.
fn print_write_units(requests: &[Request], images: &Images, count: usize) {
    let by_item = crate::cost::write_units_by_item(requests, images);
    let (table, index) = by_item.values().fold((0.0, 0.0), |(t, i), (bt, bi)| (t + bt, i + bi));
    let per = |units: f64| units / count as f64;
    println!(
        "  write units per promotion: {:.1} ({:.1} in the table, {:.1} in its indexes), by item written:",
        per(table + index),
        per(table),
        per(index)
    );
    println!("    {:<40} {:>6} {:>6}", "", "table", "index");
    for (item, (table, index)) in by_item {
        println!("    {item:<40} {:>6.1} {:>6.1}", per(table), per(index));
    }
}

/// `Operation ×n` for each operation (SQS ones with the queue they name), averaged over
/// `count`.
fn per_operation(dynamodb: &[Request], sqs: &[Request], count: usize) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for r in dynamodb {
        // A read of one item says which (its sort key up to the first `#`).
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let kind = body["Key"]["SK"]["S"].as_str().map(|sk| sk.split('#').next().unwrap_or(sk));
        let what = match kind {
            Some(kind) if r.operation == "GetItem" => format!("GetItem ({kind})"),
            _ => r.operation.clone(),
        };
        *counts.entry(what).or_default() += 1;
    }
    for r in sqs {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let queue = body["QueueUrl"].as_str().and_then(|u| u.rsplit('/').next()).unwrap_or("?");
        // The test's queues are named `<table>-gantry-<queue>`.
        let queue = queue.rfind("-gantry-").map_or(queue, |at| &queue[at + 1..]);
        *counts.entry(format!("{} ({queue})", r.operation)).or_default() += 1;
    }
    counts.iter().map(|(op, n)| format!("{op} ×{:.1}", *n as f64 / count as f64)).collect::<Vec<_>>().join(", ")
}

/// Waits until the promotion is deployed, reading the table directly (uncounted).
async fn settle(app: &TestApp, id: &str) {
    for _ in 0..400 {
        let promotion = app.repo.get_promotion(PromotionId::parse(id).unwrap()).await.unwrap().unwrap();
        match promotion.status {
            PromotionStatus::Deployed => return,
            PromotionStatus::Deploying | PromotionStatus::Approved => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            other => panic!("promotion ended {}", other.as_str()),
        }
    }
    panic!("promotion {id} did not settle");
}
