//! A Slack command reaches the webhooks function's URL, is acknowledged at once, and the
//! notifications queue's event source mapping hands it to the notifier function, which
//! carries it out as the mapped principal.

use std::time::Duration;

use serde_json::json;

use crate::support::{Stack, eventually, unique};

/// The signing secret `make test` deploys the stack with.
const SECRET: &str = "stack-test-slack-signing-secret-0123";

async fn post_command(stack: &Stack, text: &str, secret: &str) -> (u16, serde_json::Value) {
    let body = format!(
        "team_id=TSTACK&user_id=USTACK&command=%2Fgantry&text={}&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FTSTACK%2F1%2Fx&trigger_id={}",
        text.replace(' ', "+"),
        unique("trigger")
    );
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let signature = gantry_gateway::slack::sign(secret.as_bytes(), &timestamp, body.as_bytes());
    let res = stack
        .http
        .post(format!("{}slack/commands", stack.webhooks_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", timestamp)
        .header("x-slack-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_slack_command_is_carried_out_by_the_notifier_function() {
    let stack = Stack::load().await;
    let _front = crate::support::FRONT_OF_PATH.lock().await;
    let principal = unique("slack-user");
    stack
        .ok(
            "mutation($p: String!) { mapSlackUser(input: { teamId: \"TSTACK\", userId: \"USTACK\", principal: $p, roles: [\"release-creator\"] }) { principal } }",
            json!({ "p": principal }),
        )
        .await;
    let environment = unique("slack-dev");
    let env_id = stack
        .ok(
            "mutation($n: String!, $o: Int!) { createEnvironment(input: { name: $n, order: $o }) { id } }",
            json!({ "n": environment, "o": stack.first_order().await }),
        )
        .await["createEnvironment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let name = unique("slack-web");
    let component = stack
        .ok(
            "mutation($n: String!) { createComponent(input: { name: $n, imageRepository: \"registry.example.com/acme/slack\" }) { id } }",
            json!({ "n": name }),
        )
        .await["createComponent"]["id"]
        .clone();
    let digest = format!("sha256:{}", "cd".repeat(32));
    stack
        .ok(
            "mutation($c: ID!, $d: String!) { createVersionMap(input: { componentId: $c, tag: \"1.0.0\", digest: $d }) { id } }",
            json!({ "c": component, "d": digest }),
        )
        .await;
    let release = stack
        .ok(
            "mutation($n: String!, $c: ID!) { createRelease(input: { name: $n, components: [{ componentId: $c, version: \"1.0.0\" }] }) { id } }",
            json!({ "n": unique("slack-shop"), "c": component }),
        )
        .await["createRelease"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    stack
        .ok("mutation($id: ID!) { updateRelease(id: $id, input: { status: READY }) { id } }", json!({ "id": release }))
        .await;

    let (status, _) = post_command(&stack, "status", "forged-signing-secret-0123456789").await;
    assert_eq!(status, 401);
    let (status, ack) = post_command(&stack, &format!("promote {release} to {environment}"), SECRET).await;
    assert_eq!(status, 200, "{ack}");
    assert!(ack["text"].as_str().unwrap_or_default().starts_with("Working on"), "{ack}");
    let q = "query($e: ID!) { promotions(environmentId: $e) { edges { node { requestedBy status } } } }";
    let promotion = eventually(Duration::from_secs(60), "the notifier to request the promotion", || async {
        let edges = stack.ok(q, json!({ "e": env_id })).await["promotions"]["edges"].clone();
        edges.as_array().and_then(|e| e.first()).map(|e| e["node"].clone())
    })
    .await;
    assert_eq!(promotion["requestedBy"], principal.as_str());
}
