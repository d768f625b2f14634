//! A stage for routed rollouts: an app with workers, a registry with two versions of `web`
//! that answer with their version on the port their slot gives them, a real HAProxy, and
//! `dev` with one target behind it, the first version deployed.

use std::time::Duration;

use serde_json::{Value, json};

use crate::app::{TestApp, docker_host};
use crate::haproxy::Haproxy;
use crate::registry::{Registry, free_port};

/// Each version serves `web <version>` on the port its slot gives it in `PORT`, at once
/// (`/gantry-build`) or after three seconds (`/cgi-bin/slow`, a CGI script).
const SERVE: [&str; 3] = [
    "sh",
    "-c",
    r#"/bin/busybox mkdir -p /etc/cgi-bin && printf '%s\n' '#!/bin/sh' '/bin/busybox sleep 3' 'printf "Content-Type: text/plain\r\n\r\n"' '/bin/busybox cat /etc/gantry-build' > /etc/cgi-bin/slow && /bin/busybox chmod 755 /etc/cgi-bin/slow && exec httpd -f -p 127.0.0.1:$PORT -h /etc"#,
];

pub struct Stage {
    pub app: TestApp,
    _registry: Registry,
    pub haproxy: Haproxy,
    pub web: String,
    pub dev: String,
    pub container: String,
}

impl Stage {
    /// Versions 1.0.0 and 1.1.0 of `web`, and `dev` with one Docker target behind HAProxy
    /// (balanced by `balance`) with `strategy`; 1.0.0 deployed first.
    pub async fn start(balance: &str, strategy: impl Fn(&Haproxy) -> Value) -> Self {
        Self::start_as(balance, false, strategy).await
    }

    /// As [`Stage::start`], with a Compose target (project `container`, one service `web`)
    /// when `compose`.
    pub async fn start_as(balance: &str, compose: bool, strategy: impl Fn(&Haproxy) -> Value) -> Self {
        let app = TestApp::spawn_with_workers().await;
        let registry = Registry::start(free_port(), &format!("{}/webhooks/registry/distribution", app.url), "unused");
        let haproxy = Haproxy::start(balance);
        let web = app
            .create_component_with(json!({ "name": "web", "imageRepository": format!("{}/demo/web", registry.host()) }))
            .await;
        for version in ["1.0.0", "1.1.0"] {
            let digest = registry.push_with_command("demo/web", version, &format!("web {version}"), &SERVE);
            app.add_version(&web, version, &digest).await;
        }
        let dev = app.create_environment("dev", 10).await;
        let container = format!("gantry-test-routed-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let traffic = json!({ "router": haproxy.router(), "strategy": strategy(&haproxy) });
        let target = if compose {
            let file =
                format!("services:\n  web:\n    image: {}/demo/web:latest\n    network_mode: host\n", registry.host());
            json!({ "name": "host-1", "type": "COMPOSE", "compose": { "endpoint": docker_host(), "project": container,
                "file": file, "services": [{ "name": "web", "componentId": web }], "traffic": traffic } })
        } else {
            json!({ "name": "host-1", "type": "DOCKER", "docker": { "endpoint": docker_host(), "containerName": container,
                "componentId": web, "networkMode": "host", "traffic": traffic } })
        };
        let add = "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
        app.ok(add, json!({ "e": dev, "t": target })).await;
        let stage = Self { app, _registry: registry, haproxy, web, dev, container };
        let first = stage.promote("1.0.0").await;
        let first = stage.app.settled(first["id"].as_str().unwrap()).await;
        assert_eq!(first["status"], "DEPLOYED", "{first:#}");
        assert_eq!(stage.haproxy.split(100, None).await, [("web 1.0.0".to_owned(), 100)].into());
        stage
    }

    /// Requests the promotion of `version` and returns it without waiting.
    pub async fn promote(&self, version: &str) -> Value {
        let components = json!([{ "componentId": self.web, "version": version }]);
        let name = format!("web-{version}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
        let release = self.app.ready_release(&name, components).await;
        self.app.request_promotion(&release, &self.dev).await
    }

    /// The deployment's traffic steps so far.
    pub async fn steps(&self, promotion: &str) -> Vec<Value> {
        let q = "query($id: ID!) { promotion(id: $id) { deployments {
            trafficSteps { weight at verdict detail change { router commands sha256 } } } } }";
        let got = self.app.ok(q, json!({ "id": promotion })).await;
        got["promotion"]["deployments"][0]["trafficSteps"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the rollout holds `weight` (a step set it and its pause or analysis runs).
    pub async fn holding(&self, promotion: &str, weight: u64) {
        crate::eventually(Duration::from_secs(90), &format!("the rollout to hold {weight}%"), || async {
            let steps = self.steps(promotion).await;
            steps.iter().any(|s| s["verdict"] == "HOLDING" && s["weight"] == weight).then_some(())
        })
        .await;
    }

    pub async fn evidence(&self, promotion: &str) -> Vec<Value> {
        let q = "query($id: ID!) { evidence(promotionId: $id) { kind payload } }";
        self.app.ok(q, json!({ "id": promotion })).await["evidence"].as_array().cloned().unwrap()
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        // The stable container, and any new one a failed test left behind.
        let listed = std::process::Command::new("docker")
            .args(["-H", &docker_host(), "ps", "-aq", "--filter", &format!("name={}", self.container)])
            .output();
        let ids = listed.map(|o| String::from_utf8_lossy(&o.stdout).to_string()).unwrap_or_default();
        for id in ids.split_whitespace() {
            let _ = std::process::Command::new("docker").args(["-H", &docker_host(), "rm", "-f", id]).output();
        }
    }
}

/// Each traffic step as `VERDICT@weight`, in order.
pub fn verdicts(steps: &[Value]) -> Vec<String> {
    steps.iter().map(|s| format!("{}@{}", s["verdict"].as_str().unwrap(), s["weight"])).collect()
}

/// Promotes `version` of `component` to `environment` (a release named `web-<version>`) and
/// waits until it settles: the promotion, and its first deployment's traffic steps.
pub async fn promote_settled(app: &TestApp, component: &str, environment: &str, version: &str) -> (Value, Vec<Value>) {
    let components = json!([{ "componentId": component, "version": version }]);
    let release = app.ready_release(&format!("web-{version}"), components).await;
    let settled = app.promote(&release, environment).await;
    let q = "query($id: ID!) { promotion(id: $id) { deployments { trafficSteps { weight verdict change { commands } } } } }";
    let read = app.ok(q, json!({ "id": settled["id"] })).await;
    let steps = read["promotion"]["deployments"][0]["trafficSteps"].as_array().cloned().unwrap_or_default();
    (settled, steps)
}
