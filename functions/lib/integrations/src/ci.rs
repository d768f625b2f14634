//! CI integrations: the GitHub, GitLab and Jenkins servers Gantry calls to report deployments
//! and to run pipelines as promotion steps. Credentials are sealed at rest and never returned;
//! what is not secret (the kind of credential, a GitHub App's ids, a Jenkins user) is shown.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::error::{DomainError, Result};
use crate::integrations::{Sealed, SecretBox};
use crate::values::{Name, display_text};

pub use crate::ids::CiIntegrationId;

/// A pipeline run in a CI system; `scope` is where it lives (a GitHub `owner/name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CiRun {
    pub id: String,
    pub scope: String,
    pub url: Option<String>,
}

/// A pipeline to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineTrigger {
    pub pipeline: Option<String>,
    /// Where the step says to run it.
    pub repository: Option<String>,
    /// The release's source repository.
    pub source_repository: Option<String>,
    pub git_ref: String,
    pub variables: std::collections::BTreeMap<String, String>,
}

/// How a run stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Pending,
    /// Still going, and now known as this run (a Jenkins queue item became a build).
    Started(CiRun),
    Succeeded,
    /// Finished otherwise: the CI system's word for it (`failure`, `cancelled`, …).
    Failed(String),
}

/// The CI systems Gantry speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CiProvider {
    Github,
    Gitlab,
    Jenkins,
}

impl CiProvider {
    /// The API base URL when none is given (Jenkins has none: every server is its own).
    fn default_api_url(self) -> Option<&'static str> {
        match self {
            CiProvider::Github => Some("https://api.github.com"),
            CiProvider::Gitlab => Some("https://gitlab.com"),
            CiProvider::Jenkins => None,
        }
    }
}

/// How Gantry signs in to a CI system.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum CiCredentials {
    /// A GitHub or GitLab access token.
    Token { token: String },
    /// A GitHub App installation: a JWT signed with the app's private key is exchanged for
    /// an installation token.
    #[serde(rename_all = "camelCase")]
    GithubApp { app_id: u64, installation_id: u64, private_key: String },
    /// A Jenkins user and API token (HTTP basic).
    #[serde(rename_all = "camelCase")]
    Basic { username: String, api_token: String },
}

impl std::fmt::Debug for CiCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", CiAuth::from(self))
    }
}

/// What may be shown of a credential: its kind and the parts that are not secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum CiAuth {
    Token,
    #[serde(rename_all = "camelCase")]
    GithubApp {
        app_id: u64,
        installation_id: u64,
    },
    Basic {
        username: String,
    },
}

impl From<&CiCredentials> for CiAuth {
    fn from(c: &CiCredentials) -> Self {
        match c {
            CiCredentials::Token { .. } => CiAuth::Token,
            CiCredentials::GithubApp { app_id, installation_id, .. } => {
                CiAuth::GithubApp { app_id: *app_id, installation_id: *installation_id }
            }
            CiCredentials::Basic { username, .. } => CiAuth::Basic { username: username.clone() },
        }
    }
}

/// A CI system Gantry may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CiIntegration {
    pub id: CiIntegrationId,
    pub name: Name,
    pub display_name: Option<String>,
    pub provider: CiProvider,
    /// Base URL of the API: `https://api.github.com`, `https://github.example.com/api/v3`,
    /// `https://gitlab.com`, a Jenkins server's URL.
    pub api_url: String,
    /// GitLab: the project's id or full path.
    pub project: Option<String>,
    pub auth: CiAuth,
    /// Sealed JSON of [`CiCredentials`].
    pub credentials: Sealed,
    pub credentials_rotated_at: DateTime<Utc>,
    /// Sealed secret the CI system's webhooks to [`CiIntegration::webhook_path`] prove (the
    /// HMAC key of GitHub's `X-Hub-Signature-256`, GitLab's `X-Gitlab-Token`).
    #[serde(default)]
    pub webhook_secret: Option<Sealed>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revision: u64,
}

