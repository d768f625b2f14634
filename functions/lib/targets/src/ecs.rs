//! ECS: describe the service and its task definition, register a revision whose mapped
//! containers run `image@digest`, update the service and follow its deployment until it is
//! stable; when it fails (or outlives the deadline) the service goes back to the previous
//! task definition.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{ContainerDefinition, DeploymentRolloutState, TaskDefinition};
use gantry_domain::analysis::{AnalysisSpec, Prober};
use gantry_domain::artifacts::{Applied, ArtifactKind};
use gantry_domain::deployments::{Attempt, DriverOutcome, TargetDriver, prior_or_remember};
use gantry_domain::model::Release;
use gantry_domain::targets::{DeploymentTarget, TargetConfig};
use gantry_domain::{DomainError, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::instrument;

use crate::canary::analyse;

pub struct EcsDriver {
    pub client: Client,
    /// How long a deployment may run before the service is restored.
    pub deadline: Duration,
    /// How often the service is read.
    pub poll: Duration,
    /// What measures a canary analysis.
    pub prober: std::sync::Arc<dyn Prober>,
    /// The load balancer that steers targets with `traffic`.
    pub router: Option<crate::alb::Alb>,
}

impl EcsDriver {
    pub fn new(client: Client) -> Self {
        let prober = std::sync::Arc::new(gantry_ci::HttpProber::default());
        Self { client, deadline: Duration::from_secs(600), poll: Duration::from_secs(2), prober, router: None }
    }

    async fn restore(&self, cluster: &str, service: &str, previous: &str, why: String) -> Result<DriverOutcome> {
        self.client
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(previous)
            .send()
            .await
            .map_err(ecs)?;
        Ok(DriverOutcome { succeeded: false, applied: None, message: format!("{why}; restored {previous}") })
    }
}

/// What ran before a deployment: the service's task definition.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Prior {
    task_definition: String,
}

/// An ECS error: ECS refusing the request (`ClientException`, `InvalidParameterException`,
/// a missing service or cluster) is a `Validation` error the deployment fails with; anything
/// else may pass and is `Internal`.
pub(crate) fn ecs<E, R>(err: aws_sdk_ecs::error::SdkError<E, R>) -> DomainError
where
    E: aws_sdk_ecs::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let refused = err.as_service_error().and_then(|e| e.code().map(|code| (code.to_owned(), e.message())));
    match refused {
        Some((code, message))
            if matches!(
                code.as_str(),
                "ClientException"
                    | "InvalidParameterException"
                    | "ServiceNotFoundException"
                    | "ClusterNotFoundException"
            ) =>
        {
            let message: String = message.unwrap_or_default().chars().take(300).collect();
            DomainError::validation(format!("ECS refused ({code}): {message}"))
        }
        _ => DomainError::internal(format!("ECS: {err:?}")),
    }
}

#[async_trait]
impl TargetDriver for EcsDriver {
    #[instrument(skip_all, fields(target = %target.name), err(level = "info"))]
    async fn deploy(
        &self,
        target: &DeploymentTarget,
        release: &Release,
        attempt: &dyn Attempt,
    ) -> Result<DriverOutcome> {
        let TargetConfig::Ecs { cluster, service, containers, canary_analysis, traffic } = &target.config else {
            return Err(DomainError::internal("the ECS driver got another kind of target"));
        };
        if let Some(traffic) = traffic {
            return self.deploy_routed(cluster, (containers, release), traffic, attempt).await;
        }
        let (current, td) = match self.current(cluster, service).await? {
            Ok(found) => found,
            Err(message) => return Ok(DriverOutcome { succeeded: false, applied: None, message }),
        };
        let td = &td;
        let definitions = match pin(td, containers, release) {
            Ok(definitions) => definitions,
            Err(message) => return Ok(DriverOutcome { succeeded: false, applied: None, message }),
        };
        let applied = Applied::json(ArtifactKind::EcsTaskDefinition, &task_definition_json(td, &definitions, service));
        // The task definition that ran before the deployment's first attempt is what a failed
        // rollout restores, even when a worker that died had already moved the service on.
        let (Prior { task_definition: before }, _) =
            prior_or_remember(attempt, Prior { task_definition: current.clone() }).await?;
        let canary = canary_analysis.as_ref();
        let outcome = self.roll_out(cluster, service, td, (definitions, canary), &before).await?;
        Ok(DriverOutcome { applied: Some(applied), ..outcome })
    }
}

