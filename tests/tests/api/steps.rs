//! Promotion steps (`trigger-ci`, `wait-ci`) against the GitHub stand-in, which checks each
//! request against GitHub's published description and runs scripted workflow runs.

use std::time::Duration;

use gantry_github_fake::{FakeGitHub, Fault, RunOutcome};
use gantry_gitlab_fake::{FakeGitLab, PipelineOutcome};
use gantry_jenkins_fake::{BuildOutcome, FakeJenkins};
use serde_json::{Value, json};

use crate::support::{TestApp, digest, sample};

const SET: &str = "mutation($e: ID!, $s: [PromotionStepInput!]!) { setEnvironmentSteps(environmentId: $e, steps: $s) {
    steps { name phase type integrationId timeoutSeconds pipeline ref variables { name value } waitForCompletion runIdFrom failOnError } } }";
const STEPS: &str = "query($id: ID!) { promotion(id: $id) { status reason
    steps { step { name phase } state runId runUrl detail startedAt deadline finishedAt } } }";

/// A GITHUB CI integration on the stand-in, and a READY release of a new component whose
/// sourceRef is `acme/shop` at tag `v{version}`. Returns (integration, component, release).
async fn setup(app: &TestApp, gh: &FakeGitHub, version: &str) -> (String, String, String) {
    gh.require_token("ghp_steps");
    let create = "mutation($i: CreateCiIntegrationInput!) { createCiIntegration(input: $i) { id } }";
    let input =
        json!({ "name": "github", "provider": "GITHUB", "apiUrl": gh.url, "credentials": { "token": "ghp_steps" } });
    let integration =
        app.ok(create, json!({ "i": input })).await["createCiIntegration"]["id"].as_str().unwrap().to_owned();
    let component = app.create_component("api").await;
    let release = release(app, &integration, &component, version).await;
    (integration, component, release)
}

async fn release(app: &TestApp, integration: &str, component: &str, version: &str) -> String {
    app.add_version(component, version, &digest(version)).await;
    app.ready_release_with(json!({ "name": format!("shop-{version}"),
        "components": [{ "componentId": component, "version": version }],
        "sourceRef": { "scmIntegrationId": integration, "repository": "https://github.com/acme/shop",
                       "tag": format!("v{version}"), "commitSha": "4c8d2a9e1f0b3c5d7e9f1a2b3c4d5e6f7a8b9c0d" } }))
        .await
}

fn trigger(name: &str, phase: &str, integration: &str, pipeline: &str, wait: bool) -> Value {
    json!({ "name": name, "phase": phase, "integrationId": integration,
            "triggerCi": { "pipeline": pipeline, "waitForCompletion": wait, "variables": [{ "name": "SUITE", "value": "smoke" }] } })
}

fn wait_for(name: &str, phase: &str, integration: &str, from: &str) -> Value {
    json!({ "name": name, "phase": phase, "integrationId": integration, "waitCi": { "runIdFrom": from } })
}

async fn set_steps(app: &TestApp, environment: &str, steps: Value) -> Value {
    app.ok(SET, json!({ "e": environment, "s": steps })).await["setEnvironmentSteps"]["steps"].clone()
}

async fn settled_steps(app: &TestApp, promotion: &str) -> Value {
    app.settled(promotion).await;
    app.ok(STEPS, json!({ "id": promotion })).await["promotion"].clone()
}

/// Requests the promotion of a fresh release into a fresh `staging` whose one pre-deploy step
/// `smoke` dispatches a run that ends as `outcome` (within `timeout` seconds); its id.
async fn smoke_promotion(app: &TestApp, gh: &FakeGitHub, outcome: RunOutcome, timeout: u64) -> String {
    let (integration, _, release) = setup(app, gh, "1.0.0").await;
    let staging = app.create_environment("staging", 10).await;
    let mut step = trigger("smoke", "PRE_DEPLOY", &integration, "smoke.yml", true);
    step["timeoutSeconds"] = json!(timeout);
    set_steps(app, &staging, json!([step])).await;
    gh.script([outcome]);
    app.request_promotion(&release, &staging).await["id"].as_str().unwrap().to_owned()
}

