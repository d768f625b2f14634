//! Freeze windows: a frozen environment refuses promotions (and seals the refusal) unless an
//! approver overrides the freeze with a reason.

use chrono::{Datelike, Duration, Utc};
use gantry_domain::access::Role;
use serde_json::{Value, json};

use crate::support::{TestApp, digest, token};

const SET: &str = "mutation($e: ID!, $w: [FreezeWindowInput!]!) { setFreezeWindows(environmentId: $e, windows: $w) {
    freezeWindows { name days start durationMinutes timeZone } freeze { window until } } }";
const REQUEST: &str = "mutation($r: ID!, $e: ID!, $o: String) {
    requestPromotion(releaseId: $r, environmentId: $e, overrideFreeze: $o) { id status } }";
const APPROVE: &str = "mutation($id: ID!, $o: String) { approvePromotion(id: $id, overrideFreeze: $o) { status } }";

/// A window in force now: it started a minute ago, today, in UTC, and lasts an hour.
fn now_window(name: &str) -> Value {
    let start = Utc::now() - Duration::minutes(1);
    let day = start.weekday().to_string().to_uppercase();
    let day = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
        .into_iter()
        .find(|d| d.starts_with(&day[..3]))
        .unwrap();
    json!({ "name": name, "days": [day], "start": start.format("%H:%M").to_string(), "durationMinutes": 60, "timeZone": "UTC" })
}

/// An environment frozen now (needing `approvals`), and a READY release; (environment, release).
async fn frozen(app: &TestApp, approvals: i64) -> (String, String) {
    let env = app.create_environment_with(json!({ "name": "prod", "order": 10, "requiredApprovals": approvals })).await;
    let set = app.ok(SET, json!({ "e": env, "w": [now_window("release-freeze")] })).await["setFreezeWindows"].clone();
    assert_eq!(set["freeze"]["window"], "release-freeze", "{set:#}");
    let api = app.create_component("api").await;
    app.add_version(&api, "1.0.0", &digest("api")).await;
    let release = app.ready_release("shop-1", json!([{ "componentId": api, "version": "1.0.0" }])).await;
    (env, release)
}

