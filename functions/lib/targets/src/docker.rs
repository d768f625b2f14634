//! Docker Engine: pull `image@digest` unless present, create the new container with
//! `gantry.*` labels, and wait for its health check. On success the old container is
//! removed and the new one takes its name; when the new one is unhealthy it is removed and
//! the old one runs again.
//!
//! Containers on the host network share its ports, so the old container is stopped (not
//! removed) before the new one starts, and started again if the new one fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::{ContainerCreateBody, HealthConfig, HealthStatusEnum, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, RemoveContainerOptionsBuilder,
    RenameContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::{BollardRequest, ClientVersion, Docker};
use futures::StreamExt;
use gantry_domain::artifacts::{Applied, ArtifactKind};
use gantry_domain::deployments::{Attempt, DriverOutcome, TargetDriver, prior_or_remember};
use gantry_domain::engines::DockerEndpoint;
use gantry_domain::model::Release;
use gantry_domain::targets::{DeploymentTarget, DockerCanary, EngineTls, HealthCheck, TargetConfig};
use gantry_domain::traffic::Slot;
use gantry_domain::{DomainError, Result};
use serde::{Deserialize, Serialize};
use tracing::{Instrument as _, instrument};

use crate::routed::{Sides, slot_env};
use crate::secrets::Secrets;
use crate::tls;

/// Engine API 1.41 (Docker 20.10), which every supported engine speaks.
const API: ClientVersion = ClientVersion { major_version: 1, minor_version: 41 };

pub struct DockerDriver {
    /// Reads the TLS material of `tcp+tls://` endpoints.
    pub secrets: Arc<Secrets>,
}

/// An Engine error: a 4xx is the engine refusing what it was asked (an image that does not
/// exist, an entrypoint that cannot run, a name in use), which no retry cures, so it is a
/// `Validation` error the deployment fails with; anything else may pass and is `Internal`.
pub(crate) fn engine(err: bollard::errors::Error) -> DomainError {
    if let Some(refused) = tls::refusal("Docker Engine", &err) {
        return refused;
    }
    match &err {
        bollard::errors::Error::DockerResponseServerError { status_code: 400..=499, message } => {
            let message: String = message.chars().take(300).collect();
            DomainError::validation(format!("the Docker Engine refused: {message}"))
        }
        _ => DomainError::internal(format!("Docker Engine: {err}")),
    }
}

/// A client of the Engine at `endpoint`: a local socket, plaintext HTTP on loopback, or
/// HTTPS that trusts only the target's CA and presents its client certificate.
pub(crate) async fn connect(endpoint: &str, tls: Option<&EngineTls>, secrets: &Secrets) -> Result<Docker> {
    let authority = |host: &str, port: u16| {
        if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
    };
    match (DockerEndpoint::parse(endpoint, tls)?, tls) {
        (DockerEndpoint::Unix(path), _) => Docker::connect_with_unix(&path, 120, &API).map_err(engine),
        (DockerEndpoint::Plain { host, port }, _) => {
            Docker::connect_with_http(&format!("http://{}", authority(&host, port)), 120, &API).map_err(engine)
        }
        (DockerEndpoint::Tls { host, port }, Some(settings)) => {
            let config = tls::client_config(&tls::Material::read(settings, secrets).await?)?;
            let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
            http.enforce_http(false);
            http.set_connect_timeout(Some(Duration::from_secs(10)));
            let https = hyper_rustls::HttpsConnector::from((http, config));
            let client = Arc::new(
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https),
            );
            let traced_host = host.clone();
            let transport = move |mut req: BollardRequest| {
                let client = client.clone();
                let span = gantry_telemetry::client_span(req.method(), &traced_host, Some(port));
                gantry_telemetry::inject(&span, req.headers_mut());
                async move {
                    let answer = client.request(req).instrument(span.clone()).await;
                    gantry_telemetry::record_status(&span, answer.as_ref().ok().map(|r| r.status()));
                    answer.map_err(bollard::errors::Error::from)
                }
            };
            let address = format!("https://{}", authority(&host, port));
            let docker = Docker::connect_with_custom_transport(transport, Some(address), 120, &API).map_err(engine)?;
            handshake(&docker).await?;
            Ok(docker)
        }
        (DockerEndpoint::Tls { .. }, None) => Err(DomainError::internal("a TLS endpoint without tls passed its check")),
    }
}

