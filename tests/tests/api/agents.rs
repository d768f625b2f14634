//! Refusals around pull agents, without agent processes: enrollment tokens that are not
//! valid, public keys that are not keys, unsigned requests, targets that name no enrolled
//! agent, and a control plane without a job-signing key. Nothing is written when refused.

use gantry_domain::access::Role;
use serde_json::{Value, json};

use crate::support::{TestApp, token};

const ENROLL: &str =
    "mutation($n: String!, $e: Int) { createAgentEnrollment(name: $n, expiresIn: $e) { token expiresAt } }";

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let res = app.http.post(format!("{}{path}", app.url)).json(&body).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn enrollment_refuses_what_is_not_valid() {
    let app = TestApp::spawn().await;
    let viewer = token("vera", &[Role::Viewer]);
    let (_, denied) = app.gql_as(Some(&viewer), ENROLL, json!({ "n": "edge", "e": 3600 })).await;
    assert_eq!(denied["errors"][0]["extensions"]["code"], "FORBIDDEN", "{denied}");
    for (name, expires, why) in [("edge", 10, "expiresIn must be 60 to 604800"), ("", 3600, "name")] {
        let message = app.assert_rejected("BAD_USER_INPUT", ENROLL, json!({ "n": name, "e": expires })).await;
        assert!(message.contains(why), "{message}");
    }
    let created = app.ok(ENROLL, json!({ "n": "edge", "e": 3600 })).await["createAgentEnrollment"].clone();
    let token = created["token"].as_str().unwrap();
    assert!(token.starts_with("gae_"));

    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    let (status, body) = post(&app, "/agent/v1/enroll", json!({ "token": token, "publicKey": "c2hvcnQ" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("BAD_USER_INPUT")), "{body}");
    let (status, _) = post(&app, "/agent/v1/enroll", json!({ "token": "gae_forged", "publicKey": key })).await;
    assert_eq!(status, 401);
    let (status, _) = post(&app, "/agent/v1/enroll", json!({ "token": token, "publicKey": key, "extra": 1 })).await;
    assert_eq!(status, 400, "unknown fields are refused");
    let agents = app.ok("query { agents { id } }", json!({})).await;
    assert_eq!(agents["agents"], json!([]), "nothing was enrolled");

    // An expired token is refused, and so is one used already.
    let expired = gantry_domain::agents::Enrollment {
        token_hash: gantry_domain::agents::token_hash("gae_expired"),
        name: gantry_domain::values::Name::parse("old").unwrap(),
        labels: Default::default(),
        valid_until: chrono::Utc::now() - chrono::Duration::minutes(1),
        created_at: chrono::Utc::now() - chrono::Duration::hours(1),
        created_by: "test".into(),
    };
    gantry_domain::agents::AgentRepository::put_enrollment(&app.repo, &expired).await.unwrap();
    let (status, body) = post(&app, "/agent/v1/enroll", json!({ "token": "gae_expired", "publicKey": key })).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown, used or expired"), "{body}");
    let (status, _) = post(&app, "/agent/v1/enroll", json!({ "token": token, "publicKey": key })).await;
    assert_eq!(status, 201);
    let (status, _) = post(&app, "/agent/v1/enroll", json!({ "token": token, "publicKey": key })).await;
    assert_eq!(status, 401, "used");
}

#[tokio::test]
async fn agent_requests_must_be_signed_and_targets_must_name_an_enrolled_agent() {
    let app = TestApp::spawn().await;
    for path in ["/agent/v1/heartbeat", "/agent/v1/jobs/claim"] {
        let (status, body) = post(&app, path, json!({})).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("not signed by an enrolled agent"), "{body}");
    }
    let env = app.create_environment("edge", 10).await;
    let web = app.create_component("web").await;
    let add =
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
    let target = |docker: Value| json!({ "name": "h", "type": "DOCKER", "docker": docker });
    let unknown = uuid::Uuid::new_v4().to_string();
    let message = app
        .assert_rejected(
            "NOT_FOUND",
            add,
            json!({ "e": env, "t": target(json!({ "agentId": unknown, "containerName": "web", "componentId": web })) }),
        )
        .await;
    assert!(message.contains("agent"), "{message}");
    let both = json!({ "agentId": unknown, "endpoint": "unix:///run/docker.sock", "containerName": "web", "componentId": web });
    let message = app.assert_rejected("BAD_USER_INPUT", add, json!({ "e": env, "t": target(both) })).await;
    assert!(message.contains("names no endpoint or tls"), "{message}");
    let neither = json!({ "containerName": "web", "componentId": web });
    let message = app.assert_rejected("BAD_USER_INPUT", add, json!({ "e": env, "t": target(neither) })).await;
    assert!(message.contains("docker endpoint"), "{message}");
    let targets = app.ok("query($e: ID!) { environment(id: $e) { targets { id } } }", json!({ "e": env })).await;
    assert_eq!(targets["environment"]["targets"], json!([]));
}

