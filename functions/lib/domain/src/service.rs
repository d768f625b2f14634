//! The release catalogue's use cases. Resolvers and handlers call exactly one of these.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use tracing::instrument;

use crate::error::{DomainError, Result};
use crate::ids::{ComponentId, EnvironmentId, IntegrationId, ReleaseId, VersionMapId};
use crate::integrations::IntegrationRepository;
use crate::model::{
    AutoRelease, Component, Environment, EnvironmentPolicy, EnvironmentState, PolicyPatch, Release, ReleaseComparison,
    ReleaseComponent, ReleaseStatus, SourceRef, VersionMap, VersionSource, VersioningStrategy, channel_overrides,
    compare, release_state, validate_tag,
};
use crate::ports::{Page, PageRequest, ReleaseFilter, Repository};
use crate::values::{Channel, Digest, ImageRepository, Name, display_text, parse_semver};

const DISPLAY_MAX: usize = 200;

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
#[derive(Debug, Clone)]
pub struct ComponentSelector {
    pub component_id: ComponentId,
    pub version: Option<String>,
    pub digest: Option<String>,
    pub channel: Option<String>,
}

/// Input for `createRelease`.
#[derive(Debug, Clone)]
pub struct NewRelease {
    pub name: String,
    pub display_name: Option<String>,
    pub components: Vec<ComponentSelector>,
    pub source_ref: Option<SourceRef>,
    pub metadata: Option<serde_json::Value>,
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

/// Input for `createEnvironment`.
#[derive(Debug, Clone, Default)]
pub struct NewEnvironment {
    pub name: String,
    pub display_name: Option<String>,
    pub order: i64,
    pub required_approvals: Option<i64>,
    pub policy: PolicyPatch,
}

/// Input for `updateEnvironment`.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentPatch {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub order: Option<i64>,
    pub required_approvals: Option<i64>,
    pub policy: PolicyPatch,
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
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_VERSIONS: usize = 500;
pub const DEFAULT_VERSIONS: usize = 50;

/// The release catalogue: components, versions, releases and environments.
#[derive(Clone)]
pub struct Catalog {
    repo: Arc<dyn Repository>,
    integrations: Arc<dyn IntegrationRepository>,
}

impl Catalog {
    pub fn new(repo: Arc<dyn Repository>, integrations: Arc<dyn IntegrationRepository>) -> Self {
        Self { repo, integrations }
    }

    /// The id of an existing integration, as it is stored: `Validation` for anything that is
    /// not an id, `NotFound` for one that names no integration.
    async fn existing_integration(&self, raw: &str) -> Result<String> {
        let id = IntegrationId::parse(raw)?;
        match self.integrations.get_integration(id).await? {
            Some(_) => Ok(id.to_string()),
            None => Err(DomainError::not_found("registry integration", id)),
        }
    }

    // ----- components -----

    #[instrument(skip_all, err)]
    pub async fn components(&self) -> Result<Vec<Component>> {
        self.repo.list_components().await
    }

    #[instrument(skip_all, fields(component_id = %id), err)]
    pub async fn component(&self, id: ComponentId) -> Result<Component> {
        self.repo.get_component(id).await?.ok_or_else(|| DomainError::not_found("component", id))
    }

    /// Batch lookup for data loaders; missing ids are left out.
    #[instrument(skip_all, fields(count = ids.len()), err)]
    pub async fn components_by_id(&self, ids: &[ComponentId]) -> Result<Vec<Component>> {
        self.repo.get_components(ids).await
    }

