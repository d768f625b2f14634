use std::time::Duration;

use gantry_nomad_fake::{FakeNomad, Outcome};
use serde_json::{Value, json};

use crate::support::{TestApp, digest};

const ENVIRONMENT: &str = "query($e: ID!) { environment(id: $e) { currentRelease { name } hold { reason } history { status automatic release { name } } } }";

async fn ready_release(app: &TestApp, component: &str, version: &str) -> String {
    app.add_version(component, version, &digest(version)).await;
    app.ready_release(&format!("shop-{version}"), json!([{ "componentId": component, "version": version }])).await
}

async fn wait_for(app: &TestApp, env: &str, done: impl Fn(&Value) -> bool) -> Value {
    gantry_tests::eventually(Duration::from_secs(30), "the environment's state", || async {
        let e = app.ok(ENVIRONMENT, json!({ "e": env })).await["environment"].clone();
        done(&e).then_some(e)
    })
    .await
}

#[tokio::test]
async fn auto_promotion_rollback_and_hold() {
    let app = TestApp::spawn().await;
    let dev = app.create_environment_with(json!({ "name": "dev", "order": 10 })).await;
    let staging = app.create_environment_with(json!({ "name": "staging", "order": 20, "autoPromote": true })).await;
    let api = app.create_component("api").await;

    // A release deployed to dev is proposed to staging by itself (both have no targets, so
    // deployments finish at once).
    let r1 = ready_release(&app, &api, "1.0.0").await;
    assert_eq!(app.request_promotion(&r1, &dev).await["status"], "DEPLOYED");
    let s = app.ok(ENVIRONMENT, json!({ "e": staging })).await["environment"].clone();
    assert_eq!(s["currentRelease"]["name"], "shop-1.0.0");
    assert_eq!(
        s["history"][0],
        json!({ "status": "DEPLOYED", "automatic": true, "release": { "name": "shop-1.0.0" } })
    );
    let r2 = ready_release(&app, &api, "1.1.0").await;
    app.request_promotion(&r2, &dev).await;
    assert_eq!(
        app.ok(ENVIRONMENT, json!({ "e": staging })).await["environment"]["currentRelease"]["name"],
        "shop-1.1.0"
    );

    // Roll staging back: 1.0.0 runs again, 1.1.0's promotion is ROLLED_BACK, and staging is held.
    let rollback = "mutation($e: ID!) { rollbackEnvironment(environmentId: $e, reason: \"errors up\") { status release { name } gates { gate } } }";
    let rolled = app.ok(rollback, json!({ "e": staging })).await["rollbackEnvironment"].clone();
    assert_eq!(
        rolled,
        json!({ "status": "DEPLOYED", "release": { "name": "shop-1.0.0" }, "gates": [{ "gate": "rollback" }] })
    );
    let s = app.ok(ENVIRONMENT, json!({ "e": staging })).await["environment"].clone();
    assert_eq!(s["currentRelease"]["name"], "shop-1.0.0");
    assert_eq!(s["hold"]["reason"], "rollback: errors up");
    let statuses: Vec<_> = s["history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["DEPLOYED", "ROLLED_BACK", "DEPLOYED"]);
    let state = app
        .ok(
            "query($id: ID!) { releaseState(id: $id) { environments { environmentName status } } }",
            json!({ "id": r2 }),
        )
        .await;
    assert_eq!(
        state["releaseState"]["environments"][1],
        json!({ "environmentName": "staging", "status": "ROLLED_BACK" })
    );

    // While held, a release deployed to dev stays out of staging.
    let r3 = ready_release(&app, &api, "1.2.0").await;
    app.request_promotion(&r3, &dev).await;
    let s = app.ok(ENVIRONMENT, json!({ "e": staging })).await["environment"].clone();
    assert_eq!(s["currentRelease"]["name"], "shop-1.0.0");
    assert_eq!(s["history"].as_array().unwrap().len(), 3);

    releasing_and_refused_rollbacks(&app, &dev, &staging, &r1).await;

    let kinds: Vec<String> = app
        .ok(
            "query($e: ID!) { environmentEvidence(environmentId: $e, first: 100) { edges { node { kind } } } }",
            json!({ "e": staging }),
        )
        .await["environmentEvidence"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap().to_owned())
        .collect();
    for kind in ["rollback", "rolled_back", "hold", "hold_released"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    let report =
        app.ok("query($e: ID!) { verifyEvidenceChain(environmentId: $e) { valid } }", json!({ "e": staging })).await;
    assert_eq!(report["verifyEvidenceChain"]["valid"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_deployment_rolls_back_by_itself() {
    let app = TestApp::spawn_with_workers().await;
    let nomad = FakeNomad::start().await;
    nomad.seed_service("shop", &["server"]);
    let dev = app.create_environment_with(json!({ "name": "dev", "order": 10, "autoRollback": true })).await;
    let api = app.create_component("api").await;
    let target = json!({ "name": "nomad", "type": "NOMAD", "nomad": { "address": nomad.url, "jobId": "shop", "tasks": [{ "name": "server", "componentId": api }] } });
    app.ok(
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }",
        json!({ "e": dev, "t": target }),
    )
    .await;
    let r1 = ready_release(&app, &api, "1.0.0").await;
    app.request_promotion(&r1, &dev).await;
    wait_for(&app, &dev, |e| e["currentRelease"]["name"] == "shop-1.0.0").await;

    nomad.script([Outcome::Fail]);
    let r2 = ready_release(&app, &api, "1.1.0").await;
    app.request_promotion(&r2, &dev).await;
    let e = wait_for(&app, &dev, |e| {
        e["history"].as_array().unwrap().len() == 3 && e["history"][0]["status"] == "DEPLOYED"
    })
    .await;
    let statuses: Vec<_> = e["history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["DEPLOYED", "FAILED", "DEPLOYED"], "{e:#}");
    assert_eq!(e["history"][0]["release"]["name"], "shop-1.0.0", "the rollback redeployed 1.0.0");
    assert_eq!(e["currentRelease"]["name"], "shop-1.0.0");
    assert!(e["hold"]["reason"].as_str().unwrap().contains("automatic rollback"));
    assert!(nomad.violations().is_empty(), "{:?}", nomad.violations());
}

/// Releasing staging's hold, rolling dev back to a named release, and rollbacks refused.
async fn releasing_and_refused_rollbacks(app: &TestApp, dev: &str, staging: &str, r1: &str) {
    let release_hold = "mutation($e: ID!) { releaseHold(environmentId: $e) }";
    assert_eq!(app.ok(release_hold, json!({ "e": staging })).await["releaseHold"], true);
    app.assert_rejected("CONFLICT", release_hold, json!({ "e": staging })).await;
    assert_eq!(app.ok(ENVIRONMENT, json!({ "e": staging })).await["environment"]["hold"], Value::Null);
    // dev has one release deployed after another; rolling back to a named release works too.
    let named = "mutation($e: ID!, $r: ID!) { rollbackEnvironment(environmentId: $e, toReleaseId: $r, reason: \"pin\") { release { name } } }";
    assert_eq!(
        app.ok(named, json!({ "e": dev, "r": r1 })).await["rollbackEnvironment"]["release"]["name"],
        "shop-1.0.0"
    );
    let fresh = app.create_environment_with(json!({ "name": "qa", "order": 40 })).await;
    app.assert_rejected(
        "CONFLICT",
        "mutation($e: ID!) { rollbackEnvironment(environmentId: $e, reason: \"x\") { id } }",
        json!({ "e": fresh }),
    )
    .await;
    app.assert_rejected(
        "BAD_USER_INPUT",
        "mutation($e: ID!) { rollbackEnvironment(environmentId: $e, reason: \" \") { id } }",
        json!({ "e": staging }),
    )
    .await;
}
