//! Two real `gantry-agent` processes, each with its own private dockerd, against the API and
//! workers spawned on the local emulator: enrollment, a promotion deploying to both hosts,
//! signed requests (replays, stale signatures and other agents' jobs refused), a tampered job
//! refused by the agent, a revoked agent refused, and an agent killed mid-promotion: its job
//! fails at its deadline and the environment rolls back on the other host.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gantry_tests::app::TestApp;
use gantry_tests::dockerd::PrivateDockerd;
use gantry_tests::eventually;
use gantry_tests::registry::{Registry, free_port};
use serde_json::{Value, json};

const AGENT: &str = env!("CARGO_BIN_EXE_gantry-agent");

struct Host {
    name: String,
    dir: PathBuf,
    engine: PrivateDockerd,
    process: Option<Child>,
}

impl Host {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("gantry-agent-{name}-{}", uuid::Uuid::new_v4().simple()));
        Self { name: name.into(), dir, engine: PrivateDockerd::start(None), process: None }
    }

    fn enroll(&self, url: &str, token: &str) -> std::process::Output {
        Command::new(AGENT)
            .args(["enroll", "--url", url, "--token", token, "--state-dir"])
            .arg(&self.dir)
            .output()
            .expect("the agent runs")
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("agent.log")).unwrap();
        let child = Command::new(AGENT)
            .args(["run", "--heartbeat-seconds", "1", "--docker-host", &self.engine.socket, "--state-dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the agent starts");
        self.process = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    fn id(&self) -> String {
        let identity: Value = serde_json::from_slice(&std::fs::read(self.dir.join("agent.json")).unwrap()).unwrap();
        identity["agentId"].as_str().unwrap().to_owned()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn enrollment(app: &TestApp, name: &str) -> String {
    let created = app
        .ok(
            "mutation($n: String!) { createAgentEnrollment(name: $n, labels: [{ key: \"zone\", value: \"lab\" }]) { token } }",
            json!({ "n": name }),
        )
        .await;
    created["createAgentEnrollment"]["token"].as_str().unwrap().to_owned()
}

/// What the container on `port` serves.
async fn served(port: u16) -> Option<String> {
    reqwest::get(format!("http://127.0.0.1:{port}/gantry-build")).await.ok()?.text().await.ok()
}

/// A signed POST as the agent whose state is in `dir`, with `created` seconds from now.
async fn signed_post(app: &TestApp, dir: &Path, path: &str, body: &Value, created_offset: i64, nonce: &str) -> u16 {
    let key = gantry_signing::SigningKey::from_pem(&std::fs::read_to_string(dir.join("agent.key")).unwrap()).unwrap();
    let identity: Value = serde_json::from_slice(&std::fs::read(dir.join("agent.json")).unwrap()).unwrap();
    let keyid = identity["agentId"].as_str().unwrap();
    gantry_tests::signed::post(app, (&key, keyid), (path, body), created_offset, nonce).await.status().as_u16()
}

/// Two hosts, enrolled (a key pair on each, mode 0600; a token used once) and running.
async fn enrolled_hosts(app: &TestApp) -> [Host; 2] {
    let mut hosts = [Host::new("a"), Host::new("b")];
    let tokens = [enrollment(app, "host-a").await, enrollment(app, "host-b").await];
    for (host, token) in hosts.iter().zip(&tokens) {
        let out = host.enroll(&app.url, token);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mode = std::fs::metadata(host.dir.join("agent.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is its owner's only");
    }
    let again = Host::new("c");
    let out = again.enroll(&app.url, &tokens[0]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown, used or expired"), "{out:?}");
    for host in &mut hosts {
        host.start();
    }
    let listed = eventually(Duration::from_secs(20), "both agents online", || async {
        let query = "query { agents { id name online version labels { key value } host { os dockerVersion } } }";
        let list = app.ok(query, json!({})).await["agents"].as_array().unwrap().clone();
        (list.len() == 2 && list.iter().all(|a| a["online"] == true && a["host"]["dockerVersion"].is_string()))
            .then_some(list)
    })
    .await;
    assert!(listed.iter().any(|a| a["name"] == "host-a" && a["labels"][0]["value"] == "lab"), "{listed:?}");
    hosts
}

/// An environment (with autoRollback) whose targets are the two hosts' agents, each running
/// a component of its own that serves on its own port; versions 1.0.0 and 2.0.0 of each.
struct Estate {
    env: String,
    ports: [u16; 2],
    components: Vec<String>,
    _registry: Registry,
}

impl Estate {
    async fn new(app: &TestApp, hosts: &[Host; 2]) -> Self {
        let registry = Registry::start(free_port(), &format!("{}/webhooks/registry/distribution", app.url), "unused");
        let env = app.create_environment_with(json!({ "name": "edge", "order": 10, "autoRollback": true })).await;
        let ports = [free_port(), free_port()];
        let mut components = Vec::new();
        for (host, port) in hosts.iter().zip(ports) {
            let repo = format!("demo/{}", host.name);
            let httpd = ["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h", "/etc"];
            let image = format!("{}/{repo}", registry.host());
            let component = app
                .create_component_with(json!({ "name": format!("web-{}", host.name), "imageRepository": image }))
                .await;
            for version in ["1.0.0", "2.0.0"] {
                let digest = registry.push_with_command(&repo, version, &format!("{} {version}", host.name), &httpd);
                app.add_version(&component, version, &digest).await;
            }
            let target = json!({ "name": format!("host-{}", host.name), "type": "DOCKER", "docker": {
                "agentId": host.id(), "containerName": format!("web-{}", host.name), "componentId": component,
                "networkMode": "host" } });
            let added = app.ok(
                "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { docker { agentId endpoint } } }",
                json!({ "e": env, "t": target }),
            )
            .await;
            assert_eq!(added["addDeploymentTarget"]["docker"], json!({ "agentId": host.id(), "endpoint": null }));
            components.push(component);
        }
        Self { env, ports, components, _registry: registry }
    }

    /// A new release of every component at `version`.
    async fn release(&self, app: &TestApp, version: &str) -> String {
        let components: Vec<Value> =
            self.components.iter().map(|c| json!({ "componentId": c, "version": version })).collect();
        let name = format!("both-{version}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
        app.ready_release(&name, json!(components)).await
    }

    async fn target_id(&self, app: &TestApp, name: &str) -> String {
        let targets =
            app.ok("query($e: ID!) { environment(id: $e) { targets { id name } } }", json!({ "e": self.env })).await;
        let list = targets["environment"]["targets"].as_array().unwrap().clone();
        list.iter().find(|t| t["name"] == name).unwrap()["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_enroll_deploy_their_hosts_and_refuse_what_they_should() {
    let app = TestApp::spawn_with_workers_and(&[("GANTRY_AGENT_JOB_SECONDS", "30")]).await;
    let mut hosts = enrolled_hosts(&app).await;
    let estate = Estate::new(&app, &hosts).await;
    let ports = estate.ports;

    let v1 = estate.release(&app, "1.0.0").await;
    let first = app.promote(&v1, &estate.env).await;
    assert_eq!(first["status"], "DEPLOYED", "{first:#}\n{}\n{}", hosts[0].log(), hosts[1].log());
    assert_eq!(served(ports[0]).await.as_deref(), Some("a 1.0.0"));
    assert_eq!(served(ports[1]).await.as_deref(), Some("b 1.0.0"));
    // Each host's engine runs its own container, and the evidence names what was applied.
    assert!(hosts[0].engine.docker(&["ps", "--format", "{{.Names}}"]).contains("web-a"));
    assert!(!hosts[1].engine.docker(&["ps", "--format", "{{.Names}}"]).contains("web-a"));
    let artifacts = gantry_tests::artifacts(&app, first["id"].as_str().unwrap()).await;
    assert_eq!(artifacts.len(), 2);
    assert!(artifacts.iter().all(|a| a["kind"] == "DOCKER_CONTAINER"));
    dashboard_names_the_agents(&app, first["id"].as_str().unwrap()).await;

    // Agent A may not report on B's job; a replayed or stale request is refused.
    let b_target = estate.target_id(&app, "host-b").await;
    let others = format!("/agent/v1/jobs/{}/{b_target}/result", first["id"].as_str().unwrap());
    let result = json!({ "succeeded": true, "message": "not mine", "appliedSha256": null });
    assert_eq!(signed_post(&app, &hosts[0].dir, &others, &result, 0, "n-other").await, 404, "not its job");
    let facts = json!({ "version": "0", "os": "linux", "arch": "x86_64" });
    assert_eq!(signed_post(&app, &hosts[0].dir, "/agent/v1/heartbeat", &facts, 0, "n-once").await, 204);
    assert_eq!(signed_post(&app, &hosts[0].dir, "/agent/v1/heartbeat", &facts, 0, "n-once").await, 401, "a replay");
    assert_eq!(signed_post(&app, &hosts[0].dir, "/agent/v1/heartbeat", &facts, -600, "n-old").await, 401, "stale");

    // Agent A dies; the next promotion's job for it is never claimed and fails at its
    // deadline, and the environment rolls back: B runs 1.0.0 again.
    hosts[0].kill();
    let v2 = estate.release(&app, "2.0.0").await;
    let requested = app.request_promotion(&v2, &estate.env).await;
    let settled = eventually(Duration::from_secs(90), "the promotion to fail at the deadline", || async {
        let p = app.promotion(requested["id"].as_str().unwrap()).await;
        (p["status"] == "FAILED").then_some(p)
    })
    .await;
    assert!(settled["reason"].to_string().contains("did not claim the job before its deadline"), "{settled:#}");
    eventually(Duration::from_secs(90), "host b rolled back to 1.0.0", || async {
        (served(ports[1]).await.as_deref() == Some("b 1.0.0")).then_some(())
    })
    .await;
    revoked_agent_stops(&app, &mut hosts[1]).await;
}

/// The dashboard's Agents page lists both, online; a promotion's page names the agent of
/// each deployment.
async fn dashboard_names_the_agents(app: &TestApp, promotion: &str) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let admin = gantry_tests::app::token("ops", &[gantry_domain::access::Role::Admin]);
    let login = http.post(format!("{}/ui/login", app.url)).body(format!("token={admin}")).send().await.unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let get = async |path: &str| {
        let page = http.get(format!("{}{path}", app.url)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(page.status(), 200, "{path}");
        page.text().await.unwrap()
    };
    let agents = get("/ui/agents").await;
    assert!(
        agents.contains("host-a") && agents.contains("host-b") && agents.matches(">ONLINE<").count() == 2,
        "{agents}"
    );
    let page = get(&format!("/ui/promotions/{promotion}")).await;
    assert!(page.contains(">host-a</a>") && page.contains(">host-b</a>"), "{page}");
}

/// Revoked, an agent is refused at its next request and stops.
async fn revoked_agent_stops(app: &TestApp, host: &mut Host) {
    app.ok("mutation($id: ID!) { revokeAgent(id: $id) { revokedAt } }", json!({ "id": host.id() })).await;
    let mut process = host.process.take().unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = process.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(40), "the agent did not stop:\n{}", host.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status.code(), Some(1));
    assert!(host.log().contains("this agent was revoked"), "{}", host.log());
}

/// Waits until `check` holds, polling every 100 ms for at most `limit`.
async fn until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A job changed after Gantry signed it is refused by the agent, which applies nothing; an
/// agent killed while applying a job does not apply it again when it comes back, and says
/// what runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_job_is_refused_and_a_restart_never_applies_a_job_twice() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let app = TestApp::spawn_with_workers_and(&[("GANTRY_AGENT_JOB_SECONDS", "60")]).await;
    let mut hosts = enrolled_hosts(&app).await;
    let estate = Estate::new(&app, &hosts).await;
    let v1 = estate.release(&app, "1.0.0").await;
    assert_eq!(app.promote(&v1, &estate.env).await["status"], "DEPLOYED");

    // With A stopped, the next job waits for it; it is changed in the table (another image),
    // and A, back, refuses it.
    hosts[0].kill();
    let v2 = estate.release(&app, "2.0.0").await;
    let requested = app.request_promotion(&v2, &estate.env).await;
    let agent = hosts[0].id();
    let key = [
        ("PK".to_owned(), AttributeValue::S(format!("AGENT#{agent}"))),
        (
            "SK".to_owned(),
            AttributeValue::S(format!(
                "JOB#{}#{}",
                requested["id"].as_str().unwrap(),
                estate.target_id(&app, "host-a").await
            )),
        ),
    ];
    let job = eventually(Duration::from_secs(20), "the job for agent a", || async {
        let got =
            app.dynamodb.get_item().table_name(&app.table).set_key(Some(key.clone().into())).send().await.unwrap();
        got.item
    })
    .await;
    let payload = job["payload"].as_s().unwrap().replace("2.0.0", "6.6.6");
    assert_ne!(&payload, job["payload"].as_s().unwrap(), "the payload names the release's version");
    app.dynamodb
        .update_item()
        .table_name(&app.table)
        .set_key(Some(key.clone().into()))
        .update_expression("SET payload = :p")
        .expression_attribute_values(":p", AttributeValue::S(payload))
        .send()
        .await
        .unwrap();
    let before = hosts[0].engine.docker(&["ps", "-a", "--format", "{{.Names}}"]);
    hosts[0].start();
    let failed = app.settled(requested["id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    assert!(
        failed["reason"].to_string().contains("the agent refused the job: the job's signature does not verify"),
        "{failed:#}\n{}",
        hosts[0].log()
    );
    assert_eq!(hosts[0].engine.docker(&["ps", "-a", "--format", "{{.Names}}"]), before, "nothing was applied on a");
    gantry_tests::rolled_back_to(&app, &estate.env, &v1).await;

    // B is killed as soon as its new container exists, before it is checked and renamed.
    let v3 = estate.release(&app, "2.0.0").await;
    // Once the rollback has finished, the environment takes the next promotion.
    let q = "mutation($r: ID!, $e: ID!) { requestPromotion(releaseId: $r, environmentId: $e) { id status } }";
    let requested = eventually(Duration::from_secs(60), "the environment to be free", || async {
        let answer = app.gql(q, json!({ "r": v3, "e": estate.env })).await;
        answer["errors"].is_null().then(|| answer["data"]["requestPromotion"].clone())
    })
    .await;
    until(Duration::from_secs(60), "b's new container", || {
        hosts[1].engine.docker(&["ps", "-a", "--format", "{{.Names}}"]).lines().any(|n| n.starts_with("web-b-"))
    })
    .await;
    hosts[1].kill();
    // The container the killed attempt created: the job's, by name and id.
    let created = hosts[1].engine.docker(&["ps", "-a", "--filter", "name=web-b-", "--format", "{{.Names}} {{.ID}}"]);
    let (name, id) = created.lines().next().unwrap().split_once(' ').unwrap();
    let (name, id) = (name.to_owned(), id.to_owned());
    hosts[1].start();
    let settled = app.settled(requested["id"].as_str().unwrap()).await;
    assert!(
        settled["deployments"]
            .to_string()
            .contains("the agent restarted while applying this job, which is not applied again"),
        "{settled:#}\n{}",
        hosts[1].log()
    );
    // (The rollback that follows runs the previous version in a container of its own name.)
    let after = hosts[1].engine.docker(&["inspect", "-f", "{{.Id}}", &name]);
    assert!(after.starts_with(&id), "{name} was not created a second time: {id} then {after}");
}

/// A compose stack through an agent: the rendered file (images by digest) is the signed
/// artifact, applied on the agent's own engine. An agent that restarts in the middle of the
/// next job checks each service instead of applying it again, and says what runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compose_stack_is_applied_through_an_agent() {
    let app = TestApp::spawn_with_workers().await;
    let mut hosts = enrolled_hosts(&app).await;
    let registry = Registry::start(free_port(), &format!("{}/webhooks/registry/distribution", app.url), "unused");
    let (web_port, worker_port) = (free_port(), free_port());
    let mut pinned = Vec::new();
    for (service, port) in [("web", web_port), ("worker", worker_port)] {
        let httpd = ["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h", "/etc"];
        let digest =
            registry.push_with_command(&format!("shop/{service}"), "1.0.0", &format!("{service} 1.0.0"), &httpd);
        let image = format!("{}/shop/{service}", registry.host());
        let component = app.create_component_with(json!({ "name": service, "imageRepository": image })).await;
        app.add_version(&component, "1.0.0", &digest).await;
        pinned.push((component, digest));
    }
    let check = |port: u16| format!("[CMD, wget, -q, -O-, 'http://127.0.0.1:{port}/gantry-build']");
    let file = format!(
        "services:\n  web:\n    image: {host}/shop/web:latest\n    network_mode: host\n    healthcheck:\n      test: {web}\n      interval: 1s\n      timeout: 1s\n      retries: 3\n  worker:\n    image: {host}/shop/worker:latest\n    network_mode: host\n    depends_on: [web]\n    healthcheck:\n      test: {worker}\n      interval: 1s\n      timeout: 1s\n      retries: 3\n",
        host = registry.host(),
        web = check(web_port),
        worker = check(worker_port)
    );
    let env = app.create_environment("edge", 10).await;
    let target = json!({ "name": "stack", "type": "COMPOSE", "compose": { "agentId": hosts[1].id(), "project": "shop",
        "file": file, "services": [{ "name": "web", "componentId": pinned[0].0 }, { "name": "worker", "componentId": pinned[1].0 }] } });
    app.ok(
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }",
        json!({ "e": env, "t": target }),
    )
    .await;
    let components: Vec<Value> = pinned.iter().map(|(c, _)| json!({ "componentId": c, "version": "1.0.0" })).collect();
    let release = app.ready_release("shop-1.0.0", json!(components)).await;
    let deployed = app.promote(&release, &env).await;
    assert_eq!(deployed["status"], "DEPLOYED", "{deployed:#}\n{}", hosts[1].log());
    assert_eq!(served(web_port).await.as_deref(), Some("web 1.0.0"));
    assert_eq!(served(worker_port).await.as_deref(), Some("worker 1.0.0"));
    let names = hosts[1].engine.docker(&["ps", "--format", "{{.Names}}"]);
    assert!(names.contains("shop-web") && names.contains("shop-worker"), "{names}");
    let artifact = &gantry_tests::artifacts(&app, deployed["id"].as_str().unwrap()).await[0];
    assert_eq!(artifact["kind"], "COMPOSE_FILE");
    let rendered = artifact["content"].as_str().unwrap();
    assert!(rendered.contains(&format!("shop/web@{}", pinned[0].1)), "{rendered}");
    // While no job is open, the agent shows none.
    let agent = app.ok("query($id: ID!) { agent(id: $id) { currentJob } }", json!({ "id": hosts[1].id() })).await;
    assert_eq!(agent["agent"]["currentJob"], Value::Null);

    // The agent stops; its journal says it started the 2.0.0 job (as if it died mid-job).
    hosts[1].kill();
    let mut next = Vec::new();
    for (service, port) in [("web", web_port), ("worker", worker_port)] {
        let httpd = ["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h", "/etc"];
        let digest =
            registry.push_with_command(&format!("shop/{service}"), "2.0.0", &format!("{service} 2.0.0"), &httpd);
        let component = &pinned[next.len()].0;
        app.add_version(component, "2.0.0", &digest).await;
        next.push(json!({ "componentId": component, "version": "2.0.0" }));
    }
    let release = app.ready_release("shop-2.0.0", json!(next)).await;
    let requested = app.request_promotion(&release, &env).await;
    let targets = app.ok("query($e: ID!) { environment(id: $e) { targets { id } } }", json!({ "e": env })).await;
    let job = format!("{}.{}", requested["id"].as_str().unwrap(), targets["environment"]["targets"][0]["id"]);
    std::fs::create_dir_all(hosts[1].dir.join("jobs")).unwrap();
    std::fs::write(hosts[1].dir.join("jobs").join(format!("{}.json", job.replace('"', ""))), "{}").unwrap();
    hosts[1].start();
    let settled = app.settled(requested["id"].as_str().unwrap()).await;
    assert_eq!(settled["status"], "FAILED", "{settled:#}");
    let said = settled["deployments"].to_string();
    assert!(
        said.contains("the agent restarted while applying this job, which is not applied again")
            && said.contains(&format!("shop-web runs {}/shop/web@{}", registry.host(), pinned[0].1)),
        "{settled:#}\n{}",
        hosts[1].log()
    );
}

/// A canary behind HAProxy on an agent's host: the agent steers the router through its
/// Runtime API, records each step through the API, and puts every request back on the stable
/// version when the promotion is aborted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_behind_haproxy_is_steered_through_an_agent() {
    let app = TestApp::spawn_with_workers().await;
    let hosts = enrolled_hosts(&app).await;
    let haproxy = gantry_tests::haproxy::Haproxy::start("roundrobin");
    let registry = Registry::start(free_port(), &format!("{}/webhooks/registry/distribution", app.url), "unused");
    let image = format!("{}/demo/web", registry.host());
    let web = app.create_component_with(json!({ "name": "web", "imageRepository": image })).await;
    let serve = ["sh", "-c", "exec httpd -f -p 127.0.0.1:$PORT -h /etc"];
    for version in ["1.0.0", "1.1.0"] {
        let digest = registry.push_with_command("demo/web", version, &format!("web {version}"), &serve);
        app.add_version(&web, version, &digest).await;
    }
    let env = app.create_environment("edge", 10).await;
    let strategy = json!({ "canary": { "steps": [{ "setWeight": 50, "pauseSeconds": 3600 }] } });
    let target = json!({ "name": "routed", "type": "DOCKER", "docker": { "agentId": hosts[0].id(), "containerName": "web",
        "componentId": web, "networkMode": "host", "traffic": { "router": haproxy.router(), "strategy": strategy } } });
    let add =
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
    app.ok(add, json!({ "e": env, "t": target })).await;
    let first = app.ready_release("web-1.0.0", json!([{ "componentId": web, "version": "1.0.0" }])).await;
    let deployed = app.promote(&first, &env).await;
    assert_eq!(deployed["status"], "DEPLOYED", "{deployed:#}\n{}", hosts[0].log());
    assert_eq!(haproxy.split(100, None).await, [("web 1.0.0".to_owned(), 100)].into());

    let second = app.ready_release("web-1.1.0", json!([{ "componentId": web, "version": "1.1.0" }])).await;
    let id = app.request_promotion(&second, &env).await["id"].as_str().unwrap().to_owned();
    let steps = "query($id: ID!) { promotion(id: $id) { deployments { trafficSteps { weight verdict } } } }";
    let read = async || app.ok(steps, json!({ "id": id })).await["promotion"]["deployments"][0]["trafficSteps"].clone();
    eventually(Duration::from_secs(90), "the agent's canary to hold 50%", || async {
        read().await.as_array().is_some_and(|s| s.iter().any(|s| s["verdict"] == "HOLDING")).then_some(())
    })
    .await;
    let split = haproxy.split(400, None).await;
    let new = *split.get("web 1.1.0").unwrap_or(&0) as f64 / 4.0;
    assert!((new - 50.0).abs() <= 10.0, "half the requests reach the new version: {split:?}");
    app.ok("mutation($id: ID!) { abortPromotion(id: $id) { id } }", json!({ "id": id })).await;
    let aborted = app.settled(&id).await;
    assert_eq!(aborted["status"], "FAILED", "{aborted:#}\n{}", hosts[0].log());
    let verdicts: Vec<String> = read()
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}@{}", s["verdict"].as_str().unwrap(), s["weight"]))
        .collect();
    assert_eq!(verdicts, ["HOLDING@50", "ABORTED@50", "ROLLED_BACK@0"]);
    assert_eq!(haproxy.split(200, None).await, [("web 1.0.0".to_owned(), 200)].into());
    let names = hosts[0].engine.docker(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(names.trim(), "web", "the new container is removed: {names}");
}
