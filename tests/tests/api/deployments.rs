//! Promotions deploy to Nomad through the deployer worker, against the contract-checking
//! Nomad stand-in.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use gantry_nomad_fake::{FakeNomad, Outcome};
use serde_json::{Value, json};

use crate::support::{TestApp, digest};

const OLD_IMAGE: &str = "registry.example.com/acme/api:0.9";

fn job() -> Value {
    json!({ "ID": "shop", "Name": "shop", "Type": "service", "Datacenters": ["dc1"],
            "TaskGroups": [{ "Name": "shop", "Count": 1, "Tasks": [
                { "Name": "server", "Driver": "docker", "Config": { "image": OLD_IMAGE } },
                { "Name": "sidecar", "Driver": "docker", "Config": { "image": "envoy:1" } } ] }] })
}

/// An environment `dev` whose one target is the fake's `shop` job, and a READY release of `api`.
pub(crate) async fn setup(app: &TestApp, nomad: &FakeNomad) -> (String, String, String) {
    nomad.seed_job(job());
    let dev = app.create_environment("dev", 10).await;
    let api = app.create_component("api").await;
    app.add_version(&api, "1.0.0", &digest("api-1.0.0")).await;
    let target = json!({ "name": "nomad-dc1", "type": "NOMAD", "nomad": { "address": nomad.url, "jobId": "shop",
        "tasks": [{ "name": "server", "componentId": api }] } });
    app.ok(
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }",
        json!({ "e": dev, "t": target }),
    )
    .await;
    let release = app.ready_release("shop-1.0.0", json!([{ "componentId": api, "version": "1.0.0" }])).await;
    (dev, api, release)
}

