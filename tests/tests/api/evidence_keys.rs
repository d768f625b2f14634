//! Evidence signed with asymmetric keys: a chain that starts with HS256 records, crosses to
//! an Ed25519 key, and goes on after the key is rotated, all verified by a Gantry that holds
//! neither private key; the key set anyone can fetch; and what breaks a record.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use gantry_domain::access::{Principal, Role};
use gantry_domain::ids::{EnvironmentId, PromotionId, ReleaseId};
use serde_json::{Value, json};

use crate::support::TestApp;

const KEY_A: &str = "MC4CAQAwBQYDK2VwBCIEIN+ebaGYp+tD6focwzinoz7/gCHxwxnov+MUI1jfXNJ+";
const KEY_B: &str = "MC4CAQAwBQYDK2VwBCIEIAHAjo/MOXN2RXZq1nMxta7L7iVZ3ZwnMSfw4PGtOqo5";
const VERIFY: &str =
    "query($e: ID!) { verifyEvidenceChain(environmentId: $e) { valid checked firstBrokenRecordId truncated } }";

fn thumbprint(pkcs8: &str) -> String {
    let der = base64::engine::general_purpose::STANDARD.decode(pkcs8).unwrap();
    gantry_signing::jwk::thumbprint(&gantry_signing::SigningKey::from_pkcs8(&der).unwrap().public())
}

type Item = HashMap<String, AttributeValue>;

async fn records(app: &TestApp, env: &str) -> Vec<Item> {
    app.items_under(&format!("EVIDENCE#{env}"), "SEQ#").await
}

async fn put(app: &TestApp, item: Item) {
    app.dynamodb.put_item().table_name(&app.table).set_item(Some(item)).send().await.unwrap();
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

#[tokio::test]
async fn a_chain_crosses_from_hs256_to_rotated_keys_and_verifies_throughout() {
    // The API process signs HS256 only: it can check the new records by the key set alone.
    let app = TestApp::spawn_with(&[("GANTRY_EVIDENCE_SIGNING_KEY", "")]).await;
    let web = app.create_component("web").await;
    app.add_version(&web, "1.0.0", &format!("sha256:{}", "a".repeat(64))).await;
    let env = app.create_environment_with(json!({ "name": "prod", "order": 10, "requiredApprovals": 1 })).await;
    let release = app.ready_release("web-1", json!([{ "componentId": web, "version": "1.0.0" }])).await;
    let request = "mutation($r: ID!, $e: ID!) { requestPromotion(releaseId: $r, environmentId: $e) { id } }";
    let first = app.ok(request, json!({ "r": release, "e": env })).await["requestPromotion"]["id"].clone();

    let admin = Principal::new("admin", vec![Role::Admin], Vec::new());
    let (a, b) = (
        app.state_with(&[("GANTRY_EVIDENCE_SIGNING_KEY", KEY_A)]),
        app.state_with(&[("GANTRY_EVIDENCE_SIGNING_KEY", KEY_B)]),
    );
    a.promotions.cancel(PromotionId::parse(first.as_str().unwrap()).unwrap(), &admin).await.unwrap();
    let (release_id, env_id) = (ReleaseId::parse(&release).unwrap(), EnvironmentId::parse(&env).unwrap());
    let second = a.promotions.request(release_id, env_id, (None, None), &admin, false).await.unwrap();
    b.promotions.cancel(second.id, &admin).await.unwrap();

    let items = records(&app, &env).await;
    let kids: Vec<Option<String>> = items.iter().map(|i| text(i, "keyId")).collect();
    let (ka, kb) = (thumbprint(KEY_A), thumbprint(KEY_B));
    assert_eq!(kids, [None, None, Some(ka.clone()), Some(ka.clone()), Some(ka.clone()), Some(kb.clone())]);
    let report = app.ok(VERIFY, json!({ "e": env })).await["verifyEvidenceChain"].clone();
    assert_eq!(report, json!({ "valid": true, "checked": 6, "firstBrokenRecordId": null, "truncated": false }));

    key_set_is_published(&app, (&ka, &kb)).await;
    what_breaks_a_record(&app, &env, &items, &kb).await;
}

/// The JWKS needs no token, may be cached, and marks the replaced key retired when its
/// successor was first used.
async fn key_set_is_published(app: &TestApp, (ka, kb): (&str, &str)) {
    let res = app.http.get(format!("{}/.well-known/gantry/evidence-keys.json", app.url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/jwk-set+json");
    assert_eq!(res.headers()["cache-control"], "public, max-age=300");
    let jwks: Value = res.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    let ids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(ids, [ka, kb], "{jwks:#}");
    for key in keys {
        assert_eq!(
            (&key["kty"], &key["crv"], &key["alg"], &key["use"]),
            (&json!("OKP"), &json!("Ed25519"), &json!("EdDSA"), &json!("sig"))
        );
        assert!(key.get("d").is_none(), "no private part: {key}");
    }
    assert_eq!(keys[0]["retired"], keys[1]["registered"]);
    assert!(keys[1].get("retired").is_none());
}

/// Each edit breaks the chain at the edited record; the original put back, it verifies again.
async fn what_breaks_a_record(app: &TestApp, env: &str, items: &[Item], kb: &str) {
    let edits: [(usize, &str, AttributeValue); 4] = [
        (3, "keyId", AttributeValue::S(kb.to_owned())),
        (3, "keyId", AttributeValue::S("unknown-key".into())),
        (5, "actor", AttributeValue::S("mallory".into())),
        (4, "signature", items[3]["signature"].clone()),
    ];
    for (i, field, value) in edits {
        let mut edited = items[i].clone();
        edited.insert(field.to_owned(), value);
        put(app, edited).await;
        let report = app.ok(VERIFY, json!({ "e": env })).await["verifyEvidenceChain"].clone();
        assert_eq!(report["valid"], false, "{field}");
        assert_eq!(report["firstBrokenRecordId"].as_str(), text(&items[i], "id").as_deref(), "{field}: {report}");
        put(app, items[i].clone()).await;
    }
    let mut unsigned = items[5].clone();
    unsigned.remove("keyId");
    put(app, unsigned).await;
    let report = app.ok(VERIFY, json!({ "e": env })).await["verifyEvidenceChain"].clone();
    assert_eq!(report["checked"], 6, "a DSSE signature is no JWS: {report}");
    assert_eq!(report["valid"], false);
    put(app, items[5].clone()).await;
    assert_eq!(app.ok(VERIFY, json!({ "e": env })).await["verifyEvidenceChain"]["valid"], true);
}
