//! Bundles made here as Gantry exports them, then each way one can fail to stand.

use super::*;
use crate::SigningKey;

const ENV: &str = "0b8d6a3e-1111-4222-8333-944455556666";

struct Signer {
    key: SigningKey,
    kid: String,
}

fn signer() -> Signer {
    let (key, _) = SigningKey::generate();
    let kid = jwk::thumbprint(&key.public());
    Signer { key, kid }
}

fn sign(s: &Signer, payload_type: &str, payload: &[u8]) -> Value {
    envelope(payload_type, payload, &s.kid, &s.key.sign(&dsse::pae(payload_type, payload)))
}

/// A chain of `n` records, record `i` signed by `by(i)` (HS256 when None), and its head.
fn chain_of(n: u64, by: &dyn Fn(u64) -> Option<&'static Signer>, head_by: &Signer) -> Value {
    let mut previous: Option<String> = None;
    let mut records = Vec::new();
    for seq in 1..=n {
        let predicate = json!({ "id": format!("r{seq}"), "environmentId": ENV, "promotionId": null, "releaseId": null,
            "seq": seq, "kind": "request", "actor": "alice", "at": "2026-12-05T00:00:00.000000Z",
            "payload": { "n": seq }, "previousHash": previous });
        let hash = canonical_hash(&predicate).unwrap();
        let statement = json!({ "_type": "https://in-toto.io/Statement/v1",
            "subject": [{ "name": format!("gantry-evidence:{ENV}/{seq}"), "digest": { "sha256": &hash[7..] } }],
            "predicateType": "urn:gantry:evidence:request:v1", "predicate": predicate });
        let payload = serde_json_canonicalizer::to_vec(&statement).unwrap();
        records.push(match by(seq) {
            Some(s) => sign(s, dsse::IN_TOTO, &payload),
            None => json!({ "payloadType": dsse::IN_TOTO, "payload": STANDARD.encode(&payload),
                "signatures": [{ "keyid": "", "sig": "eyJhbGciOiJIUzI1NiJ9.e30.c2ln" }] }),
        });
        previous = Some(hash);
    }
    let head = json!({ "environmentId": ENV, "seq": n, "hash": previous });
    json!({ "environmentId": ENV, "records": records, "head": sign(head_by, HEAD_TYPE, head.to_string().as_bytes()) })
}

fn bundle(chain: Value, manifest: Option<Value>, keys: &[&Signer]) -> Value {
    let jwks = json!({ "keys": keys.iter().map(|s| jwk::to_jwk(&s.key.public())).collect::<Vec<_>>() });
    json!({ "mediaType": MEDIA_TYPE, "chains": [chain], "manifests": manifest.into_iter().collect::<Vec<_>>(), "keys": jwks })
}

fn check(bundle: &Value) -> BundleCheck {
    verify(bundle, &bundle["keys"])
}

fn broken_at(bundle: &Value) -> Option<u64> {
    check(bundle).chains[0].first_broken.as_ref().map(|(seq, _)| *seq)
}

fn signed_manifest(s: &Signer) -> Value {
    let mut manifest = json!({ "release_id": "web-1", "version": "1.0.0", "services": [] });
    manifest["manifest_digest"] = json!(canonical_hash(&manifest).unwrap());
    let document = json!({ "manifest": manifest });
    json!({ "releaseId": "r-1", "envelope": sign(s, MANIFEST_TYPE, &serde_json_canonicalizer::to_vec(&document).unwrap()) })
}

static KEYS: std::sync::LazyLock<(Signer, Signer)> = std::sync::LazyLock::new(|| (signer(), signer()));

#[test]
fn a_chain_that_crosses_from_hs256_and_rotates_keys_verifies() {
    let (a, b) = (&KEYS.0, &KEYS.1);
    // Records 1-2 HS256, 3-4 key A, 5-6 key B (rotated), the head signed by B.
    let by = |seq: u64| match seq {
        1 | 2 => None,
        3 | 4 => Some(&KEYS.0),
        _ => Some(&KEYS.1),
    };
    let good = bundle(chain_of(6, &by, b), Some(signed_manifest(b)), &[a, b]);
    let report = check(&good);
    assert!(report.valid, "{report:?}");
    assert_eq!((report.chains[0].verified, report.chains[0].legacy, report.chains[0].complete), (4, 2, true));
    assert_eq!(report.manifests, [("r-1".to_owned(), true)]);
    // Without A in the key set, A's records do not verify.
    assert_eq!(
        verify(&good, &json!({ "keys": [jwk::to_jwk(&b.key.public())] })).chains[0].first_broken.as_ref().map(|b| b.0),
        Some(3)
    );
}

