//! Gantry's DynamoDB store: one table, keys from [`keys`], conditional writes everywhere
//! uniqueness or order matters, and no Scan anywhere.

pub mod accounts;
mod budget;
pub mod builds;
pub mod codec;
pub mod deployments;
pub mod evidence;
pub mod integrations;
pub mod keys;
pub mod promotions;
pub mod table;
pub mod targets;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, KeysAndAttributes, Put, Select, TransactWriteItem,
    WriteRequest,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gantry_domain::model::{
    Component, DeployedComponent, Environment, Release, ReleaseEnvironmentRecord, ReleaseStatus, VersionMap,
};
use gantry_domain::ports::{Page, PageRequest, ReleaseFilter, Repository};
use gantry_domain::values::{Channel, ComponentId, Digest, EnvironmentId, ReleaseId};
use gantry_domain::{DomainError, Result};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use codec::{Item, cancelled_conditions, from_item, from_items, sdk, to_item, update_all};
use keys::{GSI1, GSI1PK, GSI1SK, GSI2, GSI2PK, GSI2SK, ItemKeys, PK, SK, s};

/// DynamoDB allows at most this many keys in one BatchGetItem.
const BATCH_GET_MAX: usize = 100;
/// And at most this many requests in one BatchWriteItem.
const BATCH_WRITE_MAX: usize = 25;
/// How often unprocessed batch items are retried before giving up.
const BATCH_RETRIES: u32 = 5;

/// The [`Repository`] on one DynamoDB table.
#[derive(Clone)]
pub struct DynamoRepository {
    client: Client,
    table: String,
}

/// Links a release to a component it uses (see [`keys::release_member`]).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Membership {
    release_id: ReleaseId,
    component_id: ComponentId,
    status: ReleaseStatus,
}

/// A transaction whose items each say what it means when their condition fails.
struct Tx {
    items: Vec<TransactWriteItem>,
    on_fail: Vec<DomainError>,
}

impl Tx {
    fn new() -> Self {
        Self { items: Vec::new(), on_fail: Vec::new() }
    }

    fn push(&mut self, item: TransactWriteItem, on_fail: DomainError) {
        self.items.push(item);
        self.on_fail.push(on_fail);
    }
}

fn built<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(DomainError::internal)
}

