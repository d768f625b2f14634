//! Root query and mutation: each resolver parses its input, makes one service call and
//! maps the result.

use async_graphql::{Context, ID, InputObject, Json, Object};
use chrono::{DateTime, Utc};
use gantry_domain::ports::ReleaseFilter;
use gantry_domain::service::{
    Actor, Catalog, ComponentPatch, EnvironmentPatch, NewComponent, NewEnvironment, NewRelease, NewReleaseFromLatest,
    NewVersionMap, ReleasePatch,
};
use gantry_domain::values::{ComponentId, EnvironmentId, ReleaseId};

use gantry_domain::access::{Action, Resource, Role};
use gantry_domain::model::PolicyPatch;
use gantry_domain::service::PolicySource;

use crate::delivery::Environment;
use crate::error::IntoGraphql;
use crate::guard::Can;
use crate::types::{
    Component, Release, ReleaseComparison, ReleaseConnection, ReleaseState, ReleaseStatus, VersionMap,
    VersioningStrategy,
};

fn environments<'a>(ctx: &Context<'a>) -> &'a gantry_domain::service::Environments {
    ctx.data_unchecked::<gantry_domain::service::Environments>()
}

fn catalog<'a>(ctx: &Context<'a>) -> &'a Catalog {
    ctx.data_unchecked::<Catalog>()
}

fn actor<'a>(ctx: &Context<'a>) -> Actor {
    ctx.data_opt::<Actor>().cloned().unwrap_or_else(Actor::anonymous)
}

fn component_id(id: &ID) -> async_graphql::Result<ComponentId> {
    ComponentId::parse(id).gql()
}

fn release_id(id: &ID) -> async_graphql::Result<ReleaseId> {
    ReleaseId::parse(id).gql()
}

fn environment_id(id: &ID) -> async_graphql::Result<EnvironmentId> {
    EnvironmentId::parse(id).gql()
}

#[derive(Default)]
pub struct CatalogQuery;

