//! Registry integrations and the webhook delivery log.

use std::io::Read;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use gantry_domain::events::{Delivery, DeliveryLog, RegistrySource};
use gantry_domain::integrations::{IntegrationId, IntegrationRef, IntegrationRepository, RegistryIntegration};
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::codec::{from_items, sdk, to_item};
use crate::keys::{self, GSI1, GSI2, s};
use crate::{DynamoRepository, Tx};

/// How long raw deliveries are kept for audit and replay (DynamoDB TTL removes them after).
pub const DELIVERY_RETENTION_DAYS: i64 = 90;

#[async_trait]
impl gantry_domain::service::KnownIntegrations for DynamoRepository {
    async fn integration_exists(&self, id: IntegrationId) -> Result<bool> {
        Ok(self.get_integration(id).await?.is_some())
    }
}

#[async_trait]
impl IntegrationRepository for DynamoRepository {
    #[instrument(skip_all, fields(integration_id = %integration.id), err(level = "info"))]
    async fn create_integration(&self, integration: &RegistryIntegration) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.put_new(to_item(
                integration,
                &keys::integration(integration.id, integration.name.as_str(), integration.kind),
            )?)?,
            DomainError::conflict("integration id exists"),
        );
        tx.push(
            self.guard(&keys::unique_name(keys::Named::Integration, integration.name.as_str()))?,
            DomainError::conflict(format!("a registry integration named {} exists", integration.name)),
        );
        tx.push(self.secret_entry(integration)?, DomainError::conflict("webhook secret collision; retry"));
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(integration_id = %id), err(level = "info"))]
    async fn get_integration(&self, id: IntegrationId) -> Result<Option<RegistryIntegration>> {
        self.get(&keys::integration_key(id)).await
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn list_integrations(&self) -> Result<Vec<RegistryIntegration>> {
        let query = self
            .query()
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(keys::INTEGRATIONS));
        from_items(self.query_all(query).await?)
    }

    #[instrument(skip_all, fields(kind = %kind), err(level = "info"))]
    async fn integrations_of_kind(&self, kind: RegistrySource) -> Result<Vec<RegistryIntegration>> {
        let query = self
            .query()
            .index_name(GSI2)
            .key_condition_expression("GSI2PK = :pk")
            .expression_attribute_values(":pk", s(&keys::integrations_of_kind_pk(kind)));
        from_items(self.query_all(query).await?)
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn integration_by_secret_hash(&self, hash: &str) -> Result<Option<IntegrationRef>> {
        let entry = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::webhook_secret(hash).primary()))
            .send()
            .await
            .map_err(sdk)?;
        let Some(item) = entry.item else { return Ok(None) };
        let Some(id) = item.get("integrationId").and_then(|v| v.as_s().ok()) else { return Ok(None) };
        let id = IntegrationId::parse(id)?;
        match item.get("kind").and_then(|v| v.as_s().ok()) {
            Some(kind) => Ok(Some(IntegrationRef { id, kind: kind.parse()? })),
            // Entries written before they carried the kind.
            None => Ok(self.get_integration(id).await?.as_ref().map(IntegrationRef::from)),
        }
    }

    #[instrument(skip_all, fields(integration_id = %after.id), err(level = "info"))]
    async fn replace_integration_secret(
        &self,
        before: &RegistryIntegration,
        after: &RegistryIntegration,
    ) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.update_revision(
                &keys::integration(after.id, after.name.as_str(), after.kind),
                after,
                before.revision,
            )?,
            DomainError::conflict(format!("integration {} changed meanwhile; retry", before.id)),
        );
        tx.push(
            self.delete(&keys::webhook_secret(&before.webhook_secret_hash), None)?,
            DomainError::internal("secret entry delete"),
        );
        tx.push(self.secret_entry(after)?, DomainError::conflict("webhook secret collision; retry"));
        self.transact(tx).await
    }
}

impl DynamoRepository {
    fn secret_entry(&self, integration: &RegistryIntegration) -> Result<aws_sdk_dynamodb::types::TransactWriteItem> {
        let mut item = keys::webhook_secret(&integration.webhook_secret_hash).all();
        item.insert("integrationId".into(), s(&integration.id.to_string()));
        item.insert("kind".into(), s(&integration.kind.to_string()));
        self.put_new(item)
    }

    /// The raw body of a stored delivery, for audit and replay.
    pub async fn delivery_body(&self, delivery_key: &str) -> Result<Option<Vec<u8>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::delivery(delivery_key).primary()))
            .send()
            .await
            .map_err(sdk)?;
        let Some(blob) = out.item.as_ref().and_then(|i| i.get("rawBody")).and_then(|v| v.as_b().ok()) else {
            return Ok(None);
        };
        let mut body = Vec::new();
        flate2::read::GzDecoder::new(blob.as_ref()).read_to_end(&mut body).map_err(DomainError::internal)?;
        Ok(Some(body))
    }
}

impl DynamoRepository {
    /// Puts a delivery item, to expire after the retention period, unless one with its key
    /// exists; `false` when it does (a replay).
    async fn put_delivery(&self, mut item: crate::codec::Item, received_at: chrono::DateTime<Utc>) -> Result<bool> {
        let expires = received_at + Duration::days(DELIVERY_RETENTION_DAYS);
        item.insert("expiresAt".into(), AttributeValue::N(expires.timestamp().to_string()));
        self.put_if_absent(item).await
    }
}

#[async_trait]
impl DeliveryLog for DynamoRepository {
    #[instrument(skip_all, fields(delivery = %delivery.key), err(level = "info"))]
    async fn record(&self, delivery: &Delivery) -> Result<bool> {
        let mut item = keys::delivery(&delivery.key).all();
        item.insert("integrationId".into(), s(&delivery.integration_id.to_string()));
        item.insert("events".into(), AttributeValue::N(delivery.events.to_string()));
        item.insert("images".into(), AttributeValue::L(delivery.images.iter().map(|i| s(i)).collect()));
        item.insert("rawBody".into(), AttributeValue::B(Blob::new(delivery.compressed_body.clone())));
        item.insert("receivedAt".into(), s(&delivery.received_at.to_rfc3339()));
        self.put_delivery(item, delivery.received_at).await
    }

    #[instrument(skip_all, fields(delivery = %delivery_key), err(level = "info"))]
    async fn claim(&self, delivery_key: &str) -> Result<bool> {
        self.put_delivery(keys::delivery(delivery_key).all(), Utc::now()).await
    }
}
