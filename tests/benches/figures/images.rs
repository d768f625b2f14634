//! What the table holds after a run, so that writes are billed as DynamoDB bills them: an
//! update by the size of the whole item (the larger of before and after; the item as the
//! run left it here), and every write of an item in a global secondary index once more in
//! that index (both of the table's indexes project every attribute).

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use gantry_tests::recorder::Request;
use serde_json::Value;

/// The table's global secondary indexes, by the partition-key and sort-key attributes
/// that put an item in each (`infra/template.yaml`).
pub const INDEXES: [(&str, &str); 2] = [("GSI1PK", "GSI1SK"), ("GSI2PK", "GSI2SK")];

/// An item's size in bytes and whether it is in each index.
#[derive(Debug, Clone, Copy, Default)]
pub struct Image {
    pub bytes: usize,
    pub indexed: [bool; 2],
}

/// Every item the table holds, by its primary key (items deleted during the run as their
/// last put wrote them), and which updates changed an item's key in an index.
#[derive(Debug, Default)]
pub struct Images {
    items: HashMap<(String, String), Image>,
    key_changes: HashSet<(u64, (String, String), usize)>,
}

impl Images {
    /// Reads the whole table (a bench's own Scan, not one Gantry makes), adds the items
    /// `requests` put that are gone, and follows the index keys `requests` wrote.
    pub async fn scan(client: &aws_sdk_dynamodb::Client, table: &str, requests: &[Request]) -> Self {
        let mut items = HashMap::new();
        let mut pages = client.scan().table_name(table).into_paginator().items().send();
        while let Some(item) = pages.next().await {
            let item = item.expect("the bench reads its table");
            let key = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let indexed = INDEXES.map(|(pk, _)| item.contains_key(pk));
            let bytes = item.iter().map(|(name, value)| name.len() + attribute_size(value)).sum();
            items.insert((key("PK"), key("SK")), Image { bytes, indexed });
        }
        for entry in requests.iter().flat_map(entries).filter(|e| e.op == "Put") {
            let put = &entry.inner["Item"];
            let image = Image { bytes: size(put), indexed: INDEXES.map(|(pk, _)| put.get(pk).is_some()) };
            items.entry(primary(put)).or_insert(image);
        }
        Self { items, key_changes: key_changes(requests) }
    }

    /// The item with this key (wire form), when the run wrote it.
    pub fn of(&self, key: &Value) -> Option<Image> {
        self.items.get(&primary(key)).copied()
    }

    /// Whether request `seq`'s update of the item with this key moved it in index `index`
    /// (a delete and a put there, where an update in place is one write).
    pub fn changes_key(&self, seq: u64, key: &Value, index: usize) -> bool {
        self.key_changes.contains(&(seq, primary(key), index))
    }
}

/// One item's write in a write request: `op` is `Put`, `Update`, `Delete` or
/// `ConditionCheck`; `how` says how it was sent; `inner` is the request, or the
/// transaction's or batch's entry; `times` is 2 in a transaction.
pub struct Entry {
    pub op: String,
    pub how: String,
    pub inner: Value,
    pub times: f64,
}

