//! What went wrong, and the exit code CI can act on.

use std::fmt;

/// Exit codes: documented in `gantry --help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: the API could not be reached (connection refused, DNS, TLS), or answered something
    /// unexpected.
    Failure = 1,
    /// 3: what was named does not exist.
    NotFound = 3,
    /// 4: Gantry refused: a gate, a freeze, another promotion, a state that does not allow it.
    Refused = 4,
    /// 5: the input is wrong (a version that does not resolve included).
    BadInput = 5,
    /// 6: no valid token, or not allowed.
    Denied = 6,
    /// 7: Gantry or a dependency is unavailable, a request timed out, or `--wait` ran out.
    Unavailable = 7,
    /// 8: the promotion waited for ended badly: failed, rejected, cancelled, rolled back.
    PromotionFailed = 8,
}

#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self { exit, message: message.into() }
    }

    /// The exit code of a GraphQL error's `extensions.code`.
    pub fn from_code(code: &str, message: String) -> Self {
        let exit = match code {
            "NOT_FOUND" => Exit::NotFound,
            "CONFLICT" => Exit::Refused,
            "BAD_USER_INPUT" | "UNRESOLVABLE_VERSION" | "GRAPHQL_VALIDATION_FAILED" | "GRAPHQL_PARSE_FAILED" => {
                Exit::BadInput
            }
            "UNAUTHENTICATED" | "FORBIDDEN" => Exit::Denied,
            "UNAVAILABLE" => Exit::Unavailable,
            _ => Exit::Failure,
        };
        Self { exit, message }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type Result<T> = std::result::Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_exits() {
        assert_eq!(CliError::from_code("NOT_FOUND", String::new()).exit as i32, 3);
        assert_eq!(CliError::from_code("CONFLICT", String::new()).exit as i32, 4);
        assert_eq!(CliError::from_code("BAD_USER_INPUT", String::new()).exit as i32, 5);
        assert_eq!(CliError::from_code("UNRESOLVABLE_VERSION", String::new()).exit as i32, 5);
        assert_eq!(CliError::from_code("FORBIDDEN", String::new()).exit as i32, 6);
        assert_eq!(CliError::from_code("UNAVAILABLE", String::new()).exit as i32, 7);
        assert_eq!(CliError::from_code("INTERNAL_SERVER_ERROR", String::new()).exit as i32, 1);
    }
}
