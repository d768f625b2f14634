//! End to end with a real CNCF distribution registry (Debian `docker-registry`) whose push
//! notifications reach the webhook gateway, images built from busybox-static and pushed
//! with skopeo, and the ingest worker resolving tags against the registry.

use std::time::Duration;

use serde_json::{Value, json};

pub(crate) use gantry_tests::registry::{Registry, free_port};

use crate::support::TestApp;

const VERSIONS: &str = "query($id: ID!) { componentVersions(componentId: $id) { tag digest semver channel source removed payloadDigest } }";

/// Polls `componentVersions` until `done` holds, for up to 30 seconds.
async fn wait_for_versions(app: &TestApp, component: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    gantry_tests::eventually(Duration::from_secs(30), "the component's versions", || async {
        let data = app.ok(VERSIONS, json!({ "id": component })).await;
        let versions = data["componentVersions"].as_array().unwrap().clone();
        done(&versions).then_some(versions)
    })
    .await
}

/// Waits until a delivery about `repository` is recorded and the events queue is empty
/// (nothing waiting, nothing in flight): the worker has dealt with it.
async fn wait_until_ingested(app: &TestApp, repository: &str) {
    let what = format!("the registry's notification for {repository} to be ingested");
    gantry_tests::eventually(Duration::from_secs(30), &what, || async {
        let recorded = app.snapshot().await.iter().any(|item| {
            item["PK"].to_string().contains("DELIVERY#")
                && item.get("images").is_some_and(|e| e.to_string().contains(repository))
        });
        recorded.then_some(())
    })
    .await;
    wait_until_idle(app).await;
}

/// Waits until the events queue is empty, nothing waiting and nothing in flight: what was
/// posted before has been dealt with.
async fn wait_until_idle(app: &TestApp) {
    gantry_tests::eventually(Duration::from_secs(30), "the events queue to drain", || async {
        (app.queue_depth(&app.events_queue).await == ("0".into(), "0".into())).then_some(())
    })
    .await
}

