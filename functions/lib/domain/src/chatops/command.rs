//! The `/gantry` slash command's text, parsed.

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Result};

/// What a `/gantry` command asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "command")]
pub enum Command {
    /// `promote <release> to <environment> [comment]`: the release by id or name.
    Promote {
        release: String,
        environment: String,
        comment: Option<String>,
    },
    /// `approve <promotion> [comment]`.
    Approve {
        promotion: String,
        comment: Option<String>,
    },
    /// `reject <promotion> [reason]`.
    Reject {
        promotion: String,
        reason: Option<String>,
    },
    /// `status [environment]`.
    Status {
        environment: Option<String>,
    },
    /// `rollback <environment> [reason]`.
    Rollback {
        environment: String,
        reason: Option<String>,
    },
    Help,
}

/// Slack sends at most 4,000 characters of command text; Gantry takes fewer.
pub const MAX_TEXT: usize = 2000;

pub const USAGE: &str = "*Gantry commands*\n\
`/gantry promote <release> to <environment> [comment]` request a promotion (release by id or name)\n\
`/gantry approve <promotion> [comment]` approve a promotion awaiting approval\n\
`/gantry reject <promotion> [reason]` reject it\n\
`/gantry status [environment]` what each environment runs, and what is on its way\n\
`/gantry rollback <environment> [reason]` roll an environment back to its previous release\n\
`/gantry help` this list";

fn rest(words: &[&str]) -> Option<String> {
    let joined = words.join(" ");
    (!joined.is_empty()).then_some(joined)
}

fn usage(what: &str) -> DomainError {
    DomainError::validation(format!("usage: /gantry {what} (try /gantry help)"))
}

impl Command {
    /// Parses the command's text; a clear `Validation` error saying how to write it when it
    /// is not one of the commands.
    pub fn parse(text: &str) -> Result<Self> {
        if text.chars().count() > MAX_TEXT {
            return Err(DomainError::validation(format!("the command must be at most {MAX_TEXT} characters")));
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some((verb, args)) = words.split_first() else { return Ok(Self::Help) };
        match (verb.to_ascii_lowercase().as_str(), args) {
            ("help", _) => Ok(Self::Help),
            ("promote", [release, to, environment, comment @ ..]) if to.eq_ignore_ascii_case("to") => {
                Ok(Self::Promote {
                    release: (*release).to_owned(),
                    environment: (*environment).to_owned(),
                    comment: rest(comment),
                })
            }
            ("promote", _) => Err(usage("promote <release> to <environment> [comment]")),
            ("approve", [promotion, comment @ ..]) => {
                Ok(Self::Approve { promotion: (*promotion).to_owned(), comment: rest(comment) })
            }
            ("approve", _) => Err(usage("approve <promotion> [comment]")),
            ("reject", [promotion, reason @ ..]) => {
                Ok(Self::Reject { promotion: (*promotion).to_owned(), reason: rest(reason) })
            }
            ("reject", _) => Err(usage("reject <promotion> [reason]")),
            ("status", []) => Ok(Self::Status { environment: None }),
            ("status", [environment]) => Ok(Self::Status { environment: Some((*environment).to_owned()) }),
            ("status", _) => Err(usage("status [environment]")),
            ("rollback", [environment, reason @ ..]) => {
                Ok(Self::Rollback { environment: (*environment).to_owned(), reason: rest(reason) })
            }
            ("rollback", _) => Err(usage("rollback <environment> [reason]")),
            (other, _) => Err(DomainError::validation(format!(
                "unknown command {:?}; try /gantry help",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }

    /// The command as one line, for the acknowledgement.
    pub fn describe(&self) -> String {
        match self {
            Self::Promote { release, environment, .. } => format!("promote {release} to {environment}"),
            Self::Approve { promotion, .. } => format!("approve {promotion}"),
            Self::Reject { promotion, .. } => format!("reject {promotion}"),
            Self::Status { environment: Some(e) } => format!("status {e}"),
            Self::Status { environment: None } => "status".into(),
            Self::Rollback { environment, .. } => format!("rollback {environment}"),
            Self::Help => "help".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(
            Command::parse("promote v1.2 to prod ship it").unwrap(),
            Command::Promote { release: "v1.2".into(), environment: "prod".into(), comment: Some("ship it".into()) }
        );
        assert_eq!(
            Command::parse("  APPROVE abc  ").unwrap(),
            Command::Approve { promotion: "abc".into(), comment: None }
        );
        assert_eq!(
            Command::parse("reject abc not today").unwrap(),
            Command::Reject { promotion: "abc".into(), reason: Some("not today".into()) }
        );
        assert_eq!(Command::parse("status").unwrap(), Command::Status { environment: None });
        assert_eq!(Command::parse("status prod").unwrap(), Command::Status { environment: Some("prod".into()) });
        assert_eq!(
            Command::parse("rollback prod broke checkout").unwrap(),
            Command::Rollback { environment: "prod".into(), reason: Some("broke checkout".into()) }
        );
        assert_eq!(Command::parse("").unwrap(), Command::Help);
        assert_eq!(Command::parse("help me").unwrap(), Command::Help);
    }

    #[test]
    fn malformed_commands_say_how_to_write_them() {
        for (text, says) in [
            ("promote v1.2 prod", "promote <release> to <environment>"),
            ("promote", "promote <release>"),
            ("approve", "approve <promotion>"),
            ("reject", "reject <promotion>"),
            ("status a b", "status [environment]"),
            ("rollback", "rollback <environment>"),
            ("deploy everything", "unknown command \"deploy\""),
        ] {
            let err = Command::parse(text).unwrap_err();
            assert_eq!(err.code(), "BAD_USER_INPUT");
            assert!(err.to_string().contains(says), "{text}: {err}");
        }
        assert!(Command::parse(&"x".repeat(MAX_TEXT + 1)).is_err());
    }
}
