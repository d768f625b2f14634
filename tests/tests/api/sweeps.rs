//! Deployments no job carries: a promotion turns `DEPLOYING` in one write and its jobs are
//! sent in the next request. Here that send fails (the app's deploy queue does not exist):
//! the request still answers with the stored promotion, and the sweep the schedule queues
//! every minute queues the jobs again.

use std::time::Duration;

use chrono::Utc;
use gantry_domain::promotions::Sweep;
use gantry_nomad_fake::FakeNomad;
use serde_json::{Value, json};

use crate::support::{TestApp, digest};

/// An app whose deploy-jobs queue is missing, a Nomad target in `dev`, and a promotion of a
/// READY release there whose jobs could not be sent. Returns the app, the stand-in and the
/// promotion's id.
async fn lost_jobs() -> (TestApp, FakeNomad, String) {
    let missing = "http://127.0.0.1:4566/000000000000/gantry-no-such-queue";
    let app = TestApp::spawn_with(&[("GANTRY_DEPLOY_QUEUE_URL", missing)]).await;
    let nomad = FakeNomad::start().await;
    let (env, _, release) = crate::deployments::setup(&app, &nomad).await;
    // The promotion is stored before its jobs are sent: the caller is told what it is.
    let requested = app.request_promotion(&release, &env).await;
    assert_eq!(requested["status"], "DEPLOYING");
    let listed =
        "query($e: ID!) { promotions(environmentId: $e) { edges { node { id status deployments { state } } } } }";
    let promotions = app.ok(listed, json!({ "e": env })).await["promotions"]["edges"].clone();
    let node = &promotions[0]["node"];
    assert_eq!(
        (promotions.as_array().unwrap().len(), &node["status"], &node["deployments"]),
        (1, &json!("DEPLOYING"), &json!([{ "state": "PENDING" }])),
        "written DEPLOYING with a deployment no job carries"
    );
    assert_eq!(node["id"], requested["id"]);
    let id = node["id"].as_str().unwrap().to_owned();
    (app, nomad, id)
}

/// Runs the deployer on the real deploy-jobs queue, with a state whose queue is that one.
fn deployer(app: &TestApp) -> tokio::task::JoinHandle<()> {
    let state = app.state_with(&[]);
    tokio::spawn(async move {
        let queue = state.deploy_jobs.clone();
        queue.poll(|event| gantry_deployer::handle(state.clone(), event)).await;
    })
}

async fn status(app: &TestApp, promotion: &str) -> Value {
    app.promotion(promotion).await["status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_whose_jobs_were_not_sent_is_deployed_after_the_schedules_sweep() {
    let (app, nomad, promotion) = lost_jobs().await;
    let worker = deployer(&app);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status(&app, &promotion).await, "DEPLOYING", "no job, no deployment");
    assert_eq!(nomad.job_versions("shop").len(), 1, "nothing reached Nomad");
    // What the template's schedule sends, with no grace (the request is a second old).
    let sweep = json!({ "sweep": "deployments", "afterSeconds": 0 }).to_string();
    app.sqs.send_message().queue_url(&app.deploy_queue).message_body(sweep).send().await.unwrap();
    let settled = app.settled(&promotion).await;
    worker.abort();
    assert_eq!(settled["status"], "DEPLOYED");
    let versions = nomad.job_versions("shop");
    let image = crate::deployments::image_of(versions.last().unwrap());
    assert_eq!((versions.len(), image), (2, format!("registry.example.com/acme/api@{}", digest("api-1.0.0")).as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_leaves_recent_promotions_and_queues_each_lost_job_once_in_its_grace() {
    let (app, _nomad, promotion) = lost_jobs().await;
    let state = app.state_with(&[]);
    let now = Utc::now();
    let minute = Sweep { after_seconds: 60, ..Sweep::deployments() };
    assert_eq!(state.promotions.sweep(&Sweep::deployments(), now).await.unwrap(), 0, "its jobs may be on their way");
    let later = now + chrono::Duration::seconds(61);
    assert_eq!(state.promotions.sweep(&minute, later).await.unwrap(), 1, "lost for a minute: queued again");
    let again = later + chrono::Duration::seconds(30);
    assert_eq!(state.promotions.sweep(&minute, again).await.unwrap(), 0, "queued again within the minute");
    let worker = deployer(&app);
    assert_eq!(app.settled(&promotion).await["status"], "DEPLOYED");
    worker.abort();
    let much_later = later + chrono::Duration::seconds(600);
    assert_eq!(state.promotions.sweep(&minute, much_later).await.unwrap(), 0, "a deployed promotion has no lost job");
}
