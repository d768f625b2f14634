//! Promotions, and the one-active-promotion-per-environment lock (held on the environment's
//! evidence chain head, see [`crate::evidence::Lock`]).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use gantry_domain::deployments::{Deployment, counts_open};
use gantry_domain::evidence::chain_moved;
use gantry_domain::insights::Tally;
use gantry_domain::model::Release;
use gantry_domain::ports::{Page, PageRequest};
use gantry_domain::promotions::{EvidenceAppend, Hold, Promotion, PromotionId, PromotionRepository, PromotionStatus};
use gantry_domain::values::EnvironmentId;
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::codec::{Item, from_items, to_item};
use crate::evidence::{Lock, seqs_of};
use crate::keys::{self, GSI1, GSI1PK, GSI1SK, GSI2, GSI2PK, GSI2SK, ItemKeys, s};
use crate::{DynamoRepository, Tx, decode_cursor, encode_cursor, string_attr};

fn promotion_keys(p: &Promotion) -> ItemKeys {
    keys::promotion(p.id, p.environment_id, p.status.as_str(), p.created_at)
}

/// Deployments written in the transaction that begins a promotion, beside the promotion and
/// its evidence (a transaction takes 100 items).
const IN_BEGIN: usize = 90;

impl DynamoRepository {
    /// Writes a promotion's deployments: up to `in_tx` of them (with the count of open ones,
    /// when it keeps one) onto `tx`, which moves the promotion to `DEPLOYING`; the rest before
    /// it, with plain (repeatable) puts at half a transaction's price. Until the transaction
    /// goes through, nothing reads those, and a retry writes the same items again. Returns the
    /// keys of those written before.
    async fn push_deployments(&self, tx: &mut Tx, deployments: &[Deployment], in_tx: usize) -> Result<Vec<Item>> {
        let (first, rest) = deployments.split_at(deployments.len().min(in_tx));
        let rest = rest
            .iter()
            .map(|d| to_item(d, &keys::deployment(d.promotion_id, d.target_id)))
            .collect::<Result<Vec<_>>>()?;
        let written = Self::primary_keys(&rest);
        self.batch_put(rest).await?;
        for d in first {
            tx.push(
                self.put_new(to_item(d, &keys::deployment(d.promotion_id, d.target_id))?)?,
                DomainError::conflict("deployment exists"),
            );
        }
        if let Some(d) = deployments.first().filter(|_| counts_open(deployments.len())) {
            let mut open = keys::open_deployments(d.promotion_id).all();
            open.insert("open".into(), AttributeValue::N(deployments.len().to_string()));
            tx.push(self.put(open, None)?, DomainError::internal("open deployments put"));
        }
        Ok(written)
    }
}

