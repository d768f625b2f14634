//! A Compose target's stack behind a router (see [`crate::routed`]): the new stack starts
//! beside the stable one under names of its own, each service given the slot's environment,
//! and takes the stable stack's names once it takes every request.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HealthConfig, HostConfig};
use gantry_domain::Result;
use gantry_domain::compose::{ServiceSpec, Stack};
use gantry_domain::traffic::Slot;

use crate::docker::{create_and_start, remove, replace, running_slot, wait_healthy};
use crate::routed::{Sides, slot_env};

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
            let why = match start(self.docker, &next, &spec, &labels).await {
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

/// Creates and starts one service's container, and waits until it is healthy.
pub(crate) async fn start(
    docker: &Docker,
    name: &str,
    service: &ServiceSpec,
    labels: &HashMap<String, String>,
) -> Result<bool> {
    let mut labels = labels.clone();
    labels.extend(service.labels.clone());
    labels.insert("com.docker.compose.service".into(), service.name.clone());
    let seconds = |s: u64| i64::try_from(s).unwrap_or(i64::MAX / 2).saturating_mul(1_000_000_000);
    let body = ContainerCreateBody {
        image: Some(service.image.clone()),
        cmd: service.command.clone(),
        env: Some(service.environment.clone()),
        labels: Some(labels),
        healthcheck: service.healthcheck.as_ref().map(|(test, interval, timeout, retries)| HealthConfig {
            test: Some(test.clone()),
            interval: Some(seconds(*interval)),
            timeout: Some(seconds(*timeout)),
            retries: Some(i64::try_from(*retries).unwrap_or(3)),
            ..Default::default()
        }),
        host_config: Some(HostConfig { network_mode: Some(service.network_mode.clone()), ..Default::default() }),
        ..Default::default()
    };
    create_and_start(docker, name, body).await?;
    let budget = service.healthcheck.as_ref().map_or(Duration::from_secs(3), |(_, interval, timeout, retries)| {
        Duration::from_secs((*interval).max(*timeout) * (retries + 2))
    });
    wait_healthy(docker, name, service.healthcheck.is_some(), budget).await
}
