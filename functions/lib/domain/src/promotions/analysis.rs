//! Running an analysis step (see [`crate::analysis`]): one measurement every interval, each
//! taken by a delayed job on the deploy-jobs queue and sealed as `analysis_measurement`
//! evidence, until the verdict ends the step. A failed analysis rolls the environment back.

use chrono::Duration;

use super::steps::{Outcome, payload};
use super::*;
use crate::analysis::{Verdict, measure_all};
use crate::steps::{StepAction, StepState};

impl Promotions {
    /// Starts an analysis: running until `seconds` from now, its first measurement at once.
    pub(super) async fn start_analysis(&self, promotion: Promotion, index: usize, seconds: u32) -> Result<()> {
        let mut after = promotion.clone();
        self.mark_started(&mut after.steps[index], StepState::Running);
        after.steps[index].deadline = Some(Utc::now() + Duration::seconds(i64::from(seconds)));
        let evidence = payload(&after.steps[index]);
        match self.save(&promotion, after, "step_started", "gantry", evidence).await {
            Ok(saved) => self.queue_step(saved.id, index, 1, 0).await,
            Err(DomainError::Conflict(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Takes measurement number `check` of every probe (a job for a measurement taken
    /// already does nothing), then schedules the next or ends the step by the verdict.
    pub(super) async fn measure(&self, promotion: Promotion, index: usize, check: u32) -> Result<()> {
        let step = &promotion.steps[index];
        let StepAction::Analysis(spec) = &step.spec.action else { return Ok(()) };
        if check as usize != step.measurements.len() + 1 {
            return Ok(());
        }
        let measurement = measure_all(self.rollout.steps.prober.as_ref(), &spec.probes).await;
        let mut measured = promotion.clone();
        measured.steps[index].measurements.push(measurement.clone());
        let measurements = &measured.steps[index].measurements;
        let (taken, failed) = (measurements.len(), measurements.iter().filter(|m| !m.passed).count());
        let verdict = spec.verdict(measurements);
        // Every measurement is sealed, the one that ends the step included: when it was
        // taken, whether it passed, and what each probe saw.
        let evidence = json!({ "step": step.spec.name, "measurement": taken, "at": measurement.at,
                               "passed": measurement.passed, "detail": measurement.detail });
        if verdict == Verdict::Continue {
            return match self.save(&promotion, measured, "analysis_measurement", "gantry", evidence).await {
                Ok(saved) => self.queue_step(saved.id, index, check + 1, spec.interval_seconds).await,
                Err(DomainError::Conflict(_)) => Ok(()),
                Err(err) => Err(err),
            };
        }
        let state = if verdict == Verdict::Passed { StepState::Succeeded } else { StepState::Failed };
        let limit = spec.failure_limit;
        let detail = &measurement.detail;
        let summary = format!("{failed} of {taken} measurements failed (at most {limit} may); last: {detail}");
        // The measurement is written with the step's end (`measured` is still at the stored revision).
        let outcome = Outcome { state, detail: summary, run: None };
        self.finish_step_with(measured, index, outcome, vec![("analysis_measurement", evidence)]).await
    }
}
