//! Cosign signatures read from a real registry (CNCF distribution) and judged by digest.
//! The keys and signatures are made, and pushed as cosign stores them, by an independent
//! implementation: Python's `cryptography` and the registry's own HTTP API
//! (`tests/fixtures/cosign-sign.py`), so the format is not only Gantry's reading of it.

use std::path::Path;
use std::process::Command;

use gantry_domain::DomainError;
use gantry_domain::integrations::RegistryAccess;
use gantry_domain::signatures::{ImageSignatures, SignatureVerdict, TrustedKey};
use gantry_domain::values::Digest;
use gantry_tests::registry::{Registry, free_port};

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
