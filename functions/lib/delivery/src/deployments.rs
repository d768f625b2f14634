//! Deployments: an approved promotion fans out to one deployment per target of its
//! environment, each run by a worker from a queued job. Jobs are idempotent: a job carries
//! (promotion, target, attempt); a conditional lease keeps two workers off one deployment
//! under redelivery, and every terminal transition is conditional, so a deployment ends once.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{DomainError, Result};
use crate::ids::{EnvironmentId, PromotionId, TargetId};
use crate::model::Release;
use crate::targets::{DeploymentTarget, TargetKind};
use crate::traffic::{Control, TrafficStep};

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
    /// How its traffic moved, for a target steered through a router, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic_steps: Vec<TrafficStep>,
    /// What an operator asked of its rollout (abort, promote in full); absent until asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<Control>,
}

/// What a worker is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployJob {
    pub promotion_id: PromotionId,
    pub target_id: TargetId,
    pub attempt: u32,
    /// The promotion's only deployment: no count of open deployments is kept for it, and its
    /// end settles the promotion straight away (see [`counts_open`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alone: bool,
}

impl Deployment {
    /// Its job, as one of its promotion's `of` deployments.
    pub fn job(&self, of: usize) -> DeployJob {
        DeployJob {
            promotion_id: self.promotion_id,
            target_id: self.target_id,
            attempt: self.attempt,
            alone: !counts_open(of),
        }
    }
}

/// Whether a promotion of `deployments` deployments counts the ones still open, so that only
/// the last to end settles it (one consistent read of all N, not one per finisher). With one,
/// the count buys nothing: its end is the last.
pub fn counts_open(deployments: usize) -> bool {
    deployments > 1
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
    /// Records a move of the deployment's traffic, and returns what an operator asked of the
    /// rollout meanwhile; `Conflict` when this worker lost the deployment's lease.
    async fn traffic(&self, step: &TrafficStep) -> Result<Control>;
    /// What an operator asked of the rollout, read now.
    async fn control(&self) -> Result<Control>;
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
    async fn deployments_of(&self, promotion: PromotionId) -> Result<Vec<Deployment>>;
    /// Whether the caller settles the promotion: its open deployments (counted down in the
    /// write that ends each) are none, and no caller took the turn before, in one conditional
    /// write. Always `true` for a promotion that began without the count.
    async fn settle_turn(&self, promotion: PromotionId) -> Result<bool>;
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
    /// Marks a pending deployment as swept at `now`: its job is queued again. `false` when it
    /// is no longer pending, or a sweep since `before` marked it.
    async fn mark_swept(&self, job: &DeployJob, now: DateTime<Utc>, before: DateTime<Utc>) -> Result<bool>;
    /// Moves the lease `owner` holds on to `until`; `false` when it no longer holds it.
    async fn renew(&self, job: &DeployJob, owner: &str, until: DateTime<Utc>) -> Result<bool>;
    /// Writes down what ran before the deployment (`prior`) while `owner` holds its lease,
    /// unless it was written down already; the stored value. `Conflict` when `owner` lost
    /// the lease.
    async fn remember_prior(&self, job: &DeployJob, owner: &str, prior: &str) -> Result<String>;
    /// Appends `step` to the traffic steps of a deployment `owner` holds; the control an
    /// operator set on it. `Conflict` when `owner` lost the lease.
    async fn record_traffic(&self, job: &DeployJob, owner: &str, step: &TrafficStep) -> Result<Control>;
    /// The control an operator set on a deployment (`Continue` when none).
    async fn control(&self, job: &DeployJob) -> Result<Control>;
    /// Sets `control` on the running deployments of `promotion` among `targets`; the
    /// targets it reached (a finished deployment is left alone).
    async fn steer(&self, promotion: PromotionId, targets: &[TargetId], control: Control) -> Result<Vec<TargetId>>;
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

/// What the deployer's drivers are configured with, read once at start.
#[derive(Debug, Clone, Default)]
pub struct DriverSettings {
    /// How long a Nomad or ECS rollout may run before it is failed and undone.
    pub deadline: std::time::Duration,
    /// The worker's `NOMAD_*` and `DOCKER_*` environment variables, which targets name as
    /// `env:NOMAD_...` or `env:DOCKER_...` (tokens, CAs, client certificates and keys).
    pub secret_env: std::collections::BTreeMap<String, String>,
    /// Where Elastic Load Balancing is reached instead of its regional endpoint
    /// (`AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2`).
    pub elb_endpoint: Option<String>,
}

/// Deliveries of a deploy job before it goes to the dead-letter queue (the queue's
/// `maxReceiveCount`).
pub const MAX_DELIVERIES: u32 = 3;

/// Evidence payload of a finished promotion.
pub fn results_payload(deployments: &[Deployment]) -> serde_json::Value {
    json!(
        deployments
            .iter()
            .map(|d| {
                let mut result = json!({ "target": d.target_name, "state": d.state.as_str(), "message": d.message,
                                         "artifact": d.artifact });
                if !d.traffic_steps.is_empty() {
                    result["trafficSteps"] = json!(d.traffic_steps);
                }
                result
            })
            .collect::<Vec<_>>()
    )
}
