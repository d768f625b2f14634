use serde_json::json;

use crate::support::{TestApp, digest};

const CREATE: &str = "mutation($input: CreateEnvironmentInput!) { createEnvironment(input: $input) { id name displayName order requiredApprovals } }";
const UPDATE: &str = "mutation($id: ID!, $input: UpdateEnvironmentInput!) { updateEnvironment(id: $id, input: $input) { name order requiredApprovals } }";

#[tokio::test]
async fn environments_round_trip_in_order() {
    let app = TestApp::spawn().await;
    let prod = app
        .ok(
            CREATE,
            json!({ "input": { "name": "prod", "displayName": "Production", "order": 30, "requiredApprovals": 2 } }),
        )
        .await["createEnvironment"]
        .clone();
    assert_eq!(prod["requiredApprovals"], 2);
    app.create_environment("dev", 10).await;
    let staging = app.create_environment("staging", 20).await;
    let list = app.ok("{ environments { name order } }", json!({})).await;
    assert_eq!(
        list["environments"],
        json!([{ "name": "dev", "order": 10 }, { "name": "staging", "order": 20 }, { "name": "prod", "order": 30 }])
    );

    let moved = app.ok(UPDATE, json!({ "id": staging, "input": { "order": 40, "name": "qa" } })).await;
    assert_eq!(moved["updateEnvironment"], json!({ "name": "qa", "order": 40, "requiredApprovals": 0 }));
    let list = app.ok("{ environments { name } }", json!({})).await;
    assert_eq!(list["environments"], json!([{ "name": "dev" }, { "name": "prod" }, { "name": "qa" }]));
    // The old order and name are free again.
    app.create_environment("staging", 20).await;

    let got = app.ok("query($id: ID!) { environment(id: $id) { displayName } }", json!({ "id": prod["id"] })).await;
    assert_eq!(got["environment"]["displayName"], "Production");
    app.ok("mutation($id: ID!) { deleteEnvironment(id: $id) { name } }", json!({ "id": prod["id"] })).await;
    app.assert_rejected("NOT_FOUND", "query($id: ID!) { environment(id: $id) { name } }", json!({ "id": prod["id"] }))
        .await;
    app.create_environment("prod", 30).await;
}

#[tokio::test]
async fn environment_names_and_orders_are_unique() {
    let app = TestApp::spawn().await;
    app.create_environment("dev", 10).await;
    let staging = app.create_environment("staging", 20).await;
    app.assert_rejected("CONFLICT", CREATE, json!({ "input": { "name": "dev", "order": 11 } })).await;
    let msg = app.assert_rejected("CONFLICT", CREATE, json!({ "input": { "name": "qa", "order": 10 } })).await;
    assert!(msg.contains("order 10"), "{msg}");
    app.assert_rejected("CONFLICT", UPDATE, json!({ "id": staging, "input": { "order": 10 } })).await;
    app.assert_rejected("CONFLICT", UPDATE, json!({ "id": staging, "input": { "name": "dev" } })).await;
}

#[tokio::test]
async fn malformed_environments_are_rejected() {
    let app = TestApp::spawn().await;
    let dev = app.create_environment("dev", 10).await;
    for input in [
        json!({ "name": "", "order": 1 }),
        json!({ "name": "qa", "order": -1 }),
        json!({ "name": "qa", "order": 1, "requiredApprovals": 11 }),
        json!({ "name": "qa", "order": 1, "requiredApprovals": -1 }),
        json!({ "name": "qa", "order": "first" }),
        json!({ "name": "qa" }),
    ] {
        app.assert_rejected("BAD_USER_INPUT", CREATE, json!({ "input": input })).await;
    }
    app.assert_rejected("BAD_USER_INPUT", UPDATE, json!({ "id": dev, "input": { "displayName": "  " } })).await;
    app.assert_rejected(
        "NOT_FOUND",
        UPDATE,
        json!({ "id": uuid::Uuid::new_v4().to_string(), "input": { "order": 3 } }),
    )
    .await;
    app.assert_rejected(
        "NOT_FOUND",
        "mutation($id: ID!) { deleteEnvironment(id: $id) { id } }",
        json!({ "id": uuid::Uuid::new_v4().to_string() }),
    )
    .await;
}

/// What a promotion records as it ends is written while it holds the environment's lock, so
/// an environment with an active promotion is not deleted.
#[tokio::test]
async fn an_environment_with_an_active_promotion_is_not_deleted() {
    let app = TestApp::spawn().await;
    let qa = app.create_environment_with(json!({ "name": "qa", "order": 1, "requiredApprovals": 1 })).await;
    let api = app.create_component("api").await;
    app.add_version(&api, "1.0.0", &digest("1.0.0")).await;
    let release = app.ready_release("api-1.0.0", json!([{ "componentId": api, "version": "1.0.0" }])).await;
    let promotion = app.request_promotion(&release, &qa).await;
    assert_eq!(promotion["status"], "PENDING_APPROVAL");
    let delete = "mutation($id: ID!) { deleteEnvironment(id: $id) { name } }";
    let message = app.assert_rejected("CONFLICT", delete, json!({ "id": qa })).await;
    assert!(message.contains("active promotion"), "{message}");
    let cancel = "mutation($id: ID!) { cancelPromotion(id: $id) { status } }";
    app.ok(cancel, json!({ "id": promotion["id"] })).await;
    let deleted = app.ok(delete, json!({ "id": qa })).await;
    assert_eq!(deleted["deleteEnvironment"]["name"], "qa");
}
