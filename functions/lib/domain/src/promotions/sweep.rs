//! Promotions stalled between two of their writes. A promotion moves in one write and the
//! job that carries it on is queued, or the next write made, in the next request; when that
//! fails (a queue or the table out of reach) or the process dies between the two, nothing
//! would ever move it again, and it would hold its environment's lock for ever. A sweep,
//! which a schedule queues every minute, finds the active promotions unchanged for a while
//! and moves each on from where it stopped:
//!
//! - `DEPLOYING`: the job of each `PENDING` deployment is queued again;
//! - `APPROVED` with no step planned (stopped between its approval and its start): it
//!   begins, as the approval would have begun it; a rollback is failed instead (its own
//!   writes, the replaced promotion and the hold, were never made), which frees the
//!   environment to roll back again;
//! - `APPROVED` with every pre-deploy step passed: it starts deploying;
//! - a step `QUEUED` in the phase the promotion is in: its job is queued again.
//!
//! A step that is starting or running is left alone: its own checks carry it.

use serde::{Deserialize, Serialize};

use super::*;
use crate::deployments::DeployJob;
use crate::steps::{Phase, StepState};

/// A request for a sweep, as the deploy-jobs queue carries it (`{"sweep":"promotions"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sweep {
    pub sweep: SweepKind,
    /// How long a promotion stays unchanged before it counts as stalled: until then its
    /// jobs may still be on their way. Each job is queued again at most once in this long.
    #[serde(default = "default_grace")]
    pub after_seconds: u32,
}

/// What a sweep looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepKind {
    /// Active promotions that stalled. (`deployments`, as schedules set up before the
    /// sweep also moved approved promotions on name it, asks for the same.)
    #[serde(alias = "deployments")]
    Promotions,
}

/// Two minutes: a queued job is claimed within seconds unless the queue is far behind, and
/// then the job queued again only finds its deployment taken.
pub const SWEEP_GRACE_SECONDS: u32 = 120;

fn default_grace() -> u32 {
    SWEEP_GRACE_SECONDS
}

impl Sweep {
    /// The sweep the schedule asks for.
    pub fn promotions() -> Self {
        Self { sweep: SweepKind::Promotions, after_seconds: SWEEP_GRACE_SECONDS }
    }
}

/// The evidence kind of a stalled rollback's failure.
pub const STALLED: &str = "stalled";

/// The step of `promotion` whose job is lost if it stalled: the one `QUEUED` in the phase
/// its status runs.
fn queued_step(promotion: &Promotion) -> Option<usize> {
    let phase = match promotion.status {
        PromotionStatus::Approved => Phase::PreDeploy,
        PromotionStatus::Deploying => Phase::PostDeploy,
        _ => return None,
    };
    promotion.steps.iter().position(|s| s.spec.phase == phase && s.state == StepState::Queued)
}

impl Promotions {
    /// Moves on every active promotion unchanged for `after_seconds` (see the module); how
    /// many jobs it queued again and promotions it moved. A promotion that fails to move is
    /// logged and left for the next sweep; the others still move.
    #[instrument(skip_all, err(level = "info"))]
    pub async fn sweep(&self, sweep: &Sweep, now: DateTime<Utc>) -> Result<usize> {
        let before = now - chrono::Duration::seconds(i64::from(sweep.after_seconds));
        // One active promotion per environment: a page of two holds every one of a status.
        let page = PageRequest { first: 2, after: None };
        let (mut jobs, mut moved) = (Vec::new(), 0);
        for environment in self.repo.list_environments().await? {
            for status in [PromotionStatus::Approved, PromotionStatus::Deploying] {
                let found = self.promotions.list_promotions(environment.id, Some(status), &page).await?;
                for (_, promotion) in found.items.into_iter().filter(|(_, p)| p.updated_at < before) {
                    let id = promotion.id;
                    match self.move_on(promotion, now, before, &mut jobs).await {
                        Ok(n) => moved += n,
                        Err(err) => {
                            tracing::warn!(promotion_id = %id, error = %err, "a stalled promotion did not move")
                        }
                    }
                }
            }
        }
        if !jobs.is_empty() {
            tracing::warn!(jobs = jobs.len(), "deployments no job carried: queued again");
            self.rollout.queue.enqueue_jobs(&jobs).await?;
        }
        tracing::info!(queued = jobs.len(), moved, "sweep done");
        Ok(jobs.len() + moved)
    }

