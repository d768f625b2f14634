//! Deployment reports to CI systems, as a promotion shows them, loaded in batches.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use async_graphql::{Enum, ID, Object};
use chrono::{DateTime, Utc};
use gantry_domain::DomainError;
use gantry_domain::ids::PromotionId;
use gantry_domain::reports::{self, Reports};

use crate::ci::CiProvider;

/// The request's loader of promotions' reports.
pub type PromotionReports = DataLoader<ReportsLoader, HashMapCache>;

pub struct ReportsLoader {
    reports: Reports,
}

impl ReportsLoader {
    pub fn for_request(reports: Reports) -> PromotionReports {
        crate::loader::for_request(Self { reports })
    }
}

impl Loader<PromotionId> for ReportsLoader {
    type Value = Vec<reports::CiReport>;
    type Error = DomainError;

    async fn load(&self, keys: &[PromotionId]) -> Result<HashMap<PromotionId, Self::Value>, DomainError> {
        Ok(self.reports.of_many(keys).await?.into_iter().map(|r| (r.promotion_id, r.reports)).collect())
    }
}

/// A deployment's state as a CI system was told it.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "gantry_domain::ci::ReportState")]
pub enum CiReportState {
    Queued,
    InProgress,
    Success,
    Failure,
    Cancelled,
    Inactive,
}

/// What has been reported of a promotion to one CI integration.
pub struct CiReport(pub reports::CiReport);

#[Object]
impl CiReport {
    async fn integration_id(&self) -> ID {
        ID(self.0.integration_id.to_string())
    }
    async fn provider(&self) -> CiProvider {
        self.0.provider.into()
    }
    /// The CI system's id of the deployment (GitHub's deployment id).
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    /// The last state the CI system took.
    async fn state(&self) -> Option<CiReportState> {
        self.0.state.map(Into::into)
    }
    /// Deliveries that failed since the last one that went through.
    async fn attempts(&self) -> u32 {
        self.0.attempts
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
