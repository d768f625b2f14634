//! The pull agents' API. `POST /agent/v1/enroll` takes a one-time token; every other request
//! is signed with the agent's key (HTTP Message Signatures, RFC 9421), verified here, and
//! refused when stale (outside a 5-minute window), replayed, or from a revoked agent. An
//! agent sees, claims and reports only its own jobs.
//!
//! - `POST /agent/v1/heartbeat`: the host's facts.
//! - `POST /agent/v1/jobs/claim` `{ "waitSeconds": n }`: its jobs (a long poll, answered as
//!   soon as one is there).
//! - `POST /agent/v1/jobs/{promotionId}/{targetId}/progress` `{ "message": … }`.
//! - `POST /agent/v1/jobs/{promotionId}/{targetId}/result` `{ succeeded, message, appliedSha256 }`.
//! - `POST /agent/v1/jobs/{promotionId}/{targetId}/traffic` `{ "step": … }` records a move of a
//!   rollout behind a router (`{}` records nothing); the answer is what an operator asked
//!   of it: `{ "control": "continue" | "abort" | "promote_full" }`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use gantry_domain::DomainError;
use gantry_domain::agents::jobs::{AgentJob, JobResult};
use gantry_domain::agents::{HostFacts, Ticket};
use gantry_domain::ids::{PromotionId, TargetId};
use gantry_platform::AppState;
use gantry_platform::http::{HttpError, header};
use gantry_signing::PublicKey;
use gantry_signing::requests::{Received, keyid, verify};
use serde::Deserialize;
use serde_json::json;

/// Agent requests are small: facts, a result, a progress line.
const MAX_BODY: usize = 16 * 1024;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/agent/v1/enroll", post(enroll))
        .route("/agent/v1/heartbeat", post(heartbeat))
        .route("/agent/v1/jobs/claim", post(claim))
        .route("/agent/v1/jobs/{promotion}/{target}/progress", post(progress))
        .route("/agent/v1/jobs/{promotion}/{target}/result", post(result))
        .route("/agent/v1/jobs/{promotion}/{target}/traffic", post(traffic))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn body<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, HttpError> {
    serde_json::from_slice(bytes).map_err(|e| HttpError(DomainError::validation(format!("the body is not valid: {e}"))))
}

/// A request signed by an enrolled agent (signature and freshness checked), its ticket (the
/// write that serves it admits it: nonce new, agent not revoked), and its body parsed as `T`.
/// It takes the body, so it is the handler's last argument.
struct Signed<T> {
    ticket: Ticket,
    input: T,
}

impl<T: serde::de::DeserializeOwned> FromRequest<Arc<AppState>> for Signed<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Response> {
        let (method, uri, headers) = (req.method().clone(), req.uri().clone(), req.headers().clone());
        let bytes = Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        let ticket = signer(state, (&method, &uri, &headers), &bytes).await.map_err(IntoResponse::into_response)?;
        let input = body(&bytes).map_err(IntoResponse::into_response)?;
        Ok(Self { ticket, input })
    }
}

/// The ticket of the enrolled agent that signed this request, once its signature and
/// freshness hold.
async fn signer(
    state: &AppState,
    (method, uri, headers): (&Method, &Uri, &HeaderMap),
    bytes: &[u8],
) -> Result<Ticket, HttpError> {
    let unsigned = || HttpError(DomainError::Unauthorized("the request is not signed by an enrolled agent".into()));
    let input = header(headers, "signature-input").ok_or_else(unsigned)?;
    let agent = state.agents.signer(&keyid(input).ok_or_else(unsigned)?).await?;
    let key = PublicKey::parse(&agent.public_key).map_err(|_| unsigned())?;
    let received = Received {
        method: method.as_str(),
        path: uri.path(),
        body: bytes,
        content_digest: header(headers, "content-digest"),
        signature_input: Some(input),
        signature: header(headers, "signature"),
    };
    let params = verify(&received, |_| Some(key)).map_err(|e| {
        tracing::info!(agent_id = %agent.id, reason = %e, "agent request refused");
        HttpError(DomainError::Unauthorized(e.to_string()))
    })?;
    Ok(state.agents.ticket(&agent, params.created, &params.nonce)?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Enroll {
    token: String,
    public_key: String,
}

async fn enroll(State(state): State<Arc<AppState>>, bytes: Bytes) -> Result<Response, HttpError> {
    let input: Enroll = body(&bytes)?;
    let enrolled = state.agents.enroll(&input.token, &input.public_key).await?;
    Ok((StatusCode::CREATED, Json(enrolled)).into_response())
}

async fn heartbeat(State(state): State<Arc<AppState>>, signed: Signed<HostFacts>) -> Result<StatusCode, HttpError> {
    state.agents.heartbeat(&signed.ticket, &signed.input).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Claim {
    #[serde(default)]
    wait_seconds: u64,
}

fn envelope(job: &AgentJob) -> serde_json::Value {
    json!({
        "promotionId": job.promotion_id,
        "targetId": job.target_id,
        "deadline": job.deadline,
        "envelope": { "payload": job.payload, "signature": job.signature, "keyId": job.key_id },
    })
}

async fn claim(
    State(state): State<Arc<AppState>>,
    signed: Signed<Claim>,
) -> Result<Json<serde_json::Value>, HttpError> {
    // The poll ends before the request's own time limit does.
    let limit = (state.config.request_timeout_ms / 1000).saturating_sub(2);
    let wait = Duration::from_secs(signed.input.wait_seconds.min(limit));
    let jobs = state.agent_jobs.claim(&signed.ticket, wait).await?;
    Ok(Json(json!({ "jobs": jobs.iter().map(envelope).collect::<Vec<_>>() })))
}

fn job_key((promotion, target): &(String, String)) -> Result<(PromotionId, TargetId), HttpError> {
    Ok((PromotionId::parse(promotion)?, TargetId::parse(target)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Progress {
    message: String,
}

async fn progress(
    State(state): State<Arc<AppState>>,
    Path(job): Path<(String, String)>,
    signed: Signed<Progress>,
) -> Result<StatusCode, HttpError> {
    state.agent_jobs.progress(&signed.ticket, job_key(&job)?, &signed.input.message).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Traffic {
    #[serde(default)]
    step: Option<gantry_domain::traffic::TrafficStep>,
}

async fn traffic(
    State(state): State<Arc<AppState>>,
    Path(job): Path<(String, String)>,
    signed: Signed<Traffic>,
) -> Result<Json<serde_json::Value>, HttpError> {
    let control = state.agent_jobs.traffic(&signed.ticket, job_key(&job)?, signed.input.step.as_ref()).await?;
    Ok(Json(json!({ "control": control })))
}

async fn result(
    State(state): State<Arc<AppState>>,
    Path(job): Path<(String, String)>,
    signed: Signed<JobResult>,
) -> Result<StatusCode, HttpError> {
    let promotion = state.agent_jobs.report(&signed.ticket, job_key(&job)?, &signed.input).await?;
    state.promotions.settle_when_done(promotion).await?;
    Ok(StatusCode::NO_CONTENT)
}
