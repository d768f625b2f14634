//! A pull agent against the deployed stack: the real `gantry-agent` process, with its own
//! private dockerd, enrolls through the api Function URL, long-polls its jobs there, and
//! applies the job the deployer Lambda signed and wrote; no Lambda waits for the engine.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use gantry_tests::dockerd::PrivateDockerd;
use gantry_tests::registry::{Registry, free_port};
use serde_json::json;

use crate::support::{Stack, unique};

/// The agent binary `cargo test --workspace` built beside this test.
fn agent_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = dir.join("gantry-agent");
    assert!(binary.exists(), "{} is missing: build it (cargo build -p gantry-agent)", binary.display());
    binary
}

struct Agent(std::process::Child, PathBuf);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_enrolls_and_deploys_through_the_function_url() {
    let stack = Stack::load().await;
    let _front = crate::support::FRONT_OF_PATH.lock().await;
    let engine = PrivateDockerd::start(None);
    let registry = Registry::start(free_port(), "http://127.0.0.1:9/unused", "unused");
    let port = free_port();
    let name = unique("edge");
    let httpd = ["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h", "/etc"];
    let digest = registry.push_with_command(&format!("stack/{name}"), "1.0.0", &format!("{name} 1.0.0"), &httpd);

    let token = stack
        .ok("mutation($n: String!) { createAgentEnrollment(name: $n) { token } }", json!({ "n": name }))
        .await["createAgentEnrollment"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = std::env::temp_dir().join(format!("gantry-stack-agent-{name}"));
    let enrolled = Command::new(agent_binary())
        .args(["enroll", "--url", &stack.api_url, "--token", &token, "--state-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(enrolled.status.success(), "{}", String::from_utf8_lossy(&enrolled.stderr));
    let identity: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("agent.json")).unwrap()).unwrap();
    let agent_id = identity["agentId"].as_str().unwrap().to_owned();
    let log = std::fs::File::create(std::env::temp_dir().join(format!("{name}.log"))).unwrap();
    let child = Command::new(agent_binary())
        .args(["run", "--heartbeat-seconds", "2", "--docker-host", &engine.socket, "--state-dir"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let _agent = Agent(child, dir);

    let image = format!("{}/stack/{name}", registry.host());
    let (environment, release) = stack
        .estate(&name, (&image, &digest), |component| {
            json!({ "name": "edge-host", "type": "DOCKER", "docker": {
                "agentId": agent_id, "containerName": name, "componentId": component, "networkMode": "host" } })
        })
        .await;
    let settled = stack.promote(&release, &environment).await;
    let log = std::fs::read_to_string(std::env::temp_dir().join(format!("{name}.log"))).unwrap_or_default();
    assert_eq!(settled["status"], "DEPLOYED", "{settled:#}\n{log}");
    let served = reqwest::get(format!("http://127.0.0.1:{port}/gantry-build")).await.unwrap().text().await.unwrap();
    assert_eq!(served, format!("{name} 1.0.0"));
    assert!(engine.docker(&["ps", "--format", "{{.Names}}"]).contains(&name), "on the agent's own engine");
    let agent = stack.ok("query($id: ID!) { agent(id: $id) { online host { os } } }", json!({ "id": agent_id })).await;
    assert_eq!(agent["agent"]["online"], true, "{agent}");
}
