//! Promotions deploy to a real Docker Engine (a private dockerd that `make test` starts),
//! pulling images built from busybox-static from a real registry by digest.

use serde_json::json;

use crate::registry::{Registry, free_port};
use crate::support::{TestApp, docker_host};

/// What the container on `port` serves, if anything.
async fn served(port: u16) -> Option<String> {
    let res = reqwest::get(format!("http://127.0.0.1:{port}/gantry-build")).await.ok()?;
    res.text().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_are_replaced_and_an_unhealthy_one_is_refused() {
    let app = TestApp::spawn_with_workers().await;
    let registry_port = free_port();
    let registry = Registry::start(registry_port, &format!("{}/webhooks/registry/distribution", app.url), "unused");
    let serve_port = free_port();
    let httpd = ["httpd", "-f", "-p", &format!("127.0.0.1:{serve_port}"), "-h", "/etc"].map(String::from);
    let httpd: Vec<&str> = httpd.iter().map(String::as_str).collect();
    let v1 = registry.push_with_command("demo/web", "1.0.0", "web 1.0.0", &httpd);
    let v2 = registry.push_with_command("demo/web", "1.1.0", "web 1.1.0", &httpd);
    // Serves, but not where the health check looks.
    let elsewhere = format!("127.0.0.1:{}", free_port());
    let broken =
        registry.push_with_command("demo/web", "1.2.0", "web 1.2.0", &["httpd", "-f", "-p", &elsewhere, "-h", "/etc"]);

    let web = app
        .create_component_with(json!({ "name": "web", "imageRepository": format!("{}/demo/web", registry.host()) }))
        .await;
    for (tag, digest) in [("1.0.0", &v1), ("1.1.0", &v2), ("1.2.0", &broken)] {
        app.add_version(&web, tag, digest).await;
    }
    let dev = app.create_environment("dev", 10).await;
    let container = format!("gantry-test-web-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let target = json!({ "name": "host-1", "type": "DOCKER", "docker": {
        "endpoint": docker_host(), "containerName": container, "componentId": web, "networkMode": "host",
        "env": [{ "key": "GANTRY_ENV", "value": "dev" }],
        "healthCheck": { "command": ["wget", "-q", "-O-", format!("http://127.0.0.1:{serve_port}/gantry-build")], "intervalSeconds": 1, "timeoutSeconds": 1, "retries": 3 } } });
    app.ok(
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }",
        json!({ "e": dev, "t": target }),
    )
    .await;

    let deploy = async |version: &str| {
        let release =
            app.ready_release(&format!("web-{version}"), json!([{ "componentId": web, "version": version }])).await;
        app.promote(&release, &dev).await
    };

    let first = deploy("1.0.0").await;
    assert_eq!(first["status"], "DEPLOYED", "{first:#}");
    assert_eq!(served(serve_port).await.as_deref(), Some("web 1.0.0"));
    let second = deploy("1.1.0").await;
    assert_eq!(second["status"], "DEPLOYED", "{second:#}");
    assert_eq!(served(serve_port).await.as_deref(), Some("web 1.1.0"));

    // The new container never becomes healthy: the deployment fails and 1.1.0 serves on.
    let third = deploy("1.2.0").await;
    assert_eq!(third["status"], "FAILED", "{third:#}");
    assert!(third["reason"].as_str().unwrap().contains("did not become healthy"), "{third:#}");
    assert_eq!(served(serve_port).await.as_deref(), Some("web 1.1.0"), "the old container keeps serving");
    // Each kept what it applied: the container spec with the pinned image and its labels.
    let applied = &gantry_tests::artifacts(&app, third["id"].as_str().unwrap()).await[0];
    let spec: serde_json::Value = serde_json::from_str(applied["content"].as_str().unwrap()).unwrap();
    assert_eq!(applied["kind"], "DOCKER_CONTAINER");
    assert!(spec["Image"].as_str().unwrap().contains("@sha256:"), "pinned by digest: {spec:#}");
    assert_eq!(spec["Labels"]["gantry.release-name"], "web-1.2.0");

    let _ = std::process::Command::new("docker").args(["-H", &docker_host(), "rm", "-f", &container]).output();
}

