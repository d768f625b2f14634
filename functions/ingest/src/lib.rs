//! The ingest worker. Lambda feeds it SQS batches from the events queue (the devserver
//! polls the queue with the same handler); each event becomes version maps, and a failed
//! event is reported alone so only it is retried, and dead-lettered after five tries.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use gantry_domain::events::QueuedImageEvent;
use gantry_platform::AppState;

pub async fn handle(state: Arc<AppState>, event: SqsEvent) -> SqsBatchResponse {
    gantry_queue::handle_batch(event, |queued: QueuedImageEvent, _receives: u32| {
        let state = state.clone();
        async move {
            let applied = state.sync.apply(queued).await?;
            tracing::info!(
                created = applied.created.len(),
                removed = applied.removed,
                releases = applied.releases.len(),
                "event applied"
            );
            Ok(())
        }
    })
    .await
}

/// Serves SQS batches until the runtime stops it.
pub async fn run(state: Arc<AppState>) -> Result<(), lambda_runtime::Error> {
    gantry_queue::serve(None, move |event| handle(state.clone(), event)).await
}
