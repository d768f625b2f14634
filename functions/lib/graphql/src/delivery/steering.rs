//! Steering a deploying promotion's rollouts behind a router: abort, or promote in full.

use async_graphql::{Context, ID, Object};
use gantry_domain::access::{Action, Principal, Resource};
use gantry_domain::promotions::{PromotionId, Promotions};
use gantry_domain::traffic::Control;

use crate::delivery::promotions::Promotion;
use crate::error::IntoGraphql;
use crate::guard::Can;

#[derive(Default)]
pub struct TrafficMutation;

#[Object]
impl TrafficMutation {
    /// Aborts a deploying promotion's steered rollouts: every request goes back to the
    /// stable version at once and the new version is removed; the promotion fails. For
    /// whoever may approve in its environment.
    #[graphql(guard = "Can(Resource::Promotion, Action::Approve)")]
    async fn abort_promotion(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Promotion> {
        steer(ctx, &id, Control::Abort).await
    }

    /// Skips the remaining canary steps (or ends an A/B test) of a deploying promotion's
    /// steered rollouts: the new version takes every request.
    #[graphql(guard = "Can(Resource::Promotion, Action::Approve)")]
    async fn promote_full(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Promotion> {
        steer(ctx, &id, Control::PromoteFull).await
    }
}

async fn steer(ctx: &Context<'_>, id: &ID, control: Control) -> async_graphql::Result<Promotion> {
    let id = PromotionId::parse(id).gql()?;
    let who = ctx.data_unchecked::<Principal>();
    ctx.data_unchecked::<Promotions>().steer(id, control, who).await.gql().map(Promotion)
}
