//! The Slack app: signed commands and clicks, approval cards updated in place, and
//! notifications to Slack channels and signed webhooks, against a Slack stand-in that
//! checks every request against Slack's published API description.

use std::time::Duration;

use gantry_slack_fake::FakeSlack;
use gantry_tests::eventually;
use serde_json::{Value, json};

use crate::support::{TestApp, digest};

const SECRET: &str = "slack-signing-secret-for-tests-0123";
const BOT: &str = "xoxb-test-bot-token";

async fn slack_app(workers: bool) -> (TestApp, FakeSlack) {
    let slack = FakeSlack::start(BOT).await;
    slack.add_channel("C0DEPLOYS", "#deploys");
    let api = slack.api_url();
    let settings =
        [("GANTRY_SLACK_SIGNING_SECRET", SECRET), ("GANTRY_SLACK_BOT_TOKEN", BOT), ("GANTRY_SLACK_API_URL", &api)];
    let app =
        if workers { TestApp::spawn_with_workers_and(&settings).await } else { TestApp::spawn_with(&settings).await };
    (app, slack)
}

/// POSTs a Slack request signed with `secret`, `skew` seconds from now.
async fn post_slack(app: &TestApp, path: &str, body: &str, skew: i64, secret: &str) -> (u16, Value) {
    let timestamp = (chrono::Utc::now().timestamp() + skew).to_string();
    let signature = gantry_gateway::slack::sign(secret.as_bytes(), &timestamp, body.as_bytes());
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-slack-request-timestamp", timestamp.as_str()),
        ("x-slack-signature", signature.as_str()),
    ];
    app.post_webhook(path, &headers, body.as_bytes().to_vec()).await
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        let enc = |s: &str| {
            s.bytes()
                .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
                .collect::<String>()
        };
        out.push_str(&format!("{}{}={}", if i > 0 { "&" } else { "" }, enc(k), enc(v)));
    }
    out
}

fn command(slack: &FakeSlack, user: &str, text: &str, n: u32) -> String {
    let url = slack.response_url("commands", n);
    let trigger = format!("trigger.{n}");
    form(&[
        ("team_id", "T0001"),
        ("user_id", user),
        ("command", "/gantry"),
        ("text", text),
        ("channel_id", "C0DEPLOYS"),
        ("response_url", &url),
        ("trigger_id", &trigger),
    ])
}

fn click(slack: &FakeSlack, user: &str, approve: bool, promotion: &str, n: u32) -> String {
    let action = if approve { "gantry_approve" } else { "gantry_reject" };
    let payload = json!({
        "type": "block_actions",
        "user": { "id": user, "team_id": "T0001" },
        "team": { "id": "T0001" },
        "response_url": slack.response_url("actions", n),
        "actions": [{ "action_id": action, "block_id": "gantry_decision", "value": promotion, "action_ts": format!("1700000000.{n}") }],
    });
    form(&[("payload", &payload.to_string())])
}

async fn map(app: &TestApp, user: &str, principal: &str, roles: &[&str]) {
    app.ok(
        "mutation($i: MapSlackUserInput!) { mapSlackUser(input: $i) { principal } }",
        json!({ "i": { "teamId": "T0001", "userId": user, "principal": principal, "roles": roles } }),
    )
    .await;
}

/// The reply a response URL got whose text contains `needle`.
async fn reply(slack: &FakeSlack, needle: &str) -> Value {
    eventually(Duration::from_secs(20), needle, || async {
        slack
            .responses()
            .into_iter()
            .find(|r| r.body["text"].as_str().unwrap_or_default().contains(needle))
            .map(|r| r.body)
    })
    .await
}

/// dev (no approvals) and staging (two approvals, cards in #deploys); a READY release.
async fn path(app: &TestApp) -> (String, String, String) {
    let dev = app.create_environment("dev", 10).await;
    let staging = app
        .create_environment_with(
            json!({ "name": "staging", "order": 20, "requiredApprovals": 2, "slackChannel": "#deploys" }),
        )
        .await;
    let web = app.create_component("web").await;
    app.add_version(&web, "1.0.0", &digest("web")).await;
    let release = app.ready_release("shop-1.0.0", json!([{ "componentId": web, "version": "1.0.0" }])).await;
    (dev, staging, release)
}

