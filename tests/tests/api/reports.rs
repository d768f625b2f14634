//! Deployments reported to GitHub's Deployments API, against the GitHub stand-in (which
//! checks each request against GitHub's published description).

use std::time::Duration;

use gantry_github_fake::{FakeGitHub, Fault};
use gantry_gitlab_fake::FakeGitLab;
use gantry_nomad_fake::FakeNomad;
use serde_json::{Value, json};

use crate::support::{TestApp, digest};

const SHA: &str = "4c8d2a9e1f0b3c5d7e9f1a2b3c4d5e6f7a8b9c0d";
const REPORTS: &str =
    "query($id: ID!) { promotion(id: $id) { reports { provider externalId state attempts lastError } } }";

/// `dev` (order 10) with a Nomad target and `prod` (order 20) with none, and a READY release
/// whose sourceRef names `integration`. Returns (dev, prod, release).
async fn setup(app: &TestApp, nomad: &FakeNomad, integration: &str) -> (String, String, String) {
    nomad.seed_service("shop", &["server"]);
    let dev = app.create_environment("dev", 10).await;
    let prod = app.create_environment("prod", 20).await;
    let api = app.create_component("api").await;
    app.add_version(&api, "1.0.0", &digest("api")).await;
    let target = json!({ "name": "nomad", "type": "NOMAD", "nomad": { "address": nomad.url, "jobId": "shop",
        "tasks": [{ "name": "server", "componentId": api }] } });
    let add =
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
    app.ok(add, json!({ "e": dev, "t": target })).await;
    let release = sourced(integration, "https://github.com/acme/shop", "shop-1.0.0", &api, "1.0.0");
    (dev, prod, app.ready_release_with(release).await)
}

/// A GITHUB CI integration on the stand-in, with `token`; its id.
async fn github(app: &TestApp, gh: &FakeGitHub, token: &str) -> String {
    let create = "mutation($i: CreateCiIntegrationInput!) { createCiIntegration(input: $i) { id } }";
    let input = json!({ "name": "github", "provider": "GITHUB", "apiUrl": gh.url, "credentials": { "token": token } });
    app.ok(create, json!({ "i": input })).await["createCiIntegration"]["id"].as_str().unwrap().to_owned()
}

/// A release of one component version whose sourceRef names the integration, `repository`
/// and [`SHA`].
fn sourced(integration: &str, repository: &str, name: &str, component: &str, version: &str) -> Value {
    sourced_at(integration, repository, name, component, version, SHA)
}

/// As [`sourced`], at commit `sha`.
fn sourced_at(integration: &str, repository: &str, name: &str, component: &str, version: &str, sha: &str) -> Value {
    json!({ "name": name, "components": [{ "componentId": component, "version": version }],
            "sourceRef": { "scmIntegrationId": integration, "repository": repository, "commitSha": sha, "branch": "main" } })
}

/// The promotion's reports once `done` holds for them.
async fn reported(app: &TestApp, promotion: &str, done: impl Fn(&Value) -> bool) -> Value {
    gantry_tests::eventually(Duration::from_secs(30), "the report", || async {
        let reports = app.ok(REPORTS, json!({ "id": promotion })).await["promotion"]["reports"].clone();
        done(&reports[0]).then_some(reports)
    })
    .await
}

