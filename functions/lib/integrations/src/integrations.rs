//! Registry integrations: where Gantry reads tags from, and the secret each registry's
//! webhooks must present. Secrets and credentials are stored sealed, never in plain text.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::error::{DomainError, Result};
use crate::events::RegistrySource;
use crate::model::Component;
use crate::values::{Digest, Name, display_text};

pub use crate::ids::IntegrationId;

pub use gantry_kernel::secrets::{Sealed, SecretBox, random_key};

/// How Gantry signs in to a registry to read tags and manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum RegistryCredentials {
    Basic { username: String, password: String },
    Bearer { token: String },
}

/// A registry Gantry trusts, and the webhook secret it presents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryIntegration {
    pub id: IntegrationId,
    pub name: Name,
    pub display_name: Option<String>,
    pub kind: RegistrySource,
    /// Base URL of the registry API, such as `https://registry.example.com`.
    pub url: String,
    /// Sealed JSON of [`RegistryCredentials`], when the registry needs them.
    pub credentials: Option<Sealed>,
    pub webhook_secret: Sealed,
    /// sha256 of the webhook secret: how a presented token finds its integration.
    pub webhook_secret_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revision: u64,
}

impl RegistryIntegration {
    /// `url` without its scheme: the host components name in `imageRepository`.
    pub fn host(&self) -> &str {
        self.url.split_once("://").map_or(self.url.as_str(), |(_, rest)| rest).trim_end_matches('/')
    }
}

/// Who an integration is, as a webhook's authentication needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegrationRef {
    pub id: IntegrationId,
    pub kind: RegistrySource,
}

impl From<&RegistryIntegration> for IntegrationRef {
    fn from(integration: &RegistryIntegration) -> Self {
        Self { id: integration.id, kind: integration.kind }
    }
}

/// Storage for integrations.
#[async_trait]
pub trait IntegrationRepository: Send + Sync {
    /// `Conflict` if the name is taken.
    async fn create_integration(&self, integration: &RegistryIntegration) -> Result<()>;
    async fn get_integration(&self, id: IntegrationId) -> Result<Option<RegistryIntegration>>;
    async fn list_integrations(&self) -> Result<Vec<RegistryIntegration>>;
    async fn integrations_of_kind(&self, kind: RegistrySource) -> Result<Vec<RegistryIntegration>>;
    /// The integration whose webhook secret has this hash, in one read.
    async fn integration_by_secret_hash(&self, hash: &str) -> Result<Option<IntegrationRef>>;
    /// Replaces the secret (and its lookup entry) if nobody changed the integration meanwhile.
    async fn replace_integration_secret(&self, before: &RegistryIntegration, after: &RegistryIntegration)
    -> Result<()>;
}

/// Input for `createRegistryIntegration`.
#[derive(Debug, Clone)]
pub struct NewIntegration {
    pub name: String,
    pub display_name: Option<String>,
    pub kind: RegistrySource,
    pub url: String,
    pub credentials: Option<RegistryCredentials>,
}

/// An integration with its webhook secret, which is shown this once.
#[derive(Debug, Clone)]
pub struct WithSecret {
    pub integration: RegistryIntegration,
    pub webhook_secret: String,
}

#[derive(Clone)]
pub struct Integrations {
    repo: Arc<dyn IntegrationRepository>,
    secrets: Arc<dyn SecretBox>,
}

/// The lookup hash of a webhook secret.
pub fn secret_hash(secret: &str) -> String {
    Digest::of(secret.as_bytes()).to_string()
}

/// A fresh secret: 32 random bytes, hex-encoded, prefixed so it is recognisable in a config.
pub(crate) fn new_secret() -> Result<String> {
    Ok(format!("gantry_whsec_{}", hex::encode(random_key()?)))
}

/// As [`crate::outbound::http_url`], for a URL Gantry calls: `http://` only to a loopback host.
pub(crate) fn callable_url<'a>(what: &str, raw: &'a str) -> Result<Option<(&'a str, &'a str)>> {
    crate::outbound::parse(what, raw.trim().trim_end_matches('/'), 2000)?;
    Ok(crate::outbound::http_url(raw))
}

fn check_url(raw: &str) -> Result<String> {
    match callable_url("url", raw)? {
        Some((url, "")) => Ok(url.to_owned()),
        _ => Err(DomainError::validation(format!("url {raw:?} must be http(s)://host[:port] with no path"))),
    }
}

impl Integrations {
    pub fn new(repo: Arc<dyn IntegrationRepository>, secrets: Arc<dyn SecretBox>) -> Self {
        Self { repo, secrets }
    }