/// Pings a TLS engine before the deployment's first request. TLS 1.3 ends the client's side
/// of the handshake before the engine judges its certificate, so a refused certificate can
/// show as a dropped connection rather than the engine's alert; a few pings on fresh
/// connections bring the alert out, and the deployment fails with what it says.
async fn handshake(docker: &Docker) -> Result<()> {
    let mut last = None;
    for attempt in 0..3 {
        match docker.ping().await {
            Ok(_) => return Ok(()),
            Err(err) if tls::refusal("Docker Engine", &err).is_some() => return Err(engine(err)),
            Err(err) => last = Some(err),
        }
        tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
    }
    Err(last.map_or_else(|| DomainError::internal("the Docker Engine did not answer"), engine))
}

/// Pulls `image` unless the engine has it.
pub(crate) async fn pull(docker: &Docker, image: &str) -> Result<()> {
    if docker.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    let mut pull = docker.create_image(Some(CreateImageOptionsBuilder::new().from_image(image).build()), None, None);
    while let Some(step) = pull.next().await {
        step.map_err(engine)?;
    }
    Ok(())
}

pub(crate) fn secs(n: u32) -> i64 {
    i64::from(n) * 1_000_000_000
}

#[async_trait]
impl TargetDriver for DockerDriver {
    #[instrument(skip_all, fields(target = %target.name), err(level = "info"))]
    async fn deploy(
        &self,
        target: &DeploymentTarget,
        release: &Release,
        attempt: &dyn Attempt,
    ) -> Result<DriverOutcome> {
        let TargetConfig::Docker {
            endpoint,
            tls,
            container_name,
            component_id,
            env,
            health_check,
            canary,
            traffic,
            ..
        } = &target.config
        else {
            return Err(DomainError::internal("the Docker driver got another kind of target"));
        };
        let Some(component) = release.components.iter().find(|c| c.component_id == *component_id) else {
            return Ok(DriverOutcome {
                succeeded: false,
                applied: None,
                message: "the release does not contain the target's component".into(),
            });
        };
        let docker = connect(endpoint, tls.as_ref(), &self.secrets).await?;
        let image = format!("{}@{}", component.image, component.digest);
        pull(&docker, &image).await?;
        let short: String = component.digest.as_str()["sha256:".len()..].chars().take(12).collect();
        let next_name = format!("{container_name}-{short}");
        if let Some(traffic) = traffic {
            let Some(body) = container_body(target, release) else {
                return Err(DomainError::internal("the Docker driver got another kind of target"));
            };
            let sides = Container::new(&docker, container_name, &next_name, body, health_check.as_ref());
            let rolled = crate::routed::roll_out(&sides, &crate::haproxy::Haproxy, traffic, attempt).await?;
            let runs = format!("{container_name} runs {image}");
            return Ok(crate::routed::outcome(rolled, sides.applied(), &runs));
        }
        let mut note = String::new();
        if let Some(canary) = canary {
            let canary_name = format!("{container_name}-canary");
            match run_canary(&docker, &canary_name, &image, (env, health_check.as_ref()), canary).await? {
                Ok(summary) => note = format!("{summary}; "),
                Err(why) => {
                    let message =
                        format!("canary analysis failed: {why}; {container_name} keeps running the previous image");
                    return Ok(DriverOutcome { succeeded: false, applied: None, message });
                }
            }
        }
        // A leftover from an earlier attempt at the same digest goes first.
        let _ =
            docker.remove_container(&next_name, Some(RemoveContainerOptionsBuilder::new().force(true).build())).await;
        let old = docker.inspect_container(container_name, None).await.ok();
        let running_now = old.as_ref().and_then(|o| o.state.as_ref()).and_then(|s| s.running).unwrap_or(false);
        // Whether the old container ran before the deployment's first attempt: a worker that
        // died may have stopped it already, and a failure must still start it again.
        let now = Prior { container: container_name.clone(), running: running_now };
        let (Prior { running: old_running, .. }, _) = prior_or_remember(attempt, now).await?;
        if running_now {
            docker
                .stop_container(container_name, Some(StopContainerOptionsBuilder::new().t(10).build()))
                .await
                .map_err(engine)?;
        }
        let Some(body) = container_body(target, release) else {
            return Err(DomainError::internal("the Docker driver got another kind of target"));
        };
        let applied = Applied::json(ArtifactKind::DockerContainer, &body);
        let budget = health_budget(health_check.as_ref());
        // Once the old container is stopped, every failure must bring it back.
        let attempt = async {
            create_and_start(&docker, &next_name, body).await?;
            wait_healthy(&docker, &next_name, health_check.is_some(), budget).await
        };
        let failure = match attempt.await {
            Ok(true) => {
                if old.is_some() {
                    docker
                        .remove_container(
                            container_name,
                            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                        )
                        .await
                        .map_err(engine)?;
                }
                docker
                    .rename_container(&next_name, RenameContainerOptionsBuilder::new().name(container_name).build())
                    .await
                    .map_err(engine)?;
                return Ok(DriverOutcome {
                    succeeded: true,
                    applied: Some(applied),
                    message: format!("{note}{container_name} runs {image}"),
                });
            }
            Ok(false) => "the new container did not become healthy".to_owned(),
            Err(err) => {
                tracing::warn!(error = %err, "the new container did not start");
                match err {
                    DomainError::Validation(why) => format!("the new container did not start: {why}"),
                    _ => "the new container did not start".to_owned(),
                }
            }
        };
        let _ =
            docker.remove_container(&next_name, Some(RemoveContainerOptionsBuilder::new().force(true).build())).await;
        if old_running {
            start_again(&docker, container_name).await?;
        }
        let kept =
            if old_running { format!("; {container_name} keeps running the previous image") } else { String::new() };
        Ok(DriverOutcome { succeeded: false, applied: Some(applied), message: format!("{failure}{kept}") })
    }

