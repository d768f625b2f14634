//! CI integrations in GraphQL: the GitHub, GitLab and Jenkins servers Gantry calls.

use async_graphql::{Context, Enum, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use gantry_domain::DomainError;
use gantry_domain::access::{Action, Resource};
use gantry_domain::ci::{self, CiAuth, CiCredentials, CiIntegrationId, CiIntegrations, NewCiIntegration};

use crate::error::IntoGraphql;
use crate::guard::Can;

/// A CI system.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "gantry_domain::ci::CiProvider")]
pub enum CiProvider {
    /// GitHub or GitHub Enterprise Server: a token or a GitHub App installation.
    Github,
    /// GitLab: a token and a project.
    Gitlab,
    /// Jenkins: a user and an API token.
    Jenkins,
}

/// The kind of credential an integration holds.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum CiAuthKind {
    Token,
    GithubApp,
    Basic,
}

/// A CI integration, and its webhook secret in the one answer that issued it.
pub struct CiIntegration(pub ci::CiIntegration, pub Option<String>);

impl CiIntegration {
    fn stored(integration: ci::CiIntegration) -> Self {
        Self(integration, None)
    }

    fn issued(with: ci::CiWithSecret) -> Self {
        Self(with.integration, with.webhook_secret)
    }
}

#[Object]
impl CiIntegration {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    async fn display_name(&self) -> Option<&str> {
        self.0.display_name.as_deref()
    }
    async fn provider(&self) -> CiProvider {
        self.0.provider.into()
    }
    /// Base URL of the API.
    async fn api_url(&self) -> &str {
        &self.0.api_url
    }
    /// GitLab: the project's id or path.
    async fn project(&self) -> Option<&str> {
        self.0.project.as_deref()
    }
    /// The kind of credential held; the credential itself is never returned.
    async fn auth_kind(&self) -> CiAuthKind {
        match self.0.auth {
            CiAuth::Token => CiAuthKind::Token,
            CiAuth::GithubApp { .. } => CiAuthKind::GithubApp,
            CiAuth::Basic { .. } => CiAuthKind::Basic,
        }
    }
    /// A GitHub App's id.
    async fn github_app_id(&self) -> Option<u64> {
        match self.0.auth {
            CiAuth::GithubApp { app_id, .. } => Some(app_id),
            _ => None,
        }
    }
    /// A GitHub App's installation id.
    async fn installation_id(&self) -> Option<u64> {
        match self.0.auth {
            CiAuth::GithubApp { installation_id, .. } => Some(installation_id),
            _ => None,
        }
    }
    /// The Jenkins user.
    async fn username(&self) -> Option<&str> {
        match &self.0.auth {
            CiAuth::Basic { username } => Some(username),
            _ => None,
        }
    }
    /// Where the CI system posts its webhooks (GitHub `workflow_run`, GitLab `Pipeline
    /// Hook`), with [`webhookSecret`] as the HMAC key or `X-Gitlab-Token`; null for Jenkins.
    async fn webhook_path(&self) -> Option<String> {
        self.0.webhook_path()
    }
    /// The webhook secret: only in the answer of `createCiIntegration` and
    /// `rotateCiIntegrationWebhookSecret`, never again.
    async fn webhook_secret(&self) -> Option<&str> {
        self.1.as_deref()
    }
    async fn credentials_rotated_at(&self) -> DateTime<Utc> {
        self.0.credentials_rotated_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// One of: `token` (GitHub, GitLab); `appId`, `installationId` and `privateKey` (a GitHub
/// App); `username` and `apiToken` (Jenkins).
#[derive(InputObject)]
pub struct CiCredentialsInput {
    pub token: Option<String>,
    pub app_id: Option<u64>,
    pub installation_id: Option<u64>,
    /// The GitHub App's private key, PEM.
    pub private_key: Option<String>,
    pub username: Option<String>,
    pub api_token: Option<String>,
}

impl TryFrom<CiCredentialsInput> for CiCredentials {
    type Error = DomainError;

    fn try_from(input: CiCredentialsInput) -> Result<Self, DomainError> {
        let CiCredentialsInput { token, app_id, installation_id, private_key, username, api_token } = input;
        match (token, app_id, installation_id, private_key, username, api_token) {
            (Some(token), None, None, None, None, None) => Ok(CiCredentials::Token { token }),
            (None, Some(app_id), Some(installation_id), Some(private_key), None, None) => {
                Ok(CiCredentials::GithubApp { app_id, installation_id, private_key })
            }
            (None, None, None, None, Some(username), Some(api_token)) => {
                Ok(CiCredentials::Basic { username, api_token })
            }
            _ => Err(DomainError::validation(
                "credentials take token; or appId, installationId and privateKey; or username and apiToken",
            )),
        }
    }
}

#[derive(InputObject)]
pub struct CreateCiIntegrationInput {
    pub name: String,
    pub display_name: Option<String>,
    pub provider: CiProvider,
    /// Base URL of the API; GitHub's and GitLab's public ones when left out.
    pub api_url: Option<String>,
    /// GitLab: the project's id or full path.
    pub project: Option<String>,
    pub credentials: CiCredentialsInput,
}

fn service<'a>(ctx: &Context<'a>) -> &'a CiIntegrations {
    ctx.data_unchecked::<CiIntegrations>()
}

