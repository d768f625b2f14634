//! Which promotion step waits for a CI run: one item per run, expiring after the step's
//! deadline, so a `workflow_run` webhook can bring the step's check forward.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use gantry_domain::Result;
use gantry_domain::ci::CiIntegrationId;
use gantry_domain::steps::{RunWatchRepository, StepJob};
use tracing::instrument;

use crate::DynamoRepository;
use crate::codec::{sdk, to_item};
use crate::keys;

#[async_trait]
impl RunWatchRepository for DynamoRepository {
    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, step = job.step), err(level = "info"))]
    async fn watch_run(
        &self,
        integration: CiIntegrationId,
        run_id: &str,
        job: &StepJob,
        until: DateTime<Utc>,
    ) -> Result<()> {
        let mut item = to_item(job, &keys::ci_run_watch(integration, run_id))?;
        item.insert("expiresAt".into(), AttributeValue::N(until.timestamp().to_string()));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(sdk)?;
        Ok(())
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn watched_run(&self, integration: CiIntegrationId, run_id: &str) -> Result<Option<StepJob>> {
        self.get(&keys::ci_run_watch(integration, run_id)).await
    }
}
