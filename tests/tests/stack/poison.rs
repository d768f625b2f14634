//! A batch with one poison message in it: the ingest function reports that message alone
//! (partial batch failure), so the others are handled once and never redelivered, and the
//! poison message lands in the dead-letter queue after the queue's maxReceiveCount.

use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry};
use gantry_domain::events::{ImageAction, ImageEvent, QueuedImageEvent, RegistrySource};
use gantry_domain::integrations::IntegrationId;
use serde_json::{Value, json};

use crate::support::{Stack, eventually, unique};

#[tokio::test]
async fn a_poison_message_fails_alone_and_is_dead_lettered() {
    let stack = Stack::load().await;
    let integration = IntegrationId::parse(
        stack
            .ok(
            "mutation($n: String!) { createRegistryIntegration(input: { name: $n, type: DISTRIBUTION, url: \"http://127.0.0.1:9\" }) { integration { id } } }",
            json!({ "n": unique("poison") }),
        )
            .await["createRegistryIntegration"]["integration"]["id"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let poison = json!({ "poison": unique("not-an-image-event") }).to_string();
    let queue = stack.output("EventsQueueUrl");
    let ids = send_around(&stack, queue, integration, &poison).await;
    let poison_id = ids[1].clone();
    let (visibility, max_receives) = redrive(&stack, queue).await;

    let dead_letters = stack.output("EventsDeadLetterQueueUrl");
    let limit = Duration::from_secs(max_receives * (visibility + 5) + 30);
    let dead = eventually(limit, "the poison message in the dead-letter queue", || async {
        let out = stack
            .sqs
            .receive_message()
            .queue_url(dead_letters)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        out.messages.unwrap_or_default().into_iter().find(|m| m.body.as_deref() == Some(poison.as_str()))
    })
    .await;
    stack
        .sqs
        .delete_message()
        .queue_url(dead_letters)
        .receipt_handle(dead.receipt_handle.unwrap())
        .send()
        .await
        .unwrap();

    let logs = stack.function_logs(stack.output("IngestFunctionName")).await;
    let count = |id: &str, what: &str| logs.iter().filter(|l| l.contains(id) && l.contains(what)).count() as u64;
    assert_eq!(count(&poison_id, "message failed"), max_receives, "the poison message was tried maxReceiveCount times");
    assert_eq!(count(&poison_id, "message handled"), 0);
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| *i != 1) {
        assert_eq!(count(id, "message handled"), 1, "message {i} was handled exactly once");
        assert_eq!(count(id, "message failed"), 0, "message {i} never failed");
    }
}

/// Sends three good events around `poison` (second of four), each in its own group; the
/// message ids in order.
async fn send_around(stack: &Stack, queue: &str, integration: IntegrationId, poison: &str) -> Vec<String> {
    // Events for an image no component releases: handled, and nothing to do.
    let good = |i: usize| QueuedImageEvent {
        integration_id: integration,
        event: ImageEvent {
            source: RegistrySource::Distribution,
            delivery_id: unique("delivery"),
            action: ImageAction::Pushed,
            registry: Some("127.0.0.1:9".into()),
            repository: format!("nobody/image-{i}"),
            tag: Some("1.0.0".into()),
            digest: None,
            media_type: None,
        },
    };
    let mut bodies: Vec<String> = (0..3).map(|i| serde_json::to_string(&good(i)).unwrap()).collect();
    bodies.insert(1, poison.to_owned());
    let entries = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build().unwrap())
        .collect();
    let sent = stack.sqs.send_message_batch().queue_url(queue).set_entries(Some(entries)).send().await.unwrap();
    assert!(sent.failed.is_empty());
    let mut ok = sent.successful;
    ok.sort_by_key(|e| e.id.parse::<usize>().unwrap());
    ok.into_iter().map(|e| e.message_id).collect()
}

/// The queue's visibility timeout and maxReceiveCount.
async fn redrive(stack: &Stack, queue: &str) -> (u64, u64) {
    let attributes = stack
        .sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let visibility: u64 = attributes[&QueueAttributeName::VisibilityTimeout].parse().unwrap();
    let redrive: Value = serde_json::from_str(&attributes[&QueueAttributeName::RedrivePolicy]).unwrap();
    let max_receives = redrive["maxReceiveCount"].as_u64().unwrap();
    (visibility, max_receives)
}
