//! The deployer worker. Lambda feeds it SQS batches of deploy jobs (the devserver polls the
//! queue with the same handler). A job that cannot run (a target out of reach) fails alone
//! and is retried; after three receives it goes to the dead-letter queue.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use gantry_domain::deployments::{DeployJob, MAX_DELIVERIES};
use gantry_platform::AppState;

/// Runs each job; a job that fails on its last delivery fails its deployment for good
/// (so the promotion shows `FAILED` with the reason) and still reports failure, so SQS moves
/// it to the dead-letter queue.
pub async fn handle(state: Arc<AppState>, event: SqsEvent) -> SqsBatchResponse {
    gantry_queue::handle_batch(event, |job: DeployJob, receives: u32| {
        let state = state.clone();
        async move {
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

/// Serves SQS batches until the runtime stops it.
pub async fn run(state: Arc<AppState>) -> Result<(), lambda_runtime::Error> {
    gantry_queue::serve(move |event| handle(state.clone(), event)).await
}

#[cfg(test)]
mod tests {
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
