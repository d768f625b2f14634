//! Service accounts in GraphQL.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use gantry_domain::access::{Action, Permission, Principal, Resource, Role};
use gantry_domain::accounts::{self, NewServiceAccount, ServiceAccountId, ServiceAccounts};

use crate::error::IntoGraphql;
use crate::guard::Can;

pub struct ServiceAccount(pub accounts::ServiceAccount);

#[Object]
impl ServiceAccount {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// `admin`, `release-creator`, `approver` or `viewer`.
    async fn roles(&self) -> Vec<&str> {
        self.0.roles.iter().map(|r| r.as_str()).collect()
    }
    async fn permissions(&self) -> Vec<PermissionView> {
        self.0
            .permissions
            .iter()
            .map(|p| PermissionView { resource: p.resource.to_string(), action: p.action.to_string() })
            .collect()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Permission")]
pub struct PermissionView {
    pub resource: String,
    pub action: String,
}

/// A new service account and its token, which is shown only here, once.
#[derive(SimpleObject)]
pub struct ServiceAccountWithToken {
    pub service_account: ServiceAccount,
    pub token: String,
}

#[derive(InputObject)]
pub struct PermissionInput {
    /// `component`, `version-map`, `release`, `environment`, `registry-integration`,
    /// `service-account`, `build` or `promotion`.
    pub resource: String,
    /// `read`, `create`, `update`, `delete` or `approve`.
    pub action: String,
}

#[derive(InputObject)]
pub struct CreateServiceAccountInput {
    pub name: String,
    pub description: Option<String>,
    #[graphql(default)]
    pub roles: Vec<String>,
    #[graphql(default)]
    pub permissions: Vec<PermissionInput>,
    /// `365d`, `12h` or `90m`; the token never expires when absent.
    pub expires_in: Option<String>,
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    #[graphql(
        guard = "Can(Resource::ServiceAccount, Action::Read)",
        complexity = "crate::cost::list(crate::cost::ROOT_LIST, child_complexity)"
    )]
    async fn service_accounts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ServiceAccount>> {
        Ok(ctx.data_unchecked::<ServiceAccounts>().list().await.gql()?.into_iter().map(ServiceAccount).collect())
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates a service account; the answer carries its token, which is not shown again.
    #[graphql(guard = "Can(Resource::ServiceAccount, Action::Create)")]
    async fn create_service_account(
        &self,
        ctx: &Context<'_>,
        input: CreateServiceAccountInput,
    ) -> async_graphql::Result<ServiceAccountWithToken> {
        let roles = input.roles.iter().map(|r| r.parse::<Role>()).collect::<Result<Vec<_>, _>>().gql()?;
        let permissions = input
            .permissions
            .iter()
            .map(|p| Ok(Permission { resource: p.resource.parse::<Resource>()?, action: p.action.parse::<Action>()? }))
            .collect::<Result<Vec<_>, gantry_domain::DomainError>>()
            .gql()?;
        let new = NewServiceAccount {
            name: input.name,
            description: input.description,
            roles,
            permissions,
            expires_in: input.expires_in,
        };
        let creator = ctx.data_unchecked::<Principal>();
        let (account, token) = ctx.data_unchecked::<ServiceAccounts>().create(new, creator).await.gql()?;
        Ok(ServiceAccountWithToken { service_account: ServiceAccount(account), token })
    }

    /// Revokes a service account; its token stops working at once.
    #[graphql(guard = "Can(Resource::ServiceAccount, Action::Delete)")]
    async fn revoke_service_account(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ServiceAccount> {
        let id = ServiceAccountId::parse(&id).gql()?;
        ctx.data_unchecked::<ServiceAccounts>().revoke(id).await.gql().map(ServiceAccount)
    }
}
