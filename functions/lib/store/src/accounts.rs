//! Service accounts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gantry_domain::accounts::{ServiceAccount, ServiceAccountId, ServiceAccountRepository};
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::codec::{from_items, sdk, to_item};
use crate::keys::{self, GSI1, s};
use crate::{DynamoRepository, Tx};

#[async_trait]
impl ServiceAccountRepository for DynamoRepository {
    #[instrument(skip_all, fields(service_account_id = %account.id), err(level = "info"))]
    async fn create_service_account(&self, account: &ServiceAccount) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.put_new(to_item(account, &keys::service_account(account.id, account.name.as_str()))?)?,
            DomainError::conflict("service account id exists"),
        );
        tx.push(
            self.guard(&keys::unique_name(keys::Named::ServiceAccount, account.name.as_str()))?,
            DomainError::conflict(format!("a service account named {} exists", account.name)),
        );
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(service_account_id = %id), err(level = "info"))]
    async fn get_service_account(&self, id: ServiceAccountId) -> Result<Option<ServiceAccount>> {
        self.get(&keys::service_account_key(id)).await
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn list_service_accounts(&self) -> Result<Vec<ServiceAccount>> {
        let query = self
            .query()
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(keys::SERVICE_ACCOUNTS));
        from_items(self.query_all(query).await?)
    }

    #[instrument(skip_all, fields(service_account_id = %account.id), err(level = "info"))]
    async fn revoke_service_account(&self, account: &ServiceAccount, at: DateTime<Utc>) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::service_account_key(account.id).primary()))
            .update_expression("SET revokedAt = :at")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":at", s(&at.to_rfc3339()))
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }
}
