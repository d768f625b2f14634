//! Pull agents, their enrollment tokens, request nonces and jobs. An enrollment is used up in
//! the transaction that writes the agent; a nonce and a job are written only where none is;
//! a job moves pending → claimed → ended by conditional updates.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use gantry_domain::agents::jobs::{
    AgentJob, AgentJobRepository, AgentJobState, Ended, JobEnd, JobWrite, MAX_PROGRESS, lease_owner,
};
use gantry_domain::agents::{Agent, AgentId, AgentRepository, Enrollment, HostFacts, Ticket};
use gantry_domain::ids::{PromotionId, TargetId};
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::codec::{from_items, sdk, to_item};
use crate::deployments::unless_condition_failed;
use crate::keys::{self, s, stamp};
use crate::{DynamoRepository, Tx};

fn ttl(at: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(at.timestamp().to_string())
}

fn state(value: AgentJobState) -> AttributeValue {
    s(value.as_str())
}

#[async_trait]
impl AgentRepository for DynamoRepository {
    #[instrument(skip_all, err(level = "info"))]
    async fn put_enrollment(&self, enrollment: &Enrollment) -> Result<()> {
        let mut item = to_item(enrollment, &keys::agent_enrollment(&enrollment.token_hash))?;
        item.insert("expiresAt".into(), ttl(enrollment.valid_until));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(sdk)?;
        Ok(())
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn get_enrollment(&self, token_hash: &str) -> Result<Option<Enrollment>> {
        self.get(&keys::agent_enrollment(token_hash)).await
    }

    #[instrument(skip_all, fields(agent_id = %agent.id), err(level = "info"))]
    async fn redeem_enrollment(&self, token_hash: &str, agent: &Agent) -> Result<()> {
        let mut tx = Tx::new();
        let used = DomainError::Conflict("the enrollment token was used".into());
        tx.push(self.delete(&keys::agent_enrollment(token_hash), Some(("attribute_exists(PK)", vec![])))?, used);
        let exists = DomainError::Conflict("an agent with this id exists".into());
        tx.push(self.put_new(to_item(agent, &keys::agent(agent.id))?)?, exists);
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(agent_id = %id), err(level = "info"))]
    async fn get_agent(&self, id: AgentId) -> Result<Option<Agent>> {
        self.get(&keys::agent(id)).await
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn list_agents(&self) -> Result<Vec<Agent>> {
        from_items(self.partition(keys::AGENTS, keys::AGENT_PREFIX).await?)
    }

    #[instrument(skip_all, fields(agent_id = %id), err(level = "info"))]
    async fn revoke_agent(&self, id: AgentId, at: DateTime<Utc>) -> Result<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::agent(id).primary()))
            .update_expression("SET revokedAt = if_not_exists(revokedAt, :at)")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":at", s(&at.to_rfc3339()))
            .send()
            .await;
        unless_condition_failed(out)?.map(|_| ()).ok_or_else(|| DomainError::not_found("agent", id))
    }

    #[instrument(skip_all, fields(agent_id = %ticket.agent), err(level = "info"))]
    async fn record_heartbeat(&self, ticket: &Ticket, facts: &HostFacts, at: DateTime<Utc>) -> Result<()> {
        let facts = serde_dynamo::to_attribute_value(facts).map_err(DomainError::internal)?;
        let seen = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::agent(ticket.agent).primary()))
            .update_expression("SET lastSeenAt = :at, facts = :facts")
            .condition_expression(ENROLLED)
            .expression_attribute_values(":at", s(&at.to_rfc3339()))
            .expression_attribute_values(":facts", facts)
            .build()
            .map_err(DomainError::internal)?;
        let seen = TransactWriteItem::builder().update(seen).build();
        self.agent_write(seen, Some(ticket), Vec::new()).await.map(drop)
    }
}

/// An agent that may still make requests.
const ENROLLED: &str = "attribute_exists(PK) AND attribute_not_exists(revokedAt)";

