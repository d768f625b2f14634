//! Compose targets: a two-service stack deployed to the private dockerd through the Engine
//! API, pulled by digest from a real registry, and put back when a service does not come up.

use serde_json::json;

use crate::registry::{Registry, free_port};
use crate::support::{TestApp, docker_host};

/// What the service on `port` serves, if anything.
async fn served(port: u16) -> Option<String> {
    let res = reqwest::get(format!("http://127.0.0.1:{port}/gantry-build")).await.ok()?;
    res.text().await.ok()
}

/// Pushes `shop/<service>:<version>`, an httpd serving "<service> <version>" on `port`.
fn push(registry: &Registry, service: &str, version: &str, port: u16) -> String {
    let listen = format!("127.0.0.1:{port}");
    let command = ["httpd", "-f", "-p", &listen, "-h", "/etc"];
    registry.push_with_command(&format!("shop/{service}"), version, &format!("{service} {version}"), &command)
}

/// A compose file running `web` and `worker` on the host network, `worker` after `web`, each
/// healthy once it serves on its port.
fn file(registry: &Registry, web_port: u16, worker_port: u16) -> String {
    let check = |port: u16| format!("[CMD, wget, -q, -O-, 'http://127.0.0.1:{port}/gantry-build']");
    format!(
        "services:
  web:
    image: {host}/shop/web:latest
    network_mode: host
    healthcheck:
      test: {web_check}
      interval: 1s
      timeout: 1s
      retries: 3
  worker:
    image: {host}/shop/worker:latest
    network_mode: host
    depends_on: [web]
    environment:
      ROLE: worker
    healthcheck:
      test: {worker_check}
      interval: 1s
      timeout: 1s
      retries: 3
",
        host = registry.host(),
        web_check = check(web_port),
        worker_check = check(worker_port)
    )
}

const ADD: &str = "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id compose { project services { name } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_is_deployed_and_put_back_when_a_service_fails() {
    let app = TestApp::spawn_with_workers().await;
    let registry = Registry::start(free_port(), &format!("{}/webhooks/registry/distribution", app.url), "unused");
    let (web_port, worker_port) = (free_port(), free_port());
    let web_v1 = push(&registry, "web", "1.0.0", web_port);
    let worker_v1 = push(&registry, "worker", "1.0.0", worker_port);
    let web_v2 = push(&registry, "web", "1.1.0", web_port);
    // Serves, but not where its health check looks.
    let worker_broken = push(&registry, "worker", "1.1.0", free_port());

    let component = |name: &str| json!({ "name": name, "imageRepository": format!("{}/shop/{name}", registry.host()) });
    let web = app.create_component_with(component("web")).await;
    let worker = app.create_component_with(component("worker")).await;
    for (id, tag, digest) in [
        (&web, "1.0.0", &web_v1),
        (&worker, "1.0.0", &worker_v1),
        (&web, "1.1.0", &web_v2),
        (&worker, "1.1.0", &worker_broken),
    ] {
        app.add_version(id, tag, digest).await;
    }
    let dev = app.create_environment("dev", 10).await;
    let project = format!("gantry-test-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let target = json!({ "name": "stack", "type": "COMPOSE", "compose": { "endpoint": docker_host(), "project": project,
        "file": file(&registry, web_port, worker_port),
        "services": [{ "name": "web", "componentId": web }, { "name": "worker", "componentId": worker }] } });
    let added = app.ok(ADD, json!({ "e": dev, "t": target })).await["addDeploymentTarget"].clone();
    assert_eq!(added["compose"]["services"].as_array().unwrap().len(), 2);

    let components = |version: &str| json!([{ "componentId": web, "version": version }, { "componentId": worker, "version": version }]);
    let first = app.ready_release("stack-1", components("1.0.0")).await;
    let deployed = app.promote(&first, &dev).await;
    assert_eq!(deployed["status"], "DEPLOYED", "{deployed:#}");
    assert_eq!(
        (served(web_port).await.as_deref(), served(worker_port).await.as_deref()),
        (Some("web 1.0.0"), Some("worker 1.0.0"))
    );
    let artifact = &gantry_tests::artifacts(&app, deployed["id"].as_str().unwrap()).await[0];
    assert_eq!(artifact["kind"], "COMPOSE_FILE");
    let rendered = artifact["content"].as_str().unwrap();
    assert!(
        rendered.contains(&format!("shop/web@{web_v1}")) && rendered.contains(&format!("shop/worker@{worker_v1}")),
        "{rendered}"
    );

    let second = app.ready_release("stack-2", components("1.1.0")).await;
    let failed = app.promote(&second, &dev).await;
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains("service worker did not become healthy; the previous stack runs again"), "{reason}");
    assert_eq!(
        (served(web_port).await.as_deref(), served(worker_port).await.as_deref()),
        (Some("web 1.0.0"), Some("worker 1.0.0")),
        "the whole stack is put back, web included"
    );

    for service in ["web", "worker"] {
        let name = format!("{project}-{service}");
        let _ = std::process::Command::new("docker").args(["-H", &docker_host(), "rm", "-f", &name]).output();
    }
}

#[tokio::test]
async fn compose_files_are_checked_when_the_target_is_added() {
    let app = TestApp::spawn().await;
    let web = app.create_component("web").await;
    let dev = app.create_environment("dev", 10).await;
    let before = app.snapshot().await;
    let target = |file: &str, service: &str| {
        json!({ "name": "stack", "type": "COMPOSE", "compose": { "endpoint": "unix:///run/docker.sock", "project": "shop",
            "file": file, "services": [{ "name": service, "componentId": web }] } })
    };
    for (t, why) in [
        (target("services:\n  web:\n    image: x\n    ports: ['80:80']\n", "web"), "does not deploy"),
        (target("services:\n  web:\n    image: x\n", "api"), "no service api"),
        (target("services: [", "web"), "does not parse"),
        (target(&"#".repeat(70 * 1024), "web"), "16384"),
    ] {
        let message = app.assert_rejected("BAD_USER_INPUT", ADD, json!({ "e": dev, "t": t })).await;
        assert!(message.contains(why), "{why}: {message}");
    }
    assert_eq!(app.snapshot().await, before);
}
