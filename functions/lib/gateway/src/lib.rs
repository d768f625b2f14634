//! The edge of Gantry: checks that a webhook comes from who it claims, and turns its body
//! into typed events. Nothing here does I/O; `functions/webhooks` stores and enqueues.
//!
//! A webhook's digest is a hint: ingest resolves every tag against the registry before it
//! writes a version map.

pub mod chat;
pub mod ci;
pub mod intake;
pub mod registry;
pub mod slack;
pub mod verify;
#[cfg(test)]
mod verify_props;

pub use gantry_domain::events::{ImageAction, ImageEvent, MANIFEST_MEDIA_TYPES, RegistrySource};

/// How `source` proves who it is.
pub fn auth_scheme(source: RegistrySource) -> AuthScheme {
    match source {
        RegistrySource::Distribution | RegistrySource::Harbor | RegistrySource::Ecr => AuthScheme::AuthorizationHeader,
        RegistrySource::Github => AuthScheme::HmacSha256,
        RegistrySource::Dockerhub | RegistrySource::Quay => AuthScheme::PathSecret,
        RegistrySource::Gitlab => AuthScheme::GitlabToken,
    }
}

/// How a webhook authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization` equals the secret, or `Bearer <secret>`.
    AuthorizationHeader,
    /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
    HmacSha256,
    /// The secret is the last segment of the URL path (for senders that cannot sign).
    PathSecret,
    /// `X-Gitlab-Token` equals the secret.
    GitlabToken,
}

/// What a webhook request carries, independent of the HTTP framework.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inbound<'a> {
    pub body: &'a [u8],
    pub authorization: Option<&'a str>,
    /// `X-Hub-Signature-256`.
    pub signature_256: Option<&'a str>,
    /// `X-GitHub-Delivery`, or `Idempotency-Key`.
    pub delivery_id: Option<&'a str>,
    /// `X-GitHub-Event`.
    pub event: Option<&'a str>,
    /// `/webhooks/registry/{source}/{secret}`.
    pub path_secret: Option<&'a str>,
    /// `X-Gitlab-Token`.
    pub gitlab_token: Option<&'a str>,
}
