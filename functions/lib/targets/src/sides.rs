//! What runs in a router's slot: one container (Docker targets) or a whole stack (Compose
//! targets), started beside the stable one under names of their own and given the stable
//! one's names once they take every request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{RenameContainerOptionsBuilder, StopContainerOptionsBuilder};
use gantry_domain::Result;
use gantry_domain::artifacts::{Applied, ArtifactKind};
use gantry_domain::compose::Stack;
use gantry_domain::targets::HealthCheck;
use gantry_domain::traffic::Slot;

use crate::docker::{create_and_start, engine, wait_healthy};
use crate::routed::{Sides, slot_env};

async fn remove(docker: &Docker, name: &str) {
    crate::compose::remove(docker, name).await;
}

/// The `gantry.slot` label of a running container, if it runs.
async fn running_slot(docker: &Docker, name: &str) -> (bool, Option<String>) {
    let Ok(found) = docker.inspect_container(name, None).await else { return (false, None) };
    let running = found.state.and_then(|s| s.running).unwrap_or(false);
    (running, found.config.and_then(|c| c.labels?.get("gantry.slot").cloned()))
}

/// Stops `name` (letting requests in flight finish), removes it, and renames `next` to it.
async fn replace(docker: &Docker, name: &str, next: &str) -> Result<()> {
    if docker.inspect_container(name, None).await.is_ok() {
        let _ = docker.stop_container(name, Some(StopContainerOptionsBuilder::new().t(10).build())).await;
        remove(docker, name).await;
    }
    docker.rename_container(next, RenameContainerOptionsBuilder::new().name(name).build()).await.map_err(engine)
}

/// A Docker target's container.
pub(crate) struct Container<'a> {
    docker: &'a Docker,
    name: &'a str,
    next: &'a str,
    body: ContainerCreateBody,
    health_check: Option<&'a HealthCheck>,
    /// The body the new container was started with (its slot's environment and label).
    started: Mutex<Option<ContainerCreateBody>>,
}

impl<'a> Container<'a> {
    pub(crate) fn new(
        docker: &'a Docker,
        name: &'a str,
        next: &'a str,
        body: ContainerCreateBody,
        health_check: Option<&'a HealthCheck>,
    ) -> Self {
        Self { docker, name, next, body, health_check, started: Mutex::new(None) }
    }

    /// What was applied: the body the new container started with.
    pub(crate) fn applied(&self) -> Option<Applied> {
        let started = self.started.lock().ok()?.clone()?;
        Some(Applied::json(ArtifactKind::DockerContainer, &started))
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
        if let Ok(mut started) = self.started.lock() {
            *started = Some(body.clone());
        }
        let budget = self.health_check.map_or(Duration::from_secs(3), |h| {
            Duration::from_secs(u64::from(h.interval_seconds.max(h.timeout_seconds)) * u64::from(h.retries + 2))
        });
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

/// A Compose target's stack: every service, each container `<project>-<service>`, the new
/// ones `<project>-<service>-<suffix>`, started in `depends_on` order.
pub(crate) struct ComposeStack<'a> {
    pub docker: &'a Docker,
    pub project: &'a str,
    pub stack: &'a Stack,
    pub labels: &'a HashMap<String, String>,
    pub suffix: String,
}

impl ComposeStack<'_> {
    fn names(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.stack
            .services
            .iter()
            .map(|s| (format!("{}-{}", self.project, s.name), format!("{}-{}-{}", self.project, s.name, self.suffix)))
    }
}

#[async_trait]
impl Sides for ComposeStack<'_> {
    async fn stable(&self) -> (bool, Option<String>) {
        let Some((first, _)) = self.names().next() else { return (false, None) };
        running_slot(self.docker, &first).await
    }

    async fn start(&self, slot: &Slot) -> Result<Option<String>> {
        let mut labels = self.labels.clone();
        labels.insert("gantry.slot".into(), slot.server.clone());
        for (service, (_, next)) in self.stack.services.iter().zip(self.names()) {
            let mut spec = service.clone();
            spec.environment.extend(slot_env(slot));
            let why = match crate::compose::start(self.docker, &next, &spec, &labels).await {
                Ok(true) => continue,
                Ok(false) => format!("service {} did not become healthy", service.name),
                Err(gantry_domain::DomainError::Validation(why)) => {
                    format!("service {} did not start: {why}", service.name)
                }
                Err(err) => {
                    self.discard().await;
                    return Err(err);
                }
            };
            self.discard().await;
            return Ok(Some(why));
        }
        Ok(None)
    }

    async fn discard(&self) {
        for (_, next) in self.names() {
            remove(self.docker, &next).await;
        }
    }

    async fn take_over(&self) -> Result<()> {
        for (name, next) in self.names() {
            replace(self.docker, &name, &next).await?;
        }
        Ok(())
    }
}
