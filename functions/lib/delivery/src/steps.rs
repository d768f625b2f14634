//! Promotion steps: CI pipelines an environment runs before it deploys a release
//! (`pre_deploy`) and after its deployments succeed (`post_deploy`).
//!
//! - `trigger-ci` starts a pipeline (a GitHub workflow dispatch) with the release, promotion
//!   and environment as variables, and may wait for it to finish.
//! - `wait-ci` waits for a run: one named outright, or one an earlier step started.
//!
//! Waiting holds no worker: a running step is checked by delayed queue messages, and the CI
//! system's own webhooks (`workflow_run`) bring the check forward. The step plan is copied onto
//! the promotion when it starts, so changing an environment's steps never changes a promotion
//! under way. The promotions (in `gantry-domain`, above) run the plan; this module holds its types and rules.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Result};
use crate::ids::CiIntegrationId;
use crate::ids::PromotionId;

/// What a step asks of a CI system, which the CI context defines.
pub use crate::ci::{CiRun, PipelineTrigger, RunStatus};

/// Steps per phase, at most.
pub const MAX_STEPS: usize = 10;
/// Variables a `trigger-ci` step sets, at most (GitHub takes 25 inputs; Gantry adds three).
pub const MAX_VARIABLES: usize = 20;
/// The longest a step may take: a day.
pub const MAX_TIMEOUT_SECONDS: u32 = 24 * 3600;
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 3600;
/// How long a trigger may stay unanswered before the step is failed: its outcome is unknown.
pub const START_GRACE_SECONDS: i64 = 120;

/// When a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    PreDeploy,
    PostDeploy,
}

/// One step of an environment's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepSpec {
    /// Unique in the environment: later steps name it to take its run.
    pub name: String,
    pub phase: Phase,
    /// The CI integration a `trigger-ci` or `wait-ci` step calls; an analysis has none.
    pub integration_id: Option<CiIntegrationId>,
    pub timeout_seconds: u32,
    pub action: StepAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StepAction {
    /// Starts a pipeline on `git_ref` (the release's tag or branch unless given): on GitHub
    /// the workflow `pipeline` (file name or id) in `repository` (the release's source
    /// repository unless given); on GitLab the pipeline of `repository` (the integration's
    /// project unless given).
    #[serde(rename = "trigger-ci", rename_all = "camelCase")]
    TriggerCi {
        pipeline: Option<String>,
        repository: Option<String>,
        git_ref: Option<String>,
        variables: BTreeMap<String, String>,
        wait_for_completion: bool,
    },
    /// Waits for `run_id`, or for the run the earlier step `run_id_from` started. A failed run
    /// fails the promotion only with `fail_on_error`.
    #[serde(rename = "wait-ci", rename_all = "camelCase")]
    WaitCi { run_id: Option<String>, run_id_from: Option<String>, repository: Option<String>, fail_on_error: bool },
    /// Measures probes every interval (post-deploy only); a failed analysis rolls back.
    #[serde(rename = "analysis")]
    Analysis(crate::analysis::AnalysisSpec),
}

impl StepAction {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TriggerCi { .. } => "trigger-ci",
            Self::WaitCi { .. } => "wait-ci",
            Self::Analysis(_) => "analysis",
        }
    }
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not reached yet.
    Pending,
    /// Its job is on the queue.
    Queued,
    /// The pipeline is being triggered.
    Starting,
    /// Waiting for the run to finish.
    Running,
    Succeeded,
    Failed,
    TimedOut,
}

impl StepState {
    pub fn is_done(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::TimedOut)
    }
}

/// A step as a promotion runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRun {
    pub spec: StepSpec,
    pub state: StepState,
    pub run: Option<CiRun>,
    /// What happened, in a sentence.
    pub detail: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// An analysis's measurements so far.
    #[serde(default)]
    pub measurements: Vec<crate::analysis::Measurement>,
}

impl StepRun {
    pub fn planned(spec: StepSpec) -> Self {
        Self {
            spec,
            state: StepState::Pending,
            run: None,
            detail: None,
            started_at: None,
            deadline: None,
            finished_at: None,
            measurements: Vec::new(),
        }
    }

    /// Whether the promotion may go on after it: it succeeded, or it is a `wait-ci` whose run
    /// failed without `failOnError`.
    pub fn passed(&self) -> bool {
        match (self.state, &self.spec.action) {
            (StepState::Succeeded, _) => true,
            (StepState::Failed, StepAction::WaitCi { fail_on_error, .. }) => !fail_on_error && self.run.is_some(),
            _ => false,
        }
    }
}

/// A job on the deploy-jobs queue: start or check step `step` of a promotion. `check` numbers
/// the scheduled checks (1, 2, …); a webhook's nudge is check 0 and schedules no other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepJob {
    pub promotion_id: PromotionId,
    pub step: u32,
    pub check: u32,
}

