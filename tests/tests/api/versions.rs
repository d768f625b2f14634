use serde_json::json;

use crate::support::{TestApp, digest};

const CREATE: &str =
    "mutation($input: CreateVersionMapInput!) { createVersionMap(input: $input) { id tag semver channel source } }";

#[tokio::test]
async fn semver_and_channel_follow_the_tag() {
    let app = TestApp::spawn().await;
    let api = app.create_component("api").await;
    let v = app.add_version(&api, "v2.3.1", &digest("a")).await;
    assert_eq!((v["semver"].as_str(), v["channel"].as_str()), (Some("2.3.1"), Some("stable")));
    let v = app.add_version(&api, "2.4.0-rc.1", &digest("b")).await;
    assert_eq!((v["semver"].as_str(), v["channel"].as_str()), (Some("2.4.0-rc.1"), Some("rc")));
    let v = app.add_version(&api, "2.4.0-beta.3", &digest("c")).await;
    assert_eq!(v["channel"], "beta");
    let explicit = app
        .ok(CREATE, json!({ "input": { "componentId": api, "tag": "latest", "digest": digest("d"), "semver": "2.2.0", "channel": "edge" } }))
        .await;
    assert_eq!(explicit["createVersionMap"]["semver"], "2.2.0");
    assert_eq!(explicit["createVersionMap"]["channel"], "edge");
    assert_eq!(explicit["createVersionMap"]["source"], "MANUAL");
}

#[tokio::test]
async fn versions_list_highest_semver_first() {
    let app = TestApp::spawn().await;
    let api = app.create_component("api").await;
    for tag in ["1.0.0", "1.10.0", "1.2.0", "2.0.0-rc.1", "2.0.0-rc.10", "2.0.0-rc.2", "0.9.0"] {
        app.add_version(&api, tag, &digest(tag)).await;
    }
    let all = app.ok("query($id: ID!) { componentVersions(componentId: $id) { semver } }", json!({ "id": api })).await;
    let order: Vec<&str> =
        all["componentVersions"].as_array().unwrap().iter().map(|v| v["semver"].as_str().unwrap()).collect();
    assert_eq!(order, ["2.0.0-rc.10", "2.0.0-rc.2", "2.0.0-rc.1", "1.10.0", "1.2.0", "1.0.0", "0.9.0"]);

    let stable = app
        .ok(
            "query($id: ID!) { componentVersions(componentId: $id, channel: \"stable\", limit: 2) { semver } }",
            json!({ "id": api }),
        )
        .await;
    assert_eq!(stable["componentVersions"], json!([{ "semver": "1.10.0" }, { "semver": "1.2.0" }]));
    let rc = app
        .ok("query($id: ID!) { versionMaps(componentId: $id, channel: \"rc\") { semver } }", json!({ "id": api }))
        .await;
    assert_eq!(rc["versionMaps"].as_array().unwrap().len(), 3);
    let nested =
        app.ok("query($id: ID!) { component(id: $id) { versions(limit: 1) { semver } } }", json!({ "id": api })).await;
    assert_eq!(nested["component"]["versions"], json!([{ "semver": "2.0.0-rc.10" }]));
}

#[tokio::test]
async fn a_moved_tag_keeps_its_history() {
    let app = TestApp::spawn().await;
    let api = app.create_component("api").await;
    app.add_version(&api, "v1.0.0", &digest("first")).await;
    app.add_version(&api, "v1.0.0", &digest("second")).await;
    let all = app.ok("query($id: ID!) { versionMaps(componentId: $id) { digest } }", json!({ "id": api })).await;
    assert_eq!(all["versionMaps"].as_array().unwrap().len(), 2);
    // The same tag and digest twice is one version map.
    app.assert_rejected(
        "CONFLICT",
        CREATE,
        json!({ "input": { "componentId": api, "tag": "v1.0.0", "digest": digest("first") } }),
    )
    .await;
}

#[tokio::test]
async fn bad_version_maps_are_rejected() {
    let app = TestApp::spawn().await;
    let api = app.create_component("api").await;
    for input in [
        json!({ "componentId": api, "tag": "v1.0.0", "digest": "sha256:abc" }),
        json!({ "componentId": api, "tag": "v1.0.0", "digest": format!("sha256:{}", "A".repeat(64)) }),
        json!({ "componentId": api, "tag": "latest", "digest": digest("x") }),
        json!({ "componentId": api, "tag": "v1", "digest": digest("x"), "semver": "1.0" }),
        json!({ "componentId": api, "tag": "bad/tag", "digest": digest("x"), "semver": "1.0.0" }),
        json!({ "componentId": api, "tag": "v1.0.0", "digest": digest("x"), "channel": "RC" }),
    ] {
        app.assert_rejected("BAD_USER_INPUT", CREATE, json!({ "input": input })).await;
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    app.assert_rejected(
        "NOT_FOUND",
        CREATE,
        json!({ "input": { "componentId": unknown, "tag": "v1.0.0", "digest": digest("x") } }),
    )
    .await;
    app.assert_rejected(
        "NOT_FOUND",
        "query($id: ID!) { componentVersions(componentId: $id) { id } }",
        json!({ "id": uuid::Uuid::new_v4().to_string() }),
    )
    .await;
    app.assert_rejected(
        "BAD_USER_INPUT",
        "query($id: ID!) { componentVersions(componentId: $id, limit: 0) { id } }",
        json!({ "id": api }),
    )
    .await;
}

#[tokio::test]
async fn components_override_the_channel_rule() {
    let app = TestApp::spawn().await;
    let api = app
        .ok(
            "mutation { createComponent(input: { name: \"api\", imageRepository: \"acme/api\", channelOverrides: [{ prerelease: \"preview\", channel: \"beta\" }] }) { id channelOverrides { prerelease channel } } }",
            json!({}),
        )
        .await["createComponent"]
        .clone();
    assert_eq!(api["channelOverrides"], json!([{ "prerelease": "preview", "channel": "beta" }]));
    let id = api["id"].as_str().unwrap();
    assert_eq!(app.add_version(id, "2.0.0-preview.1", &digest("p")).await["channel"], "beta");
    assert_eq!(app.add_version(id, "2.0.0-rc.1", &digest("r")).await["channel"], "rc");
    app.assert_rejected(
        "BAD_USER_INPUT",
        "mutation($id: ID!) { updateComponent(id: $id, input: { channelOverrides: [{ prerelease: \"Pre\", channel: \"beta\" }] }) { id } }",
        json!({ "id": id }),
    )
    .await;
}
