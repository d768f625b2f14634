//! Evidence: every promotion decision leaves a record. A record is RFC 8785 canonical JSON
//! with its sha256, chained to the previous record of the same environment by that hash,
//! and signed. Changing any record, or dropping one, breaks the chain.
//!
//! A record is signed as a DSSE envelope over an in-toto Statement v1 about it (its
//! [`statement`]: the record's hash as subject, its fields as predicate) by an asymmetric
//! key named in `key_id`, so anyone holding Gantry's public keys can check it. Records made
//! before such a key was configured carry an HS256 JWS naming their hash instead, which only
//! Gantry can check.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{DomainError, Result};
use crate::ids::{EnvironmentId, PromotionId, ReleaseId};
use crate::manifest::canonical_digest;
use crate::ports::{Page, PageRequest};

pub use crate::ids::EvidenceId;

/// The message a store gives when another writer extended the chain first; the decision is
/// retried on the new head.
pub const CHAIN_MOVED: &str = "evidence chain moved on; retry";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceRecord {
    pub id: EvidenceId,
    pub environment_id: EnvironmentId,
    pub promotion_id: Option<PromotionId>,
    pub release_id: Option<ReleaseId>,
    /// Position in the environment's chain, from 1.
    pub seq: u64,
    /// `request`, `gate_evaluation`, `approval`, `rejection`, `cancellation`, ...
    pub kind: String,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub payload: Value,
    pub previous_hash: Option<String>,
    /// `sha256:` of the canonical JSON of every field above.
    pub hash: String,
    /// With `key_id`: the base64 signature of the DSSE envelope over the record's
    /// [`statement`]. Without: a JWS (HS256) whose payload names `hash`.
    pub signature: String,
    /// The signing key's id (its JWK thumbprint), published in the evidence key set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// The in-toto Statement type, and the prefix of the predicate types of evidence records
/// (followed by the record's kind and `:v1`).
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_PREFIX: &str = "urn:gantry:evidence:";

/// The in-toto Statement a record's signature covers: the record (by its hash) is the
/// subject, its hashed fields the predicate.
pub fn statement(r: &EvidenceRecord) -> Value {
    let hex = r.hash.strip_prefix("sha256:").unwrap_or(&r.hash);
    json!({
        "_type": STATEMENT_TYPE,
        "subject": [{ "name": format!("gantry-evidence:{}/{}", r.environment_id, r.seq), "digest": { "sha256": hex } }],
        "predicateType": format!("{PREDICATE_PREFIX}{}:v1", r.kind),
        "predicate": hashed_fields(r),
    })
}

/// The bytes a record's DSSE envelope carries: its [`statement`] as RFC 8785 JSON.
pub fn statement_payload(r: &EvidenceRecord) -> Result<Vec<u8>> {
    serde_json_canonicalizer::to_vec(&statement(r)).map_err(DomainError::internal)
}

/// The last record of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

/// What a decision wants recorded; [`seal`] turns it into a chained record.
#[derive(Debug, Clone)]
pub struct EvidenceDraft {
    pub environment_id: EnvironmentId,
    pub promotion_id: Option<PromotionId>,
    pub release_id: Option<ReleaseId>,
    pub kind: &'static str,
    pub actor: String,
    pub payload: Value,
}

/// A record's signature, and the id of the key that made it (none for HS256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSignature {
    pub signature: String,
    pub key_id: Option<String>,
}

/// Signs sealed records and checks their signatures.
#[async_trait]
pub trait EvidenceSigner: Send + Sync {
    /// Signs a record whose hash is set.
    async fn sign(&self, record: &EvidenceRecord) -> Result<RecordSignature>;
    /// Whether the record's signature is valid, by the key it names, and vouches for it.
    async fn verify(&self, record: &EvidenceRecord) -> Result<bool>;
    /// A DSSE signature of `payload` by the current asymmetric key: its id and the raw
    /// signature; `None` when only HS256 is configured.
    async fn sign_envelope(&self, payload_type: &str, payload: &[u8]) -> Result<Option<(String, Vec<u8>)>>;
}

/// A key evidence was signed with, as the key set publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceKey {
    /// The JWK thumbprint.
    pub key_id: String,
    /// The public JWK.
    pub jwk: Value,
    /// When Gantry first signed with it; a key is retired when the next one is registered.
    pub registered_at: DateTime<Utc>,
}

/// The evidence keys ever used, kept so old records stay verifiable after a rotation.
#[async_trait]
pub trait EvidenceKeys: Send + Sync {
    /// Records `key` unless its id is known (the first registration's time stands).
    async fn register_evidence_key(&self, key: &EvidenceKey) -> Result<()>;
    /// Every key, oldest first.
    async fn evidence_keys(&self) -> Result<Vec<EvidenceKey>>;
}

/// The published evidence key set.
#[derive(Clone)]
pub struct EvidenceKeySet {
    keys: std::sync::Arc<dyn EvidenceKeys>,
}

