//! Promotion steps: an environment's plan (`Environment.steps`, `setEnvironmentSteps`) and
//! how a promotion runs it (`Promotion.steps`).

use std::collections::BTreeMap;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use gantry_domain::access::{Action, Resource};
use gantry_domain::ci::CiIntegrationId;
use gantry_domain::promotions::Promotions;
use gantry_domain::steps::{self, StepAction, StepSpec};
use gantry_domain::values::EnvironmentId;
use gantry_domain::{DomainError, Result};

use crate::delivery::Environment;
use crate::error::IntoGraphql;
use crate::guard::Can;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "gantry_domain::steps::Phase")]
pub enum StepPhase {
    /// Before deploying: a failure leaves the environment as it was.
    PreDeploy,
    /// After every deployment succeeded: a failure rolls back where `autoRollback` is set.
    PostDeploy,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum StepType {
    TriggerCi,
    WaitCi,
    Analysis,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "gantry_domain::steps::StepState")]
pub enum StepState {
    Pending,
    Queued,
    Starting,
    Running,
    Succeeded,
    Failed,
    TimedOut,
}

#[derive(InputObject, SimpleObject, Clone)]
#[graphql(input_name = "StepVariableInput")]
pub struct StepVariable {
    pub name: String,
    pub value: String,
}

/// Starts a CI pipeline with `variables` plus `GANTRY_RELEASE_ID`, `GANTRY_PROMOTION_ID` and
/// `GANTRY_ENVIRONMENT`. On GitHub, the workflow `pipeline` names (its file name or id), which
/// must declare those inputs; on GitLab, the project's pipeline (no `pipeline`).
#[derive(InputObject)]
pub struct TriggerCiInput {
    pub pipeline: Option<String>,
    /// GitHub: `owner/name`, the release's `sourceRef.repository` when not given. GitLab: a
    /// project id or path, the integration's project when not given.
    pub repository: Option<String>,
    /// The branch or tag to run on; the release's `sourceRef` tag, else its branch.
    #[graphql(name = "ref")]
    pub git_ref: Option<String>,
    #[graphql(default)]
    pub variables: Vec<StepVariable>,
    /// Wait for the run to finish (and fail with it); true unless set.
    #[graphql(default = true)]
    pub wait_for_completion: bool,
}

/// Waits for a CI run: `runId`, or the run the earlier `trigger-ci` step `runIdFrom` started.
#[derive(InputObject)]
pub struct WaitCiInput {
    pub run_id: Option<String>,
    pub run_id_from: Option<String>,
    /// Where `runId` lives (`owner/name`); the release's `sourceRef.repository` when not given.
    pub repository: Option<String>,
    /// A failed run fails the promotion; true unless set.
    #[graphql(default = true)]
    pub fail_on_error: bool,
}

/// One step: exactly one of `triggerCi`, `waitCi` and `analysis`.
#[derive(InputObject)]
pub struct PromotionStepInput {
    /// Unique in the environment: 1-63 of a-z, 0-9 and -.
    pub name: String,
    pub phase: StepPhase,
    /// The GITHUB, GITLAB or JENKINS CI integration a CI step calls (none for an analysis).
    pub integration_id: Option<ID>,
    /// 3600 unless set; at most 86400. An analysis lasts its interval times its count.
    pub timeout_seconds: Option<i64>,
    pub trigger_ci: Option<TriggerCiInput>,
    pub wait_ci: Option<WaitCiInput>,
    /// Probes measured after deploying (post-deploy only); a failed analysis rolls back.
    pub analysis: Option<crate::analysis::AnalysisInput>,
}

impl PromotionStepInput {
    fn into_spec(self) -> Result<StepSpec> {
        let integration_id = self.integration_id.as_ref().map(|id| CiIntegrationId::parse(id)).transpose()?;
        let timeout_seconds = match self.timeout_seconds {
            None => steps::DEFAULT_TIMEOUT_SECONDS,
            Some(t) => u32::try_from(t).unwrap_or(u32::MAX),
        };
        let action = match (self.trigger_ci, self.wait_ci, self.analysis) {
            (None, None, Some(a)) => StepAction::Analysis(a.into_spec(&self.name)?),
            (Some(t), None, None) => StepAction::TriggerCi {
                pipeline: t.pipeline,
                repository: t.repository,
                git_ref: t.git_ref,
                variables: variables(&self.name, t.variables)?,
                wait_for_completion: t.wait_for_completion,
            },
            (None, Some(w), None) => StepAction::WaitCi {
                run_id: w.run_id,
                run_id_from: w.run_id_from,
                repository: w.repository,
                fail_on_error: w.fail_on_error,
            },
            _ => {
                let why = format!("step {}: give exactly one of triggerCi, waitCi and analysis", self.name);
                return Err(DomainError::validation(why));
            }
        };
        Ok(StepSpec { name: self.name, phase: self.phase.into(), integration_id, timeout_seconds, action })
    }
}

