//! The devserver's poller acknowledges a batch as an event source mapping does: every
//! message but the failed ones is deleted, in one DeleteMessageBatch.

use std::time::Duration;

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

/// A poller keeps a message hidden while its handler works; one that dies (its task
/// dropped mid-handler, as a killed process would) leaves the message to another poller
/// within the short visibility, not the queue's own (360 s for deploy jobs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_poller_keeps_its_message_and_a_dead_one_gives_it_up_soon() {
    let app = TestApp::spawn().await;
    let body = "{\"n\":1}";
    app.sqs.send_message().queue_url(&app.deploy_queue).message_body(body).send().await.unwrap();
    let queue = gantry_queue::SqsQueue::new(app.sqs.clone(), app.deploy_queue.clone()).with_poll_visibility(3);
    let started = std::sync::Arc::new(tokio::sync::Notify::new());
    let notify = started.clone();
    let poller = tokio::spawn(async move {
        queue
            .poll_with(1, |_| {
                let notify = notify.clone();
                async move {
                    notify.notify_one();
                    tokio::time::sleep(Duration::from_secs(600)).await;
                    SqsBatchResponse::default()
                }
            })
            .await;
    });
    started.notified().await;
    // Past the 3 s visibility, the busy poller has extended it: nobody else gets the message.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let other = app.state.deploy_jobs.receive(1).await.unwrap();
    assert!(other.records.is_empty(), "the message stays with the busy poller");
    poller.abort();
    let _ = poller.await;
    let taken = gantry_tests::eventually(Duration::from_secs(10), "the dead poller's message", || async {
        let event = app.state.deploy_jobs.receive(1).await.unwrap();
        event.records.first().and_then(|r| r.body.clone())
    })
    .await;
    assert_eq!(taken, body);
}

/// On Lambda a batch arrives hidden for the queue's own visibility timeout, which must
/// outlast the whole function (360 s for deploy jobs). The deployer hides its job for the
/// short visibility at once and again while it works, so a function that dies mid-rollout
/// gives its job up within that, not six minutes later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_batch_is_hidden_only_while_its_handler_works() {
    let app = TestApp::spawn().await;
    let body = "{\"n\":2}";
    app.sqs.send_message().queue_url(&app.deploy_queue).message_body(body).send().await.unwrap();
    // Received as an event source mapping receives it: hidden for the queue's timeout.
    let event = gantry_tests::eventually(Duration::from_secs(10), "the message", || async {
        let event = app.state.deploy_jobs.receive(1).await.unwrap();
        (!event.records.is_empty()).then_some(event)
    })
    .await;
    let queue = gantry_queue::SqsQueue::new(app.sqs.clone(), app.deploy_queue.clone()).with_poll_visibility(3);
    let function = tokio::spawn(async move {
        queue.while_hidden(&event, true, tokio::time::sleep(Duration::from_secs(600))).await;
    });
    // Past the 3 s visibility the busy function still holds it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(app.state.deploy_jobs.receive(1).await.unwrap().records.is_empty(), "the busy function keeps its job");
    function.abort();
    let _ = function.await;
    let taken = gantry_tests::eventually(Duration::from_secs(10), "the dead function's message", || async {
        let event = app.state.deploy_jobs.receive(1).await.unwrap();
        event.records.first().and_then(|r| r.body.clone())
    })
    .await;
    assert_eq!(taken, body);
}
