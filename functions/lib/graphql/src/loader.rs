//! Batches component lookups of one request into BatchGetItem calls.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use gantry_domain::DomainError;
use gantry_domain::model::Component;
use gantry_domain::service::Catalog;
use gantry_domain::values::ComponentId;

pub struct ComponentLoader {
    catalog: Catalog,
}

impl ComponentLoader {
    /// A loader for one request: its cache lives as long as the request.
    pub fn for_request(catalog: Catalog) -> DataLoader<Self> {
        DataLoader::new(Self { catalog }, tokio::spawn)
    }
}

impl Loader<ComponentId> for ComponentLoader {
    type Value = Component;
    type Error = DomainError;

    async fn load(&self, keys: &[ComponentId]) -> Result<HashMap<ComponentId, Component>, DomainError> {
        let found = self.catalog.components_by_id(keys).await?;
        Ok(found.into_iter().map(|c| (c.id, c)).collect())
    }
}
