//! Version maps: a component's tags, by semver, digest and channel.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use gantry_domain::model::VersionMap;
use gantry_domain::ports::VersionRepository;
use gantry_domain::values::{Channel, ComponentId, Digest};
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::codec::{from_items, sdk, to_item};
use crate::keys::{GSI1, GSI2, s};

use crate::keys;
use crate::{DynamoRepository, Tx};

#[async_trait]
impl VersionRepository for DynamoRepository {
    #[instrument(skip_all, fields(component_id = %version.component_id, version_map_id = %version.id), err(level = "info"))]
    async fn create_version_map(&self, version: &VersionMap) -> Result<()> {
        let key =
            keys::version_map(version.component_id, version.id, &version.semver, &version.digest, &version.channel);
        let mut tx = Tx::new();
        tx.push(
            self.exists(&keys::component_key(version.component_id))?,
            DomainError::not_found("component", version.component_id),
        );
        tx.push(
            self.guard(&keys::tag_digest(version.component_id, &version.tag, &version.digest))?,
            DomainError::conflict(format!("tag {} is already mapped to {}", version.tag, version.digest)),
        );
        tx.push(self.put_new(to_item(version, &key)?)?, DomainError::conflict("version map id exists"));
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(component_id = %component, limit), err(level = "info"))]
    async fn list_versions(
        &self,
        component: ComponentId,
        channel: Option<&Channel>,
        limit: usize,
    ) -> Result<Vec<VersionMap>> {
        let query = match channel {
            Some(channel) => self
                .query()
                .index_name(GSI2)
                .key_condition_expression("GSI2PK = :pk")
                .expression_attribute_values(":pk", s(&keys::channel_pk(component, channel))),
            None => self
                .query()
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":pk", s(&keys::component_pk(component)))
                .expression_attribute_values(":prefix", s(keys::VERSION_PREFIX)),
        }
        .filter_expression("attribute_not_exists(removed) OR removed = :false")
        .expression_attribute_values(":false", AttributeValue::Bool(false))
        .scan_index_forward(false);
        // The filter applies after Limit, so page until enough versions survive it.
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = i32::try_from(limit - items.len()).unwrap_or(i32::MAX).max(1);
            let out = query.clone().limit(page).set_exclusive_start_key(start).send().await.map_err(sdk)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() && items.len() < limit => start = Some(key),
                _ => break,
            }
        }
        items.truncate(limit);
        from_items(items)
    }

    #[instrument(skip_all, fields(component_id = %component), err(level = "info"))]
    async fn versions_with_tag(&self, component: ComponentId, tag: &str) -> Result<Vec<VersionMap>> {
        let query = self
            .query()
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .filter_expression("tag = :tag")
            .expression_attribute_values(":pk", s(&keys::component_pk(component)))
            .expression_attribute_values(":prefix", s(keys::VERSION_PREFIX))
            .expression_attribute_values(":tag", s(tag));
        from_items(self.query_all(query).await?)
    }

    #[instrument(skip_all, fields(version_map_id = %version.id), err(level = "info"))]
    async fn mark_version_removed(&self, version: &VersionMap) -> Result<()> {
        let key =
            keys::version_map(version.component_id, version.id, &version.semver, &version.digest, &version.channel);
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.primary()))
            .update_expression("SET removed = :true")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }

    #[instrument(skip_all, fields(component_id = %component), err(level = "info"))]
    async fn versions_with_semver(&self, component: ComponentId, version: &semver::Version) -> Result<Vec<VersionMap>> {
        from_items(self.partition(&keys::component_pk(component), &keys::semver_prefix(version)).await?)
    }

    #[instrument(skip_all, fields(component_id = %component), err(level = "info"))]
    async fn versions_with_digest(&self, component: ComponentId, digest: &Digest) -> Result<Vec<VersionMap>> {
        let items = self
            .query_all(
                self.query()
                    .index_name(GSI1)
                    .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :prefix)")
                    .expression_attribute_values(":pk", s(&keys::digest_pk(digest)))
                    .expression_attribute_values(":prefix", s(&keys::digest_component_prefix(component))),
            )
            .await?;
        from_items(items)
    }
}
