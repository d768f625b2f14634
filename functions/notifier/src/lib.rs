//! The notifier worker. Lambda feeds it SQS batches from the notifications queue (the
//! devserver polls the queue with the same handler): Slack commands and button clicks to
//! carry out, promotion events to fan out to subscriptions and approval cards, and single
//! deliveries. A job that fails for want of DynamoDB or SQS fails alone and is retried; a
//! delivery the receiver does not take is queued again by itself, later.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use gantry_domain::notifier::NotifierJob;
use gantry_platform::AppState;

pub async fn handle(state: Arc<AppState>, event: SqsEvent) -> SqsBatchResponse {
    gantry_queue::handle_batch(event, |job: NotifierJob, _receives: u32| {
        let state = state.clone();
        async move { state.notifier.run(job).await }
    })
    .await
}

/// Serves SQS batches until the runtime stops it.
pub async fn run(state: Arc<AppState>) -> Result<(), lambda_runtime::Error> {
    gantry_queue::serve(None, move |event| handle(state.clone(), event)).await
}

#[cfg(test)]
mod tests {
    use gantry_domain::notifier::NotifierJob;

    #[test]
    fn the_queue_carries_chat_jobs_events_and_deliveries() {
        let chat = r#"{"job":"chat","team":"T1","user":"U1","responseUrl":"https://hooks.slack.com/x","action":{"kind":"click","approve":true,"promotion":"p"}}"#;
        assert!(matches!(serde_json::from_str(chat).unwrap(), NotifierJob::Chat(c) if c.team == "T1"));
        let command = r#"{"job":"chat","team":"T1","user":"U1","responseUrl":"u","action":{"kind":"command","command":{"command":"status","environment":null}}}"#;
        assert!(matches!(serde_json::from_str(command).unwrap(), NotifierJob::Chat(_)));
        assert!(serde_json::from_str::<NotifierJob>(r#"{"job":"launch"}"#).is_err());
    }

    #[test]
    fn the_notifications_queue_dead_letters() {
        let queues: serde_json::Value = serde_json::from_str(include_str!("../../../infra/queues.json")).unwrap();
        let notify = queues["Queues"].as_array().unwrap().iter().find(|q| q["Name"] == "gantry-notifications");
        assert!(notify.is_some_and(|q| q["DeadLetter"]["MaxReceiveCount"].as_u64() == Some(5)));
    }
}
