//! Promotions deploy to an ECS service on the emulator's ECS API.

use aws_sdk_ecs::types::ContainerDefinition;
use serde_json::json;

use crate::support::{TestApp, digest, ecs_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_registers_a_revision_and_updates_the_service() {
    let app = TestApp::spawn_with_workers().await;
    let ecs = ecs_client();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (cluster, family) = (format!("gantry-{suffix}"), format!("shop-{suffix}"));
    ecs.create_cluster().cluster_name(&cluster).send().await.unwrap();
    let container = |name: &str, image: &str| ContainerDefinition::builder().name(name).image(image).memory(64).build();
    let registered = ecs
        .register_task_definition()
        .family(&family)
        .container_definitions(container("web", "registry.example.com/acme/web:0.9"))
        .container_definitions(container("envoy", "envoy:1"))
        .send()
        .await
        .unwrap();
    let first_revision = registered.task_definition().unwrap().task_definition_arn().unwrap().to_owned();
    ecs.create_service()
        .cluster(&cluster)
        .service_name("shop")
        .task_definition(&first_revision)
        .desired_count(1)
        .send()
        .await
        .unwrap();

    let web = app
        .ok(
            "mutation { createComponent(input: { name: \"web\", imageRepository: \"registry.example.com/acme/web\" }) { id } }",
            json!({}),
        )
        .await["createComponent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.add_version(&web, "1.0.0", &digest("web-1.0.0")).await;
    let dev = app.create_environment("dev", 10).await;
    let target = json!({ "name": "ecs", "type": "ECS", "ecs": { "cluster": cluster, "service": "shop", "containers": [{ "name": "web", "componentId": web }] } });
    app.ok(
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }",
        json!({ "e": dev, "t": target }),
    )
    .await;
    let release = app.ready_release("shop-1.0.0", json!([{ "componentId": web, "version": "1.0.0" }])).await;
    let settled = app.promote(&release, &dev).await;
    assert_eq!(settled["status"], "DEPLOYED", "{settled:#}");

    let service = ecs.describe_services().cluster(&cluster).services("shop").send().await.unwrap();
    let now_running = service.services()[0].task_definition().unwrap().to_owned();
    assert_ne!(now_running, first_revision, "a new revision runs");
    let td = ecs.describe_task_definition().task_definition(&now_running).send().await.unwrap();
    let images: Vec<_> = td
        .task_definition()
        .unwrap()
        .container_definitions()
        .iter()
        .map(|c| (c.name().unwrap().to_owned(), c.image().unwrap().to_owned()))
        .collect();
    assert!(
        images.contains(&("web".into(), format!("registry.example.com/acme/web@{}", digest("web-1.0.0")))),
        "{images:?}"
    );
    assert!(images.contains(&("envoy".into(), "envoy:1".into())), "unmapped containers are left alone: {images:?}");
    let artifact = &gantry_tests::artifacts(&app, settled["id"].as_str().unwrap()).await[0];
    let applied: serde_json::Value = serde_json::from_str(artifact["content"].as_str().unwrap()).unwrap();
    assert_eq!(artifact["kind"], "ECS_TASK_DEFINITION");
    assert_eq!(applied["containerDefinitions"][0]["image"], images[0].1.as_str(), "{applied:#}");

    // A target naming a container the task definition lacks fails, and the service is untouched.
    let staging = app.create_environment("staging", 20).await;
    let wrong = json!({ "name": "ecs", "type": "ECS", "ecs": { "cluster": cluster, "service": "shop", "containers": [{ "name": "api", "componentId": web }] } });
    app.ok(
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }",
        json!({ "e": staging, "t": wrong }),
    )
    .await;
    let failed = app.promote(&release, &staging).await;
    assert_eq!(failed["status"], "FAILED");
    assert!(failed["reason"].as_str().unwrap().contains("has no container api"), "{failed:#}");
    let service = ecs.describe_services().cluster(&cluster).services("shop").send().await.unwrap();
    assert_eq!(service.services()[0].task_definition(), Some(now_running.as_str()));
}

/// A cluster with a service `shop` running a first revision of `family`; (cluster, revision).
async fn service(ecs: &aws_sdk_ecs::Client, suffix: &str) -> (String, String) {
    let (cluster, family) = (format!("gantry-{suffix}"), format!("shop-{suffix}"));
    ecs.create_cluster().cluster_name(&cluster).send().await.unwrap();
    let web = ContainerDefinition::builder().name("web").image("registry.example.com/acme/web:0.9").memory(64).build();
    let registered = ecs.register_task_definition().family(&family).container_definitions(web).send().await.unwrap();
    let revision = registered.task_definition().unwrap().task_definition_arn().unwrap().to_owned();
    ecs.create_service()
        .cluster(&cluster)
        .service_name("shop")
        .task_definition(&revision)
        .desired_count(1)
        .send()
        .await
        .unwrap();
    (cluster, revision)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_service_is_measured_before_the_service_is_updated() {
    let app = TestApp::spawn_with_workers().await;
    let ecs = ecs_client();
    let prometheus = gantry_tests::probes::FakePrometheus::start().await;
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (cluster, first) = service(&ecs, suffix).await;
    let web =
        app.create_component_with(json!({ "name": "web", "imageRepository": "registry.example.com/acme/web" })).await;
    app.add_version(&web, "1.0.0", &digest("web-1.0.0")).await;
    app.add_version(&web, "1.1.0", &digest("web-1.1.0")).await;
    let dev = app.create_environment("dev", 10).await;
    let analysis = json!({ "probes": [{ "prometheus": { "address": prometheus.url, "query": "error_rate", "op": "LT", "value": 0.05 } }],
                           "intervalSeconds": 1, "count": 1 });
    let target = json!({ "name": "ecs", "type": "ECS", "ecs": { "cluster": cluster, "service": "shop",
        "containers": [{ "name": "web", "componentId": web }], "canaryAnalysis": analysis } });
    let add =
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
    app.ok(add, json!({ "e": dev, "t": target })).await;
    let running = async || {
        let described = ecs.describe_services().cluster(&cluster).services("shop").send().await.unwrap();
        described.services()[0].task_definition().unwrap().to_owned()
    };

    // A canary whose error rate is too high: the service is left as it was. (The stand-in
    // answers 0.5, then 0.01 from then on.)
    prometheus.script([0.5, 0.01]);
    let bad = app.ready_release("shop-1.0.0", json!([{ "componentId": web, "version": "1.0.0" }])).await;
    let failed = app.promote(&bad, &dev).await;
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason.contains("canary analysis failed") && reason.contains(&format!("shop still runs {first}")),
        "{reason}"
    );
    assert_eq!(running().await, first);

    // A healthy canary: the service moves to the new revision and the canary is gone.
    let good = app.ready_release("shop-1.1.0", json!([{ "componentId": web, "version": "1.1.0" }])).await;
    let deployed = app.promote(&good, &dev).await;
    assert_eq!(deployed["status"], "DEPLOYED", "{deployed:#}");
    assert!(
        deployed["deployments"][0]["message"].as_str().unwrap().starts_with("canary analysis passed"),
        "{deployed:#}"
    );
    assert_ne!(running().await, first);
    let canary = ecs.describe_services().cluster(&cluster).services("shop-canary").send().await.unwrap();
    let active = canary.services().iter().any(|s| s.status() == Some("ACTIVE"));
    assert!(!active, "the canary service is removed: {canary:?}");
}
