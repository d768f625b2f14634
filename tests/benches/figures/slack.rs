//! The Slack app's acknowledgement: a signed `/gantry` command or card click checked,
//! de-duplicated, queued and answered, at concurrency 1 and 8. Slack waits three seconds;
//! the goal is a p99 under 300 ms.

use gantry_tests::app::TestApp;

use crate::measure;

const SECRET: &str = "bench-slack-signing-secret-0123456789";

async fn post(app: &TestApp, path: &str, body: String) {
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let signature = gantry_gateway::slack::sign(SECRET.as_bytes(), &timestamp, body.as_bytes());
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-slack-request-timestamp", timestamp.as_str()),
        ("x-slack-signature", signature.as_str()),
    ];
    let (status, _) = app.post_webhook(path, &headers, body.into_bytes()).await;
    assert_eq!(status, 200);
}

fn command(i: usize) -> String {
    format!(
        "team_id=T1&user_id=U1&command=%2Fgantry&text=status&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1%2F1%2Fx&trigger_id=bench.{i}"
    )
}

fn click(i: usize) -> String {
    let payload = serde_json::json!({ "type": "block_actions", "user": { "id": "U1" }, "team": { "id": "T1" },
        "response_url": "https://hooks.slack.com/actions/T1/1/x",
        "actions": [{ "action_id": "gantry_approve", "value": "00000000-0000-0000-0000-000000000000", "action_ts": format!("1.{i}") }] });
    let encoded: String = payload
        .to_string()
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    format!("payload={encoded}")
}

pub async fn run(rounds: usize) {
    let app = TestApp::spawn_with(&[("GANTRY_SLACK_SIGNING_SECRET", SECRET)]).await;
    println!(
        "Slack acknowledgement (verified, de-duplicated, queued, answered), {rounds} requests a row; goal p99 < 300 ms"
    );
    for concurrency in [1, 8] {
        let commands =
            measure::run(rounds, concurrency, |i| post(&app, "/slack/commands", command(concurrency * 100_000 + i)))
                .await;
        let clicks =
            measure::run(rounds, concurrency, |i| post(&app, "/slack/interactions", click(concurrency * 100_000 + i)))
                .await;
        println!("  concurrency {concurrency}: commands {}   clicks {}", commands.latency(), clicks.latency());
    }
}
