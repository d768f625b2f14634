use super::*;

async fn call(slack: &FakeSlack, method: &str, token: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/{method}", slack.api_url()))
        .bearer_auth(token)
        .form(form)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn messages_are_posted_and_updated_in_place() {
    let slack = FakeSlack::start("xoxb-test").await;
    slack.add_channel("C0001", "#deploys");
    let (status, posted) =
        call(&slack, "chat.postMessage", "xoxb-test", &[("channel", "#deploys"), ("text", "hi"), ("blocks", "[]")])
            .await;
    assert_eq!((status, posted["ok"].as_bool(), posted["channel"].as_str()), (200, Some(true), Some("C0001")));
    let ts = posted["ts"].as_str().unwrap();
    let (_, updated) = call(
        &slack,
        "chat.update",
        "xoxb-test",
        &[("channel", "C0001"), ("ts", ts), ("text", "bye"), ("blocks", "[]")],
    )
    .await;
    assert_eq!(updated["ok"], true);
    let messages = slack.messages();
    assert_eq!((messages.len(), messages[0].text.as_str(), messages[0].updates), (1, "bye", 1));
    assert_eq!(slack.operations(), ["chat_postMessage", "chat_update"]);
}

#[tokio::test]
async fn refusals_are_slacks() {
    let slack = FakeSlack::start("xoxb-test").await;
    slack.add_channel("C0001", "#deploys");
    let form = [("channel", "#deploys"), ("text", "hi"), ("blocks", "[]")];
    assert_eq!(call(&slack, "chat.postMessage", "xoxb-other", &form).await.1["error"], "invalid_auth");
    let unknown = [("channel", "#elsewhere"), ("text", "hi"), ("blocks", "[]")];
    assert_eq!(call(&slack, "chat.postMessage", "xoxb-test", &unknown).await.1["error"], "channel_not_found");
    let update = [("channel", "C0001"), ("ts", "1.2"), ("text", "x"), ("blocks", "[]")];
    assert_eq!(call(&slack, "chat.update", "xoxb-test", &update).await.1["error"], "message_not_found");
    // chat.update without `ts` breaks the contract.
    let (status, _) = call(&slack, "chat.update", "xoxb-test", &[("channel", "C0001")]).await;
    assert_eq!(status, 400);
    assert_eq!(slack.violations().len(), 1);
    slack.faults([Fault::RateLimited]);
    assert_eq!(call(&slack, "chat.postMessage", "xoxb-test", &form).await.0, 429);
}

#[tokio::test]
async fn response_urls_take_json_messages() {
    let slack = FakeSlack::start("xoxb-test").await;
    let url = slack.response_url("commands", 1);
    let http = reqwest::Client::new();
    let sent = http.post(&url).json(&json!({ "text": "done", "response_type": "ephemeral" })).send().await.unwrap();
    assert_eq!(sent.status(), 200);
    let bad = http.post(&url).json(&json!({ "response_type": "loud" })).send().await.unwrap();
    assert_eq!(bad.status(), 400, "no text, and an unknown response_type");
    assert_eq!(slack.responses().len(), 1);
    assert_eq!(slack.responses()[0].body["text"], "done");
}
