//! Keyless signers an environment trusts: the identity a Fulcio certificate names (an email
//! or a CI workflow's URI, exactly or by a regular expression over the whole of it) and the
//! OIDC issuer that vouched for it, checked against a Sigstore trust root
//! (`trusted_root.json`) the environment holds.

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Result};

/// A keyless signer: a certificate identity and its issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningIdentity {
    /// What verdicts call it.
    pub name: String,
    /// The OIDC issuer, exactly (`https://token.actions.githubusercontent.com`).
    pub issuer: String,
    /// The certificate's identity, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A regular expression the whole identity must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_regexp: Option<String>,
}

impl SigningIdentity {
    /// Identities one environment may trust.
    pub const MAX: usize = 16;
    const MAX_TEXT: usize = 512;

    /// An identity checked for shape: a short printable name, an `https` issuer URL, and
    /// exactly one of `subject` and `subject_regexp` (which must compile).
    pub fn parse(name: &str, issuer: &str, subject: Option<&str>, subject_regexp: Option<&str>) -> Result<Self> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_graphic()) {
            return Err(DomainError::validation(
                "a signing identity's name must be 1 to 64 printable characters without spaces",
            ));
        }
        let bad = |why: &str| DomainError::validation(format!("signing identity {name}: {why}"));
        let issuer = issuer.trim();
        let parsed = url::Url::parse(issuer).ok().filter(|u| u.scheme() == "https" && u.host_str().is_some());
        if parsed.is_none() || issuer.len() > Self::MAX_TEXT {
            return Err(bad("issuer must be the OIDC issuer's https URL"));
        }
        let text = |t: &str| !t.is_empty() && t.len() <= Self::MAX_TEXT && !t.chars().any(char::is_control);
        match (subject.map(str::trim), subject_regexp.map(str::trim)) {
            (Some(s), None) if text(s) => {}
            (None, Some(r)) if text(r) => {
                regex_lite::Regex::new(&format!("^(?:{r})$"))
                    .map_err(|e| bad(&format!("subjectRegexp does not compile ({e})")))?;
            }
            (Some(_), None) | (None, Some(_)) => return Err(bad("the subject must be 1 to 512 characters")),
            _ => return Err(bad("give exactly one of subject and subjectRegexp")),
        }
        Ok(Self {
            name: name.to_owned(),
            issuer: issuer.to_owned(),
            subject: subject.map(|s| s.trim().to_owned()),
            subject_regexp: subject_regexp.map(|r| r.trim().to_owned()),
        })
    }

    /// Whether a certificate naming `subject`, vouched for by `issuer`, is this signer.
    pub fn matches(&self, subject: &str, issuer: &str) -> bool {
        if issuer != self.issuer {
            return false;
        }
        match (&self.subject, &self.subject_regexp) {
            (Some(exact), _) => subject == exact,
            (None, Some(pattern)) => {
                regex_lite::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|re| re.is_match(subject))
            }
            (None, None) => false,
        }
    }
}

/// A Sigstore trust root (`trusted_root.json`): the Fulcio CAs certificates must chain to
/// and the Rekor logs whose promises are believed. Checked when set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrustRoot(String);

impl TrustRoot {
    /// A trust root that parses: its CAs' certificates, its logs' P-256 keys.
    pub fn parse(json: &str) -> Result<Self> {
        gantry_signing::keyless::TrustRoot::parse(json.as_bytes())
            .map_err(|why| DomainError::validation(format!("sigstoreTrustRoot: {why}")))?;
        Ok(Self(json.trim().to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://token.actions.githubusercontent.com";

    #[test]
    fn identities_are_checked_for_shape() {
        let exact = SigningIdentity::parse("ci", ISSUER, Some("release@acme.example"), None).unwrap();
        assert!(exact.matches("release@acme.example", ISSUER));
        assert!(!exact.matches("release@acme.example", "https://accounts.google.com"));
        assert!(!exact.matches("release@acme.example.evil", ISSUER));
        let pattern = r"https://github\.com/acme/[^/]+/\.github/workflows/release\.yml@refs/tags/v.*";
        let regexp = SigningIdentity::parse("wf", ISSUER, None, Some(pattern)).unwrap();
        assert!(regexp.matches("https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1.2.0", ISSUER));
        // The whole identity must match, not a part of it.
        assert!(!regexp.matches(
            "https://evil.example/?https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1",
            ISSUER
        ));
        for (issuer, subject, regexp) in [
            ("http://issuer.example", Some("a@b"), None),
            ("not a url", Some("a@b"), None),
            (ISSUER, None, None),
            (ISSUER, Some("a@b"), Some("a.*")),
            (ISSUER, None, Some("(unclosed")),
            (ISSUER, Some(""), None),
        ] {
            assert!(
                matches!(SigningIdentity::parse("x", issuer, subject, regexp), Err(DomainError::Validation(_))),
                "{issuer} {subject:?} {regexp:?}"
            );
        }
        assert!(SigningIdentity::parse("two words", ISSUER, Some("a@b"), None).is_err());
    }

    #[test]
    fn a_trust_root_that_does_not_parse_is_refused() {
        for bad in ["", "{}", r#"{"certificateAuthorities":[{"certChain":{"certificates":[{"rawBytes":"AAAA"}]}}]}"#] {
            assert!(matches!(TrustRoot::parse(bad), Err(DomainError::Validation(_))), "{bad}");
        }
    }
}
