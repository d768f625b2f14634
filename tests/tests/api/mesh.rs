//! Nomad behind Consul: two jobs on the Nomad stand-in take turns, and the service's
//! resolver and splitter move on the Consul stand-in, each checked against its provider's
//! published API. The test plays Nomad's part in Consul: a running job's services are
//! registered with the meta its spec gives them, passing; a stopped job's are gone.

use std::collections::BTreeMap;
use std::time::Duration;

use gantry_consul_fake::FakeConsul;
use gantry_consul_fake::contract::Fault;
use gantry_nomad_fake::FakeNomad;
use serde_json::{Value, json};

use crate::support::{TestApp, digest};

const TOKEN: &str = "consul-acl-token-for-gantry";

/// Registers each running job's services in Consul, as Nomad does, until the test ends.
fn register_services(nomad: FakeNomad, consul: FakeConsul, jobs: [&'static str; 2]) {
    tokio::spawn(async move {
        loop {
            let mut instances = Vec::new();
            for job in jobs {
                let Some(spec) = nomad.job_versions(job).last().cloned() else { continue };
                if spec["Stop"] == true || spec["Status"] == "dead" {
                    continue;
                }
                let meta: BTreeMap<String, String> =
                    serde_json::from_value(spec["TaskGroups"][0]["Services"][0]["Meta"].clone()).unwrap_or_default();
                instances.push((format!("{job}-1"), meta, true));
            }
            consul.set_instances("web", instances);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

async fn put(consul: &FakeConsul, entry: Value) {
    let res = reqwest::Client::new().put(format!("{}/v1/config", consul.url)).header("X-Consul-Token", TOKEN);
    assert_eq!(res.json(&entry).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nomad_canary_moves_consul_splits_between_two_jobs() {
    let app = TestApp::spawn_with_workers().await;
    let (nomad, consul) = (FakeNomad::start().await, FakeConsul::start().await);
    consul.require_token(TOKEN);
    // The operator's part: the service speaks http, and the first job serves subset blue.
    put(&consul, json!({ "Kind": "service-defaults", "Name": "web", "Protocol": "http" })).await;
    nomad.seed_job(json!({ "ID": "web-blue", "Name": "web-blue", "Type": "service", "Datacenters": ["dc1"],
        "TaskGroups": [{ "Name": "web", "Count": 2, "Services": [{ "Name": "web", "PortLabel": "http", "Meta": { "gantry_slot": "blue" } }],
            "Tasks": [{ "Name": "server", "Driver": "docker", "Config": { "image": "registry.example.com/acme/web:0.9" } }] }] }));
    register_services(nomad.clone(), consul.clone(), ["web-blue", "web-green"]);
    let token_ref =
        gantry_tests::put_secret(&format!("gantry-test/{}/consul", uuid::Uuid::new_v4().simple()), TOKEN).await;

    let web = app.create_component("web").await;
    for version in ["1.0.0", "1.1.0", "1.2.0"] {
        app.add_version(&web, version, &digest(&format!("web-{version}"))).await;
    }
    let dev = app.create_environment("dev", 10).await;
    let router = json!({ "consul": { "address": consul.url, "tokenRef": token_ref, "service": "web", "slots": [
        { "subset": "blue", "jobId": "web-blue" }, { "subset": "green", "jobId": "web-green" }] } });
    let strategy = json!({ "canary": { "steps": [{ "setWeight": 20, "pauseSeconds": 1 }, { "setWeight": 60, "pauseSeconds": 1 }] } });
    let target = json!({ "name": "nomad-dc1", "type": "NOMAD", "nomad": { "address": nomad.url, "jobId": "web-blue",
        "tasks": [{ "name": "server", "componentId": web }], "traffic": { "router": router, "strategy": strategy } } });
    let add =
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
    app.ok(add, json!({ "e": dev, "t": target })).await;
    let promote = async |version: &str| gantry_tests::routed::promote_settled(&app, &web, &dev, version).await;

    // Green takes over in steps; blue is stopped once green has every request.
    let (settled, read) = promote("1.0.0").await;
    assert_eq!(settled["status"], "DEPLOYED", "{settled:#}");
    assert_eq!(
        gantry_tests::routed::verdicts(&read),
        ["HOLDING@20", "PASSED@20", "HOLDING@60", "PASSED@60", "COMPLETED@100"]
    );
    let commands = &read[0]["change"]["commands"];
    assert_eq!(commands[1], "PUT /v1/config service-splitter/web green=20 blue=80");
    assert_eq!(consul.splits("web"), [("green".to_owned(), 100.0), ("blue".to_owned(), 0.0)]);
    let resolver = consul.entry("service-resolver", "web").unwrap();
    assert_eq!(resolver["Subsets"]["green"]["Filter"], "Service.Meta.gantry_slot == \"green\"");
    let green = nomad.job_versions("web-green").last().cloned().unwrap();
    assert_eq!(
        green["TaskGroups"][0]["Tasks"][0]["Config"]["image"],
        format!("registry.example.com/acme/web@{}", digest("web-1.0.0"))
    );
    assert_eq!(green["TaskGroups"][0]["Services"][0]["Meta"]["gantry_slot"], "green");
    assert_eq!(green["TaskGroups"][0]["Count"], 2, "the new job runs at the stable one's size");
    assert_eq!(nomad.job_versions("web-blue").last().unwrap()["Stop"], true, "blue is stopped");

    // Rate limited once: Consul's 429 is waited out, and blue takes its turn.
    consul.faults([Fault::RateLimited]);
    let (settled, _) = promote("1.1.0").await;
    assert_eq!(settled["status"], "DEPLOYED", "{settled:#}");
    assert_eq!(consul.splits("web"), [("blue".to_owned(), 100.0), ("green".to_owned(), 0.0)]);
    assert_eq!(nomad.job_versions("web-green").last().unwrap()["Stop"], true);

    // The service no longer speaks http: Consul refuses the splitter, the promotion fails,
    // and every request stays on blue.
    put(&consul, json!({ "Kind": "service-defaults", "Name": "web", "Protocol": "tcp" })).await;
    let (settled, _) = promote("1.2.0").await;
    assert_eq!(settled["status"], "FAILED", "{settled:#}");
    assert!(settled["reason"].as_str().unwrap().contains("does not permit advanced routing"), "{settled:#}");
    assert_eq!(consul.splits("web"), [("blue".to_owned(), 100.0), ("green".to_owned(), 0.0)]);
    assert_eq!(nomad.job_versions("web-green").last().unwrap()["Stop"], true, "green was not started");
    assert!(consul.violations().is_empty(), "{:?}", consul.violations());
    assert!(nomad.violations().is_empty(), "{:?}", nomad.violations());
}
