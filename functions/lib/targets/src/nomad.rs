//! Nomad: read the job, point the mapped tasks at `image@digest`, plan, register with
//! `EnforceIndex`, follow the evaluation and the deployment, and revert to the previous job
//! version when the deployment fails (or stalls past the deadline, which fails it first).

use gantry_telemetry::SendTraced as _;
use std::time::Duration;

use async_trait::async_trait;
use gantry_domain::analysis::{AnalysisSpec, Prober};

use crate::canary::analyse;
use gantry_domain::artifacts::{Applied, ArtifactKind};
use gantry_domain::deployments::{Attempt, DriverOutcome, TargetDriver, prior_or_remember};
use gantry_domain::model::Release;
use gantry_domain::targets::{DeploymentTarget, EngineTls, TargetConfig};
use gantry_domain::{DomainError, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::instrument;

use crate::secrets::Secrets;
use crate::tls;

pub struct NomadDriver {
    /// The client for targets without TLS settings (the system's roots).
    pub http: reqwest::Client,
    /// Reads tokens and TLS material.
    pub secrets: std::sync::Arc<Secrets>,
    /// How long a deployment may run before it is failed.
    pub deadline: Duration,
    /// How often the evaluation and the deployment are read.
    pub poll: Duration,
    /// What measures a canary analysis.
    pub prober: std::sync::Arc<dyn Prober>,
}

impl Default for NomadDriver {
    fn default() -> Self {
        Self {
            http: client().build().unwrap_or_default(),
            secrets: std::sync::Arc::new(Secrets::from_env(Default::default())),
            deadline: Duration::from_secs(600),
            poll: Duration::from_secs(2),
            prober: std::sync::Arc::new(gantry_ci::HttpProber::default()),
        }
    }
}

fn client() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(330))
}

pub(crate) struct Job<'a> {
    address: &'a str,
    namespace: &'a str,
    token: Option<String>,
    http: reqwest::Client,
}

/// A request that got no answer: a TLS refusal is a deployment failure that says why;
/// anything else may pass, and is retried.
fn unreachable(what: &str, err: reqwest::Error) -> DomainError {
    tls::refusal("Nomad API", &err).unwrap_or_else(|| DomainError::internal(format!("Nomad {what} failed: {err}")))
}

/// A request that got no response.
struct Unanswered(reqwest::Error);

