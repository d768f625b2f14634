use base64::Engine as _;
use chrono::Utc;
use gantry_domain::model::{DeployedComponent, DeploymentStatus, ReleaseEnvironmentRecord};
use gantry_domain::ports::{DeploymentRecords, ReleaseRepository};
use gantry_domain::values::{Channel, ComponentId, Digest, EnvironmentId, ReleaseId};
use serde_json::{Value, json};

use crate::support::{TestApp, digest};

const CREATE: &str = "mutation($input: CreateReleaseInput!) { createRelease(input: $input) { id } }";
const FROM_LATEST: &str = "mutation($input: CreateReleaseFromLatestInput!) { createReleaseFromLatest(input: $input) { id name components { componentName version digest channel } } }";
const UPDATE: &str = "mutation($id: ID!, $input: UpdateReleaseInput!) { updateRelease(id: $id, input: $input) { status displayName metadata } }";

/// Components `api` (1.0.0, 1.1.0, 2.0.0-rc.1) and `web` (3.0.0).
async fn catalogue(app: &TestApp) -> (String, String) {
    let api = app.create_component("api").await;
    let web = app.create_component("web").await;
    for tag in ["v1.0.0", "v1.1.0", "v2.0.0-rc.1"] {
        app.add_version(&api, tag, &digest(&format!("api-{tag}"))).await;
    }
    app.add_version(&web, "3.0.0", &digest("web-3.0.0")).await;
    (api, web)
}

#[tokio::test]
async fn release_resolves_by_version_digest_and_channel() {
    let app = TestApp::spawn().await;
    let (api, web) = catalogue(&app).await;
    let data = app
        .ok(
            "mutation($input: CreateReleaseInput!) { createRelease(input: $input) {
                id name displayName status createdBy componentCount metadata
                sourceRef { repository branch commitSha }
                components { componentId componentName version digest channel tag image imageRef } } }",
            json!({ "input": {
                "name": "myapp-v2.3.1",
                "displayName": "My App 2.3.1",
                "components": [ { "componentId": api, "version": "1.0.0" }, { "componentId": web, "digest": digest("web-3.0.0") } ],
                "sourceRef": { "repository": "myorg/myapp", "branch": "main", "commitSha": "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567" },
                "metadata": { "ticket": "REL-1" }
            } }),
        )
        .await;
    let r = &data["createRelease"];
    assert_eq!(r["status"], "DRAFT");
    assert_eq!(r["createdBy"], "test-admin");
    assert_eq!(r["componentCount"], 2);
    assert_eq!(r["metadata"], json!({ "ticket": "REL-1" }));
    assert_eq!(r["sourceRef"]["commitSha"], "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567");
    assert_eq!(r["components"][0]["componentName"], "api");
    assert_eq!(r["components"][0]["version"], "1.0.0");
    assert_eq!(r["components"][0]["tag"], "v1.0.0");
    assert_eq!(r["components"][0]["digest"], digest("api-v1.0.0"));
    assert_eq!(r["components"][0]["imageRef"], format!("registry.example.com/acme/api@{}", digest("api-v1.0.0")));
    assert_eq!(r["components"][1]["version"], "3.0.0");

    // By channel: the highest semver in it.
    let stable = app.create_release("by-stable", json!([{ "componentId": api, "channel": "stable" }])).await;
    assert_eq!(stable["components"][0]["version"], "1.1.0");
    let rc = app.create_release("by-rc", json!([{ "componentId": api, "channel": "rc" }])).await;
    assert_eq!(rc["components"][0]["version"], "2.0.0-rc.1");
    assert_eq!(rc["components"][0]["channel"], "rc");

    let fetched =
        app.ok("query($id: ID!) { release(id: $id) { name components { version } } }", json!({ "id": r["id"] })).await;
    assert_eq!(fetched["release"]["name"], "myapp-v2.3.1");
}