#[tokio::test]
async fn forged_and_stale_requests_get_401_and_nothing_is_written() {
    let (app, slack) = slack_app(false).await;
    map(&app, "U0001", "alice@example.com", &["approver"]).await;
    let before = app.snapshot().await;
    let body = command(&slack, "U0001", "status", 1);
    for (skew, secret, why) in
        [(0, "another-secret-entirely-0123456789", "forged"), (-301, SECRET, "stale"), (301, SECRET, "future")]
    {
        let (status, answer) = post_slack(&app, "/slack/commands", &body, skew, secret).await;
        assert_eq!(status, 401, "{why}: {answer}");
        assert_eq!(answer["error"]["code"], "UNAUTHENTICATED", "{why}");
    }
    let clicked = click(&slack, "U0001", true, "00000000-0000-0000-0000-000000000000", 1);
    assert_eq!(post_slack(&app, "/slack/interactions", &clicked, 0, "forged-secret-0123456789abcdef").await.0, 401);
    let unsigned = app.post_webhook("/slack/commands", &[], body.into_bytes()).await;
    assert_eq!(unsigned.0, 401);
    assert_eq!(app.snapshot().await, before, "nothing was written");
    assert_eq!(app.queue_depth(&app.notify_queue).await, ("0".to_owned(), "0".to_owned()), "nothing was queued");
}

