//! Deployment status reports to CI systems: a promotion of a release whose `sourceRef` names
//! a CI integration, a repository and a commit is reported as a deployment there (GitHub's
//! Deployments API, or a GitLab commit status `gantry/<environment>`), `queued` →
//! `in_progress` → `success` or `failure`.
//!
//! Reports travel as jobs on the deploy-jobs queue, so they never block or fail a
//! deployment: announcing one only queues it, and a report that cannot be delivered is
//! retried with growing delays, then recorded as failed on the promotion. They are
//! idempotent and ordered: one delivery at a time talks to the CI system about a promotion
//! (under a short lease), the CI system's deployment is created once, and a state is posted
//! only if it is later than the last one posted, whatever order jobs arrive in.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::ci::{CiAccess, CiClient, CiIntegrationId, CiIntegrations, CiProvider, DeploymentReport, ReportState};
use crate::error::{DomainError, Result};
use crate::ids::PromotionId;
use crate::ports::Repository;
use crate::promotions::{PromotionRepository, PromotionStatus};

/// A report to deliver: the state a promotion reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportJob {
    pub promotion_id: PromotionId,
    pub report: ReportState,
    /// Deliveries tried so far that the CI system did not take.
    pub attempt: u32,
}

/// Queues report jobs, after a delay.
#[async_trait]
pub trait ReportQueue: Send + Sync {
    async fn enqueue_report(&self, job: &ReportJob, delay_seconds: u32) -> Result<()>;
}

/// What has been reported of a promotion to one CI integration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CiReport {
    pub integration_id: CiIntegrationId,
    pub provider: CiProvider,
    /// The CI system's id of the deployment, once created.
    pub external_id: Option<String>,
    /// The last state posted.
    pub state: Option<ReportState>,
    /// Failed deliveries since the last one that went through.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// A delivery is talking to the CI system about this promotion until then.
    pub busy_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// Every report of a promotion, in one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromotionReports {
    pub promotion_id: PromotionId,
    pub reports: Vec<CiReport>,
    pub revision: u64,
}

#[async_trait]
pub trait ReportRepository: Send + Sync {
    async fn reports(&self, promotion: PromotionId) -> Result<Option<PromotionReports>>;
    /// The reports of many promotions in one batch; promotions with none are left out.
    async fn reports_of(&self, promotions: &[PromotionId]) -> Result<Vec<PromotionReports>>;
    /// Stores `after` if the stored revision is still `before` (`None`: nothing stored);
    /// `Conflict` if not.
    async fn save_reports(&self, before: Option<u64>, after: &PromotionReports) -> Result<()>;
}

/// How often a report is tried before it is recorded as failed, and the longest wait.
pub const MAX_REPORT_ATTEMPTS: u32 = 8;
const MAX_DELAY_SECONDS: u32 = 900;
/// How long a delivery may talk to the CI system about a promotion before another may.
const LEASE_SECONDS: i64 = 60;
/// How long a delivery that found the lease taken waits before it looks again.
const LEASE_WAIT_SECONDS: u32 = 5;

fn rank(state: ReportState) -> u8 {
    match state {
        ReportState::Queued => 1,
        ReportState::InProgress => 2,
        ReportState::Success | ReportState::Failure | ReportState::Cancelled => 3,
        ReportState::Inactive => 4,
    }
}

/// The wait before delivery `attempt` (1-based) is tried again: 10 s, 20 s, 40 s … 15 min.
pub fn retry_delay(attempt: u32) -> u32 {
    10u32.saturating_mul(1 << attempt.saturating_sub(1).min(10)).min(MAX_DELAY_SECONDS)
}

#[derive(Clone)]
pub struct Reports {
    pub(crate) promotions: Arc<dyn PromotionRepository>,
    pub(crate) repo: Arc<dyn Repository>,
    pub(crate) store: Arc<dyn ReportRepository>,
    pub(crate) ci: CiIntegrations,
    pub(crate) client: Arc<dyn CiClient>,
    pub(crate) queue: Arc<dyn ReportQueue>,
    /// The dashboard's base URL, which deployments link to (`log_url`).
    pub(crate) public_url: Option<String>,
}

