//! The one error type every service returns. Adapters map it exactly once:
//! GraphQL `extensions.code`, an HTTP status, or an SQS batch-item failure.

/// What went wrong, in terms a caller can act on.
///
/// `Internal` carries detail for the logs only; adapters never show it to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Unresolvable(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// A dependency (DynamoDB, SQS, a provider) did not answer in time, or asked not to be
    /// called again before `retry_at` (a rate limit); the caller may retry then.
    #[error("{message}")]
    Unavailable { message: String, retry_at: Option<chrono::DateTime<chrono::Utc>> },
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        Self::NotFound(format!("{what} {id} not found"))
    }

    pub fn validation(msg: impl Into<String>) -> Self {
        Self::Validation(msg.into())
    }

    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::Conflict(msg.into())
    }

    pub fn unavailable(msg: impl Into<String>) -> Self {
        Self::Unavailable { message: msg.into(), retry_at: None }
    }

    /// A provider's refusal to be called again before `retry_at`.
    pub fn unavailable_until(msg: impl Into<String>, retry_at: chrono::DateTime<chrono::Utc>) -> Self {
        Self::Unavailable { message: msg.into(), retry_at: Some(retry_at) }
    }

    /// When a rate-limited provider may be called again, if it said.
    pub fn retry_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            Self::Unavailable { retry_at, .. } => *retry_at,
            _ => None,
        }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }

    /// The stable machine-readable code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "NOT_FOUND",
            Self::Conflict(_) => "CONFLICT",
            Self::Validation(_) => "BAD_USER_INPUT",
            Self::Unresolvable(_) => "UNRESOLVABLE_VERSION",
            Self::Unauthorized(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::Unavailable { .. } => "UNAVAILABLE",
            Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// The message a client may see, [`abridged`]. Internal detail stays in the logs.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "internal error".to_owned(),
            other => abridged(&other.to_string()),
        }
    }
}

/// Messages longer than this are shortened in the middle, where an echoed value sits.
pub const MAX_MESSAGE_CHARS: usize = 300;

/// `message`, or its first 200 and last 100 characters around "…" when it is longer than
/// [`MAX_MESSAGE_CHARS`]: an over-long input quoted in an error is not sent back whole.
pub fn abridged(message: &str) -> String {
    let count = message.chars().count();
    if count <= MAX_MESSAGE_CHARS {
        return message.to_owned();
    }
    let head: String = message.chars().take(200).collect();
    let tail: String = message.chars().skip(count - 100).collect();
    format!("{head}…({} characters left out)…{tail}", count - 300)
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_abridged_in_the_middle() {
        let short = DomainError::validation("name \"x\" is taken");
        assert_eq!(short.public_message(), "name \"x\" is taken");
        let huge = DomainError::validation(format!("name {:?} must be short", "n".repeat(900_000)));
        let shown = huge.public_message();
        assert!(shown.len() < 400, "{}", shown.len());
        assert!(shown.starts_with("name \"nnn") && shown.ends_with("\" must be short"), "{shown}");
        assert!(shown.contains("characters left out"));
        assert_eq!(DomainError::internal("secret detail").public_message(), "internal error");
    }
}