#[tokio::test]
async fn unresolvable_components_write_nothing() {
    let app = TestApp::spawn().await;
    let (api, web) = catalogue(&app).await;
    for component in [
        json!({ "componentId": api, "version": "9.9.9" }),
        json!({ "componentId": api, "digest": digest("nobody") }),
        json!({ "componentId": api, "digest": digest("web-3.0.0") }),
        json!({ "componentId": api, "channel": "beta" }),
    ] {
        let input = json!({ "input": { "name": "r", "components": [ { "componentId": web, "version": "3.0.0" }, component ] } });
        app.assert_rejected("UNRESOLVABLE_VERSION", CREATE, input).await;
    }
}

#[tokio::test]
async fn malformed_releases_write_nothing() {
    let app = TestApp::spawn().await;
    let (api, _) = catalogue(&app).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    for (input, code) in [
        (json!({ "name": "", "components": [{ "componentId": api, "version": "1.0.0" }] }), "BAD_USER_INPUT"),
        (json!({ "name": "r", "components": [] }), "BAD_USER_INPUT"),
        (json!({ "name": "r", "components": [{ "componentId": api }] }), "BAD_USER_INPUT"),
        (
            json!({ "name": "r", "components": [{ "componentId": api, "version": "1.0.0", "channel": "stable" }] }),
            "BAD_USER_INPUT",
        ),
        (json!({ "name": "r", "components": [{ "componentId": api, "version": "one" }] }), "BAD_USER_INPUT"),
        (json!({ "name": "r", "components": [{ "componentId": api, "digest": "sha256:123" }] }), "BAD_USER_INPUT"),
        (json!({ "name": "r", "components": [{ "componentId": api, "channel": "Not A Channel" }] }), "BAD_USER_INPUT"),
        (
            json!({ "name": "r", "components": [{ "componentId": api, "version": "1.0.0" }, { "componentId": api, "version": "1.1.0" }] }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "name": "r", "components": [{ "componentId": api, "version": "1.0.0" }], "metadata": [1, 2] }),
            "BAD_USER_INPUT",
        ),
        (json!({ "name": "r", "components": [{ "componentId": unknown, "version": "1.0.0" }] }), "NOT_FOUND"),
        (json!({ "name": "r", "components": [{ "componentId": "nope", "version": "1.0.0" }] }), "BAD_USER_INPUT"),
    ] {
        app.assert_rejected(code, CREATE, json!({ "input": input })).await;
    }
}

#[tokio::test]
async fn release_names_are_unique_even_under_concurrency() {
    let app = TestApp::spawn().await;
    let (api, _) = catalogue(&app).await;
    app.create_release("taken", json!([{ "componentId": api, "version": "1.0.0" }])).await;
    app.assert_rejected(
        "CONFLICT",
        CREATE,
        json!({ "input": { "name": "taken", "components": [{ "componentId": api, "version": "1.1.0" }] } }),
    )
    .await;

    let input = json!({ "input": { "name": "raced", "components": [{ "componentId": api, "version": "1.0.0" }] } });
    let attempts = futures::future::join_all((0..8).map(|_| app.gql(CREATE, input.clone()))).await;
    let won = attempts.iter().filter(|r| r.get("errors").is_none()).count();
    let conflicts = attempts.iter().filter(|r| r["errors"][0]["extensions"]["code"] == "CONFLICT").count();
    assert_eq!((won, conflicts), (1, 7), "exactly one create wins: {attempts:#?}");
    let listed = app.ok("{ releases(first: 100) { totalCount edges { node { name } } } }", json!({})).await;
    assert_eq!(listed["releases"]["totalCount"], 2);
}

