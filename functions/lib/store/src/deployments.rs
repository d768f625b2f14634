//! Deployments, in their promotion's partition, with leases and conditional endings.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use gantry_domain::artifacts::{Artifact, ArtifactKey, ArtifactRef, ArtifactRepository};
use gantry_domain::deployments::{DeployJob, Deployment, DeploymentRepository, DeploymentState};
use gantry_domain::ids::TargetId;
use gantry_domain::promotions::PromotionId;
use gantry_domain::traffic::{Control, TrafficStep};
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::DynamoRepository;
use crate::codec::{from_item, from_items, sdk, to_item};
use crate::keys::{self, s, stamp};

/// The control an item carries, `Continue` when none (or one this build does not know).
fn control_of(item: Option<&std::collections::HashMap<String, AttributeValue>>) -> Control {
    item.and_then(|i| i.get("control"))
        .and_then(|v| serde_dynamo::from_attribute_value(v.clone()).ok())
        .unwrap_or(Control::Continue)
}

/// An update's output, or `None` when its condition did not hold.
pub(crate) fn unless_condition_failed<T, E, R>(
    out: std::result::Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
) -> Result<Option<T>>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match out {
        Ok(o) => Ok(Some(o)),
        Err(err) if err.as_service_error().is_some_and(|e| e.code() == Some("ConditionalCheckFailedException")) => {
            Ok(None)
        }
        Err(err) => Err(sdk(err)),
    }
}

