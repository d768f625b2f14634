//! Delivery insights: daily counter buckets and each environment's health, added to in the
//! transaction that ends a promotion (see `gantry_domain::insights`).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, NaiveDate, Utc};
use gantry_domain::insights::{Bucket, Counts, HealthChange, InsightsRepository, Scope, Tally, Window};
use gantry_domain::values::{ComponentId, EnvironmentId};
use gantry_domain::{DomainError, Result};
use serde::Deserialize;
use tracing::instrument;

use crate::codec::{from_item, from_items, sdk};
use crate::keys::{self, s, stamp};
use crate::{DynamoRepository, Tx, built};

/// A bucket as stored: its day and component beside the counters.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredBucket {
    day: NaiveDate,
    component_id: Option<ComponentId>,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    failing_since: Option<DateTime<Utc>>,
}

impl DynamoRepository {
    /// Pushes the writes of `tally` onto a transaction: an `ADD` of each bucket's counters
    /// (which makes the bucket when it is new), and the health change, conditional on the
    /// failure time read.
    pub(crate) fn push_tally(&self, tx: &mut Tx, tally: &Tally) -> Result<()> {
        for bucket in &tally.buckets {
            tx.push(self.add_to_bucket(tally.environment_id, bucket)?, DomainError::internal("insight bucket add"));
        }
        let key = keys::insights_health(tally.environment_id).primary();
        let update = match tally.health {
            HealthChange::Keep => return Ok(()),
            HealthChange::Failing(at) => Update::builder()
                .update_expression("SET failingSince = if_not_exists(failingSince, :at)")
                .expression_attribute_values(":at", s(&stamp(at))),
            HealthChange::Restored(since) => Update::builder()
                .update_expression("REMOVE failingSince")
                .condition_expression("failingSince = :since")
                .expression_attribute_values(":since", s(&stamp(since))),
        };
        let update = built(update.table_name(&self.table).set_key(Some(key)).build())?;
        tx.push(
            TransactWriteItem::builder().update(update).build(),
            DomainError::conflict("the environment's health changed meanwhile; read it again and retry"),
        );
        Ok(())
    }

    fn add_to_bucket(&self, environment: EnvironmentId, bucket: &Bucket) -> Result<TransactWriteItem> {
        let component = match bucket.scope {
            Scope::Environment => None,
            Scope::Component(c) => Some(c),
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::insights_bucket(environment, bucket.day, component).primary()))
            .expression_attribute_names("#day", "day")
            .expression_attribute_values(":day", s(&bucket.day.to_string()));
        let mut sets = vec!["#day = :day".to_owned()];
        if let Some(c) = component {
            sets.push("componentId = :component".into());
            update = update.expression_attribute_values(":component", s(&c.to_string()));
        }
        let mut adds = Vec::new();
        for (i, (name, n)) in bucket.counts.fields().into_iter().enumerate().filter(|(_, (_, n))| *n > 0) {
            adds.push(format!("{name} :n{i}"));
            update = update.expression_attribute_values(format!(":n{i}"), AttributeValue::N(n.to_string()));
        }
        let adds = if adds.is_empty() { String::new() } else { format!(" ADD {}", adds.join(", ")) };
        let update = built(update.update_expression(format!("SET {}{adds}", sets.join(", "))).build())?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

#[async_trait]
impl InsightsRepository for DynamoRepository {
    #[instrument(skip_all, fields(environment_id = %environment, days = window.days()), err(level = "info"))]
    async fn buckets(&self, environment: EnvironmentId, window: &Window) -> Result<Vec<Bucket>> {
        let items = self
            .query_all(
                self.query()
                    .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(&keys::insights_pk(environment)))
                    .expression_attribute_values(":from", s(&keys::insights_day(window.from)))
                    .expression_attribute_values(":to", s(&format!("{}~", keys::insights_day(window.to)))),
            )
            .await?;
        Ok(from_items::<StoredBucket>(items)?
            .into_iter()
            .map(|b| Bucket {
                day: b.day,
                scope: b.component_id.map_or(Scope::Environment, Scope::Component),
                counts: b.counts,
            })
            .collect())
    }

    #[instrument(skip_all, fields(environment_id = %environment), err(level = "info"))]
    async fn failing_since(&self, environment: EnvironmentId) -> Result<Option<DateTime<Utc>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::insights_health(environment).primary()))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        Ok(out.item.map(from_item::<Health>).transpose()?.and_then(|h| h.failing_since))
    }
}