#[derive(Default)]
pub struct CiQuery;

#[Object]
impl CiQuery {
    /// Every CI integration, by name.
    #[graphql(
        guard = "Can(Resource::CiIntegration, Action::Read)",
        complexity = "crate::cost::list(crate::cost::ROOT_LIST, child_complexity)"
    )]
    async fn ci_integrations(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CiIntegration>> {
        Ok(service(ctx).list().await.gql()?.into_iter().map(CiIntegration::stored).collect())
    }

    #[graphql(guard = "Can(Resource::CiIntegration, Action::Read)")]
    async fn ci_integration(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<CiIntegration> {
        let id = CiIntegrationId::parse(&id).gql()?;
        service(ctx).get(id).await.gql().map(CiIntegration::stored)
    }
}

#[derive(Default)]
pub struct CiMutation;

#[Object]
impl CiMutation {
    /// Registers a CI system Gantry may call; its credentials are sealed and not shown again.
    /// The answer holds the integration's webhook secret, this once.
    #[graphql(guard = "Can(Resource::CiIntegration, Action::Create)")]
    async fn create_ci_integration(
        &self,
        ctx: &Context<'_>,
        input: CreateCiIntegrationInput,
    ) -> async_graphql::Result<CiIntegration> {
        let input = NewCiIntegration {
            name: input.name,
            display_name: input.display_name,
            provider: input.provider.into(),
            api_url: input.api_url,
            project: input.project,
            credentials: CiCredentials::try_from(input.credentials).gql()?,
        };
        service(ctx).create(input).await.gql().map(CiIntegration::issued)
    }

    /// Issues a new webhook secret (shown in this answer only); webhooks that prove the old
    /// one are refused from now on.
    #[graphql(guard = "Can(Resource::CiIntegration, Action::Update)")]
    async fn rotate_ci_integration_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<CiIntegration> {
        let id = CiIntegrationId::parse(&id).gql()?;
        service(ctx).rotate_webhook_secret(id).await.gql().map(CiIntegration::issued)
    }

    /// Replaces an integration's credentials; the old ones are not used again.
    #[graphql(guard = "Can(Resource::CiIntegration, Action::Update)")]
    async fn rotate_ci_integration_credentials(
        &self,
        ctx: &Context<'_>,
        id: ID,
        credentials: CiCredentialsInput,
    ) -> async_graphql::Result<CiIntegration> {
        let id = CiIntegrationId::parse(&id).gql()?;
        let credentials = CiCredentials::try_from(credentials).gql()?;
        service(ctx).rotate_credentials(id, credentials).await.gql().map(CiIntegration::stored)
    }
}