impl Job<'_> {
    /// A read that got no answer on its connection is tried again twice on fresh ones: TLS
    /// 1.3 ends the client's side of the handshake before the API judges its certificate, so
    /// a refused certificate can first show as a dropped connection rather than the alert,
    /// and the deployment should fail with what the alert says. Writes are sent once.
    pub(crate) async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let tries = if method == reqwest::Method::GET { 3 } else { 1 };
        let mut attempt = 1;
        loop {
            match self.send(method.clone(), path, body).await {
                Err(Unanswered(err)) if attempt < tries && tls::refusal("Nomad API", &err).is_none() => {
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                    attempt += 1;
                }
                Err(Unanswered(err)) => return Err(unreachable(path, err)),
                Ok(res) => return self.answer(path, res).await,
            }
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> std::result::Result<reqwest::Response, Unanswered> {
        let mut req = self
            .http
            .request(method, format!("{}/v1{path}", self.address.trim_end_matches('/')))
            .query(&[("namespace", self.namespace)]);
        if let Some(token) = &self.token {
            req = req.header("X-Nomad-Token", token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send_traced().await.map_err(Unanswered)
    }

    async fn answer(&self, path: &str, res: reqwest::Response) -> Result<Value> {
        let status = res.status();
        let text = res.text().await.map_err(|e| unreachable(path, e))?;
        if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
            // Nomad refused the job or the request: no retry cures it, so the deployment fails.
            let text: String = text.chars().take(300).collect();
            return Err(DomainError::validation(format!("Nomad {path} refused ({status}): {text}")));
        }
        if !status.is_success() {
            return Err(DomainError::internal(format!("Nomad {path} answered {status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| DomainError::internal(format!("Nomad {path} answered: {e}")))
    }
}

impl NomadDriver {
    /// The target's connection: its token, and a client trusting only its CA (presenting
    /// its client certificate) when it has TLS settings.
    pub(crate) async fn job<'a>(
        &self,
        address: &'a str,
        namespace: &'a str,
        token_ref: Option<&str>,
        tls: Option<&EngineTls>,
    ) -> Result<Job<'a>> {
        let token = match token_ref {
            Some(r) => Some(self.secrets.resolve("tokenRef", r).await?),
            None => None,
        };
        let http = match tls {
            None => self.http.clone(),
            Some(settings) => {
                let config = tls::client_config(&tls::Material::read(settings, &self.secrets).await?)?;
                client()
                    .use_preconfigured_tls(config)
                    .build()
                    .map_err(|e| DomainError::internal(format!("Nomad client: {e}")))?
            }
        };
        Ok(Job { address, namespace, token, http })
    }
}

#[async_trait]
impl TargetDriver for NomadDriver {
    #[instrument(skip_all, fields(target = %target.name), err(level = "info"))]
    async fn deploy(
        &self,
        target: &DeploymentTarget,
        release: &Release,
        attempt: &dyn Attempt,
    ) -> Result<DriverOutcome> {
        let TargetConfig::Nomad { address, namespace, job_id, tasks, token_ref, tls, canary_analysis, traffic } =
            &target.config
        else {
            return Err(DomainError::internal("the Nomad driver got another kind of target"));
        };
        let nomad = self.job(address, namespace, token_ref.as_deref(), tls.as_ref()).await?;
        if let Some(traffic) = traffic {
            return self.deploy_routed(nomad, (tasks, release), traffic, attempt).await;
        }
        let mut job = nomad.call(reqwest::Method::GET, &format!("/job/{job_id}"), None).await?;
        let current_version = job["Version"].as_u64().unwrap_or(0);
        let modify_index = job["JobModifyIndex"].as_u64().unwrap_or(0);
        let (missing, changed) = pin(&mut job, tasks, release);
        if !missing.is_empty() {
            return Ok(DriverOutcome {
                succeeded: false,
                applied: None,
                message: format!("job {job_id} has no task {}", missing.join(", ")),
            });
        }
        let applied = Applied::json(ArtifactKind::NomadJob, &job);
        // The version that ran before the deployment's first attempt is what a failed rollout
        // reverts to, even when a worker that died had already registered the new one.
        let (Prior { version: previous_version }, resumed) =
            prior_or_remember(attempt, Prior { version: current_version }).await?;
        if resumed && !changed {
            // The job runs this spec already: a worker that died registered it. Follow its
            // deployment instead of registering the same spec again.
            let latest = nomad.call(reqwest::Method::GET, &format!("/job/{job_id}/deployment"), None).await?;
            // Only the registered version's deployment: an older one may have ended long ago.
            let ours = latest["JobVersion"].as_u64() == Some(current_version);
            if let Some(deployment_id) = latest["ID"].as_str().filter(|id| ours && !id.is_empty()) {
                tracing::info!(job_id, deployment_id, "taking over a rollout already registered");
                let deadline = tokio::time::Instant::now() + self.deadline;
                let followed = self
                    .follow(&nomad, job_id, deployment_id, previous_version, (deadline, canary_analysis.as_ref()))
                    .await;
                let outcome = match followed {
                    Err(DomainError::Validation(why)) => self.revert(&nomad, job_id, previous_version, why).await?,
                    other => other?,
                };
                return Ok(DriverOutcome { applied: Some(applied), ..outcome });
            }
        }
        let versions = (previous_version, modify_index);
        let outcome = self.roll_out(&nomad, job_id, &job, versions, canary_analysis.as_ref()).await?;
        Ok(DriverOutcome { applied: Some(applied), ..outcome })
    }
}

/// Pins each mapped task's image to the release's digest; the tasks the job lacks, and
/// whether any image changed.
pub(crate) fn pin<'a>(
    job: &mut Value,
    tasks: &'a std::collections::BTreeMap<String, gantry_domain::values::ComponentId>,
    release: &Release,
) -> (Vec<&'a str>, bool) {
    let mut missing: Vec<&str> = tasks.keys().map(String::as_str).collect();
    let mut changed = false;
    for group in job["TaskGroups"].as_array_mut().into_iter().flatten() {
        for task in group["Tasks"].as_array_mut().into_iter().flatten() {
            let name = task["Name"].as_str().unwrap_or_default().to_owned();
            if let Some(component) = tasks.get(&name) {
                let pinned = release.components.iter().find(|c| c.component_id == *component);
                if let Some(c) = pinned {
                    let image = json!(format!("{}@{}", c.image, c.digest));
                    changed |= task["Config"]["image"] != image;
                    task["Config"]["image"] = image;
                }
                missing.retain(|m| *m != name);
            }
        }
    }
    (missing, changed)
}

/// What ran before a deployment: the job's version.
#[derive(Serialize, Deserialize)]
struct Prior {
    version: u64,
}

impl NomadDriver {
    /// Plans and registers the job over `modify_index`, then follows the evaluation and the
    /// deployment; reverts to `previous_version` when the deployment fails or stalls.
    async fn roll_out(
        &self,
        nomad: &Job<'_>,
        job_id: &str,
        job: &Value,
        (previous_version, modify_index): (u64, u64),
        canary: Option<&AnalysisSpec>,
    ) -> Result<DriverOutcome> {
        let post = reqwest::Method::POST;
        nomad.call(post.clone(), &format!("/job/{job_id}/plan"), Some(&json!({ "Job": job, "Diff": true }))).await?;
        let registered = nomad
            .call(
                post.clone(),
                &format!("/job/{job_id}"),
                Some(&json!({ "Job": job, "EnforceIndex": true, "JobModifyIndex": modify_index })),
            )
            .await?;
        let eval_id = registered["EvalID"].as_str().unwrap_or_default().to_owned();
        // Once registered, a refusal on the way is a failed rollout: the job is reverted.
        match self.settle(nomad, job_id, &eval_id, previous_version, canary).await {
            Err(DomainError::Validation(why)) => self.revert(nomad, job_id, previous_version, why).await,
            other => other,
        }
    }

    /// Follows a registered job's evaluation to its deployment, and that to its end.
    async fn settle(
        &self,
        nomad: &Job<'_>,
        job_id: &str,
        eval_id: &str,
        previous_version: u64,
        canary: Option<&AnalysisSpec>,
    ) -> Result<DriverOutcome> {
        let get = reqwest::Method::GET;
        let deadline = tokio::time::Instant::now() + self.deadline;
        let deployment_id = loop {
            let eval = nomad.call(get.clone(), &format!("/evaluation/{eval_id}"), None).await?;
            match (eval["Status"].as_str(), eval["DeploymentID"].as_str()) {
                (Some("complete"), Some(id)) if !id.is_empty() => break id.to_owned(),
                (Some("failed" | "canceled"), _) => {
                    return self
                        .revert(
                            nomad,
                            job_id,
                            previous_version,
                            format!("evaluation {eval_id} ended {}", eval["Status"]),
                        )
                        .await;
                }
                _ if tokio::time::Instant::now() > deadline => {
                    return self
                        .revert(nomad, job_id, previous_version, format!("evaluation {eval_id} did not complete"))
                        .await;
                }
                _ => tokio::time::sleep(self.poll).await,
            }
        };
        self.follow(nomad, job_id, &deployment_id, previous_version, (deadline, canary)).await
    }

    /// Follows the deployment to its end. Canaries that are healthy are measured by the
    /// canary analysis (when there is one) and promoted when it passes; a deployment that
    /// fails, stalls past the deadline or fails its analysis is failed and reverted.
    async fn follow(
        &self,
        nomad: &Job<'_>,
        job_id: &str,
        deployment_id: &str,
        previous_version: u64,
        (deadline, canary): (tokio::time::Instant, Option<&AnalysisSpec>),
    ) -> Result<DriverOutcome> {
        let (get, post) = (reqwest::Method::GET, reqwest::Method::POST);
        let mut notes = Vec::new();
        loop {
            let deployment = nomad.call(get.clone(), &format!("/deployment/{deployment_id}"), None).await?;
            match deployment["Status"].as_str() {
                Some("successful") => {
                    notes.push(format!("job {job_id} deployment {deployment_id} successful"));
                    return Ok(DriverOutcome { succeeded: true, applied: None, message: notes.join("; ") });
                }
                Some("failed" | "cancelled") => {
                    let why = deployment["StatusDescription"].as_str().unwrap_or("failed").to_owned();
                    return self
                        .revert(nomad, job_id, previous_version, format!("deployment {deployment_id}: {why}"))
                        .await;
                }
                Some("running") if canaries_ready(&deployment) => {
                    let analysed = match canary {
                        Some(spec) => analyse(self.prober.as_ref(), spec).await,
                        None => Ok("canaries healthy".to_owned()),
                    };
                    let why = match analysed {
                        Ok(summary) => {
                            let body = json!({ "DeploymentID": deployment_id, "All": true });
                            let path = format!("/deployment/promote/{deployment_id}");
                            nomad.call(post.clone(), &path, Some(&body)).await?;
                            notes.push(format!("{summary}; promoted"));
                            continue;
                        }
                        Err(why) => why,
                    };
                    nomad.call(post.clone(), &format!("/deployment/fail/{deployment_id}"), None).await?;
                    return self
                        .revert(nomad, job_id, previous_version, format!("canary analysis failed: {why}"))
                        .await;
                }
                _ if tokio::time::Instant::now() > deadline => {
                    nomad.call(post.clone(), &format!("/deployment/fail/{deployment_id}"), None).await?;
                    let why = format!("deployment {deployment_id} did not finish in time");
                    return self.revert(nomad, job_id, previous_version, why).await;
                }
                _ => tokio::time::sleep(self.poll).await,
            }
        }
    }

    async fn revert(&self, nomad: &Job<'_>, job_id: &str, version: u64, why: String) -> Result<DriverOutcome> {
        let body = json!({ "JobID": job_id, "JobVersion": version });
        nomad.call(reqwest::Method::POST, &format!("/job/{job_id}/revert"), Some(&body)).await?;
        Ok(DriverOutcome {
            succeeded: false,
            applied: None,
            message: format!("{why}; reverted job {job_id} to version {version}"),
        })
    }
}

/// Whether a deployment waits for its canaries to be promoted: every group that places
/// canaries has them all healthy, and none is promoted yet.
fn canaries_ready(deployment: &Value) -> bool {
    let groups = deployment["TaskGroups"].as_object();
    let canaried: Vec<&Value> = groups
        .into_iter()
        .flat_map(|g| g.values())
        .filter(|g| g["DesiredCanaries"].as_u64().unwrap_or(0) > 0)
        .collect();
    !canaried.is_empty()
        && canaried
            .iter()
            .all(|g| g["Promoted"] != true && g["HealthyAllocs"].as_u64() >= g["DesiredCanaries"].as_u64())
}

#[cfg(test)]
mod tests {
    #[test]
    fn canaries_are_ready_when_every_canaried_group_is_healthy_and_unpromoted() {
        let deployment = |healthy: u64, promoted: bool| {
            serde_json::json!({ "TaskGroups": { "web": { "DesiredCanaries": 2, "HealthyAllocs": healthy, "Promoted": promoted },
                                                "db": { "DesiredCanaries": 0, "HealthyAllocs": 0 } } })
        };
        assert!(super::canaries_ready(&deployment(2, false)));
        assert!(!super::canaries_ready(&deployment(1, false)), "one canary is not healthy yet");
        assert!(!super::canaries_ready(&deployment(2, true)), "promoted already");
        assert!(!super::canaries_ready(&serde_json::json!({ "TaskGroups": null })), "no canaries at all");
    }
}
