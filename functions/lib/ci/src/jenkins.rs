//! Jenkins' remote access API: a promotion step asks a parameterized job for a build with
//! `buildWithParameters` (the parameters are form fields), follows the queue item Jenkins
//! answers with until it names its build, then follows the build. Calls sign in with the
//! integration's user and API token (HTTP basic), which Jenkins exempts from CSRF crumbs.

use gantry_domain::ci::{CiAccess, CiCredentials};
use gantry_domain::steps::{CiRun, PipelineTrigger, RunStatus};
use gantry_domain::{DomainError, Result};
use serde_json::Value;
use tracing::instrument;

use crate::http::{Retries, send_for_headers};

/// A run that is still a queue item is `queue/<id>`; once built, the build number.
const QUEUED: &str = "queue/";

pub struct Jenkins {
    http: reqwest::Client,
    retries: Retries,
}

impl Jenkins {
    pub fn new(retries: Retries) -> Self {
        Self { http: crate::client(), retries }
    }

    /// Calls the server as the integration's user: a POST of `form`, or a GET without one.
    async fn call(
        &self,
        access: &CiAccess,
        path: &str,
        what: &str,
        form: Option<&[(String, String)]>,
    ) -> Result<(reqwest::header::HeaderMap, Value)> {
        let CiCredentials::Basic { username, api_token } = &access.credentials else {
            return Err(DomainError::validation("a Jenkins integration takes a username and an API token"));
        };
        send_for_headers(self.retries, "Jenkins", what, || {
            let url = format!("{}{path}", access.api_url);
            let request = match form {
                Some(form) => self.http.post(url).form(form),
                None => self.http.get(url),
            };
            request.basic_auth(username, Some(api_token)).header("user-agent", "gantry")
        })
        .await
    }

    /// Queues a build of the job `pipeline` names with the trigger's variables as parameters.
    #[instrument(skip_all, fields(job = ?trigger.pipeline), err(level = "info"))]
    pub async fn trigger(&self, access: &CiAccess, trigger: &PipelineTrigger) -> Result<Option<CiRun>> {
        let job = job(trigger.pipeline.as_deref().unwrap_or_default())?;
        let form: Vec<(String, String)> = trigger.variables.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let path = format!("/job/{job}/buildWithParameters");
        let (headers, _) = self.call(access, &path, "queueing the build", Some(&form)).await?;
        let location = headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let item = location.trim_end_matches('/').rsplit('/').next().filter(|id| id.parse::<u64>().is_ok());
        Ok(item.map(|id| CiRun { id: format!("{QUEUED}{id}"), scope: job.to_owned(), url: None }))
    }

    /// How a run stands: a queue item until Jenkins names its build, then the build.
    #[instrument(skip_all, fields(run = %run.id), err(level = "info"))]
    pub async fn run_status(&self, access: &CiAccess, run: &CiRun) -> Result<RunStatus> {
        let job = job(&run.scope)?;
        if let Some(item) = run.id.strip_prefix(QUEUED) {
            let item: u64 = item.parse().map_err(|_| DomainError::validation("a Jenkins queue item is a number"))?;
            let (_, found) =
                self.call(access, &format!("/queue/item/{item}/api/json"), "reading the queue", None).await?;
            if found["cancelled"] == true {
                return Ok(RunStatus::Failed("cancelled in the queue".into()));
            }
            return Ok(match found["executable"]["number"].as_u64() {
                Some(number) => RunStatus::Started(CiRun {
                    id: number.to_string(),
                    scope: job.to_owned(),
                    url: found["executable"]["url"].as_str().map(str::to_owned),
                }),
                None => RunStatus::Pending,
            });
        }
        let number: u64 = run.id.parse().map_err(|_| DomainError::validation("a Jenkins build number is a number"))?;
        let (_, found) = self.call(access, &format!("/job/{job}/{number}/api/json"), "reading the build", None).await?;
        Ok(match found["result"].as_str() {
            _ if found["building"] == true => RunStatus::Pending,
            Some("SUCCESS") => RunStatus::Succeeded,
            Some(other) => RunStatus::Failed(other.to_ascii_lowercase().chars().take(40).collect()),
            None => RunStatus::Pending,
        })
    }
}

/// A job name, as a path segment (jobs in folders are not supported).
fn job(raw: &str) -> Result<&str> {
    let ok = !raw.is_empty()
        && raw.len() <= 200
        && !raw.starts_with('.')
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(raw) } else { Err(DomainError::validation(format!("{raw:?} is not a Jenkins job name"))) }
}
