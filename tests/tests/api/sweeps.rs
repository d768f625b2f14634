//! Promotions stalled between two writes, and the sweep the schedule queues every minute.
//! A promotion turns `DEPLOYING` in one write and its jobs are sent in the next request: here
//! that send fails (the app's deploy queue does not exist), the request still answers with
//! the stored promotion, and the sweep queues the jobs again. An approval is written before
//! the promotion begins: here the table refuses the write between, and the sweep begins it.
//! A rollback that stalls so is failed, which frees its environment.

use std::time::Duration;

use chrono::Utc;
use gantry_domain::access::{Principal, Role};
use gantry_domain::ids::{EnvironmentId, PromotionId, ReleaseId};
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
pub(crate) fn deployer(app: &TestApp) -> tokio::task::JoinHandle<()> {
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
    let minute = Sweep { after_seconds: 60, ..Sweep::promotions() };
    assert_eq!(state.promotions.sweep(&Sweep::promotions(), now).await.unwrap(), 0, "its jobs may be on their way");
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

/// An admin who did not request the promotions here (a requester may not approve).
fn admin() -> Principal {
    Principal::new("second-admin", vec![Role::Admin], Vec::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_that_stopped_before_its_promotion_began_is_begun_by_the_sweep() {
    let app = TestApp::spawn().await;
    let nomad = FakeNomad::start().await;
    let (env, _, release) = crate::deployments::setup(&app, &nomad).await;
    let one = "mutation($id: ID!, $i: UpdateEnvironmentInput!) { updateEnvironment(id: $id, input: $i) { requiredApprovals } }";
    app.ok(one, json!({ "id": env, "i": { "requiredApprovals": 1 } })).await;
    let requested = app.request_promotion(&release, &env).await;
    assert_eq!(requested["status"], "PENDING_APPROVAL");
    let id = requested["id"].as_str().unwrap().to_owned();
    // The approving process's table refuses the release's move, the first write after the
    // approval's: the approval stands, and nothing began.
    let approving = app.state_refusing("{\"S\":\"promoting\"}");
    let approved = approving.promotions.approve(PromotionId::parse(&id).unwrap(), (None, None), &admin()).await;
    assert!(approved.is_err(), "{approved:?}");
    let stalled = app.promotion(&id).await;
    assert_eq!((&stalled["status"], &stalled["deployments"]), (&json!("APPROVED"), &json!([])));
    let state = app.state_with(&[]);
    assert_eq!(state.promotions.sweep(&Sweep::promotions(), Utc::now()).await.unwrap(), 0, "approved just now");

    let worker = deployer(&app);
    let sweep = json!({ "sweep": "promotions", "afterSeconds": 0 }).to_string();
    app.sqs.send_message().queue_url(&app.deploy_queue).message_body(sweep).send().await.unwrap();
    let settled = app.settled(&id).await;
    worker.abort();
    assert_eq!(settled["status"], "DEPLOYED", "{settled:#}");
    assert_eq!(nomad.job_versions("shop").len(), 2, "deployed once");
    let kinds = app.evidence_kinds(&id).await;
    let at = |kind: &str| kinds.iter().position(|k| k == kind).unwrap_or_else(|| panic!("{kind} in {kinds:?}"));
    assert!(at("approval") < at("deployment_started"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "deployment_started").count(), 1, "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_that_stopped_before_it_began_is_failed_and_frees_its_environment() {
    let app = TestApp::spawn_with_workers().await;
    let nomad = FakeNomad::start().await;
    let (env, _, release) = crate::deployments::setup(&app, &nomad).await;
    let first = app.request_promotion(&release, &env).await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.settled(&first).await["status"], "DEPLOYED");
    let (env_id, release_id) = (EnvironmentId::parse(&env).unwrap(), ReleaseId::parse(&release).unwrap());
    // The hold is the rollback's last write before it begins: refused, the rollback is
    // stored APPROVED and goes no further.
    let rolling = app.state_refusing("{\"S\":\"HOLD\"}");
    let refused = rolling.promotions.rollback(env_id, Some(release_id), "errors up".into(), &admin()).await;
    assert!(refused.is_err(), "{refused:?}");
    let listed = "query($e: ID!) { promotions(environmentId: $e, first: 1) { edges { node { id status } } } }";
    let node = app.ok(listed, json!({ "e": env })).await["promotions"]["edges"][0]["node"].clone();
    assert_eq!(node["status"], "APPROVED");
    let rollback = node["id"].as_str().unwrap().to_owned();
    let to = "mutation($e: ID!, $r: ID!) { rollbackEnvironment(environmentId: $e, toReleaseId: $r, reason: \"again\") { id } }";
    let locked = app.assert_rejected("CONFLICT", to, json!({ "e": env, "r": release })).await;
    assert!(locked.contains("another promotion is active"), "the stalled rollback holds the environment: {locked}");

    let state = app.state_with(&[]);
    let later = Utc::now() + chrono::Duration::seconds(121);
    assert_eq!(state.promotions.sweep(&Sweep::promotions(), later).await.unwrap(), 1);
    let failed = app.promotion(&rollback).await;
    assert_eq!(failed["status"], "FAILED");
    assert!(failed["reason"].as_str().unwrap().contains("roll back again"), "{failed}");
    assert_eq!(app.evidence_kinds(&rollback).await, ["rollback", "stalled"]);
    assert_eq!(nomad.job_versions("shop").len(), 2, "nothing more was deployed");
    let retried = app.ok(to, json!({ "e": env, "r": release })).await["rollbackEnvironment"]["id"].clone();
    assert_eq!(app.settled(retried.as_str().unwrap()).await["status"], "DEPLOYED", "the environment is free");
}