/// Component `web` with versions 1.0.0 and 1.1.0 in `registry`, whose images run `commands`.
async fn web_versions(app: &TestApp, registry: &Registry, commands: [&[&str]; 2]) -> String {
    let web = app
        .create_component_with(json!({ "name": "web", "imageRepository": format!("{}/demo/web", registry.host()) }))
        .await;
    for (version, command) in ["1.0.0", "1.1.0"].into_iter().zip(commands) {
        let digest = registry.push_with_command("demo/web", version, &format!("web {version}"), command);
        app.add_version(&web, version, &digest).await;
    }
    web
}

/// A canary runs the new image beside the old container (with a command of its own, so on a
/// port of its own), is measured, and is removed; the container is replaced only if it passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_container_is_measured_before_the_container_is_replaced() {
    let app = TestApp::spawn_with_workers().await;
    let prometheus = gantry_tests::probes::FakePrometheus::start().await;
    let registry = Registry::start(free_port(), &format!("{}/webhooks/registry/distribution", app.url), "unused");
    let (serve_port, canary_port) = (free_port(), free_port());
    let httpd = |port: u16| ["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h", "/etc"].map(String::from);
    let command = httpd(serve_port);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let web = web_versions(&app, &registry, [&command, &command]).await;
    let dev = app.create_environment("dev", 10).await;
    let container = format!("gantry-test-canary-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    // Without a health check, the canary is measured once it still runs three seconds after it started.
    let analysis = json!({ "intervalSeconds": 3, "count": 1, "probes": [
        { "http": { "url": format!("http://127.0.0.1:{canary_port}/gantry-build"), "bodyContains": "web" } },
        { "prometheus": { "address": prometheus.url, "query": "error_rate", "op": "LT", "value": 0.05 } }] });
    let target = json!({ "name": "host-1", "type": "DOCKER", "docker": {
        "endpoint": docker_host(), "containerName": container, "componentId": web, "networkMode": "host",
        "canary": { "command": httpd(canary_port), "analysis": analysis } } });
    let add =
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
    app.ok(add, json!({ "e": dev, "t": target })).await;
    // The first canary is healthy; the second's error rate is too high.
    prometheus.script([0.01, 0.5]);

    let first = app.ready_release("web-1.0.0", json!([{ "componentId": web, "version": "1.0.0" }])).await;
    let deployed = app.promote(&first, &dev).await;
    assert_eq!(deployed["status"], "DEPLOYED", "{deployed:#}");
    assert!(
        deployed["deployments"][0]["message"].as_str().unwrap().starts_with("canary analysis passed"),
        "{deployed:#}"
    );
    assert_eq!(served(serve_port).await.as_deref(), Some("web 1.0.0"));
    assert_eq!(served(canary_port).await, None, "the canary is removed");

    let second = app.ready_release("web-1.1.0", json!([{ "componentId": web, "version": "1.1.0" }])).await;
    let failed = app.promote(&second, &dev).await;
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    assert!(failed["reason"].as_str().unwrap().contains("canary analysis failed"), "{failed:#}");
    assert_eq!(served(serve_port).await.as_deref(), Some("web 1.0.0"), "the old container was never touched");
    assert_eq!(served(canary_port).await, None);

    let _ = std::process::Command::new("docker").args(["-H", &docker_host(), "rm", "-f", &container]).output();
}

