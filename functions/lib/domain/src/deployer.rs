//! The deployer: runs one deploy job. It leases the job's deployment, then runs the target's
//! driver (renewing the lease while it works) or hands the deployment to the target's pull
//! agent, ends the deployment with what it applied, and settles the promotion once the last
//! deployment ended. It sits above deployments, agents and promotions, and none of them
//! names it.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Duration, Utc};
use tracing::instrument;

use crate::artifacts::Artifact;
use crate::deployments::{
    Attempt, DeployJob, Deployment, DeploymentRepository, DeploymentState, DriverOutcome, LEASE, MAX_DELIVERIES,
    TargetDriver,
};
use crate::error::{DomainError, Result};
use crate::ids::PromotionId;
use crate::kept::Kept;
use crate::model::Release;
use crate::ports::Repository;
use crate::targets::{DeploymentTarget, TargetKind, TargetRepository};

#[derive(Clone)]
pub struct Deployer {
    repo: Arc<dyn Repository>,
    targets: Arc<dyn TargetRepository>,
    deployments: Arc<dyn DeploymentRepository>,
    promotions: crate::promotions::Promotions,
    drivers: HashMap<TargetKind, Arc<dyn TargetDriver>>,
    agents: Option<crate::agents::jobs::AgentJobs>,
    worker: String,
    lease: Duration,
    remembered: Remembered,
}

/// What a worker keeps between jobs, each bounded: the promotions it announced in progress
/// (once per worker, not once per target), the releases it read (a release's digests never
/// change), and each promotion's plan: its release and its environment's targets, read in
/// one query at the promotion's first job here instead of one lookup per target.
#[derive(Clone)]
struct Remembered {
    announced: Kept<PromotionId, ()>,
    releases: Kept<crate::values::ReleaseId, Release>,
    plans: Kept<PromotionId, Arc<tokio::sync::OnceCell<Arc<Plan>>>>,
}

/// A promotion as its jobs need it.
struct Plan {
    release: Release,
    /// Whether the promotion reports to CI.
    reports_to_ci: bool,
    targets: HashMap<crate::ids::TargetId, DeploymentTarget>,
}

/// Promotions and releases a worker keeps at most.
const REMEMBERED: usize = 256;
/// Plans a worker keeps at most: a plan holds an environment's targets, so few are kept
/// (a worker rarely serves more promotions at once).
const PLANS: usize = 16;

impl Default for Remembered {
    fn default() -> Self {
        Self { announced: Kept::new(REMEMBERED), releases: Kept::new(REMEMBERED), plans: Kept::new(PLANS) }
    }
}

/// The attempt a worker makes while it holds a deployment's lease.
struct Leased<'a> {
    deployments: &'a dyn DeploymentRepository,
    job: &'a DeployJob,
    worker: &'a str,
    prior: Option<String>,
}

#[async_trait]
impl Attempt for Leased<'_> {
    fn prior(&self) -> Option<&str> {
        self.prior.as_deref()
    }

    async fn remember(&self, prior: &str) -> Result<String> {
        self.deployments.remember_prior(self.job, self.worker, prior).await
    }

    async fn traffic(&self, step: &crate::traffic::TrafficStep) -> Result<crate::traffic::Control> {
        self.deployments.record_traffic(self.job, self.worker, step).await
    }

    async fn control(&self) -> Result<crate::traffic::Control> {
        self.deployments.control(self.job).await
    }
}

impl Deployer {
    pub fn new(
        repo: Arc<dyn Repository>,
        targets: Arc<dyn TargetRepository>,
        deployments: Arc<dyn DeploymentRepository>,
        promotions: crate::promotions::Promotions,
        drivers: HashMap<TargetKind, Arc<dyn TargetDriver>>,
    ) -> Self {
        Self {
            repo,
            targets,
            deployments,
            promotions,
            drivers,
            agents: None,
            worker: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            lease: Duration::seconds(LEASE),
            remembered: Remembered::default(),
        }
    }

    /// Hands deployments to agent-served targets to their agents through `agents`.
    pub fn with_agents(mut self, agents: crate::agents::jobs::AgentJobs) -> Self {
        self.agents = Some(agents);
        self
    }

    /// Holds each deployment this long before another worker may take it over.
    pub fn with_lease(mut self, seconds: u64) -> Self {
        self.lease = Duration::seconds(i64::try_from(seconds).unwrap_or(LEASE));
        self
    }

