//! Value types that are validated when they are built, so a value that exists is valid.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{DomainError, Result};

pub use crate::ids::{ComponentId, EnvironmentId, ReleaseId, VersionMapId};

/// Implements `FromStr`, `Display`, string serde and `as_str` for a validated string newtype.
macro_rules! string_value {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(raw: &str) -> Result<Self> {
                Self::parse(raw)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// An OCI content digest: `sha256:` followed by 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);
string_value!(Digest);

impl Digest {
    pub fn parse(raw: &str) -> Result<Self> {
        let hex = raw
            .strip_prefix("sha256:")
            .ok_or_else(|| DomainError::validation(format!("digest {raw:?} must start with \"sha256:\"")))?;
        let well_formed = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(DomainError::validation(format!(
                "digest {raw:?} must be \"sha256:\" followed by 64 lowercase hex characters"
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The digest of some bytes.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::{Digest as _, Sha256};
        Self(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }
}

/// A release channel such as `stable`, `rc` or `beta`: lowercase `[a-z0-9-]+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel(String);
string_value!(Channel);

impl Channel {
    pub const MAX_LEN: usize = 63;

    pub fn parse(raw: &str) -> Result<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(DomainError::validation(format!(
                "channel {raw:?} must be 1-{} characters of lowercase a-z, 0-9 and '-'",
                Self::MAX_LEN
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn stable() -> Self {
        Self("stable".to_owned())
    }

    /// The channel a version lands on when nobody says otherwise: its first pre-release
    /// identifier (`2.0.0-rc.1` → `rc`, `2.0.0-beta` → `beta`), or `default` for a release.
    pub fn for_version(version: &semver::Version, default: &Channel) -> Channel {
        Channel::parse(&prerelease_name(version)).unwrap_or_else(|_| default.clone())
    }
}

/// The unique, human-typed name of a component, release or environment:
/// 1-128 characters of letters, digits, `.`, `_` and `-`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);
string_value!(Name);

impl Name {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self> {
        if raw.trim().is_empty() {
            return Err(DomainError::validation("name must not be empty"));
        }
        let starts_well = raw.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let ok = starts_well
            && raw.len() <= Self::MAX_LEN
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !ok {
            return Err(DomainError::validation(format!(
                "name {raw:?} must be 1-{} characters of letters, digits, '.', '_' and '-', starting with a letter or digit",
                Self::MAX_LEN
            )));
        }
        Ok(Self(raw.to_owned()))
    }
}

/// An OCI repository without tag or digest, optionally with a registry host:
/// `myorg/api`, `registry.example.com:5000/team/web`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRepository(String);
string_value!(ImageRepository);

impl ImageRepository {
    pub fn parse(raw: &str) -> Result<Self> {
        let invalid = || {
            DomainError::validation(format!(
                "image repository {raw:?} must be an OCI repository such as \"myorg/api\" or \"registry.example.com/myorg/api\", without tag or digest"
            ))
        };
        if raw.is_empty() || raw.len() > 255 || raw.contains('@') {
            return Err(invalid());
        }
        let mut parts = raw.split('/').peekable();
        let first = *parts.peek().ok_or_else(invalid)?;
        // A first segment with '.', ':' or "localhost" is a registry host (and may carry a port).
        let has_host = raw.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
        if has_host {
            let host = parts.next().ok_or_else(invalid)?;
            let (name, port) = host.split_once(':').unwrap_or((host, ""));
            let host_ok = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                && port.chars().all(|c| c.is_ascii_digit())
                && !(host.contains(':') && port.is_empty());
            if !host_ok {
                return Err(invalid());
            }
        }
        let mut path_segments = 0;
        for segment in parts {
            path_segments += 1;
            let ok = segment
                .split(['.', '_', '-'])
                .all(|piece| !piece.is_empty() && piece.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
            if !ok {
                return Err(invalid());
            }
        }
        if path_segments == 0 {
            return Err(invalid());
        }
        Ok(Self(raw.to_owned()))
    }
}

/// The longest version string accepted, pre-release and build metadata included.
pub const MAX_SEMVER_LEN: usize = 128;

/// Parses a semantic version, accepting a leading `v` (`v2.3.1`).
pub fn parse_semver(raw: &str) -> Result<semver::Version> {
    if raw.len() > MAX_SEMVER_LEN {
        return Err(DomainError::validation(format!("a version must be at most {MAX_SEMVER_LEN} characters")));
    }
    let trimmed = raw.trim();
    let bare = trimmed.strip_prefix(['v', 'V']).unwrap_or(trimmed);
    semver::Version::parse(bare)
        .map_err(|e| DomainError::validation(format!("version {raw:?} is not a semantic version: {e}")))
}

/// The version a tag names, more leniently than [`parse_semver`]: registries are full of
/// `1.0` and `v2` tags, which name `1.0.0` and `2.0.0`. `None` for tags that name no version
/// (`latest`, a commit sha).
pub fn semver_from_tag(tag: &str) -> Option<semver::Version> {
    if let Ok(v) = parse_semver(tag) {
        return Some(v);
    }
    let bare = tag.strip_prefix(['v', 'V']).unwrap_or(tag);
    let parts: Vec<&str> = bare.split('.').collect();
    let numeric = |p: &&str| {
        !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()) && (p.len() == 1 || !p.starts_with('0'))
    };
    if parts.len() > 2 || !parts.iter().all(numeric) {
        return None;
    }
    let n = |i: usize| parts.get(i).map_or(0, |p| p.parse().unwrap_or(0));
    Some(semver::Version::new(n(0), n(1), 0))
}

/// Checks one line of free text such as a display name: trimmed, non-empty when given,
/// bounded, and free of control characters and bidirectional overrides.
pub fn display_text(field: &str, raw: Option<String>, max: usize) -> Result<Option<String>> {
    text(field, raw, max, false)
}

/// As [`display_text`], for text that may run over several lines (a comment, a reason, a
/// description): line feeds and tabs are allowed.
pub fn long_text(field: &str, raw: Option<String>, max: usize) -> Result<Option<String>> {
    text(field, raw, max, true)
}

fn text(field: &str, raw: Option<String>, max: usize, lines: bool) -> Result<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.chars().count() > max {
        return Err(DomainError::validation(format!("{field} must be at most {max} characters")));
    }
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(DomainError::validation(format!("{field} must not be blank")));
    }
    if let Some(c) = trimmed.chars().find(|&c| unsafe_char(c) && !(lines && matches!(c, '\n' | '\t'))) {
        return Err(DomainError::validation(format!(
            "{field} must not contain control or bidirectional-override characters (found U+{:04X})",
            c as u32
        )));
    }
    Ok(Some(trimmed.to_owned()))
}

/// Control characters (NUL, escape, line breaks, ...) and the bidirectional embeddings,
/// overrides and isolates that make text display in an order other than it reads.
pub fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Checks a bounded, single-line identifier-like text without parsing it further (a
/// repository URL, a branch): at most `max` characters and no [`unsafe_char`].
pub fn plain_text(field: &str, raw: Option<String>, max: usize) -> Result<Option<String>> {
    match raw {
        None => Ok(None),
        Some(s) if s.chars().count() > max => {
            Err(DomainError::validation(format!("{field} must be at most {max} characters")))
        }
        Some(s) if s.chars().any(unsafe_char) => {
            Err(DomainError::validation(format!("{field} must not contain control characters")))
        }
        Some(s) => Ok(Some(s)),
    }
}

/// The leading letters of a version's first pre-release identifier, lowercased
/// (`2.0.0-RC.1` → `rc`); empty for a release.
pub fn prerelease_name(version: &semver::Version) -> String {
    let first = version.pre.as_str().split(['.', '-']).next().unwrap_or_default();
    first.chars().take_while(|c| c.is_ascii_alphabetic()).collect::<String>().to_ascii_lowercase()
}

/// Checks a commit sha: the full 40 (SHA-1) or 64 (SHA-256) hex characters, as CI systems
/// give it (`$GITHUB_SHA`, `$CI_COMMIT_SHA`, `$GIT_COMMIT`); stored lowercase.
pub fn commit_sha(raw: &str) -> Result<String> {
    let sha = raw.trim().to_ascii_lowercase();
    if matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(sha)
    } else {
        Err(DomainError::validation("commit must be a full commit sha: 40 or 64 hex characters"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn digest_accepts_only_lowercase_sha256() {
        assert!(Digest::parse(&format!("sha256:{HEX}")).is_ok());
        assert!(Digest::parse(&format!("sha256:{}", HEX.to_uppercase())).is_err());
        assert!(Digest::parse(&format!("sha512:{HEX}")).is_err());
        assert!(Digest::parse(&format!("sha256:{}", &HEX[1..])).is_err());
        assert!(Digest::parse(&format!("sha256:{HEX}0")).is_err());
        assert!(Digest::parse(HEX).is_err());
        assert!(Digest::parse("sha256:").is_err());
        let err = Digest::parse("sha256:abc").unwrap_err();
        assert_eq!(err.code(), "BAD_USER_INPUT");
    }

    #[test]
    fn digest_of_bytes_is_well_formed() {
        let d = Digest::of(b"gantry");
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
    }

    #[test]
    fn semver_accepts_leading_v_and_rejects_garbage() {
        assert_eq!(parse_semver("v2.3.1").unwrap(), semver::Version::new(2, 3, 1));
        assert_eq!(parse_semver("2.3.1").unwrap(), semver::Version::new(2, 3, 1));
        assert_eq!(parse_semver("1.0.0-rc.1").unwrap().pre.as_str(), "rc.1");
        for bad in ["", "v", "2.3", "latest", "vv1.0.0", "1.0.0.0", "01.0.0"] {
            assert!(parse_semver(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn tags_name_versions_leniently() {
        let v = |t: &str| semver_from_tag(t).map(|v| v.to_string());
        assert_eq!(v("1.0").as_deref(), Some("1.0.0"));
        assert_eq!(v("v2").as_deref(), Some("2.0.0"));
        assert_eq!(v("2.4.0-rc.1").as_deref(), Some("2.4.0-rc.1"));
        assert_eq!(v("v1.2.3").as_deref(), Some("1.2.3"));
        for none in ["latest", "3484a3fb816e", "1.0.x", "01.2", "", "v", "1..2", "1.2.3.4"] {
            assert_eq!(v(none), None, "{none}");
        }
    }

    #[test]
    fn channel_is_lowercase_slug() {
        for ok in ["stable", "rc", "beta-2", "0"] {
            assert!(Channel::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Stable", "rc_1", "rc.1", "beta 2", &"a".repeat(64)] {
            assert!(Channel::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn channel_follows_prerelease() {
        let stable = Channel::stable();
        let ch = |v: &str| Channel::for_version(&parse_semver(v).unwrap(), &stable).to_string();
        assert_eq!(ch("1.0.0"), "stable");
        assert_eq!(ch("1.0.0-rc.1"), "rc");
        assert_eq!(ch("1.0.0-rc1"), "rc");
        assert_eq!(ch("1.0.0-beta"), "beta");
        assert_eq!(ch("1.0.0-alpha.3"), "alpha");
        assert_eq!(ch("1.0.0-RC.2"), "rc");
        assert_eq!(ch("1.0.0-1"), "stable", "a numeric pre-release has no channel name");
    }

    #[test]
    fn names_are_slugs() {
        for ok in ["api", "myapp-v2.3.1", "Prod_EU", "a"] {
            assert!(Name::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "   ", "-api", "has space", "semi;colon", &"a".repeat(129)] {
            assert!(Name::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Name::parse("").unwrap_err().to_string(), "name must not be empty");
    }

    #[test]
    fn image_repositories() {
        for ok in [
            "myorg/api",
            "api",
            "registry.example.com/myorg/api",
            "127.0.0.1:5000/demo/web",
            "localhost/demo",
            "ghcr.io/org/my_app.v2-x",
        ] {
            assert!(ImageRepository::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "MyOrg/api",
            "myorg/api:1.0",
            "myorg/api@sha256:abc",
            "myorg//api",
            "registry.example.com:/api",
            "registry.example.com/",
            "myorg/-api",
        ] {
            assert!(ImageRepository::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_must_be_uuids() {
        assert!(ReleaseId::parse("not-a-uuid").is_err());
        let id = ReleaseId::new();
        assert_eq!(ReleaseId::parse(&id.to_string()).unwrap(), id);
    }

    #[test]
    fn display_text_is_trimmed_and_bounded() {
        assert_eq!(display_text("displayName", Some("  API  ".into()), 10).unwrap().as_deref(), Some("API"));
        assert!(display_text("displayName", Some("   ".into()), 10).is_err());
        assert!(display_text("displayName", Some("x".repeat(11)), 10).is_err());
        assert_eq!(display_text("displayName", None, 10).unwrap(), None);
    }

    #[test]
    fn text_refuses_control_and_bidi_characters() {
        for bad in ["a\u{0}b", "line\nbreak", "esc\u{1b}[31m", "abc\u{202E}gpj.exe", "x\u{2066}y", "del\u{7f}"] {
            let err = display_text("displayName", Some(bad.into()), 100).unwrap_err().to_string();
            assert!(err.contains("control or bidirectional"), "{bad:?}: {err}");
        }
        assert_eq!(
            display_text("displayName", Some("Café — Straße 東京".into()), 100).unwrap().unwrap(),
            "Café — Straße 東京"
        );
        let comment = long_text("comment", Some("first line\n\tsecond line".into()), 100).unwrap().unwrap();
        assert_eq!(comment, "first line\n\tsecond line");
        assert!(long_text("comment", Some("bell\u{7}".into()), 100).is_err());
        assert!(plain_text("sourceRef.branch", Some("main\u{0}".into()), 10).is_err());
        assert!(plain_text("sourceRef.branch", Some("b".repeat(11)), 10).is_err());
        assert_eq!(plain_text("sourceRef.branch", Some("feature/x".into()), 10).unwrap().unwrap(), "feature/x");
    }

    #[test]
    fn long_versions_are_refused_before_parsing() {
        let long = format!("1.0.0-{}", "a".repeat(2_000));
        let err = parse_semver(&long).unwrap_err().to_string();
        assert!(err.contains("at most 128") && err.len() < 100, "{err}");
        assert!(parse_semver("v1.2.3-rc.1+build.5").is_ok());
    }
}
