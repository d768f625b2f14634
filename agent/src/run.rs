//! The agent's loops: a heartbeat every few seconds, and claims of its jobs (a long poll).
//! Each job's signature is checked against the pinned key and its artifact against its
//! sha256 and against what this agent renders from the job, before anything is applied;
//! then the deployer's own driver applies it to the local engine (health checks, canaries,
//! put-back), and the result names the sha256 of what was applied.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gantry_domain::agents::HostFacts;
use gantry_domain::agents::jobs::{JobPayload, JobResult};
use gantry_domain::deployments::{Attempt, TargetDriver};
use gantry_domain::targets::TargetConfig;
use gantry_signing::jobs::{Envelope, open};
use gantry_signing::{PublicKey, SigningKey};
use serde_json::{Value, json};

use crate::client::Api;
use crate::state::{Identity, Journal, StateDir};

/// How long a job runs before its progress lines are posted rather than sent with its result.
const PROGRESS_AFTER: Duration = Duration::from_secs(2);

pub struct Agent {
    pub api: Api,
    pub key: SigningKey,
    pub identity: Identity,
    pub pinned: PublicKey,
    pub state: StateDir,
    /// The local engine: `unix:///var/run/docker.sock` by default.
    pub docker_host: String,
    pub heartbeat: Duration,
    /// The driver that applies jobs instead of the local engine's (a stub, for the scale
    /// bench); `None` in the binary.
    pub engine: Option<Arc<dyn TargetDriver>>,
}

impl Agent {
    async fn post(&self, path: &str, body: &Value) -> Result<Value, crate::client::Failed> {
        self.api.post(&self.key, &self.identity.agent_id, path, body).await
    }

    /// The local engine, each request bounded by `timeout_seconds`.
    fn local_engine(&self, timeout_seconds: u64) -> Result<bollard::Docker, bollard::errors::Error> {
        bollard::Docker::connect_with_unix(
            self.docker_host.trim_start_matches("unix://"),
            timeout_seconds,
            bollard::API_DEFAULT_VERSION,
        )
    }

    async fn facts(&self) -> HostFacts {
        let docker = self.local_engine(10).ok();
        let docker_version = match docker {
            Some(d) => d.version().await.ok().and_then(|v| v.version),
            None => None,
        };
        HostFacts {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            docker_version,
            capabilities: vec!["docker".into(), "compose".into()],
        }
    }

    /// Sends heartbeats until the process ends.
    pub async fn heartbeats(self: Arc<Self>) {
        loop {
            let facts = serde_json::to_value(self.facts().await).unwrap_or_default();
            if let Err(err) = self.post("/agent/v1/heartbeat", &facts).await {
                tracing::warn!(error = %err, "heartbeat refused or lost");
            }
            tokio::time::sleep(self.heartbeat).await;
        }
    }