/// The states posted for a deployment only ever move forward.
fn forward(states: &[String]) -> bool {
    let rank = |s: &str| ["queued", "in_progress", "success"].iter().position(|x| *x == s);
    states.windows(2).all(|w| rank(&w[0]) < rank(&w[1]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_is_reported_once_as_a_github_deployment() {
    let app = TestApp::spawn_with_workers_and(&[("GANTRY_PUBLIC_URL", "https://gantry.example")]).await;
    let (nomad, gh) = (FakeNomad::start().await, FakeGitHub::start().await);
    gh.require_token("ghp_gantry");
    gh.faults([Fault::ServerError, Fault::SecondaryRateLimited]);
    let (dev, prod, release) = setup(&app, &nomad, &github(&app, &gh, "ghp_gantry").await).await;
    let set_url = "mutation($e: ID!, $u: String!) { updateEnvironment(id: $e, input: { url: $u }) { url } }";
    app.assert_rejected("BAD_USER_INPUT", set_url, json!({ "e": dev, "u": "ftp://dev.shop.example" })).await;
    let url = app.ok(set_url, json!({ "e": dev, "u": "https://dev.shop.example/" })).await;
    assert_eq!(url["updateEnvironment"]["url"], "https://dev.shop.example");

    let promotion = app.promote(&release, &dev).await;
    assert_eq!(promotion["status"], "DEPLOYED", "{promotion:#}");
    let id = app.request_promotion(&release, &prod).await["id"].as_str().unwrap().to_owned();
    let dev_promotion = gantry_tests::eventually(Duration::from_secs(10), "dev's promotion id", || async {
        let q = "query($e: ID!) { promotions(environmentId: $e) { edges { node { id } } } }";
        let found = app.ok(q, json!({ "e": dev })).await;
        found["promotions"]["edges"][0]["node"]["id"].as_str().map(str::to_owned)
    })
    .await;
    let dev_reports = reported(&app, &dev_promotion, |r| r["state"] == "SUCCESS").await;
    let prod_reports = reported(&app, &id, |r| r["state"] == "SUCCESS").await;

    assert!(gh.violations().is_empty(), "{:#?}", gh.violations());
    let deployments = gh.deployments();
    assert_eq!(deployments.len(), 2, "one GitHub deployment per promotion: {deployments:#?}");
    let of = |environment: &str| deployments.iter().find(|d| d["environment"] == environment).unwrap();
    let (first, second) = (of("dev"), of("prod"));
    assert_eq!((first["ref"].as_str(), first["environment"].as_str()), (Some(SHA), Some("dev")));
    assert_eq!(
        (first["production_environment"].as_bool(), second["production_environment"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(first["repository"], "acme/shop");
    assert_eq!(first["payload"]["promotionId"].as_str(), Some(dev_promotion.as_str()));
    let dev_states = gh.states(first["id"].as_u64().unwrap());
    assert_eq!(dev_states.last().map(String::as_str), Some("success"), "{dev_states:?}");
    assert!(forward(&dev_states), "states only move forward: {dev_states:?}");
    let dev_statuses = gh.statuses().into_iter().filter(|(d, _)| Some(*d) == first["id"].as_u64());
    let dev_statuses: Vec<_> = dev_statuses.collect();
    assert!(dev_statuses.iter().all(|(_, s)| s["environment_url"] == "https://dev.shop.example"));
    let page = format!("https://gantry.example/ui/promotions/{dev_promotion}");
    assert!(
        dev_statuses.iter().all(|(_, s)| s["log_url"] == page.as_str()),
        "the dashboard's promotion page: {dev_statuses:?}"
    );
    assert_eq!(dev_reports[0]["externalId"], first["id"].to_string().as_str());
    assert_eq!((dev_reports[0]["provider"].as_str(), dev_reports[0]["attempts"].as_u64()), (Some("GITHUB"), Some(0)));
    assert_eq!(
        gh.states(second["id"].as_u64().unwrap()),
        ["queued", "in_progress", "success"],
        "prod has no targets: done at once, and every state is reported"
    );
    assert_eq!(prod_reports[0]["state"], "SUCCESS");

    // A redelivered report creates no second deployment and posts nothing again.
    let posted = gh.statuses().len();
    let again = json!({ "promotionId": dev_promotion, "report": "queued", "attempt": 0 });
    app.sqs.send_message().queue_url(&app.deploy_queue).message_body(again.to_string()).send().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!((gh.deployments().len(), gh.statuses().len()), (2, posted));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_report_is_recorded_and_the_deployment_goes_on() {
    let app = TestApp::spawn_with_workers().await;
    let (nomad, gh) = (FakeNomad::start().await, FakeGitHub::start().await);
    gh.require_token("ghp_right");
    let (dev, _, release) = setup(&app, &nomad, &github(&app, &gh, "ghp_wrong").await).await;
    let requested = app.request_promotion(&release, &dev).await;
    let settled = app.settled(requested["id"].as_str().unwrap()).await;
    assert_eq!(settled["status"], "DEPLOYED", "reports never fail a deployment");
    let reports = reported(&app, requested["id"].as_str().unwrap(), |r| r["lastError"].is_string()).await;
    assert!(reports[0]["lastError"].as_str().unwrap().contains("Bad credentials"), "{reports:#}");
    assert_eq!(reports[0]["externalId"], Value::Null);
    assert!(gh.deployments().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_without_a_source_is_not_reported() {
    let app = TestApp::spawn_with_workers().await;
    let (nomad, gh) = (FakeNomad::start().await, FakeGitHub::start().await);
    let (dev, _, _) = setup(&app, &nomad, &github(&app, &gh, "t").await).await;
    let api = app.create_component("web").await;
    app.add_version(&api, "1.0.0", &digest("web")).await;
    let plain = app.ready_release("plain", json!([{ "componentId": api, "version": "1.0.0" }])).await;
    app.sqs_requests.take();
    let requested = app.request_promotion(&plain, &dev).await;
    app.settled(requested["id"].as_str().unwrap()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reports = app.ok(REPORTS, json!({ "id": requested["id"] })).await["promotion"]["reports"].clone();
    assert_eq!((reports, gh.deployments().len()), (json!([]), 0));
    // Nothing was even queued: a report job names its state as `report`.
    let sent = app.sqs_requests.take_requests();
    let queued = sent.iter().filter(|r| String::from_utf8_lossy(&r.body).contains(r#"\"report\""#)).count();
    assert_eq!(queued, 0, "report jobs queued for a release that names no commit");
    assert!(sent.iter().any(|r| r.operation.starts_with("SendMessage")), "the deploy job went through this recorder");
}

/// Outside production GitHub retires the previous deployment itself; in production Gantry
/// marks it inactive once the next one succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_production_deployment_retires_the_previous_one() {
    let app = TestApp::spawn_with_workers().await;
    let gh = FakeGitHub::start().await;
    let prod = app.create_environment("prod", 10).await;
    let api = app.create_component("api").await;
    let integration = github(&app, &gh, "t").await;
    let mut promotions = Vec::new();
    for version in ["1.0.0", "1.1.0"] {
        app.add_version(&api, version, &digest(version)).await;
        let id =
            app.ready_release_with(sourced(&integration, "acme/shop", &format!("shop-{version}"), &api, version)).await;
        let promotion = app.request_promotion(&id, &prod).await["id"].as_str().unwrap().to_owned();
        reported(&app, &promotion, |r| r["state"] == "SUCCESS").await;
        promotions.push(promotion);
    }
    let first = reported(&app, &promotions[0], |r| r["state"] == "INACTIVE").await;
    let ids: Vec<u64> = gh.deployments().iter().map(|d| d["id"].as_u64().unwrap()).collect();
    assert_eq!(first[0]["externalId"], ids[0].to_string().as_str());
    assert_eq!(
        (gh.states(ids[0]), gh.states(ids[1])),
        (
            ["queued", "in_progress", "success", "inactive"].map(String::from).to_vec(),
            ["queued", "in_progress", "success"].map(String::from).to_vec()
        )
    );
    assert!(gh.violations().is_empty(), "{:#?}", gh.violations());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_is_reported_as_a_gitlab_commit_status() {
    let app = TestApp::spawn_with_workers().await;
    let (nomad, gl) = (FakeNomad::start().await, FakeGitLab::start("glpat-gantry").await);
    gl.faults([Fault::ServerError, Fault::RateLimited]);
    let create = "mutation($i: CreateCiIntegrationInput!) { createCiIntegration(input: $i) { id } }";
    let input = json!({ "name": "gitlab", "provider": "GITLAB", "apiUrl": gl.url, "project": "acme/shop",
                        "credentials": { "token": "glpat-gantry" } });
    let integration =
        app.ok(create, json!({ "i": input })).await["createCiIntegration"]["id"].as_str().unwrap().to_owned();
    let (dev, _, release) = setup(&app, &nomad, &integration).await;
    let set_url =
        "mutation($e: ID!) { updateEnvironment(id: $e, input: { url: \"https://dev.shop.example\" }) { id } }";
    app.ok(set_url, json!({ "e": dev })).await;

    let id = app.request_promotion(&release, &dev).await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.settled(&id).await["status"], "DEPLOYED");
    let reports = reported(&app, &id, |r| r["state"] == "SUCCESS").await;
    assert_eq!(
        (reports[0]["provider"].as_str(), reports[0]["externalId"].as_str()),
        (Some("GITLAB"), Some("gantry/dev"))
    );
    assert!(gl.violations().is_empty(), "{:#?}", gl.violations());
    let statuses = gl.statuses();
    let states: Vec<&str> = statuses.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(states.last(), Some(&"success"), "{statuses:#?}");
    let rank = |s: &str| ["pending", "running", "success"].iter().position(|x| *x == s);
    assert!(states.windows(2).all(|w| rank(w[0]) < rank(w[1])), "states only move forward: {states:?}");
    for status in &statuses {
        assert_eq!(
            (status.project.as_str(), status.sha.as_str(), status.name.as_str()),
            ("acme/shop", SHA, "gantry/dev")
        );
        assert_eq!(status.target_url.as_deref(), Some("https://dev.shop.example"));
        assert_eq!(status.git_ref.as_deref(), Some("main"), "the sourceRef's branch");
    }
}

/// A GITLAB CI integration on the stand-in; its id.
async fn gitlab(app: &TestApp, gl: &FakeGitLab) -> String {
    let create = "mutation($i: CreateCiIntegrationInput!) { createCiIntegration(input: $i) { id } }";
    let input = json!({ "name": "gitlab", "provider": "GITLAB", "apiUrl": gl.url, "project": "acme/shop",
                        "credentials": { "token": "glpat-gantry" } });
    app.ok(create, json!({ "i": input })).await["createCiIntegration"]["id"].as_str().unwrap().to_owned()
}

/// Thirty promotions in a row to a target that deploys in well under a second, reported to
/// GitHub and GitLab in turns: every deployment gets every state, in order, none twice,
/// however the report jobs race each other for the promotion's lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_of_every_promotion_is_reported_in_order_once() {
    let app = TestApp::spawn_with_workers().await;
    let (nomad, gh, gl) =
        (FakeNomad::start().await, FakeGitHub::start().await, FakeGitLab::start("glpat-gantry").await);
    let (github, gitlab) = (github(&app, &gh, "t").await, gitlab(&app, &gl).await);
    let (dev, _, _) = setup(&app, &nomad, &github).await;
    let api = app.create_component("web").await;
    let mut promotions = Vec::new();
    for n in 0..30 {
        let version = format!("1.0.{n}");
        app.add_version(&api, &version, &digest(&version)).await;
        let (integration, sha) = (if n % 2 == 0 { &github } else { &gitlab }, format!("{n:040x}"));
        let release = sourced_at(integration, "acme/shop", &format!("web-{version}"), &api, &version, &sha);
        let release = app.ready_release_with(release).await;
        let id = app.request_promotion(&release, &dev).await["id"].as_str().unwrap().to_owned();
        assert_eq!(app.settled(&id).await["status"], "DEPLOYED");
        promotions.push((id, sha));
    }
    for (n, (id, sha)) in promotions.iter().enumerate() {
        reported(&app, id, |r| r["state"] == "SUCCESS").await;
        if n % 2 == 0 {
            let deployments: Vec<u64> = gh
                .deployments()
                .iter()
                .filter(|d| d["payload"]["promotionId"] == id.as_str())
                .map(|d| d["id"].as_u64().unwrap())
                .collect();
            assert_eq!(deployments.len(), 1, "one GitHub deployment for promotion {n}");
            // GitHub itself retires an earlier deployment of the environment once a later one succeeds.
            let states = gh.states(deployments[0]);
            let ours = states.iter().take_while(|s| *s != "inactive").collect::<Vec<_>>();
            assert_eq!(ours, ["queued", "in_progress", "success"], "promotion {n}: {states:?}");
            assert!(states.len() <= 4, "promotion {n}: {states:?}");
        } else {
            let states: Vec<String> = gl.statuses().into_iter().filter(|s| &s.sha == sha).map(|s| s.state).collect();
            assert_eq!(states, ["pending", "running", "success"], "promotion {n}");
        }
    }
    assert!(gh.violations().is_empty() && gl.violations().is_empty());
}

/// GitHub's primary rate limit is waited out through the queue: no request before the
/// announced reset, and the report is complete afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_report_waits_for_the_reset_and_loses_nothing() {
    let app = TestApp::spawn_with_workers().await;
    let (nomad, gh) = (FakeNomad::start().await, FakeGitHub::start().await);
    // Longer than any in-process wait, so the wait goes through delayed messages.
    gh.rate_limit_window(Duration::from_secs(8));
    gh.faults([Fault::RateLimited]);
    let (dev, _, release) = setup(&app, &nomad, &github(&app, &gh, "t").await).await;
    let id = app.request_promotion(&release, &dev).await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.settled(&id).await["status"], "DEPLOYED");
    let limited = reported(&app, &id, |r| r["lastError"].as_str().is_some_and(|e| e.contains("rate limit"))).await;
    assert_eq!(limited[0]["state"], Value::Null, "nothing was posted yet: {limited:#}");
    let done = gantry_tests::eventually(Duration::from_secs(40), "the report after the reset", || async {
        let reports = app.ok(REPORTS, json!({ "id": id })).await["promotion"]["reports"].clone();
        (reports[0]["state"] == "SUCCESS").then_some(reports)
    })
    .await;
    assert_eq!(done[0]["lastError"], Value::Null);
    let deployment = gh.deployments()[0]["id"].as_u64().unwrap();
    assert_eq!(gh.states(deployment), ["queued", "in_progress", "success"]);
    assert_eq!(gh.early_requests(), 0, "GitHub was not called before its reset");
}