impl DynamoRepository {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client: budget::charging(client), table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    // ----- building blocks -----

    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem> {
        let put = built(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .set_condition_expression(condition.map(str::to_owned))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn put_new(&self, item: Item) -> Result<TransactWriteItem> {
        self.put(item, Some("attribute_not_exists(PK)"))
    }

    fn guard(&self, keys: &ItemKeys) -> Result<TransactWriteItem> {
        self.put_new(keys.all())
    }

    fn delete(
        &self,
        keys: &ItemKeys,
        condition: Option<(&str, Vec<(&'static str, AttributeValue)>)>,
    ) -> Result<TransactWriteItem> {
        let mut b = Delete::builder().table_name(&self.table).set_key(Some(keys.primary()));
        if let Some((expr, values)) = condition {
            b = b.condition_expression(expr);
            if !values.is_empty() {
                b = b.set_expression_attribute_values(Some(
                    values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                ));
            }
        }
        Ok(TransactWriteItem::builder().delete(built(b.build())?).build())
    }

    fn exists(&self, keys: &ItemKeys) -> Result<TransactWriteItem> {
        let check = built(
            ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(keys.primary()))
                .condition_expression("attribute_exists(PK)")
                .build(),
        )?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    fn update_revision<T: Serialize>(
        &self,
        keys: &ItemKeys,
        after: &T,
        before_revision: u64,
    ) -> Result<TransactWriteItem> {
        let update = update_all(
            &self.table,
            keys,
            to_item(after, keys)?,
            "revision = :rev",
            [(":rev", AttributeValue::N(before_revision.to_string()))],
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Runs a transaction; a failed condition becomes the error its item was pushed with.
    async fn transact(&self, tx: Tx) -> Result<()> {
        match self.client.transact_write_items().set_transact_items(Some(tx.items)).send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                let failed = cancelled_conditions(err)?;
                Err(tx.on_fail[failed[0]].clone())
            }
        }
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, keys: &ItemKeys) -> Result<Option<T>> {
        let out =
            self.client.get_item().table_name(&self.table).set_key(Some(keys.primary())).send().await.map_err(sdk)?;
        out.item.map(from_item).transpose()
    }

    fn query(&self) -> QueryFluentBuilder {
        self.client.query().table_name(&self.table)
    }

    /// Follows every page of a query.
    async fn query_all(&self, query: QueryFluentBuilder) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = query.clone().set_exclusive_start_key(start).send().await.map_err(sdk)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Items under one partition whose sort key starts with `prefix`.
    async fn partition(&self, pk: &str, prefix: &str) -> Result<Vec<Item>> {
        self.query_all(
            self.query()
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":prefix", s(prefix)),
        )
        .await
    }

    /// BatchGetItem in chunks, retrying unprocessed keys. Missing items are left out.
    async fn batch_get(&self, keys: Vec<ItemKeys>) -> Result<Vec<Item>> {
        let mut items = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut pending = built(
                KeysAndAttributes::builder().set_keys(Some(chunk.iter().map(ItemKeys::primary).collect())).build(),
            )?;
            for attempt in 0.. {
                let out = self.client.batch_get_item().request_items(&self.table, pending).send().await.map_err(sdk)?;
                if let Some(mut found) = out.responses {
                    items.extend(found.remove(&self.table).unwrap_or_default());
                }
                match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                    Some(rest) if !rest.keys().is_empty() => {
                        if attempt >= BATCH_RETRIES {
                            return Err(DomainError::internal("BatchGetItem left keys unprocessed after retries"));
                        }
                        backoff(attempt).await;
                        pending = rest;
                    }
                    _ => break,
                }
            }
        }
        Ok(items)
    }

    /// BatchWriteItem deletes in chunks, retrying unprocessed requests.
    async fn batch_delete(&self, keys: Vec<HashMap<String, AttributeValue>>) -> Result<()> {
        for chunk in keys.chunks(BATCH_WRITE_MAX) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|k| {
                    built(DeleteRequest::builder().set_key(Some(k.clone())).build())
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                })
                .collect::<Result<_>>()?;
            for attempt in 0.. {
                let out =
                    self.client.batch_write_item().request_items(&self.table, pending).send().await.map_err(sdk)?;
                match out.unprocessed_items.and_then(|mut u| u.remove(&self.table)) {
                    Some(rest) if !rest.is_empty() => {
                        if attempt >= BATCH_RETRIES {
                            return Err(DomainError::internal("BatchWriteItem left items unprocessed after retries"));
                        }
                        backoff(attempt).await;
                        pending = rest;
                    }
                    _ => break,
                }
            }
        }
        Ok(())
    }

    fn primary_keys(items: &[Item]) -> Vec<HashMap<String, AttributeValue>> {
        items
            .iter()
            .map(|item| {
                item.iter().filter(|(k, _)| *k == PK || *k == SK).map(|(k, v)| (k.clone(), v.clone())).collect()
            })
            .collect()
    }
}

/// Backs off 20 ms, 40 ms, 80 ms ... between retries of unprocessed batch items.
async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(20u64 << attempt.min(6))).await;
}

pub(crate) fn encode_cursor(sort_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(sort_key)
}

/// A cursor back into the sort key it came from, and the release id inside it.
pub(crate) fn decode_cursor(cursor: &str) -> Result<(String, ReleaseId)> {
    let invalid = || DomainError::validation(format!("cursor {cursor:?} is not valid"));
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let sort_key = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (_, id) = sort_key.rsplit_once('#').ok_or_else(invalid)?;
    let id = ReleaseId::parse(id).map_err(|_| invalid())?;
    Ok((sort_key, id))
}