impl CiIntegration {
    /// Where this integration's CI system posts its webhooks (GitHub `workflow_run`, GitLab
    /// `Pipeline Hook`); Jenkins reports builds to `/api/v1/webhooks/ci-status` instead.
    pub fn webhook_path(&self) -> Option<String> {
        match self.provider {
            CiProvider::Github => Some(format!("/webhooks/ci/github/{}", self.id)),
            CiProvider::Gitlab => Some(format!("/webhooks/ci/gitlab/{}", self.id)),
            CiProvider::Jenkins => None,
        }
    }
}

/// An integration with its new webhook secret, which is shown this once.
#[derive(Debug, Clone)]
pub struct CiWithSecret {
    pub integration: CiIntegration,
    pub webhook_secret: Option<String>,
}

/// Storage for CI integrations.
#[async_trait]
pub trait CiIntegrationRepository: Send + Sync {
    /// `Conflict` if the name is taken.
    async fn create_ci_integration(&self, integration: &CiIntegration) -> Result<()>;
    async fn get_ci_integration(&self, id: CiIntegrationId) -> Result<Option<CiIntegration>>;
    async fn list_ci_integrations(&self) -> Result<Vec<CiIntegration>>;
    /// Writes `after` if the stored revision is still `before`'s; `Conflict` if not.
    async fn update_ci_integration(&self, before: &CiIntegration, after: &CiIntegration) -> Result<()>;
}

/// The state of a deployment as a CI system shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportState {
    Queued,
    InProgress,
    Success,
    Failure,
    /// The promotion was cancelled before it deployed (only ever after `queued`).
    Cancelled,
    Inactive,
}

/// A deployment of a release's commit to an environment, as reported to a CI system.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentReport {
    /// `owner/name` on GitHub.
    pub repository: String,
    /// The full commit sha.
    pub commit: String,
    pub environment: String,
    /// The last environment on the promotion path.
    pub production: bool,
    /// Ids a reader of the CI system can find Gantry's records by.
    pub payload: serde_json::Value,
    pub state: ReportState,
    pub description: String,
    pub log_url: Option<String>,
    pub environment_url: Option<String>,
    /// The branch or tag the release's sourceRef names (GitLab statuses carry it as `ref`).
    pub git_ref: Option<String>,
}

/// Where and as whom to call a CI system.
#[derive(Debug, Clone, PartialEq)]
pub struct CiAccess {
    pub provider: CiProvider,
    pub api_url: String,
    pub project: Option<String>,
    pub credentials: CiCredentials,
}

/// Calls CI systems. A call the system refused for good (bad credentials, a request it
/// rejects) is `Validation` or `Unauthorized`; one that may work later (5xx, rate limits,
/// timeouts) is `Unavailable`, after the client's own short retries.
#[async_trait]
pub trait CiClient: Send + Sync {
    /// Creates the CI system's record of a deployment; its id.
    async fn create_deployment(&self, access: &CiAccess, report: &DeploymentReport) -> Result<String>;
    /// Posts the report's state on the deployment `external_id` names.
    async fn post_status(&self, access: &CiAccess, external_id: &str, report: &DeploymentReport) -> Result<()>;
    /// Starts a pipeline; the run it started, when the CI system says.
    async fn trigger(&self, access: &CiAccess, trigger: &PipelineTrigger) -> Result<Option<CiRun>>;
    /// How a run stands.
    async fn run_status(&self, access: &CiAccess, run: &CiRun) -> Result<RunStatus>;
}

/// Input for `createCiIntegration`.
#[derive(Debug, Clone)]
pub struct NewCiIntegration {
    pub name: String,
    pub display_name: Option<String>,
    pub provider: CiProvider,
    pub api_url: Option<String>,
    pub project: Option<String>,
    pub credentials: CiCredentials,
}

/// The CI integrations service.
#[derive(Clone)]
pub struct CiIntegrations {
    repo: Arc<dyn CiIntegrationRepository>,
    secrets: Arc<dyn SecretBox>,
}

