//! Gantry's GraphQL schema. `schema.graphql` at the repository root is printed from it
//! (`make schema`), and a test fails when the file is stale. Resolvers parse, call one
//! domain service and map; they never reach AWS or HTTP themselves.

pub mod accounts;
pub mod agents;
pub mod analysis;
pub mod artifacts;
pub mod chatops;
pub mod ci;
pub mod delivery;
pub mod insights;
pub mod integrations;
pub mod loader;
pub mod operations;
pub mod reports;
pub mod schema;
pub mod targets;
pub mod traffic;
pub mod types;

pub use gantry_graphql_kit::{connection, cost, error, guard, introspection, limits};

use async_graphql::{EmptySubscription, MergedObject, Request, Response};
use gantry_domain::access::Principal;
use gantry_domain::accounts::ServiceAccounts;
use gantry_domain::builds::Builds;
use gantry_domain::ci::CiIntegrations;
use gantry_domain::integrations::Integrations;
use gantry_domain::promotions::Promotions;
use gantry_domain::reports::Reports;
use gantry_domain::service::{Actor, Catalog};
use gantry_domain::sync::VersionSync;
use gantry_domain::targets::Targets;

/// Every query root field.
#[derive(MergedObject, Default)]
pub struct Query(
    schema::CatalogQuery,
    integrations::IntegrationQuery,
    ci::CiQuery,
    accounts::AccountQuery,
    delivery::promotions::PromotionQuery,
    delivery::promotions::EvidenceQuery,
    delivery::signatures::SignatureQuery,
    delivery::bundles::BundleQuery,
    chatops::ChatQuery,
    agents::AgentQuery,
    insights::InsightsQuery,
    operations::OperationsQuery,
);

/// Every mutation root field.
#[derive(MergedObject, Default)]
pub struct Mutation(
    schema::CatalogMutation,
    integrations::IntegrationMutation,
    ci::CiMutation,
    accounts::AccountMutation,
    targets::TargetMutation,
    delivery::promotions::PromotionMutation,
    delivery::steps::StepMutation,
    delivery::freeze::FreezeMutation,
    delivery::keyless::AdmissionMutation,
    chatops::ChatMutation,
    agents::AgentMutation,
    delivery::steering::TrafficMutation,
    operations::OperationsMutation,
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
/// A list field costs its page size (`first`, `limit`, or [`cost`]'s estimate) times its
/// selection, so a page of 100 releases with their environments costs about 1,400.
const MAX_DEPTH: usize = 12;
const MAX_COMPLEXITY: usize = 10_000;
/// The DynamoDB requests one GraphQL request may make; past it, every further read is
/// refused with `BAD_USER_INPUT`.
pub const MAX_STORAGE_REQUESTS: u32 = 250;

/// The schema, with the catalogue every resolver uses.
/// The services resolvers call.
pub struct Services {
    pub catalog: Catalog,
    pub environments: gantry_domain::service::Environments,
    pub integrations: Integrations,
    pub ci: CiIntegrations,
    pub reports: Reports,
    pub sync: VersionSync,
    pub accounts: ServiceAccounts,
    pub builds: Builds,
    pub targets: Targets,
    pub promotions: Promotions,
    pub chat: gantry_domain::chatops::ChatOps,
    pub subscriptions: gantry_domain::notifications::Subscriptions,
    pub agents: gantry_domain::agents::Agents,
    pub insights: gantry_domain::insights::DeliveryInsights,
    pub dead_letters: std::sync::Arc<dyn gantry_domain::dead_letters::DeadLetters>,
}

pub fn build_schema(services: Services) -> GantrySchema {
    let data = schema_builder()
        .data(services.catalog)
        .data(services.environments)
        .data(services.integrations)
        .data(services.ci)
        .data(services.reports)
        .data(services.sync)
        .data(services.accounts)
        .data(services.builds)
        .data(services.targets)
        .data(services.promotions)
        .data(services.chat)
        .data(services.subscriptions)
        .data(services.agents)
        .data(services.insights)
        .data(services.dead_letters)
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
/// A document is first checked by [`limits`], cheaply, so validation never sees one that
/// would take it long; the request then runs within a budget of [`MAX_STORAGE_REQUESTS`].
pub async fn execute(schema: &GantrySchema, mut request: Request, principal: Principal) -> Response {
    let mut introspection = false;
    match limits::check(&request.query, &request.variables) {
        Ok(Some(document)) => {
            introspection = introspection::is_introspection_only(&document);
            request.set_parsed_query(document);
        }
        Ok(None) => {}
        Err(refusal) => {
            let mut error = async_graphql::ServerError::new(refusal.to_string(), None);
            error.extensions.get_or_insert_with(Default::default).set("code", refusal.code());
            return Response::from_errors(vec![error]);
        }
    }
    let target = if introspection { &schema.introspection } else { &schema.data };
    let budget = gantry_domain::budget::Budget::new(MAX_STORAGE_REQUESTS);
    let mut response = gantry_domain::budget::within(budget, async {
        let catalog = schema_data_catalog(schema);
        let environments =
            schema.data.data::<gantry_domain::service::Environments>().cloned().expect("and Environments");
        let reports = schema.data.data::<Reports>().cloned().expect("schema built by build_schema carries Reports");
        let promotions = schema.data.data::<gantry_domain::promotions::Promotions>().cloned().expect("and Promotions");
        let actor = Actor(principal.subject.clone());
        let request = request
            .data(loader::ComponentLoader::for_request(catalog.clone()))
            .data(loader::RecentVersionsLoader::for_request(catalog.clone()))
            .data(loader::ReleaseStateLoader::for_request(environments))
            .data(reports::ReportsLoader::for_request(reports))
            .data(artifacts::ArtifactsLoader::for_request(promotions))
            .data(actor)
            .data(principal);
        target.execute(request).await
    })
    .await;
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