#[tokio::test]
async fn status_follows_the_lifecycle() {
    let app = TestApp::spawn().await;
    let (api, _) = catalogue(&app).await;
    let r = app.create_release("r", json!([{ "componentId": api, "version": "1.0.0" }])).await;
    let id = r["id"].clone();

    let ready = app
        .ok(UPDATE, json!({ "id": id, "input": { "status": "READY", "displayName": "R", "metadata": { "a": 1 } } }))
        .await;
    assert_eq!(ready["updateRelease"], json!({ "status": "READY", "displayName": "R", "metadata": { "a": 1 } }));
    app.assert_rejected("BAD_USER_INPUT", UPDATE, json!({ "id": id, "input": { "status": "PROMOTING" } })).await;
    app.assert_rejected("BAD_USER_INPUT", UPDATE, json!({ "id": id, "input": { "status": "SHIPPED" } })).await;
    app.assert_rejected("BAD_USER_INPUT", UPDATE, json!({ "id": id, "input": { "metadata": "text" } })).await;

    let deprecated = app.ok("mutation($id: ID!) { deprecateRelease(id: $id) { status } }", json!({ "id": id })).await;
    assert_eq!(deprecated["deprecateRelease"]["status"], "DEPRECATED");
    app.assert_rejected("CONFLICT", UPDATE, json!({ "id": id, "input": { "status": "READY" } })).await;
    app.assert_rejected("CONFLICT", UPDATE, json!({ "id": id, "input": { "displayName": "changed" } })).await;
    app.assert_rejected(
        "NOT_FOUND",
        UPDATE,
        json!({ "id": uuid::Uuid::new_v4().to_string(), "input": { "status": "READY" } }),
    )
    .await;

    // Status filters follow the change.
    let listed = app.ok("{ releases(status: DEPRECATED) { totalCount edges { node { name } } } }", json!({})).await;
    assert_eq!(listed["releases"]["totalCount"], 1);
    let by_component = app
        .ok("query($c: ID!) { releases(componentId: $c, status: DEPRECATED) { totalCount } }", json!({ "c": api }))
        .await;
    assert_eq!(by_component["releases"]["totalCount"], 1);
}

#[tokio::test]
async fn releases_page_newest_first_with_filters() {
    let app = TestApp::spawn().await;
    let (api, web) = catalogue(&app).await;
    let mut names = Vec::new();
    for i in 0..7 {
        let components = if i % 2 == 0 {
            json!([{ "componentId": api, "version": "1.0.0" }])
        } else {
            json!([{ "componentId": api, "version": "1.1.0" }, { "componentId": web, "version": "3.0.0" }])
        };
        let name = format!("r{i}");
        let r = app.create_release(&name, components).await;
        if i < 3 {
            app.ok(UPDATE, json!({ "id": r["id"], "input": { "status": "READY" } })).await;
        }
        names.push(name);
    }
    names.reverse();

    let q = "query($first: Int, $after: String, $status: ReleaseStatus, $c: ID) {
        releases(first: $first, after: $after, status: $status, componentId: $c) {
            totalCount pageInfo { hasNextPage endCursor } edges { cursor node { name status } } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app.ok(q, json!({ "first": 3, "after": after })).await["releases"].clone();
        assert_eq!(page["totalCount"], 7);
        seen.extend(page["edges"].as_array().unwrap().iter().map(|e| e["node"]["name"].as_str().unwrap().to_owned()));
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, names, "every release once, newest first");

    let ready = app.ok(q, json!({ "status": "READY" })).await["releases"].clone();
    let ready_names: Vec<_> =
        ready["edges"].as_array().unwrap().iter().map(|e| e["node"]["name"].as_str().unwrap()).collect();
    assert_eq!(ready_names, ["r2", "r1", "r0"]);
    assert_eq!(ready["totalCount"], 3);

    let with_web = app.ok(q, json!({ "c": web, "first": 2 })).await["releases"].clone();
    assert_eq!(with_web["totalCount"], 3);
    let first_two: Vec<_> =
        with_web["edges"].as_array().unwrap().iter().map(|e| e["node"]["name"].as_str().unwrap()).collect();
    assert_eq!(first_two, ["r5", "r3"]);
    let rest = app.ok(q, json!({ "c": web, "first": 2, "after": with_web["pageInfo"]["endCursor"] })).await["releases"]
        .clone();
    assert_eq!(rest["edges"][0]["node"]["name"], "r1");
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);

    let web_ready = app.ok(q, json!({ "c": web, "status": "READY" })).await["releases"].clone();
    assert_eq!(web_ready["edges"].as_array().unwrap().len(), 1);
    assert_eq!(web_ready["totalCount"], 1);

    app.assert_rejected("BAD_USER_INPUT", q, json!({ "after": "garbage!" })).await;
    app.assert_rejected("BAD_USER_INPUT", q, json!({ "first": 101 })).await;
}

