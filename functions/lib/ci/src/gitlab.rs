//! GitLab's REST API: a deployment is a commit status named `gantry/<environment>`, and a
//! promotion step runs a pipeline. Calls go to `/api/v4` under the integration's URL with its
//! token as `PRIVATE-TOKEN`, in the integration's project unless a step names another.

use gantry_domain::ci::{CiAccess, CiCredentials, DeploymentReport, ReportState};
use gantry_domain::steps::{CiRun, PipelineTrigger, RunStatus};
use gantry_domain::{DomainError, Result};
use serde_json::{Value, json};
use tracing::instrument;

use crate::http::{Retries, send};

/// GitLab keeps at most this much of a status's description.
const MAX_DESCRIPTION: usize = 255;

pub struct GitLab {
    http: reqwest::Client,
    retries: Retries,
}

impl GitLab {
    pub fn new(retries: Retries) -> Self {
        Self { http: crate::client(), retries }
    }

    /// The commit status a deployment to the report's environment is.
    pub fn status_name(report: &DeploymentReport) -> String {
        format!("gantry/{}", report.environment)
    }

    /// Calls the API as the integration's token: a POST of `body`, or a GET without one.
    async fn call_api(&self, access: &CiAccess, path: &str, what: &str, body: Option<&Value>) -> Result<Value> {
        let CiCredentials::Token { token } = &access.credentials else {
            return Err(DomainError::validation("a GitLab integration takes a token"));
        };
        send(self.retries, "GitLab", what, || {
            let url = format!("{}/api/v4{path}", access.api_url);
            let request = match body {
                Some(body) => self.http.post(url).json(body),
                None => self.http.get(url),
            };
            request.header("private-token", token)
        })
        .await
    }

    /// Posts the report's state as the commit's `gantry/<environment>` status. `inactive`
    /// has no commit status and is not posted.
    #[instrument(skip_all, fields(environment = %report.environment, state = ?report.state), err(level = "info"))]
    pub async fn post_status(&self, access: &CiAccess, report: &DeploymentReport) -> Result<()> {
        let state = match report.state {
            ReportState::Queued => "pending",
            ReportState::InProgress => "running",
            ReportState::Success => "success",
            ReportState::Failure => "failed",
            ReportState::Cancelled => "canceled",
            ReportState::Inactive => return Ok(()),
        };
        let project = project(access, None)?;
        let sha = commit(&report.commit)?;
        let mut body = json!({
            "state": state,
            "name": Self::status_name(report),
            "description": report.description.chars().take(MAX_DESCRIPTION).collect::<String>(),
        });
        if let Some(url) = report.environment_url.as_ref().or(report.log_url.as_ref()) {
            body["target_url"] = Value::String(url.clone());
        }
        if let Some(git_ref) = &report.git_ref {
            body["ref"] = Value::String(git_ref.clone());
        }
        let path = format!("/projects/{}/statuses/{sha}", encoded(&project));
        self.call_api(access, &path, "posting the commit status", Some(&body)).await.map(drop)
    }

    /// Creates a pipeline on the trigger's ref with its variables.
    #[instrument(skip_all, fields(git_ref = %trigger.git_ref), err(level = "info"))]
    pub async fn trigger(&self, access: &CiAccess, trigger: &PipelineTrigger) -> Result<Option<CiRun>> {
        let project = project(access, trigger.repository.as_deref())?;
        let variables: Vec<Value> =
            trigger.variables.iter().map(|(key, value)| json!({ "key": key, "value": value })).collect();
        let body = json!({ "ref": trigger.git_ref, "variables": variables });
        let path = format!("/projects/{}/pipeline", encoded(&project));
        let created = self.call_api(access, &path, "creating the pipeline", Some(&body)).await?;
        Ok(created["id"].as_u64().map(|id| CiRun {
            id: id.to_string(),
            scope: project,
            url: created["web_url"].as_str().map(str::to_owned),
        }))
    }

    /// How a pipeline stands: pending until it ends, then by its status.
    #[instrument(skip_all, fields(run = %run.id), err(level = "info"))]
    pub async fn run_status(&self, access: &CiAccess, run: &CiRun) -> Result<RunStatus> {
        let id: u64 = run.id.parse().map_err(|_| DomainError::validation("a GitLab pipeline id is a number"))?;
        let scope = Some(run.scope.as_str()).filter(|s| !s.is_empty());
        let path = format!("/projects/{}/pipelines/{id}", encoded(&project(access, scope)?));
        let found = self.call_api(access, &path, "reading the pipeline", None).await?;
        Ok(match found["status"].as_str().unwrap_or("unknown") {
            "success" | "skipped" => RunStatus::Succeeded,
            "failed" | "canceled" => RunStatus::Failed(found["status"].as_str().unwrap_or_default().to_owned()),
            _ => RunStatus::Pending,
        })
    }
}

/// The project to call: `named` (a step's own), else the integration's.
fn project(access: &CiAccess, named: Option<&str>) -> Result<String> {
    let raw = named.or(access.project.as_deref()).map(|p| p.trim().trim_matches('/')).unwrap_or_default();
    let ok = !raw.is_empty()
        && raw.len() <= 255
        && raw.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(DomainError::validation(format!("{raw:?} is not a GitLab project id or path")))
    }
}

/// A project path as one URL path segment (`acme%2Fshop`).
fn encoded(project: &str) -> String {
    project.replace('/', "%2F")
}

/// A commit sha, as a path segment.
fn commit(raw: &str) -> Result<&str> {
    if (7..=64).contains(&raw.len()) && raw.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(raw)
    } else {
        Err(DomainError::validation("the release's commitSha is not a commit hash"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(project: Option<&str>) -> CiAccess {
        CiAccess {
            provider: gantry_domain::ci::CiProvider::Gitlab,
            api_url: "https://gitlab.example.com".into(),
            project: project.map(str::to_owned),
            credentials: CiCredentials::Token { token: "t".into() },
        }
    }

    #[test]
    fn projects_are_encoded_and_checked() {
        assert_eq!(encoded(&project(&access(Some("acme/shop/")), None).unwrap()), "acme%2Fshop");
        assert_eq!(project(&access(Some("42")), None).unwrap(), "42");
        assert_eq!(project(&access(Some("acme/shop")), Some("acme/e2e")).unwrap(), "acme/e2e");
        for bad in [None, Some("acme/../x"), Some("a b"), Some("acme//shop")] {
            assert!(project(&access(bad), None).is_err(), "{bad:?}");
        }
    }
}
