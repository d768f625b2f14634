//! Releases: their items, memberships and the listing pages.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Select, TransactWriteItem};
use gantry_domain::model::{Release, ReleaseStatus};
use gantry_domain::ports::{Page, PageRequest, ReleaseFilter, ReleaseRepository};
use gantry_domain::values::{ComponentId, ReleaseId};
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::codec::{from_items, sdk, to_item};
use crate::keys::{GSI1, GSI1PK, GSI1SK, GSI2, GSI2PK, GSI2SK, PK, SK, s};

use crate::keys;
use crate::{DynamoRepository, Membership, Tx, built, decode_cursor, encode_cursor, string_attr};

#[async_trait]
impl ReleaseRepository for DynamoRepository {
    #[instrument(skip_all, fields(release_id = %release.id), err(level = "info"))]
    async fn create_release(&self, release: &Release) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.put_new(to_item(release, &keys::release(release.id, release.status, release.created_at))?)?,
            DomainError::conflict("release id exists"),
        );
        tx.push(
            self.guard(&keys::unique_name(keys::Named::Release, release.name.as_str()))?,
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
                    .set_key(Some(keys::component_key(c.component_id).primary()))
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

    #[instrument(skip_all, fields(release_id = %id), err(level = "info"))]
    async fn get_release(&self, id: ReleaseId) -> Result<Option<Release>> {
        self.get(&keys::release_key(id)).await
    }

    #[instrument(skip_all, fields(first = page.first), err(level = "info"))]
    async fn list_releases(&self, filter: ReleaseFilter, page: &PageRequest) -> Result<Page<Release>> {
        let after = page.after.as_deref().map(decode_cursor).transpose()?;
        let listing = Listing::for_filter(filter);
        let start = after.map(|(sort, id)| listing.start_key(sort, id));
        let batch = listing.status_filter.is_some().then_some(100);
        let (rows, has_next_page) = self.page_of(listing.query(self.query(), false), start, page.first, batch).await?;
        let cursors: Vec<String> =
            rows.iter().map(|r| string_attr(r, listing.sort_attr).map(|k| encode_cursor(&k))).collect::<Result<_>>()?;
        let releases: Vec<Release> = if listing.members {
            let ids: Vec<ReleaseId> = from_items::<Membership>(rows)?.into_iter().map(|m| m.release_id).collect();
            let found: Vec<Release> =
                from_items(self.batch_get(ids.iter().map(|id| keys::release_key(*id)).collect()).await?)?;
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

    #[instrument(skip_all, err(level = "info"))]
    async fn count_releases(&self, filter: ReleaseFilter, cap: u64) -> Result<u64> {
        let listing = Listing::for_filter(filter);
        let (mut total, mut read) = (0u64, 0u64);
        let mut start = None;
        // Reads at most `cap` rows: a filtered listing (a component's releases in one
        // status) counts its matches among the newest `cap`.
        while read < cap {
            let limit = i32::try_from(cap - read).unwrap_or(i32::MAX);
            let query = listing.query(self.query(), true).limit(limit).set_exclusive_start_key(start);
            let out = query.send().await.map_err(sdk)?;
            total += u64::try_from(out.count).unwrap_or(0);
            read += u64::try_from(out.scanned_count).unwrap_or(0).max(1);
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(total.min(cap))
    }

    #[instrument(skip_all, fields(release_id = %after.id), err(level = "info"))]
    async fn update_release(&self, before: &Release, after: &Release) -> Result<()> {
        let mut tx = Tx::new();
        self.push_release_update(&mut tx, before, after)?;
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(release_id = %release.id), err(level = "info"))]
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
            self.delete(&keys::unique_name(keys::Named::Release, release.name.as_str()), None)?,
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
                    .set_key(Some(keys::component_key(c.component_id).primary()))
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
}

impl DynamoRepository {
    /// Pushes a release's change from `before` to `after` onto `tx`: its item (`revision =
    /// :read`), and on a status change every member's status.
    pub(crate) fn push_release_update(&self, tx: &mut Tx, before: &Release, after: &Release) -> Result<()> {
        tx.push(
            self.update_revision(&keys::release(after.id, after.status, after.created_at), after, before.revision)?,
            DomainError::conflict(format!("release {} changed meanwhile; read it again and retry", before.id)),
        );
        if before.status == after.status {
            return Ok(());
        }
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
            tx.push(TransactWriteItem::builder().update(update).build(), DomainError::internal("membership update"));
        }
        Ok(())
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
            Some(component) => keys::member_sk(component),
            None => keys::RELEASE_SK.to_owned(),
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
