//! Running an environment's steps (see [`crate::steps`]). Each move of a step is one
//! conditional write of the promotion with sealed evidence (`steps_planned`, `step_started`,
//! `step_triggered`, `step_run_started`, `step_result`), so a redelivered job finds the move
//! made and stops.
//! Pre-deploy steps run while the promotion is `APPROVED`, and deploying starts when the last
//! one passes; post-deploy steps run while it is `DEPLOYING`, and it is `DEPLOYED` when the
//! last one passes. A step that fails or times out fails the promotion with the reason, and a
//! failed post-deploy step rolls back where the environment says so.

use chrono::Duration;

use super::*;
use crate::ci::{CiAccess, CiClient, CiIntegrationId, CiIntegrations};
use crate::steps::{
    CiRun, Phase, PipelineTrigger, RunStatus, RunWatchRepository, START_GRACE_SECONDS, StepAction, StepJob, StepQueue,
    StepRun, StepSpec, StepState,
};

/// Whether a step fits its integration's CI system.
fn check_provider(step: &StepSpec, provider: crate::ci::CiProvider) -> Result<()> {
    use crate::ci::CiProvider::{Github, Gitlab, Jenkins};
    let why = match (provider, &step.action) {
        (Github, StepAction::TriggerCi { pipeline: None, .. }) => {
            "a GITHUB trigger-ci step names its workflow in pipeline"
        }
        (Gitlab, StepAction::TriggerCi { pipeline: Some(_), .. }) => {
            "a GITLAB trigger-ci step runs the project's pipeline: leave pipeline out"
        }
        (Jenkins, StepAction::TriggerCi { pipeline: None, .. }) => {
            "a JENKINS trigger-ci step names its job in pipeline"
        }
        (
            Jenkins,
            StepAction::TriggerCi { repository: Some(_), .. } | StepAction::WaitCi { repository: Some(_), .. },
        ) => "a JENKINS step takes no repository",
        (Jenkins, StepAction::WaitCi { run_id: Some(_), .. }) => {
            "a JENKINS wait-ci step waits for the build an earlier step queued (runIdFrom)"
        }
        _ => return Ok(()),
    };
    Err(DomainError::validation(format!("step {}: {why}", step.name)))
}

/// What running steps needs: the CI systems and a queue that delays.
#[derive(Clone)]
pub struct StepRunner {
    pub ci: CiIntegrations,
    pub client: Arc<dyn CiClient>,
    pub queue: Arc<dyn StepQueue>,
    pub watches: Arc<dyn RunWatchRepository>,
    /// Seconds between checks of a running step when no webhook comes first.
    pub poll_seconds: u32,
    /// What measures analysis probes.
    pub prober: Arc<dyn crate::analysis::Prober>,
}

/// Waiting for a run longer than a queue delay allows is a chain of checks.
const MAX_DELAY_SECONDS: i64 = 900;

pub(super) fn payload(step: &StepRun) -> serde_json::Value {
    json!({ "step": step.spec.name, "phase": step.spec.phase, "type": step.spec.action.kind(),
            "state": step.state, "run": step.run, "detail": step.detail })
}

/// The step after `index` in its phase.
fn next_in_phase(steps: &[StepRun], index: usize) -> Option<usize> {
    let phase = steps[index].spec.phase;
    (index + 1..steps.len()).find(|i| steps[*i].spec.phase == phase)
}

fn first_of(steps: &[StepRun], phase: Phase) -> Option<usize> {
    steps.iter().position(|s| s.spec.phase == phase)
}

/// What a finished step records.
pub(super) struct Outcome {
    pub(super) state: StepState,
    pub(super) detail: String,
    pub(super) run: Option<CiRun>,
}

impl Outcome {
    pub(super) fn failed(detail: impl Into<String>) -> Self {
        Self { state: StepState::Failed, detail: detail.into(), run: None }
    }
}

impl Promotions {
    fn runner(&self) -> &StepRunner {
        &self.rollout.steps
    }

