//! Promotions: a release moving into an environment. A request is checked (the release is
//! live, it runs healthily in the previous environment, no other promotion is active there)
//! and gated (build success, soak time, manual-only), then approved by distinct principals
//! holding an approver role.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;

use crate::access::Principal;
use crate::builds::{BuildStatus, Builds};
use crate::deployments::{
    DeployJob, DeployQueue, Deployment, DeploymentRepository, DeploymentState, deployed_records, results_payload,
};
use crate::error::{DomainError, Result};
use crate::evidence::{
    ChainHead, ChainReport, EvidenceDraft, EvidenceRecord, EvidenceRepository, EvidenceSigner, chain_moved, seal,
    verify_chain,
};
use crate::model::{DeploymentStatus, Environment, Release, ReleaseEnvironmentRecord, ReleaseStatus};
use crate::ports::{Page, PageRequest, Repository};
use crate::targets::TargetRepository;
use crate::values::{EnvironmentId, ReleaseId, long_text};

crate::values::id_type!(PromotionId, "promotion");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromotionStatus {
    PendingApproval,
    Approved,
    Deploying,
    Deployed,
    Rejected,
    Cancelled,
    Failed,
    RolledBack,
}

impl PromotionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingApproval => "pending_approval",
            Self::Approved => "approved",
            Self::Deploying => "deploying",
            Self::Deployed => "deployed",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
        }
    }

    /// A promotion that holds its environment: only one at a time.
    pub fn is_active(self) -> bool {
        matches!(self, Self::PendingApproval | Self::Approved | Self::Deploying)
    }
}

/// The outcome of one gate, kept on the promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateResult {
    pub gate: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub principal: String,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Promotion {
    pub id: PromotionId,
    pub release_id: ReleaseId,
    pub environment_id: EnvironmentId,
    pub status: PromotionStatus,
    pub requested_by: String,
    pub comment: Option<String>,
    /// Requested by auto-promotion rather than a person.
    pub automatic: bool,
    pub gates: Vec<GateResult>,
    pub approvals: Vec<Approval>,
    pub required_approvals: u32,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revision: u64,
}

/// Evidence to append to an environment's chain in the same transaction as a promotion
/// write, and the head it extends (the write fails with [`crate::evidence::CHAIN_MOVED`]
/// if the head moved).
pub struct EvidenceAppend<'a> {
    pub records: &'a [EvidenceRecord],
    pub head: Option<&'a ChainHead>,
}

