//! Cosign signatures read from a real registry (CNCF distribution) and judged by digest, and
//! the gate they make for promotions.
//! The keys and signatures are made, and pushed as cosign stores them, by an independent
//! implementation: Python's `cryptography` and the registry's own HTTP API
//! (`tests/fixtures/cosign-sign.py`), so the format is not only Gantry's reading of it.

use std::path::Path;
use std::process::Command;

use gantry_domain::DomainError;
use gantry_domain::access::Role;
use gantry_domain::integrations::RegistryAccess;
use gantry_domain::signatures::{ImageSignatures, SignatureVerdict, TrustedKey};
use gantry_domain::values::Digest;
use gantry_tests::registry::{Registry, free_port};
use serde_json::{Value, json};

use crate::support::{TestApp, docker_host, token};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cosign-sign.py");

/// A new key at `path`; its public PEM.
fn keygen(path: &Path) -> String {
    let out = Command::new("python3").arg(SCRIPT).arg("keygen").arg(path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Signs `digest` in `repo` with the key at `key`, replacing its stored signatures.
fn sign(registry: &Registry, repo: &str, digest: &str, key: &Path, extra: &[&str]) {
    let out = Command::new("python3")
        .arg(SCRIPT)
        .args(["sign", &registry.host(), repo, digest])
        .arg(key)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn reasons(verdict: &SignatureVerdict) -> String {
    match verdict {
        SignatureVerdict::Refused { reasons } => reasons.join("; "),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn cosign_signatures_are_found_by_digest_and_judged_under_trusted_keys() {
    let registry = Registry::start(free_port(), "http://127.0.0.1:9/unused", "unused");
    let digest = registry.push("shop/web", "1.0.0", "web 1.0.0");
    let elsewhere = registry.push("shop/web", "2.0.0", "web 2.0.0");
    let dir = std::env::temp_dir().join(format!("gantry-cosign-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (release_key, other_key) = (dir.join("release.pem"), dir.join("other.pem"));
    let keys = vec![TrustedKey { name: "release".into(), pem: keygen(&release_key) }];
    keygen(&other_key);

    let access = RegistryAccess { url: format!("http://{}", registry.host()), credentials: None };
    let reader = gantry_registry::OciRegistry::new();
    let image = Digest::parse(&digest).unwrap();
    let verdict = || reader.verify(&access, "shop/web", &image, &keys);

    assert_eq!(verdict().await.unwrap(), SignatureVerdict::Unsigned);

    sign(&registry, "shop/web", &digest, &other_key, &[]);
    assert!(reasons(&verdict().await.unwrap()).contains("no trusted key verifies it"));

    sign(&registry, "shop/web", &digest, &release_key, &["--names", &elsewhere]);
    let said = reasons(&verdict().await.unwrap());
    assert!(said.contains(&format!("it signs another image ({elsewhere})")), "{said}");

    sign(&registry, "shop/web", &digest, &release_key, &["--tamper"]);
    assert!(reasons(&verdict().await.unwrap()).contains("no trusted key verifies it"));

    sign(&registry, "shop/web", &digest, &release_key, &[]);
    assert_eq!(verdict().await.unwrap(), SignatureVerdict::Verified { key: "release".into() });
    // The signature of one image says nothing of another.
    let other_image = Digest::parse(&elsewhere).unwrap();
    assert_eq!(reader.verify(&access, "shop/web", &other_image, &keys).await.unwrap(), SignatureVerdict::Unsigned);

    let bad = vec![TrustedKey {
        name: "broken".into(),
        pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----".into(),
    }];
    let err = reader.verify(&access, "shop/web", &image, &bad).await.unwrap_err();
    assert!(matches!(err, DomainError::Validation(ref m) if m.contains("broken")), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

const VERDICT: &str = "query($r: ID!, $e: ID!) { evaluatePolicy(releaseId: $r, environmentId: $e) {
    allowed gates { gate passed detail } signatures { component digest verdict key reasons } } }";
const SET_KEYS: &str = "mutation($e: ID!, $k: [SigningKeyInput!]) {
    updateEnvironment(id: $e, input: { signingKeys: $k }) { signingKeys { name fingerprint } } }";

/// The evidence of a promotion: each record's kind and payload.
async fn evidence(app: &TestApp, promotion: &str) -> Vec<(String, Value)> {
    let q = "query($p: ID!) { evidence(promotionId: $p) { kind payload } }";
    let records = app.ok(q, json!({ "p": promotion })).await["evidence"].as_array().unwrap().clone();
    records.iter().map(|r| (r["kind"].as_str().unwrap().to_owned(), r["payload"].clone())).collect()
}

/// Environments that name signing keys refuse a promotion unless every component's digest
/// carries a signature verifying under one of them, at the request and again at deploy; an
/// image signed as it should be is deployed onto a real dockerd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_need_images_signed_under_the_environments_keys() {
    let app = TestApp::spawn_with_workers().await;
    let registry = Registry::start(free_port(), "http://127.0.0.1:9/unused", "unused");
    app.create_integration("local", "DISTRIBUTION", &format!("http://{}", registry.host())).await;
    let port = free_port();
    let httpd = ["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h", "/etc"];
    let digest = registry.push_with_command("shop/web", "1.0.0", "web 1.0.0", &httpd);
    let elsewhere = registry.push("shop/web", "2.0.0", "web 2.0.0");
    let dir = std::env::temp_dir().join(format!("gantry-cosign-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (release_key, other_key) = (dir.join("release.pem"), dir.join("other.pem"));
    let (release_pem, other_pem) = (keygen(&release_key), keygen(&other_key));

    let web = app
        .create_component_with(json!({ "name": "web", "imageRepository": format!("{}/shop/web", registry.host()) }))
        .await;
    app.add_version(&web, "1.0.0", &digest).await;
    let keys = json!([{ "name": "release", "pem": release_pem }]);
    let dev = app.create_environment_with(json!({ "name": "dev", "order": 10, "signingKeys": keys })).await;
    let prod = app
        .create_environment_with(json!({ "name": "prod", "order": 20, "requiredApprovals": 1, "signingKeys": keys }))
        .await;
    let container = format!("gantry-test-signed-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let target = json!({ "name": "host-1", "type": "DOCKER", "docker": {
        "endpoint": docker_host(), "containerName": container, "componentId": web, "networkMode": "host" } });
    let add =
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
    app.ok(add, json!({ "e": dev, "t": target })).await;
    let release = app.ready_release("web-1.0.0", json!([{ "componentId": web, "version": "1.0.0" }])).await;

    // Each way a signature can fail refuses the request, naming the component and the rule,
    // and the dry run shows the same verdict; nothing is written.
    let request = "mutation($r: ID!, $e: ID!) { requestPromotion(releaseId: $r, environmentId: $e) { id } }";
    let cases: [(&[&str], &Path, &str); 4] = [
        (&["unsigned"], &release_key, "not signed"),
        (&[], &other_key, "no trusted key verifies it"),
        (&["--names", &elsewhere], &release_key, "it signs another image"),
        (&["--tamper"], &release_key, "no trusted key verifies it"),
    ];
    for (extra, key, why) in cases {
        if extra != ["unsigned"] {
            sign(&registry, "shop/web", &digest, key, extra);
        }
        let said = app.assert_rejected("CONFLICT", request, json!({ "r": release, "e": dev })).await;
        assert!(said.starts_with(&format!("gate signatures did not pass: web ({digest}): ")), "{said}");
        assert!(said.contains(why), "{why}: {said}");
        let dry = &app.ok(VERDICT, json!({ "r": release, "e": dev })).await["evaluatePolicy"];
        assert_eq!(dry["allowed"], false, "{dry:#}");
        assert_eq!(dry["signatures"][0]["verdict"], if why == "not signed" { "UNSIGNED" } else { "REFUSED" });
    }
    let listed = "query($e: ID!) { promotions(environmentId: $e) { edges { node { id } } } }";
    assert_eq!(app.ok(listed, json!({ "e": dev })).await["promotions"]["edges"], json!([]), "nothing written");

    // Signed as it should be: allowed, deployed, and the verdict sealed in the evidence.
    sign(&registry, "shop/web", &digest, &release_key, &[]);
    let dry = &app.ok(VERDICT, json!({ "r": release, "e": dev })).await["evaluatePolicy"];
    assert_eq!((dry["allowed"].clone(), dry["signatures"][0]["key"].clone()), (json!(true), json!("release")));
    let deployed = app.promote(&release, &dev).await;
    assert_eq!(deployed["status"], "DEPLOYED", "{deployed:#}");
    let running = std::process::Command::new("docker")
        .args(["-H", &docker_host(), "inspect", "-f", "{{.Config.Image}}", &container])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&running.stdout).contains(&digest), "the signed digest runs");
    let records = evidence(&app, deployed["id"].as_str().unwrap()).await;
    let sealed = |kind: &str| records.iter().find(|(k, _)| k == kind).map(|(_, p)| p.clone()).unwrap();
    let verdict = json!([{ "component": "web", "digest": digest, "verdict": "verified", "key": "release" }]);
    assert_eq!(sealed("gate_evaluation")["signatures"], verdict);
    assert_eq!(sealed("deployment_started")["signatures"], verdict, "checked again at deploy");

    // The key is replaced between the request and the approval: refused at deploy.
    let requested = app.request_promotion(&release, &prod).await;
    assert_eq!(requested["status"], "PENDING_APPROVAL");
    let id = requested["id"].as_str().unwrap();
    let replaced = app.ok(SET_KEYS, json!({ "e": prod, "k": [{ "name": "other", "pem": other_pem }] })).await;
    assert_eq!(replaced["updateEnvironment"]["signingKeys"][0]["name"], "other");
    let approve = "mutation($id: ID!) { approvePromotion(id: $id) { status reason } }";
    let (_, approved) = app.gql_as(Some(&token("alice", &[Role::Approver])), approve, json!({ "id": id })).await;
    let approved = &approved["data"]["approvePromotion"];
    assert_eq!(approved["status"], "FAILED", "{approved:#}");
    let reason = approved["reason"].as_str().unwrap();
    assert!(reason.starts_with(&format!("gate signatures did not pass at deploy: web ({digest})")), "{reason}");
    let records = evidence(&app, id).await;
    let kinds: Vec<&str> = records.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["request", "gate_evaluation", "approval", "signature_check"]);
    assert_eq!(records[3].1["signatures"][0]["verdict"], "refused");
    assert_eq!(app.promotion(id).await["deployments"], json!([]), "nothing deployed");

    let _ = std::process::Command::new("docker").args(["-H", &docker_host(), "rm", "-f", &container]).output();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Keys are checked when they are set, and a refused set leaves the keys as they were.
#[tokio::test]
async fn signing_keys_are_checked_when_they_are_set() {
    let app = TestApp::spawn().await;
    let dir = std::env::temp_dir().join(format!("gantry-cosign-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = keygen(&dir.join("k.pem"));
    let env = app.create_environment("dev", 10).await;
    let set = app.ok(SET_KEYS, json!({ "e": env, "k": [{ "name": "ci", "pem": pem }] })).await;
    let fingerprint = set["updateEnvironment"]["signingKeys"][0]["fingerprint"].as_str().unwrap().to_owned();
    assert!(fingerprint.starts_with("sha256:"), "{fingerprint}");
    let ed25519 = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----";
    let many: Vec<Value> = (0..17).map(|i| json!({ "name": format!("k{i}"), "pem": pem })).collect();
    for (keys, why) in [
        (json!([{ "name": "ci", "pem": "not a key" }]), "ECDSA P-256"),
        (json!([{ "name": "ci", "pem": ed25519 }]), "ECDSA P-256"),
        (json!([{ "name": "two words", "pem": pem }]), "printable characters"),
        (json!([{ "name": "ci", "pem": pem }, { "name": "ci", "pem": pem }]), "names ci twice"),
        (json!(many), "at most 16"),
    ] {
        let said = app.assert_rejected("BAD_USER_INPUT", SET_KEYS, json!({ "e": env, "k": keys })).await;
        assert!(said.contains(why), "{why}: {said}");
    }
    let q = "query($e: ID!) { environment(id: $e) { signingKeys { fingerprint } } }";
    let kept = app.ok(q, json!({ "e": env })).await;
    assert_eq!(kept["environment"]["signingKeys"], json!([{ "fingerprint": fingerprint }]), "unchanged");
    // An empty list removes the gate.
    let cleared = app.ok(SET_KEYS, json!({ "e": env, "k": [] })).await;
    assert_eq!(cleared["updateEnvironment"]["signingKeys"], json!([]));
    let _ = std::fs::remove_dir_all(&dir);
}
