//! An approved promotion's deploy job reaches the deployer function through the deploy
//! queue's event source mapping, and the deployer replaces a container on the private
//! dockerd that `make test` runs; the container then answers over HTTP.

use gantry_tests::registry::{Registry, free_port};
use serde_json::json;

use crate::support::{Stack, unique};

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
    let _front = crate::support::FRONT_OF_PATH.lock().await;
    let registry = Registry::start(free_port(), "http://127.0.0.1:9/unused", "unused");
    let serve_port = free_port();
    let name = unique("site");
    let command = ["httpd", "-f", "-p", &format!("127.0.0.1:{serve_port}"), "-h", "/etc"];
    let digest = registry.push_with_command(&format!("stack/{name}"), "2.0.0", &format!("{name} 2.0.0"), &command);

    let container = unique("gantry-stack");
    let image = format!("{}/stack/{name}", registry.host());
    let (environment, release) = stack
        .estate(&name, (&image, &digest), |component| {
            json!({ "name": "host-1", "type": "DOCKER", "docker": {
                "endpoint": docker_host(), "containerName": container, "componentId": component, "networkMode": "host",
                "healthCheck": { "command": ["wget", "-q", "-O-", format!("http://127.0.0.1:{serve_port}/gantry-build")],
                                 "intervalSeconds": 1, "timeoutSeconds": 1, "retries": 5 } } })
        })
        .await;
    let settled = stack.promote(&release, &environment).await;
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

/// The template's schedule queues a sweep for the deployer every minute (through the deploy
/// queue's policy), and the deployer Lambda runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_has_the_deployer_lambda_sweep_every_minute() {
    let stack = Stack::load().await;
    let deployer = stack.output("DeployerFunctionName").to_owned();
    // `eventually` fails the test if no sweep is logged in time.
    gantry_tests::eventually(std::time::Duration::from_secs(100), "a sweep by the deployer Lambda", || async {
        stack.function_logs(&deployer).await.iter().any(|l| l.contains("sweep done")).then_some(())
    })
    .await;
}
