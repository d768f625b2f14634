//! Request-scoped data loaders: lookups that every row of a list would otherwise make one
//! by one are gathered and made in batches (BatchGetItem).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use gantry_domain::DomainError;
use gantry_domain::model::{EnvironmentState, RecentVersions};
use gantry_domain::service::Catalog;
use gantry_domain::values::{ComponentId, ReleaseId};

/// The request's loader of components' current names, caching what it loaded for the rest of
/// the request. A name is shared, not copied, by every row that shows it.
pub type Components = DataLoader<ComponentLoader, HashMapCache>;
/// The request's loader of release states across environments.
pub type ReleaseStates = DataLoader<ReleaseStateLoader, HashMapCache>;
/// The request's loader of components' recent versions.
pub type Recent = DataLoader<RecentVersionsLoader, HashMapCache>;

pub struct ComponentLoader {
    catalog: Catalog,
}

pub struct ReleaseStateLoader {
    environments: gantry_domain::service::Environments,
}

pub struct RecentVersionsLoader {
    catalog: Catalog,
}

/// A loader for one request: its cache lives as long as the request, and the loads it
/// spawns are charged to the request's storage budget.
pub(crate) fn for_request<L: Loader<K>, K: Send + Sync + std::hash::Hash + Eq + Clone + 'static>(
    loader: L,
) -> DataLoader<L, HashMapCache> {
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
    DataLoader::with_cache(loader, spawn, HashMapCache::default())
}

impl ComponentLoader {
    pub fn for_request(catalog: Catalog) -> Components {
        for_request(Self { catalog })
    }
}

/// Puts the components a resolver's rows will ask for into the request's loader in one
/// batch, at once: a loader's own batch waits a timer tick (a millisecond or two) for its
/// keys, and this resolver knows them all already.
pub async fn preload_components(ctx: &async_graphql::Context<'_>, ids: Vec<ComponentId>) -> Result<(), DomainError> {
    let names = names_of(ctx.data_unchecked::<Catalog>(), &ids).await?;
    ctx.data_unchecked::<Components>().feed_many(names).await;
    Ok(())
}

/// Puts the recent versions of the components a list will ask `versions` of into the
/// request's loader in one batch, at once (as [`preload_components`] does).
pub async fn preload_recent(ctx: &async_graphql::Context<'_>, ids: Vec<ComponentId>) -> Result<(), DomainError> {
    let found = ctx.data_unchecked::<Catalog>().recent_versions(&ids).await?;
    ctx.data_unchecked::<Recent>().feed_many(found).await;
    Ok(())
}

impl RecentVersionsLoader {
    pub fn for_request(catalog: Catalog) -> Recent {
        for_request(Self { catalog })
    }
}

impl ReleaseStateLoader {
    pub fn for_request(environments: gantry_domain::service::Environments) -> ReleaseStates {
        for_request(Self { environments })
    }
}

/// The current names of the components found, shared.
async fn names_of(catalog: &Catalog, ids: &[ComponentId]) -> Result<HashMap<ComponentId, Arc<str>>, DomainError> {
    let found = catalog.component_names(ids).await?;
    Ok(found.into_iter().map(|(id, name)| (id, Arc::from(name))).collect())
}

impl Loader<ComponentId> for ComponentLoader {
    type Value = Arc<str>;
    type Error = DomainError;

    async fn load(&self, keys: &[ComponentId]) -> Result<HashMap<ComponentId, Arc<str>>, DomainError> {
        names_of(&self.catalog, keys).await
    }
}

impl Loader<ReleaseId> for ReleaseStateLoader {
    type Value = Vec<EnvironmentState>;
    type Error = DomainError;

    async fn load(&self, keys: &[ReleaseId]) -> Result<HashMap<ReleaseId, Vec<EnvironmentState>>, DomainError> {
        self.environments.release_states(keys).await
    }
}

impl Loader<ComponentId> for RecentVersionsLoader {
    type Value = RecentVersions;
    type Error = DomainError;

    async fn load(&self, keys: &[ComponentId]) -> Result<HashMap<ComponentId, RecentVersions>, DomainError> {
        self.catalog.recent_versions(keys).await
    }
}
