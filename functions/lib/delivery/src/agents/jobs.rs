//! Jobs for agents. The deployer renders the exact artifact (the container create body or
//! the compose file), signs the job, writes it once per deployment with a conditional write,
//! hands the deployment's lease to the agent until the job's deadline, queues a delayed
//! deadline check, and returns: no worker waits. The agent claims the job (a long poll),
//! applies it, and posts the result, which ends the deployment and moves the promotion on.
//! A job still open at its deadline fails, and its promotion fails as for any failed target.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::{AgentId, JobSealer, Ticket};
use crate::artifacts::{Applied, Artifact};
use crate::deployments::{DeployJob, DeploymentRepository, DeploymentState};
use crate::error::{DomainError, Result};
use crate::ids::{PromotionId, TargetId};
use crate::model::Release;
use crate::targets::DeploymentTarget;

/// Progress lines a job keeps.
pub const MAX_PROGRESS: usize = 50;
/// The longest claim poll.
pub const MAX_WAIT_SECONDS: u64 = 20;
/// A claimed job's first progress line.
pub const CLAIMED: &str = "claimed by its agent";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentJobState {
    Pending,
    Claimed,
    Succeeded,
    Failed,
}

impl AgentJobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Claimed => "claimed",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// What the agent is sent, signed: everything it needs to run the driver, and the artifact
/// it will apply with its sha256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobPayload {
    pub agent_id: AgentId,
    pub promotion_id: PromotionId,
    pub target_id: TargetId,
    pub attempt: u32,
    pub target: DeploymentTarget,
    pub release: Release,
    pub artifact: Applied,
    /// `sha256:<hex>` of `artifact.content`.
    pub sha256: String,
    pub deadline: DateTime<Utc>,
}

/// A job as stored: the signed payload, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentJob {
    pub agent_id: AgentId,
    pub promotion_id: PromotionId,
    pub target_id: TargetId,
    pub attempt: u32,
    pub payload: String,
    pub signature: String,
    pub key_id: String,
    pub sha256: String,
    pub state: AgentJobState,
    pub deadline: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub progress: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl AgentJob {
    /// The deploy job of the deployment it serves. It ends through the count of open
    /// deployments, which settles a promotion whose count is absent as well.
    pub fn deploy_job(&self) -> DeployJob {
        DeployJob { promotion_id: self.promotion_id, target_id: self.target_id, attempt: self.attempt, alone: false }
    }

    /// How the agent item names its current job: `<promotionId>/<targetId>`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.promotion_id, self.target_id)
    }
}

/// The delayed message that fails a job still open at its deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadlineCheck {
    pub agent_id: AgentId,
    pub promotion_id: PromotionId,
    pub target_id: TargetId,
    pub agent_deadline: DateTime<Utc>,
}

/// What an agent reports when it is done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobResult {
    pub succeeded: bool,
    pub message: String,
    /// `sha256:<hex>` of what it applied, when it got that far.
    pub applied_sha256: Option<String>,
    /// Progress lines it has not posted yet (an agent posts progress at most every few
    /// seconds; a short job's lines come with its result), kept in order after the others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<String>,
}