    fn render(&self, target: &DeploymentTarget, release: &Release) -> Result<Applied> {
        render(target, release)
    }
}

/// The container create body a Docker target's deployment applies: the component's image
/// pinned by digest, the target's environment, ports and health check, and `gantry.*`
/// labels. `None` for another kind of target or a release without the target's component.
pub fn container_body(target: &DeploymentTarget, release: &Release) -> Option<ContainerCreateBody> {
    let TargetConfig::Docker { component_id, ports, env, health_check, network_mode, .. } = &target.config else {
        return None;
    };
    let component = release.components.iter().find(|c| c.component_id == *component_id)?;
    let image = format!("{}@{}", component.image, component.digest);
    let labels = [
        ("gantry.release", release.id.to_string()),
        ("gantry.release-name", release.name.to_string()),
        ("gantry.component", component.component_name.clone()),
        ("gantry.digest", component.digest.to_string()),
        ("gantry.target", target.id.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let host_config = HostConfig {
        network_mode: Some(network_mode.clone()),
        port_bindings: (network_mode != "host" && network_mode != "none").then(|| {
            ports
                .iter()
                .map(|p| {
                    (
                        format!("{}/tcp", p.container),
                        Some(vec![PortBinding {
                            host_ip: Some("127.0.0.1".into()),
                            host_port: Some(p.host.to_string()),
                        }]),
                    )
                })
                .collect()
        }),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(image.clone()),
        env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        healthcheck: health_check.as_ref().map(health_config),
        host_config: Some(host_config),
        ..Default::default()
    };
    Some(body)
}

/// What a deployment to `target` applies, rendered without reaching it (for a job an
/// agent applies and verifies).
pub fn render(target: &DeploymentTarget, release: &Release) -> Result<Applied> {
    match &target.config {
        TargetConfig::Docker { .. } => container_body(target, release)
            .map(|body| Applied::json(ArtifactKind::DockerContainer, &body))
            .ok_or_else(|| DomainError::validation("the release does not contain the target's component")),
        TargetConfig::Compose { file, services, .. } => gantry_domain::compose::render(file, services, release)
            .map(|stack| Applied { kind: ArtifactKind::ComposeFile, content: stack.rendered }),
        _ => Err(DomainError::validation("only Docker and Compose targets are served by agents")),
    }
}

/// What ran before a deployment: whether the old container ran.
#[derive(Serialize, Deserialize)]
struct Prior {
    container: String,
    running: bool,
}

/// Creates a container named `name` and starts it.
pub(crate) async fn create_and_start(docker: &Docker, name: &str, body: ContainerCreateBody) -> Result<()> {
    let options = CreateContainerOptionsBuilder::new().name(name).build();
    docker.create_container(Some(options), body).await.map_err(engine)?;
    docker.start_container(name, None).await.map_err(engine)
}

/// The Engine's form of a target's health check.
fn health_config(h: &HealthCheck) -> HealthConfig {
    HealthConfig {
        test: Some(std::iter::once("CMD".to_owned()).chain(h.command.iter().cloned()).collect()),
        interval: Some(secs(h.interval_seconds)),
        timeout: Some(secs(h.timeout_seconds)),
        retries: Some(i64::from(h.retries)),
        ..Default::default()
    }
}

/// Runs the image as a canary container beside the old one (its own command and environment
/// on top of the target's, the target's health check), waits until it is up, measures it,
/// and removes it: the analysis's verdict.
async fn run_canary(
    docker: &Docker,
    name: &str,
    image: &str,
    (env, health_check): (&std::collections::BTreeMap<String, String>, Option<&HealthCheck>),
    canary: &DockerCanary,
) -> Result<std::result::Result<String, String>> {
    let remove = || docker.remove_container(name, Some(RemoveContainerOptionsBuilder::new().force(true).build()));
    let _ = remove().await;
    let mut merged = env.clone();
    merged.extend(canary.env.clone());
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: canary.command.clone(),
        env: Some(merged.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some([("gantry.canary".to_owned(), "true".to_owned())].into()),
        healthcheck: health_check.map(health_config),
        host_config: Some(HostConfig { network_mode: Some("host".into()), ..Default::default() }),
        ..Default::default()
    };
    // A canary that cannot even start is a failed verdict at once, and leaves nothing behind.
    match create_and_start(docker, name, body).await {
        Ok(()) => {}
        Err(DomainError::Validation(why)) => {
            let _ = remove().await;
            return Ok(Err(format!("the canary container did not start: {why}")));
        }
        Err(err) => {
            let _ = remove().await;
            return Err(err);
        }
    }
    // Measured once it is up: healthy by the target's check, or still running a moment
    // after it started.
    let up = wait_healthy(docker, name, health_check.is_some(), health_budget(health_check)).await;
    let verdict = match up {
        Ok(true) => crate::canary::analyse(&gantry_ci::HttpProber::default(), &canary.analysis).await,
        Ok(false) => Err("the canary container did not become healthy".to_owned()),
        Err(err) => {
            let _ = remove().await;
            return Err(err);
        }
    };
    let _ = remove().await;
    Ok(verdict)
}

/// Starts a stopped container; one that runs already (a 304) is left as it is.
pub(crate) async fn start_again(docker: &Docker, name: &str) -> Result<()> {
    match docker.start_container(name, None).await {
        Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
        Err(err) => Err(engine(err)),
    }
}

/// How long a new container may take to turn healthy: its checks' retries (and two more)
/// at the longer of interval and timeout, or 3 s without a health check.
fn health_budget(health_check: Option<&HealthCheck>) -> Duration {
    health_check.map_or(Duration::from_secs(3), |h| {
        Duration::from_secs(u64::from(h.interval_seconds.max(h.timeout_seconds)) * u64::from(h.retries + 2))
    })
}

/// Healthy when the health check says so (or, without one, when it still runs after a
/// moment); unhealthy when the check fails or the container exits.
pub(crate) async fn wait_healthy(docker: &Docker, name: &str, checked: bool, budget: Duration) -> Result<bool> {
    let deadline = tokio::time::Instant::now() + budget;
    loop {
        let state = docker.inspect_container(name, None).await.map_err(engine)?.state.unwrap_or_default();
        if state.running != Some(true) {
            return Ok(false);
        }
        match state.health.and_then(|h| h.status) {
            Some(HealthStatusEnum::HEALTHY) => return Ok(true),
            Some(HealthStatusEnum::UNHEALTHY) => return Ok(false),
            _ if !checked && tokio::time::Instant::now() >= deadline => return Ok(true),
            _ if tokio::time::Instant::now() >= deadline => return Ok(false),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Removes a container, if there is one.
pub(crate) async fn remove(docker: &Docker, name: &str) {
    let force = RemoveContainerOptionsBuilder::new().force(true).build();
    let _ = docker.remove_container(name, Some(force)).await;
}

/// The `gantry.slot` label of a running container, if it runs.
pub(crate) async fn running_slot(docker: &Docker, name: &str) -> (bool, Option<String>) {
    let Ok(found) = docker.inspect_container(name, None).await else { return (false, None) };
    let running = found.state.and_then(|s| s.running).unwrap_or(false);
    (running, found.config.and_then(|c| c.labels?.get("gantry.slot").cloned()))
}

/// Stops `name` (letting requests in flight finish), removes it, and renames `next` to it.
pub(crate) async fn replace(docker: &Docker, name: &str, next: &str) -> Result<()> {
    if docker.inspect_container(name, None).await.is_ok() {
        let _ = docker.stop_container(name, Some(StopContainerOptionsBuilder::new().t(10).build())).await;
        remove(docker, name).await;
    }
    docker.rename_container(next, RenameContainerOptionsBuilder::new().name(name).build()).await.map_err(engine)
}

/// A Docker target's container behind a router (see [`crate::routed`]).
pub(crate) struct Container<'a> {
    docker: &'a Docker,
    name: &'a str,
    next: &'a str,
    body: ContainerCreateBody,
    health_check: Option<&'a HealthCheck>,
    /// Whether the new container was started.
    started: AtomicBool,
}

impl<'a> Container<'a> {
    pub(crate) fn new(
        docker: &'a Docker,
        name: &'a str,
        next: &'a str,
        body: ContainerCreateBody,
        health_check: Option<&'a HealthCheck>,
    ) -> Self {
        Self { docker, name, next, body, health_check, started: AtomicBool::new(false) }
    }

    /// What was applied: the container the release renders (what a pull agent's signed job
    /// carries), once one started; the slot it started in, and the slot's environment, are
    /// the target's and show in the traffic steps.
    pub(crate) fn applied(&self) -> Option<Applied> {
        self.started.load(Ordering::Relaxed).then(|| Applied::json(ArtifactKind::DockerContainer, &self.body))
    }
}

#[async_trait]
impl Sides for Container<'_> {
    async fn stable(&self) -> (bool, Option<String>) {
        running_slot(self.docker, self.name).await
    }

    async fn start(&self, slot: &Slot) -> Result<Option<String>> {
        let mut body = self.body.clone();
        body.env.get_or_insert_with(Vec::new).extend(slot_env(slot));
        body.labels.get_or_insert_with(Default::default).insert("gantry.slot".into(), slot.server.clone());
        self.started.store(true, Ordering::Relaxed);
        let budget = health_budget(self.health_check);
        let up = async {
            create_and_start(self.docker, self.next, body).await?;
            wait_healthy(self.docker, self.next, self.health_check.is_some(), budget).await
        };
        let why = match up.await {
            Ok(true) => return Ok(None),
            Ok(false) => "the new container did not become healthy".to_owned(),
            Err(gantry_domain::DomainError::Validation(why)) => format!("the new container did not start: {why}"),
            Err(err) => {
                self.discard().await;
                return Err(err);
            }
        };
        self.discard().await;
        Ok(Some(why))
    }

    async fn discard(&self) {
        remove(self.docker, self.next).await;
    }

    async fn take_over(&self) -> Result<()> {
        replace(self.docker, self.name, self.next).await
    }
}