    /// Replaces an environment's steps. Every step must name an existing CI integration
    /// whose provider Gantry can run pipelines on.
    #[instrument(skip_all, fields(environment_id = %id, steps = steps.len()), err(level = "info"))]
    pub async fn set_steps(&self, id: EnvironmentId, steps: Vec<StepSpec>) -> Result<Environment> {
        let steps = crate::steps::check_steps(steps)?;
        let mut providers: Vec<(CiIntegrationId, crate::ci::CiProvider)> = Vec::new();
        for step in &steps {
            // An analysis calls no CI system.
            let Some(integration_id) = step.integration_id else { continue };
            let known = providers.iter().find(|(id, _)| *id == integration_id).map(|(_, p)| *p);
            let provider = match known {
                Some(provider) => provider,
                None => match self.runner().ci.get(integration_id).await {
                    Err(DomainError::NotFound(_)) => {
                        let why = format!("step {}: integrationId names no CI integration", step.name);
                        return Err(DomainError::validation(why));
                    }
                    other => other?.provider,
                },
            };
            check_provider(step, provider)?;
            providers.push((integration_id, provider));
        }
        let after = crate::environments::revise_environment(self.repo.as_ref(), id, |e| e.steps = steps).await?;
        tracing::info!("environment steps set");
        Ok(after)
    }

    /// Starts an approved promotion: its steps first when the environment has any (a
    /// rollback runs none), else its deployments.
    pub(super) async fn begin(&self, approved: Promotion, with_steps: bool) -> Result<Promotion> {
        let plan = if with_steps { self.environment(approved.environment_id).await?.steps } else { Vec::new() };
        if plan.is_empty() {
            return self.deploy(approved).await;
        }
        let mut after = approved.clone();
        after.steps = plan.into_iter().map(StepRun::planned).collect();
        let first = first_of(&after.steps, Phase::PreDeploy);
        if let Some(i) = first {
            after.steps[i].state = StepState::Queued;
        }
        let names = |phase: Phase| -> Vec<&str> {
            after.steps.iter().filter(|s| s.spec.phase == phase).map(|s| s.spec.name.as_str()).collect()
        };
        let planned = json!({ "preDeploy": names(Phase::PreDeploy), "postDeploy": names(Phase::PostDeploy) });
        let saved = self.save(&approved, after, "steps_planned", "gantry", planned).await?;
        match first {
            Some(i) => {
                if let Err(err) = self.queue_step(saved.id, i, 0, 0).await {
                    // Stored: the sweep queues the step's job again.
                    tracing::warn!(promotion_id = %saved.id, error = %err, "the first step's job was not queued");
                }
                // The deployment is queued behind its pre-deploy steps.
                self.announce(&saved, crate::ci::ReportState::Queued).await;
                Ok(saved)
            }
            None => self.deploy(saved).await,
        }
    }

    pub(super) async fn queue_step(&self, promotion: PromotionId, step: usize, check: u32, delay: u32) -> Result<()> {
        let job = StepJob { promotion_id: promotion, step: step as u32, check };
        self.runner().queue.enqueue_step(&job, delay).await
    }

    /// Starts the post-deploy steps of a promotion whose deployments all succeeded (it is
    /// `status` while they run), with the deployments' results as evidence; `None` when it
    /// has none.
    pub(super) async fn begin_post_deploy(
        &self,
        before: &Promotion,
        status: PromotionStatus,
        results: serde_json::Value,
    ) -> Result<Option<Promotion>> {
        let Some(first) = first_of(&before.steps, Phase::PostDeploy) else { return Ok(None) };
        if before.steps[first].state != StepState::Pending {
            return Ok(Some(before.clone()));
        }
        let mut after = before.clone();
        after.status = status;
        after.steps[first].state = StepState::Queued;
        let saved = match self.save(before, after, "deployment_result", "gantry", results).await {
            Ok(saved) => saved,
            Err(DomainError::Conflict(_)) => return self.get(before.id).await.map(Some),
            Err(err) => return Err(err),
        };
        self.queue_step(saved.id, first, 0, 0).await?;
        Ok(Some(saved))
    }