impl CiIntegrations {
    pub fn new(repo: Arc<dyn CiIntegrationRepository>, secrets: Arc<dyn SecretBox>) -> Self {
        Self { repo, secrets }
    }

    #[instrument(skip_all, err(level = "info"))]
    pub async fn create(&self, input: NewCiIntegration) -> Result<CiWithSecret> {
        let name = Name::parse(&input.name)?;
        let display_name = display_text("displayName", input.display_name, 200)?;
        let api_url = match (input.api_url, input.provider.default_api_url()) {
            (Some(raw), _) => check_api_url(&raw)?,
            (None, Some(default)) => default.to_owned(),
            (None, None) => return Err(DomainError::validation("a JENKINS integration needs apiUrl")),
        };
        let project = check_project(input.provider, input.project)?;
        check_credentials(input.provider, &input.credentials)?;
        let now = Utc::now();
        let webhook_secret = self.webhook_secret_for(input.provider)?;
        let integration = CiIntegration {
            id: CiIntegrationId::new(),
            name,
            display_name,
            provider: input.provider,
            api_url,
            project,
            auth: CiAuth::from(&input.credentials),
            credentials: self.seal(&input.credentials)?,
            credentials_rotated_at: now,
            webhook_secret: webhook_secret.as_ref().map(|(_, sealed)| sealed.clone()),
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        self.repo.create_ci_integration(&integration).await?;
        tracing::info!(ci_integration_id = %integration.id, provider = ?integration.provider, "CI integration created");
        Ok(CiWithSecret { integration, webhook_secret: webhook_secret.map(|(plain, _)| plain) })
    }

    /// A fresh webhook secret and its sealed form, for providers that send webhooks.
    fn webhook_secret_for(&self, provider: CiProvider) -> Result<Option<(String, Sealed)>> {
        if provider == CiProvider::Jenkins {
            return Ok(None);
        }
        let secret = crate::integrations::new_secret()?;
        let sealed = self.secrets.seal(secret.as_bytes())?;
        Ok(Some((secret, sealed)))
    }

    /// Replaces the webhook secret; webhooks signed with the old one are refused from now on.
    #[instrument(skip_all, fields(ci_integration_id = %id), err(level = "info"))]
    pub async fn rotate_webhook_secret(&self, id: CiIntegrationId) -> Result<CiWithSecret> {
        let before = self.get(id).await?;
        let Some((plain, sealed)) = self.webhook_secret_for(before.provider)? else {
            return Err(DomainError::validation(
                "Jenkins reports builds with a token, not webhooks: nothing to rotate",
            ));
        };
        let after = CiIntegration {
            webhook_secret: Some(sealed),
            updated_at: Utc::now(),
            revision: before.revision + 1,
            ..before.clone()
        };
        self.repo.update_ci_integration(&before, &after).await?;
        tracing::info!("CI webhook secret rotated");
        Ok(CiWithSecret { integration: after, webhook_secret: Some(plain) })
    }

    /// The integration a webhook to its path names, with its webhook secret; `Unauthorized`
    /// when there is none, or it is of another provider (nothing says which integrations
    /// exist).
    pub async fn webhook_receiver(&self, id: &str, provider: CiProvider) -> Result<(CiIntegration, Vec<u8>)> {
        let unknown = || DomainError::Unauthorized("no such CI integration takes webhooks here".into());
        let id = CiIntegrationId::parse(id).map_err(|_| unknown())?;
        let integration =
            self.repo.get_ci_integration(id).await?.filter(|i| i.provider == provider).ok_or_else(unknown)?;
        let sealed = integration.webhook_secret.as_ref().ok_or_else(unknown)?;
        let secret = self.secrets.open(sealed)?;
        Ok((integration, secret))
    }

    #[instrument(skip_all, err(level = "info"))]
    pub async fn list(&self) -> Result<Vec<CiIntegration>> {
        self.repo.list_ci_integrations().await
    }

    #[instrument(skip_all, fields(ci_integration_id = %id), err(level = "info"))]
    pub async fn get(&self, id: CiIntegrationId) -> Result<CiIntegration> {
        self.repo.get_ci_integration(id).await?.ok_or_else(|| DomainError::not_found("CI integration", id))
    }

    /// Replaces the credentials; the old ones are not used again.
    #[instrument(skip_all, fields(ci_integration_id = %id), err(level = "info"))]
    pub async fn rotate_credentials(&self, id: CiIntegrationId, credentials: CiCredentials) -> Result<CiIntegration> {
        let before = self.get(id).await?;
        check_credentials(before.provider, &credentials)?;
        let now = Utc::now();
        let after = CiIntegration {
            auth: CiAuth::from(&credentials),
            credentials: self.seal(&credentials)?,
            credentials_rotated_at: now,
            updated_at: now,
            revision: before.revision + 1,
            ..before.clone()
        };
        self.repo.update_ci_integration(&before, &after).await?;
        tracing::info!("CI credentials rotated");
        Ok(after)
    }

    /// The credentials to call an integration's API with.
    pub fn credentials(&self, integration: &CiIntegration) -> Result<CiCredentials> {
        serde_json::from_slice(&self.secrets.open(&integration.credentials)?).map_err(DomainError::internal)
    }

    fn seal(&self, credentials: &CiCredentials) -> Result<Sealed> {
        self.secrets.seal(&serde_json::to_vec(credentials).map_err(DomainError::internal)?)
    }
}

/// The most a credential's parts may hold; a PEM private key is the longest.
const MAX_TOKEN: usize = 1024;
const MAX_PRIVATE_KEY: usize = 8192;

/// Which credentials each provider takes, and that they are well formed.
fn check_credentials(provider: CiProvider, credentials: &CiCredentials) -> Result<()> {
    let token = |field: &str, value: &str| -> Result<()> {
        if value.is_empty() || value.len() > MAX_TOKEN || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DomainError::validation(format!(
                "{field} must be 1 to {MAX_TOKEN} characters with no spaces or control characters"
            )));
        }
        Ok(())
    };
    match (provider, credentials) {
        (CiProvider::Github | CiProvider::Gitlab, CiCredentials::Token { token: t }) => token("token", t),
        (CiProvider::Github, CiCredentials::GithubApp { app_id, installation_id, private_key }) => {
            if *app_id == 0 || *installation_id == 0 {
                return Err(DomainError::validation("appId and installationId must be positive"));
            }
            let pem = private_key.trim();
            if pem.len() > MAX_PRIVATE_KEY || !pem.starts_with("-----BEGIN") || !pem.contains("PRIVATE KEY-----") {
                return Err(DomainError::validation("privateKey must be the GitHub App's PEM private key"));
            }
            Ok(())
        }
        (CiProvider::Jenkins, CiCredentials::Basic { username, api_token }) => {
            token("username", username)?;
            token("apiToken", api_token)
        }
        (provider, _) => Err(DomainError::validation(match provider {
            CiProvider::Github => {
                "a GITHUB integration takes a token or a GitHub App (appId, installationId, privateKey)"
            }
            CiProvider::Gitlab => "a GITLAB integration takes a token",
            CiProvider::Jenkins => "a JENKINS integration takes a username and an apiToken",
        })),
    }
}

