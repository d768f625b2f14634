//! Nomad canaries: a job whose update stanza places canaries is promoted once its canary
//! analysis passes, and failed and reverted when it does not (against the contract-checking
//! Nomad stand-in and a scripted Prometheus).

use gantry_nomad_fake::FakeNomad;
use gantry_tests::probes::FakePrometheus;
use serde_json::{Value, json};

use crate::support::{TestApp, digest};

const OLD_IMAGE: &str = "registry.example.com/acme/api:0.9";
const ADD: &str =
    "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";

/// `dev` with one Nomad target whose job places one canary, measured by `error_rate < 0.05`
/// twice; a READY release. Returns (dev, release).
async fn setup(app: &TestApp, nomad: &FakeNomad, prometheus: &FakePrometheus) -> (String, String) {
    nomad.seed_job(json!({ "ID": "shop", "Name": "shop", "Type": "service", "Datacenters": ["dc1"],
        "Update": { "Canary": 1, "AutoPromote": false },
        "TaskGroups": [{ "Name": "shop", "Count": 3, "Tasks": [{ "Name": "server", "Driver": "docker", "Config": { "image": OLD_IMAGE } }] }] }));
    let dev = app.create_environment("dev", 10).await;
    let api = app.create_component("api").await;
    app.add_version(&api, "1.0.0", &digest("api-1.0.0")).await;
    let analysis = json!({ "probes": [{ "prometheus": { "address": prometheus.url, "query": "error_rate", "op": "LT", "value": 0.05 } }],
                           "intervalSeconds": 1, "count": 2 });
    let target = json!({ "name": "nomad-dc1", "type": "NOMAD", "nomad": { "address": nomad.url, "jobId": "shop",
        "tasks": [{ "name": "server", "componentId": api }], "canaryAnalysis": analysis } });
    app.ok(ADD, json!({ "e": dev, "t": target })).await;
    let release = app.ready_release("shop-1.0.0", json!([{ "componentId": api, "version": "1.0.0" }])).await;
    (dev, release)
}

fn image_of(version: &Value) -> &str {
    version["TaskGroups"][0]["Tasks"][0]["Config"]["image"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_canaries_that_pass_their_analysis_are_promoted() {
    let app = TestApp::spawn_with_workers().await;
    let (nomad, prometheus) = (FakeNomad::start().await, FakePrometheus::start().await);
    prometheus.script([0.01, 0.02]);
    let (dev, release) = setup(&app, &nomad, &prometheus).await;
    let done = app.promote(&release, &dev).await;
    assert_eq!(done["status"], "DEPLOYED", "{done:#}");
    let message = done["deployments"][0]["message"].as_str().unwrap();
    assert!(message.contains("canary analysis passed (0 of 2 measurements failed); promoted"), "{message}");
    let ops = nomad.operations();
    assert!(ops.contains(&"PostDeploymentPromote".to_owned()), "{ops:?}");
    assert!(!ops.contains(&"PostJobRevert".to_owned()), "{ops:?}");
    assert!(nomad.violations().is_empty(), "{:?}", nomad.violations());
    assert_eq!(prometheus.queries().len(), 2);
    // The evidence of the result keeps what happened to the canaries.
    let q = "query($p: ID!) { evidence(promotionId: $p) { kind payload } }";
    let evidence = app.ok(q, json!({ "p": done["id"] })).await["evidence"].clone();
    let result = evidence.as_array().unwrap().iter().find(|e| e["kind"] == "deployment_result").unwrap().clone();
    assert!(result["payload"][0]["message"].as_str().unwrap().contains("promoted"), "{result:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_that_fail_their_analysis_are_failed_and_reverted() {
    let app = TestApp::spawn_with_workers().await;
    let (nomad, prometheus) = (FakeNomad::start().await, FakePrometheus::start().await);
    prometheus.script([0.5]);
    let (dev, release) = setup(&app, &nomad, &prometheus).await;
    let done = app.promote(&release, &dev).await;
    assert_eq!(done["status"], "FAILED", "{done:#}");
    let reason = done["reason"].as_str().unwrap();
    assert!(reason.contains("canary analysis failed: 1 of 1 measurements failed"), "{reason}");
    let ops = nomad.operations();
    for op in ["PostDeploymentFail", "PostJobRevert"] {
        assert!(ops.contains(&op.to_owned()), "{op} in {ops:?}");
    }
    assert!(!ops.contains(&"PostDeploymentPromote".to_owned()), "{ops:?}");
    let versions = nomad.job_versions("shop");
    assert_eq!(image_of(versions.last().unwrap()), OLD_IMAGE, "the job runs the old image again");
}

#[tokio::test]
async fn a_canary_analysis_is_checked_when_the_target_is_added() {
    let app = TestApp::spawn().await;
    let api = app.create_component("api").await;
    let dev = app.create_environment("dev", 10).await;
    let analysis = json!({ "probes": [{ "http": { "url": "http://127.0.0.1:9/health" } }], "intervalSeconds": 1, "count": 2, "failureLimit": 2 });
    let target = json!({ "name": "nomad", "type": "NOMAD", "nomad": { "address": "http://127.0.0.1:4646", "jobId": "shop",
        "tasks": [{ "name": "server", "componentId": api }], "canaryAnalysis": analysis } });
    let message = app.assert_rejected("BAD_USER_INPUT", ADD, json!({ "e": dev, "t": target })).await;
    assert!(message.contains("canary analysis: count must be"), "{message}");
}
