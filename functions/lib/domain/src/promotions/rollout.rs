//! Deploying an approved promotion and what follows its end: the release's record,
//! auto-promotion to the next environment, automatic rollback.

use super::admission::{Asker, Phase, SupplyChainVerdict};
use super::*;
use crate::ci::ReportState;
use crate::model::DeployedComponent;
use crate::targets::DeploymentTarget;

/// How often settling is tried when a write lands between its read and its own write.
const SETTLE_ATTEMPTS: u32 = 3;

impl Promotions {
    /// Starts deploying an approved promotion: one deployment per target, written with the
    /// promotion's move to `DEPLOYING`, then one queued job per target.
    #[instrument(skip_all, fields(promotion_id = %approved.id), err(level = "info"))]
    pub(super) async fn deploy(&self, approved: Promotion) -> Result<Promotion> {
        let supply_chain = match self.supply_chain_at_deploy(&approved).await? {
            Ok(verdict) => verdict,
            Err(refused) => return Ok(refused),
        };
        let targets = self.rollout.targets.targets_of(approved.environment_id).await?;
        self.release_moves(approved.release_id, ReleaseStatus::Promoting).await?;
        let deployments = pending_deployments(&approved, &targets);
        let mut after = approved.clone();
        after.status = PromotionStatus::Deploying;
        after.updated_at = Utc::now();
        after.revision = approved.revision + 1;
        let mut started = started_payload(&targets);
        if let Some(verdict) = supply_chain {
            started["supplyChain"] = verdict.evidence();
        }
        let drafts = vec![self.draft(&after, "deployment_started", "gantry", started)];
        self.write(Write::Begin(&approved, &deployments), &after, drafts, "gantry").await?;
        self.start_jobs(after, &deployments).await
    }

    /// Stores a request that needs no approval, no step and no supply-chain check at deploy
    /// as it would be once approved and begun, in one transaction: `DEPLOYING`, with its
    /// deployments, the evidence of both (`drafts`, then `deployment_started`) and its
    /// release's move to `PROMOTING`; then queues its jobs. A release that changed meanwhile
    /// (another environment's promotion moved it) is read again.
    pub(super) async fn start(
        &self,
        approved: Promotion,
        mut drafts: Vec<EvidenceDraft>,
        mut release: Release,
    ) -> Result<Promotion> {
        let targets = self.rollout.targets.targets_of(approved.environment_id).await?;
        let deployments = pending_deployments(&approved, &targets);
        let mut after = approved.clone();
        after.status = PromotionStatus::Deploying;
        drafts.push(self.draft(&after, "deployment_started", "gantry", started_payload(&targets)));
        let mut attempts = CHAIN_RETRIES;
        loop {
            let promoting = moved_to(&release, ReleaseStatus::Promoting);
            let write = Write::Start(&approved, &deployments, promoting.as_ref().map(|p| (&release, p)));
            match self.write(write, &after, drafts.clone(), "gantry").await {
                Ok(()) => break,
                Err(DomainError::Conflict(why)) if attempts > 1 => {
                    let now = self.release(release.id).await?;
                    if now.revision == release.revision {
                        return Err(DomainError::Conflict(why));
                    }
                    (release, attempts) = (now, attempts - 1);
                }
                Err(err) => return Err(err),
            }
        }
        tracing::info!(promotion_id = %after.id, status = after.status.as_str(), "promotion requested");
        self.start_jobs(after, &deployments).await
    }

    /// Queues one job per deployment of a promotion that turned `DEPLOYING`, or settles it at
    /// once when it has none. Jobs that cannot be sent are left to the sweep (`sweep.rs`):
    /// the promotion is stored, and the caller is told what it is.
    async fn start_jobs(&self, after: Promotion, deployments: &[Deployment]) -> Result<Promotion> {
        let jobs: Vec<DeployJob> = deployments.iter().map(|d| d.job(deployments.len())).collect();
        if jobs.is_empty() {
            // Nothing to deploy to: the promotion passes through DEPLOYING and ends at once.
            self.announce(&after, ReportState::Queued).await;
            self.announce(&after, ReportState::InProgress).await;
            return self.settle(after.id).await;
        }
        match self.rollout.queue.enqueue_jobs(&jobs).await {
            Ok(()) => tracing::info!(targets = jobs.len(), "deployment started"),
            // The promotion is DEPLOYING as stored: the sweep queues its jobs again.
            Err(err) => tracing::warn!(error = %err, targets = jobs.len(), "deploy jobs not queued: left to the sweep"),
        }
        self.announce(&after, ReportState::Queued).await;
        Ok(after)
    }

