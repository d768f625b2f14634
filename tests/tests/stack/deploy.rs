//! An approved promotion's deploy job reaches the deployer function through the deploy
//! queue's event source mapping, and the deployer replaces a container on the private
//! dockerd that `make test` runs; the container then answers over HTTP.

use std::time::Duration;

use gantry_tests::registry::{Registry, free_port};
use serde_json::json;

use crate::support::{Stack, eventually, unique};

fn docker_host() -> String {
    std::env::var("GANTRY_TEST_DOCKER_HOST")
        .unwrap_or_else(|_| format!("unix://{}/../.run/docker/docker.sock", env!("CARGO_MANIFEST_DIR")))
}

async fn served(port: u16) -> Option<String> {
    reqwest::get(format!("http://127.0.0.1:{port}/gantry-build")).await.ok()?.text().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_is_deployed_to_docker_by_the_deployer_lambda() {
    let stack = Stack::load().await;
    let registry = Registry::start(free_port(), "http://127.0.0.1:9/unused", "unused");
    let serve_port = free_port();
    let name = unique("site");
    let command = ["httpd", "-f", "-p", &format!("127.0.0.1:{serve_port}"), "-h", "/etc"];
    let digest = registry.push_with_command(&format!("stack/{name}"), "2.0.0", &format!("{name} 2.0.0"), &command);

    let component = stack
        .ok(
            "mutation($input: CreateComponentInput!) { createComponent(input: $input) { id } }",
            json!({ "input": { "name": name, "imageRepository": format!("{}/stack/{name}", registry.host()) } }),
        )
        .await["createComponent"]["id"]
        .clone();
    stack
        .ok(
            "mutation($c: ID!, $d: String!) { createVersionMap(input: { componentId: $c, tag: \"2.0.0\", digest: $d }) { semver } }",
            json!({ "c": component, "d": digest }),
        )
        .await;
    let environment = stack
        .ok(
            "mutation($n: String!, $o: Int!) { createEnvironment(input: { name: $n, order: $o }) { id } }",
            json!({ "n": unique("lambda-dev"), "o": stack.first_order().await }),
        )
        .await["createEnvironment"]["id"]
        .clone();
    let container = unique("gantry-stack");
    let target = json!({ "name": "host-1", "type": "DOCKER", "docker": {
        "endpoint": docker_host(), "containerName": container, "componentId": component, "networkMode": "host",
        "healthCheck": { "command": ["wget", "-q", "-O-", format!("http://127.0.0.1:{serve_port}/gantry-build")],
                         "intervalSeconds": 1, "timeoutSeconds": 1, "retries": 5 } } });
    stack
        .ok(
            "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }",
            json!({ "e": environment, "t": target }),
        )
        .await;
    let release = stack
        .ok(
            "mutation($n: String!, $c: ID!) { createRelease(input: { name: $n, components: [{ componentId: $c, version: \"2.0.0\" }] }) { id } }",
            json!({ "n": unique("site-release"), "c": component }),
        )
        .await["createRelease"]["id"]
        .clone();
    stack
        .ok(
            "mutation($id: ID!) { updateRelease(id: $id, input: { status: READY }) { status } }",
            json!({ "id": release }),
        )
        .await;
    let promotion = stack
        .ok(
            "mutation($r: ID!, $e: ID!) { requestPromotion(releaseId: $r, environmentId: $e) { id } }",
            json!({ "r": release, "e": environment }),
        )
        .await["requestPromotion"]["id"]
        .clone();

    let settled = eventually(Duration::from_secs(90), "the promotion to settle", || async {
        let p = stack
            .ok(
                "query($id: ID!) { promotion(id: $id) { status reason deployments { state message } } }",
                json!({ "id": promotion }),
            )
            .await["promotion"]
            .clone();
        (!["APPROVED", "DEPLOYING", "PENDING_APPROVAL"].contains(&p["status"].as_str().unwrap_or(""))).then_some(p)
    })
    .await;
    let _cleanup = Container(container.clone());
    assert_eq!(settled["status"], "DEPLOYED", "{settled:#}");
    assert_eq!(served(serve_port).await.as_deref(), Some(format!("{name} 2.0.0").as_str()), "the container serves");
    let logs = stack.function_logs(stack.output("DeployerFunctionName")).await;
    assert!(logs.iter().any(|l| l.contains("message handled")), "the deployer Lambda ran the job: {logs:?}");
}

/// Removes the test's container however the test ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker").args(["-H", &docker_host(), "rm", "-f", &self.0]).output();
    }
}
