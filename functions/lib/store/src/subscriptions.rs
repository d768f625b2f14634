//! Notification subscriptions: one partition of at most 100, with names kept unique.

use async_trait::async_trait;
use gantry_domain::ids::SubscriptionId;
use gantry_domain::notifications::{DeliveryOutcome, Subscription, SubscriptionRepository};
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::codec::{from_items, sdk, to_item};
use crate::keys;
use crate::{DynamoRepository, Tx};

#[async_trait]
impl SubscriptionRepository for DynamoRepository {
    #[instrument(skip_all, fields(subscription_id = %subscription.id), err(level = "info"))]
    async fn create_subscription(&self, subscription: &Subscription) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.put_new(to_item(subscription, &keys::subscription(subscription.id))?)?,
            DomainError::conflict("subscription id exists"),
        );
        tx.push(
            self.guard(&keys::unique_name(keys::Named::Subscription, subscription.name.as_str()))?,
            DomainError::conflict(format!("a subscription named {} exists", subscription.name)),
        );
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(subscription_id = %id), err(level = "info"))]
    async fn get_subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>> {
        self.get(&keys::subscription(id)).await
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn list_subscriptions(&self) -> Result<Vec<Subscription>> {
        let mut all: Vec<Subscription> =
            from_items(self.partition(keys::SUBSCRIPTIONS, keys::SUBSCRIPTION_PREFIX).await?)?;
        all.sort_by_key(|s| s.created_at);
        Ok(all)
    }

    #[instrument(skip_all, fields(subscription_id = %id), err(level = "info"))]
    async fn delete_subscription(&self, id: SubscriptionId) -> Result<bool> {
        let Some(found) = self.get_subscription(id).await? else { return Ok(false) };
        let mut tx = Tx::new();
        tx.push(self.delete(&keys::subscription(id), None)?, DomainError::conflict("the subscription changed"));
        tx.push(
            self.delete(&keys::unique_name(keys::Named::Subscription, found.name.as_str()), None)?,
            DomainError::conflict("the subscription changed"),
        );
        self.transact(tx).await?;
        Ok(true)
    }

    #[instrument(skip_all, fields(subscription_id = %id), err(level = "info"))]
    async fn record_delivery(&self, id: SubscriptionId, outcome: &DeliveryOutcome) -> Result<()> {
        let value = serde_dynamo::to_attribute_value(outcome).map_err(DomainError::internal)?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::subscription(id).primary()))
            .update_expression("SET lastDelivery = :outcome")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":outcome", value)
            .send()
            .await;
        match out {
            // Deleted meanwhile: nothing to record on.
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            other => other.map(drop).map_err(sdk),
        }
    }
}
