//! Evidence: every promotion decision leaves a record. A record is RFC 8785 canonical JSON
//! with its sha256, chained to the previous record of the same environment by that hash,
//! and signed as a JWS. Changing any record, or dropping one, breaks the chain.

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
    /// A JWS whose payload names `hash`.
    pub signature: String,
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

/// Signs and checks record hashes.
pub trait EvidenceSigner: Send + Sync {
    fn sign(&self, record: &EvidenceId, hash: &str) -> Result<String>;
    /// Whether `signature` is valid and vouches for `hash`.
    fn verify(&self, signature: &str, hash: &str) -> bool;
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
    async fn evidence_of_promotion(&self, promotion: PromotionId) -> Result<Vec<EvidenceRecord>>;
    /// Newest first.
    async fn environment_evidence(
        &self,
        environment: EnvironmentId,
        page: &PageRequest,
    ) -> Result<Page<EvidenceRecord>>;
    /// The whole chain, oldest first.
    async fn evidence_chain(&self, environment: EnvironmentId) -> Result<Vec<EvidenceRecord>>;
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
pub fn seal(
    drafts: Vec<EvidenceDraft>,
    head: Option<&ChainHead>,
    signer: &dyn EvidenceSigner,
) -> Result<Vec<EvidenceRecord>> {
    let (mut seq, mut previous) = head.map_or((0, None), |h| (h.seq, Some(h.hash.clone())));
    let at = Utc::now();
    drafts
        .into_iter()
        .map(|d| {
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
            };
            record.hash = canonical_digest(&hashed_fields(&record))?.to_string();
            record.signature = signer.sign(&record.id, &record.hash)?;
            previous = Some(record.hash.clone());
            Ok(record)
        })
        .collect()
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
pub fn verify_chain(
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
        if !(hash_ok && link_ok && signer.verify(&r.signature, &r.hash)) {
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
    impl EvidenceSigner for Mirror {
        fn sign(&self, _: &EvidenceId, hash: &str) -> Result<String> {
            Ok(hash.chars().rev().collect())
        }
        fn verify(&self, signature: &str, hash: &str) -> bool {
            signature.chars().rev().collect::<String>() == hash
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

    #[test]
    fn chains_verify_and_break_where_tampered() {
        let first = seal(vec![draft("request"), draft("gate_evaluation")], None, &Mirror).unwrap();
        let head = ChainHead { seq: 2, hash: first[1].hash.clone() };
        let more = seal(vec![draft("approval")], Some(&head), &Mirror).unwrap();
        let chain: Vec<_> = first.into_iter().chain(more).collect();
        assert_eq!(chain[2].previous_hash.as_deref(), Some(chain[1].hash.as_str()));
        let top = ChainHead { seq: 3, hash: chain[2].hash.clone() };
        let head = Some(&top);
        assert_eq!(
            verify_chain(head, &chain, &Mirror).unwrap(),
            ChainReport { valid: true, checked: 3, first_broken: None, truncated: false }
        );

        let mut tampered = chain.clone();
        tampered[1].actor = "mallory".into();
        let report = verify_chain(head, &tampered, &Mirror).unwrap();
        assert_eq!((report.valid, report.first_broken), (false, Some(chain[1].id)));

        let mut dropped = chain.clone();
        dropped.remove(1);
        assert_eq!(verify_chain(head, &dropped, &Mirror).unwrap().first_broken, Some(chain[2].id));

        let mut resigned = chain.clone();
        resigned[0].signature = "forged".into();
        assert_eq!(verify_chain(head, &resigned, &Mirror).unwrap().first_broken, Some(chain[0].id));
    }

    #[test]
    fn a_chain_cut_short_of_its_head_is_truncated() {
        let chain = seal(vec![draft("request"), draft("gate_evaluation"), draft("approval")], None, &Mirror).unwrap();
        let top = ChainHead { seq: 3, hash: chain[2].hash.clone() };
        let report = verify_chain(Some(&top), &chain[..2], &Mirror).unwrap();
        assert_eq!(report, ChainReport { valid: false, checked: 2, first_broken: None, truncated: true });
        let report = verify_chain(Some(&top), &[], &Mirror).unwrap();
        assert!(!report.valid && report.truncated, "every record gone");
        let report = verify_chain(None, &chain, &Mirror).unwrap();
        assert!(!report.valid && report.truncated, "records without a head");
        let other = ChainHead { seq: 3, hash: "sha256:other".into() };
        assert!(!verify_chain(Some(&other), &chain, &Mirror).unwrap().valid, "the head names another record");
        // Records appended after the head was read are left for the next check.
        let earlier = ChainHead { seq: 2, hash: chain[1].hash.clone() };
        assert_eq!(verify_chain(Some(&earlier), &chain, &Mirror).unwrap().checked, 2);
        assert!(verify_chain(None, &[], &Mirror).unwrap().valid, "no decisions yet");
    }
}
