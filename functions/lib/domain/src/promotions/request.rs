//! Requesting a promotion, and the gates that decide whether it may go ahead.

use super::admission::{Asker, Phase, SupplyChainVerdict};
use super::*;

impl Promotions {
    /// Requests a promotion of `release` into `environment`.
    #[instrument(skip_all, fields(release_id = %release_id, environment_id = %environment_id), err(level = "info"))]
    pub async fn request(
        &self,
        release_id: ReleaseId,
        environment_id: EnvironmentId,
        (comment, override_freeze): (Option<String>, Option<String>),
        requester: &Principal,
        automatic: bool,
    ) -> Result<Promotion> {
        let comment = long_text("comment", comment, 2000)?;
        let (release, environments, environment) = self.subject(release_id, environment_id).await?;
        if release.status == ReleaseStatus::Deprecated {
            return Err(DomainError::conflict(format!(
                "release {} is deprecated and cannot be promoted",
                release.name
            )));
        }
        if release.status == ReleaseStatus::Draft {
            return Err(DomainError::conflict(format!("release {} is a draft; mark it READY first", release.name)));
        }
        let previous = previous_of(&environments, &environment);
        let asker = Asker { requested_by: &requester.subject, automatic };
        let (gates, supply_chain) = self.evaluate(&release, &environment, previous, asker).await?;
        if let Some(failed) = gates.iter().find(|g| !g.passed) {
            return Err(DomainError::conflict(format!("gate {} did not pass: {}", failed.gate, failed.detail)));
        }
        let overridden = self.freeze_at_request(&environment, release.id, requester, override_freeze).await?;
        let now = Utc::now();
        let mut promotion = Promotion {
            id: PromotionId::new(),
            release_id,
            environment_id,
            status: PromotionStatus::PendingApproval,
            requested_by: requester.subject.clone(),
            comment,
            automatic,
            gates,
            approvals: Vec::new(),
            required_approvals: environment.required_approvals,
            reason: None,
            steps: Vec::new(),
            reports_to_ci: release.reports_to_ci(),
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        if promotion.required_approvals == 0 {
            promotion.status = PromotionStatus::Approved;
        }
        let drafts = vec![
            self.draft(
                &promotion,
                "request",
                &requester.subject,
                requester.stamp(json!({ "release": release.name, "environment": environment.name, "comment": promotion.comment, "automatic": automatic })),
            ),
            self.draft(&promotion, "gate_evaluation", "gantry", gate_payload(&promotion, supply_chain.as_ref())),
        ];
        let drafts = match overridden {
            Some(payload) => {
                [drafts, vec![self.draft(&promotion, "freeze_override", &requester.subject, payload)]].concat()
            }
            None => drafts,
        };
        if promotion.status == PromotionStatus::Approved
            && environment.steps.is_empty()
            && !environment.policy.guards_supply_chain()
        {
            // Nothing stands between the request and its deployments: one write for both.
            return self.start(promotion, drafts, release).await;
        }
        self.create(&promotion, drafts).await?;
        tracing::info!(promotion_id = %promotion.id, status = promotion.status.as_str(), "promotion requested");
        if promotion.status == PromotionStatus::Approved {
            return self.begin(promotion, true).await;
        }
        Ok(promotion)
    }

    /// The gates a promotion of the release into the environment would meet now, without
    /// requesting one: a dry run of the request's gates, each with its reasons.
    #[instrument(skip_all, fields(release_id = %release_id, environment_id = %environment_id), err(level = "info"))]
    pub async fn evaluate_policy(
        &self,
        release_id: ReleaseId,
        environment_id: EnvironmentId,
        asker: &Principal,
    ) -> Result<PolicyEvaluation> {
        let (release, environments, environment) = self.subject(release_id, environment_id).await?;
        let previous = previous_of(&environments, &environment);
        let asker = Asker { requested_by: &asker.subject, automatic: false };
        let (gates, supply_chain) = self.evaluate(&release, &environment, previous, asker).await?;
        Ok(PolicyEvaluation { gates, supply_chain })
    }

    /// The release and the environment a request names, with every environment.
    async fn subject(
        &self,
        release_id: ReleaseId,
        environment_id: EnvironmentId,
    ) -> Result<(Release, Vec<Environment>, Environment)> {
        let release = self.release(release_id).await?;
        let environments = self.repo.list_environments().await?;
        let environment = environments
            .iter()
            .find(|e| e.id == environment_id)
            .cloned()
            .ok_or_else(|| DomainError::not_found("environment", environment_id))?;
        Ok((release, environments, environment))
    }

    /// The gates of `environment` for `release`: what they read, then [`gates::evaluate`],
    /// and the signature gate with the verdicts it used when the environment names keys.
    pub(super) async fn evaluate(
        &self,
        release: &Release,
        environment: &Environment,
        previous: Option<&Environment>,
        asker: Asker<'_>,
    ) -> Result<(Vec<GateResult>, Option<SupplyChainVerdict>)> {
        let records = self.repo.release_environment_records(release.id).await?;
        let previous = previous.map(|p| (p, records.iter().find(|r| r.environment_id == p.id)));
        let commit = release.source_ref.as_ref().and_then(|s| s.commit_sha.as_deref());
        let build_succeeded = match commit {
            Some(sha) if environment.policy.require_build_success => match self.builds.for_commit(sha).await {
                Ok(builds) => builds.iter().any(|b| b.status == BuildStatus::Success),
                Err(DomainError::Validation(_)) => false,
                Err(err) => return Err(err),
            },
            _ => false,
        };
        let inputs = gates::GateInputs {
            policy: &environment.policy,
            previous,
            commit,
            build_succeeded,
            automatic: asker.automatic,
            now: Utc::now(),
        };
        let mut results = gates::evaluate(&inputs);
        let supply_chain = self.supply_chain_gate(release, environment, Phase::Request, asker).await?;
        results.extend(supply_chain.as_ref().map(|v| v.gate.clone()));
        Ok((results, supply_chain))
    }
}

/// What a dry run of a promotion's gates found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEvaluation {
    pub gates: Vec<GateResult>,
    /// The supply-chain gate's decision and facts, when the environment has the gate.
    pub supply_chain: Option<SupplyChainVerdict>,
}