/// The run the promotion's first step waits for, once it does.
async fn waited_run(app: &TestApp, promotion: &str) -> String {
    gantry_tests::eventually(Duration::from_secs(20), "the step to wait for its run", || async {
        let p = app.ok(STEPS, json!({ "id": promotion })).await["promotion"].clone();
        (p["steps"][0]["state"] == "RUNNING").then(|| p["steps"][0]["runId"].as_str().unwrap().to_owned())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_run_before_and_after_the_deployment() {
    let app = TestApp::spawn_with_workers().await;
    let gh = FakeGitHub::start().await;
    let (integration, _, release) = setup(&app, &gh, "1.0.0").await;
    let staging = app.create_environment("staging", 10).await;
    let plan = json!([
        trigger("verify", "POST_DEPLOY", &integration, "verify.yml", false),
        trigger("smoke", "PRE_DEPLOY", &integration, "smoke.yml", true),
        wait_for("verified", "POST_DEPLOY", &integration, "verify"),
    ]);
    let stored = set_steps(&app, &staging, plan).await;
    let names: Vec<&str> = stored.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["smoke", "verify", "verified"], "pre-deploy steps first");
    assert_eq!((stored[0]["type"].as_str(), stored[0]["timeoutSeconds"].as_u64()), (Some("TRIGGER_CI"), Some(3600)));
    assert_eq!(stored[2]["failOnError"], true);
    // A dispatch meets a 502 and a rate limit first: the client tries again.
    gh.faults([Fault::ServerError, Fault::SecondaryRateLimited]);

    let id = app.request_promotion(&release, &staging).await["id"].as_str().unwrap().to_owned();
    let done = settled_steps(&app, &id).await;
    assert_eq!(done["status"], "DEPLOYED", "{done:#}");
    let states: Vec<&str> = done["steps"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["SUCCEEDED"; 3], "{done:#}");
    let runs = gh.runs();
    assert_eq!(runs.len(), 2, "one dispatch per trigger-ci step: {runs:#?}");
    assert_eq!((runs[0].workflow.as_str(), runs[0].git_ref.as_str()), ("smoke.yml", "v1.0.0"));
    assert_eq!(runs[0].inputs["GANTRY_PROMOTION_ID"], id.as_str());
    assert_eq!(runs[0].inputs["GANTRY_RELEASE_ID"], release.as_str());
    assert_eq!(
        (runs[0].inputs["GANTRY_ENVIRONMENT"].as_str(), runs[0].inputs["SUITE"].as_str()),
        (Some("staging"), Some("smoke"))
    );
    assert_eq!(done["steps"][0]["runId"], runs[0].id.to_string().as_str());
    assert_eq!(done["steps"][2]["runId"], runs[1].id.to_string().as_str(), "wait-ci waits for verify's run");
    assert!(done["steps"][0]["runUrl"].as_str().unwrap().ends_with(&format!("/actions/runs/{}", runs[0].id)));
    assert!(gh.violations().is_empty(), "{:#?}", gh.violations());

    let kinds = app.evidence_kinds(&id).await;
    let at = |kind: &str| kinds.iter().position(|k| k == kind).unwrap_or_else(|| panic!("{kind} in {kinds:?}"));
    assert!(at("steps_planned") < at("step_started") && at("step_triggered") < at("step_result"), "{kinds:?}");
    let results = kinds.iter().filter(|k| *k == "step_result").count();
    assert_eq!(results, 3, "every step's result is sealed: {kinds:?}");
    let first_result = at("step_result");
    assert!(first_result < at("deployment_result"), "smoke ends before deploying: {kinds:?}");
    assert!(kinds.iter().rposition(|k| k == "step_result").unwrap() > at("deployment_result"), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pre_deploy_step_fails_the_promotion_before_anything_deploys() {
    let app = TestApp::spawn_with_workers().await;
    let gh = FakeGitHub::start().await;
    let id = smoke_promotion(&app, &gh, RunOutcome::Fail, 60).await;
    let done = settled_steps(&app, &id).await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["reason"], "step smoke: the run ended: failure");
    assert_eq!(done["steps"][0]["state"], "FAILED");
    let kinds = app.evidence_kinds(&id).await;
    assert!(!kinds.iter().any(|k| k.starts_with("deployment")), "nothing deployed: {kinds:?}");
    let states = reported_states(&gh, "failure").await;
    assert_eq!(states, ["queued", "failure"], "queued behind its steps, then failed");
}

/// The states posted for the stand-in's one deployment, once the last is `last`.
async fn reported_states(gh: &FakeGitHub, last: &str) -> Vec<String> {
    gantry_tests::eventually(Duration::from_secs(20), "the deployment's last state", || async {
        let id = gh.deployments().first()?["id"].as_u64()?;
        let states = gh.states(id);
        (states.last().map(String::as_str) == Some(last)).then_some(states)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_post_deploy_step_rolls_back() {
    let app = TestApp::spawn_with_workers().await;
    let gh = FakeGitHub::start().await;
    let (integration, component, first) = setup(&app, &gh, "1.0.0").await;
    let prod = app.create_environment_with(json!({ "name": "prod", "order": 10, "autoRollback": true })).await;
    assert_eq!(app.promote(&first, &prod).await["status"], "DEPLOYED");
    set_steps(&app, &prod, json!([trigger("verify", "POST_DEPLOY", &integration, "verify.yml", true)])).await;
    gh.script([RunOutcome::Fail]);

    let second = release(&app, &integration, &component, "1.1.0").await;
    let id = app.request_promotion(&second, &prod).await["id"].as_str().unwrap().to_owned();
    let done = settled_steps(&app, &id).await;
    assert_eq!(
        (done["status"].as_str(), done["reason"].as_str()),
        (Some("FAILED"), Some("step verify: the run ended: failure"))
    );
    let environment = gantry_tests::rolled_back_to(&app, &prod, &first).await;
    assert!(environment["hold"]["reason"].as_str().unwrap().contains("rollback"), "{environment:#}");
    assert_eq!(gh.runs().len(), 1, "a rollback runs no steps");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_never_ends_times_out() {
    let app = TestApp::spawn_with_workers().await;
    let gh = FakeGitHub::start().await;
    let id = smoke_promotion(&app, &gh, RunOutcome::Hang, 3).await;
    let done = settled_steps(&app, &id).await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["steps"][0]["state"], "TIMED_OUT");
    assert_eq!(done["reason"], "step smoke: the run did not finish within 3 seconds");
}

/// The webhook path and a freshly rotated webhook secret of the CI integration named `name`.
async fn ci_webhook(app: &TestApp, name: &str) -> (String, String) {
    let listed = app.ok("{ ciIntegrations { id name webhookPath webhookSecret } }", json!({})).await;
    let found = listed["ciIntegrations"].as_array().unwrap().iter().find(|i| i["name"] == name).unwrap().clone();
    assert_eq!(found["webhookSecret"], Value::Null, "the secret is shown only when issued");
    let rotate = "mutation($id: ID!) { rotateCiIntegrationWebhookSecret(id: $id) { webhookPath webhookSecret } }";
    let issued = app.ok(rotate, json!({ "id": found["id"] })).await["rotateCiIntegrationWebhookSecret"].clone();
    assert_eq!(issued["webhookPath"], found["webhookPath"]);
    (issued["webhookPath"].as_str().unwrap().to_owned(), issued["webhookSecret"].as_str().unwrap().to_owned())
}

/// With checks ten minutes apart, only the run's `workflow_run` webhook, to its own CI
/// integration's path and signed with that integration's secret, can end the step soon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_run_webhook_brings_the_check_forward() {
    let app = TestApp::spawn_with_workers_and(&[("GANTRY_STEP_POLL_SECONDS", "600")]).await;
    let gh = FakeGitHub::start().await;
    let (_, registry_secret) = app.create_integration("github-hooks", "GITHUB", "https://ghcr.io").await;
    let id = smoke_promotion(&app, &gh, RunOutcome::Succeed, 3600).await;
    let (path, secret) = ci_webhook(&app, "github").await;
    assert!(path.starts_with("/webhooks/ci/github/"), "{path}");
    let create = "mutation($i: CreateCiIntegrationInput!) { createCiIntegration(input: $i) { webhookSecret } }";
    let other = json!({ "name": "other", "provider": "GITHUB", "apiUrl": gh.url, "credentials": { "token": "t" } });
    let other = app.ok(create, json!({ "i": other })).await["createCiIntegration"]["webhookSecret"].clone();
    let run = waited_run(&app, &id).await;
    gh.finish_run(run.parse().unwrap());
    let (mut body, _) = sample("github/workflow_run.completed.json");
    let mut payload: Value = serde_json::from_slice(&body).unwrap();
    payload["workflow_run"]["id"] = json!(run.parse::<u64>().unwrap());
    body = serde_json::to_vec(&payload).unwrap();
    let post = async |path: &str, key: &str, delivery: &str| {
        let signature = gantry_gateway::verify::sign_hmac_sha256(key.as_bytes(), &body);
        let headers = [
            ("x-github-event", "workflow_run"),
            ("x-github-delivery", delivery),
            ("x-hub-signature-256", signature.as_str()),
        ];
        app.post_webhook(path, &headers, body.clone()).await.0
    };
    // Another integration's secret, or a registry integration's, cannot move this step.
    assert_eq!(post(&path, other.as_str().unwrap(), "other").await, 401);
    assert_eq!(post(&path, &registry_secret, "registry").await, 401);
    assert_eq!(post("/webhooks/ci/github", &registry_secret, "build-only").await, 202, "a build record only");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.ok(STEPS, json!({ "id": id })).await["promotion"]["status"], "APPROVED", "still waiting");
    assert_eq!(post(&path, &secret, "run-done").await, 202);

    let done = gantry_tests::eventually(Duration::from_secs(20), "the nudged step to end", || async {
        let p = app.ok(STEPS, json!({ "id": id })).await["promotion"].clone();
        (p["status"] == "DEPLOYED").then_some(p)
    })
    .await;
    assert_eq!(done["steps"][0]["state"], "SUCCEEDED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_trigger_fails_the_step_with_the_reason() {
    let app = TestApp::spawn_with_workers().await;
    let gh = FakeGitHub::start().await;
    let (_, _, release) = setup(&app, &gh, "1.0.0").await;
    let create = "mutation($i: CreateCiIntegrationInput!) { createCiIntegration(input: $i) { id } }";
    let input =
        json!({ "name": "stale", "provider": "GITHUB", "apiUrl": gh.url, "credentials": { "token": "ghp_old" } });
    let stale = app.ok(create, json!({ "i": input })).await["createCiIntegration"]["id"].as_str().unwrap().to_owned();
    let staging = app.create_environment("staging", 10).await;
    set_steps(&app, &staging, json!([trigger("smoke", "PRE_DEPLOY", &stale, "smoke.yml", true)])).await;
    let id = app.request_promotion(&release, &staging).await["id"].as_str().unwrap().to_owned();
    let done = settled_steps(&app, &id).await;
    assert_eq!(done["status"], "FAILED");
    let reason = done["reason"].as_str().unwrap();
    assert!(reason.starts_with("step smoke: the trigger failed:") && reason.contains("Bad credentials"), "{reason}");
    assert!(gh.runs().is_empty());
}

#[tokio::test]
async fn bad_plans_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let gh = FakeGitHub::start().await;
    let (integration, _, _) = setup(&app, &gh, "1.0.0").await;
    let staging = app.create_environment("staging", 10).await;
    let gitlab = app
        .ok(
            "mutation($i: CreateCiIntegrationInput!) { createCiIntegration(input: $i) { id } }",
            json!({ "i": { "name": "gitlab", "provider": "GITLAB", "project": "acme/shop", "credentials": { "token": "glpat" } } }),
        )
        .await["createCiIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let create = "mutation($i: CreateCiIntegrationInput!) { createCiIntegration(input: $i) { id } }";
    let input = json!({ "name": "jenkins", "provider": "JENKINS", "apiUrl": "http://127.0.0.1:9",
                        "credentials": { "username": "u", "apiToken": "t" } });
    let jenkins = app.ok(create, json!({ "i": input })).await["createCiIntegration"]["id"].as_str().unwrap().to_owned();
    let before = app.snapshot().await;
    let unknown = "0b6b0998-4aac-4743-94c8-b906db3adcef";
    let mut both = trigger("a", "PRE_DEPLOY", &integration, "a.yml", true);
    both["waitCi"] = json!({ "runId": "1" });
    let mut slow = trigger("a", "PRE_DEPLOY", &integration, "a.yml", true);
    slow["timeoutSeconds"] = json!(86401);
    let mut reserved = trigger("a", "PRE_DEPLOY", &integration, "a.yml", true);
    reserved["triggerCi"]["variables"] = json!([{ "name": "GANTRY_ENVIRONMENT", "value": "x" }]);
    let cases = [
        (json!([trigger("a", "PRE_DEPLOY", unknown, "a.yml", true)]), "names no CI integration"),
        (json!([trigger("a", "PRE_DEPLOY", &gitlab, "a.yml", true)]), "leave pipeline out"),
        (
            json!([{ "name": "a", "phase": "PRE_DEPLOY", "integrationId": integration, "triggerCi": {} }]),
            "names its workflow",
        ),
        (json!([{ "name": "a", "phase": "PRE_DEPLOY", "integrationId": jenkins, "triggerCi": {} }]), "names its job"),
        (
            json!([{ "name": "w", "phase": "PRE_DEPLOY", "integrationId": jenkins, "waitCi": { "runId": "7" } }]),
            "runIdFrom",
        ),
        (json!([both]), "exactly one of triggerCi, waitCi and analysis"),
        (json!([wait_for("w", "PRE_DEPLOY", &integration, "nothing")]), "earlier trigger-ci"),
        (json!([slow]), "timeoutSeconds"),
        (json!([reserved]), "GANTRY_"),
        (
            json!([
                trigger("a", "PRE_DEPLOY", &integration, "a.yml", true),
                trigger("a", "POST_DEPLOY", &integration, "b.yml", true)
            ]),
            "two steps",
        ),
    ];
    for (steps, why) in cases {
        let message = app.assert_rejected("BAD_USER_INPUT", SET, json!({ "e": staging, "s": steps })).await;
        assert!(message.contains(why), "{why}: {message}");
    }
    assert_eq!(app.snapshot().await, before, "a refused plan writes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_without_fail_on_error_lets_the_promotion_go_on() {
    let app = TestApp::spawn_with_workers().await;
    let gh = FakeGitHub::start().await;
    let (integration, _, release) = setup(&app, &gh, "1.0.0").await;
    let staging = app.create_environment("staging", 10).await;
    let mut lenient = wait_for("e2e-result", "POST_DEPLOY", &integration, "e2e");
    lenient["waitCi"]["failOnError"] = json!(false);
    set_steps(&app, &staging, json!([trigger("e2e", "POST_DEPLOY", &integration, "e2e.yml", false), lenient])).await;
    gh.script([RunOutcome::Fail]);

    let id = app.request_promotion(&release, &staging).await["id"].as_str().unwrap().to_owned();
    let done = settled_steps(&app, &id).await;
    assert_eq!(done["status"], "DEPLOYED", "{done:#}");
    assert_eq!(
        (done["steps"][0]["state"].as_str(), done["steps"][1]["state"].as_str()),
        (Some("SUCCEEDED"), Some("FAILED"))
    );
    assert_eq!(done["steps"][1]["detail"], "the run ended: failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_cancelled_while_a_step_waits_goes_no_further() {
    let app = TestApp::spawn_with_workers().await;
    let gh = FakeGitHub::start().await;
    let id = smoke_promotion(&app, &gh, RunOutcome::Hang, 3600).await;
    waited_run(&app, &id).await;
    let cancel = "mutation($id: ID!) { cancelPromotion(id: $id) { status } }";
    assert_eq!(app.ok(cancel, json!({ "id": id })).await["cancelPromotion"]["status"], "CANCELLED");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = app.ok(STEPS, json!({ "id": id })).await["promotion"].clone();
    assert_eq!((after["status"].as_str(), after["steps"][0]["state"].as_str()), (Some("CANCELLED"), Some("RUNNING")));
    let kinds = app.evidence_kinds(&id).await;
    assert!(!kinds.iter().any(|k| k == "step_result" || k.starts_with("deployment")), "{kinds:?}");
    assert_eq!(reported_states(&gh, "inactive").await, ["queued", "inactive"], "GitHub has no cancelled state");
    let q = "query($id: ID!) { promotion(id: $id) { reports { state } } }";
    assert_eq!(app.ok(q, json!({ "id": id })).await["promotion"]["reports"][0]["state"], "CANCELLED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_promotion_is_a_canceled_gitlab_status() {
    let app = TestApp::spawn_with_workers().await;
    let gl = FakeGitLab::start("glpat-steps").await;
    gl.script([PipelineOutcome::Hang]);
    let integration = gitlab(&app, &gl).await;
    let component = app.create_component("api").await;
    let release = release(&app, &integration, &component, "1.0.0").await;
    let staging = app.create_environment("staging", 10).await;
    let step = json!({ "name": "e2e", "phase": "PRE_DEPLOY", "integrationId": integration, "triggerCi": {} });
    set_steps(&app, &staging, json!([step])).await;
    let id = app.request_promotion(&release, &staging).await["id"].as_str().unwrap().to_owned();
    waited_run(&app, &id).await;
    app.ok("mutation($id: ID!) { cancelPromotion(id: $id) { status } }", json!({ "id": id })).await;
    let states = gantry_tests::eventually(Duration::from_secs(20), "the canceled status", || async {
        let states: Vec<String> = gl.statuses().into_iter().map(|s| s.state).collect();
        (states.last().map(String::as_str) == Some("canceled")).then_some(states)
    })
    .await;
    assert_eq!(states, ["pending", "canceled"]);
    assert!(gl.violations().is_empty(), "{:#?}", gl.violations());
}

/// A GITLAB CI integration on the stand-in, for the project `acme/shop`; its id.
async fn gitlab(app: &TestApp, gl: &FakeGitLab) -> String {
    let create = "mutation($i: CreateCiIntegrationInput!) { createCiIntegration(input: $i) { id } }";
    let input = json!({ "name": "gitlab", "provider": "GITLAB", "apiUrl": gl.url, "project": "acme/shop",
                        "credentials": { "token": "glpat-steps" } });
    app.ok(create, json!({ "i": input })).await["createCiIntegration"]["id"].as_str().unwrap().to_owned()
}

/// Requests a promotion into a fresh `staging` whose one pre-deploy step `e2e` runs the
/// GitLab project's pipeline; its id.
async fn gitlab_promotion(app: &TestApp, gh: &FakeGitHub, gl: &FakeGitLab) -> String {
    let (_, _, release) = setup(app, gh, "1.0.0").await;
    let integration = gitlab(app, gl).await;
    let staging = app.create_environment("staging", 10).await;
    let step = json!({ "name": "e2e", "phase": "PRE_DEPLOY", "integrationId": integration,
                       "triggerCi": { "variables": [{ "name": "SUITE", "value": "e2e" }] } });
    set_steps(app, &staging, json!([step])).await;
    app.request_promotion(&release, &staging).await["id"].as_str().unwrap().to_owned()
}

/// With checks ten minutes apart, only the pipeline's hook can end the step soon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_pipelines_run_as_steps_and_their_hooks_bring_checks_forward() {
    let app = TestApp::spawn_with_workers_and(&[("GANTRY_STEP_POLL_SECONDS", "600")]).await;
    let (gh, gl) = (FakeGitHub::start().await, FakeGitLab::start("glpat-steps").await);
    let id = gitlab_promotion(&app, &gh, &gl).await;
    let (path, secret) = ci_webhook(&app, "gitlab").await;
    let run = waited_run(&app, &id).await;
    gl.finish_pipeline(run.parse().unwrap());
    let hook = json!({ "object_kind": "pipeline", "object_attributes": { "id": run.parse::<u64>().unwrap(),
        "sha": "4c8d2a9e1f0b3c5d7e9f1a2b3c4d5e6f7a8b9c0d", "status": "success", "ref": "v1.0.0" } });
    let headers =
        [("x-gitlab-event", "Pipeline Hook"), ("x-gitlab-token", secret.as_str()), ("idempotency-key", "pl-1")];
    assert_eq!(app.post_webhook(&path, &headers, hook.to_string().into_bytes()).await.0, 202);

    let done = gantry_tests::eventually(Duration::from_secs(20), "the nudged step to end", || async {
        let p = app.ok(STEPS, json!({ "id": id })).await["promotion"].clone();
        (p["status"] == "DEPLOYED").then_some(p)
    })
    .await;
    assert_eq!(done["steps"][0]["state"], "SUCCEEDED");
    assert!(done["steps"][0]["runUrl"].as_str().unwrap().ends_with(&format!("/acme/shop/-/pipelines/{run}")));
    let pipeline = &gl.pipelines()[0];
    assert_eq!((pipeline.project.as_str(), pipeline.git_ref.as_str()), ("acme/shop", "v1.0.0"));
    let variable = |key: &str| pipeline.variables.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    assert_eq!((variable("GANTRY_ENVIRONMENT"), variable("SUITE")), (Some("staging"), Some("e2e")));
    assert_eq!(variable("GANTRY_PROMOTION_ID"), Some(id.as_str()));
    assert!(gl.violations().is_empty(), "{:#?}", gl.violations());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_gitlab_pipeline_fails_the_promotion() {
    let app = TestApp::spawn_with_workers().await;
    let (gh, gl) = (FakeGitHub::start().await, FakeGitLab::start("glpat-steps").await);
    gl.script([PipelineOutcome::Fail]);
    gl.faults([Fault::RateLimited]);
    let id = gitlab_promotion(&app, &gh, &gl).await;
    let done = settled_steps(&app, &id).await;
    assert_eq!(
        (done["status"].as_str(), done["reason"].as_str()),
        (Some("FAILED"), Some("step e2e: the run ended: failed"))
    );
    assert_eq!(gl.pipelines().len(), 1, "a rate-limited create is tried again, once");
}

/// Requests a promotion into a fresh `staging` with a JENKINS integration on the stand-in:
/// before deploying, `smoke` queues a build of the job `smoke` and waits for it; after, `e2e`
/// queues one of `e2e` and `e2e-result` waits for it. Returns the promotion's id.
async fn jenkins_promotion(app: &TestApp, gh: &FakeGitHub, jenkins: &FakeJenkins) -> String {
    let (_, _, release) = setup(app, gh, "1.0.0").await;
    let create = "mutation($i: CreateCiIntegrationInput!) { createCiIntegration(input: $i) { id } }";
    let input = json!({ "name": "jenkins", "provider": "JENKINS", "apiUrl": jenkins.url,
                        "credentials": { "username": "gantry", "apiToken": "jenkins-token" } });
    let integration =
        app.ok(create, json!({ "i": input })).await["createCiIntegration"]["id"].as_str().unwrap().to_owned();
    jenkins.add_job("smoke");
    jenkins.add_job("e2e");
    let staging = app.create_environment("staging", 10).await;
    let plan = json!([
        trigger("smoke", "PRE_DEPLOY", &integration, "smoke", true),
        trigger("e2e", "POST_DEPLOY", &integration, "e2e", false),
        wait_for("e2e-result", "POST_DEPLOY", &integration, "e2e"),
    ]);
    set_steps(app, &staging, plan).await;
    app.request_promotion(&release, &staging).await["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jenkins_builds_run_as_steps_through_the_queue() {
    let app = TestApp::spawn_with_workers().await;
    let (gh, jenkins) = (FakeGitHub::start().await, FakeJenkins::start("gantry", "jenkins-token").await);
    jenkins.faults([Fault::ServerError]);
    let id = jenkins_promotion(&app, &gh, &jenkins).await;
    let done = settled_steps(&app, &id).await;
    assert_eq!(done["status"], "DEPLOYED", "{done:#}");
    let builds = jenkins.builds();
    assert_eq!(builds.iter().map(|b| b.job.as_str()).collect::<Vec<_>>(), ["smoke", "e2e"]);
    let parameter = |key: &str| builds[0].parameters.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    assert_eq!((parameter("GANTRY_PROMOTION_ID"), parameter("SUITE")), (Some(id.clone()), Some("smoke".to_owned())));
    assert_eq!(done["steps"][0]["runId"], "1", "the queue item became build 1");
    assert_eq!(done["steps"][0]["runUrl"], "https://jenkins.example.com/job/smoke/1/");
    assert_eq!(done["steps"][2]["runId"], "1", "e2e-result waited for e2e's build");
    assert!(jenkins.violations().is_empty(), "{:#?}", jenkins.violations());
    let kinds = app.evidence_kinds(&id).await;
    assert_eq!(kinds.iter().filter(|k| *k == "step_run_started").count(), 2, "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_jenkins_build_fails_the_promotion() {
    let app = TestApp::spawn_with_workers().await;
    let (gh, jenkins) = (FakeGitHub::start().await, FakeJenkins::start("gantry", "jenkins-token").await);
    jenkins.script([BuildOutcome::Abort]);
    let id = jenkins_promotion(&app, &gh, &jenkins).await;
    let done = settled_steps(&app, &id).await;
    assert_eq!(
        (done["status"].as_str(), done["reason"].as_str()),
        (Some("FAILED"), Some("step smoke: the run ended: aborted"))
    );
    assert_eq!(jenkins.builds().len(), 1, "nothing after the failed pre-deploy step");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_whose_job_was_not_queued_runs_after_the_sweep_queues_it_once() {
    // The request's process cannot reach the deploy-jobs queue, which carries step jobs too.
    let missing = "http://127.0.0.1:4566/000000000000/gantry-no-such-queue";
    let app = TestApp::spawn_with(&[("GANTRY_DEPLOY_QUEUE_URL", missing)]).await;
    let gh = FakeGitHub::start().await;
    let id = smoke_promotion(&app, &gh, RunOutcome::Succeed, 60).await;
    let stalled = app.ok(STEPS, json!({ "id": id })).await["promotion"].clone();
    assert_eq!((&stalled["status"], &stalled["steps"][0]["state"]), (&json!("APPROVED"), &json!("QUEUED")));

    let state = app.state_with(&[]);
    let sweep = |after_seconds| gantry_domain::promotions::Sweep {
        after_seconds,
        ..gantry_domain::promotions::Sweep::promotions()
    };
    let now = chrono::Utc::now();
    assert_eq!(state.promotions.sweep(&sweep(120), now).await.unwrap(), 0, "its job may be on its way");
    let later = now + chrono::Duration::seconds(61);
    assert_eq!(state.promotions.sweep(&sweep(60), later).await.unwrap(), 1, "lost for a minute: queued again");
    let again = later + chrono::Duration::seconds(30);
    assert_eq!(state.promotions.sweep(&sweep(60), again).await.unwrap(), 0, "queued again within the minute");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(gh.runs().is_empty(), "no step has run yet");

    let worker = crate::sweeps::deployer(&app);
    let done = settled_steps(&app, &id).await;
    worker.abort();
    assert_eq!((&done["status"], &done["steps"][0]["state"]), (&json!("DEPLOYED"), &json!("SUCCEEDED")), "{done:#}");
    assert_eq!(gh.runs().len(), 1, "one dispatch: the step's job was queued once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_whose_steps_passed_but_that_did_not_begin_deploying_is_deployed_by_the_sweep() {
    let app = TestApp::spawn().await;
    let gh = FakeGitHub::start().await;
    let id = smoke_promotion(&app, &gh, RunOutcome::Succeed, 60).await;
    // The worker that runs the step cannot move the release once it passed: the promotion
    // stays APPROVED with its one pre-deploy step done.
    let refusing = app.state_refusing("{\"S\":\"promoting\"}");
    let queue = refusing.deploy_jobs.clone();
    let worker = tokio::spawn(async move { queue.poll(|e| gantry_deployer::handle(refusing.clone(), e)).await });
    let passed = gantry_tests::eventually(Duration::from_secs(20), "the step to pass", || async {
        let p = app.ok(STEPS, json!({ "id": id })).await["promotion"].clone();
        (p["steps"][0]["state"] == "SUCCEEDED").then_some(p)
    })
    .await;
    worker.abort();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.ok(STEPS, json!({ "id": id })).await["promotion"]["status"], "APPROVED", "{passed:#}");

    let state = app.state_with(&[]);
    let later = chrono::Utc::now() + chrono::Duration::seconds(121);
    assert_eq!(state.promotions.sweep(&gantry_domain::promotions::Sweep::promotions(), later).await.unwrap(), 1);
    let done = settled_steps(&app, &id).await;
    assert_eq!(done["status"], "DEPLOYED", "{done:#}");
    let kinds = app.evidence_kinds(&id).await;
    assert_eq!(kinds.iter().filter(|k| *k == "deployment_started").count(), 1, "{kinds:?}");
    assert_eq!(gh.runs().len(), 1, "the step ran once");
}