#[tokio::test]
async fn without_a_job_signing_key_agents_cannot_enroll_and_say_why() {
    let app = TestApp::spawn_with(&[("GANTRY_JOB_SIGNING_KEY", "")]).await;
    let message = app.assert_rejected("BAD_USER_INPUT", ENROLL, json!({ "n": "edge", "e": 3600 })).await;
    assert!(message.contains("GANTRY_JOB_SIGNING_KEY"), "{message}");
}

/// A promotion to an environment with more targets than one DynamoDB transaction holds
/// begins whole: every deployment is written.
#[tokio::test]
async fn a_promotion_to_more_targets_than_a_transaction_holds_begins() {
    let app = TestApp::spawn().await;
    let enrollment = app.ok(ENROLL, json!({ "n": "edge", "e": 3600 })).await["createAgentEnrollment"]["token"].clone();
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    let (status, enrolled) = post(&app, "/agent/v1/enroll", json!({ "token": enrollment, "publicKey": key })).await;
    assert_eq!(status, 201, "{enrolled}");
    let env = app.create_environment("wide", 10).await;
    let web = app.create_component("web").await;
    app.add_version(&web, "1.0.0", &crate::support::digest("web-1")).await;
    let add =
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
    for i in 0..120 {
        let target = json!({ "name": format!("host-{i}"), "type": "DOCKER", "docker": {
            "agentId": enrolled["agentId"], "containerName": format!("web-{i}"), "componentId": web } });
        app.ok(add, json!({ "e": env, "t": target })).await;
    }
    let release = app.ready_release("wide-1", json!([{ "componentId": web, "version": "1.0.0" }])).await;
    let requested = app.request_promotion(&release, &env).await;
    assert_eq!(requested["status"], "DEPLOYING", "{requested}");
    let promotion = app.promotion(requested["id"].as_str().unwrap()).await;
    assert_eq!(promotion["deployments"].as_array().unwrap().len(), 120, "{promotion:#}");
    // Many deployments keep a count of the open ones, so only the last to end settles.
    let id = gantry_domain::ids::PromotionId::parse(requested["id"].as_str().unwrap()).unwrap();
    let key = gantry_store::keys::open_deployments(id).primary();
    let open = app.dynamodb.get_item().table_name(&app.table).set_key(Some(key)).consistent_read(true).send().await;
    let open = open.unwrap().item.expect("a count of open deployments");
    assert_eq!(open["open"].as_n().unwrap(), "120");
}

/// An agent enrolled with a key of the test's own: the key and the agent's id.
async fn enrolled(app: &TestApp) -> (gantry_signing::SigningKey, String) {
    let created = app.ok(ENROLL, json!({ "n": "edge", "e": 3600 })).await;
    let token = created["createAgentEnrollment"]["token"].as_str().unwrap().to_owned();
    let (key, _) = gantry_signing::SigningKey::generate();
    let (status, body) =
        post(app, "/agent/v1/enroll", json!({ "token": token, "publicKey": key.public().encode() })).await;
    assert_eq!(status, 201, "{body}");
    (key, body["agentId"].as_str().unwrap().to_owned())
}

/// A pending job for `agent` (its payload is not a real job's: only its state is used), in a
/// promotion of its own.
fn pending_job(agent: gantry_domain::agents::AgentId) -> gantry_domain::agents::jobs::AgentJob {
    let now = chrono::Utc::now();
    gantry_domain::agents::jobs::AgentJob {
        agent_id: agent,
        promotion_id: gantry_domain::ids::PromotionId::new(),
        target_id: gantry_domain::ids::TargetId::new(),
        attempt: 1,
        payload: "{}".into(),
        signature: "c2ln".into(),
        key_id: "k".into(),
        sha256: format!("sha256:{}", "0".repeat(64)),
        state: gantry_domain::agents::jobs::AgentJobState::Pending,
        deadline: now + chrono::Duration::minutes(10),
        created_at: now,
        claimed_at: None,
        progress: Vec::new(),
        message: None,
    }
}

