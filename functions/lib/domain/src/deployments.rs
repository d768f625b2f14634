//! Deployments: an approved promotion fans out to one deployment per target of its
//! environment, each run by a worker from a queued job. Jobs are idempotent: a job carries
//! (promotion, target, attempt); a conditional lease keeps two workers off one deployment
//! under redelivery, and every terminal transition is conditional, so a deployment ends once.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;

use crate::artifacts::Artifact;
use crate::error::{DomainError, Result};
use crate::ids::{EnvironmentId, PromotionId, TargetId};
use crate::model::{DeployedComponent, DeploymentStatus, Release, ReleaseEnvironmentRecord};
use crate::ports::Repository;
use crate::promotions::Promotion;
use crate::targets::{DeploymentTarget, TargetKind, TargetRepository};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl DeploymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// One target's part of a promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub promotion_id: PromotionId,
    pub target_id: TargetId,
    pub environment_id: EnvironmentId,
    pub target_name: String,
    pub kind: TargetKind,
    pub state: DeploymentState,
    pub attempt: u32,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub message: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// What it applied to the target, by hash (the content is stored beside it).
    #[serde(default)]
    pub artifact: Option<crate::artifacts::ArtifactRef>,
    /// What ran on the target before the deployment's first attempt, as its driver wrote it
    /// down (JSON); a failed rollout goes back to this, whichever attempt fails. Absent
    /// (not null) until written, so the write can be conditional on its absence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<String>,
}

/// What a worker is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployJob {
    pub promotion_id: PromotionId,
    pub target_id: TargetId,
    pub attempt: u32,
}

/// How a target's rollout ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverOutcome {
    pub succeeded: bool,
    pub message: String,
    /// What it applied to the target, when it got that far.
    pub applied: Option<crate::artifacts::Applied>,
}

/// The drivers a deployer runs, one per kind of target. Only the deployer function has any,
/// so only it links them.
pub type Drivers = HashMap<crate::targets::TargetKind, Arc<dyn TargetDriver>>;

/// A deployment's memory across attempts: what ran on the target before its first attempt.
/// A driver writes it down before it changes anything, and an attempt that takes over from
/// a worker that died reads it, so a failed rollout restores what ran before the promotion,
/// not what the dead worker had already applied.
#[async_trait]
pub trait Attempt: Send + Sync {
    /// What the first attempt wrote down (JSON), if an attempt got that far.
    fn prior(&self) -> Option<&str>;
    /// Writes `prior` down, unless an earlier attempt did (then the earlier one stands and
    /// is returned); `Conflict` when this worker lost the deployment's lease.
    async fn remember(&self, prior: &str) -> Result<String>;
}

/// What ran before the deployment, as a driver describes it: the first attempt's record
/// when one was written (and `true`: this attempt takes over), or `now` written down as it
/// (and `false`). An earlier attempt's record that no longer parses counts as none.
pub async fn prior_or_remember<T>(attempt: &dyn Attempt, now: T) -> Result<(T, bool)>
where
    T: Serialize + serde::de::DeserializeOwned,
{
    if let Some(prior) = attempt.prior().and_then(|p| serde_json::from_str(p).ok()) {
        return Ok((prior, true));
    }
    let written = attempt.remember(&serde_json::to_string(&now).map_err(DomainError::internal)?).await?;
    Ok((serde_json::from_str(&written).unwrap_or(now), false))
}

/// Rolls a release out to one kind of target.
#[async_trait]
pub trait TargetDriver: Send + Sync {
    /// Deploys the release's digests for the components the target runs. A rollout that
    /// fails is reported as an outcome (after the driver restored what ran before the
    /// deployment's first attempt, which `attempt` keeps); `Err` is for failures to reach
    /// the target at all, which the queue retries.
    async fn deploy(
        &self,
        target: &DeploymentTarget,
        release: &Release,
        attempt: &dyn Attempt,
    ) -> Result<DriverOutcome>;

    /// What a deployment of `release` to `target` applies, rendered without reaching the
    /// target: the artifact of a job an agent applies.
    fn render(&self, _target: &DeploymentTarget, _release: &Release) -> Result<crate::artifacts::Applied> {
        Err(DomainError::validation("this kind of target is not served by agents"))
    }
}