/// The image of a job version's first task.
pub(crate) fn image_of(version: &Value) -> &str {
    version["TaskGroups"][0]["Tasks"][0]["Config"]["image"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_deploys_to_nomad_exactly_once() {
    let app = TestApp::spawn_with_workers().await;
    let nomad = FakeNomad::start().await;
    let (dev, _, release) = setup(&app, &nomad).await;

    let requested = app.request_promotion(&release, &dev).await;
    assert_eq!(requested["status"], "DEPLOYING", "no approvals needed: deployment starts at once");
    let settled = app.settled(requested["id"].as_str().unwrap()).await;
    assert_eq!(settled["status"], "DEPLOYED", "{settled:#}");
    assert_eq!(settled["deployments"][0]["state"], "SUCCEEDED");
    assert_eq!(settled["deployments"][0]["type"], "NOMAD");

    let versions = nomad.job_versions("shop");
    assert_eq!(versions.len(), 2);
    assert_eq!(image_of(&versions[1]), format!("registry.example.com/acme/api@{}", digest("api-1.0.0")));
    assert_eq!(versions[1]["TaskGroups"][0]["Tasks"][1]["Config"]["image"], "envoy:1", "unmapped tasks are left alone");
    assert!(nomad.violations().is_empty(), "{:?}", nomad.violations());
    let ops = nomad.operations();
    assert_eq!(ops, ["GetJob", "PostJobPlan", "PostJob", "GetEvaluation", "GetDeployment"]);

    let state = app
        .ok(
            "query($id: ID!) { release(id: $id) { status state { environments { status deployedAt } } } }",
            json!({ "id": release }),
        )
        .await;
    assert_eq!(state["release"]["status"], "DEPLOYED");
    assert_eq!(state["release"]["state"]["environments"][0]["status"], "DEPLOYED");

    // A redelivered job finds its deployment finished and does nothing.
    let deployment_job = json!({ "promotionId": requested["id"], "targetId": app.ok("query($e: ID!) { environment(id: $e) { targets { id } } }", json!({ "e": dev })).await["environment"]["targets"][0]["id"], "attempt": 1 });
    app.sqs.send_message().queue_url(&app.deploy_queue).message_body(deployment_job.to_string()).send().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(nomad.operations().len(), ops.len(), "exactly once");

    let kinds = app.evidence_kinds(requested["id"].as_str().unwrap()).await;
    assert_eq!(kinds, ["request", "gate_evaluation", "deployment_started", "deployment_result"]);
    let artifact = &gantry_tests::artifacts(&app, requested["id"].as_str().unwrap()).await[0];
    assert_eq!(artifact["kind"], "NOMAD_JOB");
    let applied: Value = serde_json::from_str(artifact["content"].as_str().unwrap()).unwrap();
    assert_eq!(image_of(&applied), image_of(&versions[1]), "the stored job is the one registered");
    let report =
        app.ok("query($e: ID!) { verifyEvidenceChain(environmentId: $e) { valid } }", json!({ "e": dev })).await;
    assert_eq!(report["verifyEvidenceChain"]["valid"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_nomad_deployment_is_reverted() {
    let app = TestApp::spawn_with_workers().await;
    let nomad = FakeNomad::start().await;
    nomad.script([Outcome::Fail]);
    let (dev, _, release) = setup(&app, &nomad).await;
    let requested = app.request_promotion(&release, &dev).await;
    let settled = app.settled(requested["id"].as_str().unwrap()).await;
    assert_eq!(settled["status"], "FAILED");
    assert!(settled["reason"].as_str().unwrap().contains("reverted job shop to version 0"), "{settled:#}");
    assert_eq!(settled["deployments"][0]["state"], "FAILED");
    let versions = nomad.job_versions("shop");
    assert_eq!(versions.len(), 3, "the failed version, then the revert");
    assert_eq!(image_of(&versions[2]), OLD_IMAGE, "what ran before runs again");
    assert!(nomad.violations().is_empty(), "{:?}", nomad.violations());
    let state = app
        .ok(
            "query($id: ID!) { release(id: $id) { status state { environments { status } } } }",
            json!({ "id": release }),
        )
        .await;
    assert_eq!(state["release"]["status"], "READY");
    assert_eq!(state["release"]["state"]["environments"][0]["status"], "NOT_DEPLOYED");
    // The environment is free for the next attempt.
    let again = app.request_promotion(&release, &dev).await;
    assert_eq!(again["status"], "DEPLOYING", "{again}");
}

/// A worker takes a job and dies without finishing. Once its lease runs out, the redelivered
/// job finishes the deployment, once.
#[tokio::test]
async fn a_dead_workers_job_is_finished_once_on_redelivery() {
    use gantry_domain::deployments::{DeployJob, DeploymentRepository};
    let app = TestApp::spawn().await; // no workers: this test plays them
    let nomad = FakeNomad::start().await;
    let (dev, _, release) = setup(&app, &nomad).await;
    let requested = app.request_promotion(&release, &dev).await;
    assert_eq!(requested["status"], "DEPLOYING");
    let received = app.sqs.receive_message().queue_url(&app.deploy_queue).wait_time_seconds(2).send().await.unwrap();
    let job: DeployJob = serde_json::from_str(received.messages.unwrap()[0].body.as_deref().unwrap()).unwrap();
    assert!(job.alone, "the promotion's only deployment: {job:?}");

    // The first worker claims it with a short lease and is never heard from again.
    let now = chrono::Utc::now();
    let claimed = app.repo.claim(&job, "doomed-worker", now, now + chrono::Duration::milliseconds(500)).await.unwrap();
    assert!(claimed.is_some());
    // While the lease holds, a redelivery leaves it alone.
    app.state.deployer.run(job.clone()).await.unwrap();
    assert!(nomad.operations().is_empty());
    tokio::time::sleep(Duration::from_millis(700)).await;
    app.state.deployer.run(job.clone()).await.unwrap();
    let settled = app.settled(requested["id"].as_str().unwrap()).await;
    assert_eq!(settled["status"], "DEPLOYED");
    assert_eq!(nomad.operations().iter().filter(|o| *o == "PostJob").count(), 1);
    // A third delivery changes nothing.
    app.state.deployer.run(job.clone()).await.unwrap();
    assert_eq!(nomad.operations().iter().filter(|o| *o == "PostJob").count(), 1, "exactly once");
    // One deployment keeps no count of open deployments: its end settled the promotion.
    let key = gantry_store::keys::open_deployments(job.promotion_id).primary();
    let open = app.dynamodb.get_item().table_name(&app.table).set_key(Some(key)).consistent_read(true).send().await;
    assert!(open.unwrap().item.is_none(), "no count for a promotion of one deployment");
}

/// A job that fails on every delivery (its Nomad is gone) is retried, and on its last
/// delivery it fails the deployment, so the promotion shows FAILED with the reason while
/// SQS moves the job to the dead-letter queue.
#[tokio::test]
async fn a_poison_job_fails_its_promotion_on_the_last_delivery() {
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    let app = TestApp::spawn().await;
    let nomad = FakeNomad::start().await;
    let (dev, api, release) = setup(&app, &nomad).await;
    // Point the target at a port nobody listens on.
    let target_id = app.ok("query($e: ID!) { environment(id: $e) { targets { id } } }", json!({ "e": dev })).await["environment"]["targets"][0]["id"].clone();
    app.ok("mutation($id: ID!) { removeDeploymentTarget(id: $id) { id } }", json!({ "id": target_id })).await;
    let gone = json!({ "name": "gone", "type": "NOMAD", "nomad": { "address": "http://127.0.0.1:9", "jobId": "shop", "tasks": [{ "name": "server", "componentId": api }] } });
    app.ok(
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }",
        json!({ "e": dev, "t": gone }),
    )
    .await;
    let requested = app.request_promotion(&release, &dev).await;
    let received = app.sqs.receive_message().queue_url(&app.deploy_queue).wait_time_seconds(2).send().await.unwrap();
    let body = received.messages.unwrap()[0].body.clone().unwrap();

    let delivery = |count: u32| {
        let mut record = SqsMessage::default();
        record.message_id = Some(format!("m{count}"));
        record.body = Some(body.clone());
        record.attributes = [("ApproximateReceiveCount".to_owned(), count.to_string())].into();
        let mut event = SqsEvent::default();
        event.records = vec![record];
        event
    };
    for count in 1..=2 {
        let response = gantry_deployer::handle(app.state.clone(), delivery(count)).await;
        assert_eq!(response.batch_item_failures.len(), 1, "delivery {count} fails and will be retried");
        let p = app.promotion(requested["id"].as_str().unwrap()).await;
        assert_eq!(p["status"], "DEPLOYING");
        // Let the lease of the failed attempt run out, as the queue's visibility timeout would.
        let job: gantry_domain::deployments::DeployJob = serde_json::from_str(&body).unwrap();
        let (later, past) =
            (chrono::Utc::now() + chrono::Duration::days(1), chrono::Utc::now() - chrono::Duration::hours(1));
        use gantry_domain::deployments::DeploymentRepository;
        assert!(app.repo.claim(&job, "expired", later, past).await.unwrap().is_some());
    }
    let response = gantry_deployer::handle(app.state.clone(), delivery(3)).await;
    assert_eq!(response.batch_item_failures.len(), 1, "the last delivery still fails, so SQS dead-letters it");
    let p = app.promotion(requested["id"].as_str().unwrap()).await;
    assert_eq!(p["status"], "FAILED", "{p:#}");
    assert!(p["reason"].as_str().unwrap().contains("gave up after 3 deliveries"), "{p:#}");
    assert_eq!(p["deployments"][0]["state"], "FAILED");
}

/// A deployment that stalls past the deadline is failed through Nomad's API and reverted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_nomad_deployment_is_failed_and_reverted() {
    let app = TestApp::spawn_with_workers().await;
    let nomad = FakeNomad::start().await;
    nomad.script([Outcome::Stall]);
    let (dev, _, release) = setup(&app, &nomad).await;
    let requested = app.request_promotion(&release, &dev).await;
    let settled = app.settled(requested["id"].as_str().unwrap()).await;
    assert_eq!(settled["status"], "FAILED");
    assert!(settled["reason"].as_str().unwrap().contains("did not finish in time"), "{settled:#}");
    assert!(nomad.operations().contains(&"PostDeploymentFail".to_owned()));
    assert!(nomad.operations().contains(&"PostJobRevert".to_owned()));
    assert_eq!(image_of(nomad.job_versions("shop").last().unwrap()), OLD_IMAGE);
    assert!(nomad.violations().is_empty(), "{:?}", nomad.violations());
}

/// Concurrent requests into one environment with a target: one promotion wins with its one
/// deployment, and the losers leave no deployment behind (theirs are written before the
/// transaction that failed, and removed).
#[tokio::test]
async fn requests_that_lose_the_environment_leave_no_deployments() {
    let app = TestApp::spawn().await; // no workers: the winner's job waits in the queue
    let nomad = FakeNomad::start().await;
    let (dev, _, release) = setup(&app, &nomad).await;
    let request = "mutation($r: ID!, $e: ID!) { requestPromotion(releaseId: $r, environmentId: $e) { id status } }";
    let vars = json!({ "r": release, "e": dev });
    let attempts = futures::future::join_all((0..8).map(|_| app.gql(request, vars.clone()))).await;
    let won: Vec<&Value> = attempts.iter().filter(|r| r.get("errors").is_none()).collect();
    assert_eq!(won.len(), 1, "{attempts:#?}");
    assert_eq!(won[0]["data"]["requestPromotion"]["status"], "DEPLOYING");
    let scan = app
        .dynamodb
        .scan()
        .table_name(&app.table)
        .filter_expression("environmentId = :e AND begins_with(SK, :d)")
        .expression_attribute_values(":e", aws_sdk_dynamodb::types::AttributeValue::S(dev.clone()))
        .expression_attribute_values(":d", aws_sdk_dynamodb::types::AttributeValue::S("DEPLOYMENT#".into()))
        .send()
        .await
        .unwrap();
    let owners: Vec<&str> = scan.items().iter().map(|i| i["promotionId"].as_s().unwrap().as_str()).collect();
    assert_eq!(owners, [won[0]["data"]["requestPromotion"]["id"].as_str().unwrap()], "only the winner's deployment");
}

/// A request that deploys at once moves its release to PROMOTING in the same write, and is
/// written again on the release as it is now when the release changed meanwhile: edits of
/// the release racing the request never fail it, and the release and its membership both
/// say PROMOTING.
#[tokio::test]
async fn a_release_edited_during_a_request_is_read_again_and_moves_with_it() {
    let app = TestApp::spawn().await; // no workers: the promotion stays DEPLOYING
    let nomad = FakeNomad::start().await;
    let (dev, api, release) = setup(&app, &nomad).await;
    let edit = "mutation($id: ID!, $n: String!) { updateRelease(id: $id, input: { displayName: $n }) { id } }";
    let request = "mutation($r: ID!, $e: ID!) { requestPromotion(releaseId: $r, environmentId: $e) { id status } }";
    let edits =
        futures::future::join_all((0..12).map(|i| app.gql(edit, json!({ "id": release, "n": format!("edit {i}") }))));
    let (requested, edited) = tokio::join!(app.gql(request, json!({ "r": release, "e": dev })), edits);
    assert!(requested.get("errors").is_none(), "{requested:#}");
    assert_eq!(requested["data"]["requestPromotion"]["status"], "DEPLOYING");
    assert!(edited.iter().any(|e| e.get("errors").is_none()), "some edits went through: {edited:#?}");
    let state = app.ok("query($id: ID!) { release(id: $id) { status } }", json!({ "id": release })).await;
    assert_eq!(state["release"]["status"], "PROMOTING");
    let listed = app
        .ok(
            "query($c: ID!) { releases(componentId: $c, status: PROMOTING) { edges { node { id } } } }",
            json!({ "c": api }),
        )
        .await;
    assert_eq!(listed["releases"]["edges"][0]["node"]["id"], release, "its membership moved too: {listed}");
}

/// An artifact is stored under its content's hash, which the deployment names. One stored
/// before artifacts were keyed so (`ARTIFACT#<target>`) is still read, when its hash is the
/// one the deployment names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_is_kept_under_its_hash_and_one_kept_before_is_still_read() {
    let app = TestApp::spawn_with_workers().await;
    let nomad = FakeNomad::start().await;
    let (dev, _, release) = setup(&app, &nomad).await;
    let promotion = app.promote(&release, &dev).await["id"].as_str().unwrap().to_owned();
    let artifact = gantry_tests::artifacts(&app, &promotion).await[0].clone();
    let sha = artifact["sha256"].as_str().unwrap().to_owned();
    let stored = app.items_under(&format!("PROMOTION#{promotion}"), "ARTIFACT#").await;
    let item = stored.first().cloned().expect("the artifact is stored");
    let sk = item["SK"].as_s().unwrap().clone();
    assert_eq!((stored.len(), sk.ends_with(&format!("#{sha}"))), (1, true), "{sk}");

    // Moved where an artifact was kept before: still read, by the hash the deployment names.
    let unhashed = sk.trim_end_matches(&format!("#{sha}")).to_owned();
    let move_to = |sk: String, item: &std::collections::HashMap<String, AttributeValue>| {
        let mut item = item.clone();
        item.insert("SK".into(), AttributeValue::S(sk));
        app.dynamodb.put_item().table_name(&app.table).set_item(Some(item)).send()
    };
    let key = [("PK", item["PK"].clone()), ("SK", item["SK"].clone())].map(|(k, v)| (k.to_owned(), v));
    app.dynamodb.delete_item().table_name(&app.table).set_key(Some(key.into())).send().await.unwrap();
    move_to(unhashed.clone(), &item).await.unwrap();
    assert_eq!(gantry_tests::artifacts(&app, &promotion).await[0]["content"], artifact["content"]);
    // One whose hash is not the one named is not this deployment's artifact.
    let mut other = item.clone();
    other.insert("sha256".into(), AttributeValue::S(format!("sha256:{}", "0".repeat(64))));
    move_to(unhashed, &other).await.unwrap();
    let q = "query($id: ID!) { promotion(id: $id) { deployments { artifact { sha256 content } } } }";
    let shown = app.ok(q, json!({ "id": promotion })).await["promotion"]["deployments"][0]["artifact"].clone();
    assert_eq!(shown, json!({ "sha256": sha, "content": null }));
}
