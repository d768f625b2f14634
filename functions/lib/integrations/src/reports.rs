//! Deployment status reports to CI systems: a promotion of a release whose `sourceRef` names
//! a CI integration, a repository and a commit is reported as a deployment there (GitHub's
//! Deployments API, or a GitLab commit status `gantry/<environment>`), `queued` →
//! `in_progress` → `success` or `failure`.
//!
//! Reports travel as jobs on the deploy-jobs queue, so they never block or fail a
//! deployment: announcing one only queues it, and a report that cannot be delivered is
//! retried with growing delays, then recorded as failed on the promotion. They are
//! idempotent, ordered and complete: every state a job announces is added to the
//! promotion's pending states, and one delivery at a time (under a short lease) posts every
//! pending state in order, so a state that finds the lease taken is posted by its holder.
//! The CI system's deployment is created once and no state is posted twice, whatever order
//! jobs arrive in. A rate limit is waited out: nothing is sent before the provider's reset
//! (delayed messages chained past SQS's 15 minutes), and a wait of under two hours never
//! costs the report.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::ci::{CiAccess, CiClient, CiIntegrationId, CiIntegrations, CiProvider, DeploymentReport, ReportState};
use crate::error::{DomainError, Result};
use crate::ids::PromotionId;
use crate::model::PromotionStatus;
use crate::ports::Repository;

/// A report to deliver: the state a promotion reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportJob {
    pub promotion_id: PromotionId,
    pub report: ReportState,
    /// Deliveries tried so far that the CI system did not take.
    pub attempt: u32,
    /// Not to be delivered before then: the CI system's rate limit resets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
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
    /// States announced and not yet posted, in the order they are to be posted.
    #[serde(default)]
    pub pending: Vec<ReportState>,
    /// The CI system asked not to be called before then (a rate limit).
    #[serde(default)]
    pub paused_until: Option<DateTime<Utc>>,
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
/// The longest rate-limit reset a report waits for; a later one records it as failed.
const MAX_PAUSE_SECONDS: i64 = 2 * 3600;

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

/// What reports read of a promotion.
#[derive(Debug, Clone)]
pub struct ReportedPromotion {
    pub id: PromotionId,
    pub release_id: crate::ids::ReleaseId,
    pub environment_id: crate::ids::EnvironmentId,
    pub status: PromotionStatus,
    /// Whether it got as far as deploying (a failed pre-deploy step stops it before).
    pub deployed: bool,
}

/// What a deployment report says of its environment.
#[derive(Debug, Clone)]
pub struct ReportedEnvironment {
    pub id: crate::ids::EnvironmentId,
    pub name: String,
    pub url: Option<String>,
    /// The last environment of the path.
    pub production: bool,
}

/// The promotions reports are about, and their environments: what reports know of
/// delivery, which sits above them.
#[async_trait]
pub trait ReportedPromotions: Send + Sync {
    async fn reported(&self, id: PromotionId) -> Result<Option<ReportedPromotion>>;
    async fn reported_environment(&self, id: crate::ids::EnvironmentId) -> Result<Option<ReportedEnvironment>>;
    /// The promotion deployed in `environment` last before `except`, if any.
    async fn deployed_before(
        &self,
        environment: crate::ids::EnvironmentId,
        except: PromotionId,
    ) -> Result<Option<PromotionId>>;
}

#[derive(Clone)]
pub struct Reports {
    pub(crate) promotions: Arc<dyn ReportedPromotions>,
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
    /// Whether the promotion got as far as deploying (a pre-deploy step failure does not).
    deployed: bool,
}

impl Reports {
    pub fn new(
        promotions: Arc<dyn ReportedPromotions>,
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
        if let Some(wait) = job.not_before.and_then(|at| seconds_until(at, Utc::now())) {
            // SQS delays messages by 15 minutes at most: a longer wait is a chain of them.
            return self.queue.enqueue_report(&job, wait.min(MAX_DELAY_SECONDS)).await;
        }
        let Some(target) = self.target(&job).await? else { return Ok(()) };
        match self.post(&job, &target).await {
            Ok(()) => Ok(()),
            // Another delivery holds the lease and posts this state with the others pending;
            // this job comes back in case that delivery dies first.
            Err(DomainError::Conflict(reason)) => {
                tracing::info!(%reason, "the promotion's report lease is taken; looking again later");
                self.queue.enqueue_report(&job, LEASE_WAIT_SECONDS).await
            }
            Err(err) => self.after_failure(job, &target, err).await,
        }
    }

