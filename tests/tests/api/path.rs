//! One release through dev → staging → prod: a Docker container in dev, an ECS service in
//! staging (reached by auto-promotion), and a Nomad job in prod behind an approval.

use std::time::Duration;

use aws_sdk_ecs::types::ContainerDefinition;
use gantry_domain::access::Role;
use gantry_nomad_fake::FakeNomad;
use serde_json::{Value, json};

use crate::registry::{Registry, free_port};
use crate::support::{TestApp, docker_host, ecs_client, token};

const ADD_TARGET: &str =
    "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
const STATE: &str =
    "query($id: ID!) { release(id: $id) { status state { environments { environmentName status deployedAt } } } }";

async fn wait_for_state(app: &TestApp, release: &str, done: impl Fn(&Value) -> bool) -> Value {
    gantry_tests::eventually(Duration::from_secs(60), "the release's state", || async {
        let state = app.ok(STATE, json!({ "id": release })).await["release"].clone();
        done(&state).then_some(state)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_travels_dev_staging_prod_across_docker_ecs_and_nomad() {
    let app = TestApp::spawn_with_workers().await;
    let registry = Registry::start(free_port(), &format!("{}/webhooks/registry/distribution", app.url), "unused");
    let serve_port = free_port();
    let listen = format!("127.0.0.1:{serve_port}");
    let digest =
        registry.push_with_command("shop/web", "2.0.0", "shop 2.0.0", &["httpd", "-f", "-p", &listen, "-h", "/etc"]);
    let image = format!("{}/shop/web", registry.host());
    let web = app.create_component_with(json!({ "name": "web", "imageRepository": image })).await;
    app.add_version(&web, "2.0.0", &digest).await;

    // dev: a container on the private dockerd.
    let dev = app.create_environment("dev", 10).await;
    let container = format!("gantry-path-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let docker = json!({ "name": "dev-host", "type": "DOCKER", "docker": { "endpoint": docker_host(), "containerName": container, "componentId": web,
        "healthCheck": { "command": ["wget", "-q", "-O-", format!("http://{listen}/gantry-build")], "intervalSeconds": 1, "timeoutSeconds": 1, "retries": 3 } } });
    app.ok(ADD_TARGET, json!({ "e": dev, "t": docker })).await;

    // staging: an ECS service, promoted to by itself.
    let ecs = ecs_client();
    let cluster = format!("gantry-path-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    ecs_service(&ecs, &cluster, &image).await;
    let staging = app.create_environment_with(json!({ "name": "staging", "order": 20, "autoPromote": true })).await;
    let ecs_target = json!({ "name": "ecs", "type": "ECS", "ecs": { "cluster": cluster, "service": "web", "containers": [{ "name": "web", "componentId": web }] } });
    app.ok(ADD_TARGET, json!({ "e": staging, "t": ecs_target })).await;

    // prod: a Nomad job, behind one approval.
    let nomad = FakeNomad::start().await;
    nomad.seed_job(json!({ "ID": "web", "Name": "web", "Type": "service", "Datacenters": ["dc1"],
        "TaskGroups": [{ "Name": "web", "Count": 2, "Tasks": [{ "Name": "server", "Driver": "docker", "Config": { "image": format!("{image}:1.0.0") } }] }] }));
    let prod = app.create_environment_with(json!({ "name": "prod", "order": 30, "requiredApprovals": 1 })).await;
    let nomad_target = json!({ "name": "nomad", "type": "NOMAD", "nomad": { "address": nomad.url, "jobId": "web", "tasks": [{ "name": "server", "componentId": web }] } });
    app.ok(ADD_TARGET, json!({ "e": prod, "t": nomad_target })).await;

    let release = app.ready_release("shop-2.0.0", json!([{ "componentId": web, "version": "2.0.0" }])).await;
    app.request_promotion(&release, &dev).await;
    wait_for_state(&app, &release, |s| s["state"]["environments"][1]["status"] == "DEPLOYED").await;
    let served = reqwest::get(format!("http://{listen}/gantry-build")).await.unwrap().text().await.unwrap();
    assert_eq!(served, "shop 2.0.0", "dev's container serves the release");

    let requested = app.request_promotion(&release, &prod).await;
    assert_eq!(requested["status"], "PENDING_APPROVAL");
    let (_, approved) = app
        .gql_as(
            Some(&token("alice", &[Role::Approver])),
            "mutation($id: ID!) { approvePromotion(id: $id) { status } }",
            json!({ "id": requested["id"] }),
        )
        .await;
    assert_eq!(approved["data"]["approvePromotion"]["status"], "DEPLOYING", "{approved}");
    // The release is DEPLOYED once its last environment is; the two are written one after the other.
    let state = wait_for_state(&app, &release, |s| {
        s["state"]["environments"][2]["status"] == "DEPLOYED" && s["status"] == "DEPLOYED"
    })
    .await;
    assert_eq!(state["status"], "DEPLOYED");
    assert!(
        state["state"]["environments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "DEPLOYED" && e["deployedAt"].is_string()),
        "{state:#}"
    );

    let pinned = format!("{image}@{digest}");
    let service = ecs.describe_services().cluster(&cluster).services("web").send().await.unwrap();
    let revision = ecs
        .describe_task_definition()
        .task_definition(service.services()[0].task_definition().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(revision.task_definition().unwrap().container_definitions()[0].image(), Some(pinned.as_str()));
    let job = nomad.job_versions("web");
    assert_eq!(job.last().unwrap()["TaskGroups"][0]["Tasks"][0]["Config"]["image"], pinned.as_str());
    assert!(nomad.violations().is_empty(), "{:?}", nomad.violations());
    for env in [&dev, &staging, &prod] {
        let report = app
            .ok("query($e: ID!) { verifyEvidenceChain(environmentId: $e) { valid checked } }", json!({ "e": env }))
            .await;
        assert_eq!(report["verifyEvidenceChain"]["valid"], true);
    }
    let _ = std::process::Command::new("docker").args(["-H", &docker_host(), "rm", "-f", &container]).output();
}

/// An ECS cluster with a service `web` running `image:1.0.0`.
async fn ecs_service(ecs: &aws_sdk_ecs::Client, cluster: &str, image: &str) {
    ecs.create_cluster().cluster_name(cluster).send().await.unwrap();
    let td = ecs
        .register_task_definition()
        .family(format!("{cluster}-web"))
        .container_definitions(
            ContainerDefinition::builder().name("web").image(format!("{image}:1.0.0")).memory(64).build(),
        )
        .send()
        .await
        .unwrap();
    let first = td.task_definition().unwrap().task_definition_arn().unwrap().to_owned();
    ecs.create_service()
        .cluster(cluster)
        .service_name("web")
        .task_definition(&first)
        .desired_count(1)
        .send()
        .await
        .unwrap();
}
