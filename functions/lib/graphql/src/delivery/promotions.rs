//! Promotions in GraphQL.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use gantry_domain::access::{Action, Principal, Resource};
use gantry_domain::promotions::{self, PromotionId, Promotions};
use gantry_domain::service::Catalog;
use gantry_domain::values::{EnvironmentId, ReleaseId};

use crate::delivery::Environment;
use crate::error::IntoGraphql;
use crate::guard::Can;
use crate::types::Release;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "gantry_domain::promotions::PromotionStatus")]
pub enum PromotionStatus {
    PendingApproval,
    Approved,
    Deploying,
    Deployed,
    Rejected,
    Cancelled,
    Failed,
    RolledBack,
}

#[derive(SimpleObject)]
pub struct GateResult {
    /// `previous_environment`, `build_success`, `min_soak`, `manual_only` or `signatures`.
    pub gate: String,
    pub passed: bool,
    pub detail: String,
}

impl From<&promotions::GateResult> for GateResult {
    fn from(g: &promotions::GateResult) -> Self {
        Self { gate: g.gate.clone(), passed: g.passed, detail: g.detail.clone() }
    }
}

#[derive(SimpleObject)]
pub struct Approval {
    pub principal: String,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
}

pub struct Promotion(pub promotions::Promotion);

gantry_graphql_kit::connection!(PromotionConnection, PromotionEdge, Promotion);

#[Object]
impl Promotion {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn release(&self, ctx: &Context<'_>) -> async_graphql::Result<Release> {
        ctx.data_unchecked::<Catalog>().release(self.0.release_id).await.gql().map(Release)
    }
    async fn environment(&self, ctx: &Context<'_>) -> async_graphql::Result<Environment> {
        ctx.data_unchecked::<gantry_domain::service::Environments>()
            .environment(self.0.environment_id)
            .await
            .gql()
            .map(Environment)
    }
    async fn status(&self) -> PromotionStatus {
        self.0.status.into()
    }
    async fn requested_by(&self) -> &str {
        &self.0.requested_by
    }
    async fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }
    /// Requested by auto-promotion.
    async fn automatic(&self) -> bool {
        self.0.automatic
    }
    /// Every gate evaluated when the promotion was requested.
    #[graphql(complexity = "crate::cost::list(crate::cost::NESTED_LIST, child_complexity)")]
    async fn gates(&self) -> Vec<GateResult> {
        self.0.gates.iter().map(GateResult::from).collect()
    }
    #[graphql(complexity = "crate::cost::list(crate::cost::NESTED_LIST, child_complexity)")]
    async fn approvals(&self) -> Vec<Approval> {
        self.0
            .approvals
            .iter()
            .map(|a| Approval { principal: a.principal.clone(), comment: a.comment.clone(), at: a.at })
            .collect()
    }
    async fn required_approvals(&self) -> u32 {
        self.0.required_approvals
    }
    /// One per target of the environment, once deployment has started.
    #[graphql(complexity = "crate::cost::list(crate::cost::NESTED_LIST, child_complexity)")]
    async fn deployments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Deployment>> {
        Ok(promotions(ctx).deployments(self.0.id).await.gql()?.into_iter().map(Deployment).collect())
    }
    /// What has been reported of it to the CI system its release's `sourceRef` names.
    #[graphql(complexity = "crate::cost::list(crate::cost::NESTED_LIST, child_complexity)")]
    async fn reports(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<crate::reports::CiReport>> {
        let loader = ctx.data_unchecked::<crate::reports::PromotionReports>();
        let found = loader.load_one(self.0.id).await.gql()?.unwrap_or_default();
        Ok(found.into_iter().map(crate::reports::CiReport).collect())
    }
    /// The environment's steps as this promotion runs them.
    async fn steps(&self) -> Vec<crate::delivery::steps::StepRun> {
        self.0.steps.iter().cloned().map(crate::delivery::steps::StepRun).collect()
    }
    /// Why it was rejected, cancelled or failed.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// One target's part of a promotion.
pub struct Deployment(pub gantry_domain::deployments::Deployment);

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "gantry_domain::deployments::DeploymentState")]
pub enum DeploymentState {
    Pending,
    Running,
    Succeeded,
    Failed,
}