    /// What follows a delivery the CI system did not take: a wait for a rate limit's reset,
    /// a retry later, or a final record of the refusal.
    async fn after_failure(&self, job: ReportJob, target: &Target, err: DomainError) -> Result<()> {
        let now = Utc::now();
        match err {
            DomainError::Internal(detail) => Err(DomainError::Internal(detail)),
            ref limited @ DomainError::Unavailable { retry_at: Some(at), .. }
                if at - now <= Duration::seconds(MAX_PAUSE_SECONDS) =>
            {
                tracing::info!(retry_at = %at, "rate limited: waiting for the reset");
                self.record_error(&job, target, limited).await?;
                let wait = seconds_until(at, now).unwrap_or(1);
                let next = ReportJob { not_before: Some(at), ..job };
                self.queue.enqueue_report(&next, wait.min(MAX_DELAY_SECONDS)).await
            }
            err @ DomainError::Unavailable { retry_at: None, .. } if job.attempt + 1 < MAX_REPORT_ATTEMPTS => {
                let next = ReportJob { attempt: job.attempt + 1, not_before: None, ..job.clone() };
                self.record_error(&job, target, &err).await?;
                self.queue.enqueue_report(&next, retry_delay(next.attempt)).await
            }
            err => {
                tracing::warn!(code = err.code(), error = %err, "report not delivered");
                self.record_error(&job, target, &err).await
            }
        }
    }

    /// The integration, access and report for a job; `None` when the release names nothing
    /// to report to.
    async fn target(&self, job: &ReportJob) -> Result<Option<Target>> {
        let promotion = self
            .promotions
            .reported(job.promotion_id)
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
        let Some(environment) = self.promotions.reported_environment(promotion.environment_id).await? else {
            return Ok(None);
        };
        let report = DeploymentReport {
            repository,
            commit,
            environment: environment.name.clone(),
            production: environment.production,
            payload: serde_json::json!({ "releaseId": release.id, "release": release.name.as_str(), "promotionId": promotion.id }),
            // A promotion cancelled since the job was queued is reported cancelled.
            state: if promotion.status == PromotionStatus::Cancelled { ReportState::Cancelled } else { job.report },
            description: format!("{} to {}", release.name, environment.name),
            log_url: self.public_url.as_ref().map(|base| format!("{base}/ui/promotions/{}", promotion.id)),
            environment_url: environment.url.clone(),
            git_ref: source.tag.or(source.branch),
        };
        let access = CiAccess {
            provider: integration.provider,
            api_url: integration.api_url.clone(),
            project: integration.project.clone(),
            credentials: self.ci.credentials(&integration)?,
        };
        let deployed = promotion.deployed;
        Ok(Some(Target { integration_id, environment_id: environment.id, access, report, deployed }))
    }

