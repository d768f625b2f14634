//! Events that arrive from outside: what registries say happened to images.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::values::Digest;

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
    /// GitLab: pipeline events, authenticated by `X-Gitlab-Token`.
    Gitlab,
}

impl RegistrySource {
    pub const ALL: [RegistrySource; 7] =
        [Self::Distribution, Self::Github, Self::Harbor, Self::Dockerhub, Self::Quay, Self::Ecr, Self::Gitlab];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Distribution => "distribution",
            Self::Github => "github",
            Self::Harbor => "harbor",
            Self::Dockerhub => "dockerhub",
            Self::Quay => "quay",
            Self::Ecr => "ecr",
            Self::Gitlab => "gitlab",
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

/// An image event as it travels on the queue: with the integration that vouched for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedImageEvent {
    pub integration_id: crate::ids::IntegrationId,
    pub event: ImageEvent,
}

impl QueuedImageEvent {
    /// Unique per event at its source: what duplicates are dropped on.
    pub fn delivery_key(&self) -> String {
        format!("{}#{}", self.event.source, self.event.delivery_id)
    }
}

/// A received webhook request, kept once for audit and replay however many events it
/// carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// What replays of the request are recognised by: [`Delivery::key_for`] its events.
    pub key: String,
    pub integration_id: crate::ids::IntegrationId,
    /// How many events the request carried.
    pub events: usize,
    /// The images they are about, each once, at most [`Delivery::MAX_IMAGES`] of them.
    pub images: Vec<String>,
    /// The request body exactly as received, gzip-compressed.
    pub compressed_body: Vec<u8>,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

impl Delivery {
    pub const MAX_IMAGES: usize = 20;

    /// The distinct images `events` are about, in order, at most [`Delivery::MAX_IMAGES`].
    pub fn images_of(events: &[QueuedImageEvent]) -> Vec<String> {
        let mut images: Vec<String> = Vec::new();
        for event in events {
            let image = event.event.image_repository();
            if images.len() == Self::MAX_IMAGES {
                break;
            }
            if !images.contains(&image) {
                images.push(image);
            }
        }
        images
    }

    /// The key of a request carrying `events`: its source and a hash of the events'
    /// delivery keys, so a resent request has the key it had the first time.
    pub fn key_for(events: &[QueuedImageEvent]) -> String {
        use sha2::{Digest as _, Sha256};
        let mut hash = Sha256::new();
        for event in events {
            hash.update(event.delivery_key().as_bytes());
            hash.update(b"\n");
        }
        let source = events.first().map_or_else(String::new, |e| e.event.source.to_string());
        format!("{source}#{}", hex::encode(hash.finalize()))
    }
}

/// The audit log of deliveries, which is also how replays are recognised.
#[async_trait::async_trait]
pub trait DeliveryLog: Send + Sync {
    /// Stores a delivery unless one with its key exists (a conditional write); `false` for a
    /// replay.
    async fn record(&self, delivery: &Delivery) -> crate::Result<bool>;
    /// Claims a delivery key; `false` when it was claimed before (a replay).
    async fn claim(&self, delivery_key: &str) -> crate::Result<bool>;
}

/// The queue that feeds ingest.
#[async_trait::async_trait]
pub trait EventQueue: Send + Sync {
    /// Enqueues events. They may arrive more than once and in any order (a replayed
    /// delivery queues its events again); applying them is idempotent and asks the registry.
    async fn enqueue(&self, events: &[QueuedImageEvent]) -> crate::Result<()>;
}
