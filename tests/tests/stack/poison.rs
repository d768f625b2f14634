//! A batch with one poison message in it: the ingest function reports that message alone
//! (partial batch failure), so the others are handled once and never redelivered, and the
//! poison message lands in the dead-letter queue after the queue's maxReceiveCount.
//!
//! Beside it, an event whose registry is down is dead-lettered the same way, shows in
//! `deadLetterQueues`, and once the registry is up, `redriveDeadLetters` puts it back and
//! the ingest function handles it exactly once. (One test, so that the redrive cannot take
//! the poison message back while the other looks for it.)

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
    let stranded = Stranded::send(&stack, queue).await;

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
    stranded.redriven_once_fixed(&stack, max_receives).await;
}

/// An image event for a component whose registry is not up yet.
struct Stranded {
    port: u16,
    repository: String,
    component: String,
    message_id: String,
}

impl Stranded {
    async fn send(stack: &Stack, queue: &str) -> Self {
        let port = gantry_tests::registry::free_port();
        let created = stack
            .ok(
                "mutation($n: String!, $u: String!) { createRegistryIntegration(input: { name: $n, type: DISTRIBUTION, url: $u }) { integration { id } } }",
                json!({ "n": unique("down"), "u": format!("http://127.0.0.1:{port}") }),
            )
            .await;
        let integration = created["createRegistryIntegration"]["integration"]["id"].as_str().unwrap();
        let repository = format!("stack/{}", unique("stranded"));
        let component = stack
            .ok(
                "mutation($n: String!, $r: String!) { createComponent(input: { name: $n, imageRepository: $r }) { id } }",
                json!({ "n": unique("stranded"), "r": format!("127.0.0.1:{port}/{repository}") }),
            )
            .await["createComponent"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let event = QueuedImageEvent {
            integration_id: IntegrationId::parse(integration).unwrap(),
            event: ImageEvent {
                source: RegistrySource::Distribution,
                delivery_id: unique("delivery"),
                action: ImageAction::Pushed,
                registry: Some(format!("127.0.0.1:{port}")),
                repository: repository.clone(),
                tag: Some("1.0.0".into()),
                digest: None,
                media_type: None,
            },
        };
        let body = serde_json::to_string(&event).unwrap();
        let sent = stack.sqs.send_message().queue_url(queue).message_body(body).send().await.unwrap();
        Self { port, repository, component, message_id: sent.message_id.unwrap() }
    }

    /// Waits for the event in the dead-letter queue, starts the registry, redrives, and reads
    /// the version map the event makes and the ingest function's logs.
    async fn redriven_once_fixed(self, stack: &Stack, max_receives: u64) {
        let list = "{ deadLetterQueues { queue visible } }";
        eventually(Duration::from_secs(120), "the stranded event in the dead-letter queue", || async {
            let queues = stack.ok(list, json!({})).await["deadLetterQueues"].clone();
            let events = queues.as_array()?.iter().find(|q| q["queue"] == "events")?.clone();
            (events["visible"].as_u64()? >= 1).then_some(())
        })
        .await;
        let registry = gantry_tests::registry::Registry::start(self.port, "http://127.0.0.1:9/", "unused");
        let digest = registry.push(&self.repository, "1.0.0", "stranded 1.0.0");
        let redrive = "mutation { redriveDeadLetters(queue: \"events\") { method moved messageIds } }";
        let redriven = stack.ok(redrive, json!({})).await["redriveDeadLetters"].clone();
        assert_eq!(redriven["method"], "MOVED_BY_GANTRY", "the emulator has no StartMessageMoveTask: {redriven}");
        assert_eq!(redriven["moved"], 1, "{redriven}");
        let moved = redriven["messageIds"][0].as_str().unwrap().to_owned();

        let versions = "query($id: ID!) { componentVersions(componentId: $id) { digest } }";
        eventually(Duration::from_secs(60), "the redriven event's version map", || async {
            let found = stack.ok(versions, json!({ "id": self.component })).await["componentVersions"].clone();
            (found == json!([{ "digest": digest }])).then_some(())
        })
        .await;
        let logs = eventually(Duration::from_secs(30), "the redriven message's log line", || async {
            let logs = stack.function_logs(stack.output("IngestFunctionName")).await;
            logs.iter().any(|l| l.contains(&moved) && l.contains("message handled")).then_some(logs)
        })
        .await;
        let count = |id: &str, what: &str| logs.iter().filter(|l| l.contains(id) && l.contains(what)).count() as u64;
        assert_eq!(count(&self.message_id, "message failed"), max_receives, "dead-lettered after maxReceiveCount");
        assert_eq!((count(&moved, "message handled"), count(&moved, "message failed")), (1, 0), "handled exactly once");
        let queues = stack.ok(list, json!({})).await["deadLetterQueues"].clone();
        assert_eq!(queues.as_array().unwrap().iter().find(|q| q["queue"] == "events").unwrap()["visible"], 0);
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
