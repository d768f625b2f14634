//! Promotions: a release moving into an environment. A request is checked (the release is
//! live, it runs healthily in the previous environment, no other promotion is active there)
//! and gated (build success, soak time, manual-only), then approved by distinct principals
//! holding an approver role.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;

use crate::access::Principal;
use crate::builds::{BuildStatus, Builds};
use crate::deployments::{DeployJob, DeployQueue, Deployment, DeploymentRepository, DeploymentState, results_payload};
use crate::error::{DomainError, Result};
use crate::evidence::{
    ChainHead, ChainReport, EvidenceDraft, EvidenceRecord, EvidenceRepository, EvidenceSigner, chain_moved, seal,
    verify_chain,
};
use crate::ids::{EnvironmentId, ReleaseId};
use crate::model::{DeploymentStatus, Environment, Release, ReleaseEnvironmentRecord, ReleaseStatus};
use crate::ports::{Page, PageRequest, Repository};
use crate::targets::TargetRepository;
use crate::values::long_text;

pub use crate::ids::PromotionId;

pub use crate::model::PromotionStatus;

/// The outcome of one gate, kept on the promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateResult {
    pub gate: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub principal: String,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Promotion {
    pub id: PromotionId,
    pub release_id: ReleaseId,
    pub environment_id: EnvironmentId,
    pub status: PromotionStatus,
    pub requested_by: String,
    pub comment: Option<String>,
    /// Requested by auto-promotion rather than a person.
    pub automatic: bool,
    pub gates: Vec<GateResult>,
    pub approvals: Vec<Approval>,
    pub required_approvals: u32,
    pub reason: Option<String>,
    /// The environment's steps as this promotion runs them, copied when it starts.
    #[serde(default)]
    pub steps: Vec<crate::steps::StepRun>,
    /// Whether its states are reported to a CI system: its release named a commit in a CI
    /// integration's repository when it was requested. Nothing is queued for one that does
    /// not. (Promotions stored without it report, as they did.)
    #[serde(default = "reported_before")]
    pub reports_to_ci: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revision: u64,
}

fn reported_before() -> bool {
    true
}

impl Promotion {
    /// Whether it is a rollback: it restores what ran before, and changes nothing new.
    pub fn is_rollback(&self) -> bool {
        self.gates.iter().any(|g| g.gate == "rollback")
    }

    /// Whether it failed before deploying: a pre-deploy step did not pass.
    pub fn stopped_before_deploying(&self) -> bool {
        self.status == PromotionStatus::Failed
            && self
                .steps
                .iter()
                .any(|s| s.spec.phase == crate::steps::Phase::PreDeploy && !s.passed() && s.finished_at.is_some())
    }
}

pub use crate::evidence::EvidenceAppend;

/// What reports read of promotions and their environments, through their own port.
pub struct ReportedFacts {
    pub promotions: Arc<dyn PromotionRepository>,
    pub environments: Arc<dyn crate::environments::EnvironmentRepository>,
}

#[async_trait]
impl crate::reports::ReportedPromotions for ReportedFacts {
    async fn reported(&self, id: PromotionId) -> Result<Option<crate::reports::ReportedPromotion>> {
        Ok(self.promotions.get_promotion(id).await?.map(|p| crate::reports::ReportedPromotion {
            id: p.id,
            release_id: p.release_id,
            environment_id: p.environment_id,
            status: p.status,
            deployed: !p.stopped_before_deploying(),
        }))
    }

    async fn deployed_before(&self, environment: EnvironmentId, except: PromotionId) -> Result<Option<PromotionId>> {
        let page = PageRequest { first: 2, after: None };
        let deployed = self.promotions.list_promotions(environment, Some(PromotionStatus::Deployed), &page).await?;
        Ok(deployed.items.into_iter().map(|(_, p)| p.id).find(|id| *id != except))
    }

    async fn reported_environment(&self, id: EnvironmentId) -> Result<Option<crate::reports::ReportedEnvironment>> {
        let environments = self.environments.list_environments().await?;
        let last = environments.iter().map(|e| e.order).max();
        Ok(environments.into_iter().find(|e| e.id == id).map(|e| crate::reports::ReportedEnvironment {
            id: e.id,
            name: e.name.to_string(),
            production: Some(e.order) == last,
            url: e.url,
        }))
    }
}