impl DynamoRepository {
    /// A write on behalf of an agent, in one transaction: `agent` (its item, conditioned on
    /// its standing when a request is admitted), the request's nonce when `ticket` is given,
    /// then `items`. [`revoked`](gantry_domain::agents::revoked) or
    /// [`replayed`](gantry_domain::agents::replayed) when those fail; else the position in
    /// `items` of the one that failed, if any.
    async fn agent_write(
        &self,
        agent: TransactWriteItem,
        ticket: Option<&Ticket>,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<usize>> {
        let mut all = vec![agent];
        if let Some(ticket) = ticket {
            let mut nonce = keys::agent_nonce(ticket.agent, &ticket.nonce).all();
            nonce.insert("expiresAt".into(), ttl(ticket.until));
            all.push(self.put_new(nonce)?);
        }
        let own = all.len();
        all.extend(items);
        match self.try_transact(all).await?.first() {
            None => Ok(None),
            Some(0) => Err(gantry_domain::agents::revoked()),
            Some(&at) if at < own => Err(gantry_domain::agents::replayed()),
            Some(&at) => Ok(Some(at - own)),
        }
    }
}

#[async_trait]
impl AgentJobRepository for DynamoRepository {
    #[instrument(skip_all, fields(agent_id = %job.agent_id, promotion_id = %job.promotion_id), err(level = "info"))]
    async fn put_job(&self, job: &AgentJob, lease: Option<(&str, DateTime<Utc>)>) -> Result<JobWrite> {
        let mut items = vec![self.put_new(to_item(job, &job_key(job))?)?];
        if let Some((from, until)) = lease {
            items.push(self.lease_to(&job.deploy_job(), from, &lease_owner(job.agent_id), until)?);
        }
        Ok(match self.try_transact(items).await?.first() {
            None => JobWrite::Written,
            Some(0) => JobWrite::Exists,
            Some(_) => JobWrite::LeaseLost,
        })
    }

    #[instrument(skip_all, fields(agent_id = %agent, promotion_id = %promotion), err(level = "info"))]
    async fn get_job(&self, agent: AgentId, promotion: PromotionId, target: TargetId) -> Result<Option<AgentJob>> {
        self.get(&keys::agent_job(agent, promotion, target)).await
    }

    #[instrument(skip_all, fields(agent_id = %agent), err(level = "info"))]
    async fn open_jobs(&self, agent: AgentId) -> Result<Vec<AgentJob>> {
        let query = self
            .query()
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .filter_expression("#state IN (:pending, :claimed)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pk", s(&keys::agent_jobs_pk(agent)))
            .expression_attribute_values(":prefix", s(keys::AGENT_JOB_PREFIX))
            .expression_attribute_values(":pending", state(AgentJobState::Pending))
            .expression_attribute_values(":claimed", state(AgentJobState::Claimed));
        from_items(self.query_all(query).await?)
    }

    #[instrument(skip_all, fields(agent_id = %ticket.agent), err(level = "info"))]
    async fn admit(&self, ticket: &Ticket) -> Result<()> {
        let enrolled = self.check(&keys::agent(ticket.agent), ENROLLED)?;
        self.agent_write(enrolled, Some(ticket), Vec::new()).await.map(drop)
    }

    #[instrument(skip_all, fields(agent_id = %job.agent_id, promotion_id = %job.promotion_id), err(level = "info"))]
    async fn claim_job(&self, job: &AgentJob, at: DateTime<Utc>, line: &str, ticket: Option<&Ticket>) -> Result<bool> {
        let claim = Update::builder()
            .table_name(&self.table)
            .set_key(Some(job_key(job).primary()))
            .update_expression("SET #state = :claimed, claimedAt = :at, progress = :lines")
            .condition_expression("#state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", state(AgentJobState::Pending))
            .expression_attribute_values(":claimed", state(AgentJobState::Claimed))
            .expression_attribute_values(":at", s(&stamp(at)))
            .expression_attribute_values(":lines", AttributeValue::L(vec![s(line)]))
            .build()
            .map_err(DomainError::internal)?;
        // The agent's current jobs, so a list of agents shows them without a read per agent.
        let current = self.current_jobs(job, "ADD", true)?;
        let claim = vec![TransactWriteItem::builder().update(claim).build()];
        Ok(self.agent_write(current, ticket, claim).await?.is_none())
    }