#[async_trait]
pub trait AgentJobRepository: Send + Sync {
    /// Writes the job unless the deployment has one. With `lease` (`from`, until when), the
    /// deployment's lease goes from `from` to the job's agent in the same write.
    async fn put_job(&self, job: &AgentJob, lease: Option<(&str, DateTime<Utc>)>) -> Result<JobWrite>;
    async fn get_job(&self, agent: AgentId, promotion: PromotionId, target: TargetId) -> Result<Option<AgentJob>>;
    /// The agent's jobs that are pending or claimed.
    async fn open_jobs(&self, agent: AgentId) -> Result<Vec<AgentJob>>;
    /// Admits a signed request that writes nothing else, in one write: [`super::replayed`]
    /// or [`super::revoked`] when it may not go on.
    async fn admit(&self, ticket: &Ticket) -> Result<()>;
    /// Pending → claimed with its first progress line, and the job added to the current jobs
    /// of its agent (which must not be revoked), in one write that admits `ticket` when
    /// given; `false` when the job was not pending (and nothing was written).
    async fn claim_job(&self, job: &AgentJob, at: DateTime<Utc>, line: &str, ticket: Option<&Ticket>) -> Result<bool>;
    /// Appends a line to a claimed job of the ticket's agent that has fewer than
    /// [`MAX_PROGRESS`], admitting `ticket` in the same write; `Conflict` when the job is not
    /// claimed, `NotFound` when the agent has no such job. A line past the limit is dropped.
    async fn add_progress(&self, ticket: &Ticket, job: (PromotionId, TargetId), line: &str) -> Result<()>;
    /// Ends an open job, drops it from the agent's current jobs, and ends its deployment as
    /// the agent (with the artifact), in one write when the agent still holds the deployment.
    /// With `ticket` (the agent's result), the same write admits it.
    async fn end_job(&self, job: &AgentJob, end: &JobEnd<'_>, ticket: Option<&Ticket>) -> Result<Ended>;
}

/// What writing a job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobWrite {
    /// The job was written (and the lease handed over).
    Written,
    /// The deployment had a job already: nothing was written.
    Exists,
    /// `from` no longer held the deployment's lease: nothing was written.
    LeaseLost,
}

/// How a job ends.
pub struct JobEnd<'a> {
    pub state: AgentJobState,
    pub message: &'a str,
    /// Lines appended to the job's progress.
    pub progress: &'a [String],
    /// What the agent applied, sealed, when it applied the signed artifact.
    pub artifact: Option<&'a Artifact>,
    pub at: DateTime<Utc>,
}

impl JobEnd<'_> {
    /// The deployment's end: succeeded with the job, else failed.
    pub fn deployment_state(&self) -> DeploymentState {
        if self.state == AgentJobState::Succeeded { DeploymentState::Succeeded } else { DeploymentState::Failed }
    }
}

/// What ending a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The job and its deployment.
    Both,
    /// The job; its deployment had ended some other way.
    JobOnly,
    /// Nothing: the job had ended.
    Already,
}

/// Queues deadline checks.
#[async_trait]
pub trait DeadlineQueue: Send + Sync {
    async fn enqueue_deadline(&self, check: &DeadlineCheck, delay_seconds: u32) -> Result<()>;
}

/// How long a waiting claim sleeps when its doorbell cannot be reached, before it reads the
/// agent's jobs again.
pub const CLAIM_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Wakes an agent's waiting claim when a job for it is written, in whichever process the
/// claim waits (the api function's, while the deployer's writes the job).
#[async_trait]
pub trait Doorbell: Send + Sync {
    /// Rings the agent's doorbell: a claim waiting on it returns at once.
    async fn ring(&self, agent: AgentId) -> Result<()>;
    /// Waits up to `wait` (20 s at most) for the agent's doorbell; `true` when it rang.
    async fn wait(&self, agent: AgentId, wait: std::time::Duration) -> Result<bool>;
    /// Removes the agent's doorbell, when it is revoked.
    async fn remove(&self, agent: AgentId) -> Result<()>;
}

/// Until when an agent holds a deployment whose job ends at `deadline`: a minute past it.
fn hand_over_until(deadline: DateTime<Utc>) -> DateTime<Utc> {
    deadline + Duration::seconds(60)
}

/// A traffic step as an agent reported it, within bounds: a weight of at most 100, a detail
/// of 500 characters, at most 8 router commands of 300; the change's sha256 is Gantry's own.
fn bounded(step: &crate::traffic::TrafficStep) -> Result<crate::traffic::TrafficStep> {
    if step.weight > 100 {
        return Err(DomainError::validation("a traffic step's weight is at most 100"));
    }
    let text = |s: &str, max: usize| -> String { s.chars().filter(|c| !c.is_control()).take(max).collect() };
    let change = match &step.change {
        Some(c) if c.commands.len() > 8 => {
            return Err(DomainError::validation("a router change has at most 8 commands"));
        }
        Some(c) => Some(crate::traffic::RouterChange::new(
            &text(&c.router, 20),
            c.commands.iter().map(|command| text(command, 300)).collect(),
        )),
        None => None,
    };
    Ok(crate::traffic::TrafficStep { detail: text(&step.detail, 500), change, ..step.clone() })
}