#[async_trait]
impl PromotionRepository for DynamoRepository {
    #[instrument(skip_all, fields(promotion_id = %after.id, targets = deployments.len()), err(level = "info"))]
    async fn begin_deployments(
        &self,
        before: &Promotion,
        after: &Promotion,
        deployments: &[Deployment],
        evidence: EvidenceAppend<'_>,
    ) -> Result<()> {
        let mut tx = Tx::new();
        let listed = (keys::EVIDENCE_SEQS, seqs_of(&evidence, after.id));
        tx.push(
            self.update_revision_appending(&promotion_keys(after), after, before.revision, listed)?,
            DomainError::conflict(format!("promotion {} changed meanwhile", before.id)),
        );
        // The promotion exists already: its deployments appear with the move to DEPLOYING.
        self.push_deployments(&mut tx, deployments, IN_BEGIN).await?;
        self.push_evidence(&mut tx, evidence, Lock::Keep, Some(after.id))?;
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(promotion_id = %promotion.id, targets = started.0.len()), err(level = "info"))]
    async fn create_promotion(
        &self,
        promotion: &Promotion,
        started: (&[Deployment], Option<(&Release, &Release)>),
        evidence: EvidenceAppend<'_>,
    ) -> Result<()> {
        let (deployments, release) = started;
        let mut tx = Tx::new();
        let mut item = to_item(promotion, &promotion_keys(promotion))?;
        item.insert(keys::EVIDENCE_SEQS.to_owned(), AttributeValue::L(seqs_of(&evidence, promotion.id)));
        tx.push(self.put_new(item)?, DomainError::conflict("promotion id exists"));
        if let Some((before, after)) = release {
            self.push_release_update(&mut tx, before, after)?;
        }
        // Nothing reads the deployments of a promotion that does not exist yet.
        let put_before = self.push_deployments(&mut tx, deployments, 0).await?;
        self.push_evidence(&mut tx, evidence, Lock::Take(promotion.environment_id, promotion.id), Some(promotion.id))?;
        let written = match self.transact(tx).await {
            // The head did not move as read: another decision got there first, or another
            // promotion holds the lock.
            Err(err) if chain_moved(&err) && self.locked_by_another(promotion.environment_id, promotion.id).await? => {
                Err(DomainError::conflict("another promotion is active in this environment"))
            }
            other => other,
        };
        if written.is_err() && !put_before.is_empty() {
            // Deployments of a promotion that was not created: nothing reads them.
            if let Err(err) = self.batch_delete(put_before).await {
                tracing::warn!(error = %err, "deployments of an uncreated promotion were not removed");
            }
        }
        written
    }

    #[instrument(skip_all, fields(promotion_id = %id), err(level = "info"))]
    async fn get_promotion(&self, id: PromotionId) -> Result<Option<Promotion>> {
        self.get(&keys::promotion_key(id)).await
    }

    #[instrument(skip_all, fields(promotion_id = %after.id), err(level = "info"))]
    async fn update_promotion(
        &self,
        before: &Promotion,
        after: &Promotion,
        evidence: EvidenceAppend<'_>,
        tally: &Tally,
    ) -> Result<()> {
        let mut tx = Tx::new();
        let listed = (keys::EVIDENCE_SEQS, seqs_of(&evidence, after.id));
        tx.push(
            self.update_revision_appending(&promotion_keys(after), after, before.revision, listed)?,
            DomainError::conflict(format!("promotion {} changed meanwhile; read it again and retry", before.id)),
        );
        let lock = match before.status.is_active() && !after.status.is_active() {
            true => Lock::Release(after.environment_id, after.id),
            false => Lock::Keep,
        };
        self.push_evidence(&mut tx, evidence, lock, Some(after.id))?;
        self.push_tally(&mut tx, tally)?;
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(environment_id = %environment), err(level = "info"))]
    async fn set_hold(
        &self,
        environment: EnvironmentId,
        hold: Option<&Hold>,
        evidence: EvidenceAppend<'_>,
    ) -> Result<()> {
        let mut tx = Tx::new();
        let key = keys::hold(environment);
        match hold {
            Some(h) => tx.push(self.put(to_item(h, &key)?, None)?, DomainError::internal("hold put")),
            None => tx.push(
                self.delete(&key, Some(("attribute_exists(PK)", vec![])))?,
                DomainError::conflict("the environment has no hold"),
            ),
        }
        self.push_evidence(&mut tx, evidence, Lock::Keep, None)?;
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(environment_id = %environment), err(level = "info"))]
    async fn hold(&self, environment: EnvironmentId) -> Result<Option<Hold>> {
        self.get(&keys::hold(environment)).await
    }

    #[instrument(skip_all, fields(promotion_id = %promotion.id), err(level = "info"))]
    async fn mark_swept(&self, promotion: &Promotion, now: DateTime<Utc>, before: DateTime<Utc>) -> Result<bool> {
        let unchanged = ("revision = :rev", &[][..], vec![(":rev", AttributeValue::N(promotion.revision.to_string()))]);
        DynamoRepository::mark_swept(self, &promotion_keys(promotion), unchanged, now, before).await
    }

    #[instrument(skip_all, fields(environment_id = %environment), err(level = "info"))]
    async fn list_promotions(
        &self,
        environment: EnvironmentId,
        status: Option<PromotionStatus>,
        page: &PageRequest,
    ) -> Result<Page<Promotion>> {
        let (index, pk_attr, sk_attr, pk) = match status {
            Some(st) => (GSI2, GSI2PK, GSI2SK, keys::promotions_with_status_pk(environment, st.as_str())),
            None => (GSI1, GSI1PK, GSI1SK, keys::promotions_pk(environment)),
        };
        let start = page.after.as_deref().map(decode_cursor).transpose()?.map(|(sort, id)| {
            let mut key = keys::promotion_key(PromotionId(id.0)).primary();
            key.extend([(pk_attr.to_owned(), s(&pk)), (sk_attr.to_owned(), AttributeValue::S(sort))]);
            key
        });
        let query = self
            .query()
            .index_name(index)
            .key_condition_expression(format!("{pk_attr} = :pk"))
            .expression_attribute_values(":pk", s(&pk))
            .scan_index_forward(false);
        let (rows, has_next_page) = self.page_of(query, start, page.first, None).await?;
        let cursors: Vec<String> =
            rows.iter().map(|r| string_attr(r, sk_attr).map(|k| encode_cursor(&k))).collect::<Result<_>>()?;
        Ok(Page { items: cursors.into_iter().zip(from_items::<Promotion>(rows)?).collect(), has_next_page })
    }
}
