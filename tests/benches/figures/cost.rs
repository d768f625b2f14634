//! AWS list-price cost, from the requests counted in this run: the capacity units each
//! DynamoDB request consumes (from its body), SQS requests, and Lambda invocations and
//! GB-seconds. Prices are us-east-1 on-demand list prices; docs/cost.md states them.

use gantry_tests::recorder::Request;
use serde_json::Value;

use crate::images::{Entry, INDEXES, Images, entries, size};

use crate::drain::Drained;
use crate::intake::Accepted;
use crate::promotions::Promoted;

use gantry_tests::prices::*;

/// What some work consumed; add them up, then scale.
#[derive(Debug, Default, Clone, Copy)]
pub struct Bill {
    pub read_units: f64,
    pub write_units: f64,
    pub fifo_requests: f64,
    pub standard_requests: f64,
    pub invocations: f64,
    pub gb_seconds: f64,
}

impl Bill {
    /// The DynamoDB requests' capacity units, writes in the table and its indexes.
    pub fn dynamodb(requests: &[Request], images: &Images) -> Self {
        let mut bill = Self::default();
        for r in requests {
            bill.read_units += read_units(r);
            bill.write_units += written(r, images).iter().map(|w| w.table + w.index).sum::<f64>();
        }
        bill
    }

    /// Lambda invocations of `memory_mb` running `millis` each.
    pub fn lambda(invocations: f64, millis: f64, memory_mb: f64) -> Self {
        Self { invocations, gb_seconds: invocations * millis / 1000.0 * memory_mb / 1024.0, ..Self::default() }
    }

    pub fn plus(self, o: Self) -> Self {
        Self {
            read_units: self.read_units + o.read_units,
            write_units: self.write_units + o.write_units,
            fifo_requests: self.fifo_requests + o.fifo_requests,
            standard_requests: self.standard_requests + o.standard_requests,
            invocations: self.invocations + o.invocations,
            gb_seconds: self.gb_seconds + o.gb_seconds,
        }
    }

    pub fn scaled(self, by: f64) -> Self {
        Self {
            read_units: self.read_units * by,
            write_units: self.write_units * by,
            fifo_requests: self.fifo_requests * by,
            standard_requests: self.standard_requests * by,
            invocations: self.invocations * by,
            gb_seconds: self.gb_seconds * by,
        }
    }

    /// Prints the cost of a million of what this bill is one of.
    pub fn print_per_million(&self, what: &str) {
        let lines = [
            ("DynamoDB writes", self.write_units * DYNAMODB_WRITE_UNIT, format!("{:.2} WRU", self.write_units)),
            ("DynamoDB reads", self.read_units * DYNAMODB_READ_UNIT, format!("{:.2} RRU", self.read_units)),
            ("SQS FIFO", self.fifo_requests * SQS_FIFO_REQUEST, format!("{:.2} requests", self.fifo_requests)),
            (
                "SQS standard",
                self.standard_requests * SQS_STANDARD_REQUEST,
                format!("{:.2} requests", self.standard_requests),
            ),
            ("Lambda requests", self.invocations * LAMBDA_REQUEST, format!("{:.2} invocations", self.invocations)),
            ("Lambda duration", self.gb_seconds * LAMBDA_GB_SECOND, format!("{:.5} GB-s", self.gb_seconds)),
        ];
        let total: f64 = lines.iter().map(|l| l.1).sum();
        println!("  per million {what}: ${total:.2}");
        for (name, dollars, each) in lines {
            println!("    {name:<16} ${dollars:>6.3}   ({each} each)");
        }
    }
}

/// The read units one DynamoDB request consumes: items up to 4 KB, half a unit when
/// eventually consistent, twice in a transaction.
fn read_units(request: &Request) -> f64 {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let read = if body["ConsistentRead"].as_bool() == Some(true) { 1.0 } else { 0.5 };
    match request.operation.as_str() {
        "GetItem" | "Query" | "Scan" => read,
        "BatchGetItem" => read * count(&body["RequestItems"], "Keys"),
        "TransactGetItems" => 2.0 * body["TransactItems"].as_array().map_or(0, Vec::len) as f64,
        _ => 0.0,
    }
}

/// One item a write request wrote: what it is (its sort key up to the first `#`, and how
/// it was written), and its write units in the table and in the indexes.
pub struct Written {
    pub what: String,
    pub table: f64,
    pub index: f64,
}

/// Every item a write request writes, billed: per KB of the item (rounded up per item),
/// twice in a transaction; an update by the whole item; and in each index the item is in,
/// once more (twice when the write moves it in the index: a delete and a put there).
/// Whether AWS doubles index writes in a transaction is not documented; they count once.
pub fn written(request: &Request, images: &Images) -> Vec<Written> {
    entries(request)
        .into_iter()
        .map(|entry| {
            let (table, index) = item_write(request.seq, &entry, images);
            let key = entry.inner.get("Item").unwrap_or(&entry.inner["Key"]);
            let kind = key["SK"]["S"].as_str().unwrap_or("?").split('#').next().unwrap_or("?");
            Written { what: format!("{kind} ({})", entry.how), table: table * entry.times, index }
        })
        .collect()
}

