//! Gantry's outbound HTTP: the CI systems it reports deployments to and runs pipelines on,
//! the analysis probes promotions measure, Slack, and signed notification webhooks. Each
//! sits behind a domain port, with bounded retries of what may work a moment later.
//! It knows each provider's API and nothing of storage or queues.

use async_trait::async_trait;
use gantry_domain::ci::{CiAccess, CiClient, CiProvider, DeploymentReport};
use gantry_domain::steps::{CiRun, PipelineTrigger, RunStatus};
use gantry_domain::{DomainError, Result};

mod app;
mod github;
mod gitlab;
mod http;
mod jenkins;
mod probes;
mod slack;
pub mod webhooks;

pub use github::GitHub;
pub use gitlab::GitLab;
pub use http::Retries;
pub use jenkins::Jenkins;
pub use probes::HttpProber;
pub use slack::{SLACK_API, SlackWeb};
pub use webhooks::StandardWebhooks;

/// What every outgoing request says it is.
pub const USER_AGENT: &str = concat!("gantry/", env!("CARGO_PKG_VERSION"));

/// A client for outgoing calls: `User-Agent: gantry/<version>`, rustls.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().user_agent(USER_AGENT).build().unwrap_or_default()
}

/// Every provider's client, chosen by the integration's provider.
pub struct CiClients {
    pub github: GitHub,
    pub gitlab: GitLab,
    pub jenkins: Jenkins,
}

impl CiClients {
    pub fn new(retries: Retries) -> Self {
        Self { github: GitHub::new(retries), gitlab: GitLab::new(retries), jenkins: Jenkins::new(retries) }
    }
}

fn unsupported(provider: CiProvider) -> DomainError {
    DomainError::validation(format!("{provider:?} integrations are not supported yet"))
}

#[async_trait]
impl CiClient for CiClients {
    async fn create_deployment(&self, access: &CiAccess, report: &DeploymentReport) -> Result<String> {
        match access.provider {
            CiProvider::Github => self.github.create_deployment(access, report).await,
            // A GitLab deployment is the commit status its name names.
            CiProvider::Gitlab => Ok(GitLab::status_name(report)),
            other => Err(unsupported(other)),
        }
    }

    async fn post_status(&self, access: &CiAccess, external_id: &str, report: &DeploymentReport) -> Result<()> {
        match access.provider {
            CiProvider::Github => self.github.post_status(access, external_id, report).await,
            CiProvider::Gitlab => self.gitlab.post_status(access, report).await,
            other => Err(unsupported(other)),
        }
    }

    async fn trigger(&self, access: &CiAccess, trigger: &PipelineTrigger) -> Result<Option<CiRun>> {
        match access.provider {
            CiProvider::Github => self.github.trigger(access, trigger).await,
            CiProvider::Gitlab => self.gitlab.trigger(access, trigger).await,
            CiProvider::Jenkins => self.jenkins.trigger(access, trigger).await,
        }
    }

    async fn run_status(&self, access: &CiAccess, run: &CiRun) -> Result<RunStatus> {
        match access.provider {
            CiProvider::Github => self.github.run_status(access, run).await,
            CiProvider::Gitlab => self.gitlab.run_status(access, run).await,
            CiProvider::Jenkins => self.jenkins.run_status(access, run).await,
        }
    }
}
