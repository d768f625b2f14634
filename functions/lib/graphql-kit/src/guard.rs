//! Authorization on every root field: `#[graphql(guard = "Can(resource, action)")]`.

use async_graphql::{Context, Guard};
use gantry_kernel::DomainError;
use gantry_trust::access::{Action, Principal, Resource};

use crate::error::IntoGraphql;

pub struct Can(pub Resource, pub Action);

impl Guard for Can {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let principal =
            ctx.data_opt::<Principal>().ok_or_else(|| DomainError::Unauthorized("no credentials".into())).gql()?;
        principal.require(self.0, self.1).gql()
    }
}