/// The write units of one item's write, in the table and in the indexes.
fn item_write(seq: u64, entry: &Entry, images: &Images) -> (f64, f64) {
    let kb = |bytes: usize| (bytes as f64 / 1024.0).ceil().max(1.0);
    let inner = &entry.inner;
    let key = inner.get("Item").unwrap_or(&inner["Key"]);
    let in_indexes = |indexed: [bool; 2], bytes: usize| -> f64 {
        let moved = |index| entry.op == "Update" && images.changes_key(seq, key, index);
        (0..INDEXES.len()).filter(|i| indexed[*i]).map(|i| if moved(i) { 2.0 } else { 1.0 } * kb(bytes)).sum()
    };
    match entry.op.as_str() {
        "Put" => {
            let indexed = INDEXES.map(|(pk, _)| key.get(pk).is_some());
            (kb(size(key)), in_indexes(indexed, size(key)))
        }
        "Update" | "Delete" => {
            let image = images.of(key).unwrap_or_default();
            let bytes = image.bytes.max(size(key)).max(size(&inner["ExpressionAttributeValues"]));
            (kb(bytes), in_indexes(image.indexed, bytes))
        }
        "ConditionCheck" => (kb(size(key)), 0.0),
        _ => (0.0, 0.0),
    }
}

/// Write units by the kind of item written and how, in the table and in the indexes:
/// where a promotion's write units go.
pub fn write_units_by_item(requests: &[Request], images: &Images) -> std::collections::BTreeMap<String, (f64, f64)> {
    let mut by = std::collections::BTreeMap::<String, (f64, f64)>::new();
    for w in requests.iter().flat_map(|r| written(r, images)) {
        let entry = by.entry(w.what).or_default();
        entry.0 += w.table;
        entry.1 += w.index;
    }
    by
}

/// How many entries the tables of `RequestItems` hold (under `field` when given).
fn count(tables: &Value, field: &str) -> f64 {
    let entries = |t: &Value| {
        if field.is_empty() { t.as_array().map_or(0, Vec::len) } else { t[field].as_array().map_or(0, Vec::len) }
    };
    tables.as_object().map_or(0, |m| m.values().map(entries).sum()) as f64
}

/// SQS requests, by the kind of queue each names: every request counts once per 64 KB of
/// body.
pub fn sqs(requests: &[Request]) -> Bill {
    let mut bill = Bill::default();
    for r in requests {
        let billed = (r.body.len() as f64 / 65536.0).ceil().max(1.0);
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        if body["QueueUrl"].as_str().is_some_and(|url| url.ends_with(".fifo")) {
            bill.fifo_requests += billed;
        } else {
            bill.standard_requests += billed;
        }
    }
    bill
}

/// The most events the template's event source mapping hands ingest at once
/// (`IngestBatchSize`'s default in infra/template.yaml).
fn mapping_batch_size() -> f64 {
    let template = include_str!("../../../infra/template.yaml");
    let after = &template[template.find("IngestBatchSize:").expect("the template sets IngestBatchSize")..];
    let default = after.lines().find_map(|l| l.trim().strip_prefix("Default:")).expect("with a default");
    default.trim().parse().expect("a number")
}

/// Prints the cost of a million webhooks and of a million promotions.
pub fn report(accepted: &Accepted, drains: &[Drained], promoted: &Promoted) {
    println!("\nAWS list-price cost (us-east-1, on demand; docs/cost.md), from the requests counted above");
    let intake = Bill::dynamodb(&accepted.dynamodb, &promoted.images).plus(sqs(&accepted.sqs)).plus(Bill::lambda(
        1.0,
        accepted.p50_ms,
        WEBHOOKS_MB,
    ));
    for drained in drains {
        let per_event = 1.0 / drained.events as f64;
        let ingest_ms = drained.batch_time.as_secs_f64() * 1000.0;
        let ingest = Bill::lambda(drained.batches as f64, ingest_ms, FUNCTION_MB).scaled(per_event);
        let reads = Bill::dynamodb(&drained.dynamodb, &promoted.images).scaled(per_event);
        let batch = drained.events as f64 / drained.batches.max(1) as f64;
        intake.plus(reads).plus(sqs(&drained.sqs).scaled(per_event)).plus(ingest).print_per_million(&format!(
            "webhooks (one event each, for an image no component releases; ingest batches of {batch:.1} as polled here)"
        ));
        if drained.receivers == 1 {
            // In Lambda the event source mapping receives and deletes ten at a time, and
            // invokes ingest once per gathered batch; ingest's DynamoDB work and time per
            // event are as measured.
            let size = mapping_batch_size();
            let mapping = Bill { standard_requests: 2.0 / 10.0, invocations: 1.0 / size, ..ingest };
            intake.plus(reads).plus(mapping).print_per_million(&format!(
                "webhooks (the same, with ingest batches of {size} gathered by the event source mapping)"
            ));
        }
    }
    let per_promotion = 1.0 / promoted.count as f64;
    let deployer_ms = promoted.batch_time.as_secs_f64() * 1000.0;
    let promotion = Bill::dynamodb(&promoted.api_dynamodb, &promoted.images)
        .plus(sqs(&promoted.api_sqs))
        .plus(Bill::lambda(promoted.count as f64, promoted.api_p50_ms, FUNCTION_MB))
        .plus(Bill::dynamodb(&promoted.deployer_dynamodb, &promoted.images))
        .plus(sqs(&promoted.deployer_sqs))
        .plus(Bill::lambda(promoted.batches as f64, deployer_ms, FUNCTION_MB))
        .plus(Bill::dynamodb(&promoted.notifier_dynamodb, &promoted.images))
        .plus(sqs(&promoted.notifier_sqs))
        .plus(Bill::lambda(
            promoted.notifier_batches as f64,
            promoted.notifier_batch_time.as_secs_f64() * 1000.0,
            NOTIFIER_MB,
        ))
        .scaled(per_promotion);
    promotion.print_per_million("promotions (one Nomad target, no approvals)");
}
