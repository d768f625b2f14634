//! Slack user mappings (one partition) and the approval cards posted to Slack (beside each
//! promotion).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gantry_domain::Result;
use gantry_domain::chatops::{CardRepository, SlackCard, SlackUser, SlackUserRepository};
use gantry_domain::ids::PromotionId;
use tracing::instrument;

use crate::DynamoRepository;
use crate::codec::{from_items, sdk, to_item};
use crate::keys::{self, s, stamp};

#[async_trait]
impl SlackUserRepository for DynamoRepository {
    #[instrument(skip_all, fields(team = %user.team_id, user = %user.user_id), err(level = "info"))]
    async fn put_slack_user(&self, user: &SlackUser) -> Result<()> {
        let item = to_item(user, &keys::slack_user(&user.team_id, &user.user_id))?;
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(sdk)?;
        Ok(())
    }

    #[instrument(skip_all, fields(team = %team, user = %user), err(level = "info"))]
    async fn get_slack_user(&self, team: &str, user: &str) -> Result<Option<SlackUser>> {
        self.get(&keys::slack_user(team, user)).await
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn list_slack_users(&self) -> Result<Vec<SlackUser>> {
        from_items(self.partition(keys::SLACK_USERS, keys::SLACK_USER_PREFIX).await?)
    }

    #[instrument(skip_all, fields(team = %team, user = %user), err(level = "info"))]
    async fn delete_slack_user(&self, team: &str, user: &str) -> Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(keys::slack_user(team, user).primary()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(sdk)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}

#[async_trait]
impl CardRepository for DynamoRepository {
    #[instrument(skip_all, fields(promotion_id = %promotion), err(level = "info"))]
    async fn card(&self, promotion: PromotionId) -> Result<Option<SlackCard>> {
        self.get(&keys::slack_card(promotion)).await
    }

    #[instrument(skip_all, fields(promotion_id = %card.promotion_id), err(level = "info"))]
    async fn claim_card(&self, card: &SlackCard, stale_before: DateTime<Utc>) -> Result<bool> {
        let mut item = to_item(card, &keys::slack_card(card.promotion_id))?;
        // Stored fixed-width, so claims compare as strings.
        item.insert("claimedAt".into(), s(&stamp(card.claimed_at)));
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR (attribute_not_exists(ts) AND claimedAt < :stale)")
            .expression_attribute_values(":stale", s(&stamp(stale_before)))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(err) => Err(sdk(err)),
        }
    }

    #[instrument(skip_all, fields(promotion_id = %promotion), err(level = "info"))]
    async fn set_card_posted(&self, promotion: PromotionId, channel: &str, ts: &str) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::slack_card(promotion).primary()))
            .update_expression("SET ts = :ts, channel = :channel")
            .expression_attribute_values(":ts", s(ts))
            .expression_attribute_values(":channel", s(channel))
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }
}