#[tokio::test]
async fn compare_reports_added_removed_and_changed() {
    let app = TestApp::spawn().await;
    let (api, web) = catalogue(&app).await;
    let worker = app.create_component("worker").await;
    app.add_version(&worker, "0.1.0", &digest("worker")).await;
    let from = app
        .create_release(
            "from",
            json!([{ "componentId": api, "version": "1.0.0" }, { "componentId": web, "version": "3.0.0" }]),
        )
        .await;
    let to = app
        .create_release(
            "to",
            json!([{ "componentId": api, "version": "1.1.0" }, { "componentId": worker, "channel": "stable" }]),
        )
        .await;
    let cmp = app
        .ok(
            "query($a: ID!, $b: ID!) { compareReleases(id: $a, otherId: $b) {
                added { componentId componentName } removed { componentName }
                changed { component fromVersion toVersion fromDigest toDigest } } }",
            json!({ "a": from["id"], "b": to["id"] }),
        )
        .await["compareReleases"]
        .clone();
    assert_eq!(cmp["added"], json!([{ "componentId": worker, "componentName": "worker" }]));
    assert_eq!(cmp["removed"], json!([{ "componentName": "web" }]));
    assert_eq!(
        cmp["changed"],
        json!([{ "component": "api", "fromVersion": "1.0.0", "toVersion": "1.1.0", "fromDigest": digest("api-v1.0.0"), "toDigest": digest("api-v1.1.0") }])
    );
    app.assert_rejected(
        "NOT_FOUND",
        "query($a: ID!, $b: ID!) { compareReleases(id: $a, otherId: $b) { added { componentId } } }",
        json!({ "a": from["id"], "b": uuid::Uuid::new_v4().to_string() }),
    )
    .await;
}

fn deployed(env: EnvironmentId, component: &str, release: ReleaseId, label: &str, version: &str) -> DeployedComponent {
    DeployedComponent {
        environment_id: env,
        component_id: ComponentId::parse(component).unwrap(),
        release_id: release,
        digest: Digest::of(label.as_bytes()),
        tag: version.to_owned(),
        version: version.parse().unwrap(),
        channel: Channel::stable(),
        deployed_at: Utc::now(),
    }
}

