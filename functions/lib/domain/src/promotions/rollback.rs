//! Rolling an environment back, and the hold that keeps auto-promotion out afterwards.

use super::*;

impl Promotions {
    /// Rolls an environment back to the release before the current one, or to `to`,
    /// through the same deployment path; the replaced promotion becomes `ROLLED_BACK` and
    /// auto-promotion into the environment is held until `release_hold`.
    #[instrument(skip_all, fields(environment_id = %environment_id), err(level = "info"))]
    pub async fn rollback(
        &self,
        environment_id: EnvironmentId,
        to: Option<ReleaseId>,
        reason: String,
        who: &Principal,
    ) -> Result<Promotion> {
        let reason = required_reason(reason)?;
        let environment = self.environment(environment_id).await?;
        let deployed = self.list(environment_id, Some(PromotionStatus::Deployed), Some(2), None).await?;
        let current = deployed.items.first().map(|(_, p)| p.clone());
        let target = match to {
            Some(id) => id,
            None => deployed.items.get(1).map(|(_, p)| p.release_id).ok_or_else(|| {
                DomainError::conflict(format!("{} has no earlier release to roll back to; name one", environment.name))
            })?,
        };
        let release = self.release(target).await?;
        if release.status == ReleaseStatus::Deprecated {
            return Err(DomainError::conflict(format!("release {} is deprecated", release.name)));
        }
        let now = Utc::now();
        let promotion = Promotion {
            id: PromotionId::new(),
            release_id: target,
            environment_id,
            status: PromotionStatus::Approved,
            requested_by: who.subject.clone(),
            comment: Some(reason.clone()),
            automatic: false,
            gates: vec![gates::gate("rollback", true, format!("rollback by {}: {reason}", who.subject))],
            approvals: Vec::new(),
            required_approvals: 0,
            reason: None,
            steps: Vec::new(),
            reports_to_ci: release.reports_to_ci(),
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        let payload =
            who.stamp(json!({ "from": current.as_ref().map(|c| c.release_id), "to": target, "reason": reason }));
        let drafts = vec![self.draft(&promotion, "rollback", &who.subject, payload)];
        self.create(&promotion, drafts).await?;
        // Redeploying what already runs (after a failed deployment) replaces nothing.
        if let Some(replaced) = current.filter(|c| c.release_id != target) {
            let mut rolled = replaced.clone();
            rolled.status = PromotionStatus::RolledBack;
            rolled.reason = Some(format!("rolled back by {}: {reason}", who.subject));
            self.save(&replaced, rolled, "rolled_back", &who.subject, json!({ "by": promotion.id })).await?;
            let record = ReleaseEnvironmentRecord {
                release_id: replaced.release_id,
                environment_id,
                status: DeploymentStatus::RolledBack,
                deployed_at: None,
                updated_at: Utc::now(),
            };
            self.repo.record_release_deployed(&record, &[]).await?;
        }
        let hold = Hold { reason: format!("rollback: {reason}"), set_by: who.subject.clone(), set_at: Utc::now() };
        self.put_hold(environment_id, Some(hold), &who.subject).await?;
        // A rollback restores what ran; it waits on no pipeline.
        Box::pin(self.begin(promotion, false)).await
    }

    /// Lets auto-promotion into the environment resume.
    #[instrument(skip_all, fields(environment_id = %environment), err(level = "info"))]
    pub async fn release_hold(&self, environment: EnvironmentId, who: &Principal) -> Result<()> {
        self.environment(environment).await?;
        if self.promotions.hold(environment).await?.is_none() {
            return Err(DomainError::conflict("the environment has no hold"));
        }
        self.put_hold(environment, None, &who.subject).await
    }

    pub async fn hold(&self, environment: EnvironmentId) -> Result<Option<Hold>> {
        self.promotions.hold(environment).await
    }

    pub(super) async fn put_hold(&self, environment: EnvironmentId, hold: Option<Hold>, actor: &str) -> Result<()> {
        let (kind, payload) = match &hold {
            Some(h) => ("hold", json!({ "reason": h.reason })),
            None => ("hold_released", json!({})),
        };
        let drafts = vec![EvidenceDraft {
            environment_id: environment,
            promotion_id: None,
            release_id: None,
            kind,
            actor: actor.to_owned(),
            payload,
        }];
        self.with_evidence(environment, drafts, |records, head| {
            let hold = &hold;
            async move {
                self.promotions
                    .set_hold(environment, hold.as_ref(), EvidenceAppend { records: &records, head: head.as_ref() })
                    .await
            }
        })
        .await
    }
}
