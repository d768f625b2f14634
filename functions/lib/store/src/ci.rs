//! CI integrations.

use async_trait::async_trait;
use gantry_domain::ci::{CiIntegration, CiIntegrationId, CiIntegrationRepository};
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::codec::{from_items, to_item};
use crate::keys::{self, GSI1, s};
use crate::{DynamoRepository, Tx};

#[async_trait]
impl CiIntegrationRepository for DynamoRepository {
    #[instrument(skip_all, fields(ci_integration_id = %integration.id), err(level = "info"))]
    async fn create_ci_integration(&self, integration: &CiIntegration) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.put_new(to_item(integration, &keys::ci_integration(integration.id, integration.name.as_str()))?)?,
            DomainError::conflict("CI integration id exists"),
        );
        tx.push(
            self.guard(&keys::unique_name(keys::Named::CiIntegration, integration.name.as_str()))?,
            DomainError::conflict(format!("a CI integration named {} exists", integration.name)),
        );
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(ci_integration_id = %id), err(level = "info"))]
    async fn get_ci_integration(&self, id: CiIntegrationId) -> Result<Option<CiIntegration>> {
        self.get(&keys::ci_integration_key(id)).await
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn list_ci_integrations(&self) -> Result<Vec<CiIntegration>> {
        let query = self
            .query()
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(keys::CI_INTEGRATIONS));
        from_items(self.query_all(query).await?)
    }

    #[instrument(skip_all, fields(ci_integration_id = %after.id), err(level = "info"))]
    async fn update_ci_integration(&self, before: &CiIntegration, after: &CiIntegration) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.update_revision(&keys::ci_integration(after.id, after.name.as_str()), after, before.revision)?,
            DomainError::conflict(format!("CI integration {} changed meanwhile; read it again and retry", before.id)),
        );
        self.transact(tx).await
    }
}