#[Object]
impl CatalogQuery {
    /// Every component, by name.
    #[graphql(
        guard = "Can(Resource::Component, Action::Read)",
        complexity = "crate::cost::list(crate::cost::ROOT_LIST, child_complexity)"
    )]
    async fn components(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Component>> {
        let components = catalog(ctx).components().await.gql()?;
        if ctx.look_ahead().field("versions").exists() {
            crate::loader::preload_recent(ctx, components.iter().map(|c| c.id).collect()).await.gql()?;
        }
        Ok(components.into_iter().map(Component).collect())
    }

    #[graphql(guard = "Can(Resource::Component, Action::Read)")]
    async fn component(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Component> {
        catalog(ctx).component(component_id(&id)?).await.gql().map(Component)
    }

    /// A component's versions, highest semver first (50 unless `limit` says otherwise, at most 500).
    #[graphql(
        guard = "Can(Resource::VersionMap, Action::Read)",
        complexity = "crate::cost::list(crate::cost::versions(limit), child_complexity)"
    )]
    async fn component_versions(
        &self,
        ctx: &Context<'_>,
        component_id: ID,
        channel: Option<String>,
        limit: Option<i64>,
    ) -> async_graphql::Result<Vec<VersionMap>> {
        let id = self::component_id(&component_id)?;
        Ok(catalog(ctx).component_versions(id, channel, limit).await.gql()?.into_iter().map(VersionMap).collect())
    }

    /// A component's version maps, highest semver first.
    #[graphql(
        guard = "Can(Resource::VersionMap, Action::Read)",
        complexity = "crate::cost::list(gantry_domain::service::MAX_VERSIONS, child_complexity)"
    )]
    async fn version_maps(
        &self,
        ctx: &Context<'_>,
        component_id: ID,
        channel: Option<String>,
    ) -> async_graphql::Result<Vec<VersionMap>> {
        let id = self::component_id(&component_id)?;
        let limit = Some(gantry_domain::service::MAX_VERSIONS as i64);
        Ok(catalog(ctx).component_versions(id, channel, limit).await.gql()?.into_iter().map(VersionMap).collect())
    }

    /// Releases, newest first; 20 a page unless `first` says otherwise (at most 100).
    #[graphql(
        guard = "Can(Resource::Release, Action::Read)",
        complexity = "crate::cost::list(crate::cost::page(first), child_complexity)"
    )]
    async fn releases(
        &self,
        ctx: &Context<'_>,
        status: Option<ReleaseStatus>,
        component_id: Option<ID>,
        first: Option<i64>,
        after: Option<String>,
    ) -> async_graphql::Result<ReleaseConnection> {
        let filter = ReleaseFilter {
            status: status.map(Into::into),
            component_id: component_id.as_ref().map(self::component_id).transpose()?,
        };
        // The count, when asked for, runs alongside the page rather than after it.
        let counting = ctx.look_ahead().field("totalCount").exists();
        let count = async { if counting { catalog(ctx).count_releases(filter).await.map(Some) } else { Ok(None) } };
        let (page, total) = futures::try_join!(catalog(ctx).releases(filter, first, after), count).gql()?;
        // Load every component name of the page in one batch before the fields ask for
        // them one by one, so the request count never depends on resolver timing.
        let names = ctx.look_ahead().field("edges").field("node").field("components").field("componentName");
        if names.exists() {
            let ids = page.items.iter().flat_map(|(_, r)| r.components.iter().map(|c| c.component_id)).collect();
            crate::loader::preload_components(ctx, ids).await.gql()?;
        }
        let (edges, page_info) = crate::types::ReleaseEdge::page(page, Release);
        Ok(ReleaseConnection { edges, page_info, filter, total })
    }

    #[graphql(guard = "Can(Resource::Release, Action::Read)")]
    async fn release(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Release> {
        let release = catalog(ctx).release(release_id(&id)?).await.gql()?;
        if ctx.look_ahead().field("components").field("componentName").exists() {
            let ids = release.components.iter().map(|c| c.component_id).collect();
            crate::loader::preload_components(ctx, ids).await.gql()?;
        }
        Ok(Release(release))
    }

    /// Every environment in promotion order, with the release's status there.
    #[graphql(guard = "Can(Resource::Release, Action::Read)")]
    async fn release_state(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ReleaseState> {
        environments(ctx).release_state(release_id(&id)?).await.gql().map(ReleaseState::from)
    }

    /// What changes when going from release `id` to release `otherId`.
    #[graphql(guard = "Can(Resource::Release, Action::Read)")]
    async fn compare_releases(
        &self,
        ctx: &Context<'_>,
        id: ID,
        other_id: ID,
    ) -> async_graphql::Result<ReleaseComparison> {
        catalog(ctx).compare_releases(release_id(&id)?, release_id(&other_id)?).await.gql().map(ReleaseComparison::from)
    }

    /// Every environment in promotion order.
    #[graphql(
        guard = "Can(Resource::Environment, Action::Read)",
        complexity = "crate::cost::list(crate::cost::ROOT_LIST, child_complexity)"
    )]
    async fn environments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Environment>> {
        Ok(environments(ctx).environments().await.gql()?.into_iter().map(Environment).collect())
    }

    #[graphql(guard = "Can(Resource::Environment, Action::Read)")]
    async fn environment(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Environment> {
        environments(ctx).environment(environment_id(&id)?).await.gql().map(Environment)
    }
}

#[derive(InputObject)]
pub struct CreateComponentInput {
    /// Unique: letters, digits, '.', '_' and '-'.
    pub name: String,
    pub display_name: Option<String>,
    /// An OCI repository without tag or digest, such as `registry.example.com/team/api`.
    pub image_repository: String,
    pub registry_integration_id: Option<String>,
    /// `SEMVER` when not given.
    pub versioning_strategy: Option<VersioningStrategy>,
    /// `stable` when not given.
    pub default_channel: Option<String>,
    /// Cut a release for each new stable version that arrives from the registry.
    pub auto_release: Option<AutoReleaseInput>,
    /// Pre-release names mapped to channels, ahead of the usual rule.
    #[graphql(default)]
    pub channel_overrides: Vec<ChannelOverrideInput>,
}

/// Versions whose pre-release is named `prerelease` (`2.0.0-preview.1`: `preview`) land on `channel`.
#[derive(InputObject)]
pub struct ChannelOverrideInput {
    pub prerelease: String,
    pub channel: String,
}

fn overrides(input: Vec<ChannelOverrideInput>) -> Vec<(String, String)> {
    input.into_iter().map(|o| (o.prerelease, o.channel)).collect()
}

#[derive(InputObject)]
pub struct AutoReleaseInput {
    /// The release name, with `{component}` and `{version}` filled in, such as
    /// `{component}-{version}`. On update, an empty pattern turns auto-release off.
    pub name_pattern: String,
}