    #[instrument(skip_all, err)]
    pub async fn create_component(&self, input: NewComponent) -> Result<Component> {
        let now = Utc::now();
        let registry_integration_id = match &input.registry_integration_id {
            Some(raw) => Some(self.existing_integration(raw).await?),
            None => None,
        };
        let component = Component {
            id: ComponentId::new(),
            name: Name::parse(&input.name)?,
            display_name: display_text("displayName", input.display_name, DISPLAY_MAX)?,
            image_repository: ImageRepository::parse(&input.image_repository)?,
            registry_integration_id,
            versioning_strategy: input.versioning_strategy.unwrap_or_default(),
            default_channel: input
                .default_channel
                .as_deref()
                .map(Channel::parse)
                .transpose()?
                .unwrap_or_else(Channel::stable),
            auto_release: input.auto_release.as_deref().map(AutoRelease::parse).transpose()?,
            channel_overrides: channel_overrides(input.channel_overrides)?,
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        self.repo.create_component(&component).await?;
        tracing::info!(component_id = %component.id, "component created");
        Ok(component)
    }

    #[instrument(skip_all, fields(component_id = %id), err)]
    pub async fn update_component(&self, id: ComponentId, patch: ComponentPatch) -> Result<Component> {
        let before = self.component(id).await?;
        let mut after = before.clone();
        if let Some(name) = patch.name {
            after.name = Name::parse(&name)?;
        }
        if patch.display_name.is_some() {
            after.display_name = display_text("displayName", patch.display_name, DISPLAY_MAX)?;
        }
        if let Some(repo) = patch.image_repository {
            after.image_repository = ImageRepository::parse(&repo)?;
        }
        if let Some(raw) = &patch.registry_integration_id {
            after.registry_integration_id = Some(self.existing_integration(raw).await?);
        }
        if let Some(strategy) = patch.versioning_strategy {
            after.versioning_strategy = strategy;
        }
        if let Some(channel) = patch.default_channel {
            after.default_channel = Channel::parse(&channel)?;
        }
        if let Some(pairs) = patch.channel_overrides {
            after.channel_overrides = channel_overrides(pairs)?;
        }
        if let Some(pattern) = patch.auto_release {
            after.auto_release = if pattern.is_empty() { None } else { Some(AutoRelease::parse(&pattern)?) };
        }
        after.updated_at = Utc::now();
        after.revision = before.revision + 1;
        self.repo.update_component(&before, &after).await?;
        Ok(after)
    }

    #[instrument(skip_all, fields(component_id = %id), err)]
    pub async fn delete_component(&self, id: ComponentId) -> Result<Component> {
        let component = self.component(id).await?;
        self.repo.delete_component(&component).await?;
        tracing::info!("component deleted");
        Ok(component)
    }

    // ----- version maps -----

    #[instrument(skip_all, fields(component_id = %id), err)]
    pub async fn component_versions(
        &self,
        id: ComponentId,
        channel: Option<String>,
        limit: Option<i64>,
    ) -> Result<Vec<VersionMap>> {
        let channel = channel.as_deref().map(Channel::parse).transpose()?;
        let limit = bounded("limit", limit, DEFAULT_VERSIONS, MAX_VERSIONS)?;
        self.component(id).await?;
        self.repo.list_versions(id, channel.as_ref(), limit).await
    }

    #[instrument(skip_all, fields(component_id = %input.component_id), err)]
    pub async fn create_version_map(&self, input: NewVersionMap) -> Result<VersionMap> {
        validate_tag(&input.tag)?;
        let digest = Digest::parse(&input.digest)?;
        let semver = match &input.semver {
            Some(raw) => parse_semver(raw)?,
            None => parse_semver(&input.tag).map_err(|_| {
                DomainError::validation(format!(
                    "tag {:?} is not a semantic version; give semver explicitly",
                    input.tag
                ))
            })?,
        };
        let explicit_channel = input.channel.as_deref().map(Channel::parse).transpose()?;
        let component = self.component(input.component_id).await?;
        let version = VersionMap {
            id: VersionMapId::new(),
            component_id: component.id,
            tag: input.tag,
            digest,
            channel: explicit_channel.unwrap_or_else(|| component.channel_for(&semver)),
            semver,
            pushed_at: input.pushed_at.unwrap_or_else(Utc::now),
            source: VersionSource::Manual,
            removed: false,
            payload_digest: None,
        };
        self.repo.create_version_map(&version).await?;
        tracing::info!(version_map_id = %version.id, "version map created");
        Ok(version)
    }

    // ----- releases -----

    #[instrument(skip_all, fields(release_id = %id), err)]
    pub async fn release(&self, id: ReleaseId) -> Result<Release> {
        self.repo.get_release(id).await?.ok_or_else(|| DomainError::not_found("release", id))
    }

    #[instrument(skip_all, err)]
    pub async fn releases(
        &self,
        filter: ReleaseFilter,
        first: Option<i64>,
        after: Option<String>,
    ) -> Result<Page<Release>> {
        let first = bounded("first", first, DEFAULT_PAGE, MAX_PAGE)?;
        self.repo.list_releases(filter, &PageRequest { first, after }).await
    }

    #[instrument(skip_all, err)]
    pub async fn count_releases(&self, filter: ReleaseFilter) -> Result<u64> {
        self.repo.count_releases(filter).await
    }

    #[instrument(skip_all, err)]
    pub async fn create_release(&self, input: NewRelease, actor: &Actor) -> Result<Release> {
        let name = Name::parse(&input.name)?;
        let display_name = display_text("displayName", input.display_name, DISPLAY_MAX)?;
        let metadata = metadata_object(input.metadata)?;
        check_selection(input.components.iter().map(|s| s.component_id))?;
        let components = self.load_components(input.components.iter().map(|s| s.component_id)).await?;
        let mut pinned = Vec::with_capacity(components.len());
        for (selector, component) in input.components.iter().zip(&components) {
            pinned.push(self.resolve(selector, component).await?);
        }
        let source_ref = input.source_ref.map(SourceRef::checked).transpose()?;
        self.store_new_release(name, display_name, pinned, source_ref, metadata, actor).await
    }

    #[instrument(skip_all, err)]
    pub async fn create_release_from_latest(&self, input: NewReleaseFromLatest, actor: &Actor) -> Result<Release> {
        let name = Name::parse(&input.name)?;
        let display_name = display_text("displayName", input.display_name, DISPLAY_MAX)?;
        let channel = input.channel.as_deref().map(Channel::parse).transpose()?;
        let components = match input.component_ids.filter(|ids| !ids.is_empty()) {
            Some(ids) => {
                check_selection(ids.iter().copied())?;
                self.load_components(ids.into_iter()).await?
            }
            None => {
                let all = self.repo.list_components().await?;
                check_selection(all.iter().map(|c| c.id))?;
                all
            }
        };
        let deployed = match input.pin_from {
            Some(env) => {
                self.environment(env).await?;
                self.repo.deployed_components(env).await?
            }
            None => Vec::new(),
        };
        let mut pinned = Vec::with_capacity(components.len());
        for component in &components {
            let entry = match deployed.iter().find(|d| d.component_id == component.id) {
                Some(d) => pin(component, &d.tag, &d.version, &d.digest, &d.channel),
                None => {
                    let channel = channel.clone().unwrap_or_else(|| component.default_channel.clone());
                    let selector = ComponentSelector {
                        component_id: component.id,
                        version: None,
                        digest: None,
                        channel: Some(channel.to_string()),
                    };
                    self.resolve(&selector, component).await?
                }
            };
            pinned.push(entry);
        }
        self.store_new_release(name, display_name, pinned, None, Default::default(), actor).await
    }

    #[instrument(skip_all, fields(release_id = %id), err)]
    pub async fn update_release(&self, id: ReleaseId, patch: ReleasePatch) -> Result<Release> {
        let before = self.release(id).await?;
        let mut after = before.clone();
        if patch.display_name.is_some() {
            after.display_name = display_text("displayName", patch.display_name, DISPLAY_MAX)?;
        }
        if patch.metadata.is_some() {
            after.metadata = metadata_object(patch.metadata)?;
        }
        if let Some(status) = patch.status {
            before.status.check_user_transition(status)?;
            after.status = status;
        }
        if before.status == ReleaseStatus::Deprecated && after != before {
            return Err(DomainError::conflict("a deprecated release cannot change"));
        }
        after.updated_at = Utc::now();
        after.revision = before.revision + 1;
        self.repo.update_release(&before, &after).await?;
        Ok(after)
    }

    #[instrument(skip_all, fields(release_id = %id), err)]
    pub async fn deprecate_release(&self, id: ReleaseId) -> Result<Release> {
        self.update_release(id, ReleasePatch { status: Some(ReleaseStatus::Deprecated), ..Default::default() }).await
    }

    #[instrument(skip_all, fields(release_id = %id), err)]
    pub async fn delete_release(&self, id: ReleaseId) -> Result<Release> {
        let release = self.release(id).await?;
        if !release.status.is_deletable() {
            return Err(DomainError::conflict(format!("a {} release cannot be deleted", release.status.as_str())));
        }
        self.repo.delete_release(&release).await?;
        tracing::info!("release deleted");
        Ok(release)
    }

    #[instrument(skip_all, fields(release_id = %id, other_id = %other), err)]
    pub async fn compare_releases(&self, id: ReleaseId, other: ReleaseId) -> Result<ReleaseComparison> {
        let (from, to) = futures::try_join!(self.release(id), self.release(other))?;
        Ok(compare(&from, &to))
    }

    #[instrument(skip_all, fields(release_id = %id), err)]
    pub async fn release_state(&self, id: ReleaseId) -> Result<Vec<EnvironmentState>> {
        self.release(id).await?;
        let (environments, records) =
            futures::try_join!(self.repo.list_environments(), self.repo.release_environment_records(id))?;
        Ok(release_state(environments, &records))
    }

    // ----- environments -----

    #[instrument(skip_all, err)]
    pub async fn environments(&self) -> Result<Vec<Environment>> {
        self.repo.list_environments().await
    }

    #[instrument(skip_all, fields(environment_id = %id), err)]
    pub async fn environment(&self, id: EnvironmentId) -> Result<Environment> {
        self.repo.get_environment(id).await?.ok_or_else(|| DomainError::not_found("environment", id))
    }

    #[instrument(skip_all, err)]
    pub async fn create_environment(&self, input: NewEnvironment) -> Result<Environment> {
        let now = Utc::now();
        let environment = Environment {
            id: EnvironmentId::new(),
            name: Name::parse(&input.name)?,
            display_name: display_text("displayName", input.display_name, DISPLAY_MAX)?,
            order: order(input.order)?,
            required_approvals: approvals(input.required_approvals.unwrap_or(0))?,
            policy: EnvironmentPolicy::default().patched(input.policy)?,
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        self.repo.create_environment(&environment).await?;
        tracing::info!(environment_id = %environment.id, "environment created");
        Ok(environment)
    }

    #[instrument(skip_all, fields(environment_id = %id), err)]
    pub async fn update_environment(&self, id: EnvironmentId, patch: EnvironmentPatch) -> Result<Environment> {
        let before = self.environment(id).await?;
        let mut after = before.clone();
        if let Some(name) = patch.name {
            after.name = Name::parse(&name)?;
        }
        if patch.display_name.is_some() {
            after.display_name = display_text("displayName", patch.display_name, DISPLAY_MAX)?;
        }
        if let Some(o) = patch.order {
            after.order = order(o)?;
        }
        if let Some(a) = patch.required_approvals {
            after.required_approvals = approvals(a)?;
        }
        after.policy = before.policy.patched(patch.policy)?;
        after.updated_at = Utc::now();
        after.revision = before.revision + 1;
        self.repo.update_environment(&before, &after).await?;
        Ok(after)
    }

    #[instrument(skip_all, fields(environment_id = %id), err)]
    pub async fn delete_environment(&self, id: EnvironmentId) -> Result<Environment> {
        let environment = self.environment(id).await?;
        self.repo.delete_environment(&environment).await?;
        tracing::info!("environment deleted");
        Ok(environment)
    }

    // ----- helpers -----

    /// Loads the named components in the order given; `NotFound` names the first missing one.
    async fn load_components(&self, ids: impl Iterator<Item = ComponentId>) -> Result<Vec<Component>> {
        let ids: Vec<ComponentId> = ids.collect();
        let found = self.repo.get_components(&ids).await?;
        ids.iter()
            .map(|id| {
                found.iter().find(|c| c.id == *id).cloned().ok_or_else(|| DomainError::not_found("component", id))
            })
            .collect()
    }

    /// Pins one component by version, digest or channel.
    async fn resolve(&self, selector: &ComponentSelector, component: &Component) -> Result<ReleaseComponent> {
        let chosen = match (&selector.version, &selector.digest, &selector.channel) {
            (Some(version), None, None) => {
                let version = parse_semver(version)?;
                let found = self.repo.versions_with_semver(component.id, &version).await?;
                // A tag that moved keeps its history; the newest push wins.
                found.into_iter().max_by_key(|v| v.pushed_at).ok_or_else(|| {
                    DomainError::Unresolvable(format!("component {} has no version {version}", component.name))
                })?
            }
            (None, Some(digest), None) => {
                let digest = Digest::parse(digest)?;
                let found = self.repo.versions_with_digest(component.id, &digest).await?;
                found.into_iter().max_by(|a, b| a.semver.cmp(&b.semver)).ok_or_else(|| {
                    DomainError::Unresolvable(format!(
                        "digest {digest} is not a version of component {}",
                        component.name
                    ))
                })?
            }
            (None, None, Some(channel)) => {
                let channel = Channel::parse(channel)?;
                let found = self.repo.list_versions(component.id, Some(&channel), 1).await?;
                found.into_iter().next().ok_or_else(|| {
                    DomainError::Unresolvable(format!(
                        "component {} has no version in channel {channel}",
                        component.name
                    ))
                })?
            }
            _ => {
                return Err(DomainError::validation(format!(
                    "component {}: give exactly one of version, digest or channel",
                    component.id
                )));
            }
        };
        Ok(pin(component, &chosen.tag, &chosen.semver, &chosen.digest, &chosen.channel))
    }

    async fn store_new_release(
        &self,
        name: Name,
        display_name: Option<String>,
        components: Vec<ReleaseComponent>,
        source_ref: Option<SourceRef>,
        metadata: serde_json::Map<String, serde_json::Value>,
        actor: &Actor,
    ) -> Result<Release> {
        let now = Utc::now();
        let release = Release {
            id: ReleaseId::new(),
            name,
            display_name,
            status: ReleaseStatus::Draft,
            components,
            source_ref,
            metadata,
            created_at: now,
            created_by: actor.0.clone(),
            updated_at: now,
            revision: 1,
        };
        self.repo.create_release(&release).await?;
        tracing::info!(release_id = %release.id, components = release.components.len(), "release created");
        Ok(release)
    }
}

fn pin(
    component: &Component,
    tag: &str,
    version: &semver::Version,
    digest: &Digest,
    channel: &Channel,
) -> ReleaseComponent {
    ReleaseComponent {
        component_id: component.id,
        component_name: component.name.to_string(),
        image: component.image_repository.to_string(),
        tag: tag.to_owned(),
        version: version.clone(),
        digest: digest.clone(),
        channel: channel.clone(),
    }
}

/// A release names each component once, and has between one and `MAX_COMPONENTS` of them.
fn check_selection(ids: impl Iterator<Item = ComponentId>) -> Result<()> {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(DomainError::validation(format!("component {id} is listed twice")));
        }
    }
    match seen.len() {
        0 => Err(DomainError::validation("a release needs at least one component")),
        n if n > Release::MAX_COMPONENTS => {
            Err(DomainError::validation(format!("a release holds at most {} components", Release::MAX_COMPONENTS)))
        }
        _ => Ok(()),
    }
}

fn metadata_object(raw: Option<serde_json::Value>) -> Result<serde_json::Map<String, serde_json::Value>> {
    match raw {
        None | Some(serde_json::Value::Null) => Ok(Default::default()),
        Some(serde_json::Value::Object(map)) => {
            if serde_json::to_vec(&map).map_or(0, |v| v.len()) > 16 * 1024 {
                return Err(DomainError::validation("metadata must be at most 16 KiB of JSON"));
            }
            Ok(map)
        }
        Some(_) => Err(DomainError::validation("metadata must be a JSON object")),
    }
}

fn bounded(field: &str, raw: Option<i64>, default: usize, max: usize) -> Result<usize> {
    match raw {
        None => Ok(default),
        Some(n) if n >= 1 && n as u64 <= max as u64 => Ok(n as usize),
        Some(n) => Err(DomainError::validation(format!("{field} must be between 1 and {max}, not {n}"))),
    }
}

fn order(raw: i64) -> Result<u32> {
    u32::try_from(raw)
        .ok()
        .filter(|o| *o <= 1_000_000)
        .ok_or_else(|| DomainError::validation(format!("order must be between 0 and 1000000, not {raw}")))
}

fn approvals(raw: i64) -> Result<u32> {
    let max = Environment::MAX_REQUIRED_APPROVALS;
    u32::try_from(raw)
        .ok()
        .filter(|a| *a <= max)
        .ok_or_else(|| DomainError::validation(format!("requiredApprovals must be between 0 and {max}, not {raw}")))
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn environment_numbers_are_bounded() {
        assert_eq!(order(0).unwrap(), 0);
        assert!(order(-1).is_err());
        assert!(approvals(11).is_err());
        assert_eq!(approvals(2).unwrap(), 2);
    }
}
