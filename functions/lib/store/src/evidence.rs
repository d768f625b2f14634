//! Evidence chains: one partition per environment, ordered by sequence number, with a head
//! item that every append moves under a condition, so two decisions can never take the
//! same place in the chain. The head also names the environment's active promotion: the
//! one-active-promotion lock moves in the writes that move the head.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use gantry_domain::evidence::{CHAIN_MOVED, ChainHead, EvidenceKey, EvidenceKeys, EvidenceRecord, EvidenceRepository};
use gantry_domain::ports::{Page, PageRequest};
use gantry_domain::promotions::{EvidenceAppend, PromotionId};
use gantry_domain::values::EnvironmentId;
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::codec::{from_items, sdk, to_item};
use crate::keys::{self, GSI1, PK, SK, s};
use crate::{DynamoRepository, Tx, built};

/// What a write does to the environment's one active promotion. The chain head names it:
/// every decision of a promotion moves the head anyway, so the lock costs no item of its own.
#[derive(Clone, Copy)]
pub(crate) enum Lock {
    /// Leaves it as it is.
    Keep,
    /// Takes it for the promotion, unless another holds it.
    Take(EnvironmentId, PromotionId),
    /// Gives it up (a head that names none, as one from before the head held the lock, is
    /// left as it is).
    Release(EnvironmentId, PromotionId),
}

/// The head's attribute naming the environment's active promotion.
pub(crate) const ACTIVE: &str = "activePromotion";

impl DynamoRepository {
    /// Adds the writes that append `evidence` to a transaction, and the head's move, which
    /// also takes or gives up the environment's lock as `lock` says. Records of `written`, the
    /// promotion the transaction writes (and lists them on, see [`seqs_of`]), are not listed
    /// under it in GSI1; those of any other promotion are.
    pub(crate) fn push_evidence(
        &self,
        tx: &mut Tx,
        evidence: EvidenceAppend<'_>,
        lock: Lock,
        written: Option<PromotionId>,
    ) -> Result<()> {
        for record in evidence.records {
            let listed_under = record.promotion_id.filter(|p| Some(*p) != written);
            tx.push(
                self.put_new(to_item(record, &keys::evidence(record.environment_id, record.seq, listed_under))?)?,
                DomainError::conflict(CHAIN_MOVED),
            );
        }
        let environment = match (evidence.records.last(), lock) {
            (Some(last), _) => last.environment_id,
            (None, Lock::Take(e, _) | Lock::Release(e, _)) => e,
            (None, Lock::Keep) => return Ok(()),
        };
        let mut head = HeadMove::default();
        if let Some(last) = evidence.records.last() {
            head.sets.push("#seq = :next, #hash = :hash");
            head.values.insert(":next".into(), AttributeValue::N(last.seq.to_string()));
            head.values.insert(":hash".into(), s(&last.hash));
            head.conditions.push(match evidence.head {
                None => "attribute_not_exists(#seq)",
                Some(h) => {
                    head.values.insert(":seq".into(), AttributeValue::N(h.seq.to_string()));
                    "#seq = :seq"
                }
            });
            head.names.extend([("#seq".to_owned(), "seq".to_owned()), ("#hash".to_owned(), "hash".to_owned())]);
        }
        match lock {
            Lock::Keep => {}
            Lock::Take(_, promotion) => {
                head.sets.push("#active = :promotion");
                head.conditions.push("attribute_not_exists(#active)");
                head.values.insert(":promotion".into(), s(&promotion.to_string()));
            }
            Lock::Release(_, promotion) => {
                head.removes = " REMOVE #active";
                head.conditions.push("(attribute_not_exists(#active) OR #active = :promotion)");
                head.values.insert(":promotion".into(), s(&promotion.to_string()));
            }
        }
        if !matches!(lock, Lock::Keep) {
            head.names.insert("#active".into(), ACTIVE.into());
        }
        let update = built(
            aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.table)
                .set_key(Some(keys::evidence_head(environment).primary()))
                .update_expression(head.expression())
                .condition_expression(head.conditions.join(" AND "))
                .set_expression_attribute_names(Some(head.names))
                .set_expression_attribute_values(Some(head.values))
                .build(),
        )?;
        tx.push(TransactWriteItem::builder().update(update).build(), DomainError::conflict(CHAIN_MOVED));
        Ok(())
    }

    /// The records a promotion's item lists ([`keys::EVIDENCE_SEQS`]), read consistently;
    /// `NotFound` when there is no such promotion.
    async fn listed_evidence(&self, promotion: PromotionId) -> Result<Vec<crate::codec::Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::promotion_key(promotion).primary()))
            .projection_expression("#seqs, #environment")
            .expression_attribute_names("#seqs", keys::EVIDENCE_SEQS)
            .expression_attribute_names("#environment", "environmentId")
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        let Some(item) = out.item else { return Err(DomainError::not_found("promotion", promotion)) };
        let Some(seqs) = item.get(keys::EVIDENCE_SEQS).and_then(|v| v.as_l().ok()) else { return Ok(Vec::new()) };
        let environment = item.get("environmentId").and_then(|v| v.as_s().ok());
        let environment = EnvironmentId::parse(environment.map_or("", String::as_str))?;
        let seqs = seqs.iter().map(|n| n.as_n().ok().and_then(|n| n.parse::<u64>().ok()));
        let keys = seqs
            .map(|seq| seq.map(|seq| keys::evidence(environment, seq, None)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| DomainError::internal("a promotion's evidence list is malformed"))?;
        self.batch_get(keys).await
    }

    /// Whether another promotion than `promotion` holds the environment's lock (read when a
    /// write that takes it failed on the head).
    pub(crate) async fn locked_by_another(&self, environment: EnvironmentId, promotion: PromotionId) -> Result<bool> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::evidence_head(environment).primary()))
            .projection_expression("#active")
            .expression_attribute_names("#active", ACTIVE)
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        let holder = out.item.as_ref().and_then(|i| i.get(ACTIVE)).and_then(|v| v.as_s().ok());
        Ok(holder.is_some_and(|h| *h != promotion.to_string()))
    }
}

