//! Every input is bounded: an over-long or malformed value is refused with
//! `BAD_USER_INPUT`, the message does not echo it back, and nothing is written.

use serde_json::{Value, json};

use crate::support::{TestApp, digest};

const CREATE_COMPONENT: &str = "mutation($input: CreateComponentInput!) { createComponent(input: $input) { id } }";
const CREATE_RELEASE: &str = "mutation($input: CreateReleaseInput!) { createRelease(input: $input) { id } }";
const CREATE_VERSION: &str = "mutation($input: CreateVersionMapInput!) { createVersionMap(input: $input) { id } }";

fn component(extra: Value) -> Value {
    let mut input = json!({ "name": "api", "imageRepository": "registry.example.com/acme/api" });
    input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    json!({ "input": input })
}

#[tokio::test]
async fn registry_integration_ids_are_checked() {
    let app = TestApp::spawn().await;
    let huge = "i".repeat(500_000);
    let message = app
        .assert_rejected("BAD_USER_INPUT", CREATE_COMPONENT, component(json!({ "registryIntegrationId": huge })))
        .await;
    assert!(message.len() < 200, "no echo: {} bytes", message.len());
    app.assert_rejected("BAD_USER_INPUT", CREATE_COMPONENT, component(json!({ "registryIntegrationId": "not-an-id" })))
        .await;
    let missing = "00000000-0000-4000-8000-000000000000";
    let message = app
        .assert_rejected("NOT_FOUND", CREATE_COMPONENT, component(json!({ "registryIntegrationId": missing })))
        .await;
    assert!(message.contains("registry integration"), "{message}");
    let (integration, _) = app.create_integration("hub", "DISTRIBUTION", "http://127.0.0.1:5000").await;
    let created = app.ok(CREATE_COMPONENT, component(json!({ "registryIntegrationId": integration }))).await;
    assert!(created["createComponent"]["id"].is_string());
}

/// A release input over one component at 1.0.0, with `source` as its `sourceRef`.
fn release(name: &str, component: &str, source: Value) -> Value {
    json!({ "input": { "name": name, "components": [{ "componentId": component, "version": "1.0.0" }], "sourceRef": source } })
}

#[tokio::test]
async fn source_refs_are_bounded_and_commits_are_full_shas() {
    let app = TestApp::spawn().await;
    let id = app.create_component("api").await;
    app.add_version(&id, "1.0.0", &digest("api")).await;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let huge = release("r1", &id, json!({ "repository": "r".repeat(600_000), "commitSha": sha }));
    let message = app.assert_rejected("BAD_USER_INPUT", CREATE_RELEASE, huge).await;
    assert!(message.len() < 200, "no echo: {} bytes", message.len());
    for (source, says) in [
        (json!({ "repository": "r".repeat(513) }), "sourceRef.repository must be at most 512"),
        (json!({ "commitSha": "abc123def456" }), "40 or 64 hex"),
        (json!({ "commitSha": "z".repeat(40) }), "40 or 64 hex"),
        (json!({ "branch": "main\u{0}" }), "control characters"),
    ] {
        let message = app.assert_rejected("BAD_USER_INPUT", CREATE_RELEASE, release("r1", &id, source)).await;
        assert!(message.contains(says), "{message}");
    }
    let source =
        json!({ "repository": "https://git.example.com/acme/api", "branch": "main", "commitSha": sha.to_uppercase() });
    let q = "mutation($input: CreateReleaseInput!) { createRelease(input: $input) { sourceRef { commitSha } } }";
    let created = app.ok(q, release("r1", &id, source)).await;
    assert_eq!(created["createRelease"]["sourceRef"]["commitSha"], sha, "stored lowercase");
    // The REST endpoint CI calls applies the same rules.
    let body = release("r2", &id, json!({ "type": "git", "commit": "abc1234" }))["input"].clone();
    let res =
        app.http.post(format!("{}/api/v1/releases", app.url)).bearer_auth(&app.token).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn long_versions_and_names_are_refused_without_echo() {
    let app = TestApp::spawn().await;
    let id = app.create_component("api").await;
    let semver = format!("1.0.0-{}", "a".repeat(2_000));
    let input = json!({ "input": { "componentId": id, "tag": "v1", "digest": digest("a"), "semver": semver } });
    let message = app.assert_rejected("BAD_USER_INPUT", CREATE_VERSION, input).await;
    assert!(message.contains("at most 128"), "{message}");
    // A 900 KB name: refused before it reaches a resolver, in a short message.
    let name = "n".repeat(900_000);
    let message = app.assert_rejected("BAD_USER_INPUT", CREATE_COMPONENT, component(json!({ "name": name }))).await;
    assert!(message.len() < 200, "{} bytes", message.len());
    // Just under the blanket limit, the name rule answers, abridged.
    let name = "n".repeat(16_000);
    let message = app.assert_rejected("BAD_USER_INPUT", CREATE_COMPONENT, component(json!({ "name": name }))).await;
    assert!(message.len() < 400 && message.contains("characters left out"), "{} bytes: {message}", message.len());
}

#[tokio::test]
async fn display_text_refuses_control_and_bidi_characters() {
    let app = TestApp::spawn().await;
    for bad in ["API\u{0}", "API\u{1b}[2J", "txt.\u{202E}exe", "two\nlines"] {
        let message =
            app.assert_rejected("BAD_USER_INPUT", CREATE_COMPONENT, component(json!({ "displayName": bad }))).await;
        assert!(message.contains("control or bidirectional"), "{message}");
    }
    let created = app.ok(CREATE_COMPONENT, component(json!({ "displayName": "Café 東京 — API" }))).await;
    assert!(created["createComponent"]["id"].is_string());
}

#[tokio::test]
async fn approver_roles_are_stored_once_each() {
    let app = TestApp::spawn().await;
    let roles = vec!["admin"; 1_000];
    let q = "mutation($input: CreateEnvironmentInput!) { createEnvironment(input: $input) { approverRoles } }";
    let data = app.ok(q, json!({ "input": { "name": "prod", "order": 1, "approverRoles": roles } })).await;
    assert_eq!(data["createEnvironment"]["approverRoles"], json!(["admin"]));
    let too_many = vec!["admin"; 1_001];
    app.assert_rejected(
        "BAD_USER_INPUT",
        q,
        json!({ "input": { "name": "stage", "order": 2, "approverRoles": too_many } }),
    )
    .await;
}