/// Revokes the agent straight in the table, as another API instance would: this process
/// still holds its key.
async fn revoked_in_the_table(app: &TestApp, id: gantry_domain::agents::AgentId) {
    app.dynamodb
        .update_item()
        .table_name(&app.table)
        .set_key(Some(gantry_store::keys::agent(id).primary()))
        .update_expression("SET revokedAt = :at")
        .expression_attribute_values(":at", aws_sdk_dynamodb::types::AttributeValue::S(chrono::Utc::now().to_rfc3339()))
        .send()
        .await
        .unwrap();
}

/// A POST signed as the agent, with `nonce`: its status and body.
async fn signed(
    app: &TestApp,
    (key, id): &(gantry_signing::SigningKey, String),
    path: &str,
    body: Value,
    nonce: &str,
) -> (u16, Value) {
    let res = gantry_tests::signed::post(app, (key, id), (path, &body), 0, nonce).await;
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

/// A signed request is admitted once per nonce; a claimed job shows as the agent's current
/// job and keeps its first fifty progress lines (the first says it was claimed); another
/// agent's job is not there; an agent revoked by another API instance (straight in the
/// table, so this process still holds its key) is refused at its next request.
#[tokio::test]
async fn signed_requests_claims_and_progress_hold_their_rules() {
    use gantry_domain::agents::jobs::{AgentJobRepository, CLAIMED, MAX_PROGRESS};
    let app = TestApp::spawn().await;
    let agent = enrolled(&app).await;
    let facts = json!({ "version": "1", "os": "linux", "arch": "x86_64" });
    assert_eq!(signed(&app, &agent, "/agent/v1/heartbeat", facts.clone(), "n-1").await.0, 204);
    let (status, body) = signed(&app, &agent, "/agent/v1/heartbeat", facts.clone(), "n-1").await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("replayed"), "{body}");

    let id = gantry_domain::agents::AgentId::parse(&agent.1).unwrap();
    let job = pending_job(id);
    assert_eq!(app.repo.put_job(&job, None).await.unwrap(), gantry_domain::agents::jobs::JobWrite::Written);
    let (status, claimed) = signed(&app, &agent, "/agent/v1/jobs/claim", json!({ "waitSeconds": 0 }), "n-2").await;
    assert_eq!((status, claimed["jobs"].as_array().map(Vec::len)), (200, Some(1)), "{claimed}");
    let shown = app.ok("query($id: ID!) { agent(id: $id) { currentJob } }", json!({ "id": agent.1 })).await;
    assert_eq!(shown["agent"]["currentJob"], job.label());

    let path = format!("/agent/v1/jobs/{}/{}/progress", job.promotion_id, job.target_id);
    for n in 0..MAX_PROGRESS + 5 {
        let (status, body) =
            signed(&app, &agent, &path, json!({ "message": format!("line {n}") }), &format!("p-{n}")).await;
        assert_eq!(status, 204, "a line past the limit is dropped, not refused: {body}");
    }
    let stored = app.repo.get_job(id, job.promotion_id, job.target_id).await.unwrap().unwrap();
    assert_eq!(stored.progress.len(), MAX_PROGRESS);
    assert_eq!((stored.progress[0].as_str(), stored.progress[1].as_str()), (CLAIMED, "line 0"));
    let other = format!("/agent/v1/jobs/{}/{}/progress", gantry_domain::ids::PromotionId::new(), job.target_id);
    assert_eq!(signed(&app, &agent, &other, json!({ "message": "x" }), "n-3").await.0, 404);

    doorbell_answers_a_waiting_claim_at_once(&app, &job).await;
    without_its_doorbell_a_claim_reads_every_two_seconds(&app, &job).await;

    revoked_in_the_table(&app, id).await;
    let (status, body) = signed(&app, &agent, "/agent/v1/heartbeat", facts, "n-4").await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("revoked"), "{body}");
}