#[async_trait]
pub trait PromotionRepository: Send + Sync {
    /// Moves `before` to `after` (`DEPLOYING`) and writes its deployments and evidence, in
    /// one transaction.
    async fn begin_deployments(
        &self,
        before: &Promotion,
        after: &Promotion,
        deployments: &[Deployment],
        evidence: EvidenceAppend<'_>,
    ) -> Result<()>;
    /// Stores a new active promotion with its evidence, and when it is created `DEPLOYING`,
    /// its deployments and its release's move (`before`, `after`) in the same transaction;
    /// `Conflict` if another is active in its environment, or the release changed meanwhile.
    async fn create_promotion(
        &self,
        promotion: &Promotion,
        started: (&[Deployment], Option<(&Release, &Release)>),
        evidence: EvidenceAppend<'_>,
    ) -> Result<()>;
    async fn get_promotion(&self, id: PromotionId) -> Result<Option<Promotion>>;
    /// Replaces `before` with `after` if unchanged meanwhile, with its evidence and what it
    /// adds to the environment's insights; frees the environment when `after` is no longer
    /// active.
    async fn update_promotion(
        &self,
        before: &Promotion,
        after: &Promotion,
        evidence: EvidenceAppend<'_>,
        tally: &crate::insights::Tally,
    ) -> Result<()>;
    /// Puts (`Some`) or lifts (`None`) an environment's auto-promotion hold, with evidence.
    async fn set_hold(
        &self,
        environment: EnvironmentId,
        hold: Option<&Hold>,
        evidence: EvidenceAppend<'_>,
    ) -> Result<()>;
    async fn hold(&self, environment: EnvironmentId) -> Result<Option<Hold>>;
    /// Marks a promotion as swept at `now` (a job of its was queued again); `false` when it
    /// changed since it was read, or a sweep since `before` marked it.
    async fn mark_swept(&self, promotion: &Promotion, now: DateTime<Utc>, before: DateTime<Utc>) -> Result<bool>;
    /// Newest first.
    async fn list_promotions(
        &self,
        environment: EnvironmentId,
        status: Option<PromotionStatus>,
        page: &PageRequest,
    ) -> Result<Page<Promotion>>;
}

/// A stop on auto-promotion into an environment, set by a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub reason: String,
    pub set_by: String,
    pub set_at: DateTime<Utc>,
}

/// The principal automatic decisions are taken as.
pub fn system(what: &str) -> Principal {
    Principal::new(format!("gantry:{what}"), Vec::new(), Vec::new())
}

/// Where promotions hand over to deployments.
#[derive(Clone)]
pub struct Rollout {
    pub targets: Arc<dyn TargetRepository>,
    pub deployments: Arc<dyn DeploymentRepository>,
    pub queue: Arc<dyn DeployQueue>,
    /// Where deployment reports to CI systems are queued.
    pub reports: Arc<dyn crate::reports::ReportQueue>,
    /// What runs the environments' CI steps.
    pub steps: StepRunner,
    /// Where promotion ends are counted, and each environment's health read.
    pub insights: Arc<dyn crate::insights::InsightsRepository>,
    /// What deployments applied.
    pub artifacts: Arc<dyn crate::artifacts::ArtifactRepository>,
    /// Where events for notifications and approval cards are published.
    pub events: Arc<dyn crate::notifications::EventSink>,
    /// What reads the signatures and attestations of a release's images.
    pub supply_chain: crate::supply_chain::SupplyChain,
    /// What evaluates admission policies.
    pub admission: Arc<dyn crate::admission::AdmissionEngine>,
}

#[derive(Clone)]
pub struct Promotions {
    promotions: Arc<dyn PromotionRepository>,
    repo: Arc<dyn Repository>,
    builds: Builds,
    evidence: Arc<dyn EvidenceRepository>,
    signer: Arc<dyn EvidenceSigner>,
    /// The public keys evidence and manifests are signed with, for bundles.
    key_set: crate::evidence::EvidenceKeySet,
    rollout: Rollout,
}

/// What a promotion write does besides storing the promotion.
enum Write<'a> {
    /// A new promotion.
    Create,
    /// A change of this stored promotion, with what it adds to the insights.
    Update(&'a Promotion, &'a crate::insights::Tally),
    /// The move of this approved promotion to `DEPLOYING`, with its deployments.
    Begin(&'a Promotion, &'a [Deployment]),
    /// A new promotion, approved as requested (this) and `DEPLOYING` at once, with its
    /// deployments and its release's move to `PROMOTING` (when it moves).
    Start(&'a Promotion, &'a [Deployment], Option<(&'a Release, &'a Release)>),
}

/// How often a decision is retried when another decision extended the evidence chain first.
const CHAIN_RETRIES: usize = 8;

/// A reason a person must give: trimmed, not blank, bounded.
fn required_reason(raw: String) -> Result<String> {
    long_text("reason", Some(raw), 2000)?.ok_or_else(|| DomainError::validation("reason must not be blank"))
}

