//! Dead-letter queues: admins list them and put their messages back. The emulator has no
//! `StartMessageMoveTask`, so Gantry moves them itself: each exactly once, body and
//! attributes unchanged. (The deployed stack's suite dead-letters a real failure and shows
//! the redriven message handled once.)

use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use gantry_domain::access::Role;
use serde_json::json;

use crate::support::{TestApp, token};

const LIST: &str = "{ deadLetterQueues { queue name visible inFlight maxReceiveCount } }";
const REDRIVE: &str =
    "mutation($q: String!) { redriveDeadLetters(queue: $q) { queue method moved taskHandle messageIds } }";

async fn dead_letter_url(app: &TestApp) -> String {
    let name = format!("{}-gantry-events-dlq", app.table);
    app.sqs.get_queue_url().queue_name(name).send().await.unwrap().queue_url.unwrap()
}

async fn waiting(app: &TestApp, url: &str) -> (String, String) {
    let out = app
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let n = |a: QueueAttributeName| out[&a].clone();
    (n(QueueAttributeName::ApproximateNumberOfMessages), n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
}

#[tokio::test]
async fn admins_list_dead_letters_and_put_them_back_once() {
    let app = TestApp::spawn().await;
    let dlq = dead_letter_url(&app).await;
    let body = json!({ "a dead-lettered event": "kept as it was" }).to_string();
    let trace = MessageAttributeValue::builder().data_type("String").string_value("00-abc-def-01").build().unwrap();
    app.sqs
        .send_message()
        .queue_url(&dlq)
        .message_body(&body)
        .message_attributes("traceparent", trace)
        .send()
        .await
        .unwrap();

    let listed = app.ok(LIST, json!({})).await["deadLetterQueues"].clone();
    assert_eq!(
        listed,
        json!([
            { "queue": "events", "name": format!("{}-gantry-events-dlq", app.table), "visible": 1, "inFlight": 0, "maxReceiveCount": 5 },
            { "queue": "deploy-jobs", "name": format!("{}-gantry-deploy-jobs-dlq", app.table), "visible": 0, "inFlight": 0, "maxReceiveCount": 3 },
            { "queue": "notifications", "name": format!("{}-gantry-notifications-dlq", app.table), "visible": 0, "inFlight": 0, "maxReceiveCount": 5 },
        ])
    );

    // Only admins; an unknown queue is not found; none of it moves a message.
    let viewer = token("viv", &[Role::Viewer]);
    for (query, vars) in [(LIST, json!({})), (REDRIVE, json!({ "q": "events" }))] {
        let (_, answer) = app.gql_as(Some(&viewer), query, vars).await;
        assert_eq!(answer["errors"][0]["extensions"]["code"], "FORBIDDEN", "{answer}");
    }
    let refused = app.assert_rejected("NOT_FOUND", REDRIVE, json!({ "q": "gantry-events-dlq" })).await;
    assert!(refused.contains("events, deploy-jobs, notifications"), "{refused}");
    assert_eq!(waiting(&app, &dlq).await, ("1".into(), "0".into()));

    let redrive = app.ok(REDRIVE, json!({ "q": "events" })).await["redriveDeadLetters"].clone();
    assert_eq!(
        (&redrive["method"], &redrive["moved"], &redrive["taskHandle"]),
        (&json!("MOVED_BY_GANTRY"), &json!(1), &json!(null))
    );
    let moved = redrive["messageIds"][0].as_str().unwrap().to_owned();

    // Exactly one message is back on the queue, as it was; none is left behind.
    let out = app
        .sqs
        .receive_message()
        .queue_url(&app.events_queue)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let messages = out.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        (messages[0].message_id.as_deref(), messages[0].body.as_deref()),
        (Some(moved.as_str()), Some(body.as_str()))
    );
    let attributes = messages[0].message_attributes.as_ref().unwrap();
    assert_eq!(attributes["traceparent"].string_value(), Some("00-abc-def-01"));
    assert_eq!(waiting(&app, &dlq).await, ("0".into(), "0".into()));
    let again = app.ok(REDRIVE, json!({ "q": "events" })).await["redriveDeadLetters"].clone();
    assert_eq!(again["moved"], 0, "nothing is left to move");
}
