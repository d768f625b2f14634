//! Keeping version maps in step with registries: from webhook events (through ingest) and
//! on demand (`syncVersions`). A webhook is a hint; the registry says what a tag points at.

use std::sync::Arc;

use chrono::Utc;
use tracing::instrument;

use crate::error::{DomainError, Result};
use crate::events::{ImageAction, QueuedImageEvent};
use crate::ids::{ComponentId, VersionMapId};
use crate::integrations::{Integrations, RegistryAccess, RegistryReader};
use crate::model::{Component, VersionMap, VersionSource};
use crate::ports::Repository;
use crate::service::{Actor, Catalog, NewReleaseFromLatest};
use crate::values::{Digest, semver_from_tag};

/// What applying one event did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    pub created: Vec<VersionMap>,
    pub removed: usize,
    pub releases: Vec<String>,
}

/// The answer to `syncVersions`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncReport {
    /// Version maps created by this sync.
    pub synced: usize,
    /// Every version the registry has for the component, highest first.
    pub versions: Vec<VersionMap>,
}

#[derive(Clone)]
pub struct VersionSync {
    repo: Arc<dyn Repository>,
    catalog: Catalog,
    integrations: Integrations,
    registry: Arc<dyn RegistryReader>,
}

/// The principal auto-releases are created by.
pub fn auto_release_actor() -> Actor {
    Actor("gantry:auto-release".to_owned())
}

impl VersionSync {
    pub fn new(
        catalog: Catalog,
        repo: Arc<dyn Repository>,
        integrations: Integrations,
        registry: Arc<dyn RegistryReader>,
    ) -> Self {
        Self { catalog, repo, integrations, registry }
    }

    /// Applies a queued registry event. Events about images no component releases, and
    /// tags that name no version, are acknowledged and dropped.
    #[instrument(skip_all, fields(delivery = %queued.delivery_key()), err(level = "info"))]
    pub async fn apply(&self, queued: QueuedImageEvent) -> Result<Applied> {
        let event = &queued.event;
        // The integration is read only when needed: to name the registry of an event that
        // does not, or to reach the registry for an image a component releases.
        let mut integration = None;
        let image = match &event.registry {
            Some(_) => event.image_repository(),
            None => {
                let found = self.integrations.get(queued.integration_id).await?;
                let image = format!("{}/{}", found.host(), event.repository);
                integration = Some(found);
                image
            }
        };
        let components = self.repo.components_by_image(&image).await?;
        if components.is_empty() {
            tracing::info!(image = %image, "no component releases this image");
            return Ok(Applied::default());
        }
        let Some(tag) = event.tag.as_deref() else { return Ok(Applied::default()) };
        let integration = match integration {
            Some(found) => found,
            None => self.integrations.get(queued.integration_id).await?,
        };
        let access = self.integrations.access(&integration)?;
        let mut applied = Applied::default();
        for component in components {
            let repository = crate::integrations::repository_path(&component);
            match event.action {
                ImageAction::TagDeleted => {
                    applied.removed += self.retire_tag(&component, &access, &repository, tag).await?;
                }
                ImageAction::Pushed => {
                    let created = self
                        .record_tag(
                            &component,
                            &access,
                            &repository,
                            tag,
                            event.digest.as_ref(),
                            VersionSource::Webhook,
                        )
                        .await?;
                    if let Some(version) = created {
                        if let Some(release) = self.auto_release(&component, &version).await? {
                            applied.releases.push(release);
                        }
                        applied.created.push(version);
                    }
                }
            }
        }
        Ok(applied)
    }

    /// Reads every tag of a component's repository and records what each points at.
    /// Without `force_refresh`, tags already mapped are not asked about again.
    #[instrument(skip_all, fields(component_id = %component_id), err(level = "info"))]
    pub async fn sync_component(&self, component_id: ComponentId, force_refresh: bool) -> Result<SyncReport> {
        let component = self.catalog.component(component_id).await?;
        let (access, repository) = self.integrations.registry_for(&component).await?;
        let mut report = SyncReport::default();
        for tag in self.registry.tags(&access, &repository).await? {
            if semver_from_tag(&tag).is_none() {
                continue;
            }
            if !force_refresh && !self.repo.versions_with_tag(component.id, &tag).await?.is_empty() {
                continue;
            }
            if let Some(version) =
                self.record_tag(&component, &access, &repository, &tag, None, VersionSource::Sync).await?
            {
                self.auto_release(&component, &version).await?;
                report.synced += 1;
            }
        }
        report.versions = self.repo.list_versions(component.id, None, crate::service::MAX_VERSIONS).await?;
        Ok(report)
    }