    /// Moves a step on: starts it, checks its run, or ends it. A job that finds the move made
    /// already (a redelivery, a promotion cancelled meanwhile) does nothing.
    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, step = job.step, check = job.check), err(level = "info"))]
    pub async fn run_step(&self, job: StepJob) -> Result<()> {
        let promotion = self.get(job.promotion_id).await?;
        let index = job.step as usize;
        let Some(step) = promotion.steps.get(index) else { return Ok(()) };
        let live = match step.spec.phase {
            Phase::PreDeploy => promotion.status == PromotionStatus::Approved,
            Phase::PostDeploy => promotion.status == PromotionStatus::Deploying,
        };
        if !live {
            return Ok(());
        }
        match step.state {
            StepState::Queued => self.start_step(promotion, index).await,
            StepState::Starting => {
                let since = step.started_at.map_or(0, |at| (Utc::now() - at).num_seconds());
                if since < START_GRACE_SECONDS {
                    return self.queue_step(promotion.id, index, job.check, 10).await;
                }
                let lost = "the CI system's answer to the trigger was lost; the pipeline may or may not run";
                self.finish_step(promotion, index, Outcome::failed(lost)).await
            }
            StepState::Running if matches!(step.spec.action, StepAction::Analysis(_)) => {
                self.measure(promotion, index, job.check).await
            }
            StepState::Running => self.check_step(promotion, index, job.check).await,
            // The last pre-deploy step passed but deploying did not start (a crash between).
            _ if step.spec.phase == Phase::PreDeploy && next_in_phase(&promotion.steps, index).is_none() => {
                if step.passed() { self.deploy(promotion).await.map(drop) } else { Ok(()) }
            }
            _ => Ok(()),
        }
    }

    /// The integration's access, or why the step cannot use it.
    async fn access(&self, id: Option<CiIntegrationId>) -> Result<std::result::Result<CiAccess, String>> {
        let Some(id) = id else { return Ok(Err("the step names no CI integration".into())) };
        let integration = match self.runner().ci.get(id).await {
            Ok(found) => found,
            Err(DomainError::NotFound(_)) => return Ok(Err(format!("CI integration {id} does not exist"))),
            Err(err) => return Err(err),
        };
        Ok(Ok(CiAccess {
            provider: integration.provider,
            api_url: integration.api_url.clone(),
            project: integration.project.clone(),
            credentials: self.runner().ci.credentials(&integration)?,
        }))
    }

    async fn start_step(&self, promotion: Promotion, index: usize) -> Result<()> {
        let spec = promotion.steps[index].spec.clone();
        if let StepAction::Analysis(analysis) = &spec.action {
            return self.start_analysis(promotion, index, analysis.duration_seconds()).await;
        }
        let access = match self.access(spec.integration_id).await? {
            Ok(access) => access,
            Err(why) => return self.finish_step(promotion, index, Outcome::failed(why)).await,
        };
        match &spec.action {
            // Started above.
            StepAction::Analysis(_) => Ok(()),
            StepAction::TriggerCi { .. } => self.trigger_step(promotion, index, &access).await,
            StepAction::WaitCi { run_id, run_id_from, repository, .. } => {
                let run = match (run_id, run_id_from) {
                    (Some(id), _) => {
                        Some(CiRun { id: id.clone(), scope: repository.clone().unwrap_or_default(), url: None })
                    }
                    (None, Some(from)) => {
                        promotion.steps.iter().find(|s| &s.spec.name == from).and_then(|s| s.run.clone())
                    }
                    (None, None) => None,
                };
                let Some(mut run) = run else {
                    let why = format!("step {} has no run to wait for: the step it names started none", spec.name);
                    return self.finish_step(promotion, index, Outcome::failed(why)).await;
                };
                // A GitHub run lives in a repository; a GitLab one in the integration's project.
                if run.scope.is_empty() && access.provider == crate::ci::CiProvider::Github {
                    run.scope = self.source_repository(&promotion).await?.unwrap_or_default();
                }
                let mut after = promotion.clone();
                self.mark_started(&mut after.steps[index], StepState::Running);
                after.steps[index].run = Some(run);
                self.running(&promotion, after, index, "step_started").await
            }
        }
    }

    pub(super) fn mark_started(&self, step: &mut StepRun, state: StepState) {
        let now = Utc::now();
        step.state = state;
        step.started_at = Some(now);
        step.deadline = Some(now + Duration::seconds(i64::from(step.spec.timeout_seconds)));
    }

    /// Claims the step (so a redelivered job triggers nothing twice), then starts the pipeline.
    async fn trigger_step(&self, promotion: Promotion, index: usize, access: &CiAccess) -> Result<()> {
        let mut claimed = promotion.clone();
        self.mark_started(&mut claimed.steps[index], StepState::Starting);
        let step = &claimed.steps[index];
        let claimed = match self.save(&promotion, claimed.clone(), "step_started", "gantry", payload(step)).await {
            Ok(saved) => saved,
            Err(DomainError::Conflict(_)) => return Ok(()),
            Err(err) => return Err(err),
        };
        let StepAction::TriggerCi { wait_for_completion, .. } = claimed.steps[index].spec.action else {
            return Ok(());
        };
        let trigger = match self.pipeline(&claimed, &claimed.steps[index].spec).await? {
            Ok(trigger) => trigger,
            Err(why) => return self.finish_step(claimed, index, Outcome::failed(why)).await,
        };
        match self.runner().client.trigger(access, &trigger).await {
            Ok(Some(run)) if wait_for_completion => {
                let mut after = claimed.clone();
                after.steps[index].state = StepState::Running;
                after.steps[index].run = Some(run);
                self.running(&claimed, after, index, "step_triggered").await
            }
            Ok(None) if wait_for_completion => {
                let why = "the pipeline started, but the CI system did not say which run to wait for";
                self.finish_step(claimed, index, Outcome::failed(why)).await
            }
            Ok(run) => {
                let outcome = Outcome { state: StepState::Succeeded, detail: "pipeline started".into(), run };
                self.finish_step(claimed, index, outcome).await
            }
            Err(DomainError::Internal(detail)) => Err(DomainError::Internal(detail)),
            Err(err) => self.finish_step(claimed, index, Outcome::failed(format!("the trigger failed: {err}"))).await,
        }
    }

    /// The pipeline a `trigger-ci` step starts, or why it cannot.
    async fn pipeline(
        &self,
        promotion: &Promotion,
        spec: &StepSpec,
    ) -> Result<std::result::Result<PipelineTrigger, String>> {
        let StepAction::TriggerCi { pipeline, repository, git_ref, variables, .. } = &spec.action else {
            return Ok(Err("not a trigger-ci step".into()));
        };
        let release = self.release(promotion.release_id).await?;
        let environment = self.environment(promotion.environment_id).await?;
        let source = release.source_ref.clone().unwrap_or_default();
        let Some(git_ref) = git_ref.clone().or(source.tag).or(source.branch) else {
            return Ok(Err(format!(
                "step {}: no ref to run on (give ref, or a release sourceRef tag or branch)",
                spec.name
            )));
        };
        let mut variables = variables.clone();
        variables.insert("GANTRY_RELEASE_ID".into(), release.id.to_string());
        variables.insert("GANTRY_PROMOTION_ID".into(), promotion.id.to_string());
        variables.insert("GANTRY_ENVIRONMENT".into(), environment.name.to_string());
        Ok(Ok(PipelineTrigger {
            pipeline: pipeline.clone(),
            repository: repository.clone(),
            source_repository: source.repository,
            git_ref,
            variables,
        }))
    }

    async fn source_repository(&self, promotion: &Promotion) -> Result<Option<String>> {
        let release = self.repo.get_release(promotion.release_id).await?;
        Ok(release.and_then(|r| r.source_ref).and_then(|s| s.repository))
    }

    /// Saves the step as waiting for its run, notes the run for its webhook, and schedules
    /// the first check.
    async fn running(&self, before: &Promotion, after: Promotion, index: usize, kind: &'static str) -> Result<()> {
        let step = &after.steps[index];
        let saved = match self.save(before, after.clone(), kind, "gantry", payload(step)).await {
            Ok(saved) => saved,
            Err(DomainError::Conflict(_)) => return Ok(()),
            Err(err) => return Err(err),
        };
        let step = &saved.steps[index];
        let deadline = step.deadline.unwrap_or_else(Utc::now);
        if let (Some(run), Some(integration)) = (&step.run, step.spec.integration_id) {
            let job = StepJob { promotion_id: saved.id, step: index as u32, check: 0 };
            let until = deadline + Duration::days(1);
            if let Err(err) = self.runner().watches.watch_run(integration, &run.id, &job, until).await {
                tracing::warn!(error = %err, "the run's webhook will not bring its check forward");
            }
        }
        self.queue_step(saved.id, index, 1, self.check_delay(deadline)).await
    }

    /// The wait before the next scheduled check: the poll interval, or less near the deadline.
    fn check_delay(&self, deadline: DateTime<Utc>) -> u32 {
        let left = (deadline - Utc::now()).num_seconds().clamp(1, MAX_DELAY_SECONDS);
        u32::try_from(left).unwrap_or(1).min(self.runner().poll_seconds.max(1))
    }

    /// Asks the CI system how the run stands, and ends the step when it is over or out of time.
    async fn check_step(&self, promotion: Promotion, index: usize, check: u32) -> Result<()> {
        let step = &promotion.steps[index];
        let Some(run) = step.run.clone() else {
            return self.finish_step(promotion, index, Outcome::failed("the step has no run")).await;
        };
        let deadline = step.deadline.unwrap_or_else(Utc::now);
        let access = match self.access(step.spec.integration_id).await? {
            Ok(access) => access,
            Err(why) => return self.finish_step(promotion, index, Outcome::failed(why)).await,
        };
        let mut limited = None;
        let outcome = match self.runner().client.run_status(&access, &run).await {
            Ok(RunStatus::Succeeded) => {
                Some(Outcome { state: StepState::Succeeded, detail: "the run succeeded".into(), run: None })
            }
            Ok(RunStatus::Failed(conclusion)) => Some(Outcome::failed(format!("the run ended: {conclusion}"))),
            Ok(RunStatus::Pending) => None,
            Ok(RunStatus::Started(started)) => return self.run_started(promotion, index, started, check).await,
            Err(err @ DomainError::Unavailable { .. }) => {
                tracing::info!(error = %err, "the CI system did not answer; checking again later");
                limited = err.retry_at();
                None
            }
            Err(DomainError::Internal(detail)) => return Err(DomainError::Internal(detail)),
            Err(err) => Some(Outcome::failed(format!("the run could not be read: {err}"))),
        };
        match outcome {
            Some(outcome) => self.finish_step(promotion, index, outcome).await,
            None if Utc::now() >= deadline => {
                let detail = format!("the run did not finish within {} seconds", step.spec.timeout_seconds);
                self.finish_step(promotion, index, Outcome { state: StepState::TimedOut, detail, run: None }).await
            }
            // A webhook's nudge checks once; the scheduled chain goes on by itself.
            None if check == 0 => Ok(()),
            None => {
                // Not before a rate limit's reset (SQS delays 15 minutes at most).
                let reset = limited.map_or(0, |at| (at - Utc::now()).num_seconds().clamp(0, 900) as u32 + 1);
                let delay = self.check_delay(deadline).max(reset);
                self.queue_step(promotion.id, index, check + 1, delay).await
            }
        }
    }

    /// Records the run a queued trigger became (with evidence), and checks it next.
    async fn run_started(&self, before: Promotion, index: usize, started: CiRun, check: u32) -> Result<()> {
        let mut after = before.clone();
        after.steps[index].run = Some(started);
        let evidence = payload(&after.steps[index]);
        match self.save(&before, after, "step_run_started", "gantry", evidence).await {
            Ok(_) if check == 0 => Ok(()),
            Ok(saved) => self.queue_step(saved.id, index, check + 1, 1).await,
            Err(DomainError::Conflict(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Records how a step ended and goes on: the next step of its phase, deploying after the
    /// last pre-deploy step, `DEPLOYED` after the last post-deploy one, `FAILED` when it did
    /// not pass.
    pub(super) async fn finish_step(&self, before: Promotion, index: usize, outcome: Outcome) -> Result<()> {
        self.finish_step_with(before, index, outcome, Vec::new()).await
    }

    /// As [`Promotions::finish_step`], sealing `records` (as the step's last measurement)
    /// before the step's result, in the same write.
    pub(super) async fn finish_step_with(
        &self,
        before: Promotion,
        index: usize,
        outcome: Outcome,
        mut records: Vec<(&'static str, serde_json::Value)>,
    ) -> Result<()> {
        let mut after = before.clone();
        let step = &mut after.steps[index];
        step.state = outcome.state;
        step.detail = Some(outcome.detail);
        step.finished_at = Some(Utc::now());
        if outcome.run.is_some() {
            step.run = outcome.run;
        }
        let (passed, phase, name) = (step.passed(), step.spec.phase, step.spec.name.clone());
        let next = next_in_phase(&after.steps, index).filter(|_| passed);
        if let Some(n) = next {
            after.steps[n].state = StepState::Queued;
        } else if !passed {
            after.status = PromotionStatus::Failed;
            after.reason = Some(format!("step {name}: {}", after.steps[index].detail.clone().unwrap_or_default()));
        } else if phase == Phase::PostDeploy {
            after.status = PromotionStatus::Deployed;
        }
        records.push(("step_result", payload(&after.steps[index])));
        let saved = match self.save_with(&before, after, records, "gantry").await {
            Ok(saved) => saved,
            // Another delivery of this job ended the step first; or, when the promotion is
            // unchanged, the environment's health moved under its insights, and the job is
            // delivered again.
            Err(DomainError::Conflict(_)) if self.get(before.id).await?.revision != before.revision => return Ok(()),
            Err(DomainError::Conflict(_)) => {
                return Err(DomainError::unavailable("the environment changed while the step ended; trying again"));
            }
            Err(err) => return Err(err),
        };
        match (next, passed, phase) {
            (Some(n), _, _) => self.queue_step(saved.id, n, 0, 0).await,
            (None, true, Phase::PreDeploy) => self.deploy(saved).await.map(drop),
            // Nothing was deployed: there is nothing to roll back.
            (None, false, Phase::PreDeploy) => {
                self.announce(&saved, crate::ci::ReportState::Failure).await;
                Ok(())
            }
            // A failed analysis rolls back whatever the environment's autoRollback says.
            (None, _, Phase::PostDeploy) => {
                let analysis = matches!(saved.steps[index].spec.action, StepAction::Analysis(_));
                self.settled(&saved, analysis && !passed).await
            }
        }
    }
}
