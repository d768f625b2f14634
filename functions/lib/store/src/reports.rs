//! What has been reported of each promotion to CI systems: one item beside the promotion.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use gantry_domain::ids::PromotionId;
use gantry_domain::reports::{PromotionReports, ReportRepository};
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::DynamoRepository;
use crate::codec::{from_items, sdk, to_item};
use crate::keys;

#[async_trait]
impl ReportRepository for DynamoRepository {
    #[instrument(skip_all, fields(promotion_id = %promotion), err(level = "info"))]
    async fn reports(&self, promotion: PromotionId) -> Result<Option<PromotionReports>> {
        self.get(&keys::promotion_reports(promotion)).await
    }

    #[instrument(skip_all, fields(count = promotions.len()), err(level = "info"))]
    async fn reports_of(&self, promotions: &[PromotionId]) -> Result<Vec<PromotionReports>> {
        from_items(self.batch_get(promotions.iter().copied().map(keys::promotion_reports).collect()).await?)
    }

    #[instrument(skip_all, fields(promotion_id = %after.promotion_id, revision = after.revision), err(level = "info"))]
    async fn save_reports(&self, before: Option<u64>, after: &PromotionReports) -> Result<()> {
        let item = to_item(after, &keys::promotion_reports(after.promotion_id))?;
        let put = self.client.put_item().table_name(&self.table).set_item(Some(item));
        let put = match before {
            None => put.condition_expression("attribute_not_exists(PK)"),
            Some(revision) => put
                .condition_expression("revision = :rev")
                .expression_attribute_values(":rev", AttributeValue::N(revision.to_string())),
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(DomainError::conflict("the promotion's reports changed meanwhile"))
            }
            Err(err) => Err(sdk(err)),
        }
    }
}
