use serde_json::json;

use crate::support::{TestApp, digest};

const CREATE: &str = "mutation($input: CreateComponentInput!) { createComponent(input: $input) { id name displayName imageRepository versioningStrategy defaultChannel createdAt } }";

#[tokio::test]
async fn components_round_trip() {
    let app = TestApp::spawn().await;
    let created = app
        .ok(
            CREATE,
            json!({ "input": { "name": "api", "displayName": "API Service", "imageRepository": "myorg/api", "defaultChannel": "stable" } }),
        )
        .await["createComponent"]
        .clone();
    assert_eq!(created["name"], "api");
    assert_eq!(created["displayName"], "API Service");
    assert_eq!(created["versioningStrategy"], "SEMVER");
    let id = created["id"].as_str().unwrap();
    app.create_component("web").await;

    let list = app.ok("{ components { name } }", json!({})).await;
    assert_eq!(list["components"], json!([{ "name": "api" }, { "name": "web" }]), "listed by name");

    let got = app.ok("query($id: ID!) { component(id: $id) { name imageRepository } }", json!({ "id": id })).await;
    assert_eq!(got["component"], json!({ "name": "api", "imageRepository": "myorg/api" }));

    let updated = app
        .ok(
            "mutation($id: ID!) { updateComponent(id: $id, input: { name: \"api-v2\", defaultChannel: \"rc\" }) { name defaultChannel displayName } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        updated["updateComponent"],
        json!({ "name": "api-v2", "defaultChannel": "rc", "displayName": "API Service" })
    );
    // The old name is free again, the new one is taken.
    app.create_component("api").await;
    app.assert_rejected("CONFLICT", CREATE, json!({ "input": { "name": "api-v2", "imageRepository": "myorg/x" } }))
        .await;

    let deleted = app.ok("mutation($id: ID!) { deleteComponent(id: $id) { name } }", json!({ "id": id })).await;
    assert_eq!(deleted["deleteComponent"]["name"], "api-v2");
    app.assert_rejected("NOT_FOUND", "query($id: ID!) { component(id: $id) { name } }", json!({ "id": id })).await;
    // Its name can be used again.
    app.create_component("api-v2").await;
}

#[tokio::test]
async fn duplicate_component_names_conflict() {
    let app = TestApp::spawn().await;
    app.create_component("api").await;
    let msg = app
        .assert_rejected("CONFLICT", CREATE, json!({ "input": { "name": "api", "imageRepository": "other/api" } }))
        .await;
    assert!(msg.contains("api"), "{msg}");
}

#[tokio::test]
async fn renaming_onto_a_taken_name_conflicts() {
    let app = TestApp::spawn().await;
    app.create_component("api").await;
    let web = app.create_component("web").await;
    app.assert_rejected(
        "CONFLICT",
        "mutation($id: ID!) { updateComponent(id: $id, input: { name: \"api\" }) { name } }",
        json!({ "id": web }),
    )
    .await;
}

#[tokio::test]
async fn malformed_component_input_is_rejected() {
    let app = TestApp::spawn().await;
    for (input, why) in [
        (json!({ "name": "", "imageRepository": "myorg/api" }), "empty name"),
        (json!({ "name": "has space", "imageRepository": "myorg/api" }), "bad name"),
        (json!({ "name": "api", "imageRepository": "MyOrg/API:latest" }), "bad repository"),
        (json!({ "name": "api", "imageRepository": "myorg/api", "defaultChannel": "Stable" }), "bad channel"),
        (
            json!({ "name": "api", "imageRepository": "myorg/api", "versioningStrategy": "CALVER" }),
            "unknown enum value",
        ),
        (json!({ "name": "api", "imageRepository": "myorg/api", "colour": "blue" }), "unknown field"),
    ] {
        let msg = app.assert_rejected("BAD_USER_INPUT", CREATE, json!({ "input": input })).await;
        assert!(!msg.is_empty(), "{why}");
    }
}

#[tokio::test]
async fn unknown_and_malformed_ids() {
    let app = TestApp::spawn().await;
    let q = "query($id: ID!) { component(id: $id) { name } }";
    app.assert_rejected("NOT_FOUND", q, json!({ "id": uuid::Uuid::new_v4().to_string() })).await;
    app.assert_rejected("BAD_USER_INPUT", q, json!({ "id": "not-a-uuid" })).await;
    app.assert_rejected(
        "NOT_FOUND",
        "mutation($id: ID!) { deleteComponent(id: $id) { name } }",
        json!({ "id": uuid::Uuid::new_v4().to_string() }),
    )
    .await;
}

#[tokio::test]
async fn a_component_in_use_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let api = app.create_component("api").await;
    app.add_version(&api, "v1.0.0", &digest("api-1")).await;
    let release = app.create_release("r1", json!([{ "componentId": api, "version": "1.0.0" }])).await;
    let msg = app
        .assert_rejected("CONFLICT", "mutation($id: ID!) { deleteComponent(id: $id) { name } }", json!({ "id": api }))
        .await;
    assert!(msg.contains("used by 1 release"), "{msg}");

    // Once the release is gone, so is the hold.
    app.ok("mutation($id: ID!) { deleteRelease(id: $id) { id } }", json!({ "id": release["id"] })).await;
    app.ok("mutation($id: ID!) { deleteComponent(id: $id) { name } }", json!({ "id": api })).await;
    let left = app.snapshot().await;
    assert!(left.is_empty(), "component, versions, release and guards are all gone: {left:#?}");
}
