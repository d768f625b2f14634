//! `gantry promote --wait` follows a canary through a real HAProxy, printing each traffic
//! step as the router moves: the weight, the verdict and what held it.

use gantry_tests::app::{TestApp, docker_host};
use gantry_tests::haproxy::Haproxy;
use gantry_tests::registry::{Registry, free_port};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn promote_wait_prints_each_traffic_step() {
    let app = TestApp::spawn_with_workers().await;
    let registry = Registry::start(free_port(), &format!("{}/webhooks/registry/distribution", app.url), "unused");
    let haproxy = Haproxy::start("roundrobin");
    let web = app
        .create_component_with(json!({ "name": "web", "imageRepository": format!("{}/demo/web", registry.host()) }))
        .await;
    let serve = ["sh", "-c", "exec httpd -f -p 127.0.0.1:$PORT -h /etc"];
    for version in ["1.0.0", "1.1.0"] {
        let digest = registry.push_with_command("demo/web", version, &format!("web {version}"), &serve);
        app.add_version(&web, version, &digest).await;
    }
    let dev = app.create_environment("dev", 10).await;
    let container = format!("gantry-cli-routed-{}", free_port());
    let strategy = json!({ "canary": { "steps": [
        { "setWeight": 10, "pauseSeconds": 2 }, { "setWeight": 50, "pauseSeconds": 2 }] } });
    let target = json!({ "name": "host-1", "type": "DOCKER", "docker": { "endpoint": docker_host(),
        "containerName": container, "componentId": web, "networkMode": "host",
        "traffic": { "router": haproxy.router(), "strategy": strategy } } });
    let add =
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
    app.ok(add, json!({ "e": dev, "t": target })).await;
    let first = app.ready_release("cli-web-1", json!([{ "componentId": web, "version": "1.0.0" }])).await;
    assert_eq!(app.promote(&first, &dev).await["status"], "DEPLOYED");
    app.ready_release("cli-web-2", json!([{ "componentId": web, "version": "1.1.0" }])).await;

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["promote", "cli-web-2", "--to", "dev", "--wait", "--timeout", "120"])
        .env("GANTRY_URL", &app.url)
        .env("GANTRY_TOKEN", &app.token)
        .env("GANTRY_CONFIG", std::env::temp_dir().join(format!("{container}.json")))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let served = haproxy.split(100, None).await;
    let _ = std::process::Command::new("docker").args(["-H", &docker_host(), "rm", "-f", &container]).output();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let steps: Vec<&str> = stderr.lines().filter_map(|l| l.split_once("] host-1: ").map(|(_, step)| step)).collect();
    assert_eq!(
        steps,
        [
            "10% of requests on the new version, HOLDING (paused for 2s)",
            "10% of requests on the new version, PASSED (paused 2s)",
            "50% of requests on the new version, HOLDING (paused for 2s)",
            "50% of requests on the new version, PASSED (paused 2s)",
            "100% of requests on the new version, COMPLETED (every canary step passed)",
        ],
        "{stderr}"
    );
    assert_eq!(served, [("web 1.1.0".to_owned(), 100)].into());
}
