//! Service accounts: long-lived tokens for CI and bots. The token is shown once; only its
//! hash is stored, and revoking the account stops the token at once.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::access::{Permission, Principal, Role};
use crate::error::{DomainError, Result};
use crate::values::{Digest, Name, long_text};

pub use crate::ids::ServiceAccountId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccount {
    pub id: ServiceAccountId,
    pub name: Name,
    pub description: Option<String>,
    pub roles: Vec<Role>,
    pub permissions: Vec<Permission>,
    /// sha256 of the token; the token itself is never stored.
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ServiceAccount {
    pub fn subject(&self) -> String {
        format!("service-account:{}", self.name)
    }

    pub fn principal(&self) -> Principal {
        Principal::new(self.subject(), self.roles.clone(), self.permissions.clone())
    }
}

/// What a service account's token says; signed by a [`TokenIssuer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub account: ServiceAccountId,
    pub subject: String,
    pub roles: Vec<Role>,
    pub permissions: Vec<Permission>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Signs tokens Gantry issues.
pub trait TokenIssuer: Send + Sync {
    fn issue(&self, grant: &TokenGrant) -> Result<String>;
}

#[async_trait]
pub trait ServiceAccountRepository: Send + Sync {
    /// `Conflict` if the name is taken.
    async fn create_service_account(&self, account: &ServiceAccount) -> Result<()>;
    async fn get_service_account(&self, id: ServiceAccountId) -> Result<Option<ServiceAccount>>;
    async fn list_service_accounts(&self) -> Result<Vec<ServiceAccount>>;
    /// Sets `revoked_at` unless it is set already.
    async fn revoke_service_account(&self, account: &ServiceAccount, at: DateTime<Utc>) -> Result<()>;
}

/// Input for `createServiceAccount`.
#[derive(Debug, Clone)]
pub struct NewServiceAccount {
    pub name: String,
    pub description: Option<String>,
    pub roles: Vec<Role>,
    pub permissions: Vec<Permission>,
    /// `30d`, `12h`, `90m`; never expires when absent.
    pub expires_in: Option<String>,
}

/// Parses `<n>d`, `<n>h` or `<n>m`, up to ten years.
pub fn parse_duration(raw: &str) -> Result<Duration> {
    let invalid =
        || DomainError::validation(format!("expiresIn {raw:?} must be a number followed by d, h or m, such as 365d"));
    let (number, unit) = raw.trim().split_at(raw.trim().len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| invalid())?;
    let minutes = match unit {
        "d" => n.checked_mul(24 * 60),
        "h" => n.checked_mul(60),
        "m" => Some(n),
        _ => None,
    }
    .filter(|m| *m > 0 && *m <= 10 * 366 * 24 * 60)
    .ok_or_else(invalid)?;
    Ok(Duration::minutes(minutes))
}

#[derive(Clone)]
pub struct ServiceAccounts {
    repo: Arc<dyn ServiceAccountRepository>,
    issuer: Arc<dyn TokenIssuer>,
}

impl ServiceAccounts {
    pub fn new(repo: Arc<dyn ServiceAccountRepository>, issuer: Arc<dyn TokenIssuer>) -> Self {
        Self { repo, issuer }
    }

    /// Creates an account and its token, which the caller sees this once.
    #[instrument(skip_all, err(level = "info"))]
    pub async fn create(&self, input: NewServiceAccount, creator: &Principal) -> Result<(ServiceAccount, String)> {
        let name = Name::parse(&input.name)?;
        let description = long_text("description", input.description, 500)?;
        if input.roles.is_empty() && input.permissions.is_empty() {
            return Err(DomainError::validation("a service account needs at least one role or permission"));
        }
        // Nobody hands out more than they hold.
        for role in &input.roles {
            if *role == Role::Admin && !creator.roles.contains(&Role::Admin) {
                return Err(DomainError::Forbidden("only an admin can create an admin service account".into()));
            }
        }
        let now = Utc::now();
        let expires_at = input.expires_in.as_deref().map(parse_duration).transpose()?.map(|d| now + d);
        let id = ServiceAccountId::new();
        let grant = TokenGrant {
            account: id,
            subject: format!("service-account:{name}"),
            roles: input.roles.clone(),
            permissions: input.permissions.clone(),
            expires_at,
        };
        let token = self.issuer.issue(&grant)?;
        let account = ServiceAccount {
            id,
            name,
            description,
            roles: input.roles,
            permissions: input.permissions,
            token_hash: Digest::of(token.as_bytes()).to_string(),
            created_at: now,
            created_by: creator.subject.clone(),
            expires_at,
            revoked_at: None,
        };
        self.repo.create_service_account(&account).await?;
        tracing::info!(service_account_id = %account.id, "service account created");
        Ok((account, token))
    }

    #[instrument(skip_all, err(level = "info"))]
    pub async fn list(&self) -> Result<Vec<ServiceAccount>> {
        self.repo.list_service_accounts().await
    }

    #[instrument(skip_all, fields(service_account_id = %id), err(level = "info"))]
    pub async fn revoke(&self, id: ServiceAccountId) -> Result<ServiceAccount> {
        let mut account =
            self.repo.get_service_account(id).await?.ok_or_else(|| DomainError::not_found("service account", id))?;
        if account.revoked_at.is_some() {
            return Err(DomainError::conflict(format!("service account {} is revoked already", account.name)));
        }
        let now = Utc::now();
        self.repo.revoke_service_account(&account, now).await?;
        account.revoked_at = Some(now);
        tracing::info!("service account revoked");
        Ok(account)
    }

    /// The account behind a verified token, if it still stands: not revoked, not expired,
    /// and the token is the one issued for it.
    pub async fn check(&self, id: ServiceAccountId, token: &str) -> Result<Principal> {
        let unauthorized = |why: &str| DomainError::Unauthorized(why.to_owned());
        let account =
            self.repo.get_service_account(id).await?.ok_or_else(|| unauthorized("unknown service account"))?;
        if account.revoked_at.is_some() {
            return Err(unauthorized("the service account is revoked"));
        }
        if account.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(unauthorized("the service account has expired"));
        }
        if account.token_hash != Digest::of(token.as_bytes()).as_str() {
            return Err(unauthorized("the token is not this service account's"));
        }
        Ok(account.principal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("365d").unwrap(), Duration::days(365));
        assert_eq!(parse_duration("12h").unwrap(), Duration::hours(12));
        assert_eq!(parse_duration("90m").unwrap(), Duration::minutes(90));
        for bad in ["", "d", "0d", "-1d", "1y", "1.5d", "99999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
