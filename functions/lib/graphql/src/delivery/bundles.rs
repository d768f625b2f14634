//! Evidence bundles in GraphQL: export one (an environment's chain in pages, a release's or
//! a promotion's evidence whole) and have the server check one under its own key set.

use async_graphql::{Context, ID, Json, Object, SimpleObject};
use gantry_domain::DomainError;
use gantry_domain::access::{Action, Resource};
use gantry_domain::ids::{EnvironmentId, PromotionId, ReleaseId};
use gantry_domain::promotions::{BundleScope, Promotions};

use crate::error::IntoGraphql;
use crate::guard::Can;

/// One chain of a checked bundle.
#[derive(SimpleObject)]
pub struct ChainCheck {
    pub environment_id: String,
    pub records: usize,
    /// Records whose signature verified under a published key.
    pub verified: usize,
    /// HS256 records before the crossing to asymmetric keys: linked, not checkable here.
    pub legacy: usize,
    /// The chain runs from its first record to its signed head.
    pub complete: bool,
    pub first_broken_seq: Option<u64>,
    pub first_broken_reason: Option<String>,
}

/// What a bundle amounts to under Gantry's published keys.
#[derive(SimpleObject)]
pub struct BundleVerification {
    pub valid: bool,
    pub chains: Vec<ChainCheck>,
    /// Each release manifest's id and whether its signature and digest hold.
    pub manifests: Vec<ManifestCheck>,
    pub problems: Vec<String>,
}

#[derive(SimpleObject)]
pub struct ManifestCheck {
    pub release_id: String,
    pub valid: bool,
}

#[derive(Default)]
pub struct BundleQuery;

#[Object]
impl BundleQuery {
    /// A self-contained evidence bundle: DSSE envelopes over each record's in-toto Statement,
    /// each chain's head signed now, the release manifests in scope (signed), and the
    /// public keys. Give exactly one of `environmentId` (a page: `first` records, at most
    /// 2,000, after sequence number `after`; `gantry evidence export` joins the pages),
    /// `releaseId` or `promotionId` (whole chains, at most 2,000 records).
    #[graphql(guard = "Can(Resource::Promotion, Action::Read)")]
    async fn evidence_bundle(
        &self,
        ctx: &Context<'_>,
        environment_id: Option<ID>,
        release_id: Option<ID>,
        promotion_id: Option<ID>,
        #[graphql(default = 0)] after: u64,
        #[graphql(default = 1000)] first: usize,
    ) -> async_graphql::Result<Json<serde_json::Value>> {
        let scope = match (environment_id, release_id, promotion_id) {
            (Some(id), None, None) => {
                BundleScope::Environment { id: EnvironmentId::parse(&id).gql()?, after, first: first.max(1) }
            }
            (None, Some(id), None) => BundleScope::Release(ReleaseId::parse(&id).gql()?),
            (None, None, Some(id)) => BundleScope::Promotion(PromotionId::parse(&id).gql()?),
            _ => {
                return Err(DomainError::validation("give exactly one of environmentId, releaseId and promotionId"))
                    .gql();
            }
        };
        ctx.data_unchecked::<Promotions>().evidence_bundle(scope).await.gql().map(Json)
    }

    /// Checks a bundle (at most 1 MiB here; `gantry evidence verify` takes any size) under
    /// Gantry's published keys: each record's signature, hash and link, each chain up to its
    /// signed head, and each manifest's signature and digest. Nothing is written.
    #[graphql(guard = "Can(Resource::Promotion, Action::Read)")]
    async fn verify_evidence_bundle(
        &self,
        ctx: &Context<'_>,
        bundle: Json<serde_json::Value>,
    ) -> async_graphql::Result<BundleVerification> {
        let check = ctx.data_unchecked::<Promotions>().verify_bundle(&bundle.0).await.gql()?;
        Ok(BundleVerification {
            valid: check.valid,
            chains: check
                .chains
                .into_iter()
                .map(|c| ChainCheck {
                    environment_id: c.environment_id,
                    records: c.records,
                    verified: c.verified,
                    legacy: c.legacy,
                    complete: c.complete,
                    first_broken_seq: c.first_broken.as_ref().map(|b| b.0),
                    first_broken_reason: c.first_broken.map(|b| b.1),
                })
                .collect(),
            manifests: check
                .manifests
                .into_iter()
                .map(|(release_id, valid)| ManifestCheck { release_id, valid })
                .collect(),
            problems: check.problems,
        })
    }
}