#[async_trait]
pub trait PromotionRepository: Send + Sync {
    /// Stores a new active promotion with its evidence; `Conflict` if another is active in
    /// its environment.
    async fn create_promotion(&self, promotion: &Promotion, evidence: EvidenceAppend<'_>) -> Result<()>;
    async fn get_promotion(&self, id: PromotionId) -> Result<Option<Promotion>>;
    /// Replaces `before` with `after` if unchanged meanwhile, with its evidence; frees the
    /// environment when `after` is no longer active.
    async fn update_promotion(&self, before: &Promotion, after: &Promotion, evidence: EvidenceAppend<'_>)
    -> Result<()>;
    /// Puts (`Some`) or lifts (`None`) an environment's auto-promotion hold, with evidence.
    async fn set_hold(
        &self,
        environment: EnvironmentId,
        hold: Option<&Hold>,
        evidence: EvidenceAppend<'_>,
    ) -> Result<()>;
    async fn hold(&self, environment: EnvironmentId) -> Result<Option<Hold>>;
    /// Newest first.
    async fn list_promotions(
        &self,
        environment: EnvironmentId,
        status: Option<PromotionStatus>,
        page: &PageRequest,
    ) -> Result<Page<Promotion>>;
}

/// A stop on auto-promotion into an environment, set by a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub reason: String,
    pub set_by: String,
    pub set_at: DateTime<Utc>,
}

/// The principal automatic decisions are taken as.
pub fn system(what: &str) -> Principal {
    Principal { subject: format!("gantry:{what}"), roles: Vec::new(), permissions: Vec::new() }
}

/// Where promotions hand over to deployments.
#[derive(Clone)]
pub struct Rollout {
    pub targets: Arc<dyn TargetRepository>,
    pub deployments: Arc<dyn DeploymentRepository>,
    pub queue: Arc<dyn DeployQueue>,
}

#[derive(Clone)]
pub struct Promotions {
    promotions: Arc<dyn PromotionRepository>,
    repo: Arc<dyn Repository>,
    builds: Builds,
    evidence: Arc<dyn EvidenceRepository>,
    signer: Arc<dyn EvidenceSigner>,
    rollout: Rollout,
}

/// How often a decision is retried when another decision extended the evidence chain first.
const CHAIN_RETRIES: usize = 8;

/// A reason a person must give: trimmed, not blank, bounded.
fn required_reason(raw: String) -> Result<String> {
    long_text("reason", Some(raw), 2000)?.ok_or_else(|| DomainError::validation("reason must not be blank"))
}

fn page_size(first: Option<i64>) -> Result<usize> {
    match first {
        None => Ok(crate::service::DEFAULT_PAGE),
        Some(n) if (1..=crate::service::MAX_PAGE as i64).contains(&n) => Ok(n as usize),
        Some(n) => {
            Err(DomainError::validation(format!("first must be between 1 and {}, not {n}", crate::service::MAX_PAGE)))
        }
    }
}

fn gate(gate: &str, passed: bool, detail: impl Into<String>) -> GateResult {
    GateResult { gate: gate.to_owned(), passed, detail: detail.into() }
}

impl Promotions {
    pub fn new(
        promotions: Arc<dyn PromotionRepository>,
        repo: Arc<dyn Repository>,
        builds: Builds,
        evidence: Arc<dyn EvidenceRepository>,
        signer: Arc<dyn EvidenceSigner>,
        rollout: Rollout,
    ) -> Self {
        Self { promotions, repo, builds, evidence, signer, rollout }
    }

    /// Starts deploying an approved promotion: one deployment per target, written with the
    /// promotion's move to `DEPLOYING`, then one queued job per target.
    #[instrument(skip_all, fields(promotion_id = %approved.id), err)]
    async fn begin(&self, approved: Promotion) -> Result<Promotion> {
        let targets = self.rollout.targets.targets_of(approved.environment_id).await?;
        self.release_moves(approved.release_id, ReleaseStatus::Promoting).await?;
        if targets.is_empty() {
            let mut done = approved.clone();
            done.status = PromotionStatus::Deployed;
            done.reason = Some("the environment has no targets".into());
            let done = self.save(&approved, done, "deployment_result", "gantry", json!({ "targets": [] })).await?;
            self.record_deployed(&done).await?;
            return Ok(done);
        }
        let now = Utc::now();
        let deployments: Vec<Deployment> = targets
            .iter()
            .map(|t| Deployment {
                promotion_id: approved.id,
                target_id: t.id,
                environment_id: approved.environment_id,
                target_name: t.name.to_string(),
                kind: t.config.kind(),
                state: DeploymentState::Pending,
                attempt: 1,
                lease_owner: None,
                lease_until: None,
                message: None,
                started_at: None,
                finished_at: None,
            })
            .collect();
        let mut after = approved.clone();
        after.status = PromotionStatus::Deploying;
        after.updated_at = now;
        after.revision = approved.revision + 1;
        let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        let drafts = vec![self.draft(&after, "deployment_started", "gantry", json!({ "targets": names }))];
        self.with_evidence(after.environment_id, drafts, |records, head| {
            let (approved, after, deployments) = (&approved, &after, &deployments);
            async move {
                self.rollout
                    .deployments
                    .begin(approved, after, deployments, EvidenceAppend { records: &records, head: head.as_ref() })
                    .await
            }
        })
        .await?;
        let jobs: Vec<DeployJob> = deployments
            .iter()
            .map(|d| DeployJob { promotion_id: d.promotion_id, target_id: d.target_id, attempt: d.attempt })
            .collect();
        self.rollout.queue.enqueue_jobs(&jobs).await?;
        tracing::info!(targets = jobs.len(), "deployment started");
        Ok(after)
    }