/// GitLab needs its project (a numeric id or a full path); the others take none.
fn check_project(provider: CiProvider, project: Option<String>) -> Result<Option<String>> {
    let project = project.map(|p| p.trim().trim_matches('/').to_owned()).filter(|p| !p.is_empty());
    match (provider, project) {
        (CiProvider::Gitlab, None) => {
            Err(DomainError::validation("a GITLAB integration needs project (an id or a path)"))
        }
        (CiProvider::Gitlab, Some(p)) => {
            let ok = p.len() <= 255
                && p.split('/').all(|part| {
                    !part.is_empty()
                        && !part.starts_with('.')
                        && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                });
            if ok { Ok(Some(p)) } else { Err(DomainError::validation("project must be a GitLab project id or path")) }
        }
        (_, Some(_)) => Err(DomainError::validation("only a GITLAB integration takes project")),
        (_, None) => Ok(None),
    }
}

/// `http(s)://host[:port][/path]`, with no query, fragment or user info, at most 500 characters.
fn check_api_url(raw: &str) -> Result<String> {
    let segment_ok = |p: &str| {
        !p.is_empty() && p != ".." && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    match crate::integrations::callable_url("apiUrl", raw)? {
        Some((url, path)) if url.len() <= 500 && (path.is_empty() || path.split('/').all(segment_ok)) => {
            Ok(url.to_owned())
        }
        _ => {
            let shown: String = raw.chars().take(80).collect();
            Err(DomainError::validation(format!("apiUrl {shown:?} must be http(s)://host[:port][/path]")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_urls_may_have_a_path() {
        assert_eq!(check_api_url("https://github.example.com/api/v3/").unwrap(), "https://github.example.com/api/v3");
        assert_eq!(check_api_url("http://127.0.0.1:8929").unwrap(), "http://127.0.0.1:8929");
        let long = format!("https://x/{}", "a".repeat(500));
        for bad in [
            "github.com",
            "ftp://x",
            "https://",
            "https://x/a/../b",
            "https://u@x",
            "https://x/a?b",
            "https://x//a",
            "http://127.0.0.1:1@10.0.0.1/x",
            "http://localhost:80@example.com",
            "http://ci.example.com",
            &long,
        ] {
            assert!(check_api_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_provider_takes_its_own_credentials() {
        let token = CiCredentials::Token { token: "glpat-abc".into() };
        let basic = CiCredentials::Basic { username: "gantry".into(), api_token: "11aa".into() };
        let app = CiCredentials::GithubApp {
            app_id: 1,
            installation_id: 2,
            private_key: "-----BEGIN RSA PRIVATE KEY-----\nMII\n-----END RSA PRIVATE KEY-----".into(),
        };
        assert!(check_credentials(CiProvider::Github, &token).is_ok());
        assert!(check_credentials(CiProvider::Github, &app).is_ok());
        assert!(check_credentials(CiProvider::Gitlab, &token).is_ok());
        assert!(check_credentials(CiProvider::Jenkins, &basic).is_ok());
        assert!(check_credentials(CiProvider::Gitlab, &app).is_err());
        assert!(check_credentials(CiProvider::Jenkins, &token).is_err());
        assert!(check_credentials(CiProvider::Github, &basic).is_err());
        for bad in ["", "with space", "tab\there", &"x".repeat(MAX_TOKEN + 1)] {
            assert!(
                check_credentials(CiProvider::Github, &CiCredentials::Token { token: bad.into() }).is_err(),
                "{bad:?}"
            );
        }
        let not_pem = CiCredentials::GithubApp { app_id: 1, installation_id: 2, private_key: "secret".into() };
        assert!(check_credentials(CiProvider::Github, &not_pem).is_err());
    }

    #[test]
    fn only_gitlab_takes_a_project() {
        assert_eq!(
            check_project(CiProvider::Gitlab, Some("/group/sub/app/".into())).unwrap().unwrap(),
            "group/sub/app"
        );
        assert_eq!(check_project(CiProvider::Gitlab, Some("42".into())).unwrap().unwrap(), "42");
        assert!(check_project(CiProvider::Gitlab, None).is_err());
        assert!(check_project(CiProvider::Gitlab, Some("a/../b".into())).is_err());
        assert!(check_project(CiProvider::Gitlab, Some("a b".into())).is_err());
        assert!(check_project(CiProvider::Github, Some("x".into())).is_err());
        assert_eq!(check_project(CiProvider::Jenkins, None).unwrap(), None);
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let c = CiCredentials::Basic { username: "gantry".into(), api_token: "s3cr3t".into() };
        let shown = format!("{c:?}");
        assert!(shown.contains("gantry") && !shown.contains("s3cr3t"), "{shown}");
    }
}
