//! Deployment targets: where an environment's releases run. Each is a Docker Engine
//! container, an ECS service or a Nomad job, and its configuration is checked when it is
//! added, so a deployment never starts from a target that cannot work.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::engines::{DockerEndpoint, check_nomad, check_secret_ref};
use crate::error::{DomainError, Result};
use crate::ids::{ComponentId, EnvironmentId};
use crate::ports::Repository;
use crate::values::Name;

pub use crate::engines::EngineTls;
pub use crate::ids::TargetId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Docker,
    Ecs,
    Nomad,
    Compose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host: u16,
    pub container: u16,
}

/// A container health check: `command` is run inside the container (`CMD` form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub command: Vec<String>,
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
    pub retries: u32,
}

/// A Docker target's canary: the new image runs beside the old container (on the host
/// network, so with a command or environment of its own that gives it its own port), is
/// measured by `analysis`, and is removed; the old container is replaced only if it passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerCanary {
    pub command: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub analysis: crate::analysis::AnalysisSpec,
}

/// How to reach and run each kind of target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum TargetConfig {
    /// One container of one component on a Docker Engine.
    Docker {
        /// `unix:///var/run/docker.sock`, `tcp+tls://host:port`, or `tcp://host:port` on
        /// loopback.
        endpoint: String,
        /// The CA, client certificate and key of a `tcp+tls://` endpoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls: Option<EngineTls>,
        /// The pull agent that applies deployments on its host's engine, instead of an
        /// endpoint the control plane reaches (then `endpoint` is empty).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_id: Option<crate::ids::AgentId>,
        container_name: String,
        component_id: ComponentId,
        ports: Vec<PortMapping>,
        env: BTreeMap<String, String>,
        health_check: Option<HealthCheck>,
        /// `host` (the default) or `none`, for engines without a bridge.
        network_mode: String,
        /// A canary container run beside the old one before it is replaced.
        #[serde(default)]
        canary: Option<DockerCanary>,
        /// A router in front of the container: the new version starts beside the old one
        /// and requests move to it as the strategy says (see [`crate::traffic`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traffic: Option<Box<crate::traffic::Traffic>>,
    },
    /// An ECS service; each mapped container runs one component.
    Ecs {
        cluster: String,
        service: String,
        containers: BTreeMap<String, ComponentId>,
        /// Measured on a one-task canary service running the new revision, before the
        /// service itself is updated.
        #[serde(default)]
        canary_analysis: Option<crate::analysis::AnalysisSpec>,
        /// An ALB in front of two services (the slots' workloads, `service` one of them):
        /// each new revision runs in the idle one and requests move to it by the strategy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traffic: Option<Box<crate::traffic::Traffic>>,
    },
    /// A Nomad job; each mapped task runs one component.
    Nomad {
        /// `http(s)://host:port` of the Nomad API.
        address: String,
        namespace: String,
        job_id: String,
        tasks: BTreeMap<String, ComponentId>,
        /// Where the ACL token is kept: `env:NAME`, `ssm:/path` or `secretsmanager:name`.
        token_ref: Option<String>,
        /// A private CA, a client certificate (mTLS) and the server name of the API's
        /// certificate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls: Option<EngineTls>,
        /// For a job whose update stanza places canaries: what is measured once they are
        /// healthy, before the deployment is promoted (or failed and reverted).
        #[serde(default)]
        canary_analysis: Option<crate::analysis::AnalysisSpec>,
        /// Consul in front of two jobs (the slots' workloads, `job_id` one of them): each new
        /// version runs in the idle one and requests move to it by the strategy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traffic: Option<Box<crate::traffic::Traffic>>,
    },
    /// A compose stack on a Docker Engine; each mapped service runs one component.
    Compose {
        /// As for a Docker target.
        endpoint: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls: Option<EngineTls>,
        /// As for a Docker target.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_id: Option<crate::ids::AgentId>,
        /// Containers are named `<project>-<service>`.
        project: String,
        /// The compose file (see [`crate::compose`]).
        file: String,
        services: BTreeMap<String, ComponentId>,
        /// A router in front of the stack: each new stack starts beside the old one (every
        /// service gets the slot's environment) and requests move to it by the strategy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traffic: Option<Box<crate::traffic::Traffic>>,
    },
}

impl TargetConfig {
    pub fn kind(&self) -> TargetKind {
        match self {
            Self::Docker { .. } => TargetKind::Docker,
            Self::Ecs { .. } => TargetKind::Ecs,
            Self::Nomad { .. } => TargetKind::Nomad,
            Self::Compose { .. } => TargetKind::Compose,
        }
    }

