//! The GraphQL API function. The same router serves Lambda (through lambda_http) and the
//! devserver.

use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::Html;
use axum::routing::get;
use gantry_domain::service::Actor;
use gantry_graphql::{GantrySchema, build_schema};
use gantry_platform::AppState;

/// Requests larger than this are refused with 413 before any work is done.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// `POST /graphql` runs a request; `GET /graphql` serves GraphiQL; `GET /health` says ok.
pub fn router(state: Arc<AppState>) -> Router {
    let schema = build_schema(state.catalog.clone());
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/health", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(schema)
}

async fn graphql(State(schema): State<GantrySchema>, request: GraphQLRequest) -> GraphQLResponse {
    gantry_graphql::execute(&schema, request.into_inner(), Actor::anonymous()).await.into()
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").title("Gantry").finish())
}

/// Serves the router as a Lambda function until the runtime stops it.
pub async fn run(state: Arc<AppState>) -> Result<(), lambda_http::Error> {
    lambda_http::run(router(state)).await
}