#[async_trait]
pub trait StepQueue: Send + Sync {
    async fn enqueue_step(&self, job: &StepJob, delay_seconds: u32) -> Result<()>;
}

/// Which step waits for a CI run, so the run's webhook can nudge it.
#[async_trait]
pub trait RunWatchRepository: Send + Sync {
    /// Notes that `job` waits for run `run_id` of the integration, until `until`.
    async fn watch_run(
        &self,
        integration: CiIntegrationId,
        run_id: &str,
        job: &StepJob,
        until: DateTime<Utc>,
    ) -> Result<()>;
    async fn watched_run(&self, integration: CiIntegrationId, run_id: &str) -> Result<Option<StepJob>>;
}

/// Brings a waiting step's check forward when its run's webhook arrives.
#[derive(Clone)]
pub struct Nudges {
    pub watches: std::sync::Arc<dyn RunWatchRepository>,
    pub queue: std::sync::Arc<dyn StepQueue>,
}

impl Nudges {
    /// Queues a check of the step waiting for run `run_id` of this integration, if one is
    /// (a webhook of one integration never moves another's steps); best effort: the step's
    /// own scheduled checks find the run's end anyway.
    pub async fn nudge(&self, integration: CiIntegrationId, run_id: &str) {
        let nudged = async {
            let Some(job) = self.watches.watched_run(integration, run_id).await? else { return Ok(false) };
            self.queue.enqueue_step(&StepJob { check: 0, ..job }, 0).await.map(|()| true)
        };
        match nudged.await {
            Ok(true) => tracing::info!(run_id, "a waiting step checks its run now"),
            Ok(false) => {}
            Err(err) => tracing::warn!(run_id, error = %err, "could not nudge the step waiting for the run"),
        }
    }
}

fn check_name(name: &str) -> Result<()> {
    let ok = (1..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if ok { Ok(()) } else { Err(DomainError::validation(format!("step name {name:?} must be 1-63 of a-z, 0-9 and -"))) }
}

/// A short token-like text: no whitespace or control characters.
fn check_word(step: &str, field: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() || value.len() > max || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DomainError::validation(format!(
            "step {step}: {field} must be 1 to {max} characters with no spaces or control characters"
        )));
    }
    Ok(())
}

fn check_variables(step: &str, variables: &BTreeMap<String, String>) -> Result<()> {
    if variables.len() > MAX_VARIABLES {
        return Err(DomainError::validation(format!("step {step}: at most {MAX_VARIABLES} variables")));
    }
    for (key, value) in variables {
        let key_ok = (1..=64).contains(&key.len())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !key.starts_with(|c: char| c.is_ascii_digit());
        if !key_ok || key.starts_with("GANTRY_") {
            return Err(DomainError::validation(format!(
                "step {step}: variable {key:?} must be a name of letters, digits and _ not starting with GANTRY_"
            )));
        }
        if value.len() > 1000 || value.chars().any(char::is_control) {
            return Err(DomainError::validation(format!("step {step}: variable {key} is over 1000 characters")));
        }
    }
    Ok(())
}

/// Checks an environment's plan: bounded, names unique, every `wait-ci` waiting on exactly
/// one run, named outright or started by an earlier `trigger-ci` (pre-deploy steps come first).
pub fn check_steps(steps: Vec<StepSpec>) -> Result<Vec<StepSpec>> {
    let (pre, post): (Vec<StepSpec>, Vec<StepSpec>) = steps.into_iter().partition(|s| s.phase == Phase::PreDeploy);
    if pre.len() > MAX_STEPS || post.len() > MAX_STEPS {
        return Err(DomainError::validation(format!("an environment has at most {MAX_STEPS} steps per phase")));
    }
    let ordered: Vec<StepSpec> = pre.into_iter().chain(post).collect();
    let mut triggers: Vec<&str> = Vec::new();
    for (i, step) in ordered.iter().enumerate() {
        check_name(&step.name)?;
        if ordered[..i].iter().any(|s| s.name == step.name) {
            return Err(DomainError::validation(format!("two steps are named {}", step.name)));
        }
        if !(1..=MAX_TIMEOUT_SECONDS).contains(&step.timeout_seconds) {
            return Err(DomainError::validation(format!(
                "step {}: timeoutSeconds must be between 1 and {MAX_TIMEOUT_SECONDS}",
                step.name
            )));
        }
        check_action(&step.name, &step.action, &triggers)?;
        check_integration(step)?;
        if matches!(step.action, StepAction::TriggerCi { .. }) {
            triggers.push(&step.name);
        }
    }
    Ok(ordered)
}