#[async_trait]
pub trait DeploymentRepository: Send + Sync {
    /// Moves `before` to `after` (`DEPLOYING`) and writes its deployments and evidence, in
    /// one transaction.
    async fn begin(
        &self,
        before: &Promotion,
        after: &Promotion,
        deployments: &[Deployment],
        evidence: crate::promotions::EvidenceAppend<'_>,
    ) -> Result<()>;
    async fn deployments_of(&self, promotion: PromotionId) -> Result<Vec<Deployment>>;
    /// How many of the promotion's deployments have not ended (read consistently): counted
    /// down in the write that ends each. `None` for a promotion that began without the count.
    async fn open_deployments(&self, promotion: PromotionId) -> Result<Option<i64>>;
    /// Takes the lease of a pending deployment, or of a running one whose lease expired
    /// (its worker died). `None` when it is finished or leased by a live worker.
    async fn claim(
        &self,
        job: &DeployJob,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Deployment>>;
    /// Hands the lease `from` holds to `to` until `until` (a deployment given to an agent);
    /// `false` when `from` no longer holds it.
    async fn hand_over(&self, job: &DeployJob, from: &str, to: &str, until: DateTime<Utc>) -> Result<bool>;
    /// Moves the lease `owner` holds on to `until`; `false` when it no longer holds it.
    async fn renew(&self, job: &DeployJob, owner: &str, until: DateTime<Utc>) -> Result<bool>;
    /// Writes down what ran before the deployment (`prior`) while `owner` holds its lease,
    /// unless it was written down already; the stored value. `Conflict` when `owner` lost
    /// the lease.
    async fn remember_prior(&self, job: &DeployJob, owner: &str, prior: &str) -> Result<String>;
    /// Ends a deployment as failed whoever holds it, unless it has ended already; for jobs
    /// that failed on every delivery.
    async fn give_up(&self, job: &DeployJob, message: &str, at: DateTime<Utc>) -> Result<bool>;
    /// Ends a deployment this worker holds and stores what it applied, in one transaction;
    /// `false` if it lost the lease meanwhile (and nothing is written).
    async fn finish(
        &self,
        job: &DeployJob,
        owner: &str,
        (state, message): (DeploymentState, &str),
        artifact: Option<&crate::artifacts::Artifact>,
        at: DateTime<Utc>,
    ) -> Result<bool>;
}

/// Sends deploy jobs to the workers.
#[async_trait]
pub trait DeployQueue: Send + Sync {
    async fn enqueue_jobs(&self, jobs: &[DeployJob]) -> Result<()>;
}

/// How long a worker holds a deployment before another may take it over, unless
/// configured (`GANTRY_DEPLOY_LEASE_SECONDS`).
pub const LEASE: i64 = 60;

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
/// (once per worker, not once per target), and the releases it read (a release's digests
/// never change).
#[derive(Clone, Default)]
struct Remembered {
    announced: Arc<std::sync::Mutex<std::collections::HashSet<PromotionId>>>,
    releases: Arc<std::sync::Mutex<HashMap<crate::values::ReleaseId, Release>>>,
}

/// Promotions and releases a worker keeps at most.
const REMEMBERED: usize = 256;

impl Remembered {
    fn announced(&self, id: PromotionId) -> bool {
        self.announced.lock().expect("announced").contains(&id)
    }

    fn announce(&self, id: PromotionId) {
        let mut announced = self.announced.lock().expect("announced");
        if announced.len() >= REMEMBERED {
            announced.clear();
        }
        announced.insert(id);
    }

    fn release(&self, id: crate::values::ReleaseId) -> Option<Release> {
        self.releases.lock().expect("releases").get(&id).cloned()
    }

    fn keep(&self, release: &Release) {
        let mut releases = self.releases.lock().expect("releases");
        if releases.len() >= REMEMBERED {
            releases.clear();
        }
        releases.insert(release.id, release.clone());
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
        let promotion = self.promotions.get(job.promotion_id).await?;
        if !self.remembered.announced(promotion.id)
            && self.promotions.announce(promotion.id, crate::ci::ReportState::InProgress).await
        {
            self.remembered.announce(promotion.id);
        }
        let target = self.targets.get_target(job.target_id).await?;
        let release = self.release(promotion.release_id).await?;
        let agent = target.as_ref().and_then(|t| t.config.agent());
        let outcome = match (&target, self.drivers.get(&deployment.kind), agent) {
            // An agent applies it: the job is written for it and no worker waits.
            (Some(target), Some(driver), Some(agent)) => match driver.render(target, &release) {
                Ok(artifact) => {
                    let agents = self.agents.as_ref().ok_or_else(|| DomainError::internal("no agent jobs here"))?;
                    return agents.dispatch(&job, (target, &release, artifact), agent, &self.worker).await;
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
                    deployed = driver.deploy(target, &release, &attempt) => deployed,
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

    async fn release(&self, id: crate::values::ReleaseId) -> Result<Release> {
        if let Some(release) = self.remembered.release(id) {
            return Ok(release);
        }
        let release = self.repo.get_release(id).await?.ok_or_else(|| DomainError::not_found("release", id))?;
        self.remembered.keep(&release);
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

/// What the deployer's drivers are configured with, read once at start.
#[derive(Debug, Clone, Default)]
pub struct DriverSettings {
    /// How long a Nomad or ECS rollout may run before it is failed and undone.
    pub deadline: std::time::Duration,
    /// The worker's `NOMAD_*` and `DOCKER_*` environment variables, which targets name as
    /// `env:NOMAD_...` or `env:DOCKER_...` (tokens, CAs, client certificates and keys).
    pub secret_env: std::collections::BTreeMap<String, String>,
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

/// Deliveries of a deploy job before it goes to the dead-letter queue (the queue's
/// `maxReceiveCount`).
pub const MAX_DELIVERIES: u32 = 3;

/// The records a successful promotion leaves: the release runs in the environment, and
/// which digest of each component runs there.
pub fn deployed_records(
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

/// Evidence payload of a finished promotion.
pub fn results_payload(deployments: &[Deployment]) -> serde_json::Value {
    json!(
        deployments
            .iter()
            .map(|d| json!({ "target": d.target_name, "state": d.state.as_str(), "message": d.message,
                             "artifact": d.artifact }))
            .collect::<Vec<_>>()
    )
}
