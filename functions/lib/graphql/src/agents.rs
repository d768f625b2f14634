//! Pull agents: `agents`, `agent(id)`, `createAgentEnrollment` and `revokeAgent`.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use gantry_domain::access::{Action, Principal, Resource};
use gantry_domain::agents::{self, AgentId, Agents};

use crate::error::IntoGraphql;
use crate::guard::Can;
use crate::targets::{KeyValue, KeyValueInput};

pub struct Agent {
    agent: agents::Agent,
    online: bool,
}

impl Agent {
    fn new(agent: agents::Agent, service: &Agents) -> Self {
        let online = agent.online(Utc::now(), service.offline_after());
        Self { agent, online }
    }
}

/// What an agent's last heartbeat said about its host.
#[derive(SimpleObject)]
pub struct HostFacts {
    pub os: String,
    pub arch: String,
    pub docker_version: Option<String>,
    pub capabilities: Vec<String>,
}

#[Object]
impl Agent {
    async fn id(&self) -> ID {
        ID(self.agent.id.to_string())
    }
    async fn name(&self) -> &str {
        self.agent.name.as_str()
    }
    async fn labels(&self) -> Vec<KeyValue> {
        self.agent.labels.iter().map(|(key, value)| KeyValue { key: key.clone(), value: value.clone() }).collect()
    }
    /// The agent's version, from its last heartbeat.
    async fn version(&self) -> Option<&str> {
        self.agent.facts.as_ref().map(|f| f.version.as_str())
    }
    async fn last_seen_at(&self) -> Option<DateTime<Utc>> {
        self.agent.last_seen_at
    }
    /// A heartbeat arrived within `GANTRY_AGENT_OFFLINE_SECONDS`, and it is not revoked.
    async fn online(&self) -> bool {
        self.online
    }
    async fn host(&self) -> Option<HostFacts> {
        self.agent.facts.as_ref().map(|f| HostFacts {
            os: f.os.clone(),
            arch: f.arch.clone(),
            docker_version: f.docker_version.clone(),
            capabilities: f.capabilities.clone(),
        })
    }
    /// The job it is applying: `<promotionId>/<targetId>`, while one is open.
    async fn current_job(&self) -> Option<&str> {
        self.agent.current_job()
    }
    /// The base64url Ed25519 public key its requests are signed with.
    async fn public_key(&self) -> &str {
        &self.agent.public_key
    }
    async fn enrolled_at(&self) -> DateTime<Utc> {
        self.agent.enrolled_at
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.agent.revoked_at
    }
}

/// A one-time token for `gantry-agent enroll`; it is in this answer only.
#[derive(SimpleObject)]
pub struct AgentEnrollment {
    pub token: String,
    pub name: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct AgentQuery;

#[Object]
impl AgentQuery {
    /// Every enrolled agent, revoked ones included.
    #[graphql(guard = "Can(Resource::Agent, Action::Read)")]
    async fn agents(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Agent>> {
        let service = ctx.data_unchecked::<Agents>();
        let list = service.list().await.gql()?;
        Ok(list.into_iter().map(|a| Agent::new(a, service)).collect())
    }

    #[graphql(guard = "Can(Resource::Agent, Action::Read)")]
    async fn agent(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Agent>> {
        let service = ctx.data_unchecked::<Agents>();
        let id = AgentId::parse(&id).gql()?;
        Ok(service.get(id).await.gql()?.map(|a| Agent::new(a, service)))
    }
}

#[derive(Default)]
pub struct AgentMutation;

#[Object]
impl AgentMutation {
    /// A one-time enrollment token for an agent named `name`, valid for `expiresIn` seconds
    /// (60 to 604800; one hour by default).
    #[graphql(guard = "Can(Resource::Agent, Action::Create)")]
    async fn create_agent_enrollment(
        &self,
        ctx: &Context<'_>,
        name: String,
        #[graphql(default)] labels: Vec<KeyValueInput>,
        #[graphql(default = 3600)] expires_in: u64,
    ) -> async_graphql::Result<AgentEnrollment> {
        let by = ctx.data_unchecked::<Principal>().subject.clone();
        let labels = labels.into_iter().map(|kv| (kv.key, kv.value)).collect();
        let (token, enrollment) =
            ctx.data_unchecked::<Agents>().create_enrollment(&name, labels, expires_in, &by).await.gql()?;
        Ok(AgentEnrollment { token, name: enrollment.name.to_string(), expires_at: enrollment.valid_until })
    }

    /// Revokes an agent: its next request is refused, and it gets no more jobs.
    #[graphql(guard = "Can(Resource::Agent, Action::Delete)")]
    async fn revoke_agent(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Agent> {
        let service = ctx.data_unchecked::<Agents>();
        let id = AgentId::parse(&id).gql()?;
        Ok(Agent::new(service.revoke(id).await.gql()?, service))
    }
}
