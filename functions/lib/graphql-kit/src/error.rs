//! The one place where `DomainError` becomes a GraphQL error.

use async_graphql::{ErrorExtensions, Response};
use gantry_kernel::DomainError;

/// Maps a domain error to a GraphQL error with `extensions.code`.
/// Internal detail is logged here and replaced by "internal error".
pub fn to_graphql(err: DomainError) -> async_graphql::Error {
    if let DomainError::Internal(detail) = &err {
        tracing::error!(error = %detail, "internal error");
    }
    let code = err.code();
    async_graphql::Error::new(err.public_message()).extend_with(|_, e| e.set("code", code))
}

/// `.gql()` on a service result: the error mapped with [`to_graphql`].
pub trait IntoGraphql<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> IntoGraphql<T> for Result<T, DomainError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(to_graphql)
    }
}

/// Shortens every message that would echo an over-long input, and gives every error that
/// left the resolvers without a code one: a malformed argument
/// value (an unknown enum value, a string for an Int) is `BAD_USER_INPUT`, any other
/// document problem `GRAPHQL_VALIDATION_FAILED`.
pub fn classify_errors(response: &mut Response) {
    for error in &mut response.errors {
        error.message = gantry_kernel::error::abridged(&error.message);
        let has_code = error.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
        if has_code {
            continue;
        }
        let bad_input = error.message.starts_with("Invalid value for argument")
            || error.message.starts_with("Failed to parse")
            || error.message.contains("Variable \"");
        let code = if bad_input { "BAD_USER_INPUT" } else { "GRAPHQL_VALIDATION_FAILED" };
        error.extensions.get_or_insert_with(Default::default).set("code", code);
    }
}
