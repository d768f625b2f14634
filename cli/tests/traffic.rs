//! `gantry promote --wait` follows a canary through a real HAProxy, printing each traffic
//! step as the router moves; `gantry promote-full` and `gantry abort` steer one that holds.

use gantry_tests::app::{TestApp, docker_host};
use gantry_tests::haproxy::Haproxy;
use gantry_tests::registry::{Registry, free_port};
use serde_json::json;

/// An app with workers, web 1.0.0 and 1.1.0 (each answering with its version on `PORT`), and
/// `dev` with one Docker target behind HAProxy with `strategy`; 1.0.0 deployed.
struct Stage {
    app: TestApp,
    _registry: Registry,
    haproxy: Haproxy,
    web: String,
    dev: String,
    container: String,
}

impl Stage {
    async fn start(strategy: serde_json::Value) -> Self {
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
        let target = json!({ "name": "host-1", "type": "DOCKER", "docker": { "endpoint": docker_host(),
            "containerName": container, "componentId": web, "networkMode": "host",
            "traffic": { "router": haproxy.router(), "strategy": strategy } } });
        let add = "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
        app.ok(add, json!({ "e": dev, "t": target })).await;
        let first = app.ready_release("cli-web-1", json!([{ "componentId": web, "version": "1.0.0" }])).await;
        assert_eq!(app.promote(&first, &dev).await["status"], "DEPLOYED");
        Self { app, _registry: registry, haproxy, web, dev, container }
    }

    async fn release(&self, name: &str, version: &str) -> String {
        self.app.ready_release(name, json!([{ "componentId": self.web, "version": version }])).await
    }

    /// Runs `gantry args` against the app: its exit code, stdout and stderr.
    async fn gantry(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
            .args(args)
            .env("GANTRY_URL", &self.app.url)
            .env("GANTRY_TOKEN", &self.app.token)
            .env("GANTRY_CONFIG", std::env::temp_dir().join(format!("{}.json", self.container)))
            .output()
            .await
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    }

    /// Requests the promotion of `release` and waits until its canary holds a step.
    async fn holding(&self, release: &str) -> String {
        let requested = self.app.request_promotion(release, &self.dev).await;
        let id = requested["id"].as_str().unwrap().to_owned();
        let steps = "query($id: ID!) { promotion(id: $id) { deployments { trafficSteps { verdict } } } }";
        gantry_tests::eventually(std::time::Duration::from_secs(90), "the canary to hold", || async {
            let read = self.app.ok(steps, json!({ "id": id })).await;
            let held = read["promotion"]["deployments"][0]["trafficSteps"].as_array().is_some_and(|s| !s.is_empty());
            held.then_some(())
        })
        .await;
        id
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker").args(["-H", &docker_host(), "rm", "-f", &self.container]).output();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_wait_prints_each_traffic_step() {
    let stage =
        Stage::start(json!({ "canary": { "steps": [{ "setWeight": 10, "pauseSeconds": 2 }, { "setWeight": 50, "pauseSeconds": 2 }] } }))
            .await;
    stage.release("cli-web-2", "1.1.0").await;
    let (code, _, stderr) = stage.gantry(&["promote", "cli-web-2", "--to", "dev", "--wait", "--timeout", "120"]).await;
    assert_eq!(code, Some(0), "{stderr}");
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
    assert_eq!(stage.haproxy.split(100, None).await, [("web 1.1.0".to_owned(), 100)].into());
}

/// A canary held for an hour: `gantry promote-full` ends it, `gantry abort` undoes the next.
#[tokio::test(flavor = "multi_thread")]
async fn promote_full_and_abort_steer_a_canary_that_holds() {
    let stage = Stage::start(json!({ "canary": { "steps": [{ "setWeight": 50, "pauseSeconds": 3600 }] } })).await;
    let second = stage.release("cli-web-2", "1.1.0").await;
    let id = stage.holding(&second).await;
    let (code, stdout, stderr) = stage.gantry(&["promote-full", &id, "--json"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["status"], "DEPLOYING");
    assert_eq!(stage.app.settled(&id).await["status"], "DEPLOYED");
    assert_eq!(stage.haproxy.split(100, None).await, [("web 1.1.0".to_owned(), 100)].into());

    let third = stage.release("cli-web-3", "1.0.0").await;
    let id = stage.holding(&third).await;
    let (code, stdout, stderr) = stage.gantry(&["abort", &id]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("aborting"), "{stdout}");
    assert_eq!(stage.app.settled(&id).await["status"], "FAILED");
    let served = stage.haproxy.split(100, None).await;
    assert_eq!(served, [("web 1.1.0".to_owned(), 100)].into(), "every request is back on the stable version");
    // Nothing deploys any more: there is nothing to abort.
    let (code, _, stderr) = stage.gantry(&["abort", &id]).await;
    assert_ne!(code, Some(0), "{stderr}");
}
