//! GitHub's Deployments API: a deployment for the release's commit and environment, then
//! its statuses. Calls go to the integration's API URL (GitHub Enterprise Server too).

use gantry_domain::ci::{CiAccess, CiCredentials, DeploymentReport, ReportState};
use gantry_domain::{DomainError, Result};
use serde_json::{Value, json};
use tracing::instrument;

use crate::http::{Retries, send};

/// The REST API version every request names.
const API_VERSION: &str = "2022-11-28";
/// GitHub shows at most this much of a status's description.
const MAX_DESCRIPTION: usize = 140;

pub struct GitHub {
    http: reqwest::Client,
    retries: Retries,
    apps: crate::app::InstallationTokens,
}

impl GitHub {
    pub fn new(retries: Retries) -> Self {
        Self { http: reqwest::Client::new(), retries, apps: Default::default() }
    }

    /// POSTs `body` to the integration's API, as its token or its GitHub App installation.
    async fn post(&self, access: &CiAccess, path: &str, what: &str, body: &Value) -> Result<Value> {
        let token = match &access.credentials {
            CiCredentials::Token { token } => token.clone(),
            CiCredentials::GithubApp { app_id, installation_id, private_key } => {
                let app =
                    crate::app::App { api_url: &access.api_url, app_id: *app_id, installation_id: *installation_id };
                self.apps.token(&app, private_key, self).await?
            }
            CiCredentials::Basic { .. } => return Err(DomainError::validation("a GitHub integration takes a token")),
        };
        send(self.retries, "GitHub", what, || self.call(&access.api_url, &token, path).json(body)).await
    }

    /// A POST to `path` of the API at `api_url`, with `bearer`.
    pub(crate) fn call(&self, api_url: &str, bearer: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{api_url}{path}"))
            .bearer_auth(bearer)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .header("user-agent", "gantry")
    }

    pub(crate) fn retries(&self) -> Retries {
        self.retries
    }

    #[instrument(skip_all, fields(environment = %report.environment), err(level = "info"))]
    pub async fn create_deployment(&self, access: &CiAccess, report: &DeploymentReport) -> Result<String> {
        let path = format!("/repos/{}/deployments", repository(&report.repository)?);
        let body = json!({
            "ref": report.commit,
            "environment": report.environment,
            "production_environment": report.production,
            "payload": report.payload,
            "description": description(&report.description),
            // Gantry deploys the commit it was given: no merging, no status checks here.
            "auto_merge": false,
            "required_contexts": [],
        });
        let created = self.post(access, &path, "creating the deployment", &body).await?;
        match created["id"].as_u64() {
            Some(id) => Ok(id.to_string()),
            None => Err(DomainError::validation("GitHub created no deployment (was the commit merged instead?)")),
        }
    }

    #[instrument(skip_all, fields(deployment = external_id, state = ?report.state), err(level = "info"))]
    pub async fn post_status(&self, access: &CiAccess, external_id: &str, report: &DeploymentReport) -> Result<()> {
        let id: u64 = external_id.parse().map_err(|_| DomainError::validation("a GitHub deployment id is a number"))?;
        let path = format!("/repos/{}/deployments/{id}/statuses", repository(&report.repository)?);
        let mut body = json!({
            "state": state(report.state),
            "environment": report.environment,
            "description": description(&report.description),
            "auto_inactive": true,
        });
        for (field, value) in [("log_url", &report.log_url), ("environment_url", &report.environment_url)] {
            if let Some(url) = value {
                body[field] = Value::String(url.clone());
            }
        }
        self.post(access, &path, "posting the deployment status", &body).await.map(drop)
    }
}

fn state(state: ReportState) -> &'static str {
    match state {
        ReportState::Queued => "queued",
        ReportState::InProgress => "in_progress",
        ReportState::Success => "success",
        ReportState::Failure => "failure",
        ReportState::Inactive => "inactive",
    }
}

fn description(text: &str) -> String {
    text.chars().take(MAX_DESCRIPTION).collect()
}

/// `owner/name` from `owner/name`, `https://github.com/owner/name` or `…/name.git`.
pub(crate) fn repository(raw: &str) -> Result<String> {
    let trimmed = raw.trim().trim_end_matches('/').trim_end_matches(".git");
    let path = match trimmed.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, path)| path),
        None => trimmed,
    };
    let parts: Vec<&str> = path.split('/').collect();
    let ok = parts.len() == 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
    if ok {
        Ok(path.to_owned())
    } else {
        Err(DomainError::validation(format!("sourceRef.repository {raw:?} is not a GitHub owner/name")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_in_any_spelling() {
        for raw in ["acme/shop", "https://github.com/acme/shop", "https://github.example.com/acme/shop.git/"] {
            assert_eq!(repository(raw).unwrap(), "acme/shop", "{raw}");
        }
        for bad in ["shop", "acme/shop/extra", "https://github.com/", "acme/sh op"] {
            assert!(repository(bad).is_err(), "{bad}");
        }
    }
}
