//! CI integrations: created, listed and rotated over GraphQL, with credentials sealed.

use gantry_domain::access::Role;
use serde_json::{Value, json};

use crate::support::{TestApp, token};

const CREATE: &str = "mutation($input: CreateCiIntegrationInput!) { createCiIntegration(input: $input) { id name provider apiUrl project authKind githubAppId installationId username credentialsRotatedAt webhookPath webhookSecret } }";
const ROTATE: &str = "mutation($id: ID!, $c: CiCredentialsInput!) { rotateCiIntegrationCredentials(id: $id, credentials: $c) { authKind username credentialsRotatedAt } }";
const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAgantryapp\n-----END RSA PRIVATE KEY-----";

async fn create(app: &TestApp, input: Value) -> Value {
    app.ok(CREATE, json!({ "input": input })).await["createCiIntegration"].clone()
}

/// The table as text, to look for secrets in.
async fn stored(app: &TestApp) -> String {
    serde_json::to_string(&app.snapshot().await).unwrap()
}

#[tokio::test]
async fn integrations_are_created_listed_and_rotated_with_sealed_credentials() {
    let app = TestApp::spawn().await;
    let github =
        create(&app, json!({ "name": "github", "provider": "GITHUB", "credentials": { "token": "ghp_firsttoken" } }))
            .await;
    assert_eq!(github["apiUrl"], "https://api.github.com", "GitHub's public API unless told otherwise");
    assert_eq!(github["authKind"], "TOKEN");
    let ghe = create(
        &app,
        json!({ "name": "ghe", "provider": "GITHUB", "apiUrl": "https://github.example.com/api/v3/",
                "credentials": { "appId": 123456, "installationId": 987654321, "privateKey": PEM } }),
    )
    .await;
    assert_eq!(
        (ghe["apiUrl"].as_str(), ghe["authKind"].as_str()),
        (Some("https://github.example.com/api/v3"), Some("GITHUB_APP"))
    );
    assert_eq!((ghe["githubAppId"].as_u64(), ghe["installationId"].as_u64()), (Some(123456), Some(987654321)));
    let gitlab = create(
        &app,
        json!({ "name": "gitlab", "provider": "GITLAB", "apiUrl": "https://gitlab.example.com", "project": "acme/shop",
                "credentials": { "token": "glpat-secret" } }),
    )
    .await;
    assert_eq!(gitlab["project"], "acme/shop");
    let jenkins = create(
        &app,
        json!({ "name": "jenkins", "provider": "JENKINS", "apiUrl": "https://ci.example.com/jenkins",
                "credentials": { "username": "gantry", "apiToken": "11jenkinstoken" } }),
    )
    .await;
    assert_eq!((jenkins["authKind"].as_str(), jenkins["username"].as_str()), (Some("BASIC"), Some("gantry")));
    // GitHub and GitLab webhooks have a path and secret of their own; Jenkins reports builds with a token.
    let id = github["id"].as_str().unwrap();
    assert_eq!(github["webhookPath"].as_str(), Some(format!("/webhooks/ci/github/{id}").as_str()));
    let hook_secret = github["webhookSecret"].as_str().unwrap().to_owned();
    assert!(hook_secret.starts_with("gantry_whsec_") && gitlab["webhookSecret"].is_string(), "{github:#}");
    assert_eq!((jenkins["webhookPath"].clone(), jenkins["webhookSecret"].clone()), (Value::Null, Value::Null));

    let listed = app.ok("{ ciIntegrations { name provider } }", json!({})).await["ciIntegrations"].clone();
    let names: Vec<&str> = listed.as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ghe", "github", "gitlab", "jenkins"], "by name");
    let table = stored(&app).await;
    for secret in ["ghp_firsttoken", "glpat-secret", "11jenkinstoken", "gantryapp", hook_secret.as_str()] {
        assert!(!table.contains(secret), "{secret} is stored sealed");
    }

    // Rotation replaces the credential, and may change its kind.
    let rotated = app
        .ok(ROTATE, json!({ "id": github["id"], "c": { "appId": 1, "installationId": 2, "privateKey": PEM } }))
        .await["rotateCiIntegrationCredentials"]
        .clone();
    assert_eq!(rotated["authKind"], "GITHUB_APP");
    assert!(rotated["credentialsRotatedAt"].as_str() > github["credentialsRotatedAt"].as_str());
    let one = app
        .ok("query($id: ID!) { ciIntegration(id: $id) { authKind githubAppId } }", json!({ "id": github["id"] }))
        .await;
    assert_eq!(one["ciIntegration"], json!({ "authKind": "GITHUB_APP", "githubAppId": 1 }));
}