pub(crate) fn string_attr(item: &Item, name: &str) -> Result<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(DomainError::internal(format!("item lacks string attribute {name}"))),
    }
}

#[async_trait]
impl Repository for DynamoRepository {
    // ----- components -----

    #[instrument(skip_all, fields(component_id = %component.id), err)]
    async fn create_component(&self, component: &Component) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.put_new(to_item(
                component,
                &keys::component(component.id, component.name.as_str(), component.image_repository.as_str()),
            )?)?,
            DomainError::conflict("component id exists"),
        );
        tx.push(
            self.guard(&keys::unique_name("COMPONENT", component.name.as_str()))?,
            DomainError::conflict(format!("a component named {} exists", component.name)),
        );
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(component_id = %id), err)]
    async fn get_component(&self, id: ComponentId) -> Result<Option<Component>> {
        self.get(&ItemKeys::new(keys::component_pk(id), "COMPONENT")).await
    }

    #[instrument(skip_all, fields(count = ids.len()), err)]
    async fn get_components(&self, ids: &[ComponentId]) -> Result<Vec<Component>> {
        let unique: HashSet<ComponentId> = ids.iter().copied().collect();
        let keys = unique.into_iter().map(|id| ItemKeys::new(keys::component_pk(id), "COMPONENT")).collect();
        from_items(self.batch_get(keys).await?)
    }

    #[instrument(skip_all, err)]
    async fn list_components(&self) -> Result<Vec<Component>> {
        let items = self
            .query_all(
                self.query()
                    .index_name(GSI1)
                    .key_condition_expression("GSI1PK = :pk")
                    .expression_attribute_values(":pk", s(keys::COMPONENTS)),
            )
            .await?;
        from_items(items)
    }

    #[instrument(skip_all, fields(component_id = %after.id), err)]
    async fn update_component(&self, before: &Component, after: &Component) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.update_revision(
                &keys::component(after.id, after.name.as_str(), after.image_repository.as_str()),
                after,
                before.revision,
            )?,
            DomainError::conflict(format!("component {} changed meanwhile; read it again and retry", before.id)),
        );
        if before.name != after.name {
            tx.push(
                self.delete(&keys::unique_name("COMPONENT", before.name.as_str()), None)?,
                DomainError::internal("name guard delete"),
            );
            tx.push(
                self.guard(&keys::unique_name("COMPONENT", after.name.as_str()))?,
                DomainError::conflict(format!("a component named {} exists", after.name)),
            );
        }
        self.transact(tx).await
    }

    #[instrument(skip_all, err)]
    async fn components_by_image(&self, image_repository: &str) -> Result<Vec<Component>> {
        let query = self
            .query()
            .index_name(GSI2)
            .key_condition_expression("GSI2PK = :pk")
            .expression_attribute_values(":pk", s(&keys::image_pk(image_repository)));
        from_items(self.query_all(query).await?)
    }

    #[instrument(skip_all, fields(component_id = %component.id), err)]
    async fn delete_component(&self, component: &Component) -> Result<()> {
        let key = keys::component(component.id, component.name.as_str(), component.image_repository.as_str());
        let mut tx = Tx::new();
        tx.push(
            self.delete(
                &key,
                Some((
                    "revision = :rev AND (attribute_not_exists(releaseCount) OR releaseCount = :zero)",
                    vec![
                        (":rev", AttributeValue::N(component.revision.to_string())),
                        (":zero", AttributeValue::N("0".into())),
                    ],
                )),
            )?,
            DomainError::conflict(format!("component {} is used by a release or changed meanwhile", component.name)),
        );
        tx.push(
            self.delete(&keys::unique_name("COMPONENT", component.name.as_str()), None)?,
            DomainError::internal("name guard delete"),
        );
        if let Err(err) = self.transact(tx).await {
            // Say which it was: a release still holding the component is the common case.
            let in_use = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key.primary()))
                .send()
                .await
                .ok()
                .and_then(|o| o.item)
                .and_then(|i| i.get("releaseCount").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<u64>().ok()))
                .unwrap_or(0);
            return Err(if in_use > 0 {
                DomainError::conflict(format!(
                    "component {} is used by {in_use} release(s); delete or deprecate them first",
                    component.name
                ))
            } else {
                err
            });
        }
        // The component is gone; sweep its version maps and guards.
        let leftovers = self
            .query_all(
                self.query()
                    .key_condition_expression("PK = :pk")
                    .expression_attribute_values(":pk", s(&keys::component_pk(component.id))),
            )
            .await?;
        self.batch_delete(Self::primary_keys(&leftovers)).await
    }

    // ----- version maps -----

    #[instrument(skip_all, fields(component_id = %version.component_id, version_map_id = %version.id), err)]
    async fn create_version_map(&self, version: &VersionMap) -> Result<()> {
        let key =
            keys::version_map(version.component_id, version.id, &version.semver, &version.digest, &version.channel);
        let mut tx = Tx::new();
        tx.push(
            self.exists(&ItemKeys::new(keys::component_pk(version.component_id), "COMPONENT"))?,
            DomainError::not_found("component", version.component_id),
        );
        tx.push(
            self.guard(&keys::tag_digest(version.component_id, &version.tag, &version.digest))?,
            DomainError::conflict(format!("tag {} is already mapped to {}", version.tag, version.digest)),
        );
        tx.push(self.put_new(to_item(version, &key)?)?, DomainError::conflict("version map id exists"));
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(component_id = %component, limit), err)]
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

    #[instrument(skip_all, fields(component_id = %component), err)]
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

    #[instrument(skip_all, fields(version_map_id = %version.id), err)]
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

    #[instrument(skip_all, fields(component_id = %component), err)]
    async fn versions_with_semver(&self, component: ComponentId, version: &semver::Version) -> Result<Vec<VersionMap>> {
        from_items(self.partition(&keys::component_pk(component), &keys::semver_prefix(version)).await?)
    }

    #[instrument(skip_all, fields(component_id = %component), err)]
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

    // ----- releases -----

    #[instrument(skip_all, fields(release_id = %release.id), err)]
    async fn create_release(&self, release: &Release) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.put_new(to_item(release, &keys::release(release.id, release.status, release.created_at))?)?,
            DomainError::conflict("release id exists"),
        );
        tx.push(
            self.guard(&keys::unique_name("RELEASE", release.name.as_str()))?,
            DomainError::conflict(format!("a release named {} exists", release.name)),
        );
        for c in &release.components {
            let membership =
                Membership { release_id: release.id, component_id: c.component_id, status: release.status };
            tx.push(
                self.put(
                    to_item(&membership, &keys::release_member(release.id, c.component_id, release.created_at))?,
                    None,
                )?,
                DomainError::internal("membership put"),
            );
            let update = built(
                aws_sdk_dynamodb::types::Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(ItemKeys::new(keys::component_pk(c.component_id), "COMPONENT").primary()))
                    .update_expression("SET releaseCount = if_not_exists(releaseCount, :zero) + :one")
                    .condition_expression("attribute_exists(PK)")
                    .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .build(),
            )?;
            tx.push(
                TransactWriteItem::builder().update(update).build(),
                DomainError::not_found("component", c.component_id),
            );
        }
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(release_id = %id), err)]
    async fn get_release(&self, id: ReleaseId) -> Result<Option<Release>> {
        self.get(&ItemKeys::new(keys::release_pk(id), "RELEASE")).await
    }

    #[instrument(skip_all, fields(first = page.first), err)]
    async fn list_releases(&self, filter: ReleaseFilter, page: &PageRequest) -> Result<Page<Release>> {
        let after = page.after.as_deref().map(decode_cursor).transpose()?;
        let listing = Listing::for_filter(filter);
        let want = page.first + 1;
        let mut rows: Vec<Item> = Vec::new();
        let mut start = after.map(|(sort, id)| listing.start_key(sort, id));
        loop {
            let limit = if listing.status_filter.is_some() { 100 } else { want - rows.len() };
            let out = listing
                .query(self.query(), false)
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk)?;
            rows.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() && rows.len() < want => start = Some(key),
                _ => break,
            }
        }
        let has_next_page = rows.len() > page.first;
        rows.truncate(page.first);
        let cursors: Vec<String> =
            rows.iter().map(|r| string_attr(r, listing.sort_attr).map(|k| encode_cursor(&k))).collect::<Result<_>>()?;
        let releases: Vec<Release> = if listing.members {
            let ids: Vec<ReleaseId> = from_items::<Membership>(rows)?.into_iter().map(|m| m.release_id).collect();
            let found: Vec<Release> = from_items(
                self.batch_get(ids.iter().map(|id| ItemKeys::new(keys::release_pk(*id), "RELEASE")).collect()).await?,
            )?;
            ids.iter()
                .map(|id| {
                    found
                        .iter()
                        .find(|r| r.id == *id)
                        .cloned()
                        .ok_or_else(|| DomainError::internal(format!("release {id} listed but missing")))
                })
                .collect::<Result<_>>()?
        } else {
            from_items(rows)?
        };
        Ok(Page { items: cursors.into_iter().zip(releases).collect(), has_next_page })
    }

    #[instrument(skip_all, err)]
    async fn count_releases(&self, filter: ReleaseFilter) -> Result<u64> {
        let listing = Listing::for_filter(filter);
        let mut total = 0u64;
        let mut start = None;
        loop {
            let out = listing.query(self.query(), true).set_exclusive_start_key(start).send().await.map_err(sdk)?;
            total += u64::try_from(out.count).unwrap_or(0);
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(total),
            }
        }
    }

    #[instrument(skip_all, fields(release_id = %after.id), err)]
    async fn update_release(&self, before: &Release, after: &Release) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.update_revision(&keys::release(after.id, after.status, after.created_at), after, before.revision)?,
            DomainError::conflict(format!("release {} changed meanwhile; read it again and retry", before.id)),
        );
        if before.status != after.status {
            for c in &after.components {
                let key = keys::release_member(after.id, c.component_id, after.created_at);
                let update = built(
                    aws_sdk_dynamodb::types::Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key.primary()))
                        .update_expression("SET #status = :status")
                        .expression_attribute_names("#status", "status")
                        .expression_attribute_values(":status", s(after.status.as_str()))
                        .build(),
                )?;
                tx.push(
                    TransactWriteItem::builder().update(update).build(),
                    DomainError::internal("membership update"),
                );
            }
        }
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(release_id = %release.id), err)]
    async fn delete_release(&self, release: &Release) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.delete(
                &keys::release(release.id, release.status, release.created_at),
                Some(("revision = :rev", vec![(":rev", AttributeValue::N(release.revision.to_string()))])),
            )?,
            DomainError::conflict(format!("release {} changed meanwhile; read it again and retry", release.id)),
        );
        tx.push(
            self.delete(&keys::unique_name("RELEASE", release.name.as_str()), None)?,
            DomainError::internal("name guard delete"),
        );
        for c in &release.components {
            tx.push(
                self.delete(&keys::release_member(release.id, c.component_id, release.created_at), None)?,
                DomainError::internal("membership delete"),
            );
            let update = built(
                aws_sdk_dynamodb::types::Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(ItemKeys::new(keys::component_pk(c.component_id), "COMPONENT").primary()))
                    .update_expression("SET releaseCount = releaseCount - :one")
                    .condition_expression("attribute_exists(PK)")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .build(),
            )?;
            tx.push(
                TransactWriteItem::builder().update(update).build(),
                DomainError::internal("component gone while in use"),
            );
        }
        self.transact(tx).await?;
        let leftovers = self.partition(&keys::release_pk(release.id), keys::ENVSTATE_PREFIX).await?;
        self.batch_delete(Self::primary_keys(&leftovers)).await
    }

    // ----- environments -----

    #[instrument(skip_all, fields(environment_id = %environment.id), err)]
    async fn create_environment(&self, environment: &Environment) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.put_new(to_item(environment, &keys::environment(environment.id, environment.order))?)?,
            DomainError::conflict("environment id exists"),
        );
        tx.push(
            self.guard(&keys::unique_name("ENVIRONMENT", environment.name.as_str()))?,
            DomainError::conflict(format!("an environment named {} exists", environment.name)),
        );
        tx.push(
            self.guard(&keys::unique_order(environment.order))?,
            DomainError::conflict(format!("another environment has order {}", environment.order)),
        );
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(environment_id = %id), err)]
    async fn get_environment(&self, id: EnvironmentId) -> Result<Option<Environment>> {
        self.get(&ItemKeys::new(keys::environment_pk(id), "ENVIRONMENT")).await
    }

    #[instrument(skip_all, err)]
    async fn list_environments(&self) -> Result<Vec<Environment>> {
        let items = self
            .query_all(
                self.query()
                    .index_name(GSI1)
                    .key_condition_expression("GSI1PK = :pk")
                    .expression_attribute_values(":pk", s(keys::ENVIRONMENTS)),
            )
            .await?;
        from_items(items)
    }

    #[instrument(skip_all, fields(environment_id = %after.id), err)]
    async fn update_environment(&self, before: &Environment, after: &Environment) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.update_revision(&keys::environment(after.id, after.order), after, before.revision)?,
            DomainError::conflict(format!("environment {} changed meanwhile; read it again and retry", before.id)),
        );
        if before.name != after.name {
            tx.push(
                self.delete(&keys::unique_name("ENVIRONMENT", before.name.as_str()), None)?,
                DomainError::internal("name guard delete"),
            );
            tx.push(
                self.guard(&keys::unique_name("ENVIRONMENT", after.name.as_str()))?,
                DomainError::conflict(format!("an environment named {} exists", after.name)),
            );
        }
        if before.order != after.order {
            tx.push(self.delete(&keys::unique_order(before.order), None)?, DomainError::internal("order guard delete"));
            tx.push(
                self.guard(&keys::unique_order(after.order))?,
                DomainError::conflict(format!("another environment has order {}", after.order)),
            );
        }
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(environment_id = %environment.id), err)]
    async fn delete_environment(&self, environment: &Environment) -> Result<()> {
        let deployed = self
            .query()
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(&keys::environment_pk(environment.id)))
            .expression_attribute_values(":prefix", s(keys::DEPLOYED_PREFIX))
            .limit(1)
            .send()
            .await
            .map_err(sdk)?;
        if deployed.count > 0 {
            return Err(DomainError::conflict(format!(
                "environment {} has deployments; it cannot be deleted",
                environment.name
            )));
        }
        if !self.partition(&keys::environment_pk(environment.id), keys::TARGET_PREFIX).await?.is_empty() {
            return Err(DomainError::conflict(format!(
                "environment {} has deployment targets; remove them first",
                environment.name
            )));
        }
        let mut tx = Tx::new();
        tx.push(
            self.delete(
                &keys::environment(environment.id, environment.order),
                Some(("revision = :rev", vec![(":rev", AttributeValue::N(environment.revision.to_string()))])),
            )?,
            DomainError::conflict(format!("environment {} changed meanwhile; read it again and retry", environment.id)),
        );
        tx.push(
            self.delete(&keys::unique_name("ENVIRONMENT", environment.name.as_str()), None)?,
            DomainError::internal("name guard delete"),
        );
        tx.push(
            self.delete(&keys::unique_order(environment.order), None)?,
            DomainError::internal("order guard delete"),
        );
        self.transact(tx).await
    }

    // ----- deployment records -----

    #[instrument(skip_all, fields(environment_id = %environment), err)]
    async fn deployed_components(&self, environment: EnvironmentId) -> Result<Vec<DeployedComponent>> {
        from_items(self.partition(&keys::environment_pk(environment), keys::DEPLOYED_PREFIX).await?)
    }

    #[instrument(skip_all, fields(release_id = %release), err)]
    async fn release_environment_records(&self, release: ReleaseId) -> Result<Vec<ReleaseEnvironmentRecord>> {
        from_items(self.partition(&keys::release_pk(release), keys::ENVSTATE_PREFIX).await?)
    }

    #[instrument(skip_all, fields(release_id = %record.release_id, environment_id = %record.environment_id), err)]
    async fn record_release_deployed(
        &self,
        record: &ReleaseEnvironmentRecord,
        components: &[DeployedComponent],
    ) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.exists(&ItemKeys::new(keys::environment_pk(record.environment_id), "ENVIRONMENT"))?,
            DomainError::not_found("environment", record.environment_id),
        );
        tx.push(
            self.put(to_item(record, &keys::release_environment(record.release_id, record.environment_id))?, None)?,
            DomainError::internal("record put"),
        );
        for c in components {
            tx.push(
                self.put(to_item(c, &keys::deployed_component(c.environment_id, c.component_id))?, None)?,
                DomainError::internal("deployed put"),
            );
        }
        self.transact(tx).await
    }
}