fn page_size(first: Option<i64>) -> Result<usize> {
    match first {
        None => Ok(crate::service::DEFAULT_PAGE),
        Some(n) if (1..=crate::service::MAX_PAGE as i64).contains(&n) => Ok(n as usize),
        Some(n) => {
            Err(DomainError::validation(format!("first must be between 1 and {}, not {n}", crate::service::MAX_PAGE)))
        }
    }
}

mod admission;
mod analysis;
mod bundles;
mod decisions;
mod freeze;
pub mod gates;
mod insights;
mod request;
mod rollback;
mod rollout;
mod steps;
mod sweep;
mod traffic;

pub use sweep::{STALLED, SWEEP_GRACE_SECONDS, Sweep, SweepKind};

pub use admission::SupplyChainVerdict;
pub use bundles::{BundleScope, MAX_BUNDLE_RECORDS};
pub use request::PolicyEvaluation;
pub use steps::StepRunner;

impl Promotions {
    pub fn new(
        promotions: Arc<dyn PromotionRepository>,
        repo: Arc<dyn Repository>,
        builds: Builds,
        evidence: Arc<dyn EvidenceRepository>,
        (signer, key_set): (Arc<dyn EvidenceSigner>, crate::evidence::EvidenceKeySet),
        rollout: Rollout,
    ) -> Self {
        Self { promotions, repo, builds, evidence, signer, key_set, rollout }
    }

    fn draft(&self, p: &Promotion, kind: &'static str, actor: &str, payload: serde_json::Value) -> EvidenceDraft {
        EvidenceDraft {
            environment_id: p.environment_id,
            promotion_id: Some(p.id),
            release_id: Some(p.release_id),
            kind,
            actor: actor.to_owned(),
            payload,
        }
    }

