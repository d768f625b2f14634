//! Turning domain values into DynamoDB items and back, and SDK errors into `DomainError`.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Update};
use gantry_domain::DomainError;
use serde::{Serialize, de::DeserializeOwned};

use crate::keys::{GSI1PK, GSI1SK, GSI2PK, GSI2SK, ItemKeys, PK, SK};

pub type Item = HashMap<String, AttributeValue>;

/// A domain value as an item carrying `keys`.
pub fn to_item<T: Serialize>(value: &T, keys: &ItemKeys) -> Result<Item, DomainError> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(DomainError::internal)?;
    item.extend(keys.all());
    Ok(item)
}

/// An item back into a domain value; key attributes are ignored.
pub fn from_item<T: DeserializeOwned>(mut item: Item) -> Result<T, DomainError> {
    // serde_dynamo copies the item into a map of its own before it decodes it: the keys,
    // which no domain value reads, are left out of that copy.
    item.retain(|name, _| !KEY_ATTRIBUTES.contains(&name.as_str()));
    serde_dynamo::from_item(item).map_err(DomainError::internal)
}

/// The table's and its indexes' key attributes.
const KEY_ATTRIBUTES: [&str; 6] = [PK, SK, GSI1PK, GSI1SK, GSI2PK, GSI2SK];

pub fn from_items<T: DeserializeOwned>(items: Vec<Item>) -> Result<Vec<T>, DomainError> {
    items.into_iter().map(from_item).collect()
}

/// An `Update` that sets every attribute of `item` except the table key, so attributes
/// other writers keep on the item (such as `releaseCount`) survive, and appends `appended`
/// to the list attribute `list` (made when the item has none; nothing is appended when
/// `appended` is empty). `condition` may use the names and values passed with it.
pub fn update_all_appending(
    table: &str,
    keys: &ItemKeys,
    item: Item,
    (list, appended): (&str, Vec<AttributeValue>),
    condition: &str,
    values: impl IntoIterator<Item = (&'static str, AttributeValue)>,
) -> Result<Update, DomainError> {
    let mut names = HashMap::new();
    let mut vals: HashMap<String, AttributeValue> = values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let mut sets = Vec::new();
    for (i, (name, value)) in item.into_iter().filter(|(n, _)| n != PK && n != SK).enumerate() {
        names.insert(format!("#a{i}"), name);
        vals.insert(format!(":a{i}"), value);
        sets.push(format!("#a{i} = :a{i}"));
    }
    if !appended.is_empty() {
        names.insert("#list".to_owned(), list.to_owned());
        vals.insert(":listNone".to_owned(), AttributeValue::L(Vec::new()));
        vals.insert(":listMore".to_owned(), AttributeValue::L(appended));
        sets.push("#list = list_append(if_not_exists(#list, :listNone), :listMore)".to_owned());
    }
    Update::builder()
        .table_name(table)
        .set_key(Some(keys.primary()))
        .update_expression(format!("SET {}", sets.join(", ")))
        .condition_expression(condition)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(vals))
        .build()
        .map_err(DomainError::internal)
}

/// Any SDK failure that is not a lost condition. A request over its budget is refused as
/// such; one DynamoDB did not answer in time is `Unavailable`; anything else is logged in
/// full and shown as "internal error".
pub fn sdk<E, R>(err: SdkError<E, R>) -> DomainError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let Some(refusal) = gantry_domain::budget::refusal() {
        return refusal;
    }
    if is_unavailable(&err) {
        tracing::warn!(error = %DisplayErrorContext(&err), "DynamoDB unavailable");
        return DomainError::unavailable("the database did not answer in time; try again");
    }
    DomainError::internal(DisplayErrorContext(err))
}

/// A timeout, or a connection that could not be made or broke.
pub fn is_unavailable<E, R>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::TimeoutError(_) => true,
        SdkError::DispatchFailure(failure) => failure.is_timeout() || failure.is_io(),
        _ => false,
    }
}

/// Which items of a cancelled transaction failed their condition, by position.
/// `Err` for any other failure.
pub fn cancelled_conditions<R>(err: SdkError<TransactWriteItemsError, R>) -> Result<Vec<usize>, DomainError>
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.as_service_error() {
        let failed: Vec<usize> = e
            .cancellation_reasons()
            .iter()
            .enumerate()
            .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
            .map(|(i, _)| i)
            .collect();
        if !failed.is_empty() {
            return Ok(failed);
        }
    }
    Err(sdk(err))
}