#[Object]
impl Deployment {
    async fn target_id(&self) -> ID {
        ID(self.0.target_id.to_string())
    }
    async fn target_name(&self) -> &str {
        &self.0.target_name
    }
    #[graphql(name = "type")]
    async fn kind(&self) -> crate::targets::TargetType {
        self.0.kind.into()
    }
    async fn state(&self) -> DeploymentState {
        self.0.state.into()
    }
    async fn attempt(&self) -> u32 {
        self.0.attempt
    }
    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// How its traffic moved, in order, for a target steered through a router: each
    /// weight, when it was set, and the verdict of its pause or analysis.
    async fn traffic_steps(&self) -> Vec<crate::traffic::TrafficStep> {
        self.0.traffic_steps.iter().map(Into::into).collect()
    }
    /// What it applied to the target, once it did.
    async fn artifact(&self) -> Option<crate::artifacts::DeploymentArtifact> {
        let (promotion_id, target_id) = (self.0.promotion_id, self.0.target_id);
        self.0.artifact.clone().map(|reference| crate::artifacts::DeploymentArtifact {
            key: gantry_domain::artifacts::ArtifactKey::of(promotion_id, target_id, &reference),
            reference,
        })
    }
}

fn promotions<'a>(ctx: &Context<'a>) -> &'a Promotions {
    ctx.data_unchecked::<Promotions>()
}

fn principal<'a>(ctx: &Context<'a>) -> &'a Principal {
    ctx.data_unchecked::<Principal>()
}

fn promotion_id(id: &ID) -> async_graphql::Result<PromotionId> {
    PromotionId::parse(id).gql()
}

#[derive(Default)]
pub struct PromotionQuery;

#[Object]
impl PromotionQuery {
    /// An environment's promotions, newest first.
    #[graphql(
        guard = "Can(Resource::Promotion, Action::Read)",
        complexity = "crate::cost::list(crate::cost::page(first), child_complexity)"
    )]
    async fn promotions(
        &self,
        ctx: &Context<'_>,
        environment_id: ID,
        status: Option<PromotionStatus>,
        first: Option<i64>,
        after: Option<String>,
    ) -> async_graphql::Result<PromotionConnection> {
        let environment = EnvironmentId::parse(&environment_id).gql()?;
        let page = promotions(ctx).list(environment, status.map(Into::into), first, after).await.gql()?;
        Ok(PromotionConnection::from_page(page, Promotion))
    }

    /// A promotion with its gate results and approvals.
    #[graphql(guard = "Can(Resource::Promotion, Action::Read)")]
    async fn promotion(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Promotion> {
        promotions(ctx).get(promotion_id(&id)?).await.gql().map(Promotion)
    }
}

#[derive(Default)]
pub struct PromotionMutation;

#[Object]
impl PromotionMutation {
    /// Asks to promote a release into an environment. `CONFLICT` when the release is a draft
    /// or deprecated, is not deployed in the previous environment, a gate fails, another
    /// promotion is active there, or (for one that needs no approval) a freeze window holds
    /// the environment: `overrideFreeze` (a reason, from an approver) lets it through.
    #[graphql(guard = "Can(Resource::Promotion, Action::Create)")]
    async fn request_promotion(
        &self,
        ctx: &Context<'_>,
        release_id: ID,
        environment_id: ID,
        comment: Option<String>,
        override_freeze: Option<String>,
    ) -> async_graphql::Result<Promotion> {
        let release = ReleaseId::parse(&release_id).gql()?;
        let environment = EnvironmentId::parse(&environment_id).gql()?;
        let request = promotions(ctx).request(release, environment, (comment, override_freeze), principal(ctx), false);
        request.await.gql().map(Promotion)
    }

