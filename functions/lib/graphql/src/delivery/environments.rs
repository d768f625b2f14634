//! Environments: a stage on the promotion path, with its policy, its freeze windows, its
//! steps, its targets and what runs there.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use gantry_domain::model;

use crate::error::IntoGraphql;
use crate::types::Release;

/// A stage on the promotion path.
pub struct Environment(pub model::Environment);

#[Object]
impl Environment {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    async fn display_name(&self) -> Option<&str> {
        self.0.display_name.as_deref()
    }
    /// Position on the promotion path, lowest first.
    async fn order(&self) -> u32 {
        self.0.order
    }
    async fn required_approvals(&self) -> u32 {
        self.0.required_approvals
    }
    /// Roles whose holders may approve promotions here.
    async fn approver_roles(&self) -> Vec<&str> {
        self.0.policy.approver_roles.iter().map(|r| r.as_str()).collect()
    }
    async fn allow_self_approval(&self) -> bool {
        self.0.policy.allow_self_approval
    }
    /// Gate: the release's commit has a successful CI build.
    async fn require_build_success(&self) -> bool {
        self.0.policy.require_build_success
    }
    /// Gate: minutes the release must have run in the previous environment.
    async fn min_soak_minutes(&self) -> u32 {
        self.0.policy.min_soak_minutes
    }
    /// Gate: promotions here are never automatic.
    async fn manual_only(&self) -> bool {
        self.0.policy.manual_only
    }
    /// Releases deployed to the previous environment are proposed here by themselves.
    async fn auto_promote(&self) -> bool {
        self.0.policy.auto_promote
    }
    /// A failed deployment here rolls back by itself.
    async fn auto_rollback(&self) -> bool {
        self.0.policy.auto_rollback
    }
    /// A deployment rolled back within this many hours counts as a change failure.
    async fn change_failure_window_hours(&self) -> u32 {
        self.0.policy.change_failure_window_hours
    }
    /// Gate: every component must carry a cosign signature that verifies under one of
    /// these keys; no gate when empty.
    async fn signing_keys(&self) -> Vec<crate::delivery::signatures::SigningKey> {
        self.0.policy.signing_keys.iter().cloned().map(crate::delivery::signatures::SigningKey).collect()
    }
    /// Gate: keyless signers whose certificates stand as signatures.
    async fn signing_identities(&self) -> Vec<crate::delivery::keyless::SigningIdentityView> {
        self.0.policy.signing_identities.iter().cloned().map(crate::delivery::keyless::SigningIdentityView).collect()
    }
    /// The Sigstore trust root (`trusted_root.json`) keyless signatures are checked against.
    async fn sigstore_trust_root(&self) -> Option<&str> {
        self.0.policy.sigstore_trust_root.as_ref().map(|r| r.as_str())
    }
    /// The SLSA builder ids the admission policy trusts.
    async fn trusted_builders(&self) -> &[String] {
        &self.0.policy.trusted_builders
    }
    /// The environment's admission policy (Rego); null when the default one applies.
    async fn admission_policy(&self) -> Option<&str> {
        self.0.policy.admission_policy.as_deref()
    }
    /// Whether promotions here pass the supply-chain gate (signing keys, identities or a
    /// policy are set).
    async fn guards_supply_chain(&self) -> bool {
        self.0.policy.guards_supply_chain()
    }
    /// When promotions into it wait, unless an approver overrides the freeze.
    async fn freeze_windows(&self) -> Vec<crate::delivery::freeze::FreezeWindowView> {
        crate::delivery::freeze::windows(&self.0)
    }
    /// The freeze in force now, if any.
    async fn freeze(&self) -> Option<crate::delivery::freeze::Freeze> {
        crate::delivery::freeze::current(&self.0)
    }
    /// Where the environment's service is reached.
    async fn url(&self) -> Option<&str> {
        self.0.url.as_deref()
    }
    /// Where approval cards of promotions here are posted.
    async fn slack_channel(&self) -> Option<&str> {
        self.0.slack_channel.as_deref()
    }
    /// CI pipelines promotions here run before and after deploying, pre-deploy first.
    async fn steps(&self) -> Vec<crate::delivery::steps::PromotionStep> {
        self.0.steps.iter().cloned().map(crate::delivery::steps::PromotionStep).collect()
    }
    /// The release that runs here: the last one deployed and not rolled back.
    async fn current_release(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Release>> {
        crate::delivery::promotions::current_release(ctx, self.0.id).await
    }
    /// Promotions into this environment, newest first (20 unless `first` says otherwise).
    #[graphql(complexity = "crate::cost::list(crate::cost::page(first), child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i64>,
    ) -> async_graphql::Result<Vec<crate::delivery::promotions::Promotion>> {
        crate::delivery::promotions::history(ctx, self.0.id, first).await
    }
    /// Set by a rollback: auto-promotion into this environment waits for `releaseHold`.
    async fn hold(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<crate::delivery::promotions::Hold>> {
        crate::delivery::promotions::hold(ctx, self.0.id).await
    }
    /// Where releases of this environment run.
    #[graphql(complexity = "crate::cost::list(crate::cost::NESTED_LIST, child_complexity)")]
    async fn targets(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<crate::targets::DeploymentTarget>> {
        let targets = ctx.data_unchecked::<gantry_domain::targets::Targets>().of_environment(self.0.id).await.gql()?;
        Ok(targets.into_iter().map(crate::targets::DeploymentTarget).collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