    /// The supply-chain gate again just before deploying, since a key may have been
    /// removed (or a vulnerability found) since the request: its verdict when it passes
    /// (none when the environment has no such gate), else the promotion failed, with the
    /// decision sealed as evidence.
    async fn supply_chain_at_deploy(
        &self,
        approved: &Promotion,
    ) -> Result<std::result::Result<Option<SupplyChainVerdict>, Promotion>> {
        let environment = self.environment(approved.environment_id).await?;
        if !environment.policy.guards_supply_chain() {
            return Ok(Ok(None));
        }
        let id = approved.release_id;
        let release = self.release(id).await?;
        let asker = Asker { requested_by: &approved.requested_by, automatic: approved.automatic };
        let verdict = self.supply_chain_gate(&release, &environment, Phase::Deploy, asker).await?;
        let verdict = match verdict {
            Some(v) if !v.gate.passed => v,
            passed => return Ok(Ok(passed)),
        };
        let mut after = approved.clone();
        after.status = PromotionStatus::Failed;
        after.reason = Some(format!("gate supply_chain did not pass at deploy: {}", verdict.gate.detail));
        let mut payload = verdict.evidence();
        payload["status"] = json!(after.status.as_str());
        let saved = self.save(approved, after, "supply_chain_check", "gantry", payload).await?;
        tracing::warn!(promotion_id = %saved.id, "refused at deploy by the supply-chain gate");
        self.announce(&saved, ReportState::Failure).await;
        Ok(Err(saved))
    }

    /// Stores a new promotion with its evidence, on the current chain head.
    pub(super) async fn create(&self, promotion: &Promotion, drafts: Vec<EvidenceDraft>) -> Result<()> {
        self.write(Write::Create, promotion, drafts, &promotion.requested_by).await
    }

    /// As [`Promotions::settle`] once the promotion's last deployment has ended, by one
    /// caller only: one conditional write while others still run, or when several end at once.
    pub async fn settle_when_done(&self, id: PromotionId) -> Result<()> {
        if self.rollout.deployments.settle_turn(id).await? { self.settle(id).await.map(drop) } else { Ok(()) }
    }

    /// Ends a deploying promotion once every deployment has ended: `DEPLOYED` when all
    /// succeeded, else `FAILED` with the failures as its reason.
    #[instrument(skip_all, fields(promotion_id = %id), err(level = "info"))]
    pub async fn settle(&self, id: PromotionId) -> Result<Promotion> {
        self.settle_within(id, SETTLE_ATTEMPTS).await
    }

    async fn settle_within(&self, id: PromotionId, attempts: u32) -> Result<Promotion> {
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
        let results = results_payload(&deployments);
        if failed.is_empty()
            && let Some(started) = self.begin_post_deploy(&before, PromotionStatus::Deploying, results.clone()).await?
        {
            return Ok(started);
        }
        let mut after = before.clone();
        after.status = if failed.is_empty() { PromotionStatus::Deployed } else { PromotionStatus::Failed };
        after.reason = if deployments.is_empty() {
            Some("the environment has no targets".into())
        } else {
            (!failed.is_empty()).then(|| failed.join("; "))
        };
        let settled = match self.save(&before, after, "deployment_result", "gantry", results).await {
            Ok(p) => p,
            // Another worker settled it first, or the environment's health moved meanwhile.
            Err(DomainError::Conflict(_)) => {
                let now = self.get(id).await?;
                if now.status == PromotionStatus::Deploying && attempts > 1 {
                    return Box::pin(self.settle_within(id, attempts - 1)).await;
                }
                return Ok(now);
            }
            Err(err) => return Err(err),
        };
        self.settled(&settled, false).await?;
        Ok(settled)
    }

    /// What follows a deployment's end: the report to CI, the release's record, and
    /// auto-promotion after success or auto-rollback after failure.
    /// `roll_back` rolls back after a failure even where the environment has no autoRollback.
    pub(super) async fn settled(&self, settled: &Promotion, roll_back: bool) -> Result<()> {
        let report =
            if settled.status == PromotionStatus::Deployed { ReportState::Success } else { ReportState::Failure };
        self.announce(settled, report).await;
        if settled.status == PromotionStatus::Deployed {
            self.release_moves(settled.release_id, ReleaseStatus::Deployed).await?;
            self.auto_promote(settled).await;
            return Ok(());
        }
        let records = self.repo.release_environment_records(settled.release_id).await?;
        let fallback = if records.iter().any(|r| r.status == DeploymentStatus::Deployed) {
            ReleaseStatus::Deployed
        } else {
            ReleaseStatus::Ready
        };
        self.release_moves(settled.release_id, fallback).await?;
        self.auto_rollback(settled, roll_back).await;
        Ok(())
    }