    /// Claims and runs jobs until the process ends; a refusal of the agent itself (revoked)
    /// ends it with that error.
    pub async fn jobs(self: Arc<Self>) -> Result<(), String> {
        loop {
            match self.post("/agent/v1/jobs/claim", &json!({ "waitSeconds": 20 })).await {
                Ok(answer) => {
                    for job in answer["jobs"].as_array().cloned().unwrap_or_default() {
                        self.run_job(&job).await;
                    }
                }
                Err(err) if err.status == Some(401) => return Err(format!("the Gantry API refused this agent: {err}")),
                Err(err) => {
                    tracing::warn!(error = %err, "claim failed; trying again shortly");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    }

    async fn run_job(&self, job: &Value) {
        let (promotion, target) =
            (job["promotionId"].as_str().unwrap_or_default(), job["targetId"].as_str().unwrap_or_default());
        let key = format!("{promotion}.{target}");
        let path = format!("/agent/v1/jobs/{promotion}/{target}");
        let journal = self.state.journal(&key);
        let result = match journal.as_ref().and_then(|j| j.result.clone()) {
            // Applied before a restart: the result is reported again, nothing is applied twice.
            Some(result) => result,
            // Started before a restart, with no result: what runs now is the answer.
            None if journal.is_some() => self.after_restart(job).await,
            None => self.apply(job, &key, &path).await,
        };
        let mut written = journal.unwrap_or_default();
        written.result = Some(result.clone());
        let _ = self.state.write_journal(&key, &written);
        match self.post(&format!("{path}/result"), &serde_json::to_value(&result).unwrap_or_default()).await {
            Ok(_) => self.state.forget(&key),
            Err(err) if err.status == Some(409) || err.status == Some(404) => {
                tracing::info!(error = %err, "the job had ended; its result was not taken");
                self.state.forget(&key);
            }
            Err(err) => {
                tracing::warn!(error = %err, "the result was not delivered; it is sent again on the next claim")
            }
        }
    }

    /// A job this agent started and did not finish before it restarted: never applied again.
    /// A Docker target whose container runs the job's digest, or a compose stack whose every
    /// service runs the job's release by digest, succeeded; anything else failed, saying what
    /// runs.
    async fn after_restart(&self, job: &Value) -> JobResult {
        let failed = |why: String| JobResult {
            succeeded: false,
            message: format!("the agent restarted while applying this job, which is not applied again: {why}"),
            ..JobResult::default()
        };
        let payload = match self.verified(job) {
            Ok(payload) => payload,
            Err(why) => return failed(why),
        };
        let docker = match self.local_engine(30) {
            Ok(docker) => docker,
            Err(err) => return failed(format!("the local engine cannot be reached ({err})")),
        };
        let applied = |message: String| JobResult {
            succeeded: true,
            message: format!("after a restart, {message}"),
            applied_sha256: Some(payload.sha256.clone()),
            ..JobResult::default()
        };
        let (container_name, component_id) = match &payload.target.config {
            TargetConfig::Docker { container_name, component_id, .. } => (container_name, component_id),
            _ => {
                return match gantry_targets::compose::check_applied(&docker, &payload.target, &payload.release).await {
                    Ok((true, runs)) => applied(runs),
                    Ok((false, runs)) => failed(runs),
                    Err(err) => failed(err.public_message()),
                };
            }
        };
        let wanted = payload.release.components.iter().find(|c| c.component_id == *component_id);
        let inspected = docker.inspect_container(container_name, None).await.ok();
        let running = inspected.as_ref().and_then(|c| c.state.as_ref()?.running).unwrap_or(false);
        let digest = inspected
            .as_ref()
            .and_then(|c| c.config.as_ref()?.labels.as_ref()?.get("gantry.digest").cloned())
            .unwrap_or_else(|| "no Gantry digest".into());
        match wanted {
            Some(c) if running && digest == c.digest.as_str() => applied(format!("{container_name} runs {digest}")),
            _ => failed(format!("{container_name} {} {digest}", if running { "runs" } else { "is stopped, with" })),
        }
    }

    /// The job's payload, once its signature, its agent and its artifact check out.
    fn verified(&self, job: &Value) -> Result<JobPayload, String> {
        let envelope: Envelope =
            serde_json::from_value(job["envelope"].clone()).map_err(|e| format!("it is not a job envelope ({e})"))?;
        let payload = open(&envelope, &self.pinned).map_err(|e| e.to_string())?;
        let payload: JobPayload =
            serde_json::from_str(payload).map_err(|e| format!("its payload does not parse ({e})"))?;
        if payload.agent_id.to_string() != self.identity.agent_id {
            return Err("it is for another agent".into());
        }
        let hash = gantry_domain::values::Digest::of(payload.artifact.content.as_bytes()).to_string();
        match gantry_targets::docker::render(&payload.target, &payload.release) {
            Ok(rendered) if hash == payload.sha256 && rendered.content == payload.artifact.content => Ok(payload),
            Ok(_) => Err("its artifact does not match its sha256 and its target".into()),
            Err(err) => Err(err.public_message()),
        }
    }

    /// Verifies and applies one job; the result to report.
    async fn apply(&self, job: &Value, key: &str, path: &str) -> JobResult {
        let refused = |why: String| {
            tracing::warn!(reason = %why, "job refused");
            JobResult { message: format!("the agent refused the job: {why}"), ..JobResult::default() }
        };
        let payload = match self.verified(job) {
            Ok(payload) => payload,
            Err(why) => return refused(why),
        };
        let hash = payload.sha256.clone();
        // Written before anything changes: a restart from here on never applies it again.
        if self.state.write_journal(key, &Journal::default()).is_err() {
            return refused("the agent cannot write its journal".into());
        }
        let mut target = payload.target.clone();
        match &mut target.config {
            TargetConfig::Docker { endpoint, agent_id, .. } | TargetConfig::Compose { endpoint, agent_id, .. } => {
                endpoint.clone_from(&self.docker_host);
                *agent_id = None;
            }
            _ => return refused("only Docker and Compose targets are served by agents".into()),
        }
        let secrets = Arc::new(gantry_targets::secrets::Secrets::from_env(Default::default()));
        let driver: Arc<dyn TargetDriver> = match (&self.engine, &target.config) {
            (Some(engine), _) => engine.clone(),
            (None, TargetConfig::Docker { .. }) => Arc::new(gantry_targets::docker::DockerDriver { secrets }),
            (None, _) => Arc::new(gantry_targets::compose::ComposeDriver { secrets }),
        };
        let attempt = Journaled { state: &self.state, key, agent: self, path };
        let mut lines = vec![format!("applying {hash}")];
        let deploy = driver.deploy(&target, &payload.release, &attempt);
        tokio::pin!(deploy);
        // Progress goes out once the job has run a while; a short job's lines come with its
        // result instead, which saves a request per job.
        let deployed = tokio::select! {
            deployed = &mut deploy => deployed,
            () = tokio::time::sleep(PROGRESS_AFTER) => {
                // Posted while the driver goes on: a slow API does not hold the rollout up.
                let posts = async {
                    for line in std::mem::take(&mut lines) {
                        let _ = self.post(&format!("{path}/progress"), &json!({ "message": line })).await;
                    }
                };
                tokio::join!(&mut deploy, posts).0
            }
        };
        match deployed {
            Ok(outcome) => JobResult {
                succeeded: outcome.succeeded,
                message: outcome.message,
                applied_sha256: outcome
                    .applied
                    .map(|a| gantry_domain::values::Digest::of(a.content.as_bytes()).to_string()),
                progress: lines,
            },
            Err(err) => JobResult { message: err.public_message(), progress: lines, ..JobResult::default() },
        }
    }
}

/// The driver's memory across attempts, in the agent's journal; a rollout behind a router
/// records its traffic steps through the API, and reads what an operator asked there.
struct Journaled<'a> {
    state: &'a StateDir,
    key: &'a str,
    agent: &'a Agent,
    /// The job's path under the API (`/agent/v1/jobs/<promotion>/<target>`).
    path: &'a str,
}

impl Journaled<'_> {
    async fn traffic_call(&self, body: Value) -> gantry_domain::Result<gantry_domain::traffic::Control> {
        let answer = self.agent.post(&format!("{}/traffic", self.path), &body).await;
        let answer = answer.map_err(|e| gantry_domain::DomainError::internal(format!("the API: {e:?}")))?;
        serde_json::from_value(answer["control"].clone()).map_err(gantry_domain::DomainError::internal)
    }
}

#[async_trait]
impl Attempt for Journaled<'_> {
    fn prior(&self) -> Option<&str> {
        None
    }

    async fn remember(&self, prior: &str) -> gantry_domain::Result<String> {
        let journal = Journal { prior: Some(prior.to_owned()), result: None };
        self.state.write_journal(self.key, &journal).map_err(gantry_domain::DomainError::internal)?;
        Ok(prior.to_owned())
    }

    async fn traffic(
        &self,
        step: &gantry_domain::traffic::TrafficStep,
    ) -> gantry_domain::Result<gantry_domain::traffic::Control> {
        self.traffic_call(json!({ "step": step })).await
    }

    async fn control(&self) -> gantry_domain::Result<gantry_domain::traffic::Control> {
        self.traffic_call(json!({})).await
    }
}