/// A canary gets the target's health check (each container on its own port, through its
/// environment) and is measured only once it is healthy; one that never turns healthy is a
/// failed verdict without a measurement, and the old container keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_is_measured_once_the_targets_health_check_passes() {
    let app = TestApp::spawn_with_workers().await;
    let registry = Registry::start(free_port(), &format!("{}/webhooks/registry/distribution", app.url), "unused");
    let (serve_port, canary_port) = (free_port(), free_port());
    let serve = ["sh", "-c", "exec httpd -f -p 127.0.0.1:$PORT -h /etc"];
    let web = web_versions(&app, &registry, [&serve, &["/bin/busybox", "sleep", "3600"]]).await;
    let dev = app.create_environment("dev", 10).await;
    let container = format!("gantry-test-canary-health-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    // Measured once, at once: a canary not yet listening would fail it.
    let analysis = json!({ "intervalSeconds": 1, "count": 1, "failureLimit": 0, "probes": [
        { "http": { "url": format!("http://127.0.0.1:{canary_port}/gantry-build"), "bodyContains": "web" } }] });
    let check = ["sh", "-c", "wget -q -O- http://127.0.0.1:$PORT/gantry-build"];
    let target = json!({ "name": "host-1", "type": "DOCKER", "docker": {
        "endpoint": docker_host(), "containerName": container, "componentId": web, "networkMode": "host",
        "env": [{ "key": "PORT", "value": serve_port.to_string() }],
        "healthCheck": { "command": check, "intervalSeconds": 1, "timeoutSeconds": 1, "retries": 3 },
        "canary": { "env": [{ "key": "PORT", "value": canary_port.to_string() }], "analysis": analysis } } });
    let add =
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
    app.ok(add, json!({ "e": dev, "t": target })).await;

    let first = app.ready_release("web-1.0.0", json!([{ "componentId": web, "version": "1.0.0" }])).await;
    let deployed = app.promote(&first, &dev).await;
    assert_eq!(deployed["status"], "DEPLOYED", "{deployed:#}");
    assert!(deployed["deployments"][0]["message"].as_str().unwrap().starts_with("canary analysis passed"));
    assert_eq!(served(serve_port).await.as_deref(), Some("web 1.0.0"));

    let second = app.ready_release("web-1.1.0", json!([{ "componentId": web, "version": "1.1.0" }])).await;
    let failed = app.promote(&second, &dev).await;
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains("the canary container did not become healthy"), "{reason}");
    assert!(!reason.contains("measurements"), "never measured: {reason}");
    assert_eq!(served(serve_port).await.as_deref(), Some("web 1.0.0"), "the old container was never touched");
    let _ = std::process::Command::new("docker").args(["-H", &docker_host(), "rm", "-f", &container]).output();
}

/// A canary whose command cannot run is refused by the Engine at start: a failed verdict at
/// once (no retries), with the canary container removed and the old container untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_that_cannot_start_fails_at_once_and_leaves_nothing_behind() {
    let app = TestApp::spawn_with_workers().await;
    let registry = Registry::start(free_port(), &format!("{}/webhooks/registry/distribution", app.url), "unused");
    let v1 = registry.push_with_command("demo/web", "1.0.0", "web 1.0.0", &["sleep", "3600"]);
    let web = app
        .create_component_with(json!({ "name": "web", "imageRepository": format!("{}/demo/web", registry.host()) }))
        .await;
    app.add_version(&web, "1.0.0", &v1).await;
    let dev = app.create_environment("dev", 10).await;
    let container = format!("gantry-test-nostart-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let analysis = json!({ "intervalSeconds": 1, "count": 1, "probes": [
        { "http": { "url": format!("http://127.0.0.1:{}/", free_port()) } }] });
    let target = json!({ "name": "host-1", "type": "DOCKER", "docker": {
        "endpoint": docker_host(), "containerName": container, "componentId": web, "networkMode": "host",
        "canary": { "command": ["/no/such/entrypoint"], "analysis": analysis } } });
    let add =
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
    app.ok(add, json!({ "e": dev, "t": target })).await;
    let release = app.ready_release("web-1.0.0", json!([{ "componentId": web, "version": "1.0.0" }])).await;
    let started = std::time::Instant::now();
    let failed = app.promote(&release, &dev).await;
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains("canary container did not start"), "{reason}");
    assert!(!reason.contains("gave up"), "a refusal is not retried: {reason}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
    let listed = std::process::Command::new("docker")
        .args(["-H", &docker_host(), "ps", "-a", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&listed.stdout);
    assert!(!names.lines().any(|n| n.starts_with(&container)), "no canary or container is left: {names}");
}