    /// Stores a new promotion with its evidence, on the current chain head.
    async fn create(&self, promotion: &Promotion, drafts: Vec<EvidenceDraft>) -> Result<()> {
        self.with_evidence(promotion.environment_id, drafts, |records, head| async move {
            self.promotions.create_promotion(promotion, EvidenceAppend { records: &records, head: head.as_ref() }).await
        })
        .await
    }

    /// Ends a deploying promotion once every deployment has ended: `DEPLOYED` when all
    /// succeeded, else `FAILED` with the failures as its reason.
    #[instrument(skip_all, fields(promotion_id = %id), err)]
    pub async fn settle(&self, id: PromotionId) -> Result<Promotion> {
        let before = self.get(id).await?;
        if before.status != PromotionStatus::Deploying {
            return Ok(before);
        }
        let deployments = self.rollout.deployments.deployments_of(id).await?;
        if deployments.iter().any(|d| !d.state.is_terminal()) {
            return Ok(before);
        }
        let failed: Vec<String> = deployments
            .iter()
            .filter(|d| d.state == DeploymentState::Failed)
            .map(|d| format!("{}: {}", d.target_name, d.message.clone().unwrap_or_default()))
            .collect();
        let mut after = before.clone();
        after.status = if failed.is_empty() { PromotionStatus::Deployed } else { PromotionStatus::Failed };
        after.reason = (!failed.is_empty()).then(|| failed.join("; "));
        let settled =
            match self.save(&before, after, "deployment_result", "gantry", results_payload(&deployments)).await {
                Ok(p) => p,
                // Another worker settled it first.
                Err(DomainError::Conflict(_)) => return self.get(id).await,
                Err(err) => return Err(err),
            };
        if settled.status == PromotionStatus::Deployed {
            self.record_deployed(&settled).await?;
        } else {
            let records = self.repo.release_environment_records(settled.release_id).await?;
            let fallback = if records.iter().any(|r| r.status == DeploymentStatus::Deployed) {
                ReleaseStatus::Deployed
            } else {
                ReleaseStatus::Ready
            };
            self.release_moves(settled.release_id, fallback).await?;
            self.auto_rollback(&settled).await;
        }
        Ok(settled)
    }

    /// After a failed deployment, redeploys what ran before when the environment says so.
    async fn auto_rollback(&self, failed: &Promotion) {
        let considered = async {
            let environment = self.environment(failed.environment_id).await?;
            if !environment.policy.auto_rollback {
                return Ok(None);
            }
            let current = self.list(failed.environment_id, Some(PromotionStatus::Deployed), Some(1), None).await?;
            Ok::<_, DomainError>(current.items.first().map(|(_, p)| p.release_id))
        };
        match considered.await {
            Ok(Some(running)) => {
                let why = format!("automatic rollback after promotion {} failed", failed.id);
                let principal = system("auto-rollback");
                if let Err(err) = Box::pin(self.rollback(failed.environment_id, Some(running), why, &principal)).await {
                    tracing::warn!(error = %err, "automatic rollback did not start");
                }
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "automatic rollback could not be considered"),
        }
    }

    async fn record_deployed(&self, promotion: &Promotion) -> Result<()> {
        let release = self
            .repo
            .get_release(promotion.release_id)
            .await?
            .ok_or_else(|| DomainError::not_found("release", promotion.release_id))?;
        // What ran here before is superseded (unless it is this release again).
        let earlier = self.list(promotion.environment_id, Some(PromotionStatus::Deployed), Some(2), None).await?;
        let superseded =
            earlier.items.iter().map(|(_, p)| p).find(|p| p.id != promotion.id && p.release_id != release.id);
        if let Some(previous) = superseded {
            let record = ReleaseEnvironmentRecord {
                release_id: previous.release_id,
                environment_id: promotion.environment_id,
                status: DeploymentStatus::Superseded,
                deployed_at: None,
                updated_at: Utc::now(),
            };
            self.repo.record_release_deployed(&record, &[]).await?;
        }
        let (record, components) = deployed_records(promotion, &release, Utc::now());
        self.repo.record_release_deployed(&record, &components).await?;
        self.release_moves(release.id, ReleaseStatus::Deployed).await?;
        self.auto_promote(promotion).await;
        Ok(())
    }

