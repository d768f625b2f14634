//! Deployment targets in GraphQL.

use gantry_domain::agents::AgentId;
use std::collections::BTreeMap;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use gantry_domain::DomainError;
use gantry_domain::access::{Action, Resource};
use gantry_domain::targets::{self, DockerCanary, HealthCheck, PortMapping, TargetConfig, TargetId, Targets};
use gantry_domain::values::{ComponentId, EnvironmentId};

use crate::error::IntoGraphql;
use crate::guard::Can;
pub use crate::types::{KeyValue, KeyValueInput};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "gantry_domain::targets::TargetKind")]
pub enum TargetType {
    /// A container on a Docker Engine.
    Docker,
    /// An ECS service.
    Ecs,
    /// A Nomad job.
    Nomad,
    /// A compose stack on a Docker Engine.
    Compose,
}

pub struct DeploymentTarget(pub targets::DeploymentTarget);

#[derive(SimpleObject)]
pub struct Port {
    pub host: u16,
    pub container: u16,
}

/// A container or task name and the component it runs.
#[derive(SimpleObject)]
pub struct ComponentMapping {
    pub name: String,
    pub component_id: ID,
}

/// The TLS an engine is reached with: where its CA, client certificate and key are kept
/// (references, never the material).
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "EngineTlsInput")]
pub struct EngineTls {
    /// `env:<ENGINE>_NAME` (`DOCKER_` or `NOMAD_`), `ssm:/path` or `secretsmanager:name`
    /// holding the PEM certificates of the CA the engine's certificate must chain to.
    pub ca_ref: String,
    /// The PEM client certificate presented to the engine (Docker requires one).
    pub cert_ref: Option<String>,
    /// Its PEM private key.
    pub key_ref: Option<String>,
    /// The name the engine's certificate carries when it differs from the address's host
    /// (Nomad's `server.global.nomad`).
    pub server_name: Option<String>,
}

impl From<&gantry_domain::targets::EngineTls> for EngineTls {
    fn from(t: &gantry_domain::targets::EngineTls) -> Self {
        Self {
            ca_ref: t.ca_ref.clone(),
            cert_ref: t.cert_ref.clone(),
            key_ref: t.key_ref.clone(),
            server_name: t.server_name.clone(),
        }
    }
}

impl From<EngineTls> for gantry_domain::targets::EngineTls {
    fn from(t: EngineTls) -> Self {
        Self { ca_ref: t.ca_ref, cert_ref: t.cert_ref, key_ref: t.key_ref, server_name: t.server_name }
    }
}

#[derive(SimpleObject)]
pub struct DockerTarget {
    /// Where the control plane reaches the engine; null when an agent serves the target.
    pub endpoint: Option<String>,
    pub tls: Option<EngineTls>,
    /// The pull agent that applies its deployments on its own host.
    pub agent_id: Option<ID>,
    pub container_name: String,
    pub component_id: ID,
    pub ports: Vec<Port>,
    pub env: Vec<KeyValue>,
    pub health_check_command: Option<Vec<String>>,
    pub network_mode: String,
    /// Measured on a canary container before the old container is replaced.
    pub canary_analysis: Option<crate::analysis::Analysis>,
    /// The router in front of it and how requests move to each new version.
    pub traffic: Option<crate::traffic::Traffic>,
}

#[derive(SimpleObject)]
pub struct EcsTarget {
    pub cluster: String,
    pub service: String,
    pub containers: Vec<ComponentMapping>,
    /// Measured on a canary service running the new revision before the service is updated.
    pub canary_analysis: Option<crate::analysis::Analysis>,
    /// The ALB in front of its two services and how requests move to each new revision.
    pub traffic: Option<crate::traffic::Traffic>,
}

#[derive(SimpleObject)]
pub struct NomadTarget {
    pub address: String,
    pub namespace: String,
    pub job_id: String,
    pub tasks: Vec<ComponentMapping>,
    /// Where the ACL token is kept (never the token).
    pub token_ref: Option<String>,
    pub tls: Option<EngineTls>,
    /// Measured once the job's canaries are healthy, before promoting them.
    pub canary_analysis: Option<crate::analysis::Analysis>,
    /// Consul in front of its two jobs and how requests move to each new version.
    pub traffic: Option<crate::traffic::Traffic>,
}