/// Which index and partition a release listing reads.
struct Listing {
    index: &'static str,
    pk_attr: &'static str,
    sort_attr: &'static str,
    pk: String,
    /// Rows are membership links rather than releases.
    members: bool,
    member_of: Option<ComponentId>,
    status_filter: Option<ReleaseStatus>,
}

impl Listing {
    fn for_filter(filter: ReleaseFilter) -> Self {
        match (filter.component_id, filter.status) {
            (Some(component), status) => Self {
                index: GSI1,
                pk_attr: GSI1PK,
                sort_attr: GSI1SK,
                pk: keys::releases_of_pk(component),
                members: true,
                member_of: Some(component),
                status_filter: status,
            },
            (None, Some(status)) => Self {
                index: GSI2,
                pk_attr: GSI2PK,
                sort_attr: GSI2SK,
                pk: keys::release_status_pk(status),
                members: false,
                member_of: None,
                status_filter: None,
            },
            (None, None) => Self {
                index: GSI1,
                pk_attr: GSI1PK,
                sort_attr: GSI1SK,
                pk: keys::RELEASES.to_owned(),
                members: false,
                member_of: None,
                status_filter: None,
            },
        }
    }

    fn query(&self, base: QueryFluentBuilder, count: bool) -> QueryFluentBuilder {
        let mut q = base
            .index_name(self.index)
            .key_condition_expression(format!("{} = :pk", self.pk_attr))
            .expression_attribute_values(":pk", s(&self.pk))
            .scan_index_forward(false);
        if let Some(status) = self.status_filter {
            q = q
                .filter_expression("#status = :status")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", s(status.as_str()));
        }
        if count {
            q = q.select(Select::Count);
        }
        q
    }

    /// The ExclusiveStartKey that resumes after the row with this sort key.
    fn start_key(&self, sort: String, release: ReleaseId) -> HashMap<String, AttributeValue> {
        let sk = match self.member_of {
            Some(component) => format!("MEMBER#{component}"),
            None => "RELEASE".to_owned(),
        };
        HashMap::from([
            (PK.to_owned(), s(&keys::release_pk(release))),
            (SK.to_owned(), s(&sk)),
            (self.pk_attr.to_owned(), s(&self.pk)),
            (self.sort_attr.to_owned(), AttributeValue::S(sort)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = ReleaseId::new();
        let key = keys::created_sort_key(chrono::Utc::now(), id);
        let (sort, back) = decode_cursor(&encode_cursor(&key)).unwrap();
        assert_eq!((sort, back), (key, id));
        for bad in ["", "!!", &encode_cursor("no-hash"), &encode_cursor("2026#not-a-uuid")] {
            assert_eq!(decode_cursor(bad).unwrap_err().code(), "BAD_USER_INPUT", "{bad}");
        }
    }
}