    /// Proposes the release to the next environment when it asks for that and is not held.
    /// Whatever stops it (a gate, another active promotion) is logged, not raised.
    async fn auto_promote(&self, deployed: &Promotion) {
        let next = async {
            let environments = self.repo.list_environments().await?;
            let here = environments.iter().find(|e| e.id == deployed.environment_id).map(|e| e.order);
            let next = environments.into_iter().filter(|e| here.is_some_and(|h| e.order > h)).min_by_key(|e| e.order);
            match next {
                Some(env) if env.policy.auto_promote && self.promotions.hold(env.id).await?.is_none() => Ok(Some(env)),
                _ => Ok::<_, DomainError>(None),
            }
        };
        match next.await {
            Ok(Some(env)) => {
                let principal = system("auto-promote");
                let request = Box::pin(self.request(deployed.release_id, env.id, None, &principal, true));
                match request.await {
                    Ok(p) => tracing::info!(promotion_id = %p.id, environment = %env.name, "auto-promotion requested"),
                    Err(err) => tracing::warn!(environment = %env.name, error = %err, "auto-promotion did not start"),
                }
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "auto-promotion could not be considered"),
        }
    }

    /// Rolls an environment back to the release before the current one, or to `to`,
    /// through the same deployment path; the replaced promotion becomes `ROLLED_BACK` and
    /// auto-promotion into the environment is held until `release_hold`.
    #[instrument(skip_all, fields(environment_id = %environment_id), err)]
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
        let release = self.repo.get_release(target).await?.ok_or_else(|| DomainError::not_found("release", target))?;
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
            gates: vec![gate("rollback", true, format!("rollback by {}: {reason}", who.subject))],
            approvals: Vec::new(),
            required_approvals: 0,
            reason: None,
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        let payload = json!({ "from": current.as_ref().map(|c| c.release_id), "to": target, "reason": reason });
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
        Box::pin(self.begin(promotion)).await
    }

    /// Lets auto-promotion into the environment resume.
    #[instrument(skip_all, fields(environment_id = %environment), err)]
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

    async fn put_hold(&self, environment: EnvironmentId, hold: Option<Hold>, actor: &str) -> Result<()> {
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

    /// Moves the release's status where the lifecycle allows it, retrying lost races.
    async fn release_moves(&self, id: ReleaseId, next: ReleaseStatus) -> Result<()> {
        for _ in 0..CHAIN_RETRIES {
            let before = self.repo.get_release(id).await?.ok_or_else(|| DomainError::not_found("release", id))?;
            if before.status == next || !before.status.can_become(next) {
                return Ok(());
            }
            let mut after = before.clone();
            after.status = next;
            after.updated_at = Utc::now();
            after.revision = before.revision + 1;
            match self.repo.update_release(&before, &after).await {
                Err(DomainError::Conflict(_)) => continue,
                other => return other,
            }
        }
        Err(DomainError::conflict(format!("release {id} keeps changing; retry")))
    }

    fn draft(&self, p: &Promotion, kind: &'static str, actor: &str, payload: serde_json::Value) -> EvidenceDraft {
        EvidenceDraft {
            environment_id: p.environment_id,
            promotion_id: Some(p.id),
            release_id: Some(p.release_id),
            kind,
            actor: actor.to_owned(),
            payload,
        }
    }

    /// Runs `write` with evidence sealed on the environment's current chain head, again on
    /// the new head when another decision got there first.
    async fn with_evidence<F, Fut>(
        &self,
        environment: EnvironmentId,
        drafts: Vec<EvidenceDraft>,
        write: F,
    ) -> Result<()>
    where
        F: Fn(Vec<EvidenceRecord>, Option<ChainHead>) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        for _ in 0..CHAIN_RETRIES {
            let head = self.evidence.chain_head(environment).await?;
            let records = seal(drafts.clone(), head.as_ref(), self.signer.as_ref())?;
            match write(records, head).await {
                Err(err) if chain_moved(&err) => continue,
                other => return other,
            }
        }
        Err(DomainError::conflict("too many decisions at once in this environment; retry"))
    }

