//! Cosign signatures read from a real registry (CNCF distribution) and judged by digest, and
//! the gate they make for promotions.
//! The keys and signatures are made, and pushed as cosign stores them, by an independent
//! implementation: Python's `cryptography` and the registry's own HTTP API
//! (`tests/fixtures/cosign-sign.py`), so the format is not only Gantry's reading of it.

use gantry_domain::DomainError;
use gantry_domain::integrations::RegistryAccess;
use gantry_domain::signatures::{ImageSignatures, SignatureVerdict, Signers, TrustedKey};
use gantry_domain::values::Digest;
use gantry_tests::cosign::{keygen, sign};
use gantry_tests::registry::{Registry, free_port};
use serde_json::{Value, json};

use crate::support::TestApp;

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
    let keys = vec![TrustedKey { name: "release".into(), pem: keygen(&release_key), reference: None }];
    let keys = Signers { keys, ..Default::default() };
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
    let verified = verdict().await.unwrap();
    assert!(
        matches!(&verified, SignatureVerdict::Verified { key, signature, identity: None, log: None } if key == "release" && !signature.is_empty())
    );
    // Verified once, a component costs three requests: the `.sig` tag, the `.att` tag and
    // the referrers tag schema's tag (the registry was found to have no referrers API and to
    // ask for no credentials, so no `GET /v2/` probe goes before each).
    reader.attestations(&access, "shop/web", &image, &keys).await.unwrap();
    let before = registry.requests().len();
    assert!(verdict().await.unwrap().verified());
    reader.attestations(&access, "shop/web", &image, &keys).await.unwrap();
    let mut asked: Vec<String> = registry.requests().split_off(before);
    asked.sort();
    let hex = digest.trim_start_matches("sha256:");
    let expected = [
        format!("HEAD /v2/shop/web/manifests/sha256-{hex}"),
        format!("HEAD /v2/shop/web/manifests/sha256-{hex}.att"),
        format!("HEAD /v2/shop/web/manifests/sha256-{hex}.sig"),
    ];
    assert_eq!(asked, expected);
    // The signature of one image says nothing of another.
    let other_image = Digest::parse(&elsewhere).unwrap();
    assert_eq!(reader.verify(&access, "shop/web", &other_image, &keys).await.unwrap(), SignatureVerdict::Unsigned);

    let bad = Signers {
        keys: vec![TrustedKey {
            name: "broken".into(),
            pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----".into(),
            reference: None,
        }],
        ..Default::default()
    };
    let err = reader.verify(&access, "shop/web", &image, &bad).await.unwrap_err();
    assert!(matches!(err, DomainError::Validation(ref m) if m.contains("broken")), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

const SET_KEYS: &str = "mutation($e: ID!, $k: [SigningKeyInput!]) {
    updateEnvironment(id: $e, input: { signingKeys: $k }) { signingKeys { name fingerprint } } }";

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