/// Another agent's claim waits on its doorbell: when a job for it is written and the
/// doorbell rings (as the deployer does), the claim is answered at once rather than at the
/// end of its wait. Revoking the agent removes its doorbell queue.
async fn doorbell_answers_a_waiting_claim_at_once(app: &TestApp, template: &gantry_domain::agents::jobs::AgentJob) {
    use gantry_domain::agents::jobs::{AgentJob, AgentJobRepository};
    let agent = enrolled(app).await;
    let id = gantry_domain::agents::AgentId::parse(&agent.1).unwrap();
    let job = AgentJob { agent_id: id, promotion_id: gantry_domain::ids::PromotionId::new(), ..template.clone() };
    let claim = signed(app, &agent, "/agent/v1/jobs/claim", json!({ "waitSeconds": 15 }), "w-1");
    let ring = async {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        app.repo.put_job(&job, None).await.unwrap();
        app.state.agent_jobs.doorbell.ring(id).await.unwrap();
        std::time::Instant::now()
    };
    let ((status, claimed), rang) = tokio::join!(claim, ring);
    assert_eq!(status, 200, "{claimed}");
    assert_eq!(claimed["jobs"][0]["promotionId"], job.promotion_id.to_string(), "{claimed}");
    assert!(rang.elapsed() < std::time::Duration::from_secs(5), "answered {:?} after the ring", rang.elapsed());

    let queue = format!("gantry-agent-{id}");
    assert!(app.sqs.get_queue_url().queue_name(&queue).send().await.is_ok(), "the first wait made the doorbell");
    app.ok("mutation($id: ID!) { revokeAgent(id: $id) { revokedAt } }", json!({ "id": agent.1 })).await;
    assert!(app.sqs.get_queue_url().queue_name(&queue).send().await.is_err(), "revoking removed the doorbell");
}

/// An agent whose doorbell queue is gone (deleted behind Gantry's back): the ring fails and
/// is only logged, the job is written all the same, and the waiting claim, unable to wait on
/// the queue, reads the agent's jobs every 2 s and finds it.
async fn without_its_doorbell_a_claim_reads_every_two_seconds(
    app: &TestApp,
    template: &gantry_domain::agents::jobs::AgentJob,
) {
    use gantry_domain::agents::jobs::{AgentJob, AgentJobRepository};
    let agent = enrolled(app).await;
    let id = gantry_domain::agents::AgentId::parse(&agent.1).unwrap();
    // A first claim makes the doorbell; then it is deleted.
    let (status, _) = signed(app, &agent, "/agent/v1/jobs/claim", json!({ "waitSeconds": 1 }), "g-1").await;
    assert_eq!(status, 200);
    let url = app.sqs.get_queue_url().queue_name(format!("gantry-agent-{id}")).send().await.unwrap();
    app.sqs.delete_queue().queue_url(url.queue_url.unwrap()).send().await.unwrap();
    let job = AgentJob { agent_id: id, promotion_id: gantry_domain::ids::PromotionId::new(), ..template.clone() };
    let claim = signed(app, &agent, "/agent/v1/jobs/claim", json!({ "waitSeconds": 15 }), "g-2");
    let write = async {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        app.repo.put_job(&job, None).await.unwrap();
        assert!(app.state.agent_jobs.doorbell.ring(id).await.is_err(), "no doorbell to ring");
        std::time::Instant::now()
    };
    let ((status, claimed), written) = tokio::join!(claim, write);
    assert_eq!(status, 200, "{claimed}");
    assert_eq!(claimed["jobs"][0]["promotionId"], job.promotion_id.to_string(), "{claimed}");
    assert!(
        written.elapsed() < std::time::Duration::from_secs(5),
        "found {:?} after it was written",
        written.elapsed()
    );
}