#[tokio::test]
async fn without_a_signing_secret_the_slack_endpoints_are_not_there() {
    let app = TestApp::spawn().await;
    let (status, _) = app.post_webhook("/slack/commands", &[], b"text=help".to_vec()).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn help_and_malformed_commands_are_answered_at_once_and_queue_nothing() {
    let (app, slack) = slack_app(false).await;
    let before = app.snapshot().await;
    let (status, help) = post_slack(&app, "/slack/commands", &command(&slack, "U0001", "help", 1), 0, SECRET).await;
    assert_eq!((status, help["response_type"].as_str()), (200, Some("ephemeral")));
    assert!(help["text"].as_str().unwrap().contains("/gantry promote <release> to <environment>"), "{help}");
    let (_, bad) = post_slack(&app, "/slack/commands", &command(&slack, "U0001", "promote shop", 2), 0, SECRET).await;
    assert!(bad["text"].as_str().unwrap().contains("usage: /gantry promote"), "{bad}");
    let (_, unknown) = post_slack(&app, "/slack/commands", &command(&slack, "U0001", "deploy all", 3), 0, SECRET).await;
    assert!(unknown["text"].as_str().unwrap().contains("unknown command"), "{unknown}");
    assert_eq!(app.snapshot().await, before);
    assert_eq!(app.queue_depth(&app.notify_queue).await.0, "0");
}

#[tokio::test]
async fn commands_run_as_the_mapped_principal_and_answer_through_the_response_url() {
    let (app, slack) = slack_app(true).await;
    let (dev, _, release) = path(&app).await;
    map(&app, "U0001", "alice@example.com", &["release-creator"]).await;
    let (status, ack) =
        post_slack(&app, "/slack/commands", &command(&slack, "U0001", "promote shop-1.0.0 to dev", 1), 0, SECRET).await;
    assert_eq!(status, 200);
    assert_eq!(ack["text"], "Working on `promote shop-1.0.0 to dev`…");
    let done = reply(&slack, "requested *shop-1.0.0* for *dev*").await;
    assert_eq!(done["response_type"], "in_channel");
    let q = "query($e: ID!) { promotions(environmentId: $e) { edges { node { id requestedBy } } } }";
    let promotions = app.ok(q, json!({ "e": dev })).await["promotions"]["edges"].clone();
    assert_eq!(promotions[0]["node"]["requestedBy"], "alice@example.com");
    let id = promotions[0]["node"]["id"].as_str().unwrap().to_owned();
    let evidence =
        app.ok("query($id: ID!) { evidence(promotionId: $id) { kind actor payload } }", json!({ "id": id })).await;
    let request = evidence["evidence"].as_array().unwrap().iter().find(|e| e["kind"] == "request").unwrap().clone();
    assert_eq!(request["actor"], "alice@example.com");
    assert_eq!(request["payload"]["via"], json!({ "slack": { "team": "T0001", "user": "U0001" } }));
    let _ = release;

    // status: what runs where.
    post_slack(&app, "/slack/commands", &command(&slack, "U0001", "status", 2), 0, SECRET).await;
    let status = reply(&slack, "*dev*: runs shop-1.0.0").await;
    assert_eq!(status["response_type"], "ephemeral");
    // A release-creator may not roll back, and says so.
    post_slack(&app, "/slack/commands", &command(&slack, "U0001", "rollback dev broken", 3), 0, SECRET).await;
    reply(&slack, "lacks promotion:approve").await;
    // An unmapped user is told at once that nothing will happen, and nothing is queued.
    let (status, refused) =
        post_slack(&app, "/slack/commands", &command(&slack, "U0404", "promote shop-1.0.0 to dev", 4), 0, SECRET).await;
    assert_eq!(status, 200);
    let said = refused["text"].as_str().unwrap();
    assert!(said.contains("(U0404 in T0001) is not mapped") && !said.contains("Working on"), "{said}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = slack.responses().into_iter().filter(|r| r.path.contains("/commands/T0001/4/")).count();
    assert_eq!(later, 0, "nothing was queued, so nothing answers later");
    assert!(slack.violations().is_empty(), "{:?}", slack.violations());
}

/// The one card in #deploys, once `ready` holds of it.
async fn card(
    slack: &FakeSlack,
    what: &str,
    ready: impl Fn(&gantry_slack_fake::Posted) -> bool,
) -> gantry_slack_fake::Posted {
    eventually(Duration::from_secs(30), what, || async {
        let messages = slack.messages();
        assert!(messages.len() <= 1, "the card is updated in place, never posted twice: {messages:#?}");
        messages.into_iter().find(|m| ready(m))
    })
    .await
}

fn has_buttons(card: &gantry_slack_fake::Posted) -> bool {
    card.blocks.as_array().unwrap().iter().any(|b| b["type"] == "actions")
}

#[tokio::test]
async fn approval_cards_take_votes_from_mapped_users_and_update_in_place() {
    let (app, slack) = slack_app(true).await;
    let (dev, staging, release) = path(&app).await;
    app.promote(&release, &dev).await;
    map(&app, "U0001", "alice@example.com", &["approver"]).await;
    map(&app, "U0002", "bob@example.com", &["approver"]).await;
    let promotion = app.request_promotion(&release, &staging).await["id"].as_str().unwrap().to_owned();

    let posted = card(&slack, "the approval card", |m| m.text.contains("0 of 2")).await;
    assert_eq!(posted.channel, "C0DEPLOYS");
    assert!(has_buttons(&posted), "Approve and Reject: {:#}", posted.blocks);
    let buttons = posted.blocks.as_array().unwrap().iter().find(|b| b["type"] == "actions").unwrap().clone();
    assert_eq!(buttons["elements"][0]["value"], promotion.as_str());

    // Alice approves; Slack resends the click (same action_ts), which counts once.
    assert_eq!(
        post_slack(&app, "/slack/interactions", &click(&slack, "U0001", true, &promotion, 1), 0, SECRET).await.0,
        200
    );
    assert_eq!(
        post_slack(&app, "/slack/interactions", &click(&slack, "U0001", true, &promotion, 1), 0, SECRET).await.0,
        200
    );
    let voted = card(&slack, "one vote on the card", |m| m.text.contains("1 of 2")).await;
    assert!(voted.updates >= 1 && has_buttons(&voted));
    assert!(voted.blocks.to_string().contains("alice@example.com"));
    reply(&slack, "You approved promotion").await;

    // Someone Slack knows but Gantry does not is refused, and the count stays.
    post_slack(&app, "/slack/interactions", &click(&slack, "U0666", true, &promotion, 2), 0, SECRET).await;
    let refused = reply(&slack, "(U0666 in T0001) is not mapped").await;
    assert_eq!(refused["response_type"], "ephemeral");
    let q = "query($id: ID!) { promotion(id: $id) { status approvals { principal } } }";
    assert_eq!(app.ok(q, json!({ "id": promotion })).await["promotion"]["approvals"].as_array().unwrap().len(), 1);

    // Bob's vote approves it; it deploys, and the card says so, without buttons.
    post_slack(&app, "/slack/interactions", &click(&slack, "U0002", true, &promotion, 3), 0, SECRET).await;
    let done = card(&slack, "the deployed card", |m| m.text.contains("deployed")).await;
    assert!(!has_buttons(&done), "{:#}", done.blocks);
    assert_eq!(slack.messages().len(), 1);
    let evidence = app
        .ok("query($id: ID!) { evidence(promotionId: $id) { kind actor payload } }", json!({ "id": promotion }))
        .await;
    let approvals: Vec<Value> =
        evidence["evidence"].as_array().unwrap().iter().filter(|e| e["kind"] == "approval").cloned().collect();
    assert_eq!(approvals.len(), 2, "the resent click counted once");
    assert_eq!(approvals[0]["actor"], "alice@example.com");
    assert_eq!(approvals[1]["payload"]["via"], json!({ "slack": { "team": "T0001", "user": "U0002" } }));
    assert!(slack.violations().is_empty(), "{:?}", slack.violations());
}

#[tokio::test]
async fn notifications_reach_signed_webhooks_with_retries_and_slack_channels() {
    let (app, slack) = slack_app(true).await;
    let (dev, _, release) = path(&app).await;
    let receiver = gantry_tests::receiver::WebhookReceiver::start().await;
    let create = "mutation($i: CreateNotificationSubscriptionInput!) { createNotificationSubscription(input: $i) {
        signingSecret subscription { id events webhookUrl slackChannel } } }";
    let hook = app
        .ok(
            create,
            json!({ "i": { "name": "ops-hook", "events": ["DEPLOYED", "FAILED"], "webhookUrl": receiver.url } }),
        )
        .await["createNotificationSubscription"]
        .clone();
    let secret = hook["signingSecret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    receiver.set_secret(secret);
    // Two refusals: the delivery's own quick retry fails too, so it is queued again, later.
    receiver.fail_next(2);
    let channel = app
        .ok(create, json!({ "i": { "name": "ops-channel", "events": ["DEPLOYED"], "environmentIds": [dev], "slackChannel": "#deploys" } }))
        .await;
    assert_eq!(channel["createNotificationSubscription"]["signingSecret"], Value::Null);

    let promotion = app.promote(&release, &dev).await["id"].as_str().unwrap().to_owned();
    let received = eventually(Duration::from_secs(45), "the event, refused twice, then again later", || async {
        let got = receiver.received();
        (got.len() >= 3).then_some(got)
    })
    .await;
    assert_eq!(received.len(), 3, "delivered once it went through: {received:#?}");
    assert!(received.iter().all(|r| r.body["type"] == "promotion.deployed"), "only what it subscribed to");
    assert!(received.iter().all(|r| r.verified), "every delivery is signed with the secret: {received:#?}");
    let first = &received[0];
    let again = received.iter().filter(|r| r.id == first.id).count();
    assert!(again >= 3, "the 503s were retried with the same webhook-id, so receivers drop duplicates");
    assert_eq!(first.body["data"]["promotionId"], promotion.as_str());
    assert_eq!(first.body["data"]["environment"], "dev");
    let notice = eventually(Duration::from_secs(20), "the channel notice", || async {
        slack.messages().into_iter().find(|m| m.text.contains("is deployed to *dev*"))
    })
    .await;
    assert_eq!(notice.channel, "C0DEPLOYS");
    let q = "{ notificationSubscriptions { name lastDelivery { delivered attempts event } } }";
    let subs = app.ok(q, json!({})).await["notificationSubscriptions"].clone();
    assert_eq!(subs[0]["name"], "ops-hook");
    assert!(subs[0]["lastDelivery"]["delivered"].as_bool().is_some());
}

#[tokio::test]
async fn bad_subscriptions_and_mappings_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let create = "mutation($i: CreateNotificationSubscriptionInput!) { createNotificationSubscription(input: $i) { signingSecret } }";
    let before = app.snapshot().await;
    for (input, says) in [
        (
            json!({ "name": "x", "events": ["DEPLOYED"], "webhookUrl": "https://a.example/h", "slackChannel": "#a" }),
            "one of them",
        ),
        (json!({ "name": "x", "events": ["DEPLOYED"] }), "one of them"),
        (json!({ "name": "x", "events": [], "slackChannel": "#a" }), "at least one event"),
        (json!({ "name": "x", "events": ["DEPLOYED"], "webhookUrl": "http://example.com/h" }), "https://"),
        // Judged by the parsed host: what follows `@` is the host, and user info is refused.
        (json!({ "name": "x", "events": ["DEPLOYED"], "webhookUrl": "http://127.0.0.1:1@10.0.0.1/x" }), "user info"),
        (
            json!({ "name": "x", "events": ["DEPLOYED"], "webhookUrl": "http://localhost:80@example.com/x" }),
            "user info",
        ),
        (json!({ "name": "x", "events": ["DEPLOYED"], "webhookUrl": "http://127.0.0.1.nip.io/x" }), "https://"),
        (json!({ "name": "x", "events": ["DEPLOYED"], "slackChannel": "#a b" }), "slack channel"),
        (
            json!({ "name": "x", "events": ["DEPLOYED"], "slackChannel": "#a", "environmentIds": ["nope"] }),
            "not a UUID",
        ),
    ] {
        let message = app.assert_rejected("BAD_USER_INPUT", create, json!({ "i": input })).await;
        assert!(message.contains(says), "{message}");
    }
    assert_eq!(app.snapshot().await, before, "nothing was written");
    let map = "mutation($i: MapSlackUserInput!) { mapSlackUser(input: $i) { principal } }";
    for (input, says) in [
        (json!({ "teamId": "T-1", "userId": "U1", "principal": "a", "roles": ["viewer"] }), "teamId"),
        (json!({ "teamId": "T1", "userId": "U1", "principal": "gantry:system", "roles": ["viewer"] }), "gantry:"),
        (json!({ "teamId": "T1", "userId": "U1", "principal": "a b", "roles": ["viewer"] }), "without spaces"),
        (json!({ "teamId": "T1", "userId": "U1", "principal": "a", "roles": [] }), "at least one role"),
        (json!({ "teamId": "T1", "userId": "U1", "principal": "a", "roles": ["root"] }), "unknown role"),
    ] {
        let message = app.assert_rejected("BAD_USER_INPUT", map, json!({ "i": input })).await;
        assert!(message.contains(says), "{message}");
    }
    // Only admins manage mappings.
    let approver = gantry_tests::app::token("carol", &[gantry_domain::access::Role::Approver]);
    let input = json!({ "i": { "teamId": "T1", "userId": "U1", "principal": "carol", "roles": ["admin"] } });
    let (_, denied) = app.gql_as(Some(&approver), map, input).await;
    assert_eq!(denied["errors"][0]["extensions"]["code"], "FORBIDDEN");
}

