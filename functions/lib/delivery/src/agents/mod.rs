//! Pull agents: a process on a host the control plane cannot reach, which enrolls once with
//! a one-time token, then makes only outbound, signed requests: heartbeats, claims of its
//! own jobs, progress and results. Identity is the agent's Ed25519 key (only its public half
//! is stored); requests are signed (RFC 9421) and checked here for freshness and replay
//! after the adapter verified the signature.

pub mod jobs;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tracing::instrument;

use crate::error::{DomainError, Result};
use crate::values::Name;

pub use crate::ids::AgentId;

/// How far a signed request's `created` may be from now.
pub const SIGNATURE_WINDOW_SECONDS: i64 = 300;
/// How long an enrollment token may live at most.
pub const MAX_ENROLLMENT_SECONDS: u64 = 7 * 24 * 3600;
/// Labels an agent may carry.
pub const MAX_LABELS: usize = 20;

/// What an agent says about its host in each heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostFacts {
    pub version: String,
    pub os: String,
    pub arch: String,
    pub docker_version: Option<String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
}

impl HostFacts {
    /// Every field short and printable; at most 20 capabilities.
    pub fn check(&self) -> Result<()> {
        let fields = [&self.version, &self.os, &self.arch].into_iter().chain(self.docker_version.as_ref());
        let ok =
            fields.chain(self.capabilities.iter()).all(|f| f.len() <= 64 && f.chars().all(|c| c.is_ascii_graphic()))
                && self.capabilities.len() <= 20;
        if ok {
            Ok(())
        } else {
            Err(DomainError::validation("host facts must be at most 64 printable characters each"))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: AgentId,
    pub name: Name,
    pub labels: BTreeMap<String, String>,
    /// The base64url Ed25519 public key its requests are signed with.
    pub public_key: String,
    pub enrolled_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<HostFacts>,
    /// The jobs it claimed and has not ended, as `<promotionId>/<targetId>` (a string set the
    /// claim adds to and the end deletes from, absent while empty).
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub current_jobs: std::collections::BTreeSet<String>,
}

impl Agent {
    /// The job it works on: the first of its claimed jobs.
    pub fn current_job(&self) -> Option<&str> {
        self.current_jobs.first().map(String::as_str)
    }

    /// Whether it sent a heartbeat within `offline_after`.
    pub fn online(&self, now: DateTime<Utc>, offline_after: Duration) -> bool {
        self.revoked_at.is_none() && self.last_seen_at.is_some_and(|seen| now - seen <= offline_after)
    }
}

/// A one-time enrollment token, stored by its sha256 only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrollment {
    pub token_hash: String,
    pub name: Name,
    pub labels: BTreeMap<String, String>,
    /// Not `expiresAt`: that is the table's TTL attribute, a number the store writes.
    pub valid_until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

#[async_trait]
pub trait AgentRepository: Send + Sync {
    async fn put_enrollment(&self, enrollment: &Enrollment) -> Result<()>;
    async fn get_enrollment(&self, token_hash: &str) -> Result<Option<Enrollment>>;
    /// Uses the enrollment up and writes `agent`, in one transaction: `Unauthorized` when
    /// it was used meanwhile.
    async fn redeem_enrollment(&self, token_hash: &str, agent: &Agent) -> Result<()>;
    async fn get_agent(&self, id: AgentId) -> Result<Option<Agent>>;
    async fn list_agents(&self) -> Result<Vec<Agent>>;
    /// Marks it revoked; `NotFound` when there is no such agent.
    async fn revoke_agent(&self, id: AgentId, at: DateTime<Utc>) -> Result<()>;
    /// Records a heartbeat, admitting `ticket` in the same write: [`replayed`] or [`revoked`]
    /// when it may not go on.
    async fn record_heartbeat(&self, ticket: &Ticket, facts: &HostFacts, at: DateTime<Utc>) -> Result<()>;
}

/// A signed request whose signature and clock hold, not admitted yet. Its nonce is recorded
/// (until `until`), and its agent's standing checked, in the write that serves the request,
/// or alone for a request that writes nothing: one write either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub agent: AgentId,
    pub nonce: String,
    pub until: DateTime<Utc>,
}

/// Agents whose keys one process keeps at most: a key never changes, and whether the agent
/// may still make requests is checked in the write that admits each request.
const MAX_SIGNERS: usize = 10_000;

/// Targets name agents that are enrolled and not revoked.
#[async_trait]
impl<T: AgentRepository + ?Sized> crate::targets::EnrolledAgents for T {
    async fn enrolled(&self, agent: AgentId) -> Result<bool> {
        Ok(self.get_agent(agent).await?.is_some_and(|a| a.revoked_at.is_none()))
    }
}

/// Signs job payloads with Gantry's job-signing key (held by the process, or in KMS).
#[async_trait]
pub trait JobSealer: Send + Sync {
    /// The payload's signature (base64) and the signing key's id; an error when no key is
    /// configured.
    async fn seal(&self, payload: &str) -> Result<(String, String)>;
    /// The public key agents pin at enrollment (base64url; `es256:` first for P-256).
    async fn public_key(&self) -> Result<String>;
}

/// What an enrollment hands the agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrolled {
    pub agent_id: AgentId,
    /// Gantry's job-signing public key, which the agent pins.
    pub job_signing_key: String,
}