impl EvidenceKeySet {
    pub fn new(keys: std::sync::Arc<dyn EvidenceKeys>) -> Self {
        Self { keys }
    }

    /// Every key evidence was signed with, as a JWKS (see [`key_set`]).
    #[tracing::instrument(skip_all, err(level = "info"))]
    pub async fn jwks(&self) -> Result<Value> {
        Ok(key_set(&self.keys.evidence_keys().await?))
    }
}

/// The evidence key set as a JWKS (RFC 7517): each key's public JWK, when Gantry first
/// signed with it (`registered`) and, for all but the newest, when the next one replaced it
/// (`retired`). Records signed by a retired key still verify under it.
pub fn key_set(keys: &[EvidenceKey]) -> Value {
    let stamp = |at: &DateTime<Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let listed: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let mut jwk = key.jwk.clone();
            jwk["kid"] = json!(key.key_id);
            jwk["registered"] = json!(stamp(&key.registered_at));
            if let Some(next) = keys.get(i + 1) {
                jwk["retired"] = json!(stamp(&next.registered_at));
            }
            jwk
        })
        .collect();
    json!({ "keys": listed })
}

/// Evidence to append to an environment's chain in the same transaction as a promotion
/// write, and the head it extends (the write fails with [`CHAIN_MOVED`] if the head moved).
pub struct EvidenceAppend<'a> {
    pub records: &'a [EvidenceRecord],
    pub head: Option<&'a ChainHead>,
}

#[async_trait]
pub trait EvidenceRepository: Send + Sync {
    async fn chain_head(&self, environment: EnvironmentId) -> Result<Option<ChainHead>>;
    /// A promotion's records, in chain order; `NotFound` when there is no such promotion.
    async fn evidence_of_promotion(&self, promotion: PromotionId) -> Result<Vec<EvidenceRecord>>;
    /// Newest first.
    async fn environment_evidence(
        &self,
        environment: EnvironmentId,
        page: &PageRequest,
    ) -> Result<Page<EvidenceRecord>>;
    /// The whole chain, oldest first.
    async fn evidence_chain(&self, environment: EnvironmentId) -> Result<Vec<EvidenceRecord>>;
    /// Up to `first` records after sequence number `after`, oldest first.
    async fn evidence_after(&self, environment: EnvironmentId, after: u64, first: usize)
    -> Result<Vec<EvidenceRecord>>;
    /// Appends records that go with no other write (a refusal) on the head they extend.
    async fn append_evidence(&self, evidence: EvidenceAppend<'_>) -> Result<()>;
}

fn hashed_fields(r: &EvidenceRecord) -> Value {
    json!({
        "id": r.id,
        "environmentId": r.environment_id,
        "promotionId": r.promotion_id,
        "releaseId": r.release_id,
        "seq": r.seq,
        "kind": r.kind,
        "actor": r.actor,
        "at": r.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "payload": r.payload,
        "previousHash": r.previous_hash,
    })
}

/// Chains drafts after `head`, hashing and signing each.
pub async fn seal(
    drafts: Vec<EvidenceDraft>,
    head: Option<&ChainHead>,
    signer: &dyn EvidenceSigner,
) -> Result<Vec<EvidenceRecord>> {
    let (mut seq, mut previous) = head.map_or((0, None), |h| (h.seq, Some(h.hash.clone())));
    let at = Utc::now();
    let mut records = Vec::with_capacity(drafts.len());
    for d in drafts {
        seq += 1;
        let mut record = EvidenceRecord {
            id: EvidenceId::new(),
            environment_id: d.environment_id,
            promotion_id: d.promotion_id,
            release_id: d.release_id,
            seq,
            kind: d.kind.to_owned(),
            actor: d.actor,
            at,
            payload: d.payload,
            previous_hash: previous.clone(),
            hash: String::new(),
            signature: String::new(),
            key_id: None,
        };
        record.hash = canonical_digest(&hashed_fields(&record))?.to_string();
        let signed = signer.sign(&record).await?;
        (record.signature, record.key_id) = (signed.signature, signed.key_id);
        previous = Some(record.hash.clone());
        records.push(record);
    }
    Ok(records)
}

/// The outcome of `verifyEvidenceChain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub valid: bool,
    pub checked: usize,
    pub first_broken: Option<EvidenceId>,
    /// The chain ends before the record its head names: its newest records are gone.
    pub truncated: bool,
}