#[tokio::test]
async fn bad_input_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    create(&app, json!({ "name": "taken", "provider": "GITHUB", "credentials": { "token": "t" } })).await;
    let cases = [
        (json!({ "name": "taken", "provider": "GITHUB", "credentials": { "token": "t" } }), "CONFLICT", "named taken"),
        (
            json!({ "name": "j", "provider": "JENKINS", "credentials": { "username": "u", "apiToken": "t" } }),
            "BAD_USER_INPUT",
            "needs apiUrl",
        ),
        (
            json!({ "name": "g", "provider": "GITLAB", "credentials": { "token": "t" } }),
            "BAD_USER_INPUT",
            "needs project",
        ),
        (
            json!({ "name": "g", "provider": "GITHUB", "project": "x", "credentials": { "token": "t" } }),
            "BAD_USER_INPUT",
            "only a GITLAB",
        ),
        (
            json!({ "name": "g", "provider": "GITLAB", "project": "p", "credentials": { "username": "u", "apiToken": "t" } }),
            "BAD_USER_INPUT",
            "takes a token",
        ),
        (
            json!({ "name": "g", "provider": "GITHUB", "credentials": { "token": "t", "username": "u" } }),
            "BAD_USER_INPUT",
            "credentials take",
        ),
        (
            json!({ "name": "g", "provider": "GITHUB", "credentials": { "token": "has space" } }),
            "BAD_USER_INPUT",
            "no spaces",
        ),
        (
            json!({ "name": "g", "provider": "GITHUB", "credentials": { "appId": 1, "installationId": 2, "privateKey": "nope" } }),
            "BAD_USER_INPUT",
            "PEM",
        ),
        (
            json!({ "name": "g", "provider": "GITHUB", "apiUrl": "https://x/a?b=1", "credentials": { "token": "t" } }),
            "BAD_USER_INPUT",
            "apiUrl",
        ),
        (
            json!({ "name": "g", "provider": "GITHUB", "apiUrl": "http://127.0.0.1:1@10.0.0.1/api", "credentials": { "token": "t" } }),
            "BAD_USER_INPUT",
            "user info",
        ),
        (json!({ "name": "bad name!", "provider": "GITHUB", "credentials": { "token": "t" } }), "BAD_USER_INPUT", ""),
    ];
    for (input, code, says) in cases {
        let message = app.assert_rejected(code, CREATE, json!({ "input": input })).await;
        assert!(message.contains(says), "{message:?} should say {says:?}");
    }
    let missing = json!({ "id": uuid::Uuid::new_v4().to_string(), "c": { "token": "t" } });
    app.assert_rejected("NOT_FOUND", ROTATE, missing).await;
}

#[tokio::test]
async fn only_admins_manage_integrations_and_nobody_reads_credentials() {
    let app = TestApp::spawn().await;
    let created =
        create(&app, json!({ "name": "github", "provider": "GITHUB", "credentials": { "token": "ghp_x" } })).await;
    let viewer = token("viewer", &[Role::Viewer]);
    let (_, listed) = app.gql_as(Some(&viewer), "{ ciIntegrations { name authKind } }", json!({})).await;
    assert_eq!(listed["data"]["ciIntegrations"], json!([{ "name": "github", "authKind": "TOKEN" }]));
    let creator = token("ci", &[Role::ReleaseCreator]);
    let before = app.snapshot().await;
    for (who, query, vars) in [
        (&viewer, CREATE, json!({ "input": { "name": "x", "provider": "GITHUB", "credentials": { "token": "t" } } })),
        (&creator, ROTATE, json!({ "id": created["id"], "c": { "token": "stolen" } })),
    ] {
        let (_, body) = app.gql_as(Some(who), query, vars).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
    }
    assert_eq!(app.snapshot().await, before);
    // The schema has no field that could return a credential.
    let (_, body) = app.gql_as(Some(&viewer), "{ ciIntegrations { token } }", json!({})).await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("token"), "{body}");
}