    /// Runs one job. A job whose deployment is finished or held by a live worker is done.
    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, target_id = %job.target_id, attempt = job.attempt), err(level = "info"))]
    pub async fn run(&self, job: DeployJob) -> Result<()> {
        let now = Utc::now();
        let Some(deployment) = self.deployments.claim(&job, &self.worker, now, now + self.lease).await? else {
            tracing::info!("deployment finished or held elsewhere; nothing to do");
            return self.promotions.settle(job.promotion_id).await.map(|_| ());
        };
        let plan = self.plan(&deployment).await?;
        if plan.reports_to_ci
            && self.remembered.announced.get(&job.promotion_id).is_none()
            && self.promotions.announce_id(job.promotion_id, crate::ci::ReportState::InProgress).await
        {
            self.remembered.announced.keep(job.promotion_id, ());
        }
        let target = match plan.targets.get(&job.target_id) {
            Some(target) => Some(target.clone()),
            // Not there when the plan was read: looked up alone (removed targets stay absent).
            None => self.targets.get_target(job.target_id).await?,
        };
        let release = &plan.release;
        let agent = target.as_ref().and_then(|t| t.config.agent());
        let outcome = match (&target, self.drivers.get(&deployment.kind), agent) {
            // An agent applies it: the job is written for it and no worker waits.
            (Some(target), Some(driver), Some(agent)) => match driver.render(target, release) {
                Ok(artifact) => {
                    let agents = self.agents.as_ref().ok_or_else(|| DomainError::internal("no agent jobs here"))?;
                    return agents.dispatch(&job, (target, release, artifact), agent, &self.worker).await;
                }
                Err(err) if refusal(&err) => {
                    DriverOutcome { succeeded: false, applied: None, message: err.public_message() }
                }
                Err(err) => return Err(err),
            },
            (None, ..) => DriverOutcome { succeeded: false, applied: None, message: "the target was removed".into() },
            (Some(_), None, _) => DriverOutcome {
                succeeded: false,
                applied: None,
                message: format!("no driver for {:?} targets", deployment.kind),
            },
            (Some(target), Some(driver), None) => {
                let attempt = self.leased(&job, &deployment);
                // The lease is renewed while the driver works, so a long rollout is never taken
                // over by a redelivery while this worker lives; only a dead worker's runs out.
                let deployed = tokio::select! {
                    deployed = driver.deploy(target, release, &attempt) => deployed,
                    () = self.keep_lease(&job) => {
                        tracing::warn!("lost the lease mid-rollout; the worker that holds it carries on");
                        return Ok(());
                    }
                };
                match deployed {
                    Ok(outcome) => outcome,
                    // The engine refused the new workload: a deployment failure, not a retry.
                    Err(err) if refusal(&err) => {
                        tracing::info!(error = %err, "the target refused the deployment");
                        DriverOutcome { succeeded: false, applied: None, message: err.public_message() }
                    }
                    Err(err) => return Err(err),
                }
            }
        };
        let state = if outcome.succeeded { DeploymentState::Succeeded } else { DeploymentState::Failed };
        let now = Utc::now();
        let artifact = outcome.applied.map(|applied| Artifact::seal(job.promotion_id, job.target_id, applied, now));
        let ended = (state, outcome.message.as_str());
        if !self.deployments.finish(&job, &self.worker, ended, artifact.as_ref(), now).await? {
            tracing::warn!("lost the lease before finishing; the other worker's result stands");
            return Ok(());
        }
        tracing::info!(state = state.as_str(), "deployment finished");
        if job.alone {
            return self.promotions.settle(job.promotion_id).await.map(drop);
        }
        self.promotions.settle_when_done(job.promotion_id).await
    }
}

impl Deployer {
    /// Renews the lease every third of its length; returns only when it is lost.
    async fn keep_lease(&self, job: &DeployJob) {
        let every = (self.lease / 3).to_std().unwrap_or(std::time::Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            match self.deployments.renew(job, &self.worker, Utc::now() + self.lease).await {
                Ok(true) => {}
                Ok(false) => return,
                // A renewal that failed is tried again; the lease still has two thirds left.
                Err(err) => tracing::warn!(error = %err, "the lease was not renewed this time"),
            }
        }
    }

    /// The deployment's promotion plan, read once per promotion by this worker: the first of
    /// its jobs here reads it while the others wait for it.
    async fn plan(&self, deployment: &Deployment) -> Result<Arc<Plan>> {
        let cell = self.remembered.plans.get_or_keep(deployment.promotion_id, Default::default);
        let plan = cell.get_or_try_init(|| async {
            let promotion = self.promotions.get(deployment.promotion_id).await?;
            let targets = self.targets.targets_of(deployment.environment_id).await?;
            let targets = targets.into_iter().map(|t| (t.id, t)).collect();
            let release = self.release(promotion.release_id).await?;
            Ok::<_, DomainError>(Arc::new(Plan { release, targets, reports_to_ci: promotion.reports_to_ci }))
        });
        plan.await.cloned()
    }

    async fn release(&self, id: crate::values::ReleaseId) -> Result<Release> {
        if let Some(release) = self.remembered.releases.get(&id) {
            return Ok(release);
        }
        let release = self.repo.get_release(id).await?.ok_or_else(|| DomainError::not_found("release", id))?;
        self.remembered.releases.keep(id, release.clone());
        Ok(release)
    }

    fn leased<'a>(&'a self, job: &'a DeployJob, deployment: &Deployment) -> Leased<'a> {
        Leased { deployments: self.deployments.as_ref(), job, worker: &self.worker, prior: deployment.prior.clone() }
    }

    /// Fails a job's deployment for good, after its last delivery failed, and settles the
    /// promotion, so it shows `FAILED` with the reason while the job goes to the dead-letter
    /// queue.
    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, target_id = %job.target_id), err(level = "info"))]
    pub async fn give_up(&self, job: &DeployJob, last: &DomainError) -> Result<()> {
        // Internal detail stays in the logs; the promotion says what happened.
        let reason = match last {
            DomainError::Internal(_) => "the target did not answer as expected (see the deployer's logs)".to_owned(),
            other => other.public_message(),
        };
        let message = format!("gave up after {MAX_DELIVERIES} deliveries: {reason}");
        if self.deployments.give_up(job, &message, Utc::now()).await? {
            tracing::warn!(reason = %reason, "deployment given up");
        }
        self.promotions.settle(job.promotion_id).await.map(|_| ())
    }
}

/// Whether a driver's error is the target refusing what it was asked, which no retry cures
/// (as opposed to a target or dependency that did not answer).
fn refusal(err: &DomainError) -> bool {
    matches!(
        err,
        DomainError::Validation(_)
            | DomainError::NotFound(_)
            | DomainError::Unresolvable(_)
            | DomainError::Unauthorized(_)
            | DomainError::Forbidden(_)
    )
}