/// Checks every record up to the chain's `head` (read before the records, so records
/// appended since are left for the next check): its hash, its signature, its link to the
/// one before, that no sequence number is missing, and that the last one is the head's.
pub async fn verify_chain(
    head: Option<&ChainHead>,
    records: &[EvidenceRecord],
    signer: &dyn EvidenceSigner,
) -> Result<ChainReport> {
    let upto = head.map_or(0, |h| h.seq);
    let records: Vec<&EvidenceRecord> = records.iter().filter(|r| r.seq <= upto || head.is_none()).collect();
    let mut previous: Option<&EvidenceRecord> = None;
    for (i, r) in records.iter().enumerate() {
        let hash_ok = canonical_digest(&hashed_fields(r))?.as_str() == r.hash;
        let link_ok = r.previous_hash.as_deref() == previous.map(|p| p.hash.as_str()) && r.seq == i as u64 + 1;
        if !(hash_ok && link_ok && signer.verify(r).await?) {
            return Ok(ChainReport { valid: false, checked: i + 1, first_broken: Some(r.id), truncated: false });
        }
        previous = Some(r);
    }
    // The head names the newest record; a chain that stops short of it (or a chain with no
    // head at all) has lost records at its end.
    let complete = match (head, previous) {
        (None, None) => true,
        (Some(h), Some(last)) => last.seq == h.seq && last.hash == h.hash,
        _ => false,
    };
    Ok(ChainReport { valid: complete, checked: records.len(), first_broken: None, truncated: !complete })
}

/// Whether an error is another writer extending the chain first.
pub fn chain_moved(err: &DomainError) -> bool {
    matches!(err, DomainError::Conflict(msg) if msg == CHAIN_MOVED)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signer for unit tests: the "signature" is the hash reversed.
    struct Mirror;
    #[async_trait]
    impl EvidenceSigner for Mirror {
        async fn sign(&self, record: &EvidenceRecord) -> Result<RecordSignature> {
            Ok(RecordSignature { signature: record.hash.chars().rev().collect(), key_id: None })
        }
        async fn verify(&self, record: &EvidenceRecord) -> Result<bool> {
            Ok(record.signature.chars().rev().collect::<String>() == record.hash)
        }
        async fn sign_envelope(&self, _: &str, _: &[u8]) -> Result<Option<(String, Vec<u8>)>> {
            Ok(None)
        }
    }

    fn draft(kind: &'static str) -> EvidenceDraft {
        EvidenceDraft {
            environment_id: EnvironmentId::new(),
            promotion_id: None,
            release_id: None,
            kind,
            actor: "alice".into(),
            payload: json!({ "n": kind }),
        }
    }

    #[tokio::test]
    async fn chains_verify_and_break_where_tampered() {
        let first = seal(vec![draft("request"), draft("gate_evaluation")], None, &Mirror).await.unwrap();
        let head = ChainHead { seq: 2, hash: first[1].hash.clone() };
        let more = seal(vec![draft("approval")], Some(&head), &Mirror).await.unwrap();
        let chain: Vec<_> = first.into_iter().chain(more).collect();
        assert_eq!(chain[2].previous_hash.as_deref(), Some(chain[1].hash.as_str()));
        let top = ChainHead { seq: 3, hash: chain[2].hash.clone() };
        let head = Some(&top);
        assert_eq!(
            verify_chain(head, &chain, &Mirror).await.unwrap(),
            ChainReport { valid: true, checked: 3, first_broken: None, truncated: false }
        );

        let mut tampered = chain.clone();
        tampered[1].actor = "mallory".into();
        let report = verify_chain(head, &tampered, &Mirror).await.unwrap();
        assert_eq!((report.valid, report.first_broken), (false, Some(chain[1].id)));

        let mut dropped = chain.clone();
        dropped.remove(1);
        assert_eq!(verify_chain(head, &dropped, &Mirror).await.unwrap().first_broken, Some(chain[2].id));

        let mut resigned = chain.clone();
        resigned[0].signature = "forged".into();
        assert_eq!(verify_chain(head, &resigned, &Mirror).await.unwrap().first_broken, Some(chain[0].id));
    }

    #[tokio::test]
    async fn a_chain_cut_short_of_its_head_is_truncated() {
        let chain =
            seal(vec![draft("request"), draft("gate_evaluation"), draft("approval")], None, &Mirror).await.unwrap();
        let top = ChainHead { seq: 3, hash: chain[2].hash.clone() };
        let report = verify_chain(Some(&top), &chain[..2], &Mirror).await.unwrap();
        assert_eq!(report, ChainReport { valid: false, checked: 2, first_broken: None, truncated: true });
        let report = verify_chain(Some(&top), &[], &Mirror).await.unwrap();
        assert!(!report.valid && report.truncated, "every record gone");
        let report = verify_chain(None, &chain, &Mirror).await.unwrap();
        assert!(!report.valid && report.truncated, "records without a head");
        let other = ChainHead { seq: 3, hash: "sha256:other".into() };
        assert!(!verify_chain(Some(&other), &chain, &Mirror).await.unwrap().valid, "the head names another record");
        // Records appended after the head was read are left for the next check.
        let earlier = ChainHead { seq: 2, hash: chain[1].hash.clone() };
        assert_eq!(verify_chain(Some(&earlier), &chain, &Mirror).await.unwrap().checked, 2);
        assert!(verify_chain(None, &[], &Mirror).await.unwrap().valid, "no decisions yet");
    }
}
