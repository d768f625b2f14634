//! GitHub's Deployments API: a deployment for the release's commit and environment, then
//! its statuses. Calls go to the integration's API URL (GitHub Enterprise Server too).

use gantry_domain::ci::{CiAccess, CiCredentials, DeploymentReport, ReportState};
use gantry_domain::steps::{CiRun, PipelineTrigger, RunStatus};
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
        Self { http: crate::client(), retries, apps: Default::default() }
    }

    /// Calls the integration's API as its token or its GitHub App installation: a POST of
    /// `body`, or a GET without one.
    async fn call_api(&self, access: &CiAccess, path: &str, what: &str, body: Option<&Value>) -> Result<Value> {
        let token = match &access.credentials {
            CiCredentials::Token { token } => token.clone(),
            CiCredentials::GithubApp { app_id, installation_id, private_key } => {
                let app =
                    crate::app::App { api_url: &access.api_url, app_id: *app_id, installation_id: *installation_id };
                let buy = |jwt: &str, path: &str| self.call(reqwest::Method::POST, &access.api_url, jwt, path);
                self.apps.token(&app, private_key, (self.retries, buy)).await?
            }
            CiCredentials::Basic { .. } => return Err(DomainError::validation("a GitHub integration takes a token")),
        };
        send(self.retries, "GitHub", what, || {
            let method = if body.is_some() { reqwest::Method::POST } else { reqwest::Method::GET };
            let request = self.call(method, &access.api_url, &token, path);
            match body {
                Some(body) => request.json(body),
                None => request,
            }
        })
        .await
    }

    /// A request to `path` of the API at `api_url`, with `bearer`.
    fn call(&self, method: reqwest::Method, api_url: &str, bearer: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{api_url}{path}"))
            .bearer_auth(bearer)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .header("user-agent", "gantry")
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
        let created = self.call_api(access, &path, "creating the deployment", Some(&body)).await?;
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
        self.call_api(access, &path, "posting the deployment status", Some(&body)).await.map(drop)
    }
}

impl GitHub {
    /// Dispatches a workflow on a branch or tag, asking for the run it starts (GitHub answers
    /// 204 without it where `return_run_details` is not known yet).
    #[instrument(skip_all, fields(pipeline = ?trigger.pipeline), err(level = "info"))]
    pub async fn trigger(&self, access: &CiAccess, trigger: &PipelineTrigger) -> Result<Option<CiRun>> {
        let Some(raw) = trigger.repository.as_ref().or(trigger.source_repository.as_ref()) else {
            return Err(DomainError::validation(
                "no repository to run the workflow in (give one, or a release sourceRef)",
            ));
        };
        let scope = repository(raw)?;
        let workflow = workflow(trigger.pipeline.as_deref().unwrap_or_default())?;
        let path = format!("/repos/{scope}/actions/workflows/{workflow}/dispatches");
        let body = json!({ "ref": trigger.git_ref, "inputs": trigger.variables, "return_run_details": true });
        let started = self.call_api(access, &path, "dispatching the workflow", Some(&body)).await?;
        Ok(started["workflow_run_id"].as_u64().map(|id| CiRun {
            id: id.to_string(),
            scope,
            url: started["html_url"].as_str().map(str::to_owned),
        }))
    }

    /// How a workflow run stands: pending until `completed`, then by its conclusion.
    #[instrument(skip_all, fields(run = %run.id), err(level = "info"))]
    pub async fn run_status(&self, access: &CiAccess, run: &CiRun) -> Result<RunStatus> {
        let id: u64 = run.id.parse().map_err(|_| DomainError::validation("a GitHub run id is a number"))?;
        let path = format!("/repos/{}/actions/runs/{id}", repository(&run.scope)?);
        let found = self.call_api(access, &path, "reading the workflow run", None).await?;
        if found["status"].as_str() != Some("completed") {
            return Ok(RunStatus::Pending);
        }
        Ok(match found["conclusion"].as_str().unwrap_or("unknown") {
            "success" | "neutral" | "skipped" => RunStatus::Succeeded,
            other => RunStatus::Failed(other.chars().take(40).collect()),
        })
    }
}

/// A workflow file name (`deploy.yml`) or id, as a path segment.
fn workflow(raw: &str) -> Result<&str> {
    let ok = !raw.is_empty()
        && raw.len() <= 200
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !raw.starts_with('.');
    if ok { Ok(raw) } else { Err(DomainError::validation(format!("{raw:?} is not a workflow file name or id"))) }
}

fn state(state: ReportState) -> &'static str {
    match state {
        ReportState::Queued => "queued",
        ReportState::InProgress => "in_progress",
        ReportState::Success => "success",
        ReportState::Failure => "failure",
        // GitHub has no cancelled deployment: one that never ran is no longer active.
        ReportState::Inactive | ReportState::Cancelled => "inactive",
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
