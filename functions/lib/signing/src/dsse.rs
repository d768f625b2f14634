//! In-toto attestations as cosign stores them: the attestations of the image at
//! `sha256:<hex>` sit in the same repository under the tag `sha256-<hex>.att`, as an OCI
//! image manifest whose layers are DSSE envelopes (`application/vnd.dsse.envelope.v1+json`).
//! Each envelope's payload is an in-toto Statement, signed over DSSE's pre-authentication
//! encoding (PAE). Nothing here fetches; the registry adapter does.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;

use crate::PublicKey;

/// The media type of a DSSE envelope layer.
pub const ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The payload type of an in-toto Statement.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// The Statement types read: v1 and cosign's v0.1.
const STATEMENT_TYPES: [&str; 2] = ["https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"];
/// An envelope larger than this (an SBOM of many thousand packages) is not read.
pub const MAX_ENVELOPE: usize = 8 * 1024 * 1024;

/// The tag cosign stores the attestations of the image at `digest` (`sha256:<hex>`) under.
pub fn attestation_tag(digest: &str) -> Option<String> {
    crate::cosign::signature_tag(digest).map(|sig| sig.replace(".sig", ".att"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload_type: String,
    payload: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

/// A verified in-toto Statement about the image.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub predicate_type: String,
    pub predicate: Value,
}

/// Why a stored attestation does not stand for the image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it is not a DSSE envelope")]
    NotAnEnvelope,
    #[error("its payload is not an in-toto statement")]
    NotAStatement,
    #[error("no trusted key verifies it")]
    DoesNotVerify,
    #[error("it is about another image")]
    OtherImage,
}

/// DSSE's pre-authentication encoding of a payload.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let head = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len());
    [head.as_bytes(), payload].concat()
}

/// An envelope opened: its payload type, its payload, and its signatures (decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signatures: Vec<Vec<u8>>,
}

impl Opened {
    /// What its signatures sign: the PAE of its payload.
    pub fn signed(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }
}

/// Opens an envelope of an in-toto Statement, without judging its signatures.
pub fn open(envelope: &[u8]) -> Result<Opened, Refusal> {
    if envelope.len() > MAX_ENVELOPE {
        return Err(Refusal::NotAnEnvelope);
    }
    let envelope: Envelope = serde_json::from_slice(envelope).map_err(|_| Refusal::NotAnEnvelope)?;
    if envelope.payload_type != IN_TOTO {
        return Err(Refusal::NotAStatement);
    }
    let payload = STANDARD.decode(envelope.payload.trim()).map_err(|_| Refusal::NotAnEnvelope)?;
    let signatures = envelope.signatures.iter().filter_map(|s| STANDARD.decode(s.sig.trim()).ok()).collect();
    Ok(Opened { payload_type: envelope.payload_type, payload, signatures })
}

/// Checks one envelope about the image at `digest`: a signature must verify its PAE under
/// one of `keys` (named), and its Statement must name `digest` among its subjects. The
/// name of the key and the Statement.
pub fn check<'k>(
    envelope: &[u8],
    keys: &'k [(String, PublicKey)],
    digest: &str,
) -> Result<(&'k str, Statement), Refusal> {
    let opened = open(envelope)?;
    let signed = opened.signed();
    let key = opened
        .signatures
        .iter()
        .find_map(|sig| keys.iter().find(|(_, key)| key.verify(&signed, sig)))
        .map(|(name, _)| name.as_str())
        .ok_or(Refusal::DoesNotVerify)?;
    Ok((key, statement(&opened.payload, digest)?))
}

/// The Statement a verified payload holds, when it is one about the image at `digest`.
pub fn statement(payload: &[u8], digest: &str) -> Result<Statement, Refusal> {
    let statement: Value = serde_json::from_slice(payload).map_err(|_| Refusal::NotAStatement)?;
    let kind = statement.get("_type").and_then(Value::as_str).unwrap_or_default();
    let predicate_type = statement.get("predicateType").and_then(Value::as_str);
    let (true, Some(predicate_type)) = (STATEMENT_TYPES.contains(&kind), predicate_type) else {
        return Err(Refusal::NotAStatement);
    };
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    let subjects = statement.get("subject").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let about = subjects.iter().any(|s| s.pointer("/digest/sha256").and_then(Value::as_str) == Some(hex));
    if !about {
        return Err(Refusal::OtherImage);
    }
    let predicate = statement.get("predicate").cloned().unwrap_or(Value::Null);
    Ok(Statement { predicate_type: predicate_type.to_owned(), predicate })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn key() -> (EcdsaKeyPair, PublicKey) {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, doc.as_ref()).unwrap();
        let spki = [&crate::P256_SPKI_PREFIX[..], pair.public_key().as_ref()].concat();
        (pair, PublicKey::p256(&spki).unwrap())
    }

    fn envelope(pair: &EcdsaKeyPair, statement: &Value) -> Vec<u8> {
        let payload = serde_json::to_vec(statement).unwrap();
        let sig = pair.sign(&SystemRandom::new(), &pae(IN_TOTO, &payload)).unwrap();
        serde_json::to_vec(&json!({ "payloadType": IN_TOTO, "payload": STANDARD.encode(&payload),
            "signatures": [{ "keyid": "", "sig": STANDARD.encode(sig.as_ref()) }] }))
        .unwrap()
    }

    fn statement(digest: &str) -> Value {
        json!({ "_type": "https://in-toto.io/Statement/v1", "predicateType": "https://slsa.dev/provenance/v1",
            "subject": [{ "name": "x", "digest": { "sha256": digest.trim_start_matches("sha256:") } }],
            "predicate": { "runDetails": { "builder": { "id": "b" } } } })
    }

    #[test]
    fn pae_is_as_the_dsse_spec_gives_it() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn an_envelope_stands_for_the_image_under_a_trusted_key() {
        let (pair, public) = key();
        let (_, other) = key();
        let keys = [("other".to_owned(), other), ("release".to_owned(), public)];
        let good = envelope(&pair, &statement(DIGEST));
        let (name, found) = check(&good, &keys, DIGEST).unwrap();
        assert_eq!((name, found.predicate_type.as_str()), ("release", "https://slsa.dev/provenance/v1"));
        assert_eq!(found.predicate["runDetails"]["builder"]["id"], "b");
        assert_eq!(check(&good, &keys[..1], DIGEST), Err(Refusal::DoesNotVerify));
        let elsewhere = envelope(&pair, &statement(&DIGEST.replace("0123", "3210")));
        assert_eq!(check(&elsewhere, &keys, DIGEST), Err(Refusal::OtherImage));
        let mut tampered: Value = serde_json::from_slice(&good).unwrap();
        let mut changed = statement(DIGEST);
        changed["predicate"]["runDetails"]["builder"]["id"] = json!("evil");
        tampered["payload"] = json!(STANDARD.encode(serde_json::to_vec(&changed).unwrap()));
        assert_eq!(check(&serde_json::to_vec(&tampered).unwrap(), &keys, DIGEST), Err(Refusal::DoesNotVerify));
        assert_eq!(check(b"{}", &keys, DIGEST), Err(Refusal::NotAnEnvelope));
        let untyped = envelope(&pair, &json!({ "_type": "something else" }));
        assert_eq!(check(&untyped, &keys, DIGEST), Err(Refusal::NotAStatement));
    }
}