/// How an enrollment token is stored: the hex sha256 of it.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The refusal of a request from a revoked agent.
pub fn revoked() -> DomainError {
    DomainError::Unauthorized("this agent was revoked".into())
}

/// The refusal of a request whose nonce was seen.
pub fn replayed() -> DomainError {
    DomainError::Unauthorized("the request was replayed".into())
}

fn check_labels(labels: &BTreeMap<String, String>) -> Result<()> {
    let plain = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    };
    if labels.len() > MAX_LABELS || !labels.iter().all(|(k, v)| plain(k, 63) && plain(v, 128)) {
        return Err(DomainError::validation(format!(
            "at most {MAX_LABELS} labels, each key (63) and value (128) of letters, digits, -, _, . and /"
        )));
    }
    Ok(())
}

#[derive(Clone)]
pub struct Agents {
    repo: Arc<dyn AgentRepository>,
    sealer: Arc<dyn JobSealer>,
    offline_after: Duration,
    signers: gantry_kernel::kept::Kept<AgentId, Agent>,
    doorbell: Option<Arc<dyn jobs::Doorbell>>,
}

impl Agents {
    pub fn new(repo: Arc<dyn AgentRepository>, sealer: Arc<dyn JobSealer>, offline_after_seconds: u64) -> Self {
        let offline_after = Duration::seconds(i64::try_from(offline_after_seconds).unwrap_or(45));
        Self { repo, sealer, offline_after, signers: gantry_kernel::kept::Kept::new(MAX_SIGNERS), doorbell: None }
    }

    /// Removes a revoked agent's doorbell through `doorbell`.
    pub fn with_doorbell(mut self, doorbell: Arc<dyn jobs::Doorbell>) -> Self {
        self.doorbell = Some(doorbell);
        self
    }

    /// How long after its last heartbeat an agent counts as offline.
    pub fn offline_after(&self) -> Duration {
        self.offline_after
    }

    /// A one-time enrollment token (returned once; only its hash is kept).
    #[instrument(skip_all, err(level = "info"))]
    pub async fn create_enrollment(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        expires_in_seconds: u64,
        by: &str,
    ) -> Result<(String, Enrollment)> {
        self.sealer.public_key().await?;
        let name = Name::parse(name)?;
        check_labels(&labels)?;
        if !(60..=MAX_ENROLLMENT_SECONDS).contains(&expires_in_seconds) {
            return Err(DomainError::validation(format!("expiresIn must be 60 to {MAX_ENROLLMENT_SECONDS} seconds")));
        }
        let token = format!(
            "gae_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(gantry_kernel::secrets::random_key()?)
        );
        let now = Utc::now();
        let enrollment = Enrollment {
            token_hash: token_hash(&token),
            name,
            labels,
            valid_until: now + Duration::seconds(expires_in_seconds as i64),
            created_at: now,
            created_by: by.to_owned(),
        };
        self.repo.put_enrollment(&enrollment).await?;
        Ok((token, enrollment))
    }

    /// Enrolls the agent whose public key is `public_key` with a one-time `token`.
    #[instrument(skip_all, err(level = "info"))]
    pub async fn enroll(&self, token: &str, public_key: &str) -> Result<Enrolled> {
        let job_signing_key = self.sealer.public_key().await?;
        if token.len() > 100 || !token.starts_with("gae_") {
            return Err(DomainError::Unauthorized("the enrollment token is not valid".into()));
        }
        let key = public_key.trim();
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(key).unwrap_or_default();
        if decoded.len() != 32 {
            return Err(DomainError::validation("publicKey must be a base64url Ed25519 public key (32 bytes)"));
        }
        let now = Utc::now();
        let refused = || DomainError::Unauthorized("the enrollment token is unknown, used or expired".into());
        let hash = token_hash(token);
        let enrollment = self.repo.get_enrollment(&hash).await?.ok_or_else(refused)?;
        if enrollment.valid_until <= now {
            return Err(refused());
        }
        let agent = Agent {
            id: AgentId::new(),
            name: enrollment.name,
            labels: enrollment.labels,
            public_key: key.to_owned(),
            enrolled_at: now,
            revoked_at: None,
            last_seen_at: Some(now),
            facts: None,
            current_jobs: Default::default(),
        };
        self.repo.redeem_enrollment(&hash, &agent).await.map_err(|err| match err {
            DomainError::Conflict(_) => refused(),
            other => other,
        })?;
        tracing::info!(agent_id = %agent.id, "agent enrolled");
        Ok(Enrolled { agent_id: agent.id, job_signing_key })
    }

