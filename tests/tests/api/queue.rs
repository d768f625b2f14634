//! The devserver's poller acknowledges a batch as an event source mapping does: every
//! message but the failed ones is deleted, in one DeleteMessageBatch.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};

use crate::support::TestApp;

#[tokio::test]
async fn acknowledging_deletes_all_but_the_failed_messages() {
    let app = TestApp::spawn().await;
    for n in 0..3 {
        app.sqs
            .send_message()
            .queue_url(&app.deploy_queue)
            .message_body(format!("{{\"n\":{n}}}"))
            .send()
            .await
            .unwrap();
    }
    let queue = &app.state.deploy_jobs;
    let mut event = queue.receive(1).await.unwrap();
    while event.records.len() < 3 {
        event.records.extend(queue.receive(1).await.unwrap().records);
    }
    let mut response = SqsBatchResponse::default();
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = event.records[1].message_id.clone().unwrap();
    response.batch_item_failures.push(failure);
    queue.acknowledge(&event, &response).await.unwrap();
    let (waiting, in_flight) = app.queue_depth(&app.deploy_queue).await;
    assert_eq!(waiting, "0");
    assert_eq!(in_flight, "1", "only the failed message is left, in flight");
}
