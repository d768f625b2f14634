//! Compose stacks on a Docker Engine, through the Engine API rather than `docker compose`:
//! the deployer runs as a Lambda, where there is no CLI to call, and the Engine API is what
//! the Docker targets already speak, so a stack rolls out and back with the same steps.
//!
//! Each service of the rendered file (images pinned by digest) is pulled, then the running
//! stack is stopped (its services share the host's ports) and the new one started service by
//! service in `depends_on` order, each waited for until its health check passes. When every
//! service is up, the old containers are removed and the new ones take the names
//! `<project>-<service>`; when one does not come up, the new containers are removed and the
//! old stack starts again.

use std::collections::HashMap;

use async_trait::async_trait;
use bollard::Docker;
use bollard::query_parameters::{RenameContainerOptionsBuilder, StopContainerOptionsBuilder};
use gantry_domain::artifacts::{Applied, ArtifactKind};
use gantry_domain::compose::{self, Stack};
use gantry_domain::deployments::{Attempt, DriverOutcome, TargetDriver, prior_or_remember};
use gantry_domain::model::Release;
use gantry_domain::targets::{DeploymentTarget, TargetConfig};
use gantry_domain::values::Digest;
use gantry_domain::{DomainError, Result};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::docker::{connect, engine, pull, remove};
use crate::sides::start;

pub struct ComposeDriver {
    /// Reads the TLS material of `tcp+tls://` endpoints.
    pub secrets: std::sync::Arc<crate::secrets::Secrets>,
}

fn failed(message: String, applied: Option<Applied>) -> DriverOutcome {
    DriverOutcome { succeeded: false, message, applied }
}

#[async_trait]
impl TargetDriver for ComposeDriver {
    #[instrument(skip_all, fields(target = %target.name), err(level = "info"))]
    async fn deploy(
        &self,
        target: &DeploymentTarget,
        release: &Release,
        attempt: &dyn Attempt,
    ) -> Result<DriverOutcome> {
        let TargetConfig::Compose { endpoint, tls, project, file, services, traffic, .. } = &target.config else {
            return Err(DomainError::internal("the Compose driver got another kind of target"));
        };
        let stack = match compose::render(file, services, release) {
            Ok(stack) => stack,
            Err(DomainError::Validation(why)) => return Ok(failed(why, None)),
            Err(err) => return Err(err),
        };
        let applied = Applied { kind: ArtifactKind::ComposeFile, content: stack.rendered.clone() };
        let docker = connect(endpoint, tls.as_ref(), &self.secrets).await?;
        for service in &stack.services {
            pull(&docker, &service.image).await?;
        }
        let labels = labels(project, target, release);
        if let Some(traffic) = traffic {
            let suffix: String = Digest::of(stack.rendered.as_bytes()).as_str()[7..].chars().take(12).collect();
            let sides = crate::sides::ComposeStack { docker: &docker, project, stack: &stack, labels: &labels, suffix };
            let rolled = crate::routed::roll_out(&sides, &crate::haproxy::Haproxy, traffic, attempt).await?;
            let names: Vec<&str> = stack.services.iter().map(|s| s.name.as_str()).collect();
            let runs = format!("{project} runs {}", names.join(", "));
            return Ok(crate::routed::outcome(rolled, Some(applied), &runs));
        }
        // Which of the stack's containers ran before the deployment's first attempt: a worker
        // that died may have stopped them already, and a failure must still start them again.
        let now = Prior { running: running(&docker, project, &stack).await };
        let (Prior { running: ran }, _) = prior_or_remember(attempt, now).await?;
        let outcome = roll_out(&docker, project, &stack, (&labels, &ran)).await?;
        Ok(DriverOutcome { applied: Some(applied), ..outcome })
    }

    fn render(&self, target: &DeploymentTarget, release: &Release) -> Result<Applied> {
        crate::docker::render(target, release)
    }
}