#[async_trait]
impl DeploymentRepository for DynamoRepository {
    #[instrument(skip_all, fields(promotion_id = %promotion), err(level = "info"))]
    async fn deployments_of(&self, promotion: PromotionId) -> Result<Vec<Deployment>> {
        // Consistent, so a worker settling a promotion sees every deployment's end.
        let query = self
            .query()
            .key_condition_expression("PK = :pk AND begins_with(SK, :p)")
            .expression_attribute_values(":pk", s(&keys::promotion_pk(promotion)))
            .expression_attribute_values(":p", s(keys::DEPLOYMENT_PREFIX))
            .consistent_read(true);
        from_items(self.query_all(query).await?)
    }

    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, target_id = %job.target_id), err(level = "info"))]
    async fn claim(
        &self,
        job: &DeployJob,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Deployment>> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::deployment(job.promotion_id, job.target_id).primary()))
            .update_expression("SET #state = :running, leaseOwner = :owner, leaseUntil = :until, startedAt = if_not_exists(startedAt, :now)")
            .condition_expression("attribute_exists(PK) AND (#state = :pending OR (#state = :running AND leaseUntil < :now))")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":running", s(DeploymentState::Running.as_str()))
            .expression_attribute_values(":pending", s(DeploymentState::Pending.as_str()))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", s(&stamp(until)))
            .expression_attribute_values(":now", s(&stamp(now)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        unless_condition_failed(out)?.and_then(|o| o.attributes).map(from_item).transpose()
    }

    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, target_id = %job.target_id), err(level = "info"))]
    async fn hand_over(&self, job: &DeployJob, from: &str, to: &str, until: DateTime<Utc>) -> Result<bool> {
        Ok(self.try_transact(vec![self.lease_to(job, from, to, until)?]).await?.is_empty())
    }

    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, target_id = %job.target_id), err(level = "info"))]
    async fn renew(&self, job: &DeployJob, owner: &str, until: DateTime<Utc>) -> Result<bool> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::deployment(job.promotion_id, job.target_id).primary()))
            .update_expression("SET leaseUntil = :until")
            .condition_expression("#state = :running AND leaseOwner = :owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":running", s(DeploymentState::Running.as_str()))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", s(&stamp(until)))
            .send()
            .await;
        Ok(unless_condition_failed(out)?.is_some())
    }

    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, target_id = %job.target_id), err(level = "info"))]
    async fn mark_swept(&self, job: &DeployJob, now: DateTime<Utc>, before: DateTime<Utc>) -> Result<bool> {
        let pending =
            ("#state = :pending", &[("#state", "state")][..], vec![(":pending", s(DeploymentState::Pending.as_str()))]);
        let keys = keys::deployment(job.promotion_id, job.target_id);
        DynamoRepository::mark_swept(self, &keys, pending, now, before).await
    }

    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, target_id = %job.target_id), err(level = "info"))]
    async fn remember_prior(&self, job: &DeployJob, owner: &str, prior: &str) -> Result<String> {
        let keys = keys::deployment(job.promotion_id, job.target_id);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys.primary()))
            .update_expression("SET #prior = :prior")
            .condition_expression("#state = :running AND leaseOwner = :owner AND attribute_not_exists(#prior)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#prior", "prior")
            .expression_attribute_values(":running", s(DeploymentState::Running.as_str()))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":prior", s(prior))
            .send()
            .await;
        if unless_condition_failed(out)?.is_some() {
            return Ok(prior.to_owned());
        }
        // Written down already (an earlier attempt's stands), or the lease is lost.
        let read = self.client.get_item().table_name(&self.table).set_key(Some(keys.primary())).consistent_read(true);
        let stored: Option<Deployment> = read.send().await.map_err(sdk)?.item.map(from_item).transpose()?;
        match stored {
            Some(Deployment { prior: Some(prior), lease_owner: Some(holder), .. }) if holder == owner => Ok(prior),
            _ => Err(DomainError::conflict("this worker lost the deployment's lease")),
        }
    }

    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, target_id = %job.target_id, weight = step.weight), err(level = "info"))]
    async fn record_traffic(&self, job: &DeployJob, owner: &str, step: &TrafficStep) -> Result<Control> {
        let step: AttributeValue = serde_dynamo::to_attribute_value(step).map_err(DomainError::internal)?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::deployment(job.promotion_id, job.target_id).primary()))
            .update_expression("SET trafficSteps = list_append(if_not_exists(trafficSteps, :none), :step)")
            .condition_expression("#state = :running AND leaseOwner = :owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":running", s(DeploymentState::Running.as_str()))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":step", AttributeValue::L(vec![step]))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let Some(out) = unless_condition_failed(out)? else {
            return Err(DomainError::conflict("this worker lost the deployment's lease"));
        };
        Ok(control_of(out.attributes.as_ref()))
    }

    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, target_id = %job.target_id), err(level = "info"))]
    async fn control(&self, job: &DeployJob) -> Result<Control> {
        let read = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::deployment(job.promotion_id, job.target_id).primary()))
            .projection_expression("control")
            .consistent_read(true);
        Ok(control_of(read.send().await.map_err(sdk)?.item.as_ref()))
    }

    #[instrument(skip_all, fields(promotion_id = %promotion, ?control), err(level = "info"))]
    async fn steer(&self, promotion: PromotionId, targets: &[TargetId], control: Control) -> Result<Vec<TargetId>> {
        let value: AttributeValue = serde_dynamo::to_attribute_value(control).map_err(DomainError::internal)?;
        let set = targets.iter().map(|target| {
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(keys::deployment(promotion, *target).primary()))
                .update_expression("SET control = :control")
                .condition_expression("attribute_exists(PK) AND #state IN (:pending, :running)")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":pending", s(DeploymentState::Pending.as_str()))
                .expression_attribute_values(":running", s(DeploymentState::Running.as_str()))
                .expression_attribute_values(":control", value.clone());
            async move { unless_condition_failed(update.send().await).map(|done| done.map(|_| *target)) }
        });
        let reached = futures::future::try_join_all(set).await?;
        Ok(reached.into_iter().flatten().collect())
    }

    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, target_id = %job.target_id), err(level = "info"))]
    async fn give_up(&self, job: &DeployJob, message: &str, at: DateTime<Utc>) -> Result<bool> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::deployment(job.promotion_id, job.target_id).primary()))
            .update_expression("SET #state = :failed, message = :message, finishedAt = :at")
            .condition_expression("attribute_exists(PK) AND #state <> :failed AND #state <> :succeeded")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":failed", s(DeploymentState::Failed.as_str()))
            .expression_attribute_values(":succeeded", s(DeploymentState::Succeeded.as_str()))
            .expression_attribute_values(":message", s(message))
            .expression_attribute_values(":at", s(&stamp(at)))
            .build()
            .map_err(DomainError::internal)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        items.extend(self.one_less_open(job)?);
        Ok(self.try_transact(items).await?.is_empty())
    }

    #[instrument(skip_all, fields(promotion_id = %promotion), err(level = "info"))]
    async fn settle_turn(&self, promotion: PromotionId) -> Result<bool> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::open_deployments(promotion).primary()))
            .update_expression("SET settling = :yes")
            .condition_expression("attribute_not_exists(#open) OR (#open <= :none AND attribute_not_exists(settling))")
            .expression_attribute_names("#open", "open")
            .expression_attribute_values(":yes", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
            .expression_attribute_values(":none", aws_sdk_dynamodb::types::AttributeValue::N("0".into()))
            .send()
            .await;
        Ok(unless_condition_failed(out)?.is_some())
    }

    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, target_id = %job.target_id), err(level = "info"))]
    async fn finish(
        &self,
        job: &DeployJob,
        owner: &str,
        ended: (DeploymentState, &str),
        artifact: Option<&Artifact>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        if let Some(a) = artifact {
            self.store_artifact(a).await?;
        }
        let items = self.finish_items(job, owner, ended, artifact.map(|a| &a.reference), at)?;
        Ok(self.try_transact(items).await?.is_empty())
    }
}