fn variables(step: &str, list: Vec<StepVariable>) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for v in list {
        if map.insert(v.name.clone(), v.value).is_some() {
            return Err(DomainError::validation(format!("step {step}: variable {} is given twice", v.name)));
        }
    }
    Ok(map)
}

/// A step of an environment's plan.
pub struct PromotionStep(pub StepSpec);

#[Object]
impl PromotionStep {
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn phase(&self) -> StepPhase {
        self.0.phase.into()
    }
    #[graphql(name = "type")]
    async fn step_type(&self) -> StepType {
        match self.0.action {
            StepAction::TriggerCi { .. } => StepType::TriggerCi,
            StepAction::WaitCi { .. } => StepType::WaitCi,
            StepAction::Analysis(_) => StepType::Analysis,
        }
    }
    async fn integration_id(&self) -> Option<ID> {
        self.0.integration_id.map(|id| ID(id.to_string()))
    }
    /// analysis: its probes, interval, count and failure limit.
    async fn analysis(&self) -> Option<crate::analysis::Analysis> {
        match &self.0.action {
            StepAction::Analysis(spec) => Some(spec.into()),
            _ => None,
        }
    }
    async fn timeout_seconds(&self) -> u32 {
        self.0.timeout_seconds
    }
    /// trigger-ci: the workflow.
    async fn pipeline(&self) -> Option<&str> {
        match &self.0.action {
            StepAction::TriggerCi { pipeline, .. } => pipeline.as_deref(),
            _ => None,
        }
    }
    async fn repository(&self) -> Option<&str> {
        match &self.0.action {
            StepAction::TriggerCi { repository, .. } | StepAction::WaitCi { repository, .. } => repository.as_deref(),
            StepAction::Analysis(_) => None,
        }
    }
    /// trigger-ci: the branch or tag.
    #[graphql(name = "ref")]
    async fn git_ref(&self) -> Option<&str> {
        match &self.0.action {
            StepAction::TriggerCi { git_ref, .. } => git_ref.as_deref(),
            _ => None,
        }
    }
    async fn variables(&self) -> Vec<StepVariable> {
        match &self.0.action {
            StepAction::TriggerCi { variables, .. } => variables
                .iter()
                .map(|(name, value)| StepVariable { name: name.clone(), value: value.clone() })
                .collect(),
            _ => Vec::new(),
        }
    }
    async fn wait_for_completion(&self) -> Option<bool> {
        match &self.0.action {
            StepAction::TriggerCi { wait_for_completion, .. } => Some(*wait_for_completion),
            _ => None,
        }
    }
    async fn run_id(&self) -> Option<&str> {
        match &self.0.action {
            StepAction::WaitCi { run_id, .. } => run_id.as_deref(),
            _ => None,
        }
    }
    async fn run_id_from(&self) -> Option<&str> {
        match &self.0.action {
            StepAction::WaitCi { run_id_from, .. } => run_id_from.as_deref(),
            _ => None,
        }
    }
    async fn fail_on_error(&self) -> Option<bool> {
        match &self.0.action {
            StepAction::WaitCi { fail_on_error, .. } => Some(*fail_on_error),
            _ => None,
        }
    }
}

/// A step as a promotion runs it.
pub struct StepRun(pub steps::StepRun);

#[Object]
impl StepRun {
    async fn step(&self) -> PromotionStep {
        PromotionStep(self.0.spec.clone())
    }
    async fn state(&self) -> StepState {
        self.0.state.into()
    }
    /// The CI system's run id.
    async fn run_id(&self) -> Option<&str> {
        self.0.run.as_ref().map(|r| r.id.as_str())
    }
    /// Where the run can be seen.
    async fn run_url(&self) -> Option<&str> {
        self.0.run.as_ref().and_then(|r| r.url.as_deref())
    }
    /// What happened, in a sentence.
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    async fn deadline(&self) -> Option<DateTime<Utc>> {
        self.0.deadline
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// An analysis's measurements so far, oldest first.
    async fn measurements(&self) -> Vec<crate::analysis::Measurement> {
        self.0.measurements.iter().map(Into::into).collect()
    }
}

#[derive(Default)]
pub struct StepMutation;

#[Object]
impl StepMutation {
    /// Replaces an environment's steps (an empty list removes them). Promotions already under
    /// way keep the steps they started with.
    #[graphql(guard = "Can(Resource::Environment, Action::Update)")]
    async fn set_environment_steps(
        &self,
        ctx: &Context<'_>,
        environment_id: ID,
        steps: Vec<PromotionStepInput>,
    ) -> async_graphql::Result<Environment> {
        let id = EnvironmentId::parse(&environment_id).gql()?;
        let specs = steps.into_iter().map(PromotionStepInput::into_spec).collect::<Result<Vec<_>>>().gql()?;
        ctx.data_unchecked::<Promotions>().set_steps(id, specs).await.gql().map(Environment)
    }
}
