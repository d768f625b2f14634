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

    // A canary held for an hour: `gantry promote-full` ends it, `gantry abort` undoes the next.
    let (staging, haproxy) = (app.create_environment("canary", 5).await, Haproxy::start("roundrobin"));
    let held = json!({ "canary": { "steps": [{ "setWeight": 50, "pauseSeconds": 3600 }] } });
    let target = json!({ "name": "host-2", "type": "DOCKER", "docker": { "endpoint": docker_host(),
        "containerName": format!("{container}-s"), "componentId": web, "networkMode": "host",
        "traffic": { "router": haproxy.router(), "strategy": held } } });
    app.ok(add, json!({ "e": staging, "t": target })).await;
    let env = [("GANTRY_URL", app.url.as_str()), ("GANTRY_TOKEN", app.token.as_str())];
    let holding = async |release: &str| {
        let requested = app.request_promotion(release, &staging).await;
        let id = requested["id"].as_str().unwrap().to_owned();
        let steps = "query($id: ID!) { promotion(id: $id) { deployments { trafficSteps { verdict } } } }";
        gantry_tests::eventually(std::time::Duration::from_secs(90), "the canary to hold", || async {
            let read = app.ok(steps, json!({ "id": id })).await;
            let held = read["promotion"]["deployments"][0]["trafficSteps"].as_array().is_some_and(|s| !s.is_empty());
            held.then_some(())
        })
        .await;
        id
    };
    assert_eq!(app.promote(&first, &staging).await["status"], "DEPLOYED");
    let second = app.ready_release("cli-web-2b", json!([{ "componentId": web, "version": "1.1.0" }])).await;
    let id = holding(&second).await;
    let full = run(&env, &["promote-full", &id, "--json"]).await;
    assert_eq!(full.0, Some(0), "{}", full.2);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&full.1).unwrap()["status"], "DEPLOYING");
    assert_eq!(app.settled(&id).await["status"], "DEPLOYED");
    let third = app.ready_release("cli-web-1b", json!([{ "componentId": web, "version": "1.0.0" }])).await;
    let id = holding(&third).await;
    let aborted = run(&env, &["abort", &id]).await;
    assert_eq!(aborted.0, Some(0), "{}", aborted.2);
    assert!(aborted.1.contains("aborting"), "{}", aborted.1);
    let settled = app.settled(&id).await;
    let served = haproxy.split(100, None).await;
    let _ = std::process::Command::new("docker")
        .args(["-H", &docker_host(), "rm", "-f", &format!("{container}-s")])
        .output();
    assert_eq!(settled["status"], "FAILED", "{settled:#}");
    assert_eq!(served, [("web 1.1.0".to_owned(), 100)].into(), "every request is back on the stable version");
    // Nothing deploys any more: there is nothing to abort.
    let again = run(&env, &["abort", &id]).await;
    assert_ne!(again.0, Some(0), "{}", again.2);
}

/// Runs `gantry args` with `env`: its exit code, stdout and stderr.
async fn run(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_gantry"));
    command.args(args).env_remove("GANTRY_URL").env_remove("GANTRY_TOKEN");
    command.env("GANTRY_CONFIG", std::env::temp_dir().join(format!("gantry-cli-traffic-{}.json", free_port())));
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().await.unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