    /// The agent a signed request names (its key read once per process), unless it was
    /// revoked before this process read it. The write that admits each request refuses a
    /// request of an agent revoked since.
    pub async fn signer(&self, id: &str) -> Result<Agent> {
        let unknown = || DomainError::Unauthorized("the request is not signed by an enrolled agent".into());
        let id = AgentId::parse(id).map_err(|_| unknown())?;
        if let Some(agent) = self.signers.get(&id) {
            return Ok(agent);
        }
        let agent = self.repo.get_agent(id).await?.ok_or_else(unknown)?;
        if agent.revoked_at.is_some() {
            return Err(revoked());
        }
        self.signers.keep(id, agent.clone());
        Ok(agent)
    }

    /// A verified request's ticket: its `created` must be within the window. The write
    /// that serves the request admits it (its nonce new, its agent not revoked).
    pub fn ticket(&self, agent: &Agent, created: i64, nonce: &str) -> Result<Ticket> {
        let created = DateTime::from_timestamp(created, 0).unwrap_or_default();
        if (Utc::now() - created).num_seconds().abs() > SIGNATURE_WINDOW_SECONDS {
            return Err(DomainError::Unauthorized(format!(
                "the request was signed more than {SIGNATURE_WINDOW_SECONDS} seconds from now"
            )));
        }
        let until = created + Duration::seconds(SIGNATURE_WINDOW_SECONDS + 60);
        Ok(Ticket { agent: agent.id, nonce: nonce.to_owned(), until })
    }

    /// Records the host's facts, admitting the heartbeat in the same write.
    #[instrument(skip_all, fields(agent_id = %ticket.agent), err(level = "info"))]
    pub async fn heartbeat(&self, ticket: &Ticket, facts: &HostFacts) -> Result<()> {
        facts.check()?;
        self.repo.record_heartbeat(ticket, facts, Utc::now()).await.inspect_err(|err| {
            if *err == revoked() {
                self.signers.forget(&ticket.agent);
            }
        })
    }

    pub async fn list(&self) -> Result<Vec<Agent>> {
        self.repo.list_agents().await
    }

    pub async fn get(&self, id: AgentId) -> Result<Option<Agent>> {
        self.repo.get_agent(id).await
    }

    /// Revokes an agent: its next request is refused.
    #[instrument(skip_all, fields(agent_id = %id), err(level = "info"))]
    pub async fn revoke(&self, id: AgentId) -> Result<Agent> {
        self.repo.revoke_agent(id, Utc::now()).await?;
        self.signers.forget(&id);
        if let Some(doorbell) = &self.doorbell
            && let Err(err) = doorbell.remove(id).await
        {
            tracing::warn!(agent_id = %id, error = %err, "the revoked agent's doorbell was not removed");
        }
        self.repo.get_agent(id).await?.ok_or_else(|| DomainError::not_found("agent", id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_facts_are_bounded() {
        assert!(check_labels(&[("zone".into(), "eu-1".into())].into()).is_ok());
        assert!(check_labels(&[("zone".into(), "eu 1".into())].into()).is_err());
        let many: BTreeMap<String, String> = (0..21).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(check_labels(&many).is_err());
        let facts = HostFacts { version: "1".into(), os: "linux".into(), arch: "x86_64".into(), ..Default::default() };
        assert!(facts.check().is_ok());
        assert!(HostFacts { os: "x".repeat(65), ..facts }.check().is_err());
    }

    #[test]
    fn an_agent_is_online_while_its_heartbeats_arrive() {
        let now = Utc::now();
        let agent = Agent {
            id: AgentId::new(),
            name: Name::parse("a").unwrap(),
            labels: BTreeMap::new(),
            public_key: String::new(),
            enrolled_at: now,
            revoked_at: None,
            last_seen_at: Some(now - Duration::seconds(30)),
            facts: None,
            current_jobs: Default::default(),
        };
        assert!(agent.online(now, Duration::seconds(45)));
        assert!(!agent.online(now + Duration::seconds(20), Duration::seconds(45)));
        assert!(!Agent { revoked_at: Some(now), ..agent }.online(now, Duration::seconds(45)));
    }
}
