//! Approvals, rejections and cancellations of a pending promotion.

use super::*;

impl Promotions {
    /// Records an approval; the promotion is approved once enough distinct principals agree.
    #[instrument(skip_all, fields(promotion_id = %id), err(level = "info"))]
    pub async fn approve(
        &self,
        id: PromotionId,
        (comment, override_freeze): (Option<String>, Option<String>),
        approver: &Principal,
    ) -> Result<Promotion> {
        let comment = long_text("comment", comment, 2000)?;
        let (before, environment) = self.pending_for(id, approver).await?;
        let after = gates::approved(&before, &environment.policy, approver, comment, Utc::now())?;
        let payload = approver.stamp(
            json!({ "comment": after.approvals.last().and_then(|a| a.comment.clone()), "approvals": after.approvals.len(), "status": after.status.as_str() }),
        );
        let mut records = vec![("approval", payload)];
        if after.status == PromotionStatus::Approved {
            // The last approval starts the deployment: a freeze holds it.
            let checked = (before.release_id, Some(before.id));
            if let Some(overridden) = self.check_freeze(&environment, checked, approver, override_freeze).await? {
                records.push(("freeze_override", overridden));
            }
        }
        let saved = self.save_with(&before, after, records, &approver.subject).await?;
        if saved.status == PromotionStatus::Approved {
            return self.begin(saved, true).await;
        }
        Ok(saved)
    }

    #[instrument(skip_all, fields(promotion_id = %id), err(level = "info"))]
    pub async fn reject(&self, id: PromotionId, reason: String, approver: &Principal) -> Result<Promotion> {
        let reason = required_reason(reason)?;
        let (before, _) = self.pending_for(id, approver).await?;
        let mut after = before.clone();
        after.status = PromotionStatus::Rejected;
        after.reason = Some(format!("{}: {reason}", approver.subject));
        self.save(&before, after, "rejection", &approver.subject, approver.stamp(json!({ "reason": reason }))).await
    }

    /// Cancels a promotion that has not started deploying: by its requester or an admin.
    #[instrument(skip_all, fields(promotion_id = %id), err(level = "info"))]
    pub async fn cancel(&self, id: PromotionId, who: &Principal) -> Result<Promotion> {
        let before = self.get(id).await?;
        let after = gates::cancelled(&before, who)?;
        let payload = who.stamp(json!({ "previousStatus": before.status.as_str() }));
        let saved = self.save(&before, after, "cancellation", &who.subject, payload).await?;
        if before.status == PromotionStatus::Approved {
            // Its deployment may have been reported queued behind pre-deploy steps.
            self.announce(&saved, crate::ci::ReportState::Cancelled).await;
        }
        Ok(saved)
    }

    /// A promotion awaiting approval, and its environment, when `who` may approve there.
    pub(super) async fn pending_for(&self, id: PromotionId, who: &Principal) -> Result<(Promotion, Environment)> {
        let promotion = self.get(id).await?;
        let environment = self.environment(promotion.environment_id).await?;
        gates::check_approver(&environment, who)?;
        if promotion.status != PromotionStatus::PendingApproval {
            return Err(DomainError::conflict(format!(
                "promotion {id} is {}, not pending approval",
                promotion.status.as_str()
            )));
        }
        Ok((promotion, environment))
    }
}
