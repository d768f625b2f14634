//! What every HTTP function's router gets on top of its routes: a time limit per request,
//! security headers on every response, and the CORS policy of `GANTRY_CORS_ORIGINS`.

use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use gantry_domain::DomainError;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

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
    let mut router = router.layer(middleware::from_fn_with_state(config.request_timeout(), time_limit));
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