    /// The promotion's deployments, one per target.
    pub async fn deployments(&self, id: PromotionId) -> Result<Vec<Deployment>> {
        self.rollout.deployments.deployments_of(id).await
    }

    pub async fn evidence_of(&self, id: PromotionId) -> Result<Vec<EvidenceRecord>> {
        self.get(id).await?;
        self.evidence.evidence_of_promotion(id).await
    }

    pub async fn environment_evidence(
        &self,
        environment: EnvironmentId,
        first: Option<i64>,
        after: Option<String>,
    ) -> Result<Page<EvidenceRecord>> {
        let first = page_size(first)?;
        self.evidence.environment_evidence(environment, &PageRequest { first, after }).await
    }

    /// Walks an environment's whole chain.
    #[instrument(skip_all, fields(environment_id = %environment), err)]
    pub async fn verify_evidence(&self, environment: EnvironmentId) -> Result<ChainReport> {
        self.environment(environment).await?;
        let head = self.evidence.chain_head(environment).await?;
        verify_chain(head.as_ref(), &self.evidence.evidence_chain(environment).await?, self.signer.as_ref())
    }

    pub async fn get(&self, id: PromotionId) -> Result<Promotion> {
        self.promotions.get_promotion(id).await?.ok_or_else(|| DomainError::not_found("promotion", id))
    }

    pub async fn list(
        &self,
        environment: EnvironmentId,
        status: Option<PromotionStatus>,
        first: Option<i64>,
        after: Option<String>,
    ) -> Result<Page<Promotion>> {
        let first = match first {
            None => crate::service::DEFAULT_PAGE,
            Some(n) if (1..=crate::service::MAX_PAGE as i64).contains(&n) => n as usize,
            Some(n) => {
                return Err(DomainError::validation(format!(
                    "first must be between 1 and {}, not {n}",
                    crate::service::MAX_PAGE
                )));
            }
        };
        self.promotions.list_promotions(environment, status, &PageRequest { first, after }).await
    }