    /// Approves, as a holder of one of the environment's approver roles. The last approval
    /// starts deploying, so a freeze window refuses it (`CONFLICT`) unless `overrideFreeze`
    /// gives a reason.
    #[graphql(guard = "Can(Resource::Promotion, Action::Approve)")]
    async fn approve_promotion(
        &self,
        ctx: &Context<'_>,
        id: ID,
        comment: Option<String>,
        override_freeze: Option<String>,
    ) -> async_graphql::Result<Promotion> {
        promotions(ctx)
            .approve(promotion_id(&id)?, (comment, override_freeze), principal(ctx))
            .await
            .gql()
            .map(Promotion)
    }

    #[graphql(guard = "Can(Resource::Promotion, Action::Approve)")]
    async fn reject_promotion(&self, ctx: &Context<'_>, id: ID, reason: String) -> async_graphql::Result<Promotion> {
        promotions(ctx).reject(promotion_id(&id)?, reason, principal(ctx)).await.gql().map(Promotion)
    }

    /// Rolls an environment back to the release before the current one (or `toReleaseId`)
    /// through the deployment path; holds auto-promotion into it until `releaseHold`.
    #[graphql(guard = "Can(Resource::Promotion, Action::Approve)")]
    async fn rollback_environment(
        &self,
        ctx: &Context<'_>,
        environment_id: ID,
        to_release_id: Option<ID>,
        reason: String,
    ) -> async_graphql::Result<Promotion> {
        let environment = EnvironmentId::parse(&environment_id).gql()?;
        let to = to_release_id.as_ref().map(|id| ReleaseId::parse(id)).transpose().gql()?;
        promotions(ctx).rollback(environment, to, reason, principal(ctx)).await.gql().map(Promotion)
    }

    /// Lets auto-promotion into the environment resume after a rollback.
    #[graphql(guard = "Can(Resource::Promotion, Action::Approve)")]
    async fn release_hold(&self, ctx: &Context<'_>, environment_id: ID) -> async_graphql::Result<bool> {
        let environment = EnvironmentId::parse(&environment_id).gql()?;
        promotions(ctx).release_hold(environment, principal(ctx)).await.gql().map(|()| true)
    }