/// A subscriber to every event gets each transition of every promotion once, in the order it
/// happened, whichever path moved it: Slack, auto-promotion, GraphQL approval, rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_publishes_every_transition_in_order() {
    let (app, slack) = slack_app(true).await;
    let receiver = gantry_tests::receiver::WebhookReceiver::start().await;
    let every = [
        "REQUESTED",
        "APPROVAL_RECORDED",
        "APPROVED",
        "REJECTED",
        "CANCELLED",
        "DEPLOYING",
        "DEPLOYED",
        "FAILED",
        "ROLLED_BACK",
    ];
    let create = "mutation($i: CreateNotificationSubscriptionInput!) { createNotificationSubscription(input: $i) { signingSecret } }";
    app.ok(create, json!({ "i": { "name": "all", "events": every, "webhookUrl": receiver.url } })).await;
    let dev = app.create_environment("dev", 10).await;
    let staging = app.create_environment_with(json!({ "name": "staging", "order": 20, "autoPromote": true })).await;
    let prod = app.create_environment_with(json!({ "name": "prod", "order": 30, "requiredApprovals": 1 })).await;
    let web = app.create_component("web").await;
    for version in ["1.0.0", "1.1.0"] {
        app.add_version(&web, version, &digest(version)).await;
    }
    let first = app.ready_release("shop-1.0.0", json!([{ "componentId": web, "version": "1.0.0" }])).await;
    let second = app.ready_release("shop-1.1.0", json!([{ "componentId": web, "version": "1.1.0" }])).await;
    let latest = async |env: &str| {
        let q = "query($e: ID!) { promotions(environmentId: $e, first: 1) { edges { node { id status } } } }";
        app.ok(q, json!({ "e": env })).await["promotions"]["edges"][0]["node"].clone()
    };
    let deployed = async |env: &str| {
        eventually(Duration::from_secs(30), "a deployed promotion", || async {
            let node = latest(env).await;
            (node["status"] == "DEPLOYED").then(|| node["id"].as_str().unwrap().to_owned())
        })
        .await
    };

    // Slack requests dev; staging follows by auto-promotion.
    map(&app, "U0001", "alice@example.com", &["release-creator"]).await;
    post_slack(&app, "/slack/commands", &command(&slack, "U0001", "promote shop-1.0.0 to dev", 1), 0, SECRET).await;
    let by_slack = deployed(&dev).await;
    let automatic = deployed(&staging).await;
    // GraphQL requests prod, and an approver approves.
    let waiting = app.request_promotion(&first, &prod).await["id"].as_str().unwrap().to_owned();
    let bob = gantry_tests::app::token("bob", &[gantry_domain::access::Role::Approver]);
    let approve = "mutation($id: ID!) { approvePromotion(id: $id) { status } }";
    let (_, approved) = app.gql_as(Some(&bob), approve, json!({ "id": waiting })).await;
    assert!(approved["errors"].is_null(), "{approved}");
    app.settled(&waiting).await;
    // A second release in dev, rolled back.
    let replaced = app.promote(&second, &dev).await["id"].as_str().unwrap().to_owned();
    let rollback = "mutation($e: ID!) { rollbackEnvironment(environmentId: $e, reason: \"errors up\") { id status } }";
    let rolled = app.ok(rollback, json!({ "e": dev })).await["rollbackEnvironment"]["id"].as_str().unwrap().to_owned();

    let full = ["promotion.requested", "promotion.approved", "promotion.deploying", "promotion.deployed"];
    let expected: Vec<(&str, Vec<&str>)> = vec![
        (&by_slack, full.to_vec()),
        (&automatic, full.to_vec()),
        (&waiting, full.to_vec()),
        (&replaced, [&full[..], &["promotion.rolled_back"]].concat()),
        (&rolled, full.to_vec()),
    ];
    let total: usize = expected.iter().map(|(_, kinds)| kinds.len()).sum();
    // (Staging gets more automatic promotions meanwhile; only these five are followed.)
    let ours = || {
        let ids: Vec<&str> = expected.iter().map(|(id, _)| *id).collect();
        receiver
            .received()
            .into_iter()
            .filter(|r| ids.iter().any(|id| r.body["data"]["promotionId"] == *id))
            .collect::<Vec<_>>()
    };
    eventually(Duration::from_secs(30), "every event", || async { (ours().len() >= total).then_some(()) }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received: Vec<gantry_tests::receiver::Received> = ours();
    assert_eq!(received.len(), total, "no event twice: {received:#?}");
    assert_transitions(&received, &expected);
}

/// Each promotion got each of its kinds once, and their timestamps (when each was
/// published) follow the order of the transitions.
fn assert_transitions(received: &[gantry_tests::receiver::Received], expected: &[(&str, Vec<&str>)]) {
    for (promotion, kinds) in expected {
        let mut events: Vec<(String, String)> = received
            .iter()
            .filter(|r| r.body["data"]["promotionId"] == *promotion)
            .map(|r| (r.body["timestamp"].as_str().unwrap().to_owned(), r.body["type"].as_str().unwrap().to_owned()))
            .collect();
        let mut got: Vec<&str> = events.iter().map(|(_, kind)| kind.as_str()).collect();
        got.sort_by_key(|kind| kinds.iter().position(|k| k == kind));
        assert_eq!(&got, kinds, "promotion {promotion}");
        events.sort_by_key(|(_, kind)| kinds.iter().position(|k| k == kind));
        assert!(events.windows(2).all(|w| w[0].0 <= w[1].0), "published in order: {events:?}");
    }
}
