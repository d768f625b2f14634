//! The building blocks every aggregate's module writes with: conditional puts, guards,
//! transactions, queries and batches.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, KeysAndAttributes, Put, PutRequest, TransactWriteItem,
    WriteRequest,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gantry_domain::values::ReleaseId;
use gantry_domain::{DomainError, Result};
use serde::{Deserialize, Serialize};

use crate::codec::{Item, cancelled_conditions, from_item, sdk, to_item, update_all_appending};
use crate::keys::{ItemKeys, PK, SK, s, stamp};

use crate::{DynamoRepository, Tx, budget, built};

/// DynamoDB allows at most this many keys in one BatchGetItem.
const BATCH_GET_MAX: usize = 100;
/// And at most this many requests in one BatchWriteItem.
const BATCH_WRITE_MAX: usize = 25;
/// How often unprocessed batch items are retried before giving up.
const BATCH_RETRIES: u32 = 5;

/// A condition an update is made under: its expression, the attribute names it aliases and
/// its values.
pub(crate) type Guard<'a> = (&'a str, &'a [(&'a str, &'a str)], Vec<(&'a str, AttributeValue)>);

/// The attributes a read asks for: a `ProjectionExpression` of `#`-aliases and what each
/// alias names (aliases, because `name` and many others are reserved words).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Projection {
    pub expression: &'static str,
    pub names: &'static [(&'static str, &'static str)],
}

