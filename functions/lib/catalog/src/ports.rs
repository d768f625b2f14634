//! What the catalogue's services need from storage. `gantry-store` implements it on DynamoDB.

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{ComponentId, EnvironmentId, ReleaseId};
use crate::model::{
    Component, DeployedComponent, RecentVersions, Release, ReleaseEnvironmentRecord, ReleaseStatus, VersionMap,
};
use crate::values::{Channel, Digest};

/// Narrows a release listing. Both filters may be combined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReleaseFilter {
    pub status: Option<ReleaseStatus>,
    pub component_id: Option<ComponentId>,
}

pub use gantry_kernel::pagination::{Page, PageRequest};

/// Storage for the release catalogue, one port per aggregate. Every write that must be
/// unique or ordered is conditional: a lost race comes back as `DomainError::Conflict` (or
/// `NotFound` where a referenced item vanished), never as a silent overwrite.
pub trait Repository: ComponentRepository + VersionRepository + ReleaseRepository + DeploymentRecords {}

impl<T> Repository for T where T: ComponentRepository + VersionRepository + ReleaseRepository + DeploymentRecords {}

/// Components.
#[async_trait]
pub trait ComponentRepository: Send + Sync {
    async fn create_component(&self, component: &Component) -> Result<()>;
    async fn get_component(&self, id: ComponentId) -> Result<Option<Component>>;
    /// Looks many components up at once; missing ids are left out.
    async fn get_components(&self, ids: &[ComponentId]) -> Result<Vec<Component>>;
    /// The current names of many components at once, reading nothing else; missing ids are
    /// left out.
    async fn component_names(&self, ids: &[ComponentId]) -> Result<Vec<(ComponentId, String)>>;
    async fn list_components(&self) -> Result<Vec<Component>>;
    /// Replaces `before` with `after` if nobody changed it since `before` was read.
    async fn update_component(&self, before: &Component, after: &Component) -> Result<()>;
    /// Deletes a component and its version maps; `Conflict` while a release uses it.
    async fn delete_component(&self, component: &Component) -> Result<()>;
    /// Components that release this image repository (`host/path`).
    async fn components_by_image(&self, image_repository: &str) -> Result<Vec<Component>>;
}

/// A component's version maps.
#[async_trait]
pub trait VersionRepository: Send + Sync {
    /// `NotFound` if the component is gone, `Conflict` if the same tag and digest are mapped already.
    async fn create_version_map(&self, version: &VersionMap) -> Result<()>;
    /// Highest semver first, optionally within one channel; removed tags are left out.
    async fn list_versions(
        &self,
        component: ComponentId,
        channel: Option<&Channel>,
        limit: usize,
    ) -> Result<Vec<VersionMap>>;
    async fn versions_with_semver(&self, component: ComponentId, version: &semver::Version) -> Result<Vec<VersionMap>>;
    async fn versions_with_digest(&self, component: ComponentId, digest: &Digest) -> Result<Vec<VersionMap>>;
    /// Every version map of a tag, removed or not.
    async fn versions_with_tag(&self, component: ComponentId, tag: &str) -> Result<Vec<VersionMap>>;
    /// The recent versions of each component that keeps them (components created before
    /// they were kept have none).
    async fn recent_versions(&self, components: &[ComponentId]) -> Result<Vec<(ComponentId, RecentVersions)>>;
    /// Marks a version map removed (its tag was deleted at the registry) or, when the tag
    /// points at its digest again, restored.
    async fn set_version_removed(&self, version: &VersionMap, removed: bool) -> Result<()>;
}

/// Releases.
#[async_trait]
pub trait ReleaseRepository: Send + Sync {
    /// `Conflict` if the name is taken; `NotFound` if a component vanished meanwhile.
    async fn create_release(&self, release: &Release) -> Result<()>;
    async fn get_release(&self, id: ReleaseId) -> Result<Option<Release>>;
    /// Newest first.
    async fn list_releases(&self, filter: ReleaseFilter, page: &PageRequest) -> Result<Page<Release>>;
    /// How many releases match, reading no more than `cap` of them: `cap` when there are more.
    async fn count_releases(&self, filter: ReleaseFilter, cap: u64) -> Result<u64>;
    async fn update_release(&self, before: &Release, after: &Release) -> Result<()>;
    async fn delete_release(&self, release: &Release) -> Result<()>;
}

/// What runs where: written by promotions.
#[async_trait]
pub trait DeploymentRecords: Send + Sync {
    /// Whether an environment of this id exists (the catalogue knows environments by id only).
    async fn environment_exists(&self, environment: EnvironmentId) -> Result<bool>;
    async fn deployed_components(&self, environment: EnvironmentId) -> Result<Vec<DeployedComponent>>;
    async fn release_environment_records(&self, release: ReleaseId) -> Result<Vec<ReleaseEnvironmentRecord>>;
    /// The records of many releases in these environments at once (batched reads).
    async fn release_environment_records_of(
        &self,
        releases: &[ReleaseId],
        environments: &[EnvironmentId],
    ) -> Result<Vec<ReleaseEnvironmentRecord>>;
    /// Records that `release` now runs in `environment`: repeatable writes, made while a
    /// promotion holds the environment's lock (an environment is not deleted meanwhile).
    async fn record_release_deployed(
        &self,
        record: &ReleaseEnvironmentRecord,
        components: &[DeployedComponent],
    ) -> Result<()>;
}
