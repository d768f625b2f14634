//! The edge of Gantry: checks that a webhook comes from who it claims, and turns its body
//! into typed events. Nothing here does I/O; `functions/webhooks` stores and enqueues.
//!
//! A webhook's digest is a hint: ingest resolves every tag against the registry before it
//! writes a version map.

pub mod registry;
pub mod verify;

use std::fmt;
use std::str::FromStr;

use gantry_domain::DomainError;
use gantry_domain::values::Digest;
use serde::{Deserialize, Serialize};

/// A container registry that posts push notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrySource {
    /// The CNCF distribution registry (`registry:2`, Debian `docker-registry`).
    Distribution,
    /// GitHub Packages (`registry_package` and `package` events).
    Github,
    Harbor,
    Dockerhub,
    Quay,
    /// Amazon ECR through EventBridge (`ECR Image Action`).
    Ecr,
}

impl RegistrySource {
    pub const ALL: [RegistrySource; 6] = [Self::Distribution, Self::Github, Self::Harbor, Self::Dockerhub, Self::Quay, Self::Ecr];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Distribution => "distribution",
            Self::Github => "github",
            Self::Harbor => "harbor",
            Self::Dockerhub => "dockerhub",
            Self::Quay => "quay",
            Self::Ecr => "ecr",
        }
    }

    /// How this source proves who it is.
    pub fn auth(self) -> AuthScheme {
        match self {
            Self::Distribution | Self::Harbor | Self::Ecr => AuthScheme::AuthorizationHeader,
            Self::Github => AuthScheme::HmacSha256,
            Self::Dockerhub | Self::Quay => AuthScheme::PathSecret,
        }
    }
}

impl FromStr for RegistrySource {
    type Err = DomainError;
    fn from_str(raw: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| DomainError::NotFound(format!("unknown registry source {raw:?}")))
    }
}

impl fmt::Display for RegistrySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
}

/// What happened to an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageAction {
    /// A manifest (or index) was pushed, possibly under a tag.
    Pushed,
    /// A tag was removed.
    TagDeleted,
}

/// One image event from a registry, ready to be queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageEvent {
    pub source: RegistrySource,
    /// Unique per event at its source; duplicates are dropped on it.
    pub delivery_id: String,
    pub action: ImageAction,
    /// Registry host (and port), when the payload names one.
    pub registry: Option<String>,
    /// Repository path within the registry, such as `demo/web`.
    pub repository: String,
    pub tag: Option<String>,
    /// The digest the payload claims; ingest checks it against the registry.
    pub digest: Option<Digest>,
    pub media_type: Option<String>,
}

impl ImageEvent {
    /// `host/path`, as components name their `imageRepository`.
    pub fn image_repository(&self) -> String {
        match &self.registry {
            Some(host) => format!("{host}/{}", self.repository),
            None => self.repository.clone(),
        }
    }
}

/// Manifest media types that make a version; anything else (blobs, configs) is ignored.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
];
