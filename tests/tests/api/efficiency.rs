use serde_json::json;

use crate::support::{TestApp, digest};

const LIST: &str = "{ releases(first: 50) { edges { node { name components { componentName } } } } }";

/// Creates `count` releases over three components.
async fn releases(app: &TestApp, count: usize) -> Vec<String> {
    let mut components = Vec::new();
    for name in ["api", "web", "worker"] {
        let id = app.create_component(name).await;
        app.add_version(&id, "1.0.0", &digest(name)).await;
        components.push(id);
    }
    for i in 0..count {
        let picked: Vec<_> =
            components.iter().take(1 + i % 3).map(|c| json!({ "componentId": c, "version": "1.0.0" })).collect();
        app.create_release(&format!("r{i}"), json!(picked)).await;
    }
    components
}

/// Listing releases with their component names costs one Query plus one BatchGetItem,
/// however many releases there are: names come through the DataLoader.
#[tokio::test]
async fn release_listing_makes_a_bounded_number_of_requests() {
    let mut seen = Vec::new();
    for count in [3, 50] {
        let app = TestApp::spawn().await;
        releases(&app, count).await;
        // Several times over: batching must not hang on how fast resolvers run.
        for _ in 0..5 {
            app.requests.take();
            let data = app.ok(LIST, json!({})).await;
            let edges = data["releases"]["edges"].as_array().unwrap();
            assert_eq!(edges.len(), count);
            assert!(edges.iter().all(|e| e["node"]["components"][0]["componentName"] == "api"));
            let ops = app.requests.take();
            assert_eq!(ops, ["Query", "BatchGetItem"], "{count} releases: {ops:?}");
            seen.push(ops.len());
        }
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "the request count does not grow with the page: {seen:?}");
}

/// A renamed component shows its new name on old releases, through the same batch.
#[tokio::test]
async fn component_names_are_current() {
    let app = TestApp::spawn().await;
    let components = releases(&app, 2).await;
    app.ok(
        "mutation($id: ID!) { updateComponent(id: $id, input: { name: \"api-renamed\" }) { name } }",
        json!({ "id": components[0] }),
    )
    .await;
    let data = app.ok(LIST, json!({})).await;
    assert_eq!(data["releases"]["edges"][0]["node"]["components"][0]["componentName"], "api-renamed");
}

/// One release with its component names: the GetItem, then one BatchGetItem issued by the
/// resolver itself (no loader wait).
#[tokio::test]
async fn a_release_with_component_names_costs_a_get_and_a_batch() {
    let app = TestApp::spawn().await;
    releases(&app, 3).await;
    let id = app.ok("{ releases(first: 1) { edges { node { id } } } }", json!({})).await["releases"]["edges"][0]["node"]
        ["id"]
        .clone();
    app.requests.take();
    let q = "query($id: ID!) { release(id: $id) { components { componentName } } }";
    let data = app.ok(q, json!({ "id": id })).await;
    let names: Vec<_> =
        data["release"]["components"].as_array().unwrap().iter().map(|c| c["componentName"].clone()).collect();
    assert_eq!(names, ["api", "web", "worker"]);
    assert_eq!(app.requests.take(), ["GetItem", "BatchGetItem"]);
}

/// `totalCount` reads at most its cap of rows, whatever the listing holds.
#[tokio::test]
async fn a_count_reads_no_more_than_its_cap() {
    use gantry_domain::ports::{ReleaseFilter, ReleaseRepository};
    let app = TestApp::spawn().await;
    releases(&app, 5).await;
    assert_eq!(app.repo.count_releases(ReleaseFilter::default(), 100).await.unwrap(), 5);
    assert_eq!(app.repo.count_releases(ReleaseFilter::default(), 3).await.unwrap(), 3, "capped");
    let data = app.ok("{ releases(first: 1) { totalCount } }", json!({})).await;
    assert_eq!(data["releases"]["totalCount"], 5);
}

/// Every release's state in every environment, for a whole page: one Query for the page,
/// one for the environments and one BatchGetItem for the records, however long the page.
#[tokio::test]
async fn release_states_in_a_listing_are_batched() {
    const STATES: &str =
        "{ releases(first: 30) { edges { node { name state { environments { environmentName status } } } } } }";
    let mut seen = Vec::new();
    for count in [3, 30] {
        let app = TestApp::spawn().await;
        for (name, order) in [("dev", 10), ("staging", 20), ("prod", 30)] {
            app.create_environment(name, order).await;
        }
        releases(&app, count).await;
        app.requests.take();
        let data = app.ok(STATES, json!({})).await;
        let edges = data["releases"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), count);
        assert!(edges.iter().all(|e| e["node"]["state"]["environments"].as_array().unwrap().len() == 3));
        assert_eq!(edges[0]["node"]["state"]["environments"][2]["status"], "NOT_DEPLOYED");
        let mut ops = app.requests.take();
        ops.sort();
        assert_eq!(ops, ["BatchGetItem", "Query", "Query"], "{count} releases: {ops:?}");
        seen.push(ops.len());
    }
    assert_eq!(seen[0], seen[1], "the request count does not grow with the page");
}

