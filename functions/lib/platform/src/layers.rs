//! What every HTTP function's router gets on top of its routes: a server span per request
//! (continuing the caller's `traceparent`), a time limit per request, security headers on
//! every response, and the CORS policy of `GANTRY_CORS_ORIGINS`.

use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use gantry_domain::DomainError;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::Config;

/// The pages' policy: everything from Gantry itself, nothing inline but styles (GraphiQL's
/// editor sets them), and no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";

/// `router` with the time limit, security headers and CORS policy of `config`.
pub fn harden(router: Router, config: &Config) -> Router {
    let headers = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    ];
    let mut router = router
        .route_layer(middleware::from_fn(server_span))
        .layer(middleware::from_fn_with_state(config.request_timeout(), time_limit));
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)));
    }
    match cors(&config.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Browsers may call Gantry from these origins, with a bearer token; none by default.
fn cors(origins: &[HeaderValue]) -> Option<CorsLayer> {
    (!origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, HeaderName::from_static("idempotency-key")])
            .max_age(Duration::from_secs(600))
    })
}

/// Answers 503 when the request has not been answered within `limit`: reading a slow body,
/// or waiting on a dependency. GraphQL clients get a GraphQL error, others the REST shape.
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let graphql = request.uri().path() == "/graphql";
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_ms = limit.as_millis() as u64, "request timed out");
            let message = format!("the request was not answered within {} ms; try again", limit.as_millis());
            if graphql {
                crate::http::graphql_error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", message)
            } else {
                crate::http::HttpError(DomainError::unavailable(message)).into_response()
            }
        }
    }
}

/// Runs the request inside a server span named by its method and route (`POST /graphql`),
/// the child of the caller's `traceparent` when it sent one, recording the status.
async fn server_span(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map_or("", |p| p.as_str()).to_owned();
    let span = tracing::info_span!(
        "http.server",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        "http.request.method" = %method,
        "http.route" = %route,
        "http.response.status_code" = Empty,
    );
    gantry_telemetry::follow(&span, crate::http::header(request.headers(), gantry_telemetry::TRACEPARENT));
    let response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    if response.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    response
}

/// `router` as a Lambda function serves it: every span of an invocation is exported before
/// its answer goes back (a frozen environment exports nothing).
pub fn flushing(router: Router) -> Router {
    router.layer(middleware::from_fn(|request: Request, next: Next| async move {
        let response = next.run(request).await;
        gantry_telemetry::flush().await;
        response
    }))
}
