//! The HTTP adapters' error mapping: a `DomainError` becomes an HTTP status
//! and `{"error": {"code", "message"}}` (or GraphQL's shape, before GraphQL runs), here and
//! nowhere else.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gantry_domain::DomainError;
use serde_json::json;

pub struct HttpError(pub DomainError);

impl From<DomainError> for HttpError {
    fn from(err: DomainError) -> Self {
        Self(err)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.0.code(), "message": self.0.public_message() } });
        (status(&self.0), Json(body)).into_response()
    }
}

/// The HTTP status of a domain error; internal detail is logged here.
pub fn status(err: &DomainError) -> StatusCode {
    match err {
        DomainError::NotFound(_) => StatusCode::NOT_FOUND,
        DomainError::Conflict(_) => StatusCode::CONFLICT,
        DomainError::Validation(_) => StatusCode::BAD_REQUEST,
        DomainError::Unresolvable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        DomainError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        DomainError::Forbidden(_) => StatusCode::FORBIDDEN,
        DomainError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        DomainError::Internal(detail) => {
            tracing::error!(error = %detail, "internal error");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// A refusal of a GraphQL request before GraphQL runs it (no valid token, a body that is
/// not a request, no answer in time): GraphQL's error shape, with an HTTP status.
pub fn graphql_error(status: StatusCode, code: &str, message: String) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, Json(body)).into_response()
}

/// A header's value, when present and text.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