    /// The agent that applies this target's deployments, when one does.
    pub fn agent(&self) -> Option<crate::ids::AgentId> {
        match self {
            Self::Docker { agent_id, .. } | Self::Compose { agent_id, .. } => *agent_id,
            _ => None,
        }
    }

    /// The components this target runs.
    pub fn components(&self) -> Vec<ComponentId> {
        match self {
            Self::Docker { component_id, .. } => vec![*component_id],
            Self::Ecs { containers, .. } => containers.values().copied().collect(),
            Self::Nomad { tasks, .. } => tasks.values().copied().collect(),
            Self::Compose { services, .. } => services.values().copied().collect(),
        }
    }

    /// The router in front of the target, when one is.
    pub fn traffic(&self) -> Option<&crate::traffic::Traffic> {
        match self {
            Self::Docker { traffic, .. } | Self::Compose { traffic, .. } | Self::Ecs { traffic, .. } => {
                traffic.as_deref()
            }
            Self::Nomad { traffic, .. } => traffic.as_deref(),
        }
    }

    /// A router fits its kind of target (HAProxy for Docker and Compose, an ALB for ECS,
    /// Consul for Nomad), and a routed target takes no side canary: its strategy is the
    /// canary.
    fn check_traffic(&self) -> Result<()> {
        use crate::traffic::RouterConfig::{Alb, Consul, Haproxy};
        let Some(traffic) = self.traffic() else { return Ok(()) };
        traffic.check()?;
        let why = match (self, &traffic.router) {
            (Self::Docker { canary, network_mode, .. }, Haproxy { .. })
                if canary.is_some() || network_mode != "host" =>
            {
                "a Docker target steered through a router runs on the host network and takes no side canary: its \
                 strategy is the canary"
            }
            (Self::Docker { .. } | Self::Compose { .. }, Haproxy { .. }) => return Ok(()),
            (Self::Docker { .. } | Self::Compose { .. }, _) => "Docker and Compose targets route through HAProxy",
            (Self::Ecs { service, canary_analysis, .. }, Alb { slots, .. }) => {
                let services: Vec<&str> = slots.iter().filter_map(|s| s.workload.as_deref()).collect();
                if services.len() != 2 || services.iter().any(|s| s.is_empty() || s.len() > 255) {
                    "each slot of an ECS target's router names its ECS service (workload)"
                } else if !services.contains(&service.as_str()) {
                    "an ECS target's service must be one of its slots' services"
                } else if canary_analysis.is_some() {
                    "an ECS target steered through a router takes no canary service: its strategy is the canary"
                } else {
                    return Ok(());
                }
            }
            (Self::Ecs { .. }, _) => "ECS targets route through an ALB",
            (Self::Nomad { job_id, canary_analysis, .. }, Consul { slots, .. }) => {
                let jobs: Vec<&str> = slots.iter().filter_map(|s| s.workload.as_deref()).collect();
                if jobs.len() != 2 || jobs.iter().any(|j| j.is_empty() || j.len() > 128) {
                    "each slot of a Nomad target's router names its Nomad job (workload)"
                } else if !jobs.contains(&job_id.as_str()) {
                    "a Nomad target's jobId must be one of its slots' jobs"
                } else if canary_analysis.is_some() {
                    "a Nomad target steered through a router takes no canary analysis: its strategy is the canary"
                } else {
                    return Ok(());
                }
            }
            (Self::Nomad { .. }, _) => "Nomad targets route through Consul",
        };
        Err(DomainError::validation(format!("traffic: {why}")))
    }