#[test]
fn every_tampering_breaks_the_chain_where_it_happened() {
    let (a, b) = (&KEYS.0, &KEYS.1);
    let good = bundle(chain_of(4, &|_| Some(&KEYS.0), a), Some(signed_manifest(a)), &[a]);
    assert!(check(&good).valid);
    let records = |b: &mut Value| b["chains"][0]["records"].as_array_mut().unwrap().clone();
    let with = |f: &dyn Fn(&mut Vec<Value>)| {
        let mut edited = good.clone();
        let mut r = records(&mut edited);
        f(&mut r);
        edited["chains"][0]["records"] = json!(r);
        edited
    };
    // Edited: the payload changed after signing.
    let edited = with(&|r| {
        let mut statement: Value =
            serde_json::from_slice(&STANDARD.decode(r[1]["payload"].as_str().unwrap()).unwrap()).unwrap();
        statement["predicate"]["actor"] = json!("mallory");
        r[1]["payload"] = json!(STANDARD.encode(serde_json_canonicalizer::to_vec(&statement).unwrap()));
    });
    assert_eq!(broken_at(&edited), Some(2));
    assert_eq!(
        broken_at(&with(&|r| {
            r.remove(1);
        })),
        Some(2),
        "removed"
    );
    assert_eq!(broken_at(&with(&|r| r.swap(1, 2))), Some(2), "reordered");
    assert_eq!(
        broken_at(&with(&|r| {
            let again = r[1].clone();
            r.insert(2, again);
        })),
        Some(3),
        "duplicated"
    );
    // Signed by a key not in the set, or naming the wrong key.
    let stranger = signer();
    let foreign = with(&|r| {
        let payload = STANDARD.decode(r[2]["payload"].as_str().unwrap()).unwrap();
        r[2] = sign(&stranger, dsse::IN_TOTO, &payload);
    });
    assert!(check(&foreign).problems[0].contains("is not in the key set"), "{:?}", check(&foreign));
    let mut wrong_kid = bundle(chain_of(4, &|_| Some(&KEYS.0), a), None, &[a, b]);
    wrong_kid["chains"][0]["records"][0]["signatures"][0]["keyid"] = json!(b.kid);
    assert_eq!(broken_at(&wrong_kid), Some(1));
    // An HS256 record after the crossing.
    let downgraded = bundle(chain_of(3, &|seq| (seq != 3).then_some(&KEYS.0), a), None, &[a]);
    assert!(check(&downgraded).problems[0].contains("HS256 record after"), "{:?}", check(&downgraded));
    // Cut at the head: the last record gone, the head kept, or a head made up.
    let cut = with(&|r| {
        r.pop();
    });
    let report = check(&cut);
    assert!(!report.valid && !report.chains[0].complete && report.chains[0].first_broken.is_none(), "{report:?}");
    let mut forged_head = cut.clone();
    forged_head["chains"][0]["head"]["payload"] =
        json!(STANDARD.encode(json!({ "environmentId": ENV, "seq": 3, "hash": "sha256:x" }).to_string()));
    assert!(
        check(&forged_head).problems[0].contains("the head: its signature does not verify"),
        "{:?}",
        check(&forged_head)
    );
    // A manifest altered after signing, re-signed by nobody trusted or not at all.
    let mut altered = good.clone();
    let mut document: Value = serde_json::from_slice(
        &STANDARD.decode(good["manifests"][0]["envelope"]["payload"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    document["manifest"]["version"] = json!("6.6.6");
    let bytes = serde_json_canonicalizer::to_vec(&document).unwrap();
    altered["manifests"][0]["envelope"]["payload"] = json!(STANDARD.encode(&bytes));
    assert!(check(&altered).problems[0].contains("signature does not verify"), "{:?}", check(&altered));
    altered["manifests"][0]["envelope"] = sign(a, MANIFEST_TYPE, &bytes);
    assert!(check(&altered).problems[0].contains("altered after signing"), "{:?}", check(&altered));
    assert!(!check(&json!({ "mediaType": "other" })).valid);
}