#[tokio::test]
async fn from_latest_pins_what_runs_in_an_environment() {
    let app = TestApp::spawn().await;
    let (api, web) = catalogue(&app).await;
    let prod = app.create_environment("prod", 30).await;
    let prod_id = EnvironmentId::parse(&prod).unwrap();

    // Without pinning: the latest stable of every component.
    let latest = app
        .ok(
            FROM_LATEST,
            json!({ "input": { "name": "latest", "channel": "stable" } }),
        )
        .await["createReleaseFromLatest"]
        .clone();
    let versions: Vec<_> = latest["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["componentName"].as_str().unwrap(), c["version"].as_str().unwrap()))
        .collect();
    assert!(versions.contains(&("api", "1.1.0")) && versions.contains(&("web", "3.0.0")), "{versions:?}");

    // prod runs api 1.0.0 (as promotions record it); web is not deployed there.
    let old = app.create_release("old", json!([{ "componentId": api, "version": "1.0.0" }])).await;
    let old_id = ReleaseId::parse(old["id"].as_str().unwrap()).unwrap();
    let record = ReleaseEnvironmentRecord {
        release_id: old_id,
        environment_id: prod_id,
        status: DeploymentStatus::Deployed,
        deployed_at: Some(Utc::now()),
        updated_at: Utc::now(),
    };
    app.repo.record_release_deployed(&record, &[deployed(prod_id, &api, old_id, "api-v1.0.0", "1.0.0")]).await.unwrap();

    let pinned = app
        .ok(
            FROM_LATEST,
            json!({ "input": { "name": "pinned", "componentIds": [api, web], "pinFrom": { "environmentId": prod } } }),
        )
        .await["createReleaseFromLatest"]
        .clone();
    assert_eq!(pinned["components"][0]["componentName"], "api");
    assert_eq!(pinned["components"][0]["digest"], digest("api-v1.0.0"), "api keeps prod's digest");
    assert_eq!(pinned["components"][0]["version"], "1.0.0");
    assert_eq!(pinned["components"][1]["digest"], digest("web-3.0.0"), "web takes the latest");

    // The rc channel: api's rc, and web has none.
    app.assert_rejected("UNRESOLVABLE_VERSION", FROM_LATEST, json!({ "input": { "name": "rc", "channel": "rc" } }))
        .await;
    let rc = app.ok(FROM_LATEST, json!({ "input": { "name": "rc", "channel": "rc", "componentIds": [api] } })).await;
    assert_eq!(rc["createReleaseFromLatest"]["components"][0]["version"], "2.0.0-rc.1");
    app.assert_rejected(
        "NOT_FOUND",
        FROM_LATEST,
        json!({ "input": { "name": "x", "pinFrom": { "environmentId": uuid::Uuid::new_v4().to_string() } } }),
    )
    .await;
    app.assert_rejected("CONFLICT", FROM_LATEST, json!({ "input": { "name": "pinned" } })).await;
    app.assert_rejected("BAD_USER_INPUT", FROM_LATEST, json!({ "input": { "name": "x", "channel": "Bad" } })).await;
}

#[tokio::test]
async fn release_state_lists_every_environment_in_order() {
    let app = TestApp::spawn().await;
    let (api, _) = catalogue(&app).await;
    let prod = app.create_environment("prod", 30).await;
    let dev = app.create_environment("dev", 10).await;
    let staging = app.create_environment("staging", 20).await;
    let r = app.create_release("r", json!([{ "componentId": api, "version": "1.0.0" }])).await;
    let q =
        "query($id: ID!) { releaseState(id: $id) { environments { environmentId environmentName status deployedAt } }
                               release(id: $id) { state { environments { status } } } }";
    let state = app.ok(q, json!({ "id": r["id"] })).await;
    let envs = state["releaseState"]["environments"].as_array().unwrap();
    let ids: Vec<_> = envs.iter().map(|e| e["environmentId"].as_str().unwrap()).collect();
    assert_eq!(ids, [dev.as_str(), staging.as_str(), prod.as_str()]);
    assert!(envs.iter().all(|e| e["status"] == "NOT_DEPLOYED" && e["deployedAt"].is_null()));
    assert_eq!(state["release"]["state"]["environments"].as_array().unwrap().len(), 3);

    let release_id = ReleaseId::parse(r["id"].as_str().unwrap()).unwrap();
    let dev_id = EnvironmentId::parse(&dev).unwrap();
    let at = Utc::now();
    let record = ReleaseEnvironmentRecord {
        release_id,
        environment_id: dev_id,
        status: DeploymentStatus::Deployed,
        deployed_at: Some(at),
        updated_at: at,
    };
    app.repo
        .record_release_deployed(&record, &[deployed(dev_id, &api, release_id, "api-v1.0.0", "1.0.0")])
        .await
        .unwrap();
    let state = app.ok(q, json!({ "id": r["id"] })).await;
    let envs = &state["releaseState"]["environments"];
    assert_eq!(envs[0]["status"], "DEPLOYED");
    assert_eq!(envs[0]["environmentName"], "dev");
    assert!(envs[0]["deployedAt"].is_string());
    assert_eq!(envs[1]["status"], "NOT_DEPLOYED");

    // A deployed release can't be deleted while its record stands; deleting an environment with deployments conflicts.
    app.assert_rejected("CONFLICT", "mutation($id: ID!) { deleteEnvironment(id: $id) { id } }", json!({ "id": dev }))
        .await;
    app.assert_rejected(
        "NOT_FOUND",
        "query($id: ID!) { releaseState(id: $id) { environments { status } } }",
        json!({ "id": uuid::Uuid::new_v4().to_string() }),
    )
    .await;
}