    /// Runs `write` with evidence sealed on the environment's current chain head, again on
    /// the new head when another decision got there first.
    async fn with_evidence<F, Fut>(
        &self,
        environment: EnvironmentId,
        drafts: Vec<EvidenceDraft>,
        write: F,
    ) -> Result<()>
    where
        F: Fn(Vec<EvidenceRecord>, Option<ChainHead>) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        for _ in 0..CHAIN_RETRIES {
            let head = self.evidence.chain_head(environment).await?;
            let records = seal(drafts.clone(), head.as_ref(), self.signer.as_ref()).await?;
            match write(records, head).await {
                Err(err) if chain_moved(&err) => continue,
                other => return other,
            }
        }
        Err(DomainError::conflict("too many decisions at once in this environment; retry"))
    }

    /// Queues a report of the promotion's state for the CI system its release names, if
    /// any (nothing is queued when it names none); never fails. Whether it was queued.
    pub async fn announce(&self, promotion: &Promotion, state: crate::ci::ReportState) -> bool {
        promotion.reports_to_ci && self.announce_id(promotion.id, state).await
    }

    /// As [`Self::announce`], for a promotion known to report to CI.
    pub async fn announce_id(&self, id: PromotionId, state: crate::ci::ReportState) -> bool {
        crate::reports::announce(self.rollout.reports.as_ref(), id, state).await
    }

    /// The promotion's deployments, one per target.
    pub async fn deployments(&self, id: PromotionId) -> Result<Vec<Deployment>> {
        self.rollout.deployments.deployments_of(id).await
    }

    /// What these deployments applied, in one batch (for data loaders).
    pub async fn artifacts(&self, named: &[crate::artifacts::ArtifactKey]) -> Result<Vec<crate::artifacts::Artifact>> {
        self.rollout.artifacts.artifacts(named).await
    }

    /// The promotion's records; `NotFound` when there is no such promotion (the store reads
    /// the promotion for the list of its records anyway).
    pub async fn evidence_of(&self, id: PromotionId) -> Result<Vec<EvidenceRecord>> {
        self.evidence.evidence_of_promotion(id).await
    }

    pub async fn environment_evidence(
        &self,
        environment: EnvironmentId,
        first: Option<i64>,
        after: Option<String>,
    ) -> Result<Page<EvidenceRecord>> {
        let first = page_size(first)?;
        self.evidence.environment_evidence(environment, &PageRequest { first, after }).await
    }

    /// Walks an environment's whole chain.
    #[instrument(skip_all, fields(environment_id = %environment), err(level = "info"))]
    pub async fn verify_evidence(&self, environment: EnvironmentId) -> Result<ChainReport> {
        self.environment(environment).await?;
        let head = self.evidence.chain_head(environment).await?;
        verify_chain(head.as_ref(), &self.evidence.evidence_chain(environment).await?, self.signer.as_ref()).await
    }

    pub async fn get(&self, id: PromotionId) -> Result<Promotion> {
        self.promotions.get_promotion(id).await?.ok_or_else(|| DomainError::not_found("promotion", id))
    }

    pub async fn list(
        &self,
        environment: EnvironmentId,
        status: Option<PromotionStatus>,
        first: Option<i64>,
        after: Option<String>,
    ) -> Result<Page<Promotion>> {
        let first = match first {
            None => crate::service::DEFAULT_PAGE,
            Some(n) if (1..=crate::service::MAX_PAGE as i64).contains(&n) => n as usize,
            Some(n) => {
                return Err(DomainError::validation(format!(
                    "first must be between 1 and {}, not {n}",
                    crate::service::MAX_PAGE
                )));
            }
        };
        self.promotions.list_promotions(environment, status, &PageRequest { first, after }).await
    }

    async fn environment(&self, id: EnvironmentId) -> Result<Environment> {
        self.repo.get_environment(id).await?.ok_or_else(|| DomainError::not_found("environment", id))
    }

    async fn release(&self, id: ReleaseId) -> Result<Release> {
        self.repo.get_release(id).await?.ok_or_else(|| DomainError::not_found("release", id))
    }

    async fn save(
        &self,
        before: &Promotion,
        after: Promotion,
        kind: &'static str,
        actor: &str,
        payload: serde_json::Value,
    ) -> Result<Promotion> {
        self.save_with(before, after, vec![(kind, payload)], actor).await
    }

    /// As [`Promotions::save`], with several records of `actor`.
    async fn save_with(
        &self,
        before: &Promotion,
        mut after: Promotion,
        records: Vec<(&'static str, serde_json::Value)>,
        actor: &str,
    ) -> Result<Promotion> {
        after.updated_at = Utc::now();
        after.revision = before.revision + 1;
        // What the change adds to the insights, read before the release's record moves: it
        // compares the release with what ran.
        let (tally, release) = self.tally(before, &after).await?;
        // The release's record here is written before the promotion reads DEPLOYED, so whoever
        // sees DEPLOYED can promote onwards: the next environment's gate reads that record.
        if after.status == PromotionStatus::Deployed && before.status != PromotionStatus::Deployed {
            self.record_deployed(&after, release).await?;
        }
        let drafts = records.into_iter().map(|(kind, payload)| self.draft(&after, kind, actor, payload)).collect();
        self.write(Write::Update(before, &tally), &after, drafts, actor).await?;
        Ok(after)
    }

    /// The one place a promotion is written: with its evidence sealed on the chain head,
    /// then the events its change makes are published, so no path can skip one.
    async fn write(&self, write: Write<'_>, after: &Promotion, drafts: Vec<EvidenceDraft>, actor: &str) -> Result<()> {
        self.with_evidence(after.environment_id, drafts, |records, head| {
            let write = &write;
            async move {
                let evidence = EvidenceAppend { records: &records, head: head.as_ref() };
                match *write {
                    Write::Create => self.promotions.create_promotion(after, (&[], None), evidence).await,
                    Write::Start(_, deployments, release) => {
                        self.promotions.create_promotion(after, (deployments, release), evidence).await
                    }
                    Write::Update(before, tally) => {
                        self.promotions.update_promotion(before, after, evidence, tally).await
                    }
                    Write::Begin(before, deployments) => {
                        self.promotions.begin_deployments(before, after, deployments, evidence).await
                    }
                }
            }
        })
        .await?;
        tracing::info!(promotion_id = %after.id, status = after.status.as_str(), "promotion written");
        let events = match write {
            Write::Create => Self::events(None, after, actor),
            Write::Update(before, _) | Write::Begin(before, _) => Self::events(Some(before), after, actor),
            // As if it were created approved, then began: the events of both, in order.
            Write::Start(approved, ..) => {
                let mut events = Self::events(None, approved, &approved.requested_by);
                events.extend(Self::events(Some(approved), after, actor));
                events
            }
        };
        // Never fails: an event that cannot be queued is logged.
        self.rollout.events.publish(&events).await;
        Ok(())
    }

    /// The events the change from `before` (`None`: new) to `after` makes.
    fn events(before: Option<&Promotion>, after: &Promotion, actor: &str) -> Vec<crate::notifications::PromotionEvent> {
        let counted = |p: &Promotion| (p.status, p.approvals.len());
        let kinds = crate::notifications::events_between(before.map(counted), counted(after));
        kinds
            .into_iter()
            .map(|kind| crate::notifications::PromotionEvent {
                id: crate::ids::EventId::new(),
                kind,
                promotion_id: after.id,
                environment_id: after.environment_id,
                release_id: after.release_id,
                status: after.status,
                approvals: after.approvals.len() as u32,
                required_approvals: after.required_approvals,
                actor: actor.to_owned(),
                at: Utc::now(),
            })
            .collect()
    }
}