#[derive(InputObject)]
pub struct UpdateComponentInput {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub image_repository: Option<String>,
    pub registry_integration_id: Option<String>,
    pub versioning_strategy: Option<VersioningStrategy>,
    pub default_channel: Option<String>,
    pub auto_release: Option<AutoReleaseInput>,
    /// Replaces the component's channel overrides.
    pub channel_overrides: Option<Vec<ChannelOverrideInput>>,
}

#[derive(InputObject)]
pub struct CreateVersionMapInput {
    pub component_id: ID,
    pub tag: String,
    /// `sha256:` followed by 64 lowercase hex characters.
    pub digest: String,
    /// Taken from the tag when not given.
    pub semver: Option<String>,
    /// Taken from the pre-release (`2.0.0-rc.1` → `rc`), else the component's default channel.
    pub channel: Option<String>,
    /// Now when not given.
    pub pushed_at: Option<DateTime<Utc>>,
}

/// Chooses one component of a release by exactly one of `version`, `digest` or `channel`.
#[derive(InputObject, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseComponentInput {
    pub component_id: ID,
    /// A semver of one of the component's version maps.
    pub version: Option<String>,
    /// A digest of one of the component's version maps.
    pub digest: Option<String>,
    /// The highest semver in this channel.
    pub channel: Option<String>,
}

#[derive(InputObject, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRefInput {
    pub scm_integration_id: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub commit_sha: Option<String>,
    pub tag: Option<String>,
    /// When the commit was made: where lead time for changes starts (`insights`). Unless
    /// set here, the time a CI build of the commit reported is used.
    pub committed_at: Option<DateTime<Utc>>,
}

// Read into the domain's `NewRelease` through its JSON form, as the REST endpoint is.
#[derive(InputObject, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateReleaseInput {
    /// Unique: letters, digits, '.', '_' and '-'.
    pub name: String,
    pub display_name: Option<String>,
    pub components: Vec<ReleaseComponentInput>,
    pub source_ref: Option<SourceRefInput>,
    /// A JSON object.
    pub metadata: Option<Json<serde_json::Value>>,
}

#[derive(InputObject)]
pub struct PinFromInput {
    pub environment_id: ID,
}

#[derive(InputObject)]
pub struct CreateReleaseFromLatestInput {
    pub name: String,
    pub display_name: Option<String>,
    /// Each component's default channel when not given.
    pub channel: Option<String>,
    /// Every component when not given.
    pub component_ids: Option<Vec<ID>>,
    /// Components deployed in this environment keep the digest deployed there.
    pub pin_from: Option<PinFromInput>,
}

#[derive(InputObject)]
pub struct UpdateReleaseInput {
    pub display_name: Option<String>,
    pub metadata: Option<Json<serde_json::Value>>,
    /// `DRAFT`, `READY` or `DEPRECATED`; promotions set the others.
    pub status: Option<ReleaseStatus>,
}

/// An environment's promotion policy; on update, only the fields given change.
#[derive(InputObject)]
pub struct EnvironmentPolicyInput {
    /// Roles whose holders may approve (`approver` and `admin` unless set).
    pub approver_roles: Option<Vec<String>>,
    pub allow_self_approval: Option<bool>,
    /// Gate: the release's commit has a successful CI build.
    pub require_build_success: Option<bool>,
    /// Gate: minutes the release must have run in the previous environment.
    pub min_soak_minutes: Option<i64>,
    /// Gate: promotions here are never automatic.
    pub manual_only: Option<bool>,
    /// Releases deployed to the previous environment are proposed here by themselves.
    pub auto_promote: Option<bool>,
    /// A failed deployment here rolls back by itself.
    pub auto_rollback: Option<bool>,
    /// Gate: the keys image signatures must verify under, replacing those set (at most 16;
    /// an empty list removes the gate).
    pub signing_keys: Option<Vec<crate::delivery::signatures::SigningKeyInput>>,
    /// Gate: keyless signers whose certificates stand as signatures, replacing those set
    /// (at most 16); they need `sigstoreTrustRoot`.
    pub signing_identities: Option<Vec<crate::delivery::keyless::SigningIdentityInput>>,
    /// The Sigstore trust root (`trusted_root.json`: Fulcio CAs and Rekor keys) keyless
    /// signatures are checked against, offline. An empty string removes it.
    pub sigstore_trust_root: Option<String>,
    /// The SLSA builder ids the admission policy trusts, replacing those set (at most 32).
    pub trusted_builders: Option<Vec<String>>,
    /// The admission policy in Rego (package `gantry.admission`, a `deny` set of reasons);
    /// compiled when set, refused when it does not compile. An empty string restores the
    /// default policy.
    pub admission_policy: Option<String>,
    /// A deployment rolled back within this many hours counts as a change failure in
    /// `insights` (1 to 2,160; 24 unless set).
    pub change_failure_window_hours: Option<i64>,
}

