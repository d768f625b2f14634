//! Deployments no job carries. A promotion turns `DEPLOYING` in one write and its jobs are
//! queued in the next request; when that send fails (the queue out of reach) or the
//! process dies between the two, nothing would ever claim its deployments. A sweep, which a
//! schedule queues every minute, finds them and queues their jobs again.

use serde::{Deserialize, Serialize};

use super::*;
use crate::deployments::DeployJob;

/// A request for a sweep, as the deploy-jobs queue carries it (`{"sweep":"deployments"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sweep {
    pub sweep: SweepKind,
    /// How long a promotion stays unchanged before its pending deployments count as lost:
    /// until then their jobs may still be on their way. Each is queued again at most once
    /// in this long, too.
    #[serde(default = "default_grace")]
    pub after_seconds: u32,
}

/// What a sweep looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepKind {
    /// Pending deployments of `DEPLOYING` promotions.
    Deployments,
}

/// Two minutes: a queued job is claimed within seconds unless the queue is far behind, and
/// then the job queued again only finds its deployment taken.
pub const SWEEP_GRACE_SECONDS: u32 = 120;

fn default_grace() -> u32 {
    SWEEP_GRACE_SECONDS
}

impl Sweep {
    /// The sweep the schedule asks for.
    pub fn deployments() -> Self {
        Self { sweep: SweepKind::Deployments, after_seconds: SWEEP_GRACE_SECONDS }
    }
}

impl Promotions {
    /// Queues again the job of every pending deployment of a promotion that has been
    /// `DEPLOYING` unchanged for `after_seconds`, unless a sweep queued it within that
    /// time; how many it queued. A job that was only slow finds its deployment claimed and
    /// does nothing, so a job queued twice deploys once.
    #[instrument(skip_all, err(level = "info"))]
    pub async fn sweep(&self, sweep: &Sweep, now: DateTime<Utc>) -> Result<usize> {
        let before = now - chrono::Duration::seconds(i64::from(sweep.after_seconds));
        // One active promotion per environment: a page of two is every DEPLOYING one.
        let page = PageRequest { first: 2, after: None };
        let mut jobs = Vec::new();
        for environment in self.repo.list_environments().await? {
            let deploying =
                self.promotions.list_promotions(environment.id, Some(PromotionStatus::Deploying), &page).await?;
            for (_, promotion) in deploying.items.into_iter().filter(|(_, p)| p.updated_at < before) {
                jobs.extend(self.lost_jobs(&promotion, now, before).await?);
            }
        }
        if !jobs.is_empty() {
            tracing::warn!(jobs = jobs.len(), "deployments no job carried: queued again");
            self.rollout.queue.enqueue_jobs(&jobs).await?;
        }
        tracing::info!(queued = jobs.len(), "sweep done");
        Ok(jobs.len())
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
