use gantry_domain::events::{Delivery, ImageAction, ImageEvent, QueuedImageEvent, RegistrySource};
use gantry_domain::integrations::IntegrationId;
use gantry_gateway::verify::sign_hmac_sha256;
use serde_json::{Value, json};

use crate::support::{TestApp, sample};

const DISTRIBUTION: &str = "/webhooks/registry/distribution";

#[tokio::test]
async fn a_distribution_push_is_kept_once_and_queued() {
    let app = TestApp::spawn().await;
    let (integration, secret) = app.create_integration("local", "DISTRIBUTION", "http://127.0.0.1:15000").await;
    let (body, _) = sample("registry/distribution-push-tagged.with-headers.json");
    let auth = format!("Bearer {secret}");

    let (status, answer) = app.post_webhook(DISTRIBUTION, &[("authorization", &auth)], body.clone()).await;
    assert_eq!((status, answer), (202, json!({ "accepted": 1, "duplicates": 0 })));

    let queued = app.drain_events().await;
    assert_eq!(queued.len(), 1);
    let message: QueuedImageEvent = serde_json::from_value(queued[0].clone()).unwrap();
    assert_eq!(message.integration_id, IntegrationId::parse(&integration).unwrap());
    assert_eq!(message.event.action, ImageAction::Pushed);
    assert_eq!(message.event.image_repository(), "127.0.0.1:15000/demo/web");
    assert_eq!(message.event.tag.as_deref(), Some("1.0"));
    assert_eq!(message.event.delivery_id, "cc8c504c-f499-4e63-ab6e-59ca9b81b9a5");

    // The raw body is kept, byte for byte.
    let key = Delivery::key_for(std::slice::from_ref(&message));
    assert_eq!(app.repo.delivery_body(&key).await.unwrap().as_deref(), Some(&body[..]));

    // A replay (the registry retries until it hears back) is told so and writes nothing; its
    // event is queued again, the same, for ingest to find already applied.
    let before = app.snapshot().await;
    let (status, answer) = app.post_webhook(DISTRIBUTION, &[("authorization", &auth)], body).await;
    assert_eq!((status, answer), (200, json!({ "accepted": 0, "duplicates": 1 })));
    assert_eq!(app.drain_events().await, queued);
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn pulls_are_acknowledged_and_ignored() {
    let app = TestApp::spawn().await;
    let (_, secret) = app.create_integration("local", "DISTRIBUTION", "http://127.0.0.1:15000").await;
    let before = app.snapshot().await;
    let (body, _) = sample("registry/distribution-pull.json");
    let (status, answer) =
        app.post_webhook(DISTRIBUTION, &[("authorization", &format!("Bearer {secret}"))], body).await;
    assert_eq!((status, answer), (200, json!({ "accepted": 0, "duplicates": 0 })));
    assert_eq!(app.snapshot().await, before);
    assert!(app.drain_events().await.is_empty());
}

/// Every refusal: the status, and nothing written or queued.
async fn assert_refused(app: &TestApp, path: &str, headers: &[(&str, &str)], body: Vec<u8>, status: u16, code: &str) {
    let before = app.snapshot().await;
    let (got, answer) = app.post_webhook(path, headers, body).await;
    assert_eq!(got, status, "{answer}");
    if status != 413 {
        assert_eq!(answer["error"]["code"], code, "{answer}");
    }
    assert_eq!(app.snapshot().await, before, "a refused webhook writes nothing");
    assert!(app.drain_events().await.is_empty(), "a refused webhook queues nothing");
}

/// A distribution envelope of `count` pushes of `repository`, tags 1.0.0, 1.0.1, ...
fn envelope(repository: &str, count: usize) -> Vec<u8> {
    let events: Vec<Value> = (0..count)
        .map(|i| {
            json!({ "id": format!("{repository}-{i}"), "action": "push",
            "target": { "mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": repository,
                        "tag": format!("1.0.{i}"), "digest": crate::support::digest(&format!("{repository}{i}")) },
            "request": { "host": "127.0.0.1:15000" } })
        })
        .collect();
    serde_json::to_vec(&json!({ "events": events })).unwrap()
}

#[tokio::test]
async fn a_body_is_stored_once_whatever_number_of_events_it_carries() {
    let app = TestApp::spawn().await;
    let (_, secret) = app.create_integration("local", "DISTRIBUTION", "http://127.0.0.1:15000").await;
    let before = app.snapshot().await.len();
    let auth = format!("Bearer {secret}");
    let (status, answer) =
        app.post_webhook(DISTRIBUTION, &[("authorization", &auth)], envelope("demo/many", 400)).await;
    assert_eq!((status, answer), (202, json!({ "accepted": 400, "duplicates": 0 })));
    let items = app.snapshot().await;
    let bodies = items.iter().filter(|i| i.contains_key("rawBody")).count();
    assert_eq!((items.len() - before, bodies), (1, 1), "one item, holding the body once");
    assert_eq!(app.drain_events().await.len(), 400, "every event is queued");
}

#[tokio::test]
async fn concurrent_replays_get_one_answer() {
    let app = TestApp::spawn().await;
    let (_, secret) = app.create_integration("local", "DISTRIBUTION", "http://127.0.0.1:15000").await;
    let auth = format!("Bearer {secret}");
    let body = envelope("demo/race", 3);
    let headers = [("authorization", auth.as_str())];
    let sends = (0..8).map(|_| app.post_webhook(DISTRIBUTION, &headers, body.clone()));
    let mut answers: Vec<(u16, Value)> = futures::future::join_all(sends).await;
    answers.sort_by_key(|(status, _)| *status);
    let first = answers.pop().unwrap();
    assert_eq!(first, (202, json!({ "accepted": 3, "duplicates": 0 })), "exactly one first delivery");
    for answer in answers {
        assert_eq!(answer, (200, json!({ "accepted": 0, "duplicates": 3 })), "every replay is told so");
    }
    // The queue is a standard one: a replay may queue its events again, and ingest applies
    // an event once however often it comes (registry::events_apply_in_any_order_...).
    let queued = app.drain_events().await;
    let mut ids: Vec<&str> = queued.iter().map(|m| m["event"]["deliveryId"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids, ["demo/race-0", "demo/race-1", "demo/race-2"], "every event is queued");
}

#[tokio::test]
async fn bad_requests_write_and_queue_nothing() {
    let app = TestApp::spawn().await;
    let (_, secret) = app.create_integration("local", "DISTRIBUTION", "http://127.0.0.1:15000").await;
    let (body, _) = sample("registry/distribution-push-tagged.with-headers.json");
    let auth = format!("Bearer {secret}");
    assert_refused(&app, DISTRIBUTION, &[], body.clone(), 401, "UNAUTHENTICATED").await;
    assert_refused(&app, DISTRIBUTION, &[("authorization", "Bearer wrong")], body.clone(), 401, "UNAUTHENTICATED")
        .await;
    assert_refused(&app, DISTRIBUTION, &[("authorization", &auth)], b"{not json".to_vec(), 400, "BAD_USER_INPUT").await;
    assert_refused(&app, DISTRIBUTION, &[("authorization", &auth)], b"{\"events\": 3}".to_vec(), 400, "BAD_USER_INPUT")
        .await;
    let huge = vec![b' '; 1024 * 1024 + 1];
    assert_refused(&app, DISTRIBUTION, &[("authorization", &auth)], huge, 413, "").await;
    assert_refused(&app, "/webhooks/registry/artifactory", &[("authorization", &auth)], body.clone(), 404, "NOT_FOUND")
        .await;
    // A secret of one kind opens no other.
    assert_refused(&app, "/webhooks/registry/harbor", &[("authorization", &auth)], body, 401, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn github_deliveries_are_signed() {
    let app = TestApp::spawn().await;
    let (_, secret) = app.create_integration("ghcr", "GITHUB", "https://ghcr.io").await;
    let (body, _) = sample("github/registry_package.published.docker.json");
    let signature = sign_hmac_sha256(secret.as_bytes(), &body);
    let path = "/webhooks/registry/github";
    let headers = [("x-github-event", "registry_package"), ("x-github-delivery", "d-1")];

    let wrong = sign_hmac_sha256(b"not the secret", &body);
    assert_refused(
        &app,
        path,
        &[headers[0], headers[1], ("x-hub-signature-256", &wrong)],
        body.clone(),
        401,
        "UNAUTHENTICATED",
    )
    .await;
    assert_refused(&app, path, &headers, body.clone(), 401, "UNAUTHENTICATED").await;
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert_refused(
        &app,
        path,
        &[headers[0], headers[1], ("x-hub-signature-256", &signature)],
        tampered,
        401,
        "UNAUTHENTICATED",
    )
    .await;

    let signed = [headers[0], headers[1], ("x-hub-signature-256", signature.as_str())];
    let (status, _) = app.post_webhook(path, &signed, body.clone()).await;
    assert_eq!(status, 202);
    let queued = app.drain_events().await;
    assert_eq!(queued[0]["event"]["repository"], "codertocat/hello-world-npm");
    // The same delivery id again is a replay.
    let (status, answer) = app.post_webhook(path, &signed, body).await;
    assert_eq!((status, answer["duplicates"].as_u64()), (200, Some(1)));
}

#[tokio::test]
async fn path_secrets_and_rotation() {
    let app = TestApp::spawn().await;
    let (id, secret) = app.create_integration("hub", "DOCKERHUB", "https://registry-1.docker.io").await;
    let body = br#"{"push_data":{"pushed_at":1,"tag":"1.2.3"},"repository":{"repo_name":"acme/web"}}"#.to_vec();
    assert_refused(&app, "/webhooks/registry/dockerhub/not-it", &[], body.clone(), 401, "UNAUTHENTICATED").await;
    assert_refused(&app, "/webhooks/registry/dockerhub", &[], body.clone(), 401, "UNAUTHENTICATED").await;
    let (status, _) = app.post_webhook(&format!("/webhooks/registry/dockerhub/{secret}"), &[], body.clone()).await;
    assert_eq!(status, 202);
    let events: Vec<QueuedImageEvent> =
        app.drain_events().await.into_iter().map(|v| serde_json::from_value(v).unwrap()).collect();
    assert_eq!(
        events[0].event,
        ImageEvent {
            source: RegistrySource::Dockerhub,
            delivery_id: "acme/web:1.2.3@1".into(),
            action: ImageAction::Pushed,
            registry: Some("docker.io".into()),
            repository: "acme/web".into(),
            tag: Some("1.2.3".into()),
            digest: None,
            media_type: None,
        }
    );

    let rotated = app
        .ok("mutation($id: ID!) { rotateRegistryIntegrationSecret(id: $id) { webhookSecret } }", json!({ "id": id }))
        .await["rotateRegistryIntegrationSecret"]["webhookSecret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, secret);
    let next = br#"{"push_data":{"pushed_at":2,"tag":"1.2.4"},"repository":{"repo_name":"acme/web"}}"#.to_vec();
    assert_refused(&app, &format!("/webhooks/registry/dockerhub/{secret}"), &[], next.clone(), 401, "UNAUTHENTICATED")
        .await;
    let (status, _) = app.post_webhook(&format!("/webhooks/registry/dockerhub/{rotated}"), &[], next).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn integrations_keep_secrets_sealed() {
    let app = TestApp::spawn().await;
    let q = "mutation($input: CreateRegistryIntegrationInput!) { createRegistryIntegration(input: $input) {
        integration { id name type url hasCredentials webhookPath } webhookSecret } }";
    let created = app
        .ok(
            q,
            json!({ "input": { "name": "harbor", "type": "HARBOR", "url": "https://harbor.example.com/",
                                  "credentials": { "username": "robot", "password": "hunter2-very-secret" } } }),
        )
        .await["createRegistryIntegration"]
        .clone();
    assert_eq!(created["integration"]["url"], "https://harbor.example.com");
    assert_eq!(created["integration"]["hasCredentials"], true);
    assert_eq!(created["integration"]["webhookPath"], "/webhooks/registry/harbor");
    let secret = created["webhookSecret"].as_str().unwrap();

    let stored = serde_json::to_string(&app.snapshot().await).unwrap();
    assert!(!stored.contains("hunter2-very-secret"), "credentials are sealed at rest");
    assert!(!stored.contains(secret), "the webhook secret is sealed at rest");

    let listed = app.ok("{ registryIntegrations { name type webhookPath } }", json!({})).await;
    assert_eq!(
        listed["registryIntegrations"],
        json!([{ "name": "harbor", "type": "HARBOR", "webhookPath": "/webhooks/registry/harbor" }])
    );

    for (input, code) in [
        (json!({ "name": "harbor", "type": "HARBOR", "url": "https://h2.example.com" }), "CONFLICT"),
        (json!({ "name": "x", "type": "HARBOR", "url": "harbor.example.com" }), "BAD_USER_INPUT"),
        (json!({ "name": "x", "type": "NEXUS", "url": "https://n.example.com" }), "BAD_USER_INPUT"),
        (
            json!({ "name": "x", "type": "QUAY", "url": "https://quay.io", "credentials": { "username": "u" } }),
            "BAD_USER_INPUT",
        ),
        (json!({ "name": "", "type": "QUAY", "url": "https://quay.io" }), "BAD_USER_INPUT"),
    ] {
        app.assert_rejected(code, q, json!({ "input": input })).await;
    }
    app.assert_rejected(
        "NOT_FOUND",
        "mutation($id: ID!) { rotateRegistryIntegrationSecret(id: $id) { webhookSecret } }",
        json!({ "id": uuid::Uuid::new_v4().to_string() }),
    )
    .await;
    let _: Value = listed;
}