/// Every item's write in a write request.
pub fn entries(request: &Request) -> Vec<Entry> {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let entry = |op: &str, how: &str, inner: Value, times: f64| Entry { op: op.into(), how: how.into(), inner, times };
    match request.operation.as_str() {
        "PutItem" => vec![entry("Put", "PutItem", body, 1.0)],
        "UpdateItem" => vec![entry("Update", "UpdateItem", body, 1.0)],
        "DeleteItem" => vec![entry("Delete", "DeleteItem", body, 1.0)],
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i.as_object()?.iter().next())
            .map(|(op, inner)| entry(op, &format!("tx {op}"), inner.clone(), 2.0))
            .collect(),
        "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .into_iter()
            .flat_map(|tables| tables.values())
            .flat_map(|t| t.as_array().cloned().unwrap_or_default())
            .map(|w| match w.get("PutRequest") {
                Some(put) => entry("Put", "batch Put", put.clone(), 1.0),
                None => entry("Delete", "batch Delete", w["DeleteRequest"].clone(), 1.0),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Walks the writes in the order they were sent, following each item's index keys, and
/// notes every update that gave an item a different key in an index. An item first
/// written before the recording began has keys unknown here, and its first update is
/// taken to keep them.
fn key_changes(requests: &[Request]) -> HashSet<(u64, (String, String), usize)> {
    let mut sorted: Vec<&Request> = requests.iter().collect();
    sorted.sort_by_key(|r| r.seq);
    let mut keys: HashMap<(String, String), HashMap<String, String>> = HashMap::new();
    let mut changes = HashSet::new();
    for request in sorted {
        for Entry { op, inner, .. } in entries(request) {
            let key = inner.get("Item").unwrap_or(&inner["Key"]);
            let primary = primary(key);
            match op.as_str() {
                "Put" => drop(keys.insert(primary, index_keys(key))),
                "Delete" => drop(keys.remove(&primary)),
                "Update" => {
                    let known = keys.entry(primary.clone()).or_default();
                    for (name, value) in index_keys_set(&inner) {
                        let index = INDEXES.iter().position(|(pk, sk)| *pk == name || *sk == name).unwrap_or(0);
                        if known.insert(name, value.clone()).is_some_and(|before| before != value) {
                            changes.insert((request.seq, primary.clone(), index));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    changes
}

/// The index-key attributes of an item, by name.
fn index_keys(item: &Value) -> HashMap<String, String> {
    INDEXES
        .iter()
        .flat_map(|(pk, sk)| [pk, sk])
        .filter_map(|name| Some((name.to_string(), item[*name]["S"].as_str()?.to_owned())))
        .collect()
}

/// The index-key attributes an update sets (`#name = :value` or `NAME = :value`), by name.
fn index_keys_set(update: &Value) -> Vec<(String, String)> {
    let expression = update["UpdateExpression"].as_str().unwrap_or_default();
    let names = update["ExpressionAttributeNames"].as_object().cloned().unwrap_or_default();
    let wanted = |name: &str| INDEXES.iter().any(|(pk, sk)| *pk == name || *sk == name);
    let placeholders = names
        .iter()
        .filter_map(|(placeholder, name)| Some((placeholder.clone(), name.as_str()?.to_owned())))
        .chain(INDEXES.iter().flat_map(|(pk, sk)| [pk.to_string(), sk.to_string()]).map(|n| (n.clone(), n)));
    placeholders
        .filter(|(_, name)| wanted(name))
        .filter_map(|(placeholder, name)| {
            let after = &expression[expression.find(&format!("{placeholder} = "))? + placeholder.len() + 3..];
            let value = after.split([',', ' ']).next()?;
            Some((name, update["ExpressionAttributeValues"][value]["S"].as_str()?.to_owned()))
        })
        .collect()
}

fn primary(item: &Value) -> (String, String) {
    let part = |name: &str| item[name]["S"].as_str().unwrap_or_default().to_owned();
    (part("PK"), part("SK"))
}

/// The DynamoDB size of an item (or key) in the JSON wire form: names plus values.
pub fn size(item: &Value) -> usize {
    item.as_object().map_or(0, |m| m.iter().map(|(k, v)| k.len() + value_size(v)).sum())
}

fn value_size(v: &Value) -> usize {
    let Some((kind, inner)) = v.as_object().and_then(|m| m.iter().next()) else { return 0 };
    match (kind.as_str(), inner) {
        ("S", Value::String(s)) => s.len(),
        ("N", Value::String(n)) => number_size(n),
        ("B", Value::String(b)) => b.len() * 3 / 4,
        ("L", Value::Array(items)) => 3 + items.iter().map(|i| 1 + value_size(i)).sum::<usize>(),
        ("M", map) => 3 + size(map) + map.as_object().map_or(0, |m| m.len()),
        ("SS", Value::Array(items)) => items.iter().map(|i| i.as_str().map_or(0, str::len)).sum(),
        _ => 1,
    }
}

/// The same size, of an attribute the SDK read.
fn attribute_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::L(items) => 3 + items.iter().map(|i| 1 + attribute_size(i)).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| k.len() + attribute_size(v) + 1).sum::<usize>(),
        AttributeValue::Ss(items) => items.iter().map(String::len).sum(),
        _ => 1,
    }
}

fn number_size(n: &str) -> usize {
    n.len().div_ceil(2) + 1
}
