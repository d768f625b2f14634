//! Environments and what runs in them.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use gantry_domain::model::{DeployedComponent, Environment, ReleaseEnvironmentRecord};
use gantry_domain::ports::{DeploymentRecords, EnvironmentRepository};
use gantry_domain::values::{EnvironmentId, ReleaseId};
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::codec::{from_items, sdk, to_item};
use crate::evidence::ACTIVE;
use crate::keys::{GSI1, s};

use crate::keys;
use crate::{DynamoRepository, Tx};

#[async_trait]
impl EnvironmentRepository for DynamoRepository {
    #[instrument(skip_all, fields(environment_id = %environment.id), err(level = "info"))]
    async fn create_environment(&self, environment: &Environment) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.put_new(to_item(environment, &keys::environment(environment.id, environment.order))?)?,
            DomainError::conflict("environment id exists"),
        );
        tx.push(
            self.guard(&keys::unique_name(keys::Named::Environment, environment.name.as_str()))?,
            DomainError::conflict(format!("an environment named {} exists", environment.name)),
        );
        tx.push(
            self.guard(&keys::unique_order(environment.order))?,
            DomainError::conflict(format!("another environment has order {}", environment.order)),
        );
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(environment_id = %id), err(level = "info"))]
    async fn get_environment(&self, id: EnvironmentId) -> Result<Option<Environment>> {
        self.get(&keys::environment_key(id)).await
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn list_environments(&self) -> Result<Vec<Environment>> {
        let items = self
            .query_all(
                self.query()
                    .index_name(GSI1)
                    .key_condition_expression("GSI1PK = :pk")
                    .expression_attribute_values(":pk", s(keys::ENVIRONMENTS)),
            )
            .await?;
        from_items(items)
    }

    #[instrument(skip_all, fields(environment_id = %after.id), err(level = "info"))]
    async fn update_environment(&self, before: &Environment, after: &Environment) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.update_revision(&keys::environment(after.id, after.order), after, before.revision)?,
            DomainError::conflict(format!("environment {} changed meanwhile; read it again and retry", before.id)),
        );
        if before.name != after.name {
            tx.push(
                self.delete(&keys::unique_name(keys::Named::Environment, before.name.as_str()), None)?,
                DomainError::internal("name guard delete"),
            );
            tx.push(
                self.guard(&keys::unique_name(keys::Named::Environment, after.name.as_str()))?,
                DomainError::conflict(format!("an environment named {} exists", after.name)),
            );
        }
        if before.order != after.order {
            tx.push(self.delete(&keys::unique_order(before.order), None)?, DomainError::internal("order guard delete"));
            tx.push(
                self.guard(&keys::unique_order(after.order))?,
                DomainError::conflict(format!("another environment has order {}", after.order)),
            );
        }
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(environment_id = %environment.id), err(level = "info"))]
    async fn delete_environment(&self, environment: &Environment) -> Result<()> {
        let deployed = self
            .query()
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(&keys::environment_pk(environment.id)))
            .expression_attribute_values(":prefix", s(keys::DEPLOYED_PREFIX))
            .limit(1)
            .send()
            .await
            .map_err(sdk)?;
        if deployed.count > 0 {
            return Err(DomainError::conflict(format!(
                "environment {} has deployments; it cannot be deleted",
                environment.name
            )));
        }
        if !self.partition(&keys::environment_pk(environment.id), keys::TARGET_PREFIX).await?.is_empty() {
            return Err(DomainError::conflict(format!(
                "environment {} has deployment targets; remove them first",
                environment.name
            )));
        }
        let mut tx = Tx::new();
        // What a promotion records as it ends is written while it holds the environment's
        // lock (on its chain head): while one does, the environment stays.
        tx.push(
            self.check(&keys::evidence_head(environment.id), &format!("attribute_not_exists({ACTIVE})"))?,
            DomainError::conflict(format!(
                "environment {} has an active promotion; it cannot be deleted",
                environment.name
            )),
        );
        tx.push(
            self.delete(
                &keys::environment(environment.id, environment.order),
                Some(("revision = :rev", vec![(":rev", AttributeValue::N(environment.revision.to_string()))])),
            )?,
            DomainError::conflict(format!("environment {} changed meanwhile; read it again and retry", environment.id)),
        );
        tx.push(
            self.delete(&keys::unique_name(keys::Named::Environment, environment.name.as_str()), None)?,
            DomainError::internal("name guard delete"),
        );
        tx.push(
            self.delete(&keys::unique_order(environment.order), None)?,
            DomainError::internal("order guard delete"),
        );
        self.transact(tx).await
    }
}

#[async_trait]
impl DeploymentRecords for DynamoRepository {
    async fn environment_exists(&self, environment: EnvironmentId) -> Result<bool> {
        Ok(self.get_environment(environment).await?.is_some())
    }

    #[instrument(skip_all, fields(environment_id = %environment), err(level = "info"))]
    async fn deployed_components(&self, environment: EnvironmentId) -> Result<Vec<DeployedComponent>> {
        from_items(self.partition(&keys::environment_pk(environment), keys::DEPLOYED_PREFIX).await?)
    }

    #[instrument(skip_all, fields(release_id = %release), err(level = "info"))]
    async fn release_environment_records(&self, release: ReleaseId) -> Result<Vec<ReleaseEnvironmentRecord>> {
        from_items(self.partition(&keys::release_pk(release), keys::ENVSTATE_PREFIX).await?)
    }

    #[instrument(skip_all, fields(releases = releases.len(), environments = environments.len()), err(level = "info"))]
    async fn release_environment_records_of(
        &self,
        releases: &[ReleaseId],
        environments: &[EnvironmentId],
    ) -> Result<Vec<ReleaseEnvironmentRecord>> {
        let keys =
            releases.iter().flat_map(|r| environments.iter().map(move |e| keys::release_environment(*r, *e))).collect();
        from_items(self.batch_get(keys).await?)
    }

    #[instrument(skip_all, fields(release_id = %record.release_id, environment_id = %record.environment_id), err(level = "info"))]
    async fn record_release_deployed(
        &self,
        record: &ReleaseEnvironmentRecord,
        components: &[DeployedComponent],
    ) -> Result<()> {
        // Plain puts, in one BatchWriteItem (no transaction, which bills every item twice):
        // each writes the same item again when repeated, and the environment stays because a
        // promotion holds its lock meanwhile (see `delete_environment`).
        let mut items = vec![to_item(record, &keys::release_environment(record.release_id, record.environment_id))?];
        for c in components {
            items.push(to_item(c, &keys::deployed_component(c.environment_id, c.component_id))?);
        }
        self.batch_put(items).await
    }
}