    #[instrument(skip_all, fields(agent_id = %ticket.agent, promotion_id = %job.0), err(level = "info"))]
    async fn add_progress(&self, ticket: &Ticket, job: (PromotionId, TargetId), line: &str) -> Result<()> {
        let key = keys::agent_job(ticket.agent, job.0, job.1);
        let append = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key.primary()))
            .update_expression("SET progress = list_append(progress, :line)")
            .condition_expression("#state = :claimed AND size(progress) < :max")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", state(AgentJobState::Claimed))
            .expression_attribute_values(":max", AttributeValue::N(MAX_PROGRESS.to_string()))
            .expression_attribute_values(":line", AttributeValue::L(vec![s(line)]))
            .build()
            .map_err(DomainError::internal)?;
        let enrolled = self.check(&keys::agent(ticket.agent), ENROLLED)?;
        let append = vec![TransactWriteItem::builder().update(append).build()];
        if self.agent_write(enrolled, Some(ticket), append.clone()).await?.is_none() {
            return Ok(());
        }
        // Refused: the request is admitted alone (a replayed or revoked one is refused as
        // such), then the job read only to say why. A line past the limit is dropped.
        AgentJobRepository::admit(self, ticket).await?;
        match self.get::<AgentJob>(&key).await? {
            None => Err(DomainError::not_found("job of this agent", format!("{}/{}", job.0, job.1))),
            Some(j) if j.state == AgentJobState::Claimed => Ok(()),
            Some(_) => Err(DomainError::Conflict("the job is not in progress".into())),
        }
    }

    #[instrument(skip_all, fields(agent_id = %job.agent_id, promotion_id = %job.promotion_id), err(level = "info"))]
    async fn end_job(&self, job: &AgentJob, end: &JobEnd<'_>, ticket: Option<&Ticket>) -> Result<Ended> {
        let ended = Update::builder()
            .table_name(&self.table)
            .set_key(Some(job_key(job).primary()))
            .update_expression(
                "SET #state = :ended, message = :message, progress = list_append(if_not_exists(progress, :none), :lines)",
            )
            .condition_expression("#state IN (:pending, :claimed)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", state(AgentJobState::Pending))
            .expression_attribute_values(":claimed", state(AgentJobState::Claimed))
            .expression_attribute_values(":ended", state(end.state))
            .expression_attribute_values(":message", s(end.message))
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":lines", AttributeValue::L(end.progress.iter().map(|l| s(l)).collect()))
            .build()
            .map_err(DomainError::internal)?;
        let ended = TransactWriteItem::builder().update(ended).build();
        let owner = lease_owner(job.agent_id);
        if let Some(artifact) = end.artifact {
            self.store_artifact(artifact).await?;
        }
        let reference = end.artifact.map(|a| &a.reference);
        let finish =
            self.finish_items(&job.deploy_job(), &owner, (end.deployment_state(), end.message), reference, end.at)?;
        // An agent's result is refused once it is revoked; a deadline ends the job regardless.
        let current = || self.current_jobs(job, "DELETE", ticket.is_some());
        let both = std::iter::once(ended.clone()).chain(finish).collect();
        Ok(match self.agent_write(current()?, ticket, both).await? {
            None => Ended::Both,
            Some(0) => Ended::Already,
            // The deployment ended some other way: the job ends alone.
            Some(_) if self.agent_write(current()?, ticket, vec![ended]).await?.is_none() => Ended::JobOnly,
            Some(_) => Ended::Already,
        })
    }
}

fn job_key(job: &AgentJob) -> keys::ItemKeys {
    keys::agent_job(job.agent_id, job.promotion_id, job.target_id)
}

impl DynamoRepository {
    /// `ADD`s the job to (or `DELETE`s it from) its agent's `currentJobs` string set; when
    /// `enrolled`, only while the agent is enrolled and not revoked.
    fn current_jobs(&self, job: &AgentJob, action: &str, enrolled: bool) -> Result<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::agent(job.agent_id).primary()))
            .update_expression(format!("{action} currentJobs :job"))
            .set_condition_expression(enrolled.then(|| ENROLLED.to_owned()))
            .expression_attribute_values(":job", AttributeValue::Ss(vec![job.label()]))
            .build()
            .map_err(DomainError::internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}