    /// After a failed deployment, redeploys what ran before when the environment says so.
    pub(super) async fn auto_rollback(&self, failed: &Promotion, always: bool) {
        let considered = async {
            let environment = self.environment(failed.environment_id).await?;
            if !always && !environment.policy.auto_rollback {
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

    /// Writes the release's record in the promotion's environment (and supersedes what ran
    /// there before), as the promotion turns `DEPLOYED`; `release` when the caller read it.
    pub(super) async fn record_deployed(&self, promotion: &Promotion, release: Option<Release>) -> Result<()> {
        let release = match release {
            Some(release) => release,
            None => self.release(promotion.release_id).await?,
        };
        // What runs here now is superseded (unless it is this release again).
        let running = self.list(promotion.environment_id, Some(PromotionStatus::Deployed), Some(1), None).await?;
        let superseded =
            running.items.iter().map(|(_, p)| p).find(|p| p.id != promotion.id && p.release_id != release.id);
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
        self.repo.record_release_deployed(&record, &components).await
    }

    /// Proposes the release to the next environment when it asks for that and is not held.
    /// Whatever stops it (a gate, another active promotion) is logged, not raised.
    pub(super) async fn auto_promote(&self, deployed: &Promotion) {
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
                let request = Box::pin(self.request(deployed.release_id, env.id, (None, None), &principal, true));
                match request.await {
                    Ok(p) => tracing::info!(promotion_id = %p.id, environment = %env.name, "auto-promotion requested"),
                    Err(err) => tracing::warn!(environment = %env.name, error = %err, "auto-promotion did not start"),
                }
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "auto-promotion could not be considered"),
        }
    }

    /// Moves the release's status where the lifecycle allows it, retrying lost races.
    pub(super) async fn release_moves(&self, id: ReleaseId, next: ReleaseStatus) -> Result<()> {
        for _ in 0..CHAIN_RETRIES {
            let before = self.release(id).await?;
            let Some(after) = moved_to(&before, next) else { return Ok(()) };
            match self.repo.update_release(&before, &after).await {
                Err(DomainError::Conflict(_)) => continue,
                other => return other,
            }
        }
        Err(DomainError::conflict(format!("release {id} keeps changing; retry")))
    }
}

/// The records a successful promotion leaves: the release runs in the environment, and
/// which digest of each component runs there.
pub(super) fn deployed_records(
    promotion: &Promotion,
    release: &Release,
    at: DateTime<Utc>,
) -> (ReleaseEnvironmentRecord, Vec<DeployedComponent>) {
    let record = ReleaseEnvironmentRecord {
        release_id: release.id,
        environment_id: promotion.environment_id,
        status: DeploymentStatus::Deployed,
        deployed_at: Some(at),
        updated_at: at,
    };
    let components = release
        .components
        .iter()
        .map(|c| DeployedComponent {
            environment_id: promotion.environment_id,
            component_id: c.component_id,
            release_id: release.id,
            digest: c.digest.clone(),
            tag: c.tag.clone(),
            version: c.version.clone(),
            channel: c.channel.clone(),
            deployed_at: at,
        })
        .collect();
    (record, components)
}

/// A pending deployment of `promotion` to each target.
fn pending_deployments(promotion: &Promotion, targets: &[DeploymentTarget]) -> Vec<Deployment> {
    targets
        .iter()
        .map(|t| Deployment {
            promotion_id: promotion.id,
            target_id: t.id,
            environment_id: promotion.environment_id,
            target_name: t.name.to_string(),
            kind: t.config.kind(),
            state: DeploymentState::Pending,
            attempt: 1,
            lease_owner: None,
            lease_until: None,
            message: None,
            started_at: None,
            finished_at: None,
            artifact: None,
            prior: None,
            traffic_steps: Vec::new(),
            control: None,
        })
        .collect()
}

/// The `deployment_started` evidence: the targets, by name.
fn started_payload(targets: &[DeploymentTarget]) -> serde_json::Value {
    json!({ "targets": targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>() })
}

/// The release moved to `next`, where the lifecycle allows it and it is not there already.
fn moved_to(release: &Release, next: ReleaseStatus) -> Option<Release> {
    if release.status == next || !release.status.can_become(next) {
        return None;
    }
    let mut after = release.clone();
    after.status = next;
    after.updated_at = Utc::now();
    after.revision = release.revision + 1;
    Some(after)
}
