//! Gantry's GraphQL schema. `schema.graphql` at the repository root is printed from it
//! (`make schema`), and a test fails when the file is stale.

pub mod accounts;
pub mod error;
pub mod guard;
pub mod integrations;
pub mod introspection;
pub mod loader;
pub mod promotions;
pub mod schema;
pub mod targets;
pub mod types;

use async_graphql::{EmptySubscription, MergedObject, Request, Response};
use gantry_domain::access::Principal;
use gantry_domain::accounts::ServiceAccounts;
use gantry_domain::builds::Builds;
use gantry_domain::integrations::Integrations;
use gantry_domain::promotions::Promotions;
use gantry_domain::service::{Actor, Catalog};
use gantry_domain::sync::VersionSync;
use gantry_domain::targets::Targets;

/// Every query root field.
#[derive(MergedObject, Default)]
pub struct Query(
    schema::CatalogQuery,
    integrations::IntegrationQuery,
    accounts::AccountQuery,
    promotions::PromotionQuery,
    promotions::EvidenceQuery,
);

/// Every mutation root field.
#[derive(MergedObject, Default)]
pub struct Mutation(
    schema::CatalogMutation,
    integrations::IntegrationMutation,
    accounts::AccountMutation,
    targets::TargetMutation,
    promotions::PromotionMutation,
);

type Schema = async_graphql::Schema<Query, Mutation, EmptySubscription>;

/// The schema requests run on, and its introspection-only twin for clients' standard
/// introspection query (see [`introspection`]).
#[derive(Clone)]
pub struct GantrySchema {
    data: Schema,
    introspection: Schema,
}

/// Requests nest at most this deep and this wide, so no query can fan out without bound.
const MAX_DEPTH: usize = 12;
const MAX_COMPLEXITY: usize = 5_000;

/// The schema, with the catalogue every resolver uses.
/// The services resolvers call.
pub struct Services {
    pub catalog: Catalog,
    pub integrations: Integrations,
    pub sync: VersionSync,
    pub accounts: ServiceAccounts,
    pub builds: Builds,
    pub targets: Targets,
    pub promotions: Promotions,
}

pub fn build_schema(services: Services) -> GantrySchema {
    let data = schema_builder()
        .data(services.catalog)
        .data(services.integrations)
        .data(services.sync)
        .data(services.accounts)
        .data(services.builds)
        .data(services.targets)
        .data(services.promotions)
        .finish();
    let introspection = async_graphql::Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .introspection_only()
        .limit_depth(introspection::MAX_DEPTH)
        .limit_complexity(introspection::MAX_COMPLEXITY)
        .finish();
    GantrySchema { data, introspection }
}

fn schema_builder() -> async_graphql::SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
}

/// The SDL that `schema.graphql` must hold.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}

/// Runs one request for an authenticated principal, with its own data loader, and gives
/// every error a code.
pub async fn execute(schema: &GantrySchema, request: Request, principal: Principal) -> Response {
    let catalog = schema_data_catalog(schema);
    let actor = Actor(principal.subject.clone());
    let request = request.data(loader::ComponentLoader::for_request(catalog)).data(actor).data(principal);
    let target =
        if introspection::is_introspection_only(&request.query) { &schema.introspection } else { &schema.data };
    let mut response = target.execute(request).await;
    error::classify_errors(&mut response);
    response
}

fn schema_data_catalog(schema: &GantrySchema) -> Catalog {
    // The schema was built with a Catalog; `build_schema` is the only constructor used.
    schema.data.data::<Catalog>().cloned().expect("schema built by build_schema carries a Catalog")
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_file_is_current() {
        let on_disk = include_str!("../../../../schema.graphql");
        assert!(on_disk == super::sdl(), "schema.graphql is stale: run `make schema` and commit the result");
    }
}