#[tokio::test]
async fn manifest_is_valid_and_sealed() {
    let app = TestApp::spawn().await;
    let (api, web) = catalogue(&app).await;
    let r = app
        .create_release(
            "myapp-v2.3.1",
            json!([{ "componentId": api, "version": "1.1.0" }, { "componentId": web, "version": "3.0.0" }]),
        )
        .await;
    let doc = app.ok("query($id: ID!) { release(id: $id) { id manifest } }", json!({ "id": r["id"] })).await["release"]
        ["manifest"]
        .clone();

    let schema: Value =
        serde_json::from_str(include_str!("../../../docs/schemas/production-release-manifest.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "manifest violates the schema: {errors:?}\n{doc:#}");
    // The document root allows anything, so check the manifest against its own definition too.
    let mut release_manifest = schema["definitions"]["ReleaseManifest"].clone();
    release_manifest["definitions"] = schema["definitions"].clone();
    let strict = jsonschema::validator_for(&release_manifest).unwrap();
    assert!(strict.is_valid(&doc["manifest"]), "{doc:#}");
    let mut broken = doc["manifest"].clone();
    broken["services"][0]["digest"] = json!("sha256:nothex");
    assert!(!strict.is_valid(&broken), "the schema check can fail");

    let m = &doc["manifest"];
    assert_eq!(m["release_id"], r["id"]);
    assert_eq!(m["version"], "2.3.1");
    assert_eq!(m["services"][0]["image"], "registry.example.com/acme/api");
    assert_eq!(m["services"][0]["digest"], digest("api-v1.1.0"));
    assert_eq!(m["services"][1]["tag"], "3.0.0");

    // The evidence key's DSSE signature joins `signatures` once the digest is taken: it
    // signs the document without it, as the key set at /.well-known publishes the key.
    let mut signed = m.clone();
    let dsse = signed["signatures"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((&dsse["signature_type"], dsse["signed_at"].is_string()), (&json!("dsse"), true), "{dsse:#}");
    signed.as_object_mut().unwrap().remove("signatures");
    let payload = serde_json_canonical(&json!({ "manifest": signed }));
    let jwks = app.http.get(format!("{}/.well-known/gantry/evidence-keys.json", app.url)).send().await.unwrap();
    let jwks: Value = jwks.json().await.unwrap();
    let keys = gantry_signing::bundle::key_set(&jwks);
    let key = &keys[dsse["key_id"].as_str().unwrap()];
    let sig = base64::engine::general_purpose::STANDARD.decode(dsse["signature"].as_str().unwrap()).unwrap();
    let pae = gantry_signing::dsse::pae(gantry_signing::bundle::MANIFEST_TYPE, payload.as_bytes());
    assert!(key.verify(&pae, &sig), "the manifest's DSSE signature verifies under the published key");

    let mut unsealed = signed.clone();
    let seal = unsealed.as_object_mut().unwrap().remove("manifest_digest").unwrap();
    let canonical = serde_json_canonical(&unsealed);
    assert_eq!(seal.as_str().unwrap(), Digest::of(canonical.as_bytes()).as_str());
}

/// RFC 8785 for the simple documents here: sorted keys, no whitespace, serde_json numbers and strings.
fn serde_json_canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), serde_json_canonical(&map[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(serde_json_canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn only_idle_releases_can_be_deleted() {
    let app = TestApp::spawn().await;
    let (api, _) = catalogue(&app).await;
    let r = app.create_release("r", json!([{ "componentId": api, "version": "1.0.0" }])).await;
    let release_id = ReleaseId::parse(r["id"].as_str().unwrap()).unwrap();
    // Promotions move releases to PROMOTING; do it the way they will, through the store.
    let before = app.repo.get_release(release_id).await.unwrap().unwrap();
    let mut promoting = before.clone();
    promoting.status = gantry_domain::model::ReleaseStatus::Promoting;
    promoting.revision += 1;
    app.repo.update_release(&before, &promoting).await.unwrap();
    app.assert_rejected("CONFLICT", "mutation($id: ID!) { deleteRelease(id: $id) { id } }", json!({ "id": r["id"] }))
        .await;
    // A stale write loses.
    let err = app.repo.update_release(&before, &promoting).await.unwrap_err();
    assert_eq!(err.code(), "CONFLICT");
}
