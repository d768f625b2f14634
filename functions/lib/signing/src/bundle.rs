//! Evidence bundles, checked offline: what `gantry evidence verify` and the server both run.
//!
//! A bundle (`application/vnd.gantry.evidence-bundle.v1+json`) holds, for each environment
//! in scope, its whole chain of records, each a DSSE envelope over an in-toto Statement v1
//! whose subject is the record's hash and whose predicate is the record; the chain's head,
//! signed when it was exported; the release manifests in scope, each a DSSE envelope; and
//! the public keys (a JWKS). A record made before an asymmetric key was configured carries
//! an HS256 JWS (`keyid` empty) that only Gantry can check: it is counted as linked, not as
//! verified, and none may follow the first asymmetrically signed record.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::{PublicKey, dsse, jwk};

pub const MEDIA_TYPE: &str = "application/vnd.gantry.evidence-bundle.v1+json";
/// The payload type of a chain head's envelope.
pub const HEAD_TYPE: &str = "application/vnd.gantry.evidence-head.v1+json";
/// The payload type of a release manifest's envelope.
pub const MANIFEST_TYPE: &str = "application/vnd.gantry.release-manifest.v1+json";

/// What one chain amounts to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainCheck {
    pub environment_id: String,
    pub records: usize,
    /// Records whose signature verified under a key of the set.
    pub verified: usize,
    /// HS256 records before the crossing: linked, their signatures Gantry's to check.
    pub legacy: usize,
    /// The chain runs from record 1 to its signed head.
    pub complete: bool,
    /// The first record that does not stand (its sequence number), and why.
    pub first_broken: Option<(u64, String)>,
}

/// What a bundle amounts to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleCheck {
    pub valid: bool,
    pub chains: Vec<ChainCheck>,
    /// Each manifest's release id and whether its signature and digest hold.
    pub manifests: Vec<(String, bool)>,
    pub problems: Vec<String>,
}

/// The keys of a JWKS by `kid`.
pub fn key_set(jwks: &Value) -> HashMap<String, PublicKey> {
    let keys = jwks.get("keys").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    keys.iter().filter_map(|k| Some((k.get("kid")?.as_str()?.to_owned(), jwk::from_jwk(k).ok()?))).collect()
}

/// A DSSE envelope of `payload` signed by `key_id` with `signature`.
pub fn envelope(payload_type: &str, payload: &[u8], key_id: &str, signature: &[u8]) -> Value {
    json!({ "payloadType": payload_type, "payload": STANDARD.encode(payload),
        "signatures": [{ "keyid": key_id, "sig": STANDARD.encode(signature) }] })
}

/// An envelope's payload type, payload and signatures (`keyid`, raw bytes or the text of a
/// JWS).
struct Opened {
    payload_type: String,
    payload: Vec<u8>,
    signatures: Vec<(String, String)>,
}

fn open(envelope: &Value) -> Option<Opened> {
    let payload = STANDARD.decode(envelope.get("payload")?.as_str()?).ok()?;
    let signatures = envelope
        .get("signatures")?
        .as_array()?
        .iter()
        .filter_map(|s| {
            Some((s.get("keyid").and_then(Value::as_str).unwrap_or("").to_owned(), s.get("sig")?.as_str()?.to_owned()))
        })
        .collect();
    Some(Opened { payload_type: envelope.get("payloadType")?.as_str()?.to_owned(), payload, signatures })
}

/// Whether a signature of the envelope verifies under the key its `keyid` names.
fn signed(opened: &Opened, keys: &HashMap<String, PublicKey>) -> Result<(), String> {
    let (key_id, sig) = opened.signatures.first().ok_or("it carries no signature")?;
    let key = keys.get(key_id).ok_or_else(|| format!("its key {key_id:?} is not in the key set"))?;
    let sig = STANDARD.decode(sig).map_err(|_| "its signature is not base64".to_owned())?;
    if key.verify(&dsse::pae(&opened.payload_type, &opened.payload), &sig) {
        Ok(())
    } else {
        Err(format!("its signature does not verify under key {key_id}"))
    }
}

/// `sha256:<hex>` of the RFC 8785 form of `value`.
pub fn canonical_hash(value: &Value) -> Option<String> {
    let canonical = serde_json_canonicalizer::to_vec(value).ok()?;
    Some(format!("sha256:{}", hex::encode(Sha256::digest(canonical))))
}

/// Checks a bundle under `keys` (the bundle's own, or a JWKS fetched apart from it).
pub fn verify(bundle: &Value, keys: &Value) -> BundleCheck {
    let keys = key_set(keys);
    let mut check = BundleCheck::default();
    if bundle.get("mediaType").and_then(Value::as_str) != Some(MEDIA_TYPE) {
        check.problems.push(format!("it is not a {MEDIA_TYPE}"));
        return check;
    }
    let chains = bundle.get("chains").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    check.chains = chains.iter().map(|c| chain(c, &keys)).collect();
    let manifests = bundle.get("manifests").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for m in manifests {
        let release = m.get("releaseId").and_then(Value::as_str).unwrap_or_default().to_owned();
        match manifest(m.get("envelope").unwrap_or(&Value::Null), &keys) {
            Ok(()) => check.manifests.push((release, true)),
            Err(why) => {
                check.problems.push(format!("the manifest of release {release}: {why}"));
                check.manifests.push((release, false));
            }
        }
    }
    for c in &check.chains {
        if let Some((seq, why)) = &c.first_broken {
            check.problems.push(format!("environment {}: record {seq}: {why}", c.environment_id));
        } else if !c.complete {
            check.problems.push(format!("environment {}: the chain does not reach its signed head", c.environment_id));
        }
    }
    check.valid = check.problems.is_empty() && !check.chains.is_empty();
    check
}

