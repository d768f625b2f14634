use gantry_domain::access::Role;
use serde_json::{Value, json};

use crate::support::{TestApp, token};

const ADD: &str = "mutation($env: ID!, $input: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $env, input: $input) {
    id name type docker { endpoint containerName ports { host container } networkMode } ecs { cluster containers { name componentId } }
    nomad { address namespace jobId tokenRef } } }";

fn docker(component: &str, endpoint: &str) -> Value {
    json!({ "name": "web-host-1", "type": "DOCKER", "docker": {
        "endpoint": endpoint, "containerName": "web", "componentId": component,
        "ports": [{ "host": 18080, "container": 8080 }], "env": [{ "key": "MODE", "value": "prod" }],
        "healthCheck": { "command": ["wget", "-q", "-O-", "http://127.0.0.1:8080/"] } } })
}

#[tokio::test]
async fn environments_carry_their_promotion_policy() {
    let app = TestApp::spawn().await;
    let q = "mutation($input: CreateEnvironmentInput!) { createEnvironment(input: $input) {
        id approverRoles allowSelfApproval requireBuildSuccess minSoakMinutes manualOnly autoPromote autoRollback } }";
    let prod = app
        .ok(q, json!({ "input": { "name": "prod", "order": 30, "requiredApprovals": 2, "approverRoles": ["approver"],
                                  "requireBuildSuccess": true, "minSoakMinutes": 60, "manualOnly": true, "autoRollback": true } }))
        .await["createEnvironment"]
        .clone();
    assert_eq!(
        prod,
        json!({ "id": prod["id"], "approverRoles": ["approver"], "allowSelfApproval": false, "requireBuildSuccess": true,
                "minSoakMinutes": 60, "manualOnly": true, "autoPromote": false, "autoRollback": true })
    );
    let staging = app.ok(q, json!({ "input": { "name": "staging", "order": 20 } })).await["createEnvironment"].clone();
    assert_eq!(staging["approverRoles"], json!(["approver", "admin"]), "defaults");

    let update = "mutation($id: ID!, $input: UpdateEnvironmentInput!) { updateEnvironment(id: $id, input: $input) { autoPromote minSoakMinutes } }";
    let updated = app.ok(update, json!({ "id": staging["id"], "input": { "autoPromote": true } })).await;
    assert_eq!(updated["updateEnvironment"], json!({ "autoPromote": true, "minSoakMinutes": 0 }));
    for input in [
        json!({ "manualOnly": true }),
        json!({ "approverRoles": ["root"] }),
        json!({ "approverRoles": [] }),
        json!({ "minSoakMinutes": -5 }),
    ] {
        app.assert_rejected("BAD_USER_INPUT", update, json!({ "id": staging["id"], "input": input })).await;
    }
}

#[tokio::test]
async fn targets_are_checked_when_added() {
    let app = TestApp::spawn().await;
    let env = app.create_environment("dev", 10).await;
    let web = app.create_component("web").await;
    let api = app.create_component("api").await;

    let added = app.ok(ADD, json!({ "env": env, "input": docker(&web, "unix:///run/gantry/docker.sock") })).await["addDeploymentTarget"].clone();
    assert_eq!(added["type"], "DOCKER");
    assert_eq!(added["docker"]["ports"], json!([{ "host": 18080, "container": 8080 }]));
    assert_eq!(added["docker"]["networkMode"], "host");
    let ecs = json!({ "name": "ecs-prod", "type": "ECS", "ecs": { "cluster": "prod", "service": "shop",
        "containers": [{ "name": "web", "componentId": web }, { "name": "api", "componentId": api }] } });
    let added_ecs = app.ok(ADD, json!({ "env": env, "input": ecs })).await["addDeploymentTarget"].clone();
    assert_eq!(added_ecs["ecs"]["containers"].as_array().unwrap().len(), 2);
    let nomad = json!({ "name": "nomad-eu", "type": "NOMAD", "nomad": { "address": "http://127.0.0.1:4646", "jobId": "shop",
        "tasks": [{ "name": "server", "componentId": api }], "tokenRef": "env:NOMAD_TOKEN" } });
    let added_nomad = app.ok(ADD, json!({ "env": env, "input": nomad })).await["addDeploymentTarget"].clone();
    assert_eq!(added_nomad["nomad"]["namespace"], "default");

    let listed =
        app.ok("query($id: ID!) { environment(id: $id) { targets { name type } } }", json!({ "id": env })).await;
    let mut names: Vec<_> = listed["environment"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ecs-prod", "nomad-eu", "web-host-1"]);

    // Refusals write nothing.
    app.assert_rejected("BAD_USER_INPUT", ADD, json!({ "env": env, "input": docker(&web, "http://docker:2375") }))
        .await;
    let mut wrong_kind = docker(&web, "unix:///run/docker.sock");
    wrong_kind["type"] = json!("ECS");
    app.assert_rejected("BAD_USER_INPUT", ADD, json!({ "env": env, "input": wrong_kind })).await;
    let mut bad_nomad = nomad.clone();
    bad_nomad["name"] = json!("other");
    bad_nomad["nomad"]["tokenRef"] = json!("s3cr3t-token");
    app.assert_rejected("BAD_USER_INPUT", ADD, json!({ "env": env, "input": bad_nomad })).await;
    app.assert_rejected("CONFLICT", ADD, json!({ "env": env, "input": docker(&web, "unix:///run/docker.sock") })).await;
    let mut unknown_component = docker(&uuid::Uuid::new_v4().to_string(), "unix:///run/docker.sock");
    unknown_component["name"] = json!("x");
    app.assert_rejected("NOT_FOUND", ADD, json!({ "env": env, "input": unknown_component })).await;
    app.assert_rejected(
        "NOT_FOUND",
        ADD,
        json!({ "env": uuid::Uuid::new_v4().to_string(), "input": docker(&web, "unix:///s") }),
    )
    .await;
    let viewer = token("viv", &[Role::Viewer]);
    let (_, body) = app.gql_as(Some(&viewer), ADD, json!({ "env": env, "input": docker(&web, "unix:///s") })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");

    // An environment with targets stays until they are removed.
    let delete_env = "mutation($id: ID!) { deleteEnvironment(id: $id) { id } }";
    app.assert_rejected("CONFLICT", delete_env, json!({ "id": env })).await;
    let remove = "mutation($id: ID!) { removeDeploymentTarget(id: $id) { name } }";
    for target in [&added, &added_ecs, &added_nomad] {
        app.ok(remove, json!({ "id": target["id"] })).await;
    }
    app.assert_rejected("NOT_FOUND", remove, json!({ "id": added["id"] })).await;
    app.ok(delete_env, json!({ "id": env })).await;
}