    /// Moves one stalled promotion on; how many moves it made (the jobs of its lost
    /// deployments are added to `jobs` instead).
    async fn move_on(
        &self,
        promotion: Promotion,
        now: DateTime<Utc>,
        before: DateTime<Utc>,
        jobs: &mut Vec<DeployJob>,
    ) -> Result<usize> {
        if let Some(step) = queued_step(&promotion) {
            if !self.promotions.mark_swept(&promotion, now, before).await? {
                return Ok(0);
            }
            tracing::warn!(promotion_id = %promotion.id, step, "a step no job carried: queued again");
            self.queue_step(promotion.id, step, 0, 0).await?;
            return Ok(1);
        }
        if promotion.status == PromotionStatus::Deploying {
            jobs.extend(self.lost_jobs(&promotion, now, before).await?);
            return Ok(0);
        }
        let started = !promotion.steps.is_empty();
        let pre_deploy_done = promotion.steps.iter().filter(|s| s.spec.phase == Phase::PreDeploy).all(|s| s.passed());
        let moved = match (started, promotion.is_rollback()) {
            (false, true) => self.fail_stalled_rollback(promotion).await,
            (false, false) => self.begin(promotion, true).await,
            (true, _) if pre_deploy_done => self.deploy(promotion).await,
            // A step is starting or running: its checks carry it.
            (true, _) => return Ok(0),
        };
        match moved {
            Ok(p) => {
                tracing::warn!(promotion_id = %p.id, status = p.status.as_str(), "a stalled promotion moved on");
                Ok(1)
            }
            // Another writer moved it meanwhile.
            Err(DomainError::Conflict(_)) => Ok(0),
            Err(err) => Err(err),
        }
    }

    async fn fail_stalled_rollback(&self, before: Promotion) -> Result<Promotion> {
        let mut after = before.clone();
        after.status = PromotionStatus::Failed;
        after.reason = Some("the rollback stopped before it began deploying; roll back again".into());
        self.save(&before, after, STALLED, "gantry", json!({ "previousStatus": before.status.as_str() })).await
    }

    /// The jobs of the promotion's pending deployments, each marked swept at `now` unless a
    /// sweep since `before` did.
    async fn lost_jobs(
        &self,
        promotion: &Promotion,
        now: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<Vec<DeployJob>> {
        let deployments = self.rollout.deployments.deployments_of(promotion.id).await?;
        let mut jobs = Vec::new();
        for d in deployments.iter().filter(|d| d.state == DeploymentState::Pending) {
            let job = d.job(deployments.len());
            if self.rollout.deployments.mark_swept(&job, now, before).await? {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::steps::{StepAction, StepRun, StepSpec};

    fn step(name: &str, phase: Phase, state: StepState) -> StepRun {
        let action = StepAction::TriggerCi {
            pipeline: Some("smoke.yml".into()),
            repository: None,
            git_ref: None,
            variables: BTreeMap::new(),
            wait_for_completion: false,
        };
        let spec = StepSpec { name: name.into(), phase, integration_id: None, timeout_seconds: 60, action };
        StepRun { state, ..StepRun::planned(spec) }
    }

    #[test]
    fn the_lost_step_is_the_one_queued_in_the_phase_the_promotion_runs() {
        let mut p = crate::fixtures::promotion("someone", 0);
        p.steps = vec![
            step("smoke", Phase::PreDeploy, StepState::Succeeded),
            step("verify", Phase::PostDeploy, StepState::Queued),
        ];
        p.status = PromotionStatus::Approved;
        assert_eq!(queued_step(&p), None, "a post-deploy step does not run while approved");
        p.status = PromotionStatus::Deploying;
        assert_eq!(queued_step(&p), Some(1));
        p.steps[0].state = StepState::Queued;
        p.status = PromotionStatus::Approved;
        assert_eq!(queued_step(&p), Some(0));
        for ended in [PromotionStatus::Deployed, PromotionStatus::Failed, PromotionStatus::PendingApproval] {
            p.status = ended;
            assert_eq!(queued_step(&p), None, "{ended:?} runs no step");
        }
    }

    #[test]
    fn a_sweep_asked_for_by_its_earlier_name_is_the_same_sweep() {
        let earlier: Sweep = serde_json::from_str(r#"{"sweep":"deployments","afterSeconds":30}"#).unwrap();
        assert_eq!(earlier, Sweep { after_seconds: 30, ..Sweep::promotions() });
        let asked: Sweep = serde_json::from_str(r#"{"sweep":"promotions"}"#).unwrap();
        assert_eq!(asked, Sweep::promotions());
        assert!(serde_json::from_str::<Sweep>(r#"{"sweep":"everything"}"#).is_err());
    }
}
