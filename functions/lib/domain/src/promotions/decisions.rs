//! Approvals, rejections and cancellations of a pending promotion.

use super::*;

impl Promotions {
    /// Records an approval; the promotion is approved once enough distinct principals agree.
    #[instrument(skip_all, fields(promotion_id = %id), err)]
    pub async fn approve(&self, id: PromotionId, comment: Option<String>, approver: &Principal) -> Result<Promotion> {
        let comment = long_text("comment", comment, 2000)?;
        let (before, environment) = self.pending_for(id, approver).await?;
        if before.requested_by == approver.subject && !environment.policy.allow_self_approval {
            return Err(DomainError::Forbidden(format!(
                "{} requested this promotion and cannot approve it",
                approver.subject
            )));
        }
        if before.approvals.iter().any(|a| a.principal == approver.subject) {
            return Err(DomainError::conflict(format!("{} approved this promotion already", approver.subject)));
        }
        let mut after = before.clone();
        after.approvals.push(Approval { principal: approver.subject.clone(), comment, at: Utc::now() });
        if after.approvals.len() as u32 >= after.required_approvals {
            after.status = PromotionStatus::Approved;
        }
        let payload = json!({ "comment": after.approvals.last().and_then(|a| a.comment.clone()), "approvals": after.approvals.len(), "status": after.status.as_str() });
        let saved = self.save(&before, after, "approval", &approver.subject, payload).await?;
        if saved.status == PromotionStatus::Approved {
            return self.begin(saved).await;
        }
        Ok(saved)
    }

    #[instrument(skip_all, fields(promotion_id = %id), err)]
    pub async fn reject(&self, id: PromotionId, reason: String, approver: &Principal) -> Result<Promotion> {
        let reason = required_reason(reason)?;
        let (before, _) = self.pending_for(id, approver).await?;
        let mut after = before.clone();
        after.status = PromotionStatus::Rejected;
        after.reason = Some(format!("{}: {reason}", approver.subject));
        self.save(&before, after, "rejection", &approver.subject, json!({ "reason": reason })).await
    }

    /// Cancels a promotion that has not started deploying: by its requester or an admin.
    #[instrument(skip_all, fields(promotion_id = %id), err)]
    pub async fn cancel(&self, id: PromotionId, who: &Principal) -> Result<Promotion> {
        let before = self.get(id).await?;
        let admin = who.roles.contains(&crate::access::Role::Admin);
        if before.requested_by != who.subject && !admin {
            return Err(DomainError::Forbidden("only the requester or an admin can cancel a promotion".into()));
        }
        if !matches!(before.status, PromotionStatus::PendingApproval | PromotionStatus::Approved) {
            return Err(DomainError::conflict(format!(
                "promotion {id} is {} and cannot be cancelled",
                before.status.as_str()
            )));
        }
        let mut after = before.clone();
        after.status = PromotionStatus::Cancelled;
        after.reason = Some(format!("cancelled by {}", who.subject));
        self.save(&before, after, "cancellation", &who.subject, json!({ "previousStatus": before.status.as_str() }))
            .await
    }

    /// A promotion awaiting approval, and its environment, when `who` may approve there.
    pub(super) async fn pending_for(&self, id: PromotionId, who: &Principal) -> Result<(Promotion, Environment)> {
        let promotion = self.get(id).await?;
        let environment = self.environment(promotion.environment_id).await?;
        self.check_approver(&environment, who)?;
        if promotion.status != PromotionStatus::PendingApproval {
            return Err(DomainError::conflict(format!(
                "promotion {id} is {}, not pending approval",
                promotion.status.as_str()
            )));
        }
        Ok((promotion, environment))
    }

    pub(super) fn check_approver(&self, environment: &Environment, who: &Principal) -> Result<()> {
        if environment.policy.approver_roles.iter().any(|r| who.roles.contains(r)) {
            Ok(())
        } else {
            let roles: Vec<&str> = environment.policy.approver_roles.iter().map(|r| r.as_str()).collect();
            Err(DomainError::Forbidden(format!(
                "approving in {} needs one of the roles {}",
                environment.name,
                roles.join(", ")
            )))
        }
    }
}