impl DynamoRepository {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client: budget::charging(client), table: table.into() }
    }

    // ----- building blocks -----

    pub(crate) fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem> {
        let put = built(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .set_condition_expression(condition.map(str::to_owned))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Puts `item` unless an item with its key exists; `false` when one does.
    pub(crate) async fn put_if_absent(&self, item: Item) -> Result<bool> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(err) => Err(crate::codec::sdk(err)),
        }
    }

    pub(crate) fn put_new(&self, item: Item) -> Result<TransactWriteItem> {
        self.put(item, Some("attribute_not_exists(PK)"))
    }

    /// Puts an item over its stored revision `before` (or, with `None`, where none is).
    pub(crate) fn put_revised(&self, item: Item, before: Option<u64>) -> Result<TransactWriteItem> {
        let Some(before) = before else { return self.put_new(item) };
        let put = built(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("revision = :rev")
                .expression_attribute_values(":rev", AttributeValue::N(before.to_string()))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    pub(crate) fn guard(&self, keys: &ItemKeys) -> Result<TransactWriteItem> {
        self.put_new(keys.all())
    }

    pub(crate) fn delete(
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

    pub(crate) fn exists(&self, keys: &ItemKeys) -> Result<TransactWriteItem> {
        self.check(keys, "attribute_exists(PK)")
    }

    /// A condition on another item, checked in the transaction.
    pub(crate) fn check(&self, keys: &ItemKeys, condition: &str) -> Result<TransactWriteItem> {
        let check = built(
            ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(keys.primary()))
                .condition_expression(condition)
                .build(),
        )?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    pub(crate) fn update_revision<T: Serialize>(
        &self,
        keys: &ItemKeys,
        after: &T,
        before_revision: u64,
    ) -> Result<TransactWriteItem> {
        self.update_revision_appending(keys, after, before_revision, ("", Vec::new()))
    }

    /// As [`Self::update_revision`], also appending `appended` to the item's list `list`.
    pub(crate) fn update_revision_appending<T: Serialize>(
        &self,
        keys: &ItemKeys,
        after: &T,
        before_revision: u64,
        appended: (&str, Vec<AttributeValue>),
    ) -> Result<TransactWriteItem> {
        let update = update_all_appending(
            &self.table,
            keys,
            to_item(after, keys)?,
            appended,
            "revision = :rev",
            [(":rev", AttributeValue::N(before_revision.to_string()))],
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Sets `sweptAt` to `now` on the item under `keys` if `guard` holds (with its names and
    /// values) and no sweep since `before` set it: a job a sweep queues again, once in its
    /// grace.
    pub(crate) async fn mark_swept(
        &self,
        keys: &ItemKeys,
        (guard, names, values): Guard<'_>,
        now: chrono::DateTime<chrono::Utc>,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys.primary()))
            .update_expression("SET sweptAt = :now")
            .set_expression_attribute_names(
                (!names.is_empty()).then(|| names.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
            )
            .condition_expression(format!("{guard} AND (attribute_not_exists(sweptAt) OR sweptAt < :before)"))
            .set_expression_attribute_values(Some(
                values
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .chain([(":now".to_owned(), s(&stamp(now))), (":before".to_owned(), s(&stamp(before)))])
                    .collect(),
            ))
            .send()
            .await;
        Ok(crate::deployments::unless_condition_failed(out)?.is_some())
    }

    /// Runs a transaction; a failed condition becomes the error its item was pushed with.
    pub(crate) async fn transact(&self, tx: Tx) -> Result<()> {
        match self.try_transact(tx.items).await?.first() {
            None => Ok(()),
            Some(&failed) => Err(tx.on_fail[failed].clone()),
        }
    }

    /// Runs a transaction: the positions of the items whose condition failed, none when it
    /// went through.
    pub(crate) async fn try_transact(&self, items: Vec<TransactWriteItem>) -> Result<Vec<usize>> {
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(Vec::new()),
            Err(err) => cancelled_conditions(err),
        }
    }

    pub(crate) async fn get<T: for<'de> Deserialize<'de>>(&self, keys: &ItemKeys) -> Result<Option<T>> {
        let out =
            self.client.get_item().table_name(&self.table).set_key(Some(keys.primary())).send().await.map_err(sdk)?;
        out.item.map(from_item).transpose()
    }

    pub(crate) fn query(&self) -> QueryFluentBuilder {
        self.client.query().table_name(&self.table)
    }

    /// Follows every page of a query.
    pub(crate) async fn query_all(&self, query: QueryFluentBuilder) -> Result<Vec<Item>> {
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
    pub(crate) async fn partition(&self, pk: &str, prefix: &str) -> Result<Vec<Item>> {
        self.query_all(
            self.query()
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":prefix", s(prefix)),
        )
        .await
    }

    /// BatchGetItem in chunks of 100, all at once, retrying unprocessed keys. Missing items
    /// are left out.
    pub(crate) async fn batch_get(&self, keys: Vec<ItemKeys>) -> Result<Vec<Item>> {
        self.batch_get_projected(keys, None).await
    }

    /// [`batch_get`](Self::batch_get) of only the attributes `projection` names: a
    /// `ProjectionExpression` of `#`-names, each mapped to the attribute it stands for.
    pub(crate) async fn batch_get_projected(
        &self,
        mut keys: Vec<ItemKeys>,
        projection: Option<Projection>,
    ) -> Result<Vec<Item>> {
        // BatchGetItem refuses a request that names a key twice: each is asked for once.
        keys.sort_by(|a, b| (&a.pk, &a.sk).cmp(&(&b.pk, &b.sk)));
        keys.dedup_by(|a, b| a.pk == b.pk && a.sk == b.sk);
        let chunks = keys.chunks(BATCH_GET_MAX).map(|chunk| self.batch_get_chunk(chunk, projection));
        Ok(futures::future::try_join_all(chunks).await?.into_iter().flatten().collect())
    }

    /// One BatchGetItem of up to 100 keys, retrying what it leaves unprocessed.
    async fn batch_get_chunk(&self, chunk: &[ItemKeys], projection: Option<Projection>) -> Result<Vec<Item>> {
        let mut items = Vec::with_capacity(chunk.len());
        let mut request = KeysAndAttributes::builder().set_keys(Some(chunk.iter().map(ItemKeys::primary).collect()));
        if let Some(projection) = projection {
            request = request.projection_expression(projection.expression);
            for (alias, attribute) in projection.names {
                request = request.expression_attribute_names(*alias, *attribute);
            }
        }
        let mut pending = built(request.build())?;
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
        Ok(items)
    }

    /// BatchWriteItem deletes in chunks, retrying unprocessed requests.
    pub(crate) async fn batch_delete(&self, keys: Vec<HashMap<String, AttributeValue>>) -> Result<()> {
        let requests = keys
            .into_iter()
            .map(|k| {
                built(DeleteRequest::builder().set_key(Some(k)).build())
                    .map(|d| WriteRequest::builder().delete_request(d).build())
            })
            .collect::<Result<Vec<_>>>()?;
        self.batch_write(requests).await
    }

    /// BatchWriteItem puts in chunks (unconditional, so only for writes that may repeat).
    pub(crate) async fn batch_put(&self, items: Vec<Item>) -> Result<()> {
        let requests = items
            .into_iter()
            .map(|item| {
                built(PutRequest::builder().set_item(Some(item)).build())
                    .map(|p| WriteRequest::builder().put_request(p).build())
            })
            .collect::<Result<Vec<_>>>()?;
        self.batch_write(requests).await
    }

    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<()> {
        for chunk in requests.chunks(BATCH_WRITE_MAX) {
            let mut pending = chunk.to_vec();
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

    pub(crate) fn primary_keys(items: &[Item]) -> Vec<HashMap<String, AttributeValue>> {
        items
            .iter()
            .map(|item| {
                item.iter().filter(|(k, _)| *k == PK || *k == SK).map(|(k, v)| (k.clone(), v.clone())).collect()
            })
            .collect()
    }
}

/// Backs off 20 ms, 40 ms, 80 ms ... between retries of unprocessed batch items.
/// A key to resume a query after (`ExclusiveStartKey`).
pub(crate) type StartKey = HashMap<String, AttributeValue>;

impl DynamoRepository {
    /// One page of `query`: at most `first` rows after `start`, and whether more follow. It
    /// reads on past DynamoDB's own page ends; `batch` fixes how many rows each read asks
    /// for, for queries with a filter (which drops rows after the limit is applied).
    pub(crate) async fn page_of(
        &self,
        query: QueryFluentBuilder,
        mut start: Option<StartKey>,
        first: usize,
        batch: Option<usize>,
    ) -> Result<(Vec<Item>, bool)> {
        let want = first + 1;
        let mut rows: Vec<Item> = Vec::new();
        loop {
            let limit = batch.unwrap_or(want - rows.len());
            let out = query
                .clone()
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
        let more = rows.len() > first;
        rows.truncate(first);
        Ok((rows, more))
    }
}

pub(crate) async fn backoff(attempt: u32) {
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