    /// Checks everything that can be checked without reaching the target.
    pub fn validate(&self) -> Result<()> {
        let invalid = |msg: String| Err(DomainError::validation(msg));
        self.check_traffic()?;
        match self {
            Self::Compose { endpoint, tls, agent_id, project, file, services, .. } => {
                engine(endpoint, tls.as_ref(), *agent_id)?;
                if !docker_name(project) || project.len() > 63 {
                    return invalid(format!("project {project:?} must match [a-zA-Z0-9][a-zA-Z0-9_.-]*, 63 at most"));
                }
                crate::compose::check(file, services)?;
            }
            Self::Docker {
                endpoint,
                tls,
                agent_id,
                container_name,
                ports,
                env,
                health_check,
                network_mode,
                canary,
                ..
            } => {
                if let Some(canary) = canary {
                    canary.analysis.check("canary analysis")?;
                    if canary.command.as_ref().is_some_and(Vec::is_empty) {
                        return invalid("a canary command must not be empty".into());
                    }
                }
                engine(endpoint, tls.as_ref(), *agent_id)?;
                if !docker_name(container_name) {
                    return invalid(format!("container name {container_name:?} must match [a-zA-Z0-9][a-zA-Z0-9_.-]*"));
                }
                if ports.iter().any(|p| p.host == 0 || p.container == 0) {
                    return invalid("ports must be between 1 and 65535".into());
                }
                if let Some(key) = env.keys().find(|k| k.is_empty() || k.contains('=') || k.contains('\0')) {
                    return invalid(format!("environment variable name {key:?} is not valid"));
                }
                if let Some(h) = health_check
                    && (h.command.is_empty() || h.interval_seconds == 0 || h.timeout_seconds == 0 || h.retries == 0)
                {
                    return invalid("a health check needs a command and positive interval, timeout and retries".into());
                }
                if !matches!(network_mode.as_str(), "host" | "none") {
                    return invalid(format!("networkMode {network_mode:?} must be host or none"));
                }
            }
            Self::Ecs { cluster, service, containers, canary_analysis, .. } => {
                if let Some(analysis) = canary_analysis {
                    analysis.check("canary analysis")?;
                }
                for (what, value) in [("cluster", cluster), ("service", service)] {
                    if value.is_empty() || value.len() > 255 {
                        return invalid(format!("ECS {what} must be 1-255 characters"));
                    }
                }
                if containers.is_empty() {
                    return invalid("an ECS target maps at least one container to a component".into());
                }
            }
            Self::Nomad { address, namespace, job_id, tasks, token_ref, tls, canary_analysis, .. } => {
                if let Some(analysis) = canary_analysis {
                    analysis.check("canary analysis")?;
                }
                check_nomad(address, tls.as_ref())?;
                if namespace.is_empty() || job_id.is_empty() {
                    return invalid("Nomad namespace and job id must not be empty".into());
                }
                if tasks.is_empty() {
                    return invalid("a Nomad target maps at least one task to a component".into());
                }
                if let Some(r) = token_ref {
                    // Only NOMAD_* variables: a target must not be able to name the worker's
                    // own secrets and have them sent to an address it chose.
                    check_secret_ref("tokenRef", r, "NOMAD_")?;
                }
            }
        }
        Ok(())
    }
}

/// A Docker engine is reached at an endpoint, or through an agent, not both.
fn engine(endpoint: &str, tls: Option<&EngineTls>, agent: Option<crate::ids::AgentId>) -> Result<()> {
    match agent {
        None => DockerEndpoint::parse(endpoint, tls).map(|_| ()),
        Some(_) if endpoint.is_empty() && tls.is_none() => Ok(()),
        Some(_) => Err(DomainError::validation(
            "a target served by an agent names no endpoint or tls: the agent reaches its own engine",
        )),
    }
}

