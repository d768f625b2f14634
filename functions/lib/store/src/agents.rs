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
use gantry_domain::agents::{Admission, Agent, AgentId, AgentRepository, Enrollment, HostFacts};
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

    #[instrument(skip_all, fields(agent_id = %id), err(level = "info"))]
    async fn record_heartbeat(&self, id: AgentId, facts: &HostFacts, at: DateTime<Utc>) -> Result<()> {
        let facts = serde_dynamo::to_attribute_value(facts).map_err(DomainError::internal)?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::agent(id).primary()))
            .update_expression("SET lastSeenAt = :at, facts = :facts")
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(revokedAt)")
            .expression_attribute_values(":at", s(&at.to_rfc3339()))
            .expression_attribute_values(":facts", facts)
            .send()
            .await;
        unless_condition_failed(out)?
            .map(|_| ())
            .ok_or_else(|| DomainError::Unauthorized("this agent was revoked".into()))
    }

    #[instrument(skip_all, fields(agent_id = %id), err(level = "info"))]
    async fn admit(&self, id: AgentId, nonce: &str, until: DateTime<Utc>) -> Result<Admission> {
        // One write: the agent is still enrolled and the nonce is new.
        let mut nonce = keys::agent_nonce(id, nonce).all();
        nonce.insert("expiresAt".into(), ttl(until));
        let enrolled = "attribute_exists(PK) AND attribute_not_exists(revokedAt)";
        let items = vec![self.check(&keys::agent(id), enrolled)?, self.put_new(nonce)?];
        Ok(match self.try_transact(items).await?.first() {
            None => Admission::Admitted,
            Some(0) => Admission::Revoked,
            Some(_) => Admission::Replayed,
        })
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

    #[instrument(skip_all, fields(agent_id = %job.agent_id, promotion_id = %job.promotion_id), err(level = "info"))]
    async fn claim_job(&self, job: &AgentJob, at: DateTime<Utc>, line: &str) -> Result<bool> {
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
        let current = self.current_jobs(job, "ADD")?;
        let items = vec![TransactWriteItem::builder().update(claim).build(), current];
        Ok(self.try_transact(items).await?.is_empty())
    }

    #[instrument(skip_all, fields(agent_id = %agent, promotion_id = %job.0), err(level = "info"))]
    async fn add_progress(&self, agent: AgentId, job: (PromotionId, TargetId), line: &str) -> Result<()> {
        let key = keys::agent_job(agent, job.0, job.1);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.primary()))
            .update_expression("SET progress = list_append(progress, :line)")
            .condition_expression("#state = :claimed AND size(progress) < :max")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", state(AgentJobState::Claimed))
            .expression_attribute_values(":max", AttributeValue::N(MAX_PROGRESS.to_string()))
            .expression_attribute_values(":line", AttributeValue::L(vec![s(line)]))
            .send()
            .await;
        if unless_condition_failed(out)?.is_some() {
            return Ok(());
        }
        // Refused: read the job only to say why.
        match self.get::<AgentJob>(&key).await? {
            None => Err(DomainError::not_found("job of this agent", format!("{}/{}", job.0, job.1))),
            Some(j) if j.state == AgentJobState::Claimed => Ok(()),
            Some(_) => Err(DomainError::Conflict("the job is not in progress".into())),
        }
    }

    #[instrument(skip_all, fields(agent_id = %job.agent_id, promotion_id = %job.promotion_id), err(level = "info"))]
    async fn end_job(&self, job: &AgentJob, end: &JobEnd<'_>) -> Result<Ended> {
        let ended = Update::builder()
            .table_name(&self.table)
            .set_key(Some(job_key(job).primary()))
            .update_expression("SET #state = :ended, message = :message")
            .condition_expression("#state IN (:pending, :claimed)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", state(AgentJobState::Pending))
            .expression_attribute_values(":claimed", state(AgentJobState::Claimed))
            .expression_attribute_values(":ended", state(end.state))
            .expression_attribute_values(":message", s(end.message))
            .build()
            .map_err(DomainError::internal)?;
        let job_items = vec![TransactWriteItem::builder().update(ended).build(), self.current_jobs(job, "DELETE")?];
        let owner = lease_owner(job.agent_id);
        let finish =
            self.finish_items(&job.deploy_job(), &owner, (end.deployment_state(), end.message), end.artifact, end.at)?;
        let both = job_items.iter().cloned().chain(finish).collect();
        Ok(match self.try_transact(both).await?.first() {
            None => Ended::Both,
            Some(0) => Ended::Already,
            // The deployment ended some other way: the job ends alone.
            Some(_) if self.try_transact(job_items).await?.is_empty() => Ended::JobOnly,
            Some(_) => Ended::Already,
        })
    }
}

fn job_key(job: &AgentJob) -> keys::ItemKeys {
    keys::agent_job(job.agent_id, job.promotion_id, job.target_id)
}

impl DynamoRepository {
    /// `ADD`s the job to (or `DELETE`s it from) its agent's `currentJobs` string set.
    fn current_jobs(&self, job: &AgentJob, action: &str) -> Result<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::agent(job.agent_id).primary()))
            .update_expression(format!("{action} currentJobs :job"))
            .expression_attribute_values(":job", AttributeValue::Ss(vec![job.label()]))
            .build()
            .map_err(DomainError::internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}