impl EnvironmentPolicyInput {
    fn patch(self) -> async_graphql::Result<(PolicyPatch, PolicySource)> {
        let approver_roles = self
            .approver_roles
            .map(|r| r.iter().map(|r| r.parse::<Role>()).collect::<Result<Vec<_>, _>>())
            .transpose()
            .gql()?;
        let patch = PolicyPatch {
            approver_roles,
            allow_self_approval: self.allow_self_approval,
            require_build_success: self.require_build_success,
            min_soak_minutes: self.min_soak_minutes,
            change_failure_window_hours: self.change_failure_window_hours,
            manual_only: self.manual_only,
            auto_promote: self.auto_promote,
            auto_rollback: self.auto_rollback,
            signing_keys: self
                .signing_keys
                .map(|keys| keys.into_iter().map(|k| k.given()).collect::<async_graphql::Result<Vec<_>>>())
                .transpose()?,
            signing_identities: self
                .signing_identities
                .map(|ids| ids.into_iter().map(|i| i.parse()).collect::<async_graphql::Result<Vec<_>>>())
                .transpose()?,
            sigstore_trust_root: self.sigstore_trust_root.map(|r| Some(r).filter(|r| !r.trim().is_empty())),
            trusted_builders: self.trusted_builders,
            admission_policy: None,
        };
        Ok((patch, PolicySource(self.admission_policy)))
    }
}

#[derive(InputObject)]
pub struct CreateEnvironmentInput {
    pub name: String,
    pub display_name: Option<String>,
    /// Position on the promotion path; unique, lowest first.
    pub order: i64,
    /// 0 when not given; at most 10.
    pub required_approvals: Option<i64>,
    /// Where the environment's service is reached (shown with its CI deployments).
    pub url: Option<String>,
    /// The Slack channel (id or `#name`) approval cards of promotions here are posted to.
    pub slack_channel: Option<String>,
    #[graphql(flatten)]
    pub policy: EnvironmentPolicyInput,
}

#[derive(InputObject)]
pub struct UpdateEnvironmentInput {
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub order: Option<i64>,
    pub required_approvals: Option<i64>,
    /// An empty string removes it.
    pub url: Option<String>,
    /// An empty string removes it.
    pub slack_channel: Option<String>,
    #[graphql(flatten)]
    pub policy: EnvironmentPolicyInput,
}

#[derive(Default)]
pub struct CatalogMutation;

#[Object]
impl CatalogMutation {
    #[graphql(guard = "Can(Resource::Component, Action::Create)")]
    async fn create_component(
        &self,
        ctx: &Context<'_>,
        input: CreateComponentInput,
    ) -> async_graphql::Result<Component> {
        let input = NewComponent {
            name: input.name,
            display_name: input.display_name,
            image_repository: input.image_repository,
            registry_integration_id: input.registry_integration_id,
            versioning_strategy: input.versioning_strategy.map(Into::into),
            default_channel: input.default_channel,
            auto_release: input.auto_release.map(|a| a.name_pattern),
            channel_overrides: overrides(input.channel_overrides),
        };
        catalog(ctx).create_component(input).await.gql().map(Component)
    }

    #[graphql(guard = "Can(Resource::Component, Action::Update)")]
    async fn update_component(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateComponentInput,
    ) -> async_graphql::Result<Component> {
        let patch = ComponentPatch {
            name: input.name,
            display_name: input.display_name,
            image_repository: input.image_repository,
            registry_integration_id: input.registry_integration_id,
            versioning_strategy: input.versioning_strategy.map(Into::into),
            default_channel: input.default_channel,
            auto_release: input.auto_release.map(|a| a.name_pattern),
            channel_overrides: input.channel_overrides.map(overrides),
        };
        catalog(ctx).update_component(component_id(&id)?, patch).await.gql().map(Component)
    }