    /// Requests a promotion of `release` into `environment`.
    #[instrument(skip_all, fields(release_id = %release_id, environment_id = %environment_id), err)]
    pub async fn request(
        &self,
        release_id: ReleaseId,
        environment_id: EnvironmentId,
        comment: Option<String>,
        requester: &Principal,
        automatic: bool,
    ) -> Result<Promotion> {
        let comment = long_text("comment", comment, 2000)?;
        let release =
            self.repo.get_release(release_id).await?.ok_or_else(|| DomainError::not_found("release", release_id))?;
        let environments = self.repo.list_environments().await?;
        let environment = environments
            .iter()
            .find(|e| e.id == environment_id)
            .cloned()
            .ok_or_else(|| DomainError::not_found("environment", environment_id))?;
        if release.status == ReleaseStatus::Deprecated {
            return Err(DomainError::conflict(format!(
                "release {} is deprecated and cannot be promoted",
                release.name
            )));
        }
        if release.status == ReleaseStatus::Draft {
            return Err(DomainError::conflict(format!("release {} is a draft; mark it READY first", release.name)));
        }
        let previous = environments.iter().filter(|e| e.order < environment.order).max_by_key(|e| e.order);
        let gates = self.evaluate(&release, &environment, previous, automatic).await?;
        if let Some(failed) = gates.iter().find(|g| !g.passed) {
            return Err(DomainError::conflict(format!("gate {} did not pass: {}", failed.gate, failed.detail)));
        }
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
                json!({ "release": release.name, "environment": environment.name, "comment": promotion.comment, "automatic": automatic }),
            ),
            self.draft(&promotion, "gate_evaluation", "gantry", json!({ "gates": promotion.gates, "status": promotion.status.as_str() })),
        ];
        self.create(&promotion, drafts).await?;
        tracing::info!(promotion_id = %promotion.id, status = promotion.status.as_str(), "promotion requested");
        if promotion.status == PromotionStatus::Approved {
            return self.begin(promotion).await;
        }
        Ok(promotion)
    }

    /// The gates of `environment` for `release`; every one is evaluated and recorded.
    async fn evaluate(
        &self,
        release: &Release,
        environment: &Environment,
        previous: Option<&Environment>,
        automatic: bool,
    ) -> Result<Vec<GateResult>> {
        let policy = &environment.policy;
        let mut gates = Vec::new();
        let records = self.repo.release_environment_records(release.id).await?;
        let previous_record = previous.and_then(|p| records.iter().find(|r| r.environment_id == p.id));
        gates.push(match previous {
            None => gate("previous_environment", true, "the first environment of the path"),
            Some(p) => match previous_record {
                Some(r) if r.status == DeploymentStatus::Deployed => {
                    gate("previous_environment", true, format!("deployed in {}", p.name))
                }
                _ => gate("previous_environment", false, format!("not deployed and healthy in {}", p.name)),
            },
        });
        if policy.require_build_success {
            let commit = release.source_ref.as_ref().and_then(|s| s.commit_sha.clone());
            let passed = match &commit {
                Some(sha) => match self.builds.for_commit(sha).await {
                    Ok(builds) => builds.iter().any(|b| b.status == BuildStatus::Success),
                    Err(DomainError::Validation(_)) => false,
                    Err(err) => return Err(err),
                },
                None => false,
            };
            let detail = match (&commit, passed) {
                (None, _) => "the release names no commit".to_owned(),
                (Some(sha), true) => format!("a successful build of {sha}"),
                (Some(sha), false) => format!("no successful build of {sha}"),
            };
            gates.push(gate("build_success", passed, detail));
        }
        if policy.min_soak_minutes > 0 {
            let soaked = previous_record.and_then(|r| r.deployed_at).map(|at| Utc::now() - at);
            let needed = Duration::minutes(i64::from(policy.min_soak_minutes));
            let passed = soaked.is_some_and(|s| s >= needed);
            let detail = match soaked {
                Some(s) => {
                    format!("{} of {} minutes in the previous environment", s.num_minutes(), policy.min_soak_minutes)
                }
                None => "not running in the previous environment".to_owned(),
            };
            gates.push(gate("min_soak", passed, detail));
        }
        if policy.manual_only {
            gates.push(gate(
                "manual_only",
                !automatic,
                if automatic { "automatic promotion is not allowed here" } else { "requested by a person" },
            ));
        }
        Ok(gates)
    }

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

    async fn environment(&self, id: EnvironmentId) -> Result<Environment> {
        self.repo.get_environment(id).await?.ok_or_else(|| DomainError::not_found("environment", id))
    }

    /// A promotion awaiting approval, and its environment, when `who` may approve there.
    async fn pending_for(&self, id: PromotionId, who: &Principal) -> Result<(Promotion, Environment)> {
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

    fn check_approver(&self, environment: &Environment, who: &Principal) -> Result<()> {
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

    async fn save(
        &self,
        before: &Promotion,
        mut after: Promotion,
        kind: &'static str,
        actor: &str,
        payload: serde_json::Value,
    ) -> Result<Promotion> {
        after.updated_at = Utc::now();
        after.revision = before.revision + 1;
        let drafts = vec![self.draft(&after, kind, actor, payload)];
        self.with_evidence(after.environment_id, drafts, |records, head| {
            let after = &after;
            async move {
                self.promotions
                    .update_promotion(before, after, EvidenceAppend { records: &records, head: head.as_ref() })
                    .await
            }
        })
        .await?;
        tracing::info!(promotion_id = %after.id, status = after.status.as_str(), "promotion updated");
        Ok(after)
    }
}
