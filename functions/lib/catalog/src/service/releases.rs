//! Releases: created from pinned or latest versions, compared, and tracked across environments.

use super::*;

impl Catalog {
    #[instrument(skip_all, fields(release_id = %id), err(level = "info"))]
    pub async fn release(&self, id: ReleaseId) -> Result<Release> {
        self.repo.get_release(id).await?.ok_or_else(|| DomainError::not_found("release", id))
    }

    #[instrument(skip_all, err(level = "info"))]
    pub async fn releases(
        &self,
        filter: ReleaseFilter,
        first: Option<i64>,
        after: Option<String>,
    ) -> Result<Page<Release>> {
        let first = bounded("first", first, DEFAULT_PAGE, MAX_PAGE)?;
        self.repo.list_releases(filter, &PageRequest { first, after }).await
    }

    /// How many releases match, counted up to [`MAX_COUNT`] so a count's cost is bounded.
    #[instrument(skip_all, err(level = "info"))]
    pub async fn count_releases(&self, filter: ReleaseFilter) -> Result<u64> {
        self.repo.count_releases(filter, MAX_COUNT).await
    }

    #[instrument(skip_all, err(level = "info"))]
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

    #[instrument(skip_all, err(level = "info"))]
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
                if !self.repo.environment_exists(env).await? {
                    return Err(DomainError::not_found("environment", env));
                }
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

    #[instrument(skip_all, fields(release_id = %id), err(level = "info"))]
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

    #[instrument(skip_all, fields(release_id = %id), err(level = "info"))]
    pub async fn deprecate_release(&self, id: ReleaseId) -> Result<Release> {
        self.update_release(id, ReleasePatch { status: Some(ReleaseStatus::Deprecated), ..Default::default() }).await
    }

    #[instrument(skip_all, fields(release_id = %id), err(level = "info"))]
    pub async fn delete_release(&self, id: ReleaseId) -> Result<Release> {
        let release = self.release(id).await?;
        if !release.status.is_deletable() {
            return Err(DomainError::conflict(format!("a {} release cannot be deleted", release.status.as_str())));
        }
        self.repo.delete_release(&release).await?;
        tracing::info!("release deleted");
        Ok(release)
    }

    #[instrument(skip_all, fields(release_id = %id, other_id = %other), err(level = "info"))]
    pub async fn compare_releases(&self, id: ReleaseId, other: ReleaseId) -> Result<ReleaseComparison> {
        let (from, to) = futures::try_join!(self.release(id), self.release(other))?;
        Ok(compare(&from, &to))
    }

    /// Loads the named components in the order given; `NotFound` names the first missing one.
    pub(super) async fn load_components(&self, ids: impl Iterator<Item = ComponentId>) -> Result<Vec<Component>> {
        let ids: Vec<ComponentId> = ids.collect();
        let found = self.repo.get_components(&ids).await?;
        ids.iter()
            .map(|id| {
                found.iter().find(|c| c.id == *id).cloned().ok_or_else(|| DomainError::not_found("component", id))
            })
            .collect()
    }

    /// Pins one component by version, digest or channel.
    pub(super) async fn resolve(
        &self,
        selector: &ComponentSelector,
        component: &Component,
    ) -> Result<ReleaseComponent> {
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

    pub(super) async fn store_new_release(
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

pub(super) fn pin(
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
pub(super) fn check_selection(ids: impl Iterator<Item = ComponentId>) -> Result<()> {
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

pub(super) fn metadata_object(raw: Option<serde_json::Value>) -> Result<serde_json::Map<String, serde_json::Value>> {
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
