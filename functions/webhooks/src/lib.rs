//! The webhook gateway: `POST /webhooks/registry/{source}` (and `.../{source}/{secret}` for
//! senders that cannot sign), CI systems' build events, and the Slack app's commands and
//! interactions. It authenticates, parses, drops duplicates, keeps the raw
//! event, enqueues it for ingest and answers at once. The same router serves Lambda and
//! the devserver.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use gantry_gateway::intake::CiSource;
use gantry_gateway::slack::SlackInbound;
use gantry_gateway::{Inbound, RegistrySource};
use gantry_platform::AppState;
use gantry_platform::http::{HttpError, header};
use serde_json::json;

/// Bodies larger than this are refused with 413 before anything is read into memory.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn router(state: Arc<AppState>) -> Router {
    let config = state.config.clone();
    let routes = Router::new()
        .route("/webhooks/registry/{source}", post(registry))
        .route("/webhooks/registry/{source}/{secret}", post(registry_with_secret))
        .route("/webhooks/ci/github", post(ci_github))
        .route("/webhooks/ci/gitlab", post(ci_gitlab))
        .route("/webhooks/ci/github/{integration}", post(ci_github_integration))
        .route("/webhooks/ci/gitlab/{integration}", post(ci_gitlab_integration))
        .route("/slack/commands", post(slack_command))
        .route("/slack/interactions", post(slack_interaction))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    gantry_platform::layers::harden(routes, &config)
}

async fn registry(
    state: State<Arc<AppState>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(state, &source, None, &headers, &body).await
}

async fn registry_with_secret(
    state: State<Arc<AppState>>,
    Path((source, secret)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(state, &source, Some(&secret), &headers, &body).await
}

/// 202 when events were queued, 200 when there was nothing new (a replay, or a pull).
async fn receive(
    State(state): State<Arc<AppState>>,
    source: &str,
    secret: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let source: RegistrySource = match source.parse() {
        Ok(source) => source,
        Err(err) => return HttpError(err).into_response(),
    };
    let inbound = inbound(headers, body, secret);
    match state.intake.receive(source, &inbound).await {
        Ok(receipt) => {
            let status = if receipt.accepted > 0 { StatusCode::ACCEPTED } else { StatusCode::OK };
            (status, Json(json!({ "accepted": receipt.accepted, "duplicates": receipt.duplicates }))).into_response()
        }
        Err(err) => HttpError(err).into_response(),
    }
}

fn inbound<'a>(headers: &'a HeaderMap, body: &'a [u8], path_secret: Option<&'a str>) -> Inbound<'a> {
    Inbound {
        body,
        authorization: header(headers, "authorization"),
        signature_256: header(headers, "x-hub-signature-256"),
        delivery_id: header(headers, "x-github-delivery").or_else(|| header(headers, "idempotency-key")),
        event: header(headers, "x-github-event"),
        path_secret,
        gitlab_token: header(headers, "x-gitlab-token"),
    }
}

async fn ci_github(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    ci(&state, (CiSource::Github, None), &headers, &body).await
}

async fn ci_gitlab(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    ci(&state, (CiSource::Gitlab, None), &headers, &body).await
}

async fn ci_github_integration(
    State(state): State<Arc<AppState>>,
    Path(integration): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    ci(&state, (CiSource::Github, Some(&integration)), &headers, &body).await
}

async fn ci_gitlab_integration(
    State(state): State<Arc<AppState>>,
    Path(integration): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    ci(&state, (CiSource::Gitlab, Some(&integration)), &headers, &body).await
}

/// 202 when a build was recorded, 200 for a replay or an event that is not a finished build.
async fn ci(
    state: &AppState,
    (source, integration): (CiSource, Option<&str>),
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    match state.intake.receive_ci(source, integration, &inbound(headers, body, None)).await {
        Ok(recorded) => {
            let status = if recorded { StatusCode::ACCEPTED } else { StatusCode::OK };
            (status, Json(json!({ "recorded": recorded }))).into_response()
        }
        Err(err) => HttpError(err).into_response(),
    }
}

fn slack_inbound<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> SlackInbound<'a> {
    SlackInbound {
        body,
        timestamp: header(headers, "x-slack-request-timestamp"),
        signature: header(headers, "x-slack-signature"),
    }
}

/// A `/gantry` command: 200 with a message only the user sees (the result follows through
/// the command's `response_url`); 401 for a request Slack did not sign.
async fn slack_command(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    match state.slack.command(&slack_inbound(&headers, &body)).await {
        Ok(reply) => Json(reply.body()).into_response(),
        Err(err) => HttpError(err).into_response(),
    }
}

/// A button of an approval card: 200 with no body, as Slack expects; 401 when unsigned.
async fn slack_interaction(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    match state.slack.interaction(&slack_inbound(&headers, &body)).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(err) => HttpError(err).into_response(),
    }
}

/// Serves the router as a Lambda function until the runtime stops it.
pub async fn run(state: Arc<AppState>) -> Result<(), lambda_http::Error> {
    lambda_http::run(gantry_platform::layers::flushing(router(state))).await
}