    /// Deletes a component and its version maps; `CONFLICT` while a release uses it.
    #[graphql(guard = "Can(Resource::Component, Action::Delete)")]
    async fn delete_component(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Component> {
        catalog(ctx).delete_component(component_id(&id)?).await.gql().map(Component)
    }

    #[graphql(guard = "Can(Resource::VersionMap, Action::Create)")]
    async fn create_version_map(
        &self,
        ctx: &Context<'_>,
        input: CreateVersionMapInput,
    ) -> async_graphql::Result<VersionMap> {
        let input = NewVersionMap {
            component_id: component_id(&input.component_id)?,
            tag: input.tag,
            digest: input.digest,
            semver: input.semver,
            channel: input.channel,
            pushed_at: input.pushed_at,
        };
        catalog(ctx).create_version_map(input).await.gql().map(VersionMap)
    }

    #[graphql(guard = "Can(Resource::Release, Action::Create)")]
    async fn create_release(&self, ctx: &Context<'_>, input: CreateReleaseInput) -> async_graphql::Result<Release> {
        let json = serde_json::to_value(input).map_err(gantry_domain::DomainError::internal).gql()?;
        let input = NewRelease::from_json(json).gql()?;
        catalog(ctx).create_release(input, &actor(ctx)).await.gql().map(Release)
    }

    /// A release of the latest version of each component in a channel, optionally keeping
    /// what runs in one environment.
    #[graphql(guard = "Can(Resource::Release, Action::Create)")]
    async fn create_release_from_latest(
        &self,
        ctx: &Context<'_>,
        input: CreateReleaseFromLatestInput,
    ) -> async_graphql::Result<Release> {
        let input = NewReleaseFromLatest {
            name: input.name,
            display_name: input.display_name,
            channel: input.channel,
            component_ids: input.component_ids.map(|ids| ids.iter().map(component_id).collect()).transpose()?,
            pin_from: input.pin_from.map(|p| environment_id(&p.environment_id)).transpose()?,
        };
        catalog(ctx).create_release_from_latest(input, &actor(ctx)).await.gql().map(Release)
    }

    #[graphql(guard = "Can(Resource::Release, Action::Update)")]
    async fn update_release(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateReleaseInput,
    ) -> async_graphql::Result<Release> {
        let patch = ReleasePatch {
            display_name: input.display_name,
            metadata: input.metadata.map(|m| m.0),
            status: input.status.map(Into::into),
        };
        catalog(ctx).update_release(release_id(&id)?, patch).await.gql().map(Release)
    }

    /// Deletes a `DRAFT`, `READY` or `DEPRECATED` release.
    #[graphql(guard = "Can(Resource::Release, Action::Delete)")]
    async fn delete_release(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Release> {
        catalog(ctx).delete_release(release_id(&id)?).await.gql().map(Release)
    }

    /// Marks a release deprecated: final, and no longer promotable.
    #[graphql(guard = "Can(Resource::Release, Action::Update)")]
    async fn deprecate_release(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Release> {
        catalog(ctx).deprecate_release(release_id(&id)?).await.gql().map(Release)
    }

    #[graphql(guard = "Can(Resource::Environment, Action::Create)")]
    async fn create_environment(
        &self,
        ctx: &Context<'_>,
        input: CreateEnvironmentInput,
    ) -> async_graphql::Result<Environment> {
        let (policy, admission_policy) = input.policy.patch()?;
        let input = NewEnvironment {
            name: input.name,
            display_name: input.display_name,
            order: input.order,
            required_approvals: input.required_approvals,
            url: input.url,
            slack_channel: input.slack_channel,
            policy,
            admission_policy,
        };
        environments(ctx).create_environment(input).await.gql().map(Environment)
    }

    #[graphql(guard = "Can(Resource::Environment, Action::Update)")]
    async fn update_environment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateEnvironmentInput,
    ) -> async_graphql::Result<Environment> {
        let (policy, admission_policy) = input.policy.patch()?;
        let patch = EnvironmentPatch {
            name: input.name,
            display_name: input.display_name,
            order: input.order,
            required_approvals: input.required_approvals,
            url: input.url,
            slack_channel: input.slack_channel,
            policy,
            admission_policy,
        };
        environments(ctx).update_environment(environment_id(&id)?, patch).await.gql().map(Environment)
    }

    /// Deletes an environment; `CONFLICT` while anything is deployed there.
    #[graphql(guard = "Can(Resource::Environment, Action::Delete)")]
    async fn delete_environment(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Environment> {
        environments(ctx).delete_environment(environment_id(&id)?).await.gql().map(Environment)
    }
}