impl EcsDriver {
    /// The task definition a service runs: its ARN and content, or why there is none.
    pub(crate) async fn current(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<std::result::Result<(String, TaskDefinition), String>> {
        let described = self.client.describe_services().cluster(cluster).services(service).send().await.map_err(ecs)?;
        let Some(current) = described.services().first().and_then(|s| s.task_definition()).map(str::to_owned) else {
            return Ok(Err(format!("service {service} not found in {cluster}")));
        };
        let td = self.client.describe_task_definition().task_definition(&current).send().await.map_err(ecs)?;
        match td.task_definition() {
            Some(td) => Ok(Ok((current, td.clone()))),
            None => Ok(Err(format!("task definition {current} not found"))),
        }
    }

    /// Registers `td` again with `definitions`: the new revision's ARN.
    pub(crate) async fn register(
        &self,
        td: &TaskDefinition,
        definitions: Vec<ContainerDefinition>,
        service: &str,
    ) -> Result<String> {
        let registered = self
            .client
            .register_task_definition()
            .family(td.family().unwrap_or(service))
            .set_container_definitions(Some(definitions))
            .set_task_role_arn(td.task_role_arn().map(str::to_owned))
            .set_execution_role_arn(td.execution_role_arn().map(str::to_owned))
            .set_network_mode(td.network_mode().cloned())
            .set_requires_compatibilities(Some(td.requires_compatibilities().to_vec()).filter(|v| !v.is_empty()))
            .set_cpu(td.cpu().map(str::to_owned))
            .set_memory(td.memory().map(str::to_owned))
            .set_volumes(Some(td.volumes().to_vec()).filter(|v| !v.is_empty()))
            .send()
            .await
            .map_err(ecs)?;
        registered
            .task_definition()
            .and_then(|t| t.task_definition_arn())
            .map(str::to_owned)
            .ok_or_else(|| DomainError::internal("ECS: no revision"))
    }

    /// Registers `td` again with `definitions`, points the service at it and follows the
    /// deployment; restores `current` when it fails or outlives the deadline.
    async fn roll_out(
        &self,
        cluster: &str,
        service: &str,
        td: &TaskDefinition,
        (definitions, canary): (Vec<ContainerDefinition>, Option<&AnalysisSpec>),
        current: &str,
    ) -> Result<DriverOutcome> {
        let next = self.register(td, definitions, service).await?;
        let mut note = String::new();
        if let Some(spec) = canary {
            match self.canary(cluster, service, &next, spec).await? {
                Ok(summary) => note = format!("{summary}; "),
                Err(why) => {
                    let message = format!("canary analysis failed: {why}; {service} still runs {current}");
                    return Ok(DriverOutcome { succeeded: false, applied: None, message });
                }
            }
        }
        self.client
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(&next)
            .send()
            .await
            .map_err(ecs)?;
        match self.rollout(cluster, service, &next).await? {
            Ok(()) => {
                Ok(DriverOutcome { succeeded: true, applied: None, message: format!("{note}{service} runs {next}") })
            }
            Err(why) => self.restore(cluster, service, current, why).await,
        }
    }

    /// Follows a service's primary deployment until it runs `next`: `Err` says why it failed
    /// or did not become stable in time.
    pub(crate) async fn rollout(
        &self,
        cluster: &str,
        service: &str,
        next: &str,
    ) -> Result<std::result::Result<(), String>> {
        let deadline = tokio::time::Instant::now() + self.deadline;
        loop {
            let described =
                self.client.describe_services().cluster(cluster).services(service).send().await.map_err(ecs)?;
            let primary = described
                .services()
                .first()
                .and_then(|s| s.deployments().iter().find(|d| d.status() == Some("PRIMARY")))
                .cloned();
            match primary.as_ref().and_then(|d| d.rollout_state()) {
                Some(DeploymentRolloutState::Completed)
                    if primary.as_ref().and_then(|d| d.task_definition()) == Some(next) =>
                {
                    return Ok(Ok(()));
                }
                Some(DeploymentRolloutState::Failed) => {
                    let why = primary.and_then(|d| d.rollout_state_reason().map(str::to_owned));
                    return Ok(Err(why.unwrap_or_else(|| "rollout failed".into())));
                }
                _ if tokio::time::Instant::now() > deadline => {
                    return Ok(Err(format!("{service} did not become stable in time")));
                }
                _ => tokio::time::sleep(self.poll).await,
            }
        }
    }

    /// Runs `next` as a one-task canary service beside `service`, measures it, and removes it:
    /// the verdict of the analysis (the primary service is not touched).
    async fn canary(
        &self,
        cluster: &str,
        service: &str,
        next: &str,
        spec: &AnalysisSpec,
    ) -> Result<std::result::Result<String, String>> {
        let name = format!("{service}-canary");
        let primary = self.client.describe_services().cluster(cluster).services(service).send().await.map_err(ecs)?;
        let primary = primary.services().first().cloned();
        self.client
            .create_service()
            .cluster(cluster)
            .service_name(&name)
            .task_definition(next)
            .desired_count(1)
            .set_launch_type(primary.as_ref().and_then(|p| p.launch_type().cloned()))
            .set_network_configuration(primary.as_ref().and_then(|p| p.network_configuration().cloned()))
            .send()
            .await
            .map_err(ecs)?;
        let verdict = match self.rollout(cluster, &name, next).await? {
            Ok(()) => analyse(self.prober.as_ref(), spec).await,
            Err(why) => Err(format!("the canary did not run: {why}")),
        };
        self.client.delete_service().cluster(cluster).service(&name).force(true).send().await.map_err(ecs)?;
        Ok(verdict)
    }
}

/// The task definition's containers with the release's images pinned by digest, or why not.
pub(crate) fn pin(
    td: &TaskDefinition,
    containers: &std::collections::BTreeMap<String, gantry_domain::ids::ComponentId>,
    release: &Release,
) -> std::result::Result<Vec<ContainerDefinition>, String> {
    let mut definitions = td.container_definitions().to_vec();
    for (name, component) in containers {
        let Some(pinned) = release.components.iter().find(|c| c.component_id == *component) else { continue };
        match definitions.iter_mut().find(|d| d.name() == Some(name.as_str())) {
            Some(d) => d.image = Some(format!("{}@{}", pinned.image, pinned.digest)),
            None => {
                let family = td.task_definition_arn().unwrap_or_default();
                return Err(format!("task definition {family} has no container {name}"));
            }
        }
    }
    Ok(definitions)
}

/// The task definition registered, as JSON (the SDK's types do not serialize): its family,
/// roles, sizes and network mode, and each container's image, sizes, ports, environment and
/// command.
pub(crate) fn task_definition_json(td: &TaskDefinition, definitions: &[ContainerDefinition], service: &str) -> Value {
    let containers: Vec<Value> = definitions
        .iter()
        .map(|d| {
            let ports: Vec<Value> = d
                .port_mappings()
                .iter()
                .map(|p| json!({ "containerPort": p.container_port(), "hostPort": p.host_port(), "protocol": p.protocol().map(|x| x.as_str()) }))
                .collect();
            let environment: Vec<Value> =
                d.environment().iter().map(|e| json!({ "name": e.name(), "value": e.value() })).collect();
            json!({ "name": d.name(), "image": d.image(), "cpu": d.cpu(), "memory": d.memory(),
                    "memoryReservation": d.memory_reservation(), "essential": d.essential(), "portMappings": ports,
                    "environment": environment, "command": d.command(), "entryPoint": d.entry_point() })
        })
        .collect();
    json!({ "family": td.family().unwrap_or(service), "taskRoleArn": td.task_role_arn(),
            "executionRoleArn": td.execution_role_arn(), "networkMode": td.network_mode().map(|m| m.as_str()),
            "requiresCompatibilities": td.requires_compatibilities().iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "cpu": td.cpu(), "memory": td.memory(), "containerDefinitions": containers })
}