/// A component's versions inside a component listing come with the components: the listing's
/// Query and one BatchGetItem of their recent versions, however many components there are.
#[tokio::test]
async fn component_versions_in_a_listing_cost_one_batch() {
    let mut seen = Vec::new();
    for count in [3, 12] {
        let app = TestApp::spawn().await;
        for i in 0..count {
            let id = app.create_component(&format!("c{i}")).await;
            app.add_version(&id, "1.0.0", &digest(&format!("c{i}"))).await;
            app.add_version(&id, "1.1.0-rc.1", &digest(&format!("c{i}-rc"))).await;
        }
        app.requests.take();
        let data = app
            .ok("{ components { name versions { tag } stable: versions(channel: \"stable\") { tag } } }", json!({}))
            .await;
        let components = data["components"].as_array().unwrap();
        assert_eq!(components.len(), count);
        assert!(components.iter().all(|c| c["versions"] == json!([{ "tag": "1.1.0-rc.1" }, { "tag": "1.0.0" }])));
        assert!(components.iter().all(|c| c["stable"] == json!([{ "tag": "1.0.0" }])));
        let ops = app.requests.take();
        assert_eq!(ops, ["Query", "BatchGetItem"], "{count} components: {ops:?}");
        seen.push(ops.len());
    }
    assert_eq!(seen[0], seen[1]);
}

/// Whatever the limit and channel, a component's `versions` answer as `componentVersions`
/// does: from the recent versions when they hold the answer, by query when not.
#[tokio::test]
async fn component_versions_agree_with_the_full_query() {
    let app = TestApp::spawn().await;
    let id = app.create_component("many").await;
    for minor in 0..26 {
        app.add_version(&id, &format!("1.{minor}.0"), &digest(&format!("s{minor}"))).await;
        if minor % 5 == 0 {
            app.add_version(&id, &format!("1.{minor}.1-rc.1"), &digest(&format!("rc{minor}"))).await;
        }
    }
    let nested = "query($id: ID!, $limit: Int, $channel: String) { component(id: $id) { versions(limit: $limit, channel: $channel) { tag } } }";
    let full = "query($id: ID!, $limit: Int, $channel: String) { componentVersions(componentId: $id, limit: $limit, channel: $channel) { tag } }";
    for (limit, channel) in
        [(1, None), (20, None), (21, None), (40, None), (3, Some("rc")), (10, Some("rc")), (25, Some("stable"))]
    {
        let vars = json!({ "id": id, "limit": limit, "channel": channel });
        app.requests.take();
        let got = app.ok(nested, vars.clone()).await["component"]["versions"].clone();
        let queried = app.requests.take().contains(&"Query".to_owned());
        let want = app.ok(full, vars).await["componentVersions"].clone();
        assert_eq!(got, want, "limit {limit}, channel {channel:?}");
        assert_eq!(got.as_array().unwrap().len(), limit.min(if channel == Some("rc") { 6 } else { 32 }));
        // The 20 highest are at hand: rc versions among them are 1.25.1-rc.1, 1.20.1-rc.1, ...
        let at_hand = channel.is_none() && limit <= 20 || channel == Some("rc") && limit <= 3;
        assert_eq!(queried, !at_hand, "limit {limit}, channel {channel:?}: queried {queried}");
    }
}

/// An accepted webhook costs one GetItem to authenticate (the secret's entry names the
/// integration and its kind), one SendMessageBatch and one conditional PutItem; rotating the
/// secret still takes effect at once, since nothing is cached.
#[tokio::test]
async fn a_webhook_costs_three_requests() {
    let app = TestApp::spawn().await;
    let (integration, secret) = app.create_integration("hub", "DISTRIBUTION", "http://127.0.0.1:15000").await;
    let (body, _) = crate::support::sample("registry/distribution-push-tagged.with-headers.json");
    app.requests.take();
    app.sqs_requests.take();
    let auth = format!("Bearer {secret}");
    let (status, _) =
        app.post_webhook("/webhooks/registry/distribution", &[("authorization", &auth)], body.clone()).await;
    assert_eq!(status, 202);
    assert_eq!(app.requests.take(), ["GetItem", "PutItem"]);
    assert_eq!(app.sqs_requests.take(), ["SendMessageBatch"]);
    assert_eq!(app.drain_events().await.len(), 1);

    let rotate = "mutation($id: ID!) { rotateRegistryIntegrationSecret(id: $id) { webhookSecret } }";
    let rotated = app.ok(rotate, json!({ "id": integration })).await;
    assert!(rotated["rotateRegistryIntegrationSecret"]["webhookSecret"].is_string(), "{rotated}");
    let (status, _) = app.post_webhook("/webhooks/registry/distribution", &[("authorization", &auth)], body).await;
    assert_eq!(status, 401, "the old secret stops working at once");
}

