//! GraphQL output types: thin views over domain values.

use async_graphql::{ComplexObject, Context, Enum, ID, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use gantry_domain::model;
use gantry_domain::service::Catalog;

use crate::error::IntoGraphql;
use crate::loader::Components;

/// Where a release sits in its life. `PROMOTING` and `DEPLOYED` follow promotions.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "gantry_domain::model::ReleaseStatus")]
pub enum ReleaseStatus {
    Draft,
    Ready,
    Promoting,
    Deployed,
    Deprecated,
}

/// How a component's tags become versions.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "gantry_domain::model::VersioningStrategy")]
pub enum VersioningStrategy {
    /// Tags are semantic versions, with or without a leading `v`.
    Semver,
}

/// Where a version map came from.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "gantry_domain::model::VersionSource")]
pub enum VersionSource {
    Manual,
    Webhook,
    Sync,
    Ci,
}

/// How a release stands in one environment.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "gantry_domain::model::DeploymentStatus")]
pub enum DeploymentStatus {
    NotDeployed,
    Deploying,
    Deployed,
    Failed,
    RolledBack,
    Superseded,
}

/// A container image that Gantry releases.
pub struct Component(pub model::Component);

#[Object]
impl Component {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    async fn display_name(&self) -> Option<&str> {
        self.0.display_name.as_deref()
    }
    /// The OCI repository, with registry host when it is not the default.
    async fn image_repository(&self) -> &str {
        self.0.image_repository.as_str()
    }
    async fn registry_integration_id(&self) -> Option<&str> {
        self.0.registry_integration_id.as_deref()
    }
    async fn versioning_strategy(&self) -> VersioningStrategy {
        self.0.versioning_strategy.into()
    }
    /// The channel a release version lands on.
    async fn default_channel(&self) -> &str {
        self.0.default_channel.as_str()
    }
    /// Pre-release names mapped to channels, ahead of the usual rule.
    #[graphql(complexity = "crate::cost::list(crate::cost::NESTED_LIST, child_complexity)")]
    async fn channel_overrides(&self) -> Vec<ChannelOverride> {
        self.0
            .channel_overrides
            .iter()
            .map(|(prerelease, channel)| ChannelOverride {
                prerelease: prerelease.clone(),
                channel: channel.to_string(),
            })
            .collect()
    }
    /// Set when new stable versions are released automatically.
    async fn auto_release(&self) -> Option<AutoRelease> {
        self.0.auto_release.as_ref().map(|a| AutoRelease { name_pattern: a.name_pattern.clone() })
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Versions, highest semver first (20 unless `limit` says otherwise, at most 500). The
    /// 20 highest come with the component, in one batch for a whole list of components;
    /// more, or a channel with fewer among them, cost a query each.
    #[graphql(complexity = "crate::cost::list(crate::cost::recent_versions(limit), child_complexity)")]
    async fn versions(
        &self,
        ctx: &Context<'_>,
        channel: Option<String>,
        limit: Option<i64>,
    ) -> async_graphql::Result<Vec<VersionMap>> {
        let recent = ctx.data_unchecked::<crate::loader::Recent>().load_one(self.0.id).await.gql()?;
        let catalog = ctx.data_unchecked::<Catalog>();
        let versions = catalog.versions_of(self.0.id, channel, limit, recent).await.gql()?;
        Ok(versions.into_iter().map(VersionMap).collect())
    }
}

/// A tag pinned to the digest it pointed at.
pub struct VersionMap(pub model::VersionMap);

#[Object]
impl VersionMap {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn component_id(&self) -> ID {
        ID(self.0.component_id.to_string())
    }
    async fn tag(&self) -> &str {
        &self.0.tag
    }
    async fn digest(&self) -> &str {
        self.0.digest.as_str()
    }
    async fn semver(&self) -> String {
        self.0.semver.to_string()
    }
    async fn channel(&self) -> &str {
        self.0.channel.as_str()
    }
    async fn pushed_at(&self) -> DateTime<Utc> {
        self.0.pushed_at
    }
    async fn source(&self) -> VersionSource {
        self.0.source.into()
    }
    /// The tag was deleted at the registry; the map stays as history and is never chosen.
    async fn removed(&self) -> bool {
        self.0.removed
    }
    /// The digest a webhook claimed, when it disagreed with the registry.
    async fn payload_digest(&self) -> Option<&str> {
        self.0.payload_digest.as_ref().map(|d| d.as_str())
    }
}

#[derive(SimpleObject)]
pub struct ChannelOverride {
    pub prerelease: String,
    pub channel: String,
}

#[derive(SimpleObject)]
pub struct AutoRelease {
    /// The release name, with `{component}` and `{version}` filled in.
    pub name_pattern: String,
}

/// What `syncVersions` found.
#[derive(SimpleObject)]
pub struct SyncResult {
    /// Version maps created by this sync.
    pub synced: usize,
    /// Every version of the component, highest semver first.
    #[graphql(complexity = "crate::cost::list(crate::cost::NESTED_LIST, child_complexity)")]
    pub versions: Vec<VersionMap>,
}

/// An immutable bundle of component digests.
pub struct Release(pub model::Release);

#[Object]
impl Release {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    async fn display_name(&self) -> Option<&str> {
        self.0.display_name.as_deref()
    }
    async fn status(&self) -> ReleaseStatus {
        self.0.status.into()
    }
    #[graphql(complexity = "crate::cost::list(crate::cost::NESTED_LIST, child_complexity)")]
    async fn components(&self) -> Vec<ReleaseComponent<'_>> {
        self.0.components.iter().map(ReleaseComponent).collect()
    }
    async fn source_ref(&self) -> Option<SourceRef> {
        self.0.source_ref.clone().map(SourceRef::from)
    }
    /// Free-form JSON object.
    async fn metadata(&self) -> Json<serde_json::Map<String, serde_json::Value>> {
        Json(self.0.metadata.clone())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn component_count(&self) -> usize {
        self.0.components.len()
    }
    /// Every environment in promotion order, with this release's status there.
    async fn state(&self, ctx: &Context<'_>) -> async_graphql::Result<ReleaseState> {
        let states = ctx.data_unchecked::<crate::loader::ReleaseStates>();
        let state = states.load_one(self.0.id).await.gql()?;
        Ok(ReleaseState::from(state.unwrap_or_default()))
    }
    /// CI builds of the release's `sourceRef.commitSha`, newest report last.
    #[graphql(complexity = "crate::cost::list(crate::cost::NESTED_LIST, child_complexity)")]
    async fn builds(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Build>> {
        let Some(commit) = self.0.source_ref.as_ref().and_then(|s| s.commit_sha.as_deref()) else {
            return Ok(Vec::new());
        };
        if gantry_domain::builds::commit_sha(commit).is_err() {
            return Ok(Vec::new());
        }
        let builds = ctx.data_unchecked::<gantry_domain::builds::Builds>().for_commit(commit).await.gql()?;
        Ok(builds.into_iter().map(Build).collect())
    }
    /// The production release manifest, sealed with `manifest_digest`. When the last
    /// environment guards its supply chain, each service names its `attestation_ref` and
    /// `sbom_ref`, and `signatures` lists the image signatures that verify under its keys
    /// (read from the registry: costly in lists).
    #[graphql(complexity = "crate::cost::MANIFEST")]
    async fn manifest(&self, ctx: &Context<'_>) -> async_graphql::Result<Json<serde_json::Value>> {
        let promotions = ctx.data_unchecked::<gantry_domain::promotions::Promotions>();
        promotions.release_manifest(&self.0).await.gql().map(Json)
    }
}

/// One component of a release, pinned by digest.
/// A component of a release, borrowed from the release: a page of releases copies none.
pub struct ReleaseComponent<'a>(pub &'a model::ReleaseComponent);

#[Object]
impl ReleaseComponent<'_> {
    async fn component_id(&self) -> ID {
        ID(self.0.component_id.to_string())
    }
    /// The component's current name.
    async fn component_name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let loader = ctx.data_unchecked::<Components>();
        let current = loader.load_one(self.0.component_id).await.gql()?;
        Ok(current.map_or_else(|| self.0.component_name.clone(), |name| name.to_string()))
    }
    /// The image repository when the release was cut.
    async fn image(&self) -> &str {
        &self.0.image
    }
    async fn tag(&self) -> &str {
        &self.0.tag
    }
    async fn version(&self) -> String {
        self.0.version.to_string()
    }
    async fn digest(&self) -> &str {
        self.0.digest.as_str()
    }
    async fn channel(&self) -> &str {
        self.0.channel.as_str()
    }
    /// `image@digest`: what a target pulls.
    async fn image_ref(&self) -> String {
        format!("{}@{}", self.0.image, self.0.digest)
    }
}