    /// Adds the job's state to the pending ones and takes the record's lease if it is free
    /// (one delivery at a time talks to the CI system about a promotion), then posts every
    /// pending state in order. `Conflict` when another delivery holds the lease and will
    /// post the state.
    async fn post(&self, job: &ReportJob, target: &Target) -> Result<()> {
        let (now, state) = (Utc::now(), target.report.state);
        let lease = now + Duration::seconds(LEASE_SECONDS);
        let (record, _) =
            self.update(job.promotion_id, target, |r| claim(r, state, target.deployed, (now, lease))).await?;
        if record.busy_until != Some(lease) {
            if record.state.is_some_and(|posted| rank(posted) >= rank(state)) {
                tracing::info!("this state was reported already");
                return Ok(());
            }
            if !record.pending.contains(&state) {
                tracing::info!("nothing to post: a cancellation of a promotion never reported");
                return Ok(());
            }
            if let Some(at) = record.paused_until.filter(|at| *at > now) {
                return Err(DomainError::unavailable_until("the CI system's rate limit has not reset yet", at));
            }
            return Err(DomainError::conflict("another delivery is reporting this promotion"));
        }
        let mut current = record;
        while let Some(&next) = current.pending.first() {
            let report = DeploymentReport { state: next, ..target.report.clone() };
            let mut external_id = current.external_id.clone();
            let outcome = async {
                if external_id.is_none() {
                    external_id = Some(self.client.create_deployment(&target.access, &report).await?);
                }
                let id = external_id.as_deref().unwrap_or_default();
                self.client.post_status(&target.access, id, &report).await
            }
            .await;
            let (paused, posted) = (outcome.as_ref().err().and_then(DomainError::retry_at), outcome.is_ok());
            let (after, _) = self
                .update(job.promotion_id, target, |r| {
                    if r.external_id.is_none() {
                        r.external_id = external_id.clone();
                    }
                    if posted {
                        r.state = Some(next);
                        r.pending.retain(|p| rank(*p) > rank(next));
                        (r.attempts, r.last_error) = (0, None);
                    }
                    r.paused_until = paused;
                    let more = posted && !r.pending.is_empty();
                    r.busy_until = more.then(|| Utc::now() + Duration::seconds(LEASE_SECONDS));
                    true
                })
                .await?;
            outcome?;
            if next == ReportState::Success && report.production && target.access.provider == CiProvider::Github {
                self.retire_previous(job, target).await;
            }
            current = after;
        }
        Ok(())
    }

