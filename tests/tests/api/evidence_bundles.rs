//! Evidence bundles exported through the API and checked twice: by the server under its
//! published keys (`verifyEvidenceBundle`) and by an independent implementation
//! (`fixtures/verify-bundle.py`: Python's `cryptography`). The chain starts with HS256
//! records, crosses to key A, and rotates to key B; each tampering is caught by both.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gantry_domain::access::{Principal, Role};
use gantry_domain::ids::{EnvironmentId, PromotionId, ReleaseId};
use serde_json::{Value, json};

use crate::support::TestApp;

const KEY_A: &str = "MC4CAQAwBQYDK2VwBCIEIN+ebaGYp+tD6focwzinoz7/gCHxwxnov+MUI1jfXNJ+";
const KEY_B: &str = "MC4CAQAwBQYDK2VwBCIEIAHAjo/MOXN2RXZq1nMxta7L7iVZ3ZwnMSfw4PGtOqo5";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/verify-bundle.py");
const EXPORT: &str = "query($p: ID) { evidenceBundle(promotionId: $p) }";
const CHECK: &str = "query($b: JSON!) { verifyEvidenceBundle(bundle: $b) {
    valid problems manifests { releaseId valid }
    chains { records verified legacy complete firstBrokenSeq firstBrokenReason } } }";

