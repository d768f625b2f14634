//! Batches component lookups of one request into BatchGetItem calls.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use gantry_domain::DomainError;
use gantry_domain::model::Component;
use gantry_domain::service::Catalog;
use gantry_domain::values::ComponentId;

/// The request's component loader, caching what it loaded for the rest of the request.
pub type Components = DataLoader<ComponentLoader, HashMapCache>;

pub struct ComponentLoader {
    catalog: Catalog,
}

impl ComponentLoader {
    /// A loader for one request: its cache lives as long as the request, and the loads it
    /// spawns are charged to the request's storage budget.
    pub fn for_request(catalog: Catalog) -> Components {
        let budget = gantry_domain::budget::current();
        let spawn = move |load| {
            let budget = budget.clone();
            tokio::spawn(async move {
                match budget {
                    Some(budget) => gantry_domain::budget::within(budget, load).await,
                    None => load.await,
                }
            })
        };
        DataLoader::with_cache(Self { catalog }, spawn, HashMapCache::default())
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
