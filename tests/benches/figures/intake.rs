//! Webhook intake at concurrency 1 and 8, beside the emulator-only ceiling: the same calls
//! (GetItem of the secret entry, SendMessageBatch of the event, conditional PutItem of a
//! delivery item of the same size) made straight to the emulator.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use gantry_tests::app::{TestApp, digest};
use gantry_tests::recorder::Request;
use serde_json::json;

use crate::measure;

/// What one accepted webhook cost, counted.
pub struct Accepted {
    pub dynamodb: Vec<Request>,
    pub sqs: Vec<Request>,
    /// Gantry's p50 at concurrency 1, the nearest figure here to a Lambda's billed duration.
    pub p50_ms: f64,
}

/// Posts a registry push of one event for image `bench/app<repo>`; asserts the 202.
pub async fn post(app: &TestApp, auth: &str, label: String, repo: usize) {
    let body = json!({ "events": [{ "id": format!("bench-{label}"), "action": "push",
        "target": { "mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": format!("bench/app{repo}"),
                    "tag": "1.0.0", "digest": digest(&label) }, "request": { "host": "127.0.0.1:5000" } }] });
    let body = serde_json::to_vec(&body).unwrap();
    let (status, _) = app.post_webhook("/webhooks/registry/distribution", &[("authorization", auth)], body).await;
    assert_eq!(status, 202);
}

pub async fn run(app: &TestApp, rounds: usize) -> Accepted {
    let (_, secret) = app.create_integration("bench", "DISTRIBUTION", "http://127.0.0.1:5000").await;
    let auth = format!("Bearer {secret}");
    app.requests.take();
    app.sqs_requests.take();
    post(app, &auth, "counted".into(), 0).await;
    let (dynamodb, sqs) = (app.requests.take_requests(), app.sqs_requests.take_requests());
    let ceiling = Ceiling::copy(app).await;
    println!("Webhook intake (202: authenticated, queued, stored), {rounds} requests a row");
    let mut p50_ms = 0.0;
    for concurrency in [1, 8] {
        let gantry =
            measure::run(rounds, concurrency, |i| post(app, &auth, format!("c{concurrency}-{i}"), i % 50)).await;
        let raw = measure::run(rounds, concurrency, |i| ceiling.replay(app, format!("c{concurrency}-{i}"))).await;
        if concurrency == 1 {
            p50_ms = gantry.percentile(0.5).as_secs_f64() * 1000.0;
        }
        println!(
            "  concurrency {concurrency}: Gantry {:>5.0}/s {}   emulator only {:>5.0}/s {}",
            gantry.per_second(),
            gantry.latency(),
            raw.per_second(),
            raw.latency()
        );
        // The raw run is three SDK calls a round in this process; the Gantry run is the
        // client's request and the server's whole handling, three SDK calls included.
        let per = |run: &measure::Run, each: usize| run.cpu / (rounds * each) as u32;
        println!(
            "    CPU in this process: {:.0?} a webhook (client and server); {:.0?} an SDK call made straight",
            per(&gantry, 1),
            per(&raw, 3)
        );
    }
    let names = |rs: &[Request]| rs.iter().map(|r| r.operation.clone()).collect::<Vec<_>>();
    println!("  requests per webhook: DynamoDB {:?}, SQS {:?}", names(&dynamodb), names(&sqs));
    println!("  delivery item {} bytes, queued message {} bytes", ceiling.delivery_bytes(), ceiling.message.len());
    Accepted { dynamodb, sqs, p50_ms }
}

/// Copies of what intake reads and writes, to make its calls without Gantry.
struct Ceiling {
    secret_key: HashMap<String, AttributeValue>,
    delivery: HashMap<String, AttributeValue>,
    message: String,
}

impl Ceiling {
    async fn copy(app: &TestApp) -> Self {
        let item_with_sk = |sk: &'static str| async move {
            let scan = app.dynamodb.scan().table_name(&app.table).filter_expression("SK = :sk");
            let out = scan.expression_attribute_values(":sk", AttributeValue::S(sk.into())).send().await.unwrap();
            out.items.unwrap_or_default().into_iter().next().unwrap_or_else(|| panic!("no {sk} item"))
        };
        let secret = item_with_sk("WEBHOOK_SECRET").await;
        let secret_key = secret.into_iter().filter(|(k, _)| k == "PK" || k == "SK").collect();
        let delivery = item_with_sk("DELIVERY").await;
        let received = app.sqs.receive_message().queue_url(&app.events_queue).send().await.unwrap();
        let message = received.messages.unwrap_or_default().remove(0);
        let handle = message.receipt_handle.unwrap();
        app.sqs.delete_message().queue_url(&app.events_queue).receipt_handle(handle).send().await.unwrap();
        let message = message.body.unwrap();
        Self { secret_key, delivery, message }
    }

    fn delivery_bytes(&self) -> usize {
        measure::item_size(&self.delivery)
    }

    async fn replay(&self, app: &TestApp, label: String) {
        let get = app.dynamodb.get_item().table_name(&app.table).set_key(Some(self.secret_key.clone()));
        get.send().await.unwrap();
        let entry = SendMessageBatchRequestEntry::builder().id("0").message_body(&self.message).build().unwrap();
        app.sqs.send_message_batch().queue_url(&app.events_queue).entries(entry).send().await.unwrap();
        let mut item = self.delivery.clone();
        item.insert("PK".into(), AttributeValue::S(format!("DELIVERY#raw-{label}")));
        let put = app.dynamodb.put_item().table_name(&app.table).set_item(Some(item));
        put.condition_expression("attribute_not_exists(PK)").send().await.unwrap();
    }
}