/// The commit a release was cut from.
#[derive(SimpleObject)]
pub struct SourceRef {
    pub scm_integration_id: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub commit_sha: Option<String>,
    pub tag: Option<String>,
    /// When the commit was made, as the release was given it.
    pub committed_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<model::SourceRef> for SourceRef {
    fn from(s: model::SourceRef) -> Self {
        Self {
            scm_integration_id: s.scm_integration_id,
            repository: s.repository,
            branch: s.branch,
            commit_sha: s.commit_sha,
            tag: s.tag,
            committed_at: s.committed_at,
        }
    }
}

/// A release across every environment.
#[derive(SimpleObject)]
pub struct ReleaseState {
    #[graphql(complexity = "crate::cost::list(crate::cost::NESTED_LIST, child_complexity)")]
    pub environments: Vec<EnvironmentReleaseState>,
}

impl From<Vec<model::EnvironmentState>> for ReleaseState {
    fn from(rows: Vec<model::EnvironmentState>) -> Self {
        let environments = rows
            .into_iter()
            .map(|row| EnvironmentReleaseState {
                environment_id: ID(row.environment.id.to_string()),
                environment_name: row
                    .environment
                    .display_name
                    .clone()
                    .unwrap_or_else(|| row.environment.name.to_string()),
                status: row.status.into(),
                deployed_at: row.deployed_at,
            })
            .collect();
        Self { environments }
    }
}

#[derive(SimpleObject)]
pub struct EnvironmentReleaseState {
    pub environment_id: ID,
    /// The display name, or the name when there is none.
    pub environment_name: String,
    pub status: DeploymentStatus,
    pub deployed_at: Option<DateTime<Utc>>,
}

/// What changes between two releases.
#[derive(SimpleObject)]
pub struct ReleaseComparison {
    /// In the other release only.
    #[graphql(complexity = "crate::cost::list(crate::cost::NESTED_LIST, child_complexity)")]
    pub added: Vec<ComponentRef>,
    /// In the first release only.
    #[graphql(complexity = "crate::cost::list(crate::cost::NESTED_LIST, child_complexity)")]
    pub removed: Vec<ComponentRef>,
    /// In both, with different digests.
    #[graphql(complexity = "crate::cost::list(crate::cost::NESTED_LIST, child_complexity)")]
    pub changed: Vec<ComponentChange>,
}

#[derive(SimpleObject)]
pub struct ComponentRef {
    pub component_id: ID,
    pub component_name: String,
}

#[derive(SimpleObject)]
pub struct ComponentChange {
    pub component_id: ID,
    /// The component's name.
    pub component: String,
    pub from_version: String,
    pub to_version: String,
    pub from_digest: String,
    pub to_digest: String,
}

impl From<model::ReleaseComparison> for ReleaseComparison {
    fn from(c: model::ReleaseComparison) -> Self {
        let refs = |v: Vec<model::ComponentRef>| {
            v.into_iter()
                .map(|r| ComponentRef {
                    component_id: ID(r.component_id.to_string()),
                    component_name: r.component_name,
                })
                .collect()
        };
        Self {
            added: refs(c.added),
            removed: refs(c.removed),
            changed: c
                .changed
                .into_iter()
                .map(|ch| ComponentChange {
                    component_id: ID(ch.component_id.to_string()),
                    component: ch.component,
                    from_version: ch.from_version.to_string(),
                    to_version: ch.to_version.to_string(),
                    from_digest: ch.from_digest.to_string(),
                    to_digest: ch.to_digest.to_string(),
                })
                .collect(),
        }
    }
}

gantry_graphql_kit::edge!(ReleaseEdge, Release);

/// A page of releases, newest first.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ReleaseConnection {
    pub edges: Vec<ReleaseEdge>,
    pub page_info: crate::connection::PageInfo,
    #[graphql(skip)]
    pub filter: gantry_domain::ports::ReleaseFilter,
    /// Counted alongside the page when the query asks for it.
    #[graphql(skip)]
    pub total: Option<u64>,
}