    #[instrument(skip_all, err(level = "info"))]
    pub async fn create(&self, input: NewIntegration) -> Result<WithSecret> {
        let name = Name::parse(&input.name)?;
        let display_name = display_text("displayName", input.display_name, 200)?;
        let url = check_url(&input.url)?;
        let credentials = match &input.credentials {
            None => None,
            Some(c) => {
                let empty = match c {
                    RegistryCredentials::Basic { username, password } => username.is_empty() || password.is_empty(),
                    RegistryCredentials::Bearer { token } => token.is_empty(),
                };
                if empty {
                    return Err(DomainError::validation("credentials must not be empty"));
                }
                Some(self.secrets.seal(&serde_json::to_vec(c).map_err(DomainError::internal)?)?)
            }
        };
        let secret = new_secret()?;
        let now = Utc::now();
        let integration = RegistryIntegration {
            id: IntegrationId::new(),
            name,
            display_name,
            kind: input.kind,
            url,
            credentials,
            webhook_secret: self.secrets.seal(secret.as_bytes())?,
            webhook_secret_hash: secret_hash(&secret),
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        self.repo.create_integration(&integration).await?;
        tracing::info!(integration_id = %integration.id, kind = %integration.kind, "registry integration created");
        Ok(WithSecret { integration, webhook_secret: secret })
    }

    #[instrument(skip_all, err(level = "info"))]
    pub async fn list(&self) -> Result<Vec<RegistryIntegration>> {
        self.repo.list_integrations().await
    }

    #[instrument(skip_all, fields(integration_id = %id), err(level = "info"))]
    pub async fn get(&self, id: IntegrationId) -> Result<RegistryIntegration> {
        self.repo.get_integration(id).await?.ok_or_else(|| DomainError::not_found("registry integration", id))
    }

    #[instrument(skip_all, fields(integration_id = %id), err(level = "info"))]
    pub async fn rotate_secret(&self, id: IntegrationId) -> Result<WithSecret> {
        let before = self.get(id).await?;
        let secret = new_secret()?;
        let mut after = before.clone();
        after.webhook_secret = self.secrets.seal(secret.as_bytes())?;
        after.webhook_secret_hash = secret_hash(&secret);
        after.updated_at = Utc::now();
        after.revision = before.revision + 1;
        self.repo.replace_integration_secret(&before, &after).await?;
        tracing::info!("webhook secret rotated");
        Ok(WithSecret { integration: after, webhook_secret: secret })
    }

    /// The integration whose secret is `presented`, if it is of `kind`.
    pub async fn by_presented_secret(&self, kind: RegistrySource, presented: &str) -> Result<Option<IntegrationRef>> {
        Ok(self.repo.integration_by_secret_hash(&secret_hash(presented)).await?.filter(|i| i.kind == kind))
    }

    /// Every integration of `kind`, with its webhook secret opened, for signature checks.
    pub async fn with_secrets_of_kind(&self, kind: RegistrySource) -> Result<Vec<(RegistryIntegration, Vec<u8>)>> {
        let all = self.repo.integrations_of_kind(kind).await?;
        all.into_iter()
            .map(|i| {
                let secret = self.secrets.open(&i.webhook_secret)?;
                Ok((i, secret))
            })
            .collect()
    }

    /// The credentials to read from an integration's registry.
    pub fn credentials(&self, integration: &RegistryIntegration) -> Result<Option<RegistryCredentials>> {
        integration
            .credentials
            .as_ref()
            .map(|sealed| serde_json::from_slice(&self.secrets.open(sealed)?).map_err(DomainError::internal))
            .transpose()
    }

    /// How a component's registry is read: through the integration the component names, or
    /// the one whose host its image repository starts with; and the repository's path there.
    pub async fn registry_for(&self, component: &Component) -> Result<(RegistryAccess, String)> {
        let mut found = self.registries_for(&[component]).await?;
        found.pop().unwrap_or_else(|| Err(DomainError::internal("no registry answer for the component")))
    }

    /// As [`Self::registry_for`], for many components with one listing of the integrations
    /// (a release's components are read at once, not one query each).
    pub async fn registries_for(&self, components: &[&Component]) -> Result<Vec<Result<(RegistryAccess, String)>>> {
        let all = self.list().await?;
        Ok(components
            .iter()
            .map(|component| {
                let integration = match &component.registry_integration_id {
                    Some(id) => {
                        let id = IntegrationId::parse(id)?;
                        all.iter()
                            .find(|i| i.id == id)
                            .ok_or_else(|| DomainError::not_found("registry integration", id))?
                    }
                    None => {
                        let image = component.image_repository.as_str();
                        all.iter().find(|i| image.starts_with(&format!("{}/", i.host()))).ok_or_else(|| {
                            DomainError::Unresolvable(format!("no registry integration serves {image}"))
                        })?
                    }
                };
                Ok((self.access(integration)?, repository_path(component)))
            })
            .collect())
    }

    /// The address and credentials an integration's registry is read with.
    pub fn access(&self, integration: &RegistryIntegration) -> Result<RegistryAccess> {
        Ok(RegistryAccess { url: integration.url.clone(), credentials: self.credentials(integration)? })
    }
}

/// The repository path inside the registry: the image repository without its host.
pub fn repository_path(component: &Component) -> String {
    let image = component.image_repository.as_str();
    match image.split_once('/') {
        Some((host, path)) if host.contains('.') || host.contains(':') || host == "localhost" => path.to_owned(),
        _ => image.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(check_url("https://registry.example.com/").unwrap(), "https://registry.example.com");
        assert_eq!(check_url("http://127.0.0.1:5000").unwrap(), "http://127.0.0.1:5000");
        for bad in [
            "registry.example.com",
            "ftp://x",
            "https://",
            "https://x/path",
            "http://a b",
            "http://127.0.0.1:1@10.0.0.1",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_fresh_and_hashed() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with("gantry_whsec_") && a.len() == 13 + 64);
        assert_eq!(secret_hash(&a), secret_hash(&a));
        assert_ne!(secret_hash(&a), secret_hash(&b));
    }
}

/// Where and how to read a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryAccess {
    /// `http(s)://host[:port]`.
    pub url: String,
    pub credentials: Option<RegistryCredentials>,
}

/// Reads a registry: the only source of truth for what a tag points at.
#[async_trait]
pub trait RegistryReader: Send + Sync {
    /// The digest `tag` points at now, asking for every manifest media type; `None` if the
    /// tag does not exist.
    async fn digest_of(&self, access: &RegistryAccess, repository: &str, tag: &str) -> Result<Option<Digest>>;
    /// Every tag of a repository.
    async fn tags(&self, access: &RegistryAccess, repository: &str) -> Result<Vec<String>>;
}
