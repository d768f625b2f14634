//! A worker killed mid-rollout: the worker that takes the deployment over reverts, when the
//! rollout fails, to what ran before the promotion (written down by the first attempt before
//! it changed anything), and never registers the same spec twice. The killed worker is a
//! real process: this test binary runs again as the deployer, and gets SIGKILL once the
//! Nomad job is registered.

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use gantry_domain::deployments::{DeployJob, DeploymentRepository};
use gantry_nomad_fake::{FakeNomad, Outcome};
use gantry_platform::AppState;
use serde_json::{Value, json};

use crate::support::{TestApp, digest, test_config};

const CHILD: &str = "GANTRY_TEST_DEPLOYER_PROCESS";
const OLD_IMAGE: &str = "registry.example.com/acme/api:0.9";
/// How long the killed worker holds the deployment.
const LEASE_SECONDS: u64 = 3;

/// Not a test of its own: the deployer process the takeover test starts and kills. It runs
/// the job it is given over the parent's table, following the rollout for ten minutes.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "the deployer process of the takeover test, which starts it itself"]
async fn deployer_process() {
    let spec: Value = serde_json::from_str(&std::env::var(CHILD).expect("started by the takeover test")).unwrap();
    let text = |k: &str| spec[k].as_str().unwrap().to_owned();
    let lease = LEASE_SECONDS.to_string();
    let settings = [("GANTRY_DEPLOY_LEASE_SECONDS", lease.as_str()), ("GANTRY_DEPLOY_TIMEOUT_SECONDS", "600")];
    let config = test_config(&text("table"), &text("events"), &text("deploy"), &settings);
    let sdk = gantry_tests::emulator();
    let drivers = gantry_targets::from_sdk(&gantry_tests::emulator(), config.driver_settings());
    let state =
        AppState::with_clients(config, aws_sdk_dynamodb::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk), drivers);
    let job: DeployJob = serde_json::from_value(spec["job"].clone()).unwrap();
    println!("deploying");
    let _ = state.deployer.run(job).await;
    println!("finished, which the test does not expect");
}

fn job() -> Value {
    json!({ "ID": "shop", "Name": "shop", "Type": "service", "Datacenters": ["dc1"],
            "TaskGroups": [{ "Name": "shop", "Count": 1, "Tasks": [
                { "Name": "server", "Driver": "docker", "Config": { "image": OLD_IMAGE } }] }] })
}

fn image_of(version: &Value) -> &str {
    version["TaskGroups"][0]["Tasks"][0]["Config"]["image"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_rollout_is_taken_over_and_reverted_to_what_ran_before() {
    let app = TestApp::spawn().await; // no workers: the killed process and this test play them
    let nomad = FakeNomad::start().await;
    nomad.seed_job(job());
    // The first registration's deployment never ends: the worker is killed while it waits.
    nomad.script([Outcome::Stall]);
    let dev = app.create_environment("dev", 10).await;
    let api = app.create_component("api").await;
    app.add_version(&api, "1.0.0", &digest("api-1.0.0")).await;
    let target = json!({ "name": "nomad-dc1", "type": "NOMAD", "nomad": { "address": nomad.url, "jobId": "shop",
        "tasks": [{ "name": "server", "componentId": api }] } });
    let add =
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
    app.ok(add, json!({ "e": dev, "t": target })).await;
    let release = app.ready_release("shop-1.0.0", json!([{ "componentId": api, "version": "1.0.0" }])).await;
    let promotion = app.request_promotion(&release, &dev).await["id"].as_str().unwrap().to_owned();
    let received = app.sqs.receive_message().queue_url(&app.deploy_queue).wait_time_seconds(2).send().await.unwrap();
    let body = received.messages.unwrap()[0].body.clone().unwrap();
    let job: DeployJob = serde_json::from_str(&body).unwrap();

    let spec = json!({ "table": app.table, "events": app.events_queue, "deploy": app.deploy_queue, "job": job });
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "takeover::deployer_process", "--nocapture"])
        .env(CHILD, spec.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || std::io::BufReader::new(stdout).lines().map_while(Result::ok).for_each(drop));
    gantry_tests::eventually(Duration::from_secs(60), "the killed worker's registration", || async {
        (nomad.job_versions("shop").len() == 2).then_some(())
    })
    .await;
    // While the worker lives it renews its lease: past two lease lengths nobody may take over.
    tokio::time::sleep(Duration::from_secs(2 * LEASE_SECONDS)).await;
    let now = chrono::Utc::now();
    let intruder = app.repo.claim(&job, "intruder", now, now + chrono::Duration::seconds(1)).await.unwrap();
    assert!(intruder.is_none(), "a live worker's lease is renewed");
    child.kill().unwrap();
    child.wait().unwrap();
    let registered = nomad.job_versions("shop");
    assert_eq!(image_of(&registered[1]), format!("registry.example.com/acme/api@{}", digest("api-1.0.0")));

    // Once the dead worker's lease is out, this worker takes the deployment over. The
    // rollout it follows stalls past the deadline, so it fails and is reverted.
    tokio::time::sleep(Duration::from_secs(LEASE_SECONDS + 1)).await;
    app.state.deployer.run(job).await.unwrap();
    let versions = nomad.job_versions("shop");
    let images: Vec<&str> = versions.iter().map(image_of).collect();
    assert_eq!(images.len(), 3, "no second registration of the same spec, then the revert: {images:?}");
    assert_eq!(images[2], OLD_IMAGE, "reverted to what ran before the promotion (version 0), not version 1");
    let settled = app.promotion(&promotion).await;
    assert_eq!(settled["status"], "FAILED", "{settled:#}");
    let reason = settled["reason"].as_str().unwrap();
    assert!(reason.contains("reverted job shop to version 0"), "{reason}");
}
