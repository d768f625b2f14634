//! Signature and secret checks, all in constant time.

use gantry_domain::DomainError;
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::{AuthScheme, Inbound};

fn unauthorized(why: &str) -> DomainError {
    DomainError::Unauthorized(why.to_owned())
}

/// Compares two secrets in time that depends on neither: both are hashed first, so their
/// lengths leak nothing either.
pub fn secrets_match(presented: &[u8], expected: &[u8]) -> bool {
    Sha256::digest(presented).ct_eq(&Sha256::digest(expected)).into()
}

/// Checks `X-Hub-Signature-256: sha256=<hex>` against the HMAC-SHA256 of `body`.
pub fn check_hmac_sha256(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), DomainError> {
    let header = header.ok_or_else(|| unauthorized("missing X-Hub-Signature-256"))?;
    let hex_sig =
        header.strip_prefix("sha256=").ok_or_else(|| unauthorized("X-Hub-Signature-256 must start with sha256="))?;
    let signature = hex::decode(hex_sig).map_err(|_| unauthorized("X-Hub-Signature-256 is not hex"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| unauthorized("unusable secret"))?;
    mac.update(body);
    mac.verify_slice(&signature).map_err(|_| unauthorized("signature does not match"))
}

/// `sha256=<hex>` for a body, as a sender computes it.
pub fn sign_hmac_sha256(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks an `Authorization` header that holds the secret itself or `Bearer <secret>`.
pub fn check_authorization(secret: &[u8], header: Option<&str>) -> Result<(), DomainError> {
    let header = header.ok_or_else(|| unauthorized("missing Authorization header"))?;
    let token = header.strip_prefix("Bearer ").unwrap_or(header);
    if secrets_match(token.as_bytes(), secret) { Ok(()) } else { Err(unauthorized("Authorization does not match")) }
}

/// Checks a request against `secret` by `scheme`.
pub fn authenticate(scheme: AuthScheme, secret: &[u8], inbound: &Inbound<'_>) -> Result<(), DomainError> {
    match scheme {
        AuthScheme::AuthorizationHeader => check_authorization(secret, inbound.authorization),
        AuthScheme::HmacSha256 => check_hmac_sha256(secret, inbound.body, inbound.signature_256),
        AuthScheme::GitlabToken => {
            let presented = inbound.gitlab_token.ok_or_else(|| unauthorized("missing X-Gitlab-Token"))?;
            if secrets_match(presented.as_bytes(), secret) {
                Ok(())
            } else {
                Err(unauthorized("X-Gitlab-Token does not match"))
            }
        }
        AuthScheme::PathSecret => {
            let presented = inbound.path_secret.ok_or_else(|| unauthorized("missing secret in the URL path"))?;
            if secrets_match(presented.as_bytes(), secret) {
                Ok(())
            } else {
                Err(unauthorized("secret does not match"))
            }
        }
    }
}

/// The token a webhook presents, for looking its integration up: the bearer token or path
/// secret. `None` for HMAC schemes, which prove the secret without sending it.
pub fn presented_secret<'a>(scheme: AuthScheme, inbound: &Inbound<'a>) -> Option<&'a str> {
    match scheme {
        AuthScheme::AuthorizationHeader => inbound.authorization.map(|h| h.strip_prefix("Bearer ").unwrap_or(h)),
        AuthScheme::PathSecret => inbound.path_secret,
        AuthScheme::GitlabToken => inbound.gitlab_token,
        AuthScheme::HmacSha256 => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_round_trip_and_tamper() {
        let body = br#"{"action":"published"}"#;
        let sig = sign_hmac_sha256(b"s3cret", body);
        assert!(check_hmac_sha256(b"s3cret", body, Some(&sig)).is_ok());
        assert!(check_hmac_sha256(b"other", body, Some(&sig)).is_err());
        assert!(check_hmac_sha256(b"s3cret", b"{}", Some(&sig)).is_err());
        assert!(check_hmac_sha256(b"s3cret", body, None).is_err());
        assert!(check_hmac_sha256(b"s3cret", body, Some("sha1=abc")).is_err());
        assert!(check_hmac_sha256(b"s3cret", body, Some("sha256=zz")).is_err());
        assert_eq!(check_hmac_sha256(b"s3cret", body, Some("sha256=00")).unwrap_err().code(), "UNAUTHENTICATED");
    }

    #[test]
    fn github_documentation_vector() {
        // The example from GitHub's "Validating webhook deliveries".
        let sig = sign_hmac_sha256(b"It's a Secret to Everybody", b"Hello, World!");
        assert_eq!(sig, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
    }

    #[test]
    fn authorization_header_forms() {
        assert!(check_authorization(b"tok", Some("Bearer tok")).is_ok());
        assert!(check_authorization(b"tok", Some("tok")).is_ok());
        assert!(check_authorization(b"tok", Some("Bearer tok2")).is_err());
        assert!(check_authorization(b"tok", Some("bearer tok")).is_err());
        assert!(check_authorization(b"tok", None).is_err());
    }

    #[test]
    fn path_secrets() {
        let ok = Inbound { path_secret: Some("abc"), ..Default::default() };
        assert!(authenticate(AuthScheme::PathSecret, b"abc", &ok).is_ok());
        let bad = Inbound { path_secret: Some("abd"), ..Default::default() };
        assert!(authenticate(AuthScheme::PathSecret, b"abc", &bad).is_err());
        assert!(authenticate(AuthScheme::PathSecret, b"abc", &Inbound::default()).is_err());
    }
}