/// The labels every container of the stack carries, beside the service's own.
fn labels(project: &str, target: &DeploymentTarget, release: &Release) -> HashMap<String, String> {
    [
        ("com.docker.compose.project", project.to_owned()),
        ("gantry.release", release.id.to_string()),
        ("gantry.release-name", release.name.to_string()),
        ("gantry.target", target.id.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The containers of the stack's services that run now.
async fn running(docker: &Docker, project: &str, stack: &Stack) -> Vec<String> {
    let mut running = Vec::new();
    for service in &stack.services {
        let name = format!("{project}-{}", service.name);
        if docker.inspect_container(&name, None).await.ok().and_then(|c| c.state?.running) == Some(true) {
            running.push(name);
        }
    }
    running
}

/// What ran before a deployment: the stack's containers that ran.
#[derive(Serialize, Deserialize)]
struct Prior {
    running: Vec<String>,
}

/// Stops the running stack, starts the new one, and keeps whichever came up.
async fn roll_out(
    docker: &Docker,
    project: &str,
    stack: &Stack,
    (labels, ran): (&HashMap<String, String>, &[String]),
) -> Result<DriverOutcome> {
    let suffix: String = Digest::of(stack.rendered.as_bytes()).as_str()["sha256:".len()..].chars().take(12).collect();
    for service in stack.services.iter().rev() {
        let name = format!("{project}-{}", service.name);
        let running = docker.inspect_container(&name, None).await.ok().and_then(|c| c.state?.running);
        if running == Some(true) {
            let stop = StopContainerOptionsBuilder::new().t(10).build();
            docker.stop_container(&name, Some(stop)).await.map_err(engine)?;
        }
    }
    let mut started = Vec::new();
    let mut failure = None;
    for service in &stack.services {
        let next = format!("{project}-{}-{suffix}", service.name);
        remove(docker, &next).await;
        started.push((next.clone(), format!("{project}-{}", service.name)));
        match start(docker, &next, service, labels).await {
            Ok(true) => {}
            Ok(false) => failure = Some(format!("service {} did not become healthy", service.name)),
            Err(err) => {
                tracing::warn!(service = %service.name, error = %err, "a service did not start");
                failure = Some(format!("service {} did not start", service.name));
            }
        }
        if failure.is_some() {
            break;
        }
    }
    let Some(why) = failure else {
        for (next, name) in &started {
            remove(docker, name).await;
            let rename = RenameContainerOptionsBuilder::new().name(name).build();
            docker.rename_container(next, rename).await.map_err(engine)?;
        }
        let names: Vec<&str> = stack.services.iter().map(|s| s.name.as_str()).collect();
        return Ok(DriverOutcome {
            succeeded: true,
            message: format!("{project} runs {}", names.join(", ")),
            applied: None,
        });
    };
    for (next, _) in &started {
        remove(docker, next).await;
    }
    for name in ran {
        crate::docker::start_again(docker, name).await?;
    }
    let kept = if ran.is_empty() { String::new() } else { "; the previous stack runs again".to_owned() };
    Ok(failed(format!("{why}{kept}"), None))
}

/// What one service's container is, as inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub running: bool,
    /// The image it was created from (a digest reference, for a container Gantry made).
    pub image: String,
    /// Its `gantry.release` label.
    pub release: Option<String>,
}

/// After an agent restarted in the middle of a compose job (which it never applies again):
/// whether every service of the job's stack runs it, its container `<project>-<service>`
/// running the service's image by digest with the job's release on its label, and what runs,
/// service by service.
pub async fn check_applied(docker: &Docker, target: &DeploymentTarget, release: &Release) -> Result<(bool, String)> {
    let TargetConfig::Compose { project, file, services, .. } = &target.config else {
        return Err(DomainError::internal("not a compose target"));
    };
    let stack = compose::render(file, services, release)?;
    let mut observed = Vec::new();
    for service in &stack.services {
        let inspected = docker.inspect_container(&format!("{project}-{}", service.name), None).await.ok();
        observed.push(inspected.map(|c| Observed {
            running: c.state.and_then(|s| s.running).unwrap_or(false),
            image: c.config.as_ref().and_then(|c| c.image.clone()).unwrap_or_default(),
            release: c.config.and_then(|c| c.labels?.get("gantry.release").cloned()),
        }));
    }
    Ok(verdict(project, &stack, &release.id.to_string(), &observed))
}

/// [`check_applied`]'s judgement of what was inspected (`observed`, in the stack's order).
fn verdict(project: &str, stack: &Stack, release: &str, observed: &[Option<Observed>]) -> (bool, String) {
    let mut all = true;
    let said: Vec<String> = stack
        .services
        .iter()
        .zip(observed)
        .map(|(service, seen)| {
            let name = format!("{project}-{}", service.name);
            match seen {
                Some(o) if o.running && o.image == service.image && o.release.as_deref() == Some(release) => {
                    format!("{name} runs {}", o.image)
                }
                Some(o) => {
                    all = false;
                    let state = if o.running { "runs" } else { "is stopped, with" };
                    format!("{name} {state} {} of release {}", o.image, o.release.as_deref().unwrap_or("unknown"))
                }
                None => {
                    all = false;
                    format!("{name} does not exist")
                }
            }
        })
        .collect();
    (all, said.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_domain::compose::ServiceSpec;

    #[test]
    fn a_stack_counts_as_applied_only_when_every_service_runs_the_release() {
        let release = "r-2";
        let service = |name: &str| ServiceSpec {
            name: name.into(),
            image: format!("reg/{name}@sha256:{}", "a".repeat(64)),
            command: None,
            environment: Vec::new(),
            network_mode: "host".into(),
            healthcheck: None,
            labels: Default::default(),
        };
        let stack = Stack { services: vec![service("web"), service("worker")], rendered: String::new() };
        let runs =
            |s: &ServiceSpec| Some(Observed { running: true, image: s.image.clone(), release: Some(release.into()) });
        let both = [runs(&stack.services[0]), runs(&stack.services[1])];
        let (ok, said) = verdict("shop", &stack, release, &both);
        assert!(ok, "{said}");
        assert!(said.contains("shop-web runs reg/web@sha256:") && said.contains("shop-worker runs"), "{said}");

        let old = Some(Observed { running: true, image: "reg/worker@sha256:old".into(), release: Some("r-1".into()) });
        let stopped = Some(Observed { running: false, ..runs(&stack.services[1]).unwrap() });
        for (worker, says) in [
            (old, "shop-worker runs reg/worker@sha256:old of release r-1"),
            (stopped, "shop-worker is stopped, with"),
            (None, "shop-worker does not exist"),
        ] {
            let (ok, said) = verdict("shop", &stack, release, &[runs(&stack.services[0]), worker]);
            assert!(!ok && said.contains(says), "{said}");
        }
    }
}