    /// Resolves `tag` at the registry and records it; `None` when the tag names no version,
    /// is gone, or is mapped to that digest already.
    async fn record_tag(
        &self,
        component: &Component,
        access: &RegistryAccess,
        repository: &str,
        tag: &str,
        claimed: Option<&Digest>,
        source: VersionSource,
    ) -> Result<Option<VersionMap>> {
        let Some(semver) = semver_from_tag(tag) else {
            tracing::info!(tag, "tag names no version");
            return Ok(None);
        };
        let Some(digest) = self.registry.digest_of(access, repository, tag).await? else {
            tracing::info!(tag, "tag no longer exists at the registry");
            return Ok(None);
        };
        let payload_digest = claimed.filter(|c| **c != digest).cloned();
        if let Some(claim) = &payload_digest {
            tracing::warn!(tag, claimed = %claim, registry = %digest, "webhook digest disagrees with the registry; the registry's wins");
        }
        let version = VersionMap {
            id: VersionMapId::new(),
            component_id: component.id,
            tag: tag.to_owned(),
            digest,
            channel: component.channel_for(&semver),
            semver,
            pushed_at: Utc::now(),
            source,
            removed: false,
            payload_digest,
        };
        match self.repo.create_version_map(&version).await {
            Ok(()) => Ok(Some(version)),
            // The same tag and digest again: one version map is enough, in use again if the
            // tag had been deleted meanwhile.
            Err(DomainError::Conflict(_)) => {
                self.restore(component.id, tag, &version.digest).await?;
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// Retires the version maps of a deleted tag. Events may arrive in any order, so the
    /// registry is asked first: a tag pushed again since keeps the map of what it points at
    /// now, and only maps of other digests are retired.
    async fn retire_tag(
        &self,
        component: &Component,
        access: &RegistryAccess,
        repository: &str,
        tag: &str,
    ) -> Result<usize> {
        let current = self.registry.digest_of(access, repository, tag).await?;
        self.mark_tag(component.id, tag, true, |v| current.as_ref() != Some(&v.digest)).await
    }

    /// Restores the retired map of `tag` to `digest`: the tag was pushed back to it.
    async fn restore(&self, component: ComponentId, tag: &str, digest: &Digest) -> Result<()> {
        self.mark_tag(component, tag, false, |v| v.digest == *digest).await.map(drop)
    }

    /// Sets `removed` on the maps of `tag` that `which` picks and that differ; how many.
    async fn mark_tag(
        &self,
        component: ComponentId,
        tag: &str,
        removed: bool,
        which: impl Fn(&VersionMap) -> bool,
    ) -> Result<usize> {
        let mut changed = 0;
        for version in self.repo.versions_with_tag(component, tag).await? {
            if version.removed != removed && which(&version) {
                self.repo.set_version_removed(&version, removed).await?;
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Cuts a release for a new stable version when the component asks for it.
    async fn auto_release(&self, component: &Component, version: &VersionMap) -> Result<Option<String>> {
        let Some(policy) = &component.auto_release else { return Ok(None) };
        if !version.semver.pre.is_empty() || version.channel != component.default_channel {
            return Ok(None);
        }
        let name = policy.render(component.name.as_str(), &version.semver);
        let input = NewReleaseFromLatest {
            name: name.clone(),
            display_name: None,
            channel: Some(version.channel.to_string()),
            component_ids: Some(vec![component.id]),
            pin_from: None,
        };
        match self.catalog.create_release_from_latest(input, &auto_release_actor()).await {
            Ok(release) => {
                tracing::info!(release_id = %release.id, "auto-release created");
                Ok(Some(release.name.to_string()))
            }
            // Redelivered or re-synced: the release exists already.
            Err(DomainError::Conflict(_)) => Ok(None),
            Err(err) => Err(err),
        }
    }
}
