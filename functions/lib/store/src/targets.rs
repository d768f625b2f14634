//! Deployment targets, kept in their environment's partition.

use async_trait::async_trait;
use gantry_domain::targets::{DeploymentTarget, TargetId, TargetRepository};
use gantry_domain::values::EnvironmentId;
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::codec::{from_items, sdk, to_item};
use crate::keys::{self, GSI1, ItemKeys, s};
use crate::{DynamoRepository, Tx};

fn name_guard(target: &DeploymentTarget) -> ItemKeys {
    keys::unique_name(keys::Named::Target, &format!("{}#{}", target.environment_id, target.name))
}

#[async_trait]
impl TargetRepository for DynamoRepository {
    #[instrument(skip_all, fields(target_id = %target.id), err(level = "info"))]
    async fn add_target(&self, target: &DeploymentTarget) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.exists(&keys::environment_key(target.environment_id))?,
            DomainError::not_found("environment", target.environment_id),
        );
        tx.push(
            self.put_new(to_item(target, &keys::target(target.environment_id, target.id))?)?,
            DomainError::conflict("target id exists"),
        );
        tx.push(
            self.guard(&name_guard(target))?,
            DomainError::conflict(format!("the environment has a target named {}", target.name)),
        );
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(target_id = %id), err(level = "info"))]
    async fn get_target(&self, id: TargetId) -> Result<Option<DeploymentTarget>> {
        let out = self
            .query()
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(&keys::target_lookup(id)))
            .send()
            .await
            .map_err(sdk)?;
        Ok(from_items(out.items.unwrap_or_default())?.into_iter().next())
    }

    #[instrument(skip_all, fields(environment_id = %environment), err(level = "info"))]
    async fn targets_of(&self, environment: EnvironmentId) -> Result<Vec<DeploymentTarget>> {
        from_items(self.partition(&keys::environment_pk(environment), keys::TARGET_PREFIX).await?)
    }

    #[instrument(skip_all, fields(target_id = %target.id), err(level = "info"))]
    async fn remove_target(&self, target: &DeploymentTarget) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.delete(&keys::target(target.environment_id, target.id), Some(("attribute_exists(PK)", vec![])))?,
            DomainError::not_found("deployment target", target.id),
        );
        tx.push(self.delete(&name_guard(target), None)?, DomainError::internal("name guard delete"));
        self.transact(tx).await
    }
}