fn docker_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentTarget {
    pub id: TargetId,
    pub environment_id: EnvironmentId,
    pub name: Name,
    pub config: TargetConfig,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait TargetRepository: Send + Sync {
    /// `Conflict` if the environment has a target of that name; `NotFound` if the
    /// environment is gone.
    async fn add_target(&self, target: &DeploymentTarget) -> Result<()>;
    async fn get_target(&self, id: TargetId) -> Result<Option<DeploymentTarget>>;
    async fn targets_of(&self, environment: EnvironmentId) -> Result<Vec<DeploymentTarget>>;
    async fn remove_target(&self, target: &DeploymentTarget) -> Result<()>;
}

/// Which pull agents may serve targets: what targets know of agents.
#[async_trait]
pub trait EnrolledAgents: Send + Sync {
    /// Whether the agent is enrolled and not revoked.
    async fn enrolled(&self, agent: crate::ids::AgentId) -> Result<bool>;
}

#[derive(Clone)]
pub struct Targets {
    targets: Arc<dyn TargetRepository>,
    repo: Arc<dyn Repository>,
    agents: Option<Arc<dyn EnrolledAgents>>,
}

impl Targets {
    pub fn new(targets: Arc<dyn TargetRepository>, repo: Arc<dyn Repository>) -> Self {
        Self { targets, repo, agents: None }
    }

    /// Checks that a target's agent is enrolled and not revoked when it is added.
    pub fn with_agents(mut self, agents: Arc<dyn EnrolledAgents>) -> Self {
        self.agents = Some(agents);
        self
    }

    #[instrument(skip_all, fields(environment_id = %environment), err(level = "info"))]
    pub async fn add(&self, environment: EnvironmentId, name: &str, config: TargetConfig) -> Result<DeploymentTarget> {
        let name = Name::parse(name)?;
        config.validate()?;
        self.repo
            .get_environment(environment)
            .await?
            .ok_or_else(|| DomainError::not_found("environment", environment))?;
        if let Some(agent) = config.agent() {
            let enrolled = match &self.agents {
                Some(agents) => agents.enrolled(agent).await?,
                None => false,
            };
            if !enrolled {
                return Err(DomainError::not_found("agent", agent));
            }
        }
        let wanted = config.components();
        let found = self.repo.get_components(&wanted).await?;
        if let Some(missing) = wanted.iter().find(|id| !found.iter().any(|c| c.id == **id)) {
            return Err(DomainError::not_found("component", missing));
        }
        let target =
            DeploymentTarget { id: TargetId::new(), environment_id: environment, name, config, created_at: Utc::now() };
        self.targets.add_target(&target).await?;
        tracing::info!(target_id = %target.id, kind = ?target.config.kind(), "deployment target added");
        Ok(target)
    }

    #[instrument(skip_all, fields(target_id = %id), err(level = "info"))]
    pub async fn remove(&self, id: TargetId) -> Result<DeploymentTarget> {
        let target =
            self.targets.get_target(id).await?.ok_or_else(|| DomainError::not_found("deployment target", id))?;
        self.targets.remove_target(&target).await?;
        Ok(target)
    }

    pub async fn of_environment(&self, environment: EnvironmentId) -> Result<Vec<DeploymentTarget>> {
        self.targets.targets_of(environment).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker(endpoint: &str, name: &str) -> TargetConfig {
        TargetConfig::Docker {
            endpoint: endpoint.into(),
            tls: None,
            agent_id: None,
            container_name: name.into(),
            component_id: ComponentId::new(),
            ports: vec![PortMapping { host: 8080, container: 80 }],
            env: BTreeMap::from([("MODE".into(), "prod".into())]),
            health_check: None,
            network_mode: "host".into(),
            canary: None,
            traffic: None,
        }
    }

    #[test]
    fn docker_targets() {
        assert!(docker("unix:///run/docker.sock", "web").validate().is_ok());
        assert!(docker("tcp://127.0.0.1:2375", "web-1").validate().is_ok());
        assert!(docker("tcp://10.0.0.5:2375", "web-1").validate().is_err(), "plaintext beyond loopback");
        for (endpoint, name) in [
            ("http://x", "web"),
            ("tcp://host", "web"),
            ("unix://", "web"),
            ("unix:///s", "-web"),
            ("unix:///s", "a b"),
        ] {
            assert!(docker(endpoint, name).validate().is_err(), "{endpoint} {name}");
        }
    }

    #[test]
    fn ecs_and_nomad_targets() {
        let ecs = |containers: BTreeMap<String, ComponentId>| TargetConfig::Ecs {
            cluster: "prod".into(),
            service: "web".into(),
            containers,
            canary_analysis: None,
            traffic: None,
        };
        assert!(ecs(BTreeMap::from([("web".into(), ComponentId::new())])).validate().is_ok());
        assert!(ecs(BTreeMap::new()).validate().is_err());
        let nomad = |address: &str, token_ref: Option<&str>| TargetConfig::Nomad {
            address: address.into(),
            namespace: "default".into(),
            job_id: "web".into(),
            tasks: BTreeMap::from([("server".into(), ComponentId::new())]),
            token_ref: token_ref.map(Into::into),
            tls: None,
            canary_analysis: None,
            traffic: None,
        };
        assert!(nomad("http://127.0.0.1:4646", Some("env:NOMAD_TOKEN")).validate().is_ok());
        assert!(nomad("nomad:4646", None).validate().is_err());
        assert!(nomad("http://127.0.0.1:4646", Some("plaintext-token")).validate().is_err());
        assert!(
            nomad("http://127.0.0.1:4646", Some("env:GANTRY_JWT_SECRET")).validate().is_err(),
            "not the worker's secrets"
        );
        assert!(nomad("http://127.0.0.1:4646", Some("env:NOMAD_")).validate().is_err());
    }
}