async fn kinds(app: &TestApp, environment: &str) -> Vec<String> {
    let q = "query($e: ID!) { environmentEvidence(environmentId: $e) { edges { node { kind promotionId payload } } } }";
    let edges = app.ok(q, json!({ "e": environment })).await["environmentEvidence"]["edges"].clone();
    edges.as_array().unwrap().iter().map(|e| e["node"]["kind"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_frozen_environment_refuses_promotions_and_seals_the_refusal() {
    let app = TestApp::spawn().await;
    let (env, release) = frozen(&app, 0).await;
    // Refused, with the refusal sealed (so not `assert_rejected`, which wants nothing written).
    let (code, message) = app.error(REQUEST, json!({ "r": release, "e": env })).await;
    assert_eq!(code, "CONFLICT");
    assert!(message.contains("prod is frozen (release-freeze) until"), "{message}");
    assert!(message.contains("an approver may override"), "{message}");
    assert_eq!(kinds(&app, &env).await, ["freeze_refused"], "the refusal is evidence, and nothing else is written");
    let q = "query($e: ID!) { promotions(environmentId: $e) { edges { node { id } } } }";
    assert_eq!(app.ok(q, json!({ "e": env })).await["promotions"]["edges"], json!([]));
    let verified =
        app.ok("query($e: ID!) { verifyEvidenceChain(environmentId: $e) { valid } }", json!({ "e": env })).await;
    assert_eq!(verified["verifyEvidenceChain"]["valid"], true);
}

#[tokio::test]
async fn an_approver_overrides_a_freeze_with_a_reason() {
    let app = TestApp::spawn().await;
    let (env, release) = frozen(&app, 0).await;
    let creator = token("ci", &[Role::ReleaseCreator]);
    let vars = json!({ "r": release, "e": env, "o": "hotfix for INC-42" });
    let (_, refused) = app.gql_as(Some(&creator), REQUEST, vars.clone()).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN", "only an approver overrides: {refused}");
    app.assert_rejected("BAD_USER_INPUT", REQUEST, json!({ "r": release, "e": env, "o": "  " })).await;
    let promoted = app.ok(REQUEST, vars).await["requestPromotion"].clone();
    assert_eq!(promoted["status"], "DEPLOYED");
    let q = "query($p: ID!) { evidence(promotionId: $p) { kind actor payload } }";
    let records = app.ok(q, json!({ "p": promoted["id"] })).await["evidence"].clone();
    let overridden = records.as_array().unwrap().iter().find(|r| r["kind"] == "freeze_override").unwrap().clone();
    assert_eq!(
        (overridden["actor"].as_str(), overridden["payload"]["reason"].as_str()),
        (Some("test-admin"), Some("hotfix for INC-42"))
    );
    assert_eq!(overridden["payload"]["window"], "release-freeze");
}

#[tokio::test]
async fn the_last_approval_is_held_by_a_freeze() {
    let app = TestApp::spawn().await;
    let (env, release) = frozen(&app, 1).await;
    // An override at the request of one that needs approval is refused, not dropped.
    let before = app.snapshot().await;
    let creator = token("carl", &[Role::ReleaseCreator]);
    let vars = json!({ "r": release, "e": env, "o": "hotfix" });
    let (_, refused) = app.gql_as(Some(&creator), REQUEST, vars.clone()).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN", "{refused}");
    let message = app.assert_rejected("BAD_USER_INPUT", REQUEST, vars).await;
    assert!(message.contains("override it there"), "{message}");
    assert_eq!(app.snapshot().await, before, "nothing written");
    let requested = app.ok(REQUEST, json!({ "r": release, "e": env })).await["requestPromotion"].clone();
    assert_eq!(requested["status"], "PENDING_APPROVAL", "a request that needs approval is taken");
    let alice = token("alice", &[Role::Approver]);
    let (_, held) = app.gql_as(Some(&alice), APPROVE, json!({ "id": requested["id"] })).await;
    assert_eq!(held["errors"][0]["extensions"]["code"], "CONFLICT", "{held}");
    assert_eq!(app.promotion(requested["id"].as_str().unwrap()).await["status"], "PENDING_APPROVAL");
    let (_, approved) =
        app.gql_as(Some(&alice), APPROVE, json!({ "id": requested["id"], "o": "customer outage" })).await;
    assert_eq!(approved["data"]["approvePromotion"]["status"], "DEPLOYED", "{approved}");
    let kinds = kinds(&app, &env).await;
    assert!(kinds.contains(&"freeze_refused".to_owned()) && kinds.contains(&"freeze_override".to_owned()), "{kinds:?}");
    // The refusal was sealed without a write of the promotion: it is listed under it all the same.
    let of_promotion = app.evidence_kinds(requested["id"].as_str().unwrap()).await;
    assert_eq!(
        of_promotion,
        [
            "request",
            "gate_evaluation",
            "freeze_refused",
            "approval",
            "freeze_override",
            "deployment_started",
            "deployment_result"
        ]
    );
}

#[tokio::test]
async fn windows_are_checked_and_a_later_one_does_not_freeze() {
    let app = TestApp::spawn().await;
    let env = app.create_environment("prod", 10).await;
    let before = app.snapshot().await;
    let bad = |change: Value| {
        let mut w = now_window("w");
        for (k, v) in change.as_object().unwrap() {
            w[k] = v.clone();
        }
        w
    };
    for (window, why) in [
        (bad(json!({ "timeZone": "Mars/Olympus" })), "IANA"),
        (bad(json!({ "start": "7pm" })), "HH:MM"),
        (bad(json!({ "durationMinutes": 0 })), "durationMinutes"),
        (bad(json!({ "days": [] })), "at least one day"),
    ] {
        let message = app.assert_rejected("BAD_USER_INPUT", SET, json!({ "e": env, "w": [window] })).await;
        assert!(message.contains(why), "{why}: {message}");
    }
    let twice = json!([now_window("w"), now_window("w")]);
    app.assert_rejected("BAD_USER_INPUT", SET, json!({ "e": env, "w": twice })).await;
    assert_eq!(app.snapshot().await, before, "a refused window writes nothing");

    let mut later = now_window("later");
    later["start"] = json!((Utc::now() + Duration::hours(2)).format("%H:%M").to_string());
    later["durationMinutes"] = json!(30);
    let set = app.ok(SET, json!({ "e": env, "w": [later] })).await["setFreezeWindows"].clone();
    assert_eq!((set["freeze"].clone(), set["freezeWindows"][0]["timeZone"].as_str()), (Value::Null, Some("UTC")));
}