    /// GitHub marks earlier deployments of an environment inactive by itself only outside
    /// production; in production the previous deployed promotion's deployment is marked here.
    /// Best effort: the new deployment's success stands either way.
    async fn retire_previous(&self, job: &ReportJob, target: &Target) {
        let retired = async {
            let previous = self.promotions.deployed_before(target.environment_id, job.promotion_id).await?;
            let Some(previous) = previous else {
                return Ok(());
            };
            let stored = self.store.reports(previous).await?.map(|r| r.reports).unwrap_or_default();
            let earlier = stored.into_iter().find(|r| r.integration_id == target.integration_id);
            let Some(CiReport { external_id: Some(id), state: Some(ReportState::Success), .. }) = earlier else {
                return Ok(());
            };
            let report = DeploymentReport { state: ReportState::Inactive, ..target.report.clone() };
            self.client.post_status(&target.access, &id, &report).await?;
            self.update(previous, target, |r| {
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
                    all.reports.push(fresh(target.integration_id, target.access.provider));
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

/// A record of nothing reported yet to an integration.
fn fresh(integration_id: CiIntegrationId, provider: CiProvider) -> CiReport {
    CiReport {
        integration_id,
        provider,
        external_id: None,
        state: None,
        attempts: 0,
        last_error: None,
        busy_until: None,
        pending: Vec::new(),
        paused_until: None,
        updated_at: Utc::now(),
    }
}

/// Adds `state` to the record's pending states unless it or a later one was posted (or it
/// is a cancellation of nothing), and takes the lease (until `lease`) when the record has
/// something to post, no delivery holds it and no rate limit is in force. Whether to write.
/// `deployed`: whether the promotion got as far as deploying, so that its end implies
/// `in_progress` (a pre-deploy step's failure goes from `queued` to `failure`).
fn claim(r: &mut CiReport, state: ReportState, deployed: bool, (now, lease): (DateTime<Utc>, DateTime<Utc>)) -> bool {
    let cancels_nothing = state == ReportState::Cancelled && r.state.is_none() && r.pending.is_empty();
    // A state implies those before it: jobs may arrive in any order, the CI system sees all.
    let implied: &[ReportState] = match state {
        ReportState::Failure if !deployed => &[ReportState::Queued],
        ReportState::Success | ReportState::Failure => &[ReportState::Queued, ReportState::InProgress],
        ReportState::InProgress => &[ReportState::Queued],
        _ => &[],
    };
    let mut added = false;
    for &s in implied.iter().chain([&state]) {
        let wanted = r.state.is_none_or(|posted| rank(posted) < rank(s)) && !cancels_nothing;
        if wanted && !r.pending.iter().any(|p| rank(*p) == rank(s)) {
            r.pending.push(s);
            added = true;
        }
    }
    r.pending.sort_by_key(|p| rank(*p));
    let free = r.busy_until.is_none_or(|until| until <= now) && r.paused_until.is_none_or(|until| until <= now);
    let take = free && !r.pending.is_empty();
    if take {
        r.busy_until = Some(lease);
    }
    added || take
}

/// Whole seconds from `now` until `at` (at least 1), or `None` when `at` has passed.
fn seconds_until(at: DateTime<Utc>, now: DateTime<Utc>) -> Option<u32> {
    let wait = (at - now).num_milliseconds();
    (wait > 0).then(|| u32::try_from((wait + 999) / 1000).unwrap_or(u32::MAX))
}

/// Queues a report, best effort: a report that cannot even be queued is logged, and the
/// deployment goes on.
pub async fn announce(queue: &dyn ReportQueue, promotion: PromotionId, report: ReportState) -> bool {
    let job = ReportJob { promotion_id: promotion, report, attempt: 0, not_before: None };
    match queue.enqueue_report(&job, 0).await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(promotion_id = %promotion, error = %err, "could not queue a deployment report");
            false
        }
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

    fn record() -> CiReport {
        fresh(CiIntegrationId::new(), CiProvider::Github)
    }

    #[test]
    fn states_wait_in_order_for_the_lease_holder() {
        let now = Utc::now();
        let (mine, theirs) = (now + Duration::seconds(60), now + Duration::seconds(30));
        let mut r = record();
        assert!(claim(&mut r, ReportState::Queued, true, (now, theirs)));
        assert_eq!(r.busy_until, Some(theirs));
        // Later states arriving while the lease is held wait, in order, with no duplicate.
        assert!(claim(&mut r, ReportState::Success, true, (now, mine)));
        assert!(!claim(&mut r, ReportState::InProgress, true, (now, mine)), "implied by success, already pending");
        assert!(!claim(&mut r, ReportState::Queued, true, (now, mine)), "already pending");
        assert_eq!(r.pending, [ReportState::Queued, ReportState::InProgress, ReportState::Success]);
        assert_eq!(r.busy_until, Some(theirs), "the lease stays with its holder");
        // Once posted, an earlier state is not wanted again.
        r.state = Some(ReportState::Success);
        r.pending.clear();
        r.busy_until = None;
        assert!(!claim(&mut r, ReportState::InProgress, true, (now, mine)));
        assert!(r.pending.is_empty() && r.busy_until.is_none());
    }

    #[test]
    fn a_rate_limit_keeps_the_lease_free_until_its_reset() {
        let now = Utc::now();
        let mut r = record();
        r.paused_until = Some(now + Duration::seconds(90));
        assert!(claim(&mut r, ReportState::Queued, true, (now, now + Duration::seconds(60))));
        assert_eq!((r.pending.len(), r.busy_until), (1, None));
        // A success that arrives first brings the states before it.
        let mut first = record();
        assert!(claim(&mut first, ReportState::Success, true, (now, now)));
        assert_eq!(first.pending, [ReportState::Queued, ReportState::InProgress, ReportState::Success]);
        // A promotion stopped by a pre-deploy step never was in progress.
        let mut stopped = record();
        assert!(claim(&mut stopped, ReportState::Failure, false, (now, now)));
        assert_eq!(stopped.pending, [ReportState::Queued, ReportState::Failure]);
        assert!(claim(&mut r, ReportState::Queued, true, (now + Duration::seconds(91), now + Duration::seconds(151))));
        assert!(r.busy_until.is_some());
        assert!(!claim(&mut record(), ReportState::Cancelled, true, (now, now)), "nothing to cancel");
        assert_eq!(seconds_until(now + Duration::milliseconds(1500), now), Some(2));
        assert_eq!(seconds_until(now - Duration::seconds(1), now), None);
    }

    #[test]
    fn later_states_outrank_earlier_ones() {
        assert!(rank(ReportState::Queued) < rank(ReportState::InProgress));
        assert!(rank(ReportState::InProgress) < rank(ReportState::Success));
        assert_eq!(rank(ReportState::Success), rank(ReportState::Failure));
        assert_eq!(rank(ReportState::Failure), rank(ReportState::Cancelled));
    }
}
