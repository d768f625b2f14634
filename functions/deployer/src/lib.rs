//! The deployer worker. Lambda feeds it SQS batches of deploy jobs, deployment reports to CI
//! systems and promotion steps (the devserver polls the queue with the same handler). A deploy
//! job that cannot run (a target out of reach) fails alone and is retried; after three
//! receives it goes to the dead-letter queue. A report the CI system does not take is queued
//! again by itself, later; a step waiting for a CI run schedules its own next check. A sweep,
//! which the template's schedule queues every minute, moves on the promotions that stalled
//! between two writes (see `gantry_domain::promotions::Sweep`).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use gantry_domain::agents::jobs::DeadlineCheck;
use gantry_domain::deployments::{DeployJob, MAX_DELIVERIES};
use gantry_domain::promotions::Sweep;
use gantry_domain::reports::ReportJob;
use gantry_domain::steps::StepJob;
use gantry_platform::AppState;
use serde::Deserialize;

/// What the deploy-jobs queue carries.
#[derive(Deserialize)]
#[serde(untagged)]
enum Job {
    // First: a deadline check also has a promotion and a target, like a deploy job.
    AgentDeadline(DeadlineCheck),
    Deploy(DeployJob),
    Report(ReportJob),
    Step(StepJob),
    Sweep(Sweep),
}

/// Runs each job. A deploy job that fails on its last delivery fails its deployment for good
/// (so the promotion shows `FAILED` with the reason) and still reports failure, so SQS moves
/// it to the dead-letter queue.
pub async fn handle(state: Arc<AppState>, event: SqsEvent) -> SqsBatchResponse {
    gantry_queue::handle_batch(event, |job: Job, receives: u32| {
        let state = state.clone();
        async move {
            let job = match job {
                Job::Report(report) => return state.reports.deliver(report).await,
                Job::Step(step) => return state.promotions.run_step(step).await,
                Job::Sweep(sweep) => return state.promotions.sweep(&sweep, chrono::Utc::now()).await.map(drop),
                Job::AgentDeadline(check) => {
                    if let Some(promotion) = state.agent_jobs.deadline_passed(&check).await? {
                        state.promotions.settle_when_done(promotion).await?;
                    }
                    return Ok(());
                }
                Job::Deploy(job) => job,
            };
            let result = state.deployer.run(job.clone()).await;
            if let Err(err) = &result
                && receives >= MAX_DELIVERIES
            {
                state.deployer.give_up(&job, err).await?;
            }
            result
        }
    })
    .await
}

/// Serves SQS batches until the runtime stops it. A job stays hidden a minute at a time
/// while the deployer works on it, so a deployer that dies mid-rollout leaves its job to
/// another within about a minute, though the queue's timeout outlasts the whole function.
pub async fn run(state: Arc<AppState>) -> Result<(), lambda_runtime::Error> {
    let queue = state.deploy_jobs.clone();
    gantry_queue::serve(Some(queue), move |event| handle(state.clone(), event)).await
}

#[cfg(test)]
mod tests {
    use super::Job;

    #[test]
    fn the_queue_carries_deploy_jobs_reports_and_steps() {
        let id = "0b6b0998-4aac-4743-94c8-b906db3adcef";
        let deploy = format!(r#"{{"promotionId":"{id}","targetId":"{id}","attempt":1}}"#);
        let report = format!(r#"{{"promotionId":"{id}","report":"in_progress","attempt":2}}"#);
        let step = format!(r#"{{"promotionId":"{id}","step":1,"check":3}}"#);
        assert!(matches!(serde_json::from_str(&deploy).unwrap(), Job::Deploy(j) if j.attempt == 1));
        assert!(matches!(serde_json::from_str(&report).unwrap(), Job::Report(r) if r.attempt == 2));
        assert!(matches!(serde_json::from_str(&step).unwrap(), Job::Step(s) if (s.step, s.check) == (1, 3)));
        assert!(
            serde_json::from_str::<Job>(&format!(r#"{{"promotionId":"{id}","report":"done","attempt":0}}"#)).is_err()
        );
    }

    #[test]
    fn the_templates_schedule_asks_for_a_sweep_of_promotions() {
        let template = include_str!("../../../infra/template.yaml");
        let schedule = &template[template.find("SweepSchedule:").expect("the template has the schedule")..];
        let input = schedule.lines().find_map(|l| l.trim().strip_prefix("Input: ")).expect("with an input");
        let job: Job = serde_json::from_str(input.trim_matches('\'')).expect("a job the deployer knows");
        assert!(matches!(job, Job::Sweep(s) if s == gantry_domain::promotions::Sweep::promotions()));
        assert!(schedule.contains("rate(1 minute)"));
    }

    #[test]
    fn max_deliveries_is_the_queues_max_receive_count() {
        let queues: serde_json::Value = serde_json::from_str(include_str!("../../../infra/queues.json")).unwrap();
        let deploy = queues["Queues"].as_array().unwrap().iter().find(|q| q["Name"] == "gantry-deploy-jobs").unwrap();
        assert_eq!(
            deploy["DeadLetter"]["MaxReceiveCount"].as_u64(),
            Some(u64::from(gantry_domain::deployments::MAX_DELIVERIES)),
            "the deployer gives up on the delivery SQS dead-letters"
        );
    }
}