    /// Cancels a promotion that has not started deploying (its requester, or an admin).
    #[graphql(guard = "Can(Resource::Promotion, Action::Create)")]
    async fn cancel_promotion(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Promotion> {
        promotions(ctx).cancel(promotion_id(&id)?, principal(ctx)).await.gql().map(Promotion)
    }
}

/// One decision, sealed: canonical JSON with its sha256, chained to the environment's
/// previous record and signed as a JWS.
pub struct EvidenceRecord(pub gantry_domain::evidence::EvidenceRecord);

gantry_graphql_kit::connection!(EvidenceConnection, EvidenceEdge, EvidenceRecord);

#[Object]
impl EvidenceRecord {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn environment_id(&self) -> ID {
        ID(self.0.environment_id.to_string())
    }
    async fn promotion_id(&self) -> Option<ID> {
        self.0.promotion_id.map(|p| ID(p.to_string()))
    }
    async fn release_id(&self) -> Option<ID> {
        self.0.release_id.map(|r| ID(r.to_string()))
    }
    /// Place in the environment's chain, from 1.
    async fn seq(&self) -> u64 {
        self.0.seq
    }
    /// `request`, `gate_evaluation`, `approval`, `rejection`, `cancellation`, ...
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    async fn payload(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(self.0.payload.clone())
    }
    async fn previous_hash(&self) -> Option<&str> {
        self.0.previous_hash.as_deref()
    }
    async fn hash(&self) -> &str {
        &self.0.hash
    }
    /// With `keyId`: the base64 signature of the DSSE envelope over the record's in-toto
    /// Statement. Without: a compact JWS (HS256) over the record id and hash.
    async fn signature(&self) -> &str {
        &self.0.signature
    }
    /// The id (JWK thumbprint) of the key that signed it, listed at
    /// `/.well-known/gantry/evidence-keys.json`; null for an HS256 record.
    async fn key_id(&self) -> Option<&str> {
        self.0.key_id.as_deref()
    }
}

#[derive(SimpleObject)]
pub struct ChainVerification {
    pub valid: bool,
    /// Records checked, up to and including the first broken one.
    pub checked: usize,
    pub first_broken_record_id: Option<ID>,
    /// The chain stops before the record its head names: its newest records were removed.
    pub truncated: bool,
}

#[derive(Default)]
pub struct EvidenceQuery;

#[Object]
impl EvidenceQuery {
    /// A promotion's evidence, oldest first.
    #[graphql(
        guard = "Can(Resource::Promotion, Action::Read)",
        complexity = "crate::cost::list(crate::cost::ROOT_LIST, child_complexity)"
    )]
    async fn evidence(&self, ctx: &Context<'_>, promotion_id: ID) -> async_graphql::Result<Vec<EvidenceRecord>> {
        let records = promotions(ctx).evidence_of(promotion_id_of(&promotion_id)?).await.gql()?;
        Ok(records.into_iter().map(EvidenceRecord).collect())
    }

    /// An environment's evidence, newest first.
    #[graphql(
        guard = "Can(Resource::Promotion, Action::Read)",
        complexity = "crate::cost::list(crate::cost::page(first), child_complexity)"
    )]
    async fn environment_evidence(
        &self,
        ctx: &Context<'_>,
        environment_id: ID,
        first: Option<i64>,
        after: Option<String>,
    ) -> async_graphql::Result<EvidenceConnection> {
        let environment = EnvironmentId::parse(&environment_id).gql()?;
        let page = promotions(ctx).environment_evidence(environment, first, after).await.gql()?;
        Ok(EvidenceConnection::from_page(page, EvidenceRecord))
    }

    /// Checks every record of an environment's chain: hashes, links and signatures.
    #[graphql(guard = "Can(Resource::Promotion, Action::Read)")]
    async fn verify_evidence_chain(
        &self,
        ctx: &Context<'_>,
        environment_id: ID,
    ) -> async_graphql::Result<ChainVerification> {
        let environment = EnvironmentId::parse(&environment_id).gql()?;
        let report = promotions(ctx).verify_evidence(environment).await.gql()?;
        Ok(ChainVerification {
            valid: report.valid,
            checked: report.checked,
            first_broken_record_id: report.first_broken.map(|id| ID(id.to_string())),
            truncated: report.truncated,
        })
    }
}

fn promotion_id_of(id: &ID) -> async_graphql::Result<PromotionId> {
    promotion_id(id)
}

/// Why auto-promotion into an environment is stopped.
#[derive(SimpleObject)]
pub struct Hold {
    pub reason: String,
    pub set_by: String,
    pub set_at: DateTime<Utc>,
}

/// Resolves the promotion-related fields of `Environment`.
pub(crate) async fn current_release(
    ctx: &Context<'_>,
    environment: EnvironmentId,
) -> async_graphql::Result<Option<Release>> {
    let page =
        promotions(ctx).list(environment, Some(promotions::PromotionStatus::Deployed), Some(1), None).await.gql()?;
    match page.items.first() {
        Some((_, p)) => ctx.data_unchecked::<Catalog>().release(p.release_id).await.gql().map(|r| Some(Release(r))),
        None => Ok(None),
    }
}

pub(crate) async fn history(
    ctx: &Context<'_>,
    environment: EnvironmentId,
    first: Option<i64>,
) -> async_graphql::Result<Vec<Promotion>> {
    let page = promotions(ctx).list(environment, None, first, None).await.gql()?;
    Ok(page.items.into_iter().map(|(_, p)| Promotion(p)).collect())
}

pub(crate) async fn hold(ctx: &Context<'_>, environment: EnvironmentId) -> async_graphql::Result<Option<Hold>> {
    let hold = promotions(ctx).hold(environment).await.gql()?;
    Ok(hold.map(|h| Hold { reason: h.reason, set_by: h.set_by, set_at: h.set_at }))
}