#[derive(SimpleObject)]
pub struct ComposeTarget {
    pub endpoint: Option<String>,
    pub tls: Option<EngineTls>,
    pub agent_id: Option<ID>,
    pub project: String,
    /// The compose file as given (each deployment's artifact is the file it rendered).
    pub file: String,
    pub services: Vec<ComponentMapping>,
    /// The router in front of the stack and how requests move to each new stack.
    pub traffic: Option<crate::traffic::Traffic>,
}

fn mappings(map: &BTreeMap<String, ComponentId>) -> Vec<ComponentMapping> {
    map.iter().map(|(name, id)| ComponentMapping { name: name.clone(), component_id: ID(id.to_string()) }).collect()
}

#[Object]
impl DeploymentTarget {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn environment_id(&self) -> ID {
        ID(self.0.environment_id.to_string())
    }
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    #[graphql(name = "type")]
    async fn kind(&self) -> TargetType {
        self.0.config.kind().into()
    }
    async fn docker(&self) -> Option<DockerTarget> {
        match &self.0.config {
            TargetConfig::Docker {
                endpoint,
                tls,
                agent_id,
                container_name,
                component_id,
                ports,
                env,
                health_check,
                network_mode,
                canary,
                traffic,
            } => Some(DockerTarget {
                traffic: traffic.as_deref().map(Into::into),
                canary_analysis: canary.as_ref().map(|c| (&c.analysis).into()),
                endpoint: (!endpoint.is_empty()).then(|| endpoint.clone()),
                tls: tls.as_ref().map(Into::into),
                agent_id: agent_id.map(|a| ID(a.to_string())),
                container_name: container_name.clone(),
                component_id: ID(component_id.to_string()),
                ports: ports.iter().map(|p| Port { host: p.host, container: p.container }).collect(),
                env: env.iter().map(|(key, value)| KeyValue { key: key.clone(), value: value.clone() }).collect(),
                health_check_command: health_check.as_ref().map(|h| h.command.clone()),
                network_mode: network_mode.clone(),
            }),
            _ => None,
        }
    }
    async fn ecs(&self) -> Option<EcsTarget> {
        match &self.0.config {
            TargetConfig::Ecs { cluster, service, containers, canary_analysis, traffic } => Some(EcsTarget {
                traffic: traffic.as_deref().map(Into::into),
                cluster: cluster.clone(),
                service: service.clone(),
                containers: mappings(containers),
                canary_analysis: canary_analysis.as_ref().map(Into::into),
            }),
            _ => None,
        }
    }
    async fn nomad(&self) -> Option<NomadTarget> {
        match &self.0.config {
            TargetConfig::Nomad { address, namespace, job_id, tasks, token_ref, tls, canary_analysis, traffic } => {
                Some(NomadTarget {
                    traffic: traffic.as_deref().map(Into::into),
                    canary_analysis: canary_analysis.as_ref().map(Into::into),
                    address: address.clone(),
                    namespace: namespace.clone(),
                    job_id: job_id.clone(),
                    tasks: mappings(tasks),
                    token_ref: token_ref.clone(),
                    tls: tls.as_ref().map(Into::into),
                })
            }
            _ => None,
        }
    }
    async fn compose(&self) -> Option<ComposeTarget> {
        match &self.0.config {
            TargetConfig::Compose { endpoint, tls, agent_id, project, file, services, traffic } => {
                Some(ComposeTarget {
                    traffic: traffic.as_deref().map(Into::into),
                    endpoint: (!endpoint.is_empty()).then(|| endpoint.clone()),
                    tls: tls.as_ref().map(Into::into),
                    agent_id: agent_id.map(|a| ID(a.to_string())),
                    project: project.clone(),
                    file: file.clone(),
                    services: mappings(services),
                })
            }
            _ => None,
        }
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(InputObject)]
pub struct PortInput {
    pub host: u16,
    pub container: u16,
}

#[derive(InputObject)]
pub struct ComponentMappingInput {
    pub name: String,
    pub component_id: ID,
}

#[derive(InputObject)]
pub struct HealthCheckInput {
    /// Run inside the container, such as `["wget", "-q", "-O-", "http://127.0.0.1:8080/health"]`.
    pub command: Vec<String>,
    #[graphql(default = 2)]
    pub interval_seconds: u32,
    #[graphql(default = 2)]
    pub timeout_seconds: u32,
    #[graphql(default = 5)]
    pub retries: u32,
}

#[derive(InputObject)]
pub struct DockerTargetInput {
    /// `unix:///var/run/docker.sock`, `tcp+tls://host:port` (with `tls`), or
    /// `tcp://host:port` on loopback only. Not with `agentId`.
    pub endpoint: Option<String>,
    /// The CA, client certificate and key of a `tcp+tls://` endpoint.
    pub tls: Option<EngineTls>,
    /// A pull agent that applies the deployments on its host's engine, instead of an
    /// endpoint.
    pub agent_id: Option<ID>,
    pub container_name: String,
    pub component_id: ID,
    #[graphql(default)]
    pub ports: Vec<PortInput>,
    #[graphql(default)]
    pub env: Vec<KeyValueInput>,
    pub health_check: Option<HealthCheckInput>,
    /// `host` (default) or `none`.
    #[graphql(default_with = "String::from(\"host\")")]
    pub network_mode: String,
    /// A canary container run beside the old one, measured before it is replaced.
    pub canary: Option<DockerCanaryInput>,
    /// A router in front of the container: each new version starts beside the old one and
    /// requests move to it by the strategy (not with `canary` or `agentId`).
    pub traffic: Option<crate::traffic::TrafficInput>,
}

/// The canary's own command and environment (on the host network it needs a port of its
/// own), and what is measured.
#[derive(InputObject)]
pub struct DockerCanaryInput {
    pub command: Option<Vec<String>>,
    #[graphql(default)]
    pub env: Vec<KeyValueInput>,
    pub analysis: crate::analysis::AnalysisInput,
}

#[derive(InputObject)]
pub struct EcsTargetInput {
    pub cluster: String,
    pub service: String,
    pub containers: Vec<ComponentMappingInput>,
    /// Measured on a one-task canary service (`<service>-canary`) running the new revision;
    /// the service is updated when it passes and left as it was when not.
    pub canary_analysis: Option<crate::analysis::AnalysisInput>,
    /// An ALB in front of two services (`service` one of them): each new revision runs in
    /// the idle one and requests move to it by the strategy (not with `canaryAnalysis`).
    pub traffic: Option<crate::traffic::TrafficInput>,
}

#[derive(InputObject)]
pub struct NomadTargetInput {
    /// `http(s)://host:port` of the Nomad API.
    pub address: String,
    #[graphql(default_with = "String::from(\"default\")")]
    pub namespace: String,
    pub job_id: String,
    pub tasks: Vec<ComponentMappingInput>,
    /// `env:NOMAD_NAME`, `ssm:/path` or `secretsmanager:name`.
    pub token_ref: Option<String>,
    /// A private CA, a client certificate (mTLS) and the server name, for an `https://`
    /// address.
    pub tls: Option<EngineTls>,
    /// For a job whose update stanza places canaries: measured once they are healthy; the
    /// deployment is promoted when it passes, failed and reverted when not.
    pub canary_analysis: Option<crate::analysis::AnalysisInput>,
    /// Consul in front of two jobs (`jobId` one of them): each new version runs in the
    /// idle one and requests move to it by the strategy (not with `canaryAnalysis`).
    pub traffic: Option<crate::traffic::TrafficInput>,
}

/// A compose stack: the file, and which of its services run which component.
#[derive(InputObject)]
pub struct ComposeTargetInput {
    /// As for a Docker target.
    pub endpoint: Option<String>,
    pub tls: Option<EngineTls>,
    pub agent_id: Option<ID>,
    pub project: String,
    /// The compose file (YAML, at most 16 KiB).
    pub file: String,
    pub services: Vec<ComponentMappingInput>,
    /// A router in front of the stack: each new stack starts beside the old one (every
    /// service gets the slot's environment), requests move to it by the strategy, and the
    /// old stack stops after (not with `agentId`).
    pub traffic: Option<crate::traffic::TrafficInput>,
}

/// `type` and the one matching configuration.
#[derive(InputObject)]
pub struct AddDeploymentTargetInput {
    pub name: String,
    #[graphql(name = "type")]
    pub kind: TargetType,
    pub docker: Option<DockerTargetInput>,
    pub ecs: Option<EcsTargetInput>,
    pub nomad: Option<NomadTargetInput>,
    pub compose: Option<ComposeTargetInput>,
}

fn component(id: &ID) -> Result<ComponentId, DomainError> {
    ComponentId::parse(id)
}

fn mapping(input: Vec<ComponentMappingInput>) -> Result<BTreeMap<String, ComponentId>, DomainError> {
    let mut map = BTreeMap::new();
    for m in input {
        if map.insert(m.name.clone(), component(&m.component_id)?).is_some() {
            return Err(DomainError::validation(format!("{} is mapped twice", m.name)));
        }
    }
    Ok(map)
}

fn config(input: AddDeploymentTargetInput) -> Result<TargetConfig, DomainError> {
    let given = [input.docker.is_some(), input.ecs.is_some(), input.nomad.is_some(), input.compose.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(DomainError::validation("give the configuration that matches type, and only that one"));
    }
    if let (TargetType::Compose, Some(c)) = (input.kind, input.compose) {
        return Ok(TargetConfig::Compose {
            endpoint: c.endpoint.unwrap_or_default(),
            tls: c.tls.map(Into::into),
            agent_id: c.agent_id.as_ref().map(|a| AgentId::parse(a)).transpose()?,
            project: c.project,
            file: c.file,
            services: mapping(c.services)?,
            traffic: c.traffic.map(|t| t.into_domain().map(Box::new)).transpose()?,
        });
    }
    match (input.kind, input.docker, input.ecs, input.nomad) {
        (TargetType::Docker, Some(d), None, None) => Ok(TargetConfig::Docker {
            endpoint: d.endpoint.unwrap_or_default(),
            tls: d.tls.map(Into::into),
            agent_id: d.agent_id.as_ref().map(|a| AgentId::parse(a)).transpose()?,
            container_name: d.container_name,
            component_id: component(&d.component_id)?,
            ports: d.ports.into_iter().map(|p| PortMapping { host: p.host, container: p.container }).collect(),
            env: d.env.into_iter().map(|kv| (kv.key, kv.value)).collect(),
            health_check: d.health_check.map(|h| HealthCheck {
                command: h.command,
                interval_seconds: h.interval_seconds,
                timeout_seconds: h.timeout_seconds,
                retries: h.retries,
            }),
            network_mode: d.network_mode,
            canary: d
                .canary
                .map(|c| -> Result<DockerCanary, DomainError> {
                    Ok(DockerCanary {
                        command: c.command,
                        env: c.env.into_iter().map(|kv| (kv.key, kv.value)).collect(),
                        analysis: c.analysis.into_spec("canary analysis")?,
                    })
                })
                .transpose()?,
            traffic: d.traffic.map(|t| t.into_domain().map(Box::new)).transpose()?,
        }),
        (TargetType::Ecs, None, Some(e), None) => {
            let canary_analysis = e.canary_analysis.map(|a| a.into_spec("canary analysis")).transpose()?;
            Ok(TargetConfig::Ecs {
                cluster: e.cluster,
                service: e.service,
                containers: mapping(e.containers)?,
                canary_analysis,
                traffic: e.traffic.map(|t| t.into_domain().map(Box::new)).transpose()?,
            })
        }
        (TargetType::Nomad, None, None, Some(n)) => Ok(TargetConfig::Nomad {
            address: n.address,
            namespace: n.namespace,
            job_id: n.job_id,
            tasks: mapping(n.tasks)?,
            token_ref: n.token_ref,
            tls: n.tls.map(Into::into),
            canary_analysis: n.canary_analysis.map(|a| a.into_spec("canary analysis")).transpose()?,
            traffic: n.traffic.map(|t| t.into_domain().map(Box::new)).transpose()?,
        }),
        _ => Err(DomainError::validation("give the configuration that matches type, and only that one")),
    }
}

#[derive(Default)]
pub struct TargetMutation;

#[Object]
impl TargetMutation {
    /// Adds a target to an environment; its configuration is checked now.
    #[graphql(guard = "Can(Resource::Environment, Action::Update)")]
    async fn add_deployment_target(
        &self,
        ctx: &Context<'_>,
        environment_id: ID,
        input: AddDeploymentTargetInput,
    ) -> async_graphql::Result<DeploymentTarget> {
        let environment = EnvironmentId::parse(&environment_id).gql()?;
        let name = input.name.clone();
        let config = config(input).gql()?;
        ctx.data_unchecked::<Targets>().add(environment, &name, config).await.gql().map(DeploymentTarget)
    }

    #[graphql(guard = "Can(Resource::Environment, Action::Update)")]
    async fn remove_deployment_target(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<DeploymentTarget> {
        let id = TargetId::parse(&id).gql()?;
        ctx.data_unchecked::<Targets>().remove(id).await.gql().map(DeploymentTarget)
    }
}
