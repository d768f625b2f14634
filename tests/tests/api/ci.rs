use gantry_domain::access::Role;
use gantry_gateway::verify::sign_hmac_sha256;
use serde_json::{Value, json};

use crate::support::{TestApp, digest, sample, token};

/// POSTs JSON to a REST path with a bearer token (or none).
async fn rest(app: &TestApp, path: &str, bearer: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = app.http.post(format!("{}{path}", app.url)).json(body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn assert_rest_refused(app: &TestApp, path: &str, bearer: Option<&str>, body: &Value, status: u16, code: &str) {
    let before = app.snapshot().await;
    let (got, answer) = rest(app, path, bearer, body).await;
    assert_eq!((got, answer["error"]["code"].as_str()), (status, Some(code)), "{answer}");
    assert_eq!(app.snapshot().await, before, "a refused request writes nothing");
}

#[tokio::test]
async fn ci_creates_releases_over_rest() {
    let app = TestApp::spawn().await;
    let component = app.create_component("myapp").await;
    app.add_version(&component, "v1.2.0", &digest("myapp-1.2.0")).await;
    let ci = token("ci-pipeline", &[Role::ReleaseCreator]);
    // The body from the CI guide, unchanged but for real ids and digests.
    let body = json!({
        "name": "myapp-v1.2.0",
        "components": [{ "componentId": component, "digest": digest("myapp-1.2.0") }],
        "sourceRef": { "type": "git", "repository": "https://github.com/myorg/myapp", "commit": "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567", "tag": "v1.2.0", "branch": "main" },
        "metadata": { "buildId": "12345", "buildUrl": "https://ci.example.com/builds/12345", "triggeredBy": "ci-pipeline" }
    });
    let (status, release) = rest(&app, "/api/v1/releases", Some(&ci), &body).await;
    assert_eq!(status, 201, "{release}");
    assert_eq!(release["name"], "myapp-v1.2.0");
    assert_eq!(release["status"], "draft");
    assert_eq!(release["createdBy"], "ci-pipeline");
    assert_eq!(release["sourceRef"]["commitSha"], "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567");
    assert_eq!(release["components"][0]["version"], "1.2.0");
    assert_eq!(release["metadata"]["buildId"], "12345");

    let path = "/api/v1/releases";
    let mut other = body.clone();
    other["name"] = json!("other");
    assert_rest_refused(&app, path, None, &other, 401, "UNAUTHENTICATED").await;
    assert_rest_refused(&app, path, Some(&token("viv", &[Role::Viewer])), &other, 403, "FORBIDDEN").await;
    assert_rest_refused(&app, path, Some(&ci), &body, 409, "CONFLICT").await;
    assert_rest_refused(&app, path, Some(&ci), &json!({ "name": "x" }), 400, "BAD_USER_INPUT").await;
    let mut unknown = other.clone();
    unknown["components"][0]["componentId"] = json!(uuid::Uuid::new_v4().to_string());
    assert_rest_refused(&app, path, Some(&ci), &unknown, 404, "NOT_FOUND").await;
    let mut unresolvable = other.clone();
    unresolvable["components"][0]["digest"] = json!(digest("nothing"));
    assert_rest_refused(&app, path, Some(&ci), &unresolvable, 422, "UNRESOLVABLE_VERSION").await;
    let mut svn = other.clone();
    svn["sourceRef"]["type"] = json!("svn");
    assert_rest_refused(&app, path, Some(&ci), &svn, 400, "BAD_USER_INPUT").await;
}

#[tokio::test]
async fn builds_become_version_maps_and_show_on_releases() {
    let app = TestApp::spawn().await;
    let component = app
        .ok(
            "mutation { createComponent(input: { name: \"myapp\", imageRepository: \"registry.example.com/myorg/myapp\" }) { id } }",
            json!({}),
        )
        .await["createComponent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ci = token("ci", &[Role::ReleaseCreator]);
    let build = json!({
        "integrationId": "integration-uuid", "buildId": "12345", "status": "success", "commit": "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
        "artifacts": [{ "name": "myapp", "digest": digest("built"), "repository": "registry.example.com/myorg/myapp", "tag": "v1.2.0" }],
        "testResults": { "passed": 150, "failed": 0, "skipped": 5 }
    });
    let (status, answer) = rest(&app, "/api/v1/ci-events/build-complete", Some(&ci), &build).await;
    assert_eq!((status, answer["versionMaps"].as_u64()), (201, Some(1)), "{answer}");
    let versions = app
        .ok("query($id: ID!) { componentVersions(componentId: $id) { tag digest source } }", json!({ "id": component }))
        .await;
    assert_eq!(versions["componentVersions"], json!([{ "tag": "v1.2.0", "digest": digest("built"), "source": "CI" }]));

    let jenkins = json!({ "buildId": "77", "status": "success", "commit": "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567" });
    let (status, _) = rest(&app, "/api/v1/webhooks/ci-status", Some(&ci), &jenkins).await;
    assert_eq!(status, 201);

    let release = app
        .ok(
            "mutation($c: ID!) { createRelease(input: { name: \"r\", components: [{ componentId: $c, version: \"1.2.0\" }], sourceRef: { commitSha: \"0a1b2c3d4e5f60718293a4b5c6d7e8f901234567\" } }) { builds { source buildId status testsPassed } } }",
            json!({ "c": component }),
        )
        .await;
    let mut builds = release["createRelease"]["builds"].as_array().unwrap().clone();
    builds.sort_by_key(|b| b["source"].as_str().unwrap().to_owned());
    assert_eq!(
        builds,
        [
            json!({ "source": "ci", "buildId": "12345", "status": "SUCCESS", "testsPassed": 150 }),
            json!({ "source": "jenkins", "buildId": "77", "status": "SUCCESS", "testsPassed": null })
        ]
    );

    let path = "/api/v1/ci-events/build-complete";
    assert_rest_refused(&app, path, None, &build, 401, "UNAUTHENTICATED").await;
    assert_rest_refused(&app, path, Some(&token("viv", &[Role::Viewer])), &build, 403, "FORBIDDEN").await;
    let mut bad = build.clone();
    bad["commit"] = json!("not a sha");
    assert_rest_refused(&app, path, Some(&ci), &bad, 400, "BAD_USER_INPUT").await;
    let mut bad = build.clone();
    bad["artifacts"][0]["digest"] = json!("sha256:short");
    assert_rest_refused(&app, path, Some(&ci), &bad, 400, "BAD_USER_INPUT").await;
    assert_rest_refused(
        &app,
        "/api/v1/webhooks/ci-status",
        Some(&ci),
        &json!({ "buildId": "1", "status": "great", "commit": "abc1234" }),
        400,
        "BAD_USER_INPUT",
    )
    .await;
}

#[tokio::test]
async fn ci_webhooks_from_github_and_gitlab() {
    let app = TestApp::spawn().await;
    let (_, github_secret) = app.create_integration("github", "GITHUB", "https://ghcr.io").await;
    let (_, gitlab_secret) = app.create_integration("gitlab", "GITLAB", "https://registry.gitlab.example.com").await;

    let (body, _) = sample("github/workflow_run.completed.json");
    let signature = sign_hmac_sha256(github_secret.as_bytes(), &body);
    let headers = [
        ("x-github-event", "workflow_run"),
        ("x-github-delivery", "wf-1"),
        ("x-hub-signature-256", signature.as_str()),
    ];
    let before = app.snapshot().await;
    let forged = sign_hmac_sha256(b"guess", &body);
    let (status, _) = app
        .post_webhook("/webhooks/ci/github", &[headers[0], headers[1], ("x-hub-signature-256", &forged)], body.clone())
        .await;
    assert_eq!(status, 401);
    assert_eq!(app.snapshot().await, before);
    let (status, answer) = app.post_webhook("/webhooks/ci/github", &headers, body.clone()).await;
    assert_eq!((status, answer), (202, json!({ "recorded": true })));
    let (status, answer) = app.post_webhook("/webhooks/ci/github", &headers, body).await;
    assert_eq!((status, answer), (200, json!({ "recorded": false })), "a replay has no second effect");

    let pipeline = br#"{"object_kind":"pipeline","object_attributes":{"id":31,"sha":"3484a3fb816e0859fd6e1cea078d76385ff50625","status":"failed","ref":"main"}}"#.to_vec();
    let gitlab =
        [("x-gitlab-event", "Pipeline Hook"), ("x-gitlab-token", gitlab_secret.as_str()), ("idempotency-key", "gl-1")];
    let before = app.snapshot().await;
    let (status, _) = app
        .post_webhook("/webhooks/ci/gitlab", &[gitlab[0], ("x-gitlab-token", "wrong"), gitlab[2]], pipeline.clone())
        .await;
    assert_eq!(status, 401);
    let (status, _) = app
        .post_webhook(
            "/webhooks/ci/gitlab",
            &[gitlab[0], ("x-gitlab-token", &github_secret), gitlab[2]],
            pipeline.clone(),
        )
        .await;
    assert_eq!(status, 401, "a GitHub secret opens no GitLab door");
    assert_eq!(app.snapshot().await, before);
    // The integration names the path it is heard on.
    let listed = app.ok("{ registryIntegrations { type webhookPath } }", json!({})).await;
    let path = listed["registryIntegrations"].as_array().unwrap().iter().find(|i| i["type"] == "GITLAB").unwrap()
        ["webhookPath"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(path, "/webhooks/ci/gitlab");
    let (status, _) = app.post_webhook(&path, &gitlab, pipeline.clone()).await;
    assert_eq!(status, 202);
    let (status, _) = app.post_webhook("/webhooks/ci/gitlab", &gitlab, pipeline).await;
    assert_eq!(status, 200);

    // Both builds are on the commit.
    let component = app.create_component("web").await;
    app.add_version(&component, "1.0.0", &digest("web")).await;
    let release = app
        .ok(
            "mutation($c: ID!) { createRelease(input: { name: \"r\", components: [{ componentId: $c, version: \"1.0.0\" }], sourceRef: { commitSha: \"3484a3fb816e0859fd6e1cea078d76385ff50625\" } }) { builds { source status } } }",
            json!({ "c": component }),
        )
        .await;
    let mut builds: Vec<_> = release["createRelease"]["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["source"].as_str().unwrap().to_owned(), b["status"].as_str().unwrap().to_owned()))
        .collect();
    builds.sort();
    assert_eq!(builds, [("github".to_owned(), "SUCCESS".to_owned()), ("gitlab".to_owned(), "FAILURE".to_owned())]);
}

#[tokio::test]
async fn service_accounts_over_rest() {
    let app = TestApp::spawn().await;
    let body = json!({
        "name": "ci-pipeline", "description": "Service account for CI/CD integration", "roles": ["release-creator"],
        "permissions": [{ "resource": "release", "action": "create" }, { "resource": "component", "action": "read" }, { "resource": "version-map", "action": "read" }],
        "expiresIn": "365d"
    });
    let (status, answer) = rest(&app, "/api/v1/service-accounts", Some(&app.token), &body).await;
    assert_eq!((status, answer["success"].as_bool()), (201, Some(true)), "{answer}");
    let token = answer["data"]["token"].as_str().unwrap();
    assert!(answer["data"]["expiresAt"].is_string());
    let (status, _) = app.gql_as(Some(token), "{ components { id } }", json!({})).await;
    assert_eq!(status, 200, "the new token works");
    let path = "/api/v1/service-accounts";
    assert_rest_refused(
        &app,
        path,
        Some(&token_for_viewer()),
        &json!({ "name": "x", "roles": ["viewer"] }),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_rest_refused(
        &app,
        path,
        Some(&app.token),
        &json!({ "name": "x", "roles": ["root"] }),
        400,
        "BAD_USER_INPUT",
    )
    .await;
    assert_rest_refused(&app, path, Some(&app.token), &body, 409, "CONFLICT").await;
    assert_rest_refused(&app, path, None, &body, 401, "UNAUTHENTICATED").await;
}

fn token_for_viewer() -> String {
    token("viv", &[Role::Viewer])
}
