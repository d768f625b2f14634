//! The API function: GraphQL, and the REST endpoints CI calls. The same router serves Lambda (through lambda_http) and the
//! devserver.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gantry_graphql::{GantrySchema, Services, build_schema};
use gantry_platform::AppState;
use gantry_platform::http::graphql_error;

/// Requests larger than this are refused with 413 before any work is done.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// `POST /graphql` runs a request; `GET /graphql` serves GraphiQL; `GET /health` says ok.
pub mod agents;
pub mod graphiql;
pub mod rest;
pub mod ui;

pub fn router(state: Arc<AppState>) -> Router {
    let schema = build_schema(Services {
        catalog: state.catalog.clone(),
        environments: state.environments.clone(),
        integrations: state.integrations.clone(),
        ci: state.ci.clone(),
        reports: state.reports.clone(),
        sync: state.sync.clone(),
        accounts: state.accounts.clone(),
        builds: state.builds.clone(),
        targets: state.targets.clone(),
        promotions: state.promotions.clone(),
        chat: state.chat.clone(),
        subscriptions: state.subscriptions.clone(),
        agents: state.agents.clone(),
        insights: state.insights.clone(),
        dead_letters: state.dead_letters.clone(),
    });
    let rest = Router::new()
        .route("/api/v1/releases", post(rest::create_release))
        .route("/api/v1/ci-events/build-complete", post(rest::build_complete))
        .route("/api/v1/webhooks/ci-status", post(rest::ci_status))
        .route("/api/v1/service-accounts", post(rest::create_service_account))
        .route("/.well-known/gantry/evidence-keys.json", get(rest::evidence_keys))
        .with_state(state.clone());
    let config = state.config.clone();
    let state_for_ui = state.clone();
    let routes = Router::new()
        .route("/graphql", get(graphiql::page).post(graphql))
        .route("/graphiql/{*path}", get(graphiql::asset))
        .route("/health", get(|| async { "ok" }))
        .with_state(Api { schema, state })
        .merge(rest)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .merge(ui::router(state_for_ui.clone()))
        .merge(agents::router(state_for_ui));
    gantry_platform::layers::harden(routes, &config)
}

#[derive(Clone)]
struct Api {
    schema: GantrySchema,
    state: Arc<AppState>,
}

/// A body over [`MAX_BODY_BYTES`] is refused with 413 by the extractor; a request without
/// a valid bearer token gets 401, and one that is not a GraphQL request in JSON (a batch
/// included) 400. An answer with no data and only `UNAVAILABLE` errors is 503; everything
/// else is answered by GraphQL, with 200.
async fn graphql(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    let principal = match api.state.auth.authenticate(authorization).await {
        Ok(principal) => principal,
        Err(err) => {
            tracing::info!(reason = %err, "request refused");
            return graphql_error(gantry_platform::http::status(&err), err.code(), err.public_message());
        }
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return graphql_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "batching (a JSON array of requests) is not supported: send one request per POST".to_owned(),
        );
    }
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            return graphql_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("the body is not a GraphQL request in JSON: {err}"),
            );
        }
    };
    let response = gantry_graphql::execute(&api.schema, request, principal).await;
    // Nothing but `UNAVAILABLE`, and no data: 503, so HTTP clients and proxies retry too.
    let unavailable = !response.errors.is_empty()
        && response.data == async_graphql::Value::Null
        && response.errors.iter().all(|e| {
            e.extensions.as_ref().and_then(|x| x.get("code"))
                == Some(&async_graphql::Value::String("UNAVAILABLE".into()))
        });
    if unavailable {
        let retry = [(axum::http::header::RETRY_AFTER, "1")];
        return (StatusCode::SERVICE_UNAVAILABLE, retry, Json(response)).into_response();
    }
    Json(response).into_response()
}

/// Serves the router as a Lambda function until the runtime stops it.
pub async fn run(state: Arc<AppState>) -> Result<(), lambda_http::Error> {
    lambda_http::run(gantry_platform::layers::flushing(router(state))).await
}