/// Lease owners of deployments handed to agents.
pub fn lease_owner(agent: AgentId) -> String {
    format!("agent:{agent}")
}

#[derive(Clone)]
pub struct AgentJobs {
    pub repo: Arc<dyn AgentJobRepository>,
    pub deployments: Arc<dyn DeploymentRepository>,
    pub sealer: Arc<dyn JobSealer>,
    pub queue: Arc<dyn DeadlineQueue>,
    /// How long an agent has to finish a job.
    pub deadline: Duration,
    pub doorbell: Arc<dyn Doorbell>,
}

impl AgentJobs {
    /// Writes the deployment's job for its agent (once), with `artifact`, what the target's
    /// driver renders; hands the lease to the agent and queues the deadline check. `worker`
    /// holds the deployment's lease now.
    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, target_id = %job.target_id, agent_id = %agent), err(level = "info"))]
    pub async fn dispatch(
        &self,
        job: &DeployJob,
        (target, release, artifact): (&DeploymentTarget, &Release, Applied),
        agent: AgentId,
        worker: &str,
    ) -> Result<()> {
        let now = Utc::now();
        let written = self.sealed(job, (target, release, artifact), agent, now).await?;
        let deadline = written.deadline;
        // The agent holds the deployment until a minute past the deadline, so only its result
        // or the deadline check ends it. The job and the hand-over are one write.
        let owner = lease_owner(agent);
        let stored = match self.repo.put_job(&written, Some((worker, hand_over_until(deadline)))).await? {
            JobWrite::Written => {
                if let Err(err) = self.doorbell.ring(agent).await {
                    // Its next claim reads its jobs anyway.
                    tracing::warn!(error = %err, "the agent's doorbell did not ring");
                }
                written
            }
            JobWrite::LeaseLost => {
                tracing::info!("the deployment is no longer this worker's; nothing was written");
                return Ok(());
            }
            // An earlier delivery wrote the job: hand the deployment over, if it did not.
            JobWrite::Exists => {
                let existing = self.repo.get_job(agent, job.promotion_id, job.target_id).await?;
                let existing = existing.ok_or_else(|| DomainError::internal("the job vanished"))?;
                if !self.deployments.hand_over(job, worker, &owner, hand_over_until(existing.deadline)).await? {
                    tracing::info!("the deployment was handed over already");
                }
                existing
            }
        };
        self.queue_deadline(&stored, now).await
    }

    /// The deployment's job for `agent`, its payload signed with the job-signing key.
    async fn sealed(
        &self,
        job: &DeployJob,
        (target, release, artifact): (&DeploymentTarget, &Release, Applied),
        agent: AgentId,
        now: DateTime<Utc>,
    ) -> Result<AgentJob> {
        let sha256 = crate::values::Digest::of(artifact.content.as_bytes()).to_string();
        let deadline = now + self.deadline;
        let payload = JobPayload {
            agent_id: agent,
            promotion_id: job.promotion_id,
            target_id: job.target_id,
            attempt: job.attempt,
            target: target.clone(),
            release: release.clone(),
            artifact,
            sha256: sha256.clone(),
            deadline,
        };
        let payload = serde_json::to_string(&payload).map_err(DomainError::internal)?;
        let (signature, key_id) = self.sealer.seal(&payload).await?;
        Ok(AgentJob {
            agent_id: agent,
            promotion_id: job.promotion_id,
            target_id: job.target_id,
            attempt: job.attempt,
            payload,
            signature,
            key_id,
            sha256,
            state: AgentJobState::Pending,
            deadline,
            created_at: now,
            claimed_at: None,
            progress: Vec::new(),
            message: None,
        })
    }

    async fn queue_deadline(&self, job: &AgentJob, now: DateTime<Utc>) -> Result<()> {
        let check = DeadlineCheck {
            agent_id: job.agent_id,
            promotion_id: job.promotion_id,
            target_id: job.target_id,
            agent_deadline: job.deadline,
        };
        let delay = (job.deadline - now).num_seconds().clamp(0, 900) as u32;
        self.queue.enqueue_deadline(&check, delay).await
    }

    /// The agent's open jobs, claiming the pending ones; waits up to `wait` for one to arrive.
    /// The jobs are read once, and again only when the agent's doorbell rings. The request is
    /// admitted by its first claim, or alone before it answers or waits.
    #[instrument(skip_all, fields(agent_id = %ticket.agent), err(level = "info"))]
    pub async fn claim(&self, ticket: &Ticket, wait: std::time::Duration) -> Result<Vec<AgentJob>> {
        let until = tokio::time::Instant::now() + wait.min(std::time::Duration::from_secs(MAX_WAIT_SECONDS));
        let mut unadmitted = Some(ticket);
        loop {
            let mut open = self.repo.open_jobs(ticket.agent).await?;
            let now = Utc::now();
            for job in &mut open {
                if job.state == AgentJobState::Pending && self.repo.claim_job(job, now, CLAIMED, unadmitted).await? {
                    unadmitted = None;
                    job.state = AgentJobState::Claimed;
                    job.claimed_at = Some(now);
                    job.progress = vec![CLAIMED.to_owned()];
                }
            }
            if let Some(ticket) = unadmitted.take() {
                self.repo.admit(ticket).await?;
            }
            open.retain(|j| j.state == AgentJobState::Claimed && j.deadline > now);
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if !open.is_empty() || left.is_zero() {
                return Ok(open);
            }
            match self.doorbell.wait(ticket.agent, left).await {
                Ok(true) => {}
                Ok(false) => return Ok(open),
                Err(err) => {
                    tracing::warn!(error = %err, "the agent's doorbell cannot be reached; reading again shortly");
                    tokio::time::sleep(left.min(CLAIM_POLL)).await;
                }
            }
        }
    }

    /// Refuses a request with `err`, once it is admitted: a replayed or revoked request is
    /// refused as such first.
    async fn refuse<T>(&self, ticket: &Ticket, err: DomainError) -> Result<T> {
        self.repo.admit(ticket).await?;
        Err(err)
    }

    #[instrument(skip_all, fields(agent_id = %ticket.agent, promotion_id = %promotion), err(level = "info"))]
    pub async fn progress(
        &self,
        ticket: &Ticket,
        (promotion, target): (PromotionId, TargetId),
        line: &str,
    ) -> Result<()> {
        self.repo.add_progress(ticket, (promotion, target), &progress_line(line)).await
    }

    /// A claimed job's rollout behind a router: records `step` (when given) on its
    /// deployment, as the agent that holds its lease, and returns what an operator asked of
    /// the rollout. The agent's words are bounded and its change's sha256 recomputed.
    #[instrument(skip_all, fields(agent_id = %ticket.agent, promotion_id = %promotion), err(level = "info"))]
    pub async fn traffic(
        &self,
        ticket: &Ticket,
        (promotion, target): (PromotionId, TargetId),
        step: Option<&crate::traffic::TrafficStep>,
    ) -> Result<crate::traffic::Control> {
        let Some(job) = self.repo.get_job(ticket.agent, promotion, target).await? else {
            let missing = DomainError::not_found("job of this agent", format!("{promotion}/{target}"));
            return self.refuse(ticket, missing).await;
        };
        if job.state != AgentJobState::Claimed {
            let err = DomainError::Conflict("the job is not in progress: only a claimed job moves traffic".into());
            return self.refuse(ticket, err).await;
        }
        self.repo.admit(ticket).await?;
        let owner = lease_owner(ticket.agent);
        match step {
            Some(step) => self.deployments.record_traffic(&job.deploy_job(), &owner, &bounded(step)?).await,
            None => self.deployments.control(&job.deploy_job()).await,
        }
    }

    /// The agent's result: ends the job and its deployment, and moves the promotion on
    /// (the caller settles it). The write that ends the job admits the request.
    #[instrument(skip_all, fields(agent_id = %ticket.agent, promotion_id = %promotion, target_id = %target), err(level = "info"))]
    pub async fn report(
        &self,
        ticket: &Ticket,
        (promotion, target): (PromotionId, TargetId),
        result: &JobResult,
    ) -> Result<PromotionId> {
        // Another agent's job is looked up under this agent's id, so it is simply not there.
        let Some(job) = self.repo.get_job(ticket.agent, promotion, target).await? else {
            return self
                .refuse(ticket, DomainError::not_found("job of this agent", format!("{promotion}/{target}")))
                .await;
        };
        if job.state != AgentJobState::Claimed {
            let err = DomainError::Conflict("the job is not in progress: only a claimed job takes a result".into());
            return self.refuse(ticket, err).await;
        }
        let applied_other = result.applied_sha256.as_ref().is_some_and(|s| *s != job.sha256);
        let (state, message) = if applied_other {
            (AgentJobState::Failed, "the agent applied something other than the signed artifact".to_owned())
        } else {
            let state = if result.succeeded { AgentJobState::Succeeded } else { AgentJobState::Failed };
            (state, result.message.chars().filter(|c| !c.is_control()).take(500).collect())
        };
        let artifact = if result.applied_sha256.as_deref() == Some(job.sha256.as_str()) {
            let payload: JobPayload = serde_json::from_str(&job.payload).map_err(DomainError::internal)?;
            Some(Artifact::seal(promotion, target, payload.artifact, Utc::now()))
        } else {
            None
        };
        let room = MAX_PROGRESS.saturating_sub(job.progress.len());
        let progress: Vec<String> = result.progress.iter().take(room).map(|l| progress_line(l)).collect();
        let end = JobEnd { state, message: &message, progress: &progress, artifact: artifact.as_ref(), at: Utc::now() };
        self.finish(&job, &end, Some(ticket)).await?;
        Ok(promotion)
    }

    async fn finish(&self, job: &AgentJob, end: &JobEnd<'_>, ticket: Option<&Ticket>) -> Result<()> {
        match self.repo.end_job(job, end, ticket).await? {
            Ended::Both => {}
            Ended::JobOnly => tracing::warn!("the deployment had ended; the job's result is not applied"),
            Ended::Already => tracing::info!("the job had ended"),
        }
        Ok(())
    }

    /// A deadline check: fails the job and its deployment when still open past the deadline;
    /// a check that arrived early (queue delays are 15 minutes at most) is queued again.
    /// The promotion to settle, when the job was failed.
    #[instrument(skip_all, fields(agent_id = %check.agent_id, promotion_id = %check.promotion_id), err(level = "info"))]
    pub async fn deadline_passed(&self, check: &DeadlineCheck) -> Result<Option<PromotionId>> {
        let Some(job) = self.repo.get_job(check.agent_id, check.promotion_id, check.target_id).await? else {
            return Ok(None);
        };
        if matches!(job.state, AgentJobState::Succeeded | AgentJobState::Failed) {
            return Ok(None);
        }
        let now = Utc::now();
        if now < job.deadline {
            self.queue_deadline(&job, now).await?;
            return Ok(None);
        }
        let message = match job.state {
            AgentJobState::Pending => "the agent did not claim the job before its deadline (is it offline?)",
            _ => "the agent did not report a result before the job's deadline",
        };
        let end = JobEnd { state: AgentJobState::Failed, message, progress: &[], artifact: None, at: now };
        self.finish(&job, &end, None).await?;
        Ok(Some(job.promotion_id))
    }
}

/// A progress line as kept: printable, 300 characters at most.
fn progress_line(line: &str) -> String {
    line.chars().filter(|c| !c.is_control()).take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::AgentJobState;

    #[test]
    fn states_are_stored_as_they_serialize() {
        for state in [AgentJobState::Pending, AgentJobState::Claimed, AgentJobState::Succeeded, AgentJobState::Failed] {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
    }
}