/// A signed request is admitted in the write that serves it: a result ends its job with the
/// lines it carries, appended in order, and a replay of it is refused as replayed (not as a
/// job that ended); a claim that finds nothing is admitted alone, so its replay is refused
/// too; a revoked agent's result is refused and leaves its job claimed.
#[tokio::test]
async fn a_result_is_admitted_in_the_write_that_ends_its_job() {
    use gantry_domain::agents::jobs::{AgentJob, AgentJobRepository, AgentJobState, CLAIMED};
    let app = TestApp::spawn().await;
    let agent = enrolled(&app).await;
    let id = gantry_domain::agents::AgentId::parse(&agent.1).unwrap();
    let (first, second) = (pending_job(id), pending_job(id));
    for j in [&first, &second] {
        app.repo.put_job(j, None).await.unwrap();
        // Its promotion has other deployments still open, so a result does not settle it.
        let mut open = gantry_store::keys::open_deployments(j.promotion_id).all();
        open.insert("open".into(), aws_sdk_dynamodb::types::AttributeValue::N("5".into()));
        app.dynamodb.put_item().table_name(&app.table).set_item(Some(open)).send().await.unwrap();
    }
    let (status, claimed) = signed(&app, &agent, "/agent/v1/jobs/claim", json!({ "waitSeconds": 0 }), "c-1").await;
    assert_eq!((status, claimed["jobs"].as_array().map(Vec::len)), (200, Some(2)), "{claimed}");
    let (status, body) = signed(&app, &agent, "/agent/v1/jobs/claim", json!({ "waitSeconds": 0 }), "c-1").await;
    assert_eq!(status, 401, "a claim's nonce is recorded by its first claim: {body}");
    let (status, body) = signed(&app, &agent, "/agent/v1/jobs/claim", json!({ "waitSeconds": 0 }), "c-2").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = signed(&app, &agent, "/agent/v1/jobs/claim", json!({ "waitSeconds": 0 }), "c-2").await;
    assert!(status == 401 && body.to_string().contains("replayed"), "a claim that claimed nothing: {body}");

    let path = |j: &AgentJob| format!("/agent/v1/jobs/{}/{}/result", j.promotion_id, j.target_id);
    let result = json!({ "succeeded": true, "message": "ran", "appliedSha256": null,
        "progress": ["applying sha256:00", "health check passed"] });
    assert_eq!(signed(&app, &agent, &path(&first), result.clone(), "r-1").await.0, 204);
    let stored = app.repo.get_job(id, first.promotion_id, first.target_id).await.unwrap().unwrap();
    assert_eq!(stored.state, AgentJobState::Succeeded);
    assert_eq!(stored.progress, [CLAIMED, "applying sha256:00", "health check passed"]);
    let (status, body) = signed(&app, &agent, &path(&first), result.clone(), "r-1").await;
    assert!(status == 401 && body.to_string().contains("replayed"), "{body}");
    let (status, body) = signed(&app, &agent, &path(&first), result.clone(), "r-2").await;
    assert_eq!(status, 409, "a fresh result for an ended job: {body}");

    revoked_in_the_table(&app, id).await;
    let (status, body) = signed(&app, &agent, &path(&second), result, "r-3").await;
    assert!(status == 401 && body.to_string().contains("revoked"), "{body}");
    let stored = app.repo.get_job(id, second.promotion_id, second.target_id).await.unwrap().unwrap();
    assert_eq!((stored.state, stored.progress.len()), (AgentJobState::Claimed, 1), "nothing was written");
}

/// With `GANTRY_JOB_SIGNING_KEY=kms:<key>`, jobs are signed by a P-256 key in KMS (the
/// emulator's): an agent enrolls and pins `es256:` and the key's SubjectPublicKeyInfo, a
/// sealed job (larger than the 4 KB KMS signs raw) opens with it, and a changed one does not.
#[tokio::test]
async fn a_job_signing_key_in_kms_signs_jobs_agents_can_verify() {
    use aws_sdk_kms::types::{KeySpec, KeyUsageType};
    use gantry_signing::jobs::{Envelope, open};
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let made = kms.create_key().key_spec(KeySpec::EccNistP256).key_usage(KeyUsageType::SignVerify).send().await;
    let key = made.unwrap().key_metadata.unwrap().key_id;
    let app = TestApp::spawn_with(&[("GANTRY_JOB_SIGNING_KEY", &format!("kms:{key}"))]).await;
    let created = app.ok(ENROLL, json!({ "n": "edge", "e": 3600 })).await;
    let token = created["createAgentEnrollment"]["token"].as_str().unwrap().to_owned();
    let (agent_key, _) = gantry_signing::SigningKey::generate();
    let (status, body) =
        post(&app, "/agent/v1/enroll", json!({ "token": token, "publicKey": agent_key.public().encode() })).await;
    assert_eq!(status, 201, "{body}");
    let pinned = body["jobSigningKey"].as_str().unwrap();
    assert!(pinned.starts_with("es256:"), "{pinned}");
    let pinned = gantry_signing::PublicKey::parse(pinned).unwrap();

    let payload = json!({ "job": "x".repeat(6000) }).to_string();
    let (signature, key_id) = app.state.agent_jobs.sealer.seal(&payload).await.unwrap();
    let envelope = Envelope { payload: payload.clone(), signature, key_id };
    assert_eq!(open(&envelope, &pinned).unwrap(), payload);
    let changed = Envelope { payload: payload.replace('x', "y"), ..envelope.clone() };
    assert!(open(&changed, &pinned).unwrap_err().to_string().contains("does not verify"));
    let (ed25519, _) = gantry_signing::SigningKey::generate();
    assert!(open(&envelope, &ed25519.public()).is_err(), "only the pinned key opens it");
}
