//! Components and their version maps.

use super::*;

impl Catalog {
    #[instrument(skip_all, err(level = "info"))]
    pub async fn components(&self) -> Result<Vec<Component>> {
        self.repo.list_components().await
    }

    #[instrument(skip_all, fields(component_id = %id), err(level = "info"))]
    pub async fn component(&self, id: ComponentId) -> Result<Component> {
        self.repo.get_component(id).await?.ok_or_else(|| DomainError::not_found("component", id))
    }

    /// The current names of many components, for lists that show them; missing ids are
    /// left out.
    #[instrument(skip_all, fields(count = ids.len()), err(level = "info"))]
    pub async fn component_names(&self, ids: &[ComponentId]) -> Result<Vec<(ComponentId, String)>> {
        self.repo.component_names(ids).await
    }

    #[instrument(skip_all, err(level = "info"))]
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

    #[instrument(skip_all, fields(component_id = %id), err(level = "info"))]
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

    #[instrument(skip_all, fields(component_id = %id), err(level = "info"))]
    pub async fn delete_component(&self, id: ComponentId) -> Result<Component> {
        let component = self.component(id).await?;
        self.repo.delete_component(&component).await?;
        tracing::info!("component deleted");
        Ok(component)
    }

    // ----- version maps -----

    #[instrument(skip_all, fields(component_id = %id), err(level = "info"))]
    pub async fn component_versions(
        &self,
        id: ComponentId,
        channel: Option<String>,
        limit: Option<i64>,
    ) -> Result<Vec<VersionMap>> {
        self.component(id).await?;
        let channel = channel.as_deref().map(Channel::parse).transpose()?;
        let limit = bounded("limit", limit, DEFAULT_VERSIONS, MAX_VERSIONS)?;
        self.repo.list_versions(id, channel.as_ref(), limit).await
    }

    /// The versions of a component the caller has read already (a `Component`'s
    /// `versions` field, [`RECENT_VERSIONS`] unless `limit` says otherwise): from its
    /// recent versions when they hold the answer, else by query.
    #[instrument(skip_all, fields(component_id = %id), err(level = "info"))]
    pub async fn versions_of(
        &self,
        id: ComponentId,
        channel: Option<String>,
        limit: Option<i64>,
        recent: Option<RecentVersions>,
    ) -> Result<Vec<VersionMap>> {
        let channel = channel.as_deref().map(Channel::parse).transpose()?;
        let limit = bounded("limit", limit, RECENT_VERSIONS, MAX_VERSIONS)?;
        match recent.and_then(|r| r.serve(channel.as_ref(), limit)) {
            Some(versions) => Ok(versions),
            None => self.repo.list_versions(id, channel.as_ref(), limit).await,
        }
    }

    /// Batch lookup for data loaders: the recent versions of the components that keep them.
    #[instrument(skip_all, fields(count = ids.len()), err(level = "info"))]
    pub async fn recent_versions(&self, ids: &[ComponentId]) -> Result<HashMap<ComponentId, RecentVersions>> {
        Ok(self.repo.recent_versions(ids).await?.into_iter().collect())
    }

    #[instrument(skip_all, fields(component_id = %input.component_id), err(level = "info"))]
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
}