/// CI steps call an integration; an analysis calls none, and runs after deploying.
fn check_integration(step: &StepSpec) -> Result<()> {
    let why = match (&step.action, step.integration_id, step.phase) {
        (StepAction::Analysis(_), Some(_), _) => "an analysis takes no integrationId",
        (StepAction::Analysis(_), None, Phase::PreDeploy) => "an analysis runs post-deploy",
        (StepAction::TriggerCi { .. } | StepAction::WaitCi { .. }, None, _) => "integrationId is required",
        _ => return Ok(()),
    };
    Err(DomainError::validation(format!("step {}: {why}", step.name)))
}

fn check_action(name: &str, action: &StepAction, earlier_triggers: &[&str]) -> Result<()> {
    match action {
        StepAction::TriggerCi { pipeline, repository, git_ref, variables, .. } => {
            if let Some(p) = pipeline {
                check_word(name, "pipeline", p, 200)?;
            }
            if let Some(r) = repository {
                check_word(name, "repository", r, 300)?;
            }
            if let Some(r) = git_ref {
                check_word(name, "ref", r, 255)?;
            }
            check_variables(name, variables)
        }
        StepAction::Analysis(spec) => spec.check(name),
        StepAction::WaitCi { run_id, run_id_from, repository, .. } => {
            if let Some(r) = repository {
                check_word(name, "repository", r, 300)?;
            }
            match (run_id, run_id_from) {
                (Some(id), None) => check_word(name, "runId", id, 100),
                (None, Some(from)) if earlier_triggers.contains(&from.as_str()) => Ok(()),
                (None, Some(from)) => Err(DomainError::validation(format!(
                    "step {name}: runIdFrom must name an earlier trigger-ci step, and {from:?} is none"
                ))),
                _ => Err(DomainError::validation(format!("step {name}: give exactly one of runId and runIdFrom"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(name: &str, phase: Phase) -> StepSpec {
        StepSpec {
            name: name.into(),
            phase,
            integration_id: Some(CiIntegrationId::new()),
            timeout_seconds: 60,
            action: StepAction::TriggerCi {
                pipeline: Some("smoke.yml".into()),
                repository: None,
                git_ref: None,
                variables: BTreeMap::new(),
                wait_for_completion: false,
            },
        }
    }

    fn wait(name: &str, phase: Phase, from: &str) -> StepSpec {
        let action =
            StepAction::WaitCi { run_id: None, run_id_from: Some(from.into()), repository: None, fail_on_error: true };
        StepSpec { action, ..trigger(name, phase) }
    }

    #[test]
    fn pre_deploy_steps_come_first_and_waits_name_earlier_triggers() {
        let plan = check_steps(vec![wait("wait", Phase::PostDeploy, "smoke"), trigger("smoke", Phase::PreDeploy)]);
        let names: Vec<String> = plan.unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["smoke", "wait"]);
        let backwards = check_steps(vec![wait("wait", Phase::PreDeploy, "smoke"), trigger("smoke", Phase::PostDeploy)]);
        assert!(backwards.unwrap_err().to_string().contains("earlier trigger-ci"));
    }

    #[test]
    fn bad_plans_are_refused() {
        let twice = check_steps(vec![trigger("a", Phase::PreDeploy), trigger("a", Phase::PostDeploy)]);
        assert!(twice.unwrap_err().to_string().contains("two steps"));
        let many = (0..=MAX_STEPS).map(|i| trigger(&format!("s{i}"), Phase::PreDeploy)).collect();
        assert!(check_steps(many).is_err());
        let slow = StepSpec { timeout_seconds: MAX_TIMEOUT_SECONDS + 1, ..trigger("a", Phase::PreDeploy) };
        assert!(check_steps(vec![slow]).is_err());
        let mut ours = trigger("a", Phase::PreDeploy);
        if let StepAction::TriggerCi { variables, .. } = &mut ours.action {
            variables.insert("GANTRY_RELEASE_ID".into(), "x".into());
        }
        assert!(check_steps(vec![ours]).unwrap_err().to_string().contains("GANTRY_"));
        for bad in ["", "Upper", "-x", "a b"] {
            assert!(check_steps(vec![trigger(bad, Phase::PreDeploy)]).is_err(), "{bad:?}");
        }
        let both = StepAction::WaitCi {
            run_id: Some("1".into()),
            run_id_from: Some("a".into()),
            repository: None,
            fail_on_error: true,
        };
        let step = StepSpec { action: both, ..trigger("w", Phase::PreDeploy) };
        assert!(check_steps(vec![trigger("a", Phase::PreDeploy), step]).is_err());
    }

    #[test]
    fn a_failed_wait_passes_only_without_fail_on_error() {
        let mut run = StepRun::planned(wait("w", Phase::PostDeploy, "a"));
        run.state = StepState::Failed;
        run.run = Some(CiRun { id: "1".into(), scope: "acme/shop".into(), url: None });
        assert!(!run.passed());
        if let StepAction::WaitCi { fail_on_error, .. } = &mut run.spec.action {
            *fail_on_error = false;
        }
        assert!(run.passed());
        run.state = StepState::TimedOut;
        assert!(!run.passed());
    }
}