/// The sequence numbers of the records of `promotion` among `evidence`, for its item's
/// [`keys::EVIDENCE_SEQS`] list.
pub(crate) fn seqs_of(evidence: &EvidenceAppend<'_>, promotion: PromotionId) -> Vec<AttributeValue> {
    let records = evidence.records.iter().filter(|r| r.promotion_id == Some(promotion));
    records.map(|r| AttributeValue::N(r.seq.to_string())).collect()
}

/// The parts of the head's update.
#[derive(Default)]
struct HeadMove {
    sets: Vec<&'static str>,
    removes: &'static str,
    conditions: Vec<&'static str>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl HeadMove {
    fn expression(&self) -> String {
        match self.sets.is_empty() {
            true => self.removes.trim_start().to_owned(),
            false => format!("SET {}{}", self.sets.join(", "), self.removes),
        }
    }
}

#[async_trait]
impl EvidenceRepository for DynamoRepository {
    #[instrument(skip_all, fields(records = evidence.records.len()), err(level = "info"))]
    async fn append_evidence(&self, evidence: EvidenceAppend<'_>) -> Result<()> {
        let mut tx = Tx::new();
        self.push_evidence(&mut tx, evidence, Lock::Keep, None)?;
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(environment_id = %environment), err(level = "info"))]
    async fn chain_head(&self, environment: EnvironmentId) -> Result<Option<ChainHead>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::evidence_head(environment).primary()))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        let Some(item) = out.item else { return Ok(None) };
        let seq = item.get("seq").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok());
        let hash = item.get("hash").and_then(|v| v.as_s().ok()).cloned();
        match (seq, hash) {
            (Some(seq), Some(hash)) => Ok(Some(ChainHead { seq, hash })),
            // A head that only names the environment's active promotion: no record yet.
            (None, None) => Ok(None),
            _ => Err(DomainError::internal("evidence head is malformed")),
        }
    }

    /// The records its item lists, read in one batch, and those listed under it in GSI1 (see
    /// [`keys::evidence`]), at once; in chain order.
    #[instrument(skip_all, fields(promotion_id = %promotion), err(level = "info"))]
    async fn evidence_of_promotion(&self, promotion: PromotionId) -> Result<Vec<EvidenceRecord>> {
        let query = self
            .query()
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(&keys::evidence_of_pk(promotion)));
        let (listed, indexed) = futures::try_join!(self.listed_evidence(promotion), self.query_all(query))?;
        let mut records: Vec<EvidenceRecord> = from_items(listed.into_iter().chain(indexed).collect())?;
        records.sort_by_key(|r| r.seq);
        records.dedup_by_key(|r| r.seq);
        Ok(records)
    }

    #[instrument(skip_all, fields(environment_id = %environment), err(level = "info"))]
    async fn environment_evidence(
        &self,
        environment: EnvironmentId,
        page: &PageRequest,
    ) -> Result<Page<EvidenceRecord>> {
        let pk = keys::evidence_pk(environment);
        let start = match page.after.as_deref() {
            None => None,
            Some(cursor) => {
                let seq: u64 =
                    cursor.parse().map_err(|_| DomainError::validation(format!("cursor {cursor:?} is not valid")))?;
                Some(HashMap::from([(PK.to_owned(), s(&pk)), (SK.to_owned(), s(&keys::evidence_sk(seq)))]))
            }
        };
        let query = self
            .query()
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":prefix", s(keys::EVIDENCE_SEQ_PREFIX))
            .scan_index_forward(false);
        let (rows, has_next_page) = self.page_of(query, start, page.first, None).await?;
        let records: Vec<EvidenceRecord> = from_items(rows)?;
        Ok(Page { items: records.into_iter().map(|r| (r.seq.to_string(), r)).collect(), has_next_page })
    }

    #[instrument(skip_all, fields(environment_id = %environment, after, first), err(level = "info"))]
    async fn evidence_after(
        &self,
        environment: EnvironmentId,
        after: u64,
        first: usize,
    ) -> Result<Vec<EvidenceRecord>> {
        let query = self
            .query()
            .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(&keys::evidence_pk(environment)))
            .expression_attribute_values(":from", s(&keys::evidence_sk(after.saturating_add(1))))
            .expression_attribute_values(":to", s(&keys::evidence_sk(u64::MAX)));
        let (rows, _) = self.page_of(query, None, first, None).await?;
        from_items(rows)
    }

    #[instrument(skip_all, fields(environment_id = %environment), err(level = "info"))]
    async fn evidence_chain(&self, environment: EnvironmentId) -> Result<Vec<EvidenceRecord>> {
        from_items(self.partition(&keys::evidence_pk(environment), keys::EVIDENCE_SEQ_PREFIX).await?)
    }
}

#[async_trait]
impl EvidenceKeys for DynamoRepository {
    #[instrument(skip_all, fields(key_id = %key.key_id), err(level = "info"))]
    async fn register_evidence_key(&self, key: &EvidenceKey) -> Result<()> {
        let item = to_item(key, &keys::evidence_key(&key.key_id))?;
        // Known already: its first registration stands.
        self.put_if_absent(item).await.map(drop)
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn evidence_keys(&self) -> Result<Vec<EvidenceKey>> {
        let mut keys: Vec<EvidenceKey> =
            from_items(self.partition(keys::EVIDENCE_KEYS, keys::EVIDENCE_KEY_PREFIX).await?)?;
        keys.sort_by_key(|k| k.registered_at);
        Ok(keys)
    }
}