/// The independent verifier's verdict on `bundle` (under `jwks` when given).
fn offline(bundle: &Value, jwks: Option<&Value>) -> Value {
    let dir = std::env::temp_dir().join(format!("gantry-bundle-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bundle.json");
    std::fs::write(&file, bundle.to_string()).unwrap();
    let mut command = std::process::Command::new("python3");
    command.arg(SCRIPT).arg(&file);
    if let Some(jwks) = jwks {
        std::fs::write(dir.join("keys.json"), jwks.to_string()).unwrap();
        command.arg(dir.join("keys.json"));
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A promotion whose environment's chain holds 2 HS256 records, 3 by key A, 1 by key B (the
/// API's key); its id.
async fn crossing_chain(app: &TestApp) -> String {
    let web = app.create_component("web").await;
    app.add_version(&web, "1.0.0", &format!("sha256:{}", "b".repeat(64))).await;
    let env = app.create_environment_with(json!({ "name": "prod", "order": 10, "requiredApprovals": 1 })).await;
    let release = app.ready_release("web-1.0.0", json!([{ "componentId": web, "version": "1.0.0" }])).await;
    let (release, env) = (ReleaseId::parse(&release).unwrap(), EnvironmentId::parse(&env).unwrap());
    let admin = Principal::new("admin", vec![Role::Admin], Vec::new());
    let legacy = app.state_with(&[("GANTRY_EVIDENCE_SIGNING_KEY", "")]);
    let first = legacy.promotions.request(release, env, (None, None), &admin, false).await.unwrap();
    let a = app.state_with(&[("GANTRY_EVIDENCE_SIGNING_KEY", KEY_A)]);
    a.promotions.cancel(first.id, &admin).await.unwrap();
    let second = a.promotions.request(release, env, (None, None), &admin, false).await.unwrap();
    let cancel = "mutation($id: ID!) { cancelPromotion(id: $id) { status } }";
    app.ok(cancel, json!({ "id": second.id.to_string() })).await;
    second.id.to_string()
}

#[tokio::test]
async fn a_bundle_verifies_offline_and_on_the_server_and_every_tampering_is_caught() {
    let app = TestApp::spawn_with(&[("GANTRY_EVIDENCE_SIGNING_KEY", KEY_B)]).await;
    let promotion = crossing_chain(&app).await;
    PromotionId::parse(&promotion).unwrap();
    let bundle = app.ok(EXPORT, json!({ "p": promotion })).await["evidenceBundle"].clone();
    assert_eq!(bundle["mediaType"], "application/vnd.gantry.evidence-bundle.v1+json");
    assert_eq!(bundle["keys"]["keys"].as_array().unwrap().len(), 2, "A and B: {:#}", bundle["keys"]);

    let server = app.ok(CHECK, json!({ "b": bundle })).await["verifyEvidenceBundle"].clone();
    assert_eq!(server["valid"], true, "{server:#}");
    assert_eq!(
        server["chains"],
        json!([{ "records": 6, "verified": 4, "legacy": 2, "complete": true, "firstBrokenSeq": null, "firstBrokenReason": null }])
    );
    assert_eq!(server["manifests"][0]["valid"], true);
    let jwks: Value = app
        .http
        .get(format!("{}/.well-known/gantry/evidence-keys.json", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let third_party = offline(&bundle, Some(&jwks));
    assert_eq!(third_party["valid"], true, "{third_party:#}");
    let chain = &third_party["chains"][0];
    assert_eq!(
        (&chain["records"], &chain["verified"], &chain["legacy"], &chain["complete"]),
        (&json!(6), &json!(4), &json!(2), &json!(true))
    );

    for (what, tampered) in tamperings(&bundle) {
        let server = app.ok(CHECK, json!({ "b": tampered })).await["verifyEvidenceBundle"].clone();
        assert_eq!(server["valid"], false, "the server missed: {what}");
        assert_eq!(offline(&tampered, Some(&jwks))["valid"], false, "the third party missed: {what}");
    }
}

/// Each way a bundle may be tampered with: a record edited, removed, reordered, duplicated,
/// re-signed by a stranger, naming the wrong key; the chain cut at its head; the manifest
/// altered after signing.
fn tamperings(bundle: &Value) -> Vec<(&'static str, Value)> {
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = bundle.clone();
        f(&mut b);
        b
    };
    let records = |b: &mut Value| b["chains"][0]["records"].as_array_mut().unwrap().clone();
    let set = |b: &mut Value, r: Vec<Value>| b["chains"][0]["records"] = json!(r);
    let (stranger, _) = gantry_signing::SigningKey::generate();
    let stranger_kid = gantry_signing::jwk::thumbprint(&stranger.public());
    vec![
        (
            "edited",
            with(&|b| {
                let mut r = records(b);
                let mut statement: Value =
                    serde_json::from_slice(&STANDARD.decode(r[3]["payload"].as_str().unwrap()).unwrap()).unwrap();
                statement["predicate"]["actor"] = json!("mallory");
                r[3]["payload"] = json!(STANDARD.encode(serde_json_canonicalizer::to_vec(&statement).unwrap()));
                set(b, r);
            }),
        ),
        (
            "removed",
            with(&|b| {
                let mut r = records(b);
                r.remove(2);
                set(b, r);
            }),
        ),
        (
            "reordered",
            with(&|b| {
                let mut r = records(b);
                r.swap(3, 4);
                set(b, r);
            }),
        ),
        (
            "duplicated",
            with(&|b| {
                let mut r = records(b);
                let again = r[3].clone();
                r.insert(4, again);
                set(b, r);
            }),
        ),
        (
            "signed by a key not in the set",
            with(&|b| {
                let mut r = records(b);
                let payload = STANDARD.decode(r[4]["payload"].as_str().unwrap()).unwrap();
                let sig = stranger.sign(&gantry_signing::dsse::pae(gantry_signing::dsse::IN_TOTO, &payload));
                r[4] = gantry_signing::bundle::envelope(gantry_signing::dsse::IN_TOTO, &payload, &stranger_kid, &sig);
                set(b, r);
            }),
        ),
        (
            "naming the other key",
            with(&|b| {
                let kid = b["chains"][0]["records"][5]["signatures"][0]["keyid"].clone();
                b["chains"][0]["records"][2]["signatures"][0]["keyid"] = kid;
            }),
        ),
        (
            "cut at the head",
            with(&|b| {
                let mut r = records(b);
                r.pop();
                set(b, r);
            }),
        ),
        ("manifest altered", manifest_altered(bundle)),
    ]
}

/// The manifest's content changed after it was signed.
fn manifest_altered(bundle: &Value) -> Value {
    let mut b = bundle.clone();
    let envelope = &mut b["manifests"][0]["envelope"];
    let mut document: Value =
        serde_json::from_slice(&STANDARD.decode(envelope["payload"].as_str().unwrap()).unwrap()).unwrap();
    document["manifest"]["version"] = json!("6.6.6");
    envelope["payload"] = json!(STANDARD.encode(serde_json_canonicalizer::to_vec(&document).unwrap()));
    b
}

/// With `GANTRY_EVIDENCE_SIGNING_KEY=kms:<key>`, records, heads and manifests are signed by
/// a P-256 key in KMS (the emulator's): ES256 in the key set, and the bundle verifies on
/// the server and offline.
#[tokio::test]
async fn an_evidence_key_in_kms_signs_what_anyone_can_check() {
    use aws_sdk_kms::types::{KeySpec, KeyUsageType};
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let made = kms.create_key().key_spec(KeySpec::EccNistP256).key_usage(KeyUsageType::SignVerify).send().await;
    let key = made.unwrap().key_metadata.unwrap().key_id;
    let app = TestApp::spawn_with(&[("GANTRY_EVIDENCE_SIGNING_KEY", &format!("kms:{key}"))]).await;
    let web = app.create_component("web").await;
    app.add_version(&web, "1.0.0", &format!("sha256:{}", "c".repeat(64))).await;
    let env = app.create_environment_with(json!({ "name": "prod", "order": 10, "requiredApprovals": 1 })).await;
    let release = app.ready_release("web-1.0.0", json!([{ "componentId": web, "version": "1.0.0" }])).await;
    let request = "mutation($r: ID!, $e: ID!) { requestPromotion(releaseId: $r, environmentId: $e) { id } }";
    let promotion = app.ok(request, json!({ "r": release, "e": env })).await["requestPromotion"]["id"].clone();

    let bundle = app.ok(EXPORT, json!({ "p": promotion })).await["evidenceBundle"].clone();
    let jwk = &bundle["keys"]["keys"][0];
    assert_eq!((&jwk["kty"], &jwk["crv"], &jwk["alg"]), (&json!("EC"), &json!("P-256"), &json!("ES256")), "{jwk}");
    let server = app.ok(CHECK, json!({ "b": bundle })).await["verifyEvidenceBundle"].clone();
    assert_eq!((&server["valid"], &server["chains"][0]["verified"]), (&json!(true), &json!(2)), "{server:#}");
    let third_party = offline(&bundle, None);
    assert_eq!(third_party["valid"], true, "{third_party:#}");
    assert_eq!(third_party["manifests"][0]["valid"], true);
}
