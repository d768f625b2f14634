//! The release catalogue's use cases. Resolvers and handlers call exactly one of these.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use tracing::instrument;

use crate::error::{DomainError, Result};
use crate::ids::{ComponentId, EnvironmentId, IntegrationId, ReleaseId, VersionMapId};
use crate::model::{
    AutoRelease, Component, RECENT_VERSIONS, RecentVersions, Release, ReleaseComparison, ReleaseComponent,
    ReleaseStatus, SourceRef, VersionMap, VersionSource, VersioningStrategy, channel_overrides, compare, validate_tag,
};
use crate::ports::{Page, PageRequest, ReleaseFilter, Repository};
use crate::values::{Channel, Digest, ImageRepository, Name, display_text, parse_semver};

const DISPLAY_MAX: usize = 200;

/// Which registry integrations exist: all a component needs of them (the integrations sit
/// above the catalogue, and name it; it does not name them).
#[async_trait::async_trait]
pub trait KnownIntegrations: Send + Sync {
    async fn integration_exists(&self, id: IntegrationId) -> Result<bool>;
}

/// Input for `createComponent`.
#[derive(Debug, Clone, Default)]
pub struct NewComponent {
    pub name: String,
    pub display_name: Option<String>,
    pub image_repository: String,
    pub registry_integration_id: Option<String>,
    pub versioning_strategy: Option<VersioningStrategy>,
    pub default_channel: Option<String>,
    /// A release name pattern; releases are cut for new stable versions when set.
    pub auto_release: Option<String>,
    /// `(pre-release name, channel)` pairs.
    pub channel_overrides: Vec<(String, String)>,
}

/// Input for `updateComponent`: only the fields given change.
#[derive(Debug, Clone, Default)]
pub struct ComponentPatch {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub image_repository: Option<String>,
    pub registry_integration_id: Option<String>,
    pub versioning_strategy: Option<VersioningStrategy>,
    pub default_channel: Option<String>,
    /// A name pattern to turn auto-release on; an empty string turns it off.
    pub auto_release: Option<String>,
    /// Replaces the channel overrides when given.
    pub channel_overrides: Option<Vec<(String, String)>>,
}

/// Input for `createVersionMap`.
#[derive(Debug, Clone)]
pub struct NewVersionMap {
    pub component_id: ComponentId,
    pub tag: String,
    pub digest: String,
    /// Taken from the tag when not given.
    pub semver: Option<String>,
    /// Taken from the pre-release (`rc.1` → `rc`), else the component's default channel.
    pub channel: Option<String>,
    pub pushed_at: Option<chrono::DateTime<Utc>>,
}

/// How one component of a new release is chosen: exactly one of the three.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentSelector {
    pub component_id: ComponentId,
    pub version: Option<String>,
    pub digest: Option<String>,
    pub channel: Option<String>,
}

/// Input for `createRelease`, read from its JSON form by [`NewRelease::from_json`]: the
/// one mapping the GraphQL mutation and the CI's REST endpoint share.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRelease {
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    pub components: Vec<ComponentSelector>,
    #[serde(default)]
    pub source_ref: Option<SourceRef>,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

impl NewRelease {
    /// `{"name", "displayName", "components": [{"componentId", "version" | "digest" |
    /// "channel"}], "sourceRef": {..., "commitSha" (or "commit")}, "metadata"}`.
    pub fn from_json(value: serde_json::Value) -> Result<Self> {
        serde_json::from_value(value).map_err(|e| DomainError::validation(format!("the release is not valid: {e}")))
    }
}

/// Input for `createReleaseFromLatest`.
#[derive(Debug, Clone)]
pub struct NewReleaseFromLatest {
    pub name: String,
    pub display_name: Option<String>,
    /// The channel to take the latest version from; each component's default channel when absent.
    pub channel: Option<String>,
    /// Every component when absent or empty.
    pub component_ids: Option<Vec<ComponentId>>,
    /// Components deployed in this environment keep the digest deployed there.
    pub pin_from: Option<EnvironmentId>,
}

/// Input for `updateRelease`.
#[derive(Debug, Clone, Default)]
pub struct ReleasePatch {
    pub display_name: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub status: Option<ReleaseStatus>,
}

/// Who is acting: recorded as `createdBy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

impl Actor {
    pub fn anonymous() -> Self {
        Self("anonymous".to_owned())
    }
}

/// Limits on list sizes, so no request reads without bound.
pub const MAX_PAGE: usize = 100;
/// `totalCount` counts up to this many; a count costs at most this many rows read.
pub const MAX_COUNT: u64 = 10_000;
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_VERSIONS: usize = 500;
pub const DEFAULT_VERSIONS: usize = 50;

/// The release catalogue: components, versions and releases.
mod components;
mod releases;

#[derive(Clone)]
pub struct Catalog {
    repo: Arc<dyn Repository>,
    integrations: Arc<dyn KnownIntegrations>,
}

impl Catalog {
    pub fn new(repo: Arc<dyn Repository>, integrations: Arc<dyn KnownIntegrations>) -> Self {
        Self { repo, integrations }
    }

    /// The id of an existing integration, as it is stored: `Validation` for anything that is
    /// not an id, `NotFound` for one that names no integration.
    pub(super) async fn existing_integration(&self, raw: &str) -> Result<String> {
        let id = IntegrationId::parse(raw)?;
        if self.integrations.integration_exists(id).await? {
            Ok(id.to_string())
        } else {
            Err(DomainError::not_found("registry integration", id))
        }
    }

    // ----- components -----
}

pub(super) fn bounded(field: &str, raw: Option<i64>, default: usize, max: usize) -> Result<usize> {
    match raw {
        None => Ok(default),
        Some(n) if n >= 1 && n as u64 <= max as u64 => Ok(n as usize),
        Some(n) => Err(DomainError::validation(format!("{field} must be between 1 and {max}, not {n}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::releases::{check_selection, metadata_object};
    use super::*;

    #[test]
    fn selections_are_bounded_and_distinct() {
        let a = ComponentId::new();
        assert!(check_selection([a].into_iter()).is_ok());
        assert!(check_selection([a, a].into_iter()).unwrap_err().to_string().contains("twice"));
        assert!(check_selection(std::iter::empty()).is_err());
        assert!(check_selection((0..=Release::MAX_COMPONENTS).map(|_| ComponentId::new())).is_err());
    }

    #[test]
    fn metadata_must_be_an_object() {
        assert!(metadata_object(Some(serde_json::json!({"k": "v"}))).is_ok());
        assert!(metadata_object(None).unwrap().is_empty());
        assert_eq!(metadata_object(Some(serde_json::json!([1]))).unwrap_err().code(), "BAD_USER_INPUT");
        let big = serde_json::json!({ "k": "x".repeat(17 * 1024) });
        assert!(metadata_object(Some(big)).is_err());
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(bounded("first", None, 20, 100).unwrap(), 20);
        assert_eq!(bounded("first", Some(100), 20, 100).unwrap(), 100);
        assert!(bounded("first", Some(0), 20, 100).is_err());
        assert!(bounded("first", Some(101), 20, 100).is_err());
        assert!(bounded("first", Some(-1), 20, 100).is_err());
    }
}
