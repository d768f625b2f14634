//! Version maps: a component's tags, by semver, digest and channel.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use gantry_domain::model::{RecentVersions, VersionMap};
use gantry_domain::ports::VersionRepository;
use gantry_domain::values::{Channel, ComponentId, Digest};
use gantry_domain::{DomainError, Result};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::blocks::backoff;
use crate::codec::{from_items, sdk, to_item};
use crate::keys::{GSI1, GSI2, s};

use crate::keys;
use crate::{DynamoRepository, Tx, built};

/// How often a change to a component's recent versions is tried against other writers.
const RECENT_ATTEMPTS: u32 = 8;
const RECENT_CHANGED: &str = "the component's recent versions changed meanwhile";

/// The stored form of [`RecentVersions`], with the component it belongs to.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RecentItem {
    component_id: ComponentId,
    versions: Vec<VersionMap>,
    complete: bool,
    revision: u64,
}

impl RecentItem {
    pub(crate) fn new(component_id: ComponentId, recent: RecentVersions) -> Self {
        let RecentVersions { versions, complete, revision } = recent;
        Self { component_id, versions, complete, revision }
    }

    fn recent(self) -> RecentVersions {
        RecentVersions { versions: self.versions, complete: self.complete, revision: self.revision }
    }
}

/// Version maps in the order of their sort keys.
fn rank(version: &VersionMap) -> (String, String) {
    keys::version_rank(&version.semver, version.id)
}

impl DynamoRepository {
    /// Runs the transaction `build` makes together with `change` to the component's recent
    /// versions, written over the revision it read; when another writer came first, reads
    /// again and retries. A component older than the list has none, and its versions are
    /// read by query.
    async fn with_recent(
        &self,
        component: ComponentId,
        build: impl Fn() -> Result<Tx>,
        change: impl Fn(&mut RecentVersions),
    ) -> Result<()> {
        let key = keys::recent_versions(component);
        for attempt in 0..RECENT_ATTEMPTS {
            let mut tx = build()?;
            if let Some(stored) = self.get::<RecentItem>(&key).await? {
                let before = stored.recent();
                let mut after = before.clone();
                change(&mut after);
                if after != before {
                    after.revision += 1;
                    let item = to_item(&RecentItem::new(component, after), &key)?;
                    tx.push(self.put_revised(item, Some(before.revision))?, DomainError::conflict(RECENT_CHANGED));
                }
            }
            match self.transact(tx).await {
                Err(DomainError::Conflict(reason)) if reason == RECENT_CHANGED => backoff(attempt).await,
                done => return done,
            }
        }
        Err(DomainError::unavailable("this component's versions are changing fast; try again"))
    }
}

#[async_trait]
impl VersionRepository for DynamoRepository {
    #[instrument(skip_all, fields(component_id = %version.component_id, version_map_id = %version.id), err(level = "info"))]
    async fn create_version_map(&self, version: &VersionMap) -> Result<()> {
        let key =
            keys::version_map(version.component_id, version.id, &version.semver, &version.digest, &version.channel);
        let build = || {
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
            Ok(tx)
        };
        self.with_recent(version.component_id, build, |recent| recent.insert(version.clone(), rank)).await
    }

    #[instrument(skip_all, fields(count = components.len()), err(level = "info"))]
    async fn recent_versions(&self, components: &[ComponentId]) -> Result<Vec<(ComponentId, RecentVersions)>> {
        let keys = components.iter().copied().map(keys::recent_versions).collect();
        let items: Vec<RecentItem> = from_items(self.batch_get(keys).await?)?;
        Ok(items.into_iter().map(|item| (item.component_id, item.recent())).collect())
    }

    #[instrument(skip_all, fields(component_id = %component, limit = limit), err(level = "info"))]
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

    #[instrument(skip_all, fields(version_map_id = %version.id, removed = removed), err(level = "info"))]
    async fn set_version_removed(&self, version: &VersionMap, removed: bool) -> Result<()> {
        let key =
            keys::version_map(version.component_id, version.id, &version.semver, &version.digest, &version.channel);
        let build = || {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key.primary()))
                .update_expression("SET removed = :removed")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":removed", AttributeValue::Bool(removed))
                .build();
            let mut tx = Tx::new();
            tx.push(
                TransactWriteItem::builder().update(built(update)?).build(),
                DomainError::not_found("version map", version.id),
            );
            Ok(tx)
        };
        let live = VersionMap { removed: false, ..version.clone() };
        self.with_recent(version.component_id, build, |recent| {
            if removed {
                recent.remove(version.id);
            } else {
                recent.insert(live.clone(), rank);
            }
        })
        .await
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
