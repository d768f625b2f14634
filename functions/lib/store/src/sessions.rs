//! Dashboard sessions: one item each, removed by DynamoDB's TTL (`expiresAt`) after the
//! session's absolute limit, and deleted at once on sign-out.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use gantry_domain::Result;
use gantry_domain::sessions::{SessionRepository, StoredSession};
use tracing::instrument;

use crate::DynamoRepository;
use crate::codec::{sdk, to_item};
use crate::keys;

#[async_trait]
impl SessionRepository for DynamoRepository {
    #[instrument(skip_all, err(level = "info"))]
    async fn put_session(&self, session: &StoredSession) -> Result<()> {
        let mut item = to_item(session, &keys::dashboard_session(&session.id_hash))?;
        item.insert("expiresAt".into(), AttributeValue::N(session.ends_at.timestamp().to_string()));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(sdk)?;
        Ok(())
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn get_session(&self, id_hash: &str) -> Result<Option<StoredSession>> {
        self.get(&keys::dashboard_session(id_hash)).await
    }

    /// Moves `lastSeen` on, only while the session exists (a sign-out meanwhile stands).
    #[instrument(skip_all, err(level = "info"))]
    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<()> {
        let touched = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::dashboard_session(id_hash).primary()))
            .update_expression("SET lastSeen = :at")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":at", AttributeValue::S(at.to_rfc3339()))
            .send()
            .await;
        match touched {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(err) => Err(sdk(err)),
        }
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        let key = keys::dashboard_session(id_hash).primary();
        self.client.delete_item().table_name(&self.table).set_key(Some(key)).send().await.map_err(sdk)?;
        Ok(())
    }
}