#[ComplexObject]
impl ReleaseConnection {
    /// How many releases match the filter, across all pages: counted up to 10,000, so a
    /// listing of more reads 10,000 (and a count never reads more rows than that).
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        if let Some(total) = self.total {
            return Ok(total);
        }
        ctx.data_unchecked::<Catalog>().count_releases(self.filter).await.gql()
    }
}

/// How a CI build ended.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "gantry_domain::builds::BuildStatus")]
pub enum BuildStatus {
    Success,
    Failure,
    Running,
    Cancelled,
}

/// A CI build of a commit.
pub struct Build(pub gantry_domain::builds::BuildRecord);

#[Object]
impl Build {
    /// `ci`, `jenkins`, `github` or `gitlab`.
    async fn source(&self) -> &str {
        &self.0.source
    }
    async fn build_id(&self) -> &str {
        &self.0.build_id
    }
    async fn commit_sha(&self) -> &str {
        &self.0.commit_sha
    }
    async fn status(&self) -> BuildStatus {
        self.0.status.into()
    }
    async fn pipeline(&self) -> Option<&str> {
        self.0.pipeline.as_deref()
    }
    async fn url(&self) -> Option<&str> {
        self.0.url.as_deref()
    }
    async fn tests_passed(&self) -> Option<u64> {
        self.0.test_results.map(|t| t.passed)
    }
    async fn tests_failed(&self) -> Option<u64> {
        self.0.test_results.map(|t| t.failed)
    }
    async fn tests_skipped(&self) -> Option<u64> {
        self.0.test_results.map(|t| t.skipped)
    }
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
}

/// A name and its value (an environment variable, a label).
#[derive(async_graphql::SimpleObject)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

#[derive(async_graphql::InputObject)]
pub struct KeyValueInput {
    pub key: String,
    pub value: String,
}