/// One chain: each record's statement, hash, place and signature, then the signed head.
fn chain(c: &Value, keys: &HashMap<String, PublicKey>) -> ChainCheck {
    let environment = c.get("environmentId").and_then(Value::as_str).unwrap_or_default();
    let records = c.get("records").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut check = ChainCheck { environment_id: environment.to_owned(), records: records.len(), ..Default::default() };
    let mut previous: Option<String> = None;
    let mut crossed = false;
    for (i, r) in records.iter().enumerate() {
        let seq = i as u64 + 1;
        match record(r, environment, seq, previous.as_deref(), crossed, keys) {
            Ok((hash, asymmetric)) => {
                crossed |= asymmetric;
                if asymmetric {
                    check.verified += 1;
                } else {
                    check.legacy += 1;
                }
                previous = Some(hash);
            }
            Err(why) => {
                check.first_broken = Some((seq, why));
                return check;
            }
        }
    }
    match head(c.get("head").unwrap_or(&Value::Null), environment, keys) {
        Ok((seq, hash)) => check.complete = seq == records.len() as u64 && previous.as_deref() == Some(hash.as_str()),
        Err(why) => check.first_broken = Some((records.len() as u64 + 1, format!("the head: {why}"))),
    }
    check
}

/// One record at `seq`: its hash and whether an asymmetric key signed it; why not, else.
fn record(
    r: &Value,
    environment: &str,
    seq: u64,
    previous: Option<&str>,
    crossed: bool,
    keys: &HashMap<String, PublicKey>,
) -> Result<(String, bool), String> {
    let opened = open(r).ok_or("it is not a DSSE envelope")?;
    if opened.payload_type != dsse::IN_TOTO {
        return Err("it is not an in-toto statement".into());
    }
    let statement: Value = serde_json::from_slice(&opened.payload).map_err(|_| "its statement does not parse")?;
    let predicate = statement.get("predicate").ok_or("its statement has no predicate")?;
    let hash = canonical_hash(predicate).ok_or("its predicate does not canonicalize")?;
    let subject = statement.pointer("/subject/0/digest/sha256").and_then(Value::as_str).unwrap_or_default();
    if hash.strip_prefix("sha256:") != Some(subject) {
        return Err("its statement's subject is not the hash of its predicate".into());
    }
    if predicate.get("environmentId").and_then(Value::as_str) != Some(environment) {
        return Err("it belongs to another environment".into());
    }
    if predicate.get("seq").and_then(Value::as_u64) != Some(seq) {
        return Err("it is out of place (removed, repeated or reordered records)".into());
    }
    if predicate.get("previousHash").and_then(Value::as_str) != previous {
        return Err("it does not link to the record before it".into());
    }
    let asymmetric = opened.signatures.first().is_some_and(|(key_id, _)| !key_id.is_empty());
    if asymmetric {
        signed(&opened, keys)?;
    } else if crossed {
        return Err("an HS256 record after the first asymmetrically signed one".into());
    }
    Ok((hash, asymmetric))
}

/// The signed head: its sequence number and hash.
fn head(h: &Value, environment: &str, keys: &HashMap<String, PublicKey>) -> Result<(u64, String), String> {
    let opened = open(h).ok_or("it is missing or not a DSSE envelope")?;
    if opened.payload_type != HEAD_TYPE {
        return Err("it is not a chain head".into());
    }
    signed(&opened, keys)?;
    let head: Value = serde_json::from_slice(&opened.payload).map_err(|_| "it does not parse")?;
    if head.get("environmentId").and_then(Value::as_str) != Some(environment) {
        return Err("it is another environment's".into());
    }
    let seq = head.get("seq").and_then(Value::as_u64).ok_or("it names no record")?;
    let hash = head.get("hash").and_then(Value::as_str).ok_or("it names no hash")?;
    Ok((seq, hash.to_owned()))
}

/// A manifest's envelope: signed, and its `manifest_digest` that of the rest of it.
fn manifest(envelope: &Value, keys: &HashMap<String, PublicKey>) -> Result<(), String> {
    let opened = open(envelope).ok_or("it is not a DSSE envelope")?;
    if opened.payload_type != MANIFEST_TYPE {
        return Err("it is not a release manifest".into());
    }
    signed(&opened, keys)?;
    let document: Value = serde_json::from_slice(&opened.payload).map_err(|_| "it does not parse")?;
    manifest_digest_holds(&document)
}

/// Whether `{"manifest": {...}}`'s `manifest_digest` is the sha256 of the RFC 8785 form of
/// the manifest without it.
pub fn manifest_digest_holds(document: &Value) -> Result<(), String> {
    let mut manifest = document.get("manifest").cloned().ok_or("it holds no manifest")?;
    let stated = manifest
        .as_object_mut()
        .and_then(|m| m.remove("manifest_digest"))
        .and_then(|d| d.as_str().map(str::to_owned))
        .ok_or("it states no manifest_digest")?;
    if canonical_hash(&manifest).as_deref() == Some(stated.as_str()) {
        Ok(())
    } else {
        Err("its manifest_digest is not the digest of its content (altered after signing)".into())
    }
}

#[cfg(test)]
#[path = "bundle_tests.rs"]
mod tests;
