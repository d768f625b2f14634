//! ECS behind an ALB: two services on the emulator's ECS take turns, and the listener's
//! weighted target groups move on an Elastic Load Balancing v2 stand-in checked against the
//! API model. The test plays ECS's part in the load balancer: a service with tasks has its
//! target group's targets healthy, and one scaled to zero has none.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ecs::types::ContainerDefinition;
use gantry_elbv2_fake::{FakeElb, Fault};
use serde_json::json;

use crate::support::{TestApp, digest, ecs_client};

/// Registers each service's tasks with its target group while it has any, as ECS does for
/// a service with a load balancer, until the test ends.
fn register_tasks(elb: Arc<FakeElb>, cluster: String, services: [(String, String); 2]) {
    tokio::spawn(async move {
        let ecs = ecs_client();
        loop {
            for (service, group) in &services {
                let described = ecs.describe_services().cluster(&cluster).services(service).send().await;
                let desired = described.ok().and_then(|d| d.services().first().map(|s| s.desired_count())).unwrap_or(0);
                let targets: &[(&str, &str)] = if desired > 0 { &[("10.0.0.7", "healthy")] } else { &[] };
                elb.set_health(group, targets);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

async fn desired(cluster: &str, service: &str) -> (i32, String) {
    let described = ecs_client().describe_services().cluster(cluster).services(service).send().await.unwrap();
    let s = &described.services()[0];
    (s.desired_count(), s.task_definition().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecs_canary_moves_alb_weights_between_two_services() {
    let elb = Arc::new(FakeElb::start().await);
    let app = TestApp::spawn_with_workers_and(&[("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", &elb.url)]).await;
    let ecs = ecs_client();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let cluster = format!("gantry-alb-{suffix}");
    ecs.create_cluster().cluster_name(&cluster).send().await.unwrap();
    let web = ContainerDefinition::builder().name("web").image("registry.example.com/acme/web:0.9").memory(64).build();
    let family = format!("web-{suffix}");
    let registered = ecs.register_task_definition().family(&family).container_definitions(web).send().await.unwrap();
    let first = registered.task_definition().unwrap().task_definition_arn().unwrap().to_owned();
    for (service, count) in [("web-blue", 2), ("web-green", 0)] {
        let create = ecs.create_service().cluster(&cluster).service_name(service).task_definition(&first);
        create.desired_count(count).send().await.unwrap();
    }
    let (blue, green) = (elb.target_group("web-blue"), elb.target_group("web-green"));
    let listener = elb.listener(&[(&blue, 100), (&green, 0)]);
    register_tasks(
        elb.clone(),
        cluster.clone(),
        [("web-blue".into(), blue.clone()), ("web-green".into(), green.clone())],
    );

    let component =
        app.create_component_with(json!({ "name": "web", "imageRepository": "registry.example.com/acme/web" })).await;
    for version in ["1.0.0", "1.1.0", "1.2.0"] {
        app.add_version(&component, version, &digest(&format!("web-{version}"))).await;
    }
    let dev = app.create_environment("dev", 10).await;
    let router = json!({ "alb": { "listenerArn": listener, "slots": [
        { "targetGroupArn": blue, "service": "web-blue" }, { "targetGroupArn": green, "service": "web-green" }] } });
    let strategy = json!({ "canary": { "steps": [{ "setWeight": 20, "pauseSeconds": 1 }, { "setWeight": 60, "pauseSeconds": 1 }] } });
    let target = json!({ "name": "ecs", "type": "ECS", "ecs": { "cluster": cluster, "service": "web-blue",
        "containers": [{ "name": "web", "componentId": component }], "traffic": { "router": router, "strategy": strategy } } });
    let add =
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
    app.ok(add, json!({ "e": dev, "t": target })).await;
    let promote = async |version: &str| gantry_tests::routed::promote_settled(&app, &component, &dev, version).await;

    // Green takes over in steps; blue is scaled to zero once green has every request.
    let (settled, read) = promote("1.0.0").await;
    assert_eq!(settled["status"], "DEPLOYED", "{settled:#}");
    assert_eq!(
        gantry_tests::routed::verdicts(&read),
        ["HOLDING@20", "PASSED@20", "HOLDING@60", "PASSED@60", "COMPLETED@100"]
    );
    let change = &read[0]["change"]["commands"][0];
    assert_eq!(change.as_str().unwrap(), format!("ModifyListener {listener} forward {green}=20 {blue}=80"));
    assert_eq!(elb.weights(&listener), [(green.clone(), 100), (blue.clone(), 0)]);
    let (green_count, green_td) = desired(&cluster, "web-green").await;
    assert_eq!((green_count, desired(&cluster, "web-blue").await.0), (2, 0), "green runs at blue's size");
    let td = ecs.describe_task_definition().task_definition(&green_td).send().await.unwrap();
    let image = td.task_definition().unwrap().container_definitions()[0].image().unwrap().to_owned();
    assert_eq!(image, format!("registry.example.com/acme/web@{}", digest("web-1.0.0")));

    // Throttled once: the SDK waits and tries again, and blue takes its turn.
    elb.faults([Fault::RateLimited]);
    let (settled, _) = promote("1.1.0").await;
    assert_eq!(settled["status"], "DEPLOYED", "{settled:#}");
    assert_eq!(elb.weights(&listener), [(blue.clone(), 100), (green.clone(), 0)]);
    assert_eq!((desired(&cluster, "web-blue").await.0, desired(&cluster, "web-green").await.0), (2, 0));

    // The load balancer refuses the change: the promotion fails and traffic stays on blue.
    elb.refuse_next("InvalidConfigurationRequestException");
    let (settled, _) = promote("1.2.0").await;
    assert_eq!(settled["status"], "FAILED", "{settled:#}");
    let reason = settled["reason"].as_str().unwrap();
    assert!(reason.contains("InvalidConfigurationRequest"), "{reason}");
    assert_eq!(elb.weights(&listener), [(blue.clone(), 100), (green.clone(), 0)]);
    assert_eq!(desired(&cluster, "web-green").await.0, 0, "the new revision is not left running");
    assert_eq!(elb.violations(), Vec::<String>::new(), "every request kept to the ELBv2 model");
}