impl PolicyEvaluation {
    /// Whether a promotion would pass every gate.
    pub fn allowed(&self) -> bool {
        self.gates.iter().all(|g| g.passed)
    }
}

/// The environment before `environment` on the path.
fn previous_of<'a>(environments: &'a [Environment], environment: &Environment) -> Option<&'a Environment> {
    environments.iter().filter(|e| e.order < environment.order).max_by_key(|e| e.order)
}

/// The gate evaluation's evidence: each gate, and the supply-chain decision with the facts
/// it used when the environment has that gate.
pub(super) fn gate_payload(promotion: &Promotion, supply_chain: Option<&SupplyChainVerdict>) -> serde_json::Value {
    let mut payload = json!({ "gates": promotion.gates, "status": promotion.status.as_str() });
    if let Some(verdict) = supply_chain {
        payload["supplyChain"] = verdict.evidence();
    }
    payload
}

impl Promotions {
    /// The freeze check of a request. A request that needs approval deploys at its last
    /// approval: the freeze is checked (and may be overridden) then, so an override given
    /// here is refused rather than dropped.
    async fn freeze_at_request(
        &self,
        environment: &Environment,
        release: ReleaseId,
        requester: &Principal,
        override_freeze: Option<String>,
    ) -> Result<Option<serde_json::Value>> {
        match (environment.required_approvals, override_freeze) {
            (0, override_freeze) => self.check_freeze(environment, (release, None), requester, override_freeze).await,
            (_, None) => Ok(None),
            (_, Some(_)) if gates::check_approver(environment, requester).is_err() => {
                Err(DomainError::Forbidden(format!("only an approver of {} may override its freeze", environment.name)))
            }
            (_, Some(_)) => Err(DomainError::validation(format!(
                "{} needs approval: its freeze is checked at the last approval, so override it there \
                 (approvePromotion with overrideFreeze)",
                environment.name
            ))),
        }
    }
}
