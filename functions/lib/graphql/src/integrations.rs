//! Registry integrations in GraphQL.

use async_graphql::{Context, Enum, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use gantry_domain::integrations::{self, IntegrationId, Integrations, NewIntegration, RegistryCredentials};

use gantry_domain::sync::VersionSync;
use gantry_domain::values::ComponentId;

use gantry_domain::access::{Action, Resource};

use crate::error::IntoGraphql;
use crate::guard::Can;
use crate::types::{SyncResult, VersionMap};

/// The kind of registry, which decides how its webhooks authenticate.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "gantry_domain::events::RegistrySource")]
pub enum RegistryType {
    /// CNCF distribution: `Authorization: Bearer <secret>` on its notifications.
    Distribution,
    /// GitHub Packages: HMAC-SHA256 in `X-Hub-Signature-256`.
    Github,
    /// Harbor: `Authorization` equal to the secret.
    Harbor,
    /// Docker Hub: the secret in the webhook URL.
    Dockerhub,
    /// Quay: the secret in the webhook URL.
    Quay,
    /// Amazon ECR through an EventBridge API destination: `Authorization` equal to the secret.
    Ecr,
    /// GitLab pipeline events: `X-Gitlab-Token` equal to the secret.
    Gitlab,
}

pub struct RegistryIntegration(pub integrations::RegistryIntegration);

#[Object]
impl RegistryIntegration {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    async fn display_name(&self) -> Option<&str> {
        self.0.display_name.as_deref()
    }
    #[graphql(name = "type")]
    async fn kind(&self) -> RegistryType {
        self.0.kind.into()
    }
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// Whether credentials are stored (they are never returned).
    async fn has_credentials(&self) -> bool {
        self.0.credentials.is_some()
    }
    /// Where the registry (or, for GITLAB, the CI) posts: append the secret where the path
    /// ends in `/{secret}`.
    async fn webhook_path(&self) -> String {
        let kind = self.0.kind;
        if kind == gantry_domain::events::RegistrySource::Gitlab {
            "/webhooks/ci/gitlab".to_owned()
        } else if secret_in_path(kind) {
            format!("/webhooks/registry/{kind}/{{secret}}")
        } else {
            format!("/webhooks/registry/{kind}")
        }
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Docker Hub and Quay cannot sign or send headers, so their secret is in the URL.
fn secret_in_path(kind: gantry_domain::events::RegistrySource) -> bool {
    use gantry_domain::events::RegistrySource::*;
    matches!(kind, Dockerhub | Quay)
}

/// An integration and its webhook secret. The secret is shown only here, once.
pub struct IntegrationWithSecret(pub integrations::WithSecret);

#[Object]
impl IntegrationWithSecret {
    async fn integration(&self) -> RegistryIntegration {
        RegistryIntegration(self.0.integration.clone())
    }
    async fn webhook_secret(&self) -> &str {
        &self.0.webhook_secret
    }
}

/// Either `username` and `password`, or `token`.
#[derive(InputObject)]
pub struct RegistryCredentialsInput {
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
}

#[derive(InputObject)]
pub struct CreateRegistryIntegrationInput {
    pub name: String,
    pub display_name: Option<String>,
    #[graphql(name = "type")]
    pub kind: RegistryType,
    /// Base URL of the registry API, such as `https://registry.example.com`.
    pub url: String,
    pub credentials: Option<RegistryCredentialsInput>,
}

fn integrations<'a>(ctx: &Context<'a>) -> &'a Integrations {
    ctx.data_unchecked::<Integrations>()
}

fn credentials(input: RegistryCredentialsInput) -> async_graphql::Result<RegistryCredentials> {
    match (input.username, input.password, input.token) {
        (Some(username), Some(password), None) => Ok(RegistryCredentials::Basic { username, password }),
        (None, None, Some(token)) => Ok(RegistryCredentials::Bearer { token }),
        _ => Err(gantry_domain::DomainError::validation("credentials take username and password, or token")).gql(),
    }
}

#[derive(Default)]
pub struct IntegrationQuery;

#[Object]
impl IntegrationQuery {
    /// Every registry integration, by name.
    #[graphql(
        guard = "Can(Resource::RegistryIntegration, Action::Read)",
        complexity = "crate::cost::list(crate::cost::ROOT_LIST, child_complexity)"
    )]
    async fn registry_integrations(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RegistryIntegration>> {
        Ok(integrations(ctx).list().await.gql()?.into_iter().map(RegistryIntegration).collect())
    }
}

#[derive(Default)]
pub struct IntegrationMutation;

#[Object]
impl IntegrationMutation {
    /// Registers a registry; the answer carries its webhook secret, which is not shown again.
    #[graphql(guard = "Can(Resource::RegistryIntegration, Action::Create)")]
    async fn create_registry_integration(
        &self,
        ctx: &Context<'_>,
        input: CreateRegistryIntegrationInput,
    ) -> async_graphql::Result<IntegrationWithSecret> {
        let input = NewIntegration {
            name: input.name,
            display_name: input.display_name,
            kind: input.kind.into(),
            url: input.url,
            credentials: input.credentials.map(credentials).transpose()?,
        };
        integrations(ctx).create(input).await.gql().map(IntegrationWithSecret)
    }

    /// Reads every tag of the component's repository from its registry and records what each
    /// points at. Without `forceRefresh`, tags already mapped are not read again.
    #[graphql(guard = "Can(Resource::VersionMap, Action::Create)")]
    async fn sync_versions(
        &self,
        ctx: &Context<'_>,
        component_id: ID,
        force_refresh: Option<bool>,
    ) -> async_graphql::Result<SyncResult> {
        let id = ComponentId::parse(&component_id).gql()?;
        let report =
            ctx.data_unchecked::<VersionSync>().sync_component(id, force_refresh.unwrap_or(false)).await.gql()?;
        Ok(SyncResult { synced: report.synced, versions: report.versions.into_iter().map(VersionMap).collect() })
    }

    /// Issues a new webhook secret; the old one stops working at once.
    #[graphql(guard = "Can(Resource::RegistryIntegration, Action::Update)")]
    async fn rotate_registry_integration_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<IntegrationWithSecret> {
        let id = IntegrationId::parse(&id).gql()?;
        integrations(ctx).rotate_secret(id).await.gql().map(IntegrationWithSecret)
    }
}
