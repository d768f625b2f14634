//! Evidence bundles: an environment's chain as DSSE envelopes over each record's in-toto
//! Statement, its head signed at export, the release manifests in scope and the public
//! keys, in one JSON document anyone can check offline (`gantry_signing::bundle`, which
//! `gantry evidence verify` and the server both run).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gantry_signing::bundle::{HEAD_TYPE, MEDIA_TYPE, envelope};
use gantry_signing::dsse::IN_TOTO;
use serde_json::{Value, json};

use crate::error::{DomainError, Result};
use crate::evidence::{ChainHead, EvidenceRecord, EvidenceSigner, statement_payload};
use crate::ids::EnvironmentId;

/// A record as its DSSE envelope: signed by the key it names, or (before the crossing) its
/// HS256 JWS under an empty `keyid`.
pub fn record_envelope(r: &EvidenceRecord) -> Result<Value> {
    let payload = statement_payload(r)?;
    Ok(match &r.key_id {
        Some(key_id) => {
            let signature = STANDARD
                .decode(&r.signature)
                .map_err(|_| DomainError::internal(format!("evidence record {} has a malformed signature", r.id)))?;
            envelope(IN_TOTO, &payload, key_id, &signature)
        }
        None => json!({ "payloadType": IN_TOTO, "payload": STANDARD.encode(&payload),
            "signatures": [{ "keyid": "", "sig": r.signature }] }),
    })
}

/// The head of `environment`'s chain, signed now by the current key; `None` when only
/// HS256 is configured (a bundle without a signed head cannot show it is complete).
pub async fn signed_head(
    environment: EnvironmentId,
    head: Option<&ChainHead>,
    signer: &dyn EvidenceSigner,
) -> Result<Option<Value>> {
    let body = json!({ "environmentId": environment, "seq": head.map_or(0, |h| h.seq), "hash": head.map(|h| &h.hash),
        "exportedAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true) });
    let payload = serde_json_canonicalizer::to_vec(&body).map_err(DomainError::internal)?;
    Ok(signer
        .sign_envelope(HEAD_TYPE, &payload)
        .await?
        .map(|(key_id, sig)| envelope(HEAD_TYPE, &payload, &key_id, &sig)))
}

/// One chain of a bundle: the records given (a page of it, or all) and its signed head.
pub fn chain(environment: EnvironmentId, records: &[EvidenceRecord], head: Option<Value>) -> Result<Value> {
    let envelopes = records.iter().map(record_envelope).collect::<Result<Vec<_>>>()?;
    Ok(json!({ "environmentId": environment, "records": envelopes, "head": head }))
}

/// The bundle: what it is about, its chains and manifests, and the key set.
pub fn bundle(scope: Value, chains: Vec<Value>, manifests: Vec<Value>, keys: Value) -> Value {
    json!({ "mediaType": MEDIA_TYPE, "scope": scope,
        "exportedAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "chains": chains, "manifests": manifests, "keys": keys })
}
