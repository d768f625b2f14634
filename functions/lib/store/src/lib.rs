//! Gantry's DynamoDB store: one table, keys from [`keys`], conditional writes everywhere
//! uniqueness or order matters, and no Scan anywhere. It implements the domain's ports and
//! decides nothing the domain would.

pub mod accounts;
mod agents;
mod blocks;
mod budget;
mod components;
mod environments;
mod releases;
mod versions;

pub(crate) use blocks::{Projection, decode_cursor, encode_cursor, string_attr};
pub mod builds;
mod chatops;
pub mod ci;
pub mod codec;
pub mod deployments;
pub mod evidence;
mod insights;
pub mod integrations;
pub mod keys;
pub mod promotions;
mod reports;
mod sessions;
mod steps;
mod subscriptions;
pub mod table;
pub mod targets;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::TransactWriteItem;
use gantry_domain::model::ReleaseStatus;
use gantry_domain::values::{ComponentId, ReleaseId};
use gantry_domain::{DomainError, Result};
use serde::{Deserialize, Serialize};

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