fn find<'a>(versions: &'a [Value], tag: &str) -> Option<&'a Value> {
    versions.iter().find(|v| v["tag"] == tag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_pushes_become_version_maps_and_releases() {
    let app = TestApp::spawn_with_workers().await;
    let port = free_port();
    let registry_url = format!("http://127.0.0.1:{port}");
    let (integration, secret) = app.create_integration("local", "DISTRIBUTION", &registry_url).await;
    let component = app
        .create_component_with(json!({ "name": "web", "imageRepository": format!("127.0.0.1:{port}/demo/web"),
                               "autoRelease": { "namePattern": "{component}-{version}" } }))
        .await;
    let registry = Registry::start(port, &format!("{}/webhooks/registry/distribution", app.url), &secret);

    let first = registry.push("demo/web", "1.0.0", "web 1.0.0");
    let versions = wait_for_versions(&app, &component, |v| find(v, "1.0.0").is_some()).await;
    let v = find(&versions, "1.0.0").unwrap();
    assert_eq!(v["digest"], first, "the registry's digest");
    assert_eq!((v["channel"].as_str(), v["source"].as_str()), (Some("stable"), Some("WEBHOOK")));

    let second = registry.push("demo/web", "1.1.0", "web 1.1.0");
    let rc = registry.push("demo/web", "1.2.0-rc.1", "web 1.2.0-rc.1");
    let versions =
        wait_for_versions(&app, &component, |v| find(v, "1.1.0").is_some() && find(v, "1.2.0-rc.1").is_some()).await;
    assert_eq!(find(&versions, "1.1.0").unwrap()["digest"], second);
    assert_eq!(find(&versions, "1.2.0-rc.1").unwrap()["digest"], rc);
    assert_eq!(find(&versions, "1.2.0-rc.1").unwrap()["channel"], "rc");

    // Auto-release: one release per new stable version, none for the release candidate.
    let names = gantry_tests::eventually(Duration::from_secs(10), "two auto-releases", || async {
        let data =
            app.ok("{ releases { edges { node { name createdBy components { version digest } } } } }", json!({})).await;
        let edges = data["releases"]["edges"].as_array().unwrap().clone();
        (edges.len() >= 2).then_some(edges)
    })
    .await;
    let mut release_names: Vec<_> = names.iter().map(|e| e["node"]["name"].as_str().unwrap().to_owned()).collect();
    release_names.sort();
    assert_eq!(release_names, ["web-1.0.0", "web-1.1.0"]);
    assert!(names.iter().all(|e| e["node"]["createdBy"] == "gantry:auto-release"));

    // A webhook that lies about a digest is overruled by the registry, and flagged.
    let real = registry.push("demo/legacy", "3.0.0", "legacy 3.0.0");
    // Let the registry's own (truthful) notification pass through while no component wants it.
    wait_until_ingested(&app, "demo/legacy").await;
    let legacy = app
        .create_component_with(json!({ "name": "legacy", "imageRepository": format!("127.0.0.1:{port}/demo/legacy") }))
        .await;
    let forged = crate::support::digest("not what the registry holds");
    let lie = json!({ "events": [{
        "id": "forged-1", "action": "push",
        "target": { "mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": "demo/legacy", "tag": "3.0.0", "digest": forged },
        "request": { "host": registry.host() } }] });
    let auth = format!("Bearer {secret}");
    let (status, _) = app
        .post_webhook("/webhooks/registry/distribution", &[("authorization", &auth)], serde_json::to_vec(&lie).unwrap())
        .await;
    assert_eq!(status, 202);
    let versions = wait_for_versions(&app, &legacy, |v| find(v, "3.0.0").is_some()).await;
    assert_eq!(find(&versions, "3.0.0").unwrap()["digest"], real, "the registry's digest is recorded");
    assert_eq!(find(&versions, "3.0.0").unwrap()["payloadDigest"], forged.as_str(), "and the claim is flagged");

    // Deleting the image at the registry (which announces each of its tags as deleted)
    // retires the version map: kept as history, never chosen again.
    let deleted =
        app.http.delete(format!("http://{}/v2/demo/web/manifests/{rc}", registry.host())).send().await.unwrap();
    assert_eq!(deleted.status(), 202);
    wait_for_versions(&app, &component, |v| find(v, "1.2.0-rc.1").is_none()).await;
    app.assert_rejected(
        "UNRESOLVABLE_VERSION",
        "mutation($c: ID!) { createRelease(input: { name: \"rc\", components: [{ componentId: $c, channel: \"rc\" }] }) { id } }",
        json!({ "c": component }),
    )
    .await;

    // syncVersions: tags pushed before the component existed are found by listing the registry.
    let before_api = registry.push("demo/api", "2.0.0", "api 2.0.0");
    registry.push("demo/api", "2.1.0", "api 2.1.0");
    registry.push("demo/api", "nightly", "api nightly");
    let api = app.create_component_with(json!({ "name": "api", "imageRepository": format!("127.0.0.1:{port}/demo/api"), "registryIntegrationId": integration })).await;
    let sync = "mutation($id: ID!, $force: Boolean) { syncVersions(componentId: $id, forceRefresh: $force) { synced versions { tag digest semver source } } }";
    let report = app.ok(sync, json!({ "id": api })).await["syncVersions"].clone();
    assert_eq!(report["synced"], 2, "two version tags; `nightly` names no version: {report:#}");
    assert_eq!(report["versions"][0]["semver"], "2.1.0");
    assert_eq!(report["versions"][1]["digest"], before_api);
    assert_eq!(report["versions"][1]["source"], "SYNC");
    let again = app.ok(sync, json!({ "id": api, "force": true })).await["syncVersions"].clone();
    assert_eq!(again["synced"], 0, "nothing new on a second sync");
    assert_eq!(again["versions"].as_array().unwrap().len(), 2);
}

/// A distribution notification of one event about `repository:tag`.
fn notification(id: &str, action: &str, repository: &str, tag: &str, digest: &str, host: &str) -> Vec<u8> {
    let target = match action {
        "push" => {
            json!({ "mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": repository, "tag": tag, "digest": digest })
        }
        _ => json!({ "repository": repository, "tag": tag }),
    };
    serde_json::to_vec(
        &json!({ "events": [{ "id": id, "action": action, "target": target, "request": { "host": host } }] }),
    )
    .unwrap()
}

/// Events travel on a standard queue: they may come late, out of order or more than once.
/// The registry decides what a tag points at, so each order ends where the registry is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_apply_in_any_order_and_any_number_of_times() {
    let app = TestApp::spawn_with_workers().await;
    let port = free_port();
    let (_, secret) = app.create_integration("local", "DISTRIBUTION", &format!("http://127.0.0.1:{port}")).await;
    let component = app
        .create_component_with(json!({ "name": "order", "imageRepository": format!("127.0.0.1:{port}/demo/order") }))
        .await;
    let registry = Registry::start(port, &format!("{}/webhooks/registry/distribution", app.url), &secret);
    let auth = format!("Bearer {secret}");
    let headers = [("authorization", auth.as_str())];
    let post = |body: Vec<u8>| app.post_webhook("/webhooks/registry/distribution", &headers, body);
    let live = |v: &[Value]| v.iter().filter(|v| v["tag"] == "1.0.0" && v["removed"] == false).count();

    let first = registry.push("demo/order", "1.0.0", "order 1.0.0");
    wait_for_versions(&app, &component, |v| live(v) == 1).await;

    // A deletion announced late, after the tag was pushed back, retires nothing the tag
    // still points at.
    let host = registry.host();
    assert_eq!(post(notification("late-delete", "delete", "demo/order", "1.0.0", "", &host)).await.0, 202);
    wait_until_idle(&app).await;
    let versions = wait_for_versions(&app, &component, |_| true).await;
    assert_eq!(live(&versions), 1, "the tag still points at its digest: {versions:#?}");

    // The tag deleted at the registry is retired; pushed back to the same image, restored.
    let deleted = app.http.delete(format!("http://{host}/v2/demo/order/manifests/{first}")).send().await.unwrap();
    assert_eq!(deleted.status(), 202);
    wait_for_versions(&app, &component, |v| live(v) == 0).await;
    assert_eq!(at_hand(&app, &component).await, json!([]), "the component's recent versions lose it too");
    let again = registry.push("demo/order", "1.0.0", "order 1.0.0");
    assert_eq!(again, first, "the same image has the same digest");
    let versions = wait_for_versions(&app, &component, |v| live(v) == 1).await;
    assert_eq!(versions.iter().filter(|v| v["tag"] == "1.0.0").count(), 1, "one map, in use again: {versions:#?}");

    // The same push delivered twice more (a replay, a redelivery) changes nothing.
    for id in ["dup-1", "dup-1"] {
        post(notification(id, "push", "demo/order", "1.0.0", &first, &host)).await;
    }
    wait_until_idle(&app).await;
    let versions = wait_for_versions(&app, &component, |_| true).await;
    assert_eq!(versions.len(), 1, "{versions:#?}");
    assert_eq!(live(&versions), 1);
    assert_eq!(at_hand(&app, &component).await, json!([{ "tag": "1.0.0", "digest": first }]), "and get it back");
}

/// The versions that come with the component (its recent versions).
async fn at_hand(app: &TestApp, component: &str) -> Value {
    let query = "query($id: ID!) { component(id: $id) { versions { tag digest } } }";
    app.ok(query, json!({ "id": component })).await["component"]["versions"].clone()
}
