//! What a promotion's end adds to its environment's delivery insights, written with it.

use chrono::Duration;

use super::*;
use crate::ids::ComponentId;
use crate::insights::{End, Tally, seconds_between, tally};
use crate::values::Digest;

impl Promotions {
    /// The counters and health change of `before` becoming `after`: a deploying promotion
    /// ending, or a deployed one rolled back. Any other change adds nothing. With the
    /// release, when it had to be read.
    pub(super) async fn tally(&self, before: &Promotion, after: &Promotion) -> Result<(Tally, Option<Release>)> {
        use PromotionStatus::{Deployed, Deploying, Failed, RolledBack};
        let (environment, at) = (after.environment_id, after.updated_at);
        let end = match (before.status, after.status) {
            (Deploying, Deployed) => End::Deployed { lead: None, rollback: after.is_rollback() },
            (Deploying, Failed) => End::Failed,
            (Deployed, RolledBack) => {
                let hours = self.environment(environment).await?.policy.change_failure_window_hours;
                let deployed_at = before.updated_at;
                End::RolledBack { deployed_at, within_window: at - deployed_at <= Duration::hours(hours.into()) }
            }
            _ => return Ok((Tally::none(environment), None)),
        };
        let release = self.release(after.release_id).await?;
        let end = match end {
            End::Deployed { rollback: false, .. } => {
                End::Deployed { lead: self.lead_time(&release, at).await?, rollback: false }
            }
            other => other,
        };
        let changed = self.changed_components(after, &release, end).await?;
        let failing_since = match end {
            End::Deployed { .. } => self.rollout.insights.failing_since(environment).await?,
            _ => None,
        };
        Ok((tally(environment, end, at, &changed, failing_since), Some(release)))
    }

    /// Seconds from the release's commit to `DEPLOYED`: the commit time its `sourceRef`
    /// gives, else the earliest one a CI build of its commit reported; `None` when unknown.
    async fn lead_time(&self, release: &Release, deployed_at: DateTime<Utc>) -> Result<Option<u64>> {
        let Some(source) = release.source_ref.clone() else { return Ok(None) };
        let committed = match (source.committed_at, source.commit_sha) {
            (Some(at), _) => Some(at),
            (None, Some(sha)) => self.builds.for_commit(&sha).await?.into_iter().filter_map(|b| b.committed_at).min(),
            (None, None) => None,
        };
        Ok(committed.map(|c| seconds_between(c, deployed_at)))
    }

    /// The components whose digest `promotion`'s release changes in its environment: against
    /// what runs there, or for a rollback, against the release deployed before it.
    async fn changed_components(&self, promotion: &Promotion, release: &Release, end: End) -> Result<Vec<ComponentId>> {
        let ran: Vec<(ComponentId, Digest)> = if let End::RolledBack { .. } = end {
            let deployed = self.list(promotion.environment_id, Some(PromotionStatus::Deployed), Some(2), None).await?;
            match deployed.items.into_iter().map(|(_, p)| p).find(|p| p.id != promotion.id) {
                Some(previous) => self
                    .release(previous.release_id)
                    .await?
                    .components
                    .into_iter()
                    .map(|c| (c.component_id, c.digest))
                    .collect(),
                None => Vec::new(),
            }
        } else {
            let running = self.repo.deployed_components(promotion.environment_id).await?;
            running.into_iter().map(|d| (d.component_id, d.digest)).collect()
        };
        let changed =
            |c: &&crate::model::ReleaseComponent| !ran.iter().any(|(id, d)| *id == c.component_id && *d == c.digest);
        Ok(release.components.iter().filter(changed).map(|c| c.component_id).collect())
    }
}