/// Ingesting an event for an image no component releases costs one Query: the integration
/// is read only when the registry must be asked.
#[tokio::test]
async fn an_event_for_an_unreleased_image_costs_one_query() {
    let app = TestApp::spawn().await;
    let (_, secret) = app.create_integration("hub", "DISTRIBUTION", "http://127.0.0.1:15000").await;
    let (body, _) = crate::support::sample("registry/distribution-push-tagged.with-headers.json");
    let auth = format!("Bearer {secret}");
    let (status, _) = app.post_webhook("/webhooks/registry/distribution", &[("authorization", &auth)], body).await;
    assert_eq!(status, 202);
    let batch = app.state.events.receive(1).await.unwrap();
    assert_eq!(batch.records.len(), 1);
    app.requests.take();
    let response = gantry_ingest::handle(app.state.clone(), batch).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(app.requests.take(), ["Query"]);
}

/// The supply-chain gate of a release reads its components and their registry integrations
/// once, however many components it has: the DynamoDB requests of a dry run do not grow.
#[tokio::test]
async fn a_supply_chain_dry_run_reads_integrations_once() {
    let registry = gantry_tests::registry::Registry::start(
        gantry_tests::registry::free_port(),
        "http://127.0.0.1:9/unused",
        "unused",
    );
    let key = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7Bd2aYqRhv1ZEGKkUFXsJVKp3mMA\nJ3OsbHb5aoN9bAvE4cZhnYJGJ/yXw0EP9d3R9tvFGDuMF4vxf6Ga4bjYMg==\n-----END PUBLIC KEY-----\n";
    let mut seen = Vec::new();
    for count in [2, 6] {
        let app = TestApp::spawn().await;
        app.create_integration("local", "DISTRIBUTION", &format!("http://{}", registry.host())).await;
        let mut pins = Vec::new();
        for i in 0..count {
            let image = format!("{}/shop/svc{i}", registry.host());
            let id = app.create_component_with(json!({ "name": format!("svc{i}"), "imageRepository": image })).await;
            app.add_version(&id, "1.0.0", &digest(&format!("svc{i}"))).await;
            pins.push(json!({ "componentId": id, "version": "1.0.0" }));
        }
        let env = app
            .create_environment_with(
                json!({ "name": "prod", "order": 10, "signingKeys": [{ "name": "k", "pem": key }] }),
            )
            .await;
        let release = app.ready_release("shop-1", json!(pins)).await;
        let q = "query($r: ID!, $e: ID!) { evaluatePolicy(releaseId: $r, environmentId: $e) { allowed components { signature } } }";
        app.requests.take();
        let dry = app.ok(q, json!({ "r": release, "e": env })).await["evaluatePolicy"].clone();
        assert_eq!(dry["components"].as_array().unwrap().len(), count, "{dry:#}");
        assert_eq!(dry["allowed"], false, "unsigned");
        seen.push(app.requests.take());
    }
    assert_eq!(seen[0], seen[1], "the requests do not grow with the components");
}

/// A promotion event no subscription wants, of a promotion that needs no approval (so has
/// no Slack card), costs the notifier one Query: the subscriptions. Its release and
/// environment are read only for a delivery or a card.
#[tokio::test]
async fn an_event_nobody_wants_costs_the_notifier_one_query() {
    let app = TestApp::spawn().await;
    let env = app.create_environment("dev", 0).await;
    let api = app.create_component("api").await;
    app.add_version(&api, "1.0.0", &digest("api")).await;
    let release = app.ready_release("r1", json!([{ "componentId": api, "version": "1.0.0" }])).await;
    app.request_promotion(&release, &env).await;
    let received = app.sqs.receive_message().queue_url(&app.notify_queue).max_number_of_messages(10).send().await;
    let messages = received.unwrap().messages.unwrap_or_default();
    let events: Vec<gantry_domain::notifier::NotifierJob> =
        messages.iter().map(|m| serde_json::from_str(m.body.as_deref().unwrap()).unwrap()).collect();
    assert!(!events.is_empty(), "the request published its events");
    for event in events {
        assert!(matches!(event, gantry_domain::notifier::NotifierJob::Event(_)));
        app.requests.take();
        app.state.notifier.run(event).await.unwrap();
        assert_eq!(app.requests.take(), ["Query"]);
    }
}
