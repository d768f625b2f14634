use chrono::Utc;
use gantry_domain::access::Role;
use gantry_domain::model::{DeploymentStatus, ReleaseEnvironmentRecord};
use gantry_domain::ports::DeploymentRecords;
use gantry_domain::values::{EnvironmentId, ReleaseId};
use serde_json::{Value, json};

use crate::support::{TestApp, digest, token};

const REQUEST: &str =
    "mutation($r: ID!, $e: ID!) { requestPromotion(releaseId: $r, environmentId: $e, comment: \"ship it\") {
    id status requestedBy requiredApprovals gates { gate passed detail } } }";
const APPROVE: &str =
    "mutation($id: ID!) { approvePromotion(id: $id, comment: \"lgtm\") { status approvals { principal } } }";

/// dev (no approvals), staging (one), prod (two, and a successful build); a READY release.
async fn path(app: &TestApp) -> (String, String, String, String) {
    let dev = app.create_environment_with(json!({ "name": "dev", "order": 10 })).await;
    let staging = app.create_environment_with(json!({ "name": "staging", "order": 20, "requiredApprovals": 1 })).await;
    let prod = app
        .create_environment_with(
            json!({ "name": "prod", "order": 30, "requiredApprovals": 2, "requireBuildSuccess": true }),
        )
        .await;
    let web = app.create_component("web").await;
    app.add_version(&web, "1.0.0", &digest("web")).await;
    let release = app
        .ok(
            "mutation($c: ID!) { createRelease(input: { name: \"shop-1.0.0\", components: [{ componentId: $c, version: \"1.0.0\" }], sourceRef: { commitSha: \"abc1234def0123456789abcdef0123456789abcd\" } }) { id } }",
            json!({ "c": web }),
        )
        .await["createRelease"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(
        "mutation($id: ID!) { updateRelease(id: $id, input: { status: READY }) { status } }",
        json!({ "id": release }),
    )
    .await;
    (dev, staging, prod, release)
}

/// Records the release as deployed in `environment`, as deployments will.
async fn deployed(app: &TestApp, release: &str, environment: &str) {
    let record = ReleaseEnvironmentRecord {
        release_id: ReleaseId::parse(release).unwrap(),
        environment_id: EnvironmentId::parse(environment).unwrap(),
        status: DeploymentStatus::Deployed,
        deployed_at: Some(Utc::now()),
        updated_at: Utc::now(),
    };
    app.repo.record_release_deployed(&record, &[]).await.unwrap();
}

#[tokio::test]
async fn promotions_move_through_gates_and_approvals() {
    let app = TestApp::spawn().await;
    let (dev, staging, prod, release) = path(&app).await;

    // dev: the first environment, no approvals, no targets: deployed at once.
    let p = app.ok(REQUEST, json!({ "r": release, "e": dev })).await["requestPromotion"].clone();
    assert_eq!(p["status"], "DEPLOYED");
    assert_eq!(
        p["gates"],
        json!([{ "gate": "previous_environment", "passed": true, "detail": "the first environment of the path" }])
    );
    let state = app
        .ok(
            "query($id: ID!) { release(id: $id) { status state { environments { status } } } }",
            json!({ "id": release }),
        )
        .await;
    assert_eq!(state["release"]["status"], "DEPLOYED");
    assert_eq!(state["release"]["state"]["environments"][0]["status"], "DEPLOYED");

    // prod: not before the release runs in staging.
    let msg = app.assert_rejected("CONFLICT", REQUEST, json!({ "r": release, "e": prod })).await;
    assert!(msg.contains("previous_environment"), "{msg}");

    // staging: one active promotion at a time.
    let p = app.ok(REQUEST, json!({ "r": release, "e": staging })).await["requestPromotion"].clone();
    assert_eq!((p["status"].as_str(), p["requestedBy"].as_str()), (Some("PENDING_APPROVAL"), Some("test-admin")));
    app.assert_rejected("CONFLICT", REQUEST, json!({ "r": release, "e": staging })).await;
    app.ok("mutation($id: ID!) { cancelPromotion(id: $id) { status reason } }", json!({ "id": p["id"] })).await;
    let p = app.ok(REQUEST, json!({ "r": release, "e": staging })).await["requestPromotion"].clone();
    // The requester cannot approve, a viewer is not an approver, an approver can.
    let (_, own) = app.gql_as(Some(&app.token), APPROVE, json!({ "id": p["id"] })).await;
    assert_eq!(own["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let (_, viewer) = app.gql_as(Some(&token("viv", &[Role::Viewer])), APPROVE, json!({ "id": p["id"] })).await;
    assert_eq!(viewer["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let alice = token("alice", &[Role::Approver]);
    let (_, approved) = app.gql_as(Some(&alice), APPROVE, json!({ "id": p["id"] })).await;
    assert_eq!(
        approved["data"]["approvePromotion"],
        json!({ "status": "DEPLOYED", "approvals": [{ "principal": "alice" }] }),
        "approved, and deployed to no targets"
    );

    // prod: a successful build of the commit is required, then two distinct approvers.
    let msg = app.assert_rejected("CONFLICT", REQUEST, json!({ "r": release, "e": prod })).await;
    assert!(msg.contains("build_success"), "{msg}");
    let ci = token("ci", &[Role::ReleaseCreator]);
    let build = json!({ "buildId": "1", "status": "success", "commit": "abc1234def0123456789abcdef0123456789abcd" });
    let res = app
        .http
        .post(format!("{}/api/v1/ci-events/build-complete", app.url))
        .bearer_auth(&ci)
        .json(&build)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let p = app.ok(REQUEST, json!({ "r": release, "e": prod })).await["requestPromotion"].clone();
    assert_eq!(p["gates"].as_array().unwrap().iter().filter(|g| g["passed"] == true).count(), 2);
    let bob = token("bob", &[Role::Approver]);
    let (_, first) = app.gql_as(Some(&alice), APPROVE, json!({ "id": p["id"] })).await;
    assert_eq!(first["data"]["approvePromotion"]["status"], "PENDING_APPROVAL");
    let (_, again) = app.gql_as(Some(&alice), APPROVE, json!({ "id": p["id"] })).await;
    assert_eq!(again["errors"][0]["extensions"]["code"], "CONFLICT", "approvals count distinct principals");
    let (_, second) = app.gql_as(Some(&bob), APPROVE, json!({ "id": p["id"] })).await;
    assert_eq!(second["data"]["approvePromotion"]["status"], "DEPLOYED");

    let detail = app
        .ok("query($id: ID!) { promotion(id: $id) { status environment { name } release { name } approvals { principal comment } } }", json!({ "id": p["id"] }))
        .await;
    assert_eq!(detail["promotion"]["environment"]["name"], "prod");
    assert_eq!(
        detail["promotion"]["approvals"],
        json!([{ "principal": "alice", "comment": "lgtm" }, { "principal": "bob", "comment": "lgtm" }])
    );
    let listed = app
        .ok("query($e: ID!) { promotions(environmentId: $e, status: CANCELLED) { edges { node { id } } pageInfo { hasNextPage } } }", json!({ "e": staging }))
        .await;
    assert_eq!(listed["promotions"]["edges"].as_array().unwrap().len(), 1);
    let all = app
        .ok("query($e: ID!) { promotions(environmentId: $e) { edges { node { status } } } }", json!({ "e": staging }))
        .await;
    let statuses: Vec<_> =
        all["promotions"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["DEPLOYED", "CANCELLED"], "newest first");
}

#[tokio::test]
async fn rejections_and_bad_requests() {
    let app = TestApp::spawn().await;
    let (dev, staging, _, release) = path(&app).await;
    deployed(&app, &release, &dev).await;
    let p = app.ok(REQUEST, json!({ "r": release, "e": staging })).await["requestPromotion"].clone();
    let alice = token("alice", &[Role::Approver]);
    let reject = "mutation($id: ID!, $why: String!) { rejectPromotion(id: $id, reason: $why) { status reason } }";
    let (_, blank) = app.gql_as(Some(&alice), reject, json!({ "id": p["id"], "why": " " })).await;
    assert_eq!(blank["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let (_, rejected) = app.gql_as(Some(&alice), reject, json!({ "id": p["id"], "why": "not this week" })).await;
    assert_eq!(rejected["data"]["rejectPromotion"], json!({ "status": "REJECTED", "reason": "alice: not this week" }));
    let (_, late) = app.gql_as(Some(&alice), APPROVE, json!({ "id": p["id"] })).await;
    assert_eq!(late["errors"][0]["extensions"]["code"], "CONFLICT");
    // A rejection frees the environment.
    app.ok(REQUEST, json!({ "r": release, "e": staging })).await;

    let unknown = uuid::Uuid::new_v4().to_string();
    app.assert_rejected("NOT_FOUND", REQUEST, json!({ "r": unknown, "e": dev })).await;
    app.assert_rejected("NOT_FOUND", REQUEST, json!({ "r": release, "e": unknown })).await;
    app.assert_rejected("BAD_USER_INPUT", REQUEST, json!({ "r": "nope", "e": dev })).await;
    app.assert_rejected("NOT_FOUND", APPROVE, json!({ "id": unknown })).await;
    app.ok("mutation($id: ID!) { deprecateRelease(id: $id) { status } }", json!({ "id": release })).await;
    let msg = app.assert_rejected("CONFLICT", REQUEST, json!({ "r": release, "e": dev })).await;
    assert!(msg.contains("deprecated"), "{msg}");
}

#[tokio::test]
async fn concurrent_requests_for_one_environment_admit_one() {
    let app = TestApp::spawn().await;
    let (dev, staging, _, release) = path(&app).await;
    deployed(&app, &release, &dev).await;
    let vars = json!({ "r": release, "e": staging });
    let attempts = futures::future::join_all((0..20).map(|_| app.gql(REQUEST, vars.clone()))).await;
    let won = attempts.iter().filter(|r| r.get("errors").is_none()).count();
    let conflicts = attempts.iter().filter(|r| r["errors"][0]["extensions"]["code"] == "CONFLICT").count();
    assert_eq!((won, conflicts), (1, 19), "{attempts:#?}");
    let why = |r: &Value| r["errors"][0]["message"].as_str().map(str::to_owned);
    let refused: Vec<Option<String>> = attempts.iter().filter(|r| r.get("errors").is_some()).map(why).collect();
    assert!(
        refused.iter().all(|m| m.as_deref() == Some("another promotion is active in this environment")),
        "each loser is told why: {refused:?}"
    );
    let listed = app
        .ok("query($e: ID!) { promotions(environmentId: $e) { edges { node { id } } } }", json!({ "e": staging }))
        .await;
    assert_eq!(listed["promotions"]["edges"].as_array().unwrap().len(), 1, "the losers wrote nothing");
    let report = app.ok(VERIFY, json!({ "e": staging })).await["verifyEvidenceChain"].clone();
    assert_eq!(
        report,
        json!({ "valid": true, "checked": 2, "firstBrokenRecordId": null, "truncated": false }),
        "only the winner's evidence"
    );
}

/// An environment's evidence items as stored, oldest first.
async fn evidence_items(
    app: &TestApp,
    environment: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    app.items_under(&format!("EVIDENCE#{environment}"), "SEQ#").await
}

const VERIFY: &str =
    "query($e: ID!) { verifyEvidenceChain(environmentId: $e) { valid checked firstBrokenRecordId truncated } }";

#[tokio::test]
async fn decisions_leave_a_tamper_evident_chain() {
    let app = TestApp::spawn().await;
    let (dev, staging, _, release) = path(&app).await;
    deployed(&app, &release, &dev).await;
    let first = app.ok(REQUEST, json!({ "r": release, "e": staging })).await["requestPromotion"].clone();
    app.ok("mutation($id: ID!) { cancelPromotion(id: $id) { status } }", json!({ "id": first["id"] })).await;
    let p = app.ok(REQUEST, json!({ "r": release, "e": staging })).await["requestPromotion"].clone();
    let alice = token("alice", &[Role::Approver]);
    app.gql_as(Some(&alice), APPROVE, json!({ "id": p["id"] })).await;

    let evidence = app
        .ok(
            "query($id: ID!) { evidence(promotionId: $id) { seq kind actor hash previousHash signature keyId payload } }",
            json!({ "id": p["id"] }),
        )
        .await["evidence"]
        .clone();
    let kinds: Vec<_> = evidence.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["request", "gate_evaluation", "approval", "deployment_started", "deployment_result"]);
    assert_eq!(evidence[2]["actor"], "alice");
    assert_eq!(evidence[1]["previousHash"], evidence[0]["hash"]);
    assert_eq!(evidence[2]["keyId"].as_str().unwrap().len(), 43, "signed by the evidence key (a JWK thumbprint)");

    let report = app.ok(VERIFY, json!({ "e": staging })).await["verifyEvidenceChain"].clone();
    assert_eq!(
        report,
        json!({ "valid": true, "checked": 8, "firstBrokenRecordId": null, "truncated": false }),
        "request+gates, cancel, request+gates, approval, started, result"
    );
    let page = app
        .ok("query($e: ID!) { environmentEvidence(environmentId: $e, first: 2) { edges { node { seq kind } } pageInfo { hasNextPage endCursor } } }", json!({ "e": staging }))
        .await["environmentEvidence"]
        .clone();
    assert_eq!(
        page["edges"],
        json!([{ "node": { "seq": 8, "kind": "deployment_result" } }, { "node": { "seq": 7, "kind": "deployment_started" } }])
    );
    assert_eq!(page["pageInfo"], json!({ "hasNextPage": true, "endCursor": "7" }));

    // Tamper with one record directly in the table: the chain breaks there.
    let records = evidence_items(&app, &staging).await;
    let third = &records[2];
    app.dynamodb
        .update_item()
        .table_name(&app.table)
        .key("PK", third["PK"].clone())
        .key("SK", third["SK"].clone())
        .update_expression("SET actor = :a")
        .expression_attribute_values(":a", aws_sdk_dynamodb::types::AttributeValue::S("mallory".into()))
        .send()
        .await
        .unwrap();
    let report = app.ok(VERIFY, json!({ "e": staging })).await["verifyEvidenceChain"].clone();
    assert_eq!(report["valid"], false);
    assert_eq!(report["checked"], 3);
    assert_eq!(report["firstBrokenRecordId"], third["id"].as_s().unwrap().as_str());
    // Another environment's chain is untouched (dev's is empty: its deployment was recorded directly).
    assert_eq!(
        app.ok(VERIFY, json!({ "e": dev })).await["verifyEvidenceChain"],
        json!({ "valid": true, "checked": 0, "firstBrokenRecordId": null, "truncated": false })
    );
}

#[tokio::test]
async fn deleting_the_newest_evidence_is_detected() {
    let app = TestApp::spawn().await;
    let (dev, staging, _, release) = path(&app).await;
    deployed(&app, &release, &dev).await;
    let p = app.ok(REQUEST, json!({ "r": release, "e": staging })).await["requestPromotion"].clone();
    app.ok("mutation($id: ID!) { cancelPromotion(id: $id) { status } }", json!({ "id": p["id"] })).await;
    let report = app.ok(VERIFY, json!({ "e": staging })).await["verifyEvidenceChain"].clone();
    assert_eq!(report, json!({ "valid": true, "checked": 3, "firstBrokenRecordId": null, "truncated": false }));

    let records = evidence_items(&app, &staging).await;
    let newest = records.last().unwrap();
    assert_eq!(newest["kind"].as_s().unwrap(), "cancellation");
    app.dynamodb
        .delete_item()
        .table_name(&app.table)
        .key("PK", newest["PK"].clone())
        .key("SK", newest["SK"].clone())
        .send()
        .await
        .unwrap();
    let report = app.ok(VERIFY, json!({ "e": staging })).await["verifyEvidenceChain"].clone();
    assert_eq!(report, json!({ "valid": false, "checked": 2, "firstBrokenRecordId": null, "truncated": true }));
}

/// The numbers a promotion's item lists its records by.
async fn listed_seqs(app: &TestApp, promotion: &str) -> Option<Vec<String>> {
    let item = app.items_under(&format!("PROMOTION#{promotion}"), "PROMOTION").await.remove(0);
    let listed = item.get(gantry_store::keys::EVIDENCE_SEQS)?.as_l().unwrap().clone();
    Some(listed.iter().map(|n| n.as_n().unwrap().clone()).collect())
}

#[tokio::test]
async fn a_promotion_lists_its_records_and_one_stored_before_it_did_still_shows_them_all() {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let app = TestApp::spawn().await;
    let (dev, staging, _, release) = path(&app).await;
    deployed(&app, &release, &dev).await;
    let p = app.ok(REQUEST, json!({ "r": release, "e": staging })).await["requestPromotion"].clone();
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(listed_seqs(&app, &id).await, Some(vec!["1".to_owned(), "2".to_owned()]));
    let records = evidence_items(&app, &staging).await;
    assert!(records.iter().all(|r| !r.contains_key("GSI1PK")), "listed on the promotion, not in an index");

    // As the promotion and its records were stored before promotions listed them: no list,
    // each record listed under it in GSI1.
    let key = gantry_store::keys::promotion_key(gantry_domain::ids::PromotionId::parse(&id).unwrap()).primary();
    let unlist = app.dynamodb.update_item().table_name(&app.table).set_key(Some(key));
    unlist.update_expression("REMOVE evidenceSeqs").send().await.unwrap();
    for record in &records {
        let update = app.dynamodb.update_item().table_name(&app.table);
        let update = update.key("PK", record["PK"].clone()).key("SK", record["SK"].clone());
        let update = update.update_expression("SET GSI1PK = :pk, GSI1SK = :sk");
        let update = update.expression_attribute_values(":pk", S(format!("EVIDENCE_OF#{id}")));
        update.expression_attribute_values(":sk", record["SK"].clone()).send().await.unwrap();
    }
    let alice = token("alice", &[Role::Approver]);
    app.gql_as(Some(&alice), APPROVE, json!({ "id": id })).await;
    let q = "query($id: ID!) { evidence(promotionId: $id) { seq kind } }";
    let evidence = app.ok(q, json!({ "id": id })).await["evidence"].clone();
    let kinds: Vec<_> = evidence.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["request", "gate_evaluation", "approval", "deployment_started", "deployment_result"]);
    let seqs: Vec<_> = evidence.as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5], "in chain order, each once");
    let since: Vec<String> = (3..=5).map(|n: u8| n.to_string()).collect();
    assert_eq!(listed_seqs(&app, &id).await, Some(since), "the records sealed since are listed");
    let unknown = uuid::Uuid::new_v4().to_string();
    let message = app.assert_rejected("NOT_FOUND", q, json!({ "id": unknown })).await;
    assert!(message.contains("promotion"), "{message}");
}