impl DynamoRepository {
    /// Moves the lease of a running deployment `from` holds to `to` until `until`.
    pub(crate) fn lease_to(
        &self,
        job: &DeployJob,
        from: &str,
        to: &str,
        until: DateTime<Utc>,
    ) -> Result<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::deployment(job.promotion_id, job.target_id).primary()))
            .update_expression("SET leaseOwner = :to, leaseUntil = :until")
            .condition_expression("#state = :running AND leaseOwner = :from")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":running", s(DeploymentState::Running.as_str()))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to))
            .expression_attribute_values(":until", s(&stamp(until)))
            .build()
            .map_err(DomainError::internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Counts the promotion's open deployments down by one, unless the job's deployment is its
    /// promotion's only one (which keeps no count).
    fn one_less_open(&self, job: &DeployJob) -> Result<Option<TransactWriteItem>> {
        if job.alone {
            return Ok(None);
        }
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::open_deployments(job.promotion_id).primary()))
            .update_expression("ADD #open :minus")
            .expression_attribute_names("#open", "open")
            .expression_attribute_values(":minus", aws_sdk_dynamodb::types::AttributeValue::N("-1".into()))
            .build()
            .map_err(DomainError::internal)?;
        Ok(Some(TransactWriteItem::builder().update(update).build()))
    }

    /// Stores what a deployment applied under its hash, before the write that ends the
    /// deployment names it: a plain put, since the same key always holds the same content.
    #[instrument(skip_all, fields(promotion_id = %artifact.promotion_id, target_id = %artifact.target_id), err(level = "info"))]
    pub(crate) async fn store_artifact(&self, artifact: &Artifact) -> Result<()> {
        let keys = keys::artifact(artifact.promotion_id, artifact.target_id, &artifact.reference.sha256);
        let item = to_item(artifact, &keys)?;
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(sdk)?;
        Ok(())
    }

    /// What ends a deployment `owner` holds: its update (first, conditional on the lease),
    /// naming its artifact, and the count of open deployments (when kept).
    pub(crate) fn finish_items(
        &self,
        job: &DeployJob,
        owner: &str,
        (state, message): (DeploymentState, &str),
        artifact: Option<&ArtifactRef>,
        at: DateTime<Utc>,
    ) -> Result<Vec<TransactWriteItem>> {
        let mut sets = "#state = :state, message = :message, finishedAt = :at".to_owned();
        let mut values = vec![
            (":state", s(state.as_str())),
            (":message", s(message)),
            (":at", s(&stamp(at))),
            (":running", s(DeploymentState::Running.as_str())),
            (":owner", s(owner)),
        ];
        if let Some(reference) = artifact {
            sets.push_str(", artifact = :artifact");
            let reference = serde_dynamo::to_attribute_value(reference).map_err(DomainError::internal)?;
            values.push((":artifact", reference));
        }
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::deployment(job.promotion_id, job.target_id).primary()))
            .update_expression(format!("SET {sets}"))
            .condition_expression("#state = :running AND leaseOwner = :owner")
            .expression_attribute_names("#state", "state")
            .set_expression_attribute_values(Some(values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
            .build()
            .map_err(DomainError::internal)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        items.extend(self.one_less_open(job)?);
        Ok(items)
    }
}

#[async_trait]
impl ArtifactRepository for DynamoRepository {
    /// One batch by hash; artifacts stored before they were keyed by hash, in a second batch
    /// for those missing, when the stored one has the hash the deployment names.
    #[instrument(skip_all, fields(count = named.len()), err(level = "info"))]
    async fn artifacts(&self, named: &[ArtifactKey]) -> Result<Vec<Artifact>> {
        let keyed = named.iter().map(|k| keys::artifact(k.promotion_id, k.target_id, &k.sha256)).collect();
        let mut found: Vec<Artifact> = from_items(self.batch_get(keyed).await?)?;
        let missing: Vec<&ArtifactKey> = named.iter().filter(|k| !found.iter().any(|a| a.key() == **k)).collect();
        if !missing.is_empty() {
            let unhashed = missing.iter().map(|k| keys::artifact_unhashed(k.promotion_id, k.target_id)).collect();
            let older: Vec<Artifact> = from_items(self.batch_get(unhashed).await?)?;
            found.extend(older.into_iter().filter(|a| missing.contains(&&a.key())));
        }
        Ok(found)
    }
}
