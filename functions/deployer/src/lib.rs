//! The deployer worker. Lambda feeds it SQS batches of deploy jobs (the devserver polls the
//! queue with the same handler). A job that cannot run (a target out of reach) fails alone
//! and is retried; after three receives it goes to the dead-letter queue.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use gantry_domain::deployments::{DeployJob, MAX_DELIVERIES};
use gantry_platform::AppState;
use lambda_runtime::{LambdaEvent, service_fn};

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
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let state = state.clone();
        async move { Ok::<_, lambda_runtime::Error>(handle(state, event.payload).await) }
    }))
    .await
}