/// Where a promotion is reported, and what.
struct Target {
    integration_id: CiIntegrationId,
    environment_id: crate::ids::EnvironmentId,
    access: CiAccess,
    report: DeploymentReport,
}

impl Reports {
    pub fn new(
        promotions: Arc<dyn PromotionRepository>,
        repo: Arc<dyn Repository>,
        store: Arc<dyn ReportRepository>,
        ci: CiIntegrations,
        client: Arc<dyn CiClient>,
        queue: Arc<dyn ReportQueue>,
    ) -> Self {
        Self { promotions, repo, store, ci, client, queue, public_url: None }
    }

    /// Deployments link to the promotion's page under `public_url` (the API function's
    /// base URL), when given.
    pub fn linking_to(mut self, public_url: Option<String>) -> Self {
        self.public_url = public_url;
        self
    }

    /// What has been reported of a promotion.
    pub async fn of(&self, promotion: PromotionId) -> Result<Vec<CiReport>> {
        Ok(self.store.reports(promotion).await?.map(|r| r.reports).unwrap_or_default())
    }

    /// Batch lookup for data loaders.
    pub async fn of_many(&self, promotions: &[PromotionId]) -> Result<Vec<PromotionReports>> {
        self.store.reports_of(promotions).await
    }

    /// Delivers one report. What the CI system refuses for good is recorded on the promotion;
    /// what may work later is queued again after a delay, up to [`MAX_REPORT_ATTEMPTS`]. Only
    /// a failure of Gantry's own storage is an error, so the queue retries the job.
    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, report = ?job.report, attempt = job.attempt), err(level = "info"))]
    pub async fn deliver(&self, job: ReportJob) -> Result<()> {
        let Some(target) = self.target(&job).await? else { return Ok(()) };
        match self.post(&job, &target).await {
            // GitLab commit statuses have no `inactive`: only GitHub deployments retire.
            Ok(())
                if target.report.state == ReportState::Success
                    && target.report.production
                    && target.access.provider == CiProvider::Github =>
            {
                self.retire_previous(&job, &target).await;
                Ok(())
            }
            Ok(()) => Ok(()),
            // Another delivery is reporting this promotion: come back when it is done.
            Err(DomainError::Conflict(_)) => self.queue.enqueue_report(&job, LEASE_WAIT_SECONDS).await,
            Err(err @ DomainError::Unavailable(_)) if job.attempt + 1 < MAX_REPORT_ATTEMPTS => {
                let next = ReportJob { attempt: job.attempt + 1, ..job.clone() };
                self.record_error(&job, &target, &err).await?;
                self.queue.enqueue_report(&next, retry_delay(next.attempt)).await
            }
            Err(DomainError::Internal(detail)) => Err(DomainError::Internal(detail)),
            Err(err) => {
                tracing::warn!(code = err.code(), error = %err, "report not delivered");
                self.record_error(&job, &target, &err).await
            }
        }
    }

    /// The integration, access and report for a job; `None` when the release names nothing
    /// to report to.
    async fn target(&self, job: &ReportJob) -> Result<Option<Target>> {
        let promotion = self
            .promotions
            .get_promotion(job.promotion_id)
            .await?
            .ok_or_else(|| DomainError::not_found("promotion", job.promotion_id))?;
        let release = self
            .repo
            .get_release(promotion.release_id)
            .await?
            .ok_or_else(|| DomainError::not_found("release", promotion.release_id))?;
        let source = release.source_ref.clone().unwrap_or_default();
        let (Some(raw_id), Some(repository), Some(commit)) =
            (source.scm_integration_id, source.repository, source.commit_sha)
        else {
            return Ok(None);
        };
        let Ok(integration_id) = CiIntegrationId::parse(&raw_id) else { return Ok(None) };
        let integration = match self.ci.get(integration_id).await {
            Ok(found) => found,
            Err(DomainError::NotFound(_)) => {
                tracing::info!(%integration_id, "the release's sourceRef names no CI integration");
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        if integration.provider == CiProvider::Jenkins {
            tracing::info!(%integration_id, "Jenkins keeps no deployment statuses: nothing to report");
            return Ok(None);
        }
        let environments = self.repo.list_environments().await?;
        let last = environments.iter().map(|e| e.order).max();
        let environment = environments.iter().find(|e| e.id == promotion.environment_id);
        let Some(environment) = environment else { return Ok(None) };
        let report = DeploymentReport {
            repository,
            commit,
            environment: environment.name.to_string(),
            production: Some(environment.order) == last,
            payload: serde_json::json!({ "releaseId": release.id, "release": release.name.as_str(), "promotionId": promotion.id }),
            // A promotion cancelled since the job was queued is reported cancelled.
            state: if promotion.status == PromotionStatus::Cancelled { ReportState::Cancelled } else { job.report },
            description: format!("{} to {}", release.name, environment.name),
            log_url: self.public_url.as_ref().map(|base| format!("{base}/ui/promotions/{}", promotion.id)),
            environment_url: environment.url.clone(),
        };
        let access = CiAccess {
            provider: integration.provider,
            api_url: integration.api_url.clone(),
            project: integration.project.clone(),
            credentials: self.ci.credentials(&integration)?,
        };
        Ok(Some(Target { integration_id, environment_id: environment.id, access, report }))
    }

    /// Takes the record's lease (one delivery at a time talks to the CI system about a
    /// promotion, so states reach it in order), creates the CI system's deployment if none
    /// exists yet, posts the state, and stores what happened.
    async fn post(&self, job: &ReportJob, target: &Target) -> Result<()> {
        let (now, state) = (Utc::now(), target.report.state);
        let (record, took) = self
            .update(job.promotion_id, target, |r| {
                let later = r.state.is_none_or(|posted| rank(posted) < rank(state))
                    && !(state == ReportState::Cancelled && r.state.is_none());
                let free = later && r.busy_until.is_none_or(|until| until <= now);
                if free {
                    r.busy_until = Some(now + Duration::seconds(LEASE_SECONDS));
                }
                free
            })
            .await?;
        if !took {
            if record.state.is_some_and(|posted| rank(posted) >= rank(state)) {
                tracing::info!("a later state was reported already");
                return Ok(());
            }
            if state == ReportState::Cancelled && record.state.is_none() {
                tracing::info!("nothing was reported, so there is nothing to cancel");
                return Ok(());
            }
            return Err(DomainError::conflict("another delivery is reporting this promotion"));
        }
        let mut external_id = record.external_id.clone();
        let outcome = async {
            if external_id.is_none() {
                external_id = Some(self.client.create_deployment(&target.access, &target.report).await?);
            }
            let id = external_id.as_deref().unwrap_or_default();
            self.client.post_status(&target.access, id, &target.report).await
        }
        .await;
        let posted = outcome.is_ok();
        self.update(job.promotion_id, target, |r| {
            r.busy_until = None;
            if r.external_id.is_none() {
                r.external_id = external_id.clone();
            }
            if posted {
                r.state = Some(state);
                r.attempts = 0;
                r.last_error = None;
            }
            true
        })
        .await?;
        outcome
    }

    /// GitHub marks earlier deployments of an environment inactive by itself only outside
    /// production; in production the previous deployed promotion's deployment is marked here.
    /// Best effort: the new deployment's success stands either way.
    async fn retire_previous(&self, job: &ReportJob, target: &Target) {
        let retired = async {
            let page = crate::ports::PageRequest { first: 2, after: None };
            let deployed = self
                .promotions
                .list_promotions(target.environment_id, Some(crate::promotions::PromotionStatus::Deployed), &page)
                .await?;
            let Some(previous) = deployed.items.into_iter().map(|(_, p)| p).find(|p| p.id != job.promotion_id) else {
                return Ok(());
            };
            let stored = self.store.reports(previous.id).await?.map(|r| r.reports).unwrap_or_default();
            let earlier = stored.into_iter().find(|r| r.integration_id == target.integration_id);
            let Some(CiReport { external_id: Some(id), state: Some(ReportState::Success), .. }) = earlier else {
                return Ok(());
            };
            let report = DeploymentReport { state: ReportState::Inactive, ..target.report.clone() };
            self.client.post_status(&target.access, &id, &report).await?;
            self.update(previous.id, target, |r| {
                r.state = Some(ReportState::Inactive);
                true
            })
            .await
            .map(drop)
        };
        if let Err(err) = retired.await {
            tracing::warn!(error = %err, "the previous production deployment was not marked inactive");
        }
    }

    async fn record_error(&self, job: &ReportJob, target: &Target, err: &DomainError) -> Result<()> {
        let message: String = err.to_string().chars().take(300).collect();
        self.update(job.promotion_id, target, |r| {
            r.attempts += 1;
            r.last_error = Some(message.clone());
            true
        })
        .await
        .map(drop)
    }

    /// Applies `change` to the integration's record (read again when another write came
    /// first); returns the record and whether `change` asked to write.
    async fn update(
        &self,
        promotion: PromotionId,
        target: &Target,
        change: impl Fn(&mut CiReport) -> bool,
    ) -> Result<(CiReport, bool)> {
        for _ in 0..8 {
            let stored = self.store.reports(promotion).await?;
            let before = stored.as_ref().map(|s| s.revision);
            let mut all =
                stored.unwrap_or(PromotionReports { promotion_id: promotion, reports: Vec::new(), revision: 0 });
            let index = match all.reports.iter().position(|r| r.integration_id == target.integration_id) {
                Some(i) => i,
                None => {
                    all.reports.push(fresh(target));
                    all.reports.len() - 1
                }
            };
            if !change(&mut all.reports[index]) {
                return Ok((all.reports[index].clone(), false));
            }
            all.reports[index].updated_at = Utc::now();
            all.revision = before.unwrap_or(0) + 1;
            match self.store.save_reports(before, &all).await {
                Ok(()) => return Ok((all.reports[index].clone(), true)),
                Err(DomainError::Conflict(_)) => continue,
                Err(err) => return Err(err),
            }
        }
        Err(DomainError::unavailable("the promotion's reports are changing fast"))
    }
}

fn fresh(target: &Target) -> CiReport {
    CiReport {
        integration_id: target.integration_id,
        provider: target.access.provider,
        external_id: None,
        state: None,
        attempts: 0,
        last_error: None,
        busy_until: None,
        updated_at: Utc::now(),
    }
}

/// Queues a report, best effort: a report that cannot even be queued is logged, and the
/// deployment goes on.
pub async fn announce(queue: &dyn ReportQueue, promotion: PromotionId, report: ReportState) {
    let job = ReportJob { promotion_id: promotion, report, attempt: 0 };
    if let Err(err) = queue.enqueue_report(&job, 0).await {
        tracing::warn!(promotion_id = %promotion, error = %err, "could not queue a deployment report");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_a_cap() {
        let delays: Vec<u32> = (1..=9).map(retry_delay).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 900, 900]);
    }

    #[test]
    fn later_states_outrank_earlier_ones() {
        assert!(rank(ReportState::Queued) < rank(ReportState::InProgress));
        assert!(rank(ReportState::InProgress) < rank(ReportState::Success));
        assert_eq!(rank(ReportState::Success), rank(ReportState::Failure));
        assert_eq!(rank(ReportState::Failure), rank(ReportState::Cancelled));
    }
}
