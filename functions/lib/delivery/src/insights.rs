//! Delivery insights: the four DORA figures of an environment and of each component in it.
//!
//! They are kept as counters in one bucket per UTC day (and per component), which the write
//! ending a promotion adds to in the same transaction. Reading a window therefore costs a
//! request per page of buckets, never one per deployment.
//!
//! - *Deployment frequency*: promotions that ended `DEPLOYED`, per day of the window.
//! - *Lead time for changes*: from the release's commit time to `DEPLOYED`. The commit time is
//!   the release's `sourceRef.committedAt`, or the one a CI build of its commit reported;
//!   where neither is known the deployment is counted as unknown, never guessed.
//! - *Change failure rate*: promotions that failed while deploying, or were rolled back within
//!   the environment's `changeFailureWindowHours` of deploying, out of all that deployed.
//! - *Time to restore*: from the first failure after a healthy deployment to the next one.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::environments::{Environment, EnvironmentRepository};
use crate::error::{DomainError, Result};
use crate::ids::{ComponentId, EnvironmentId};

/// The longest window one request reads: a year and a day.
pub const MAX_DAYS: i64 = 366;

/// What a bucket counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Environment,
    Component(ComponentId),
}

/// Counters of one bucket; every field only ever grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Counts {
    /// Promotions that ended `DEPLOYED`.
    pub succeeded: u64,
    /// Promotions that failed while deploying (or in a post-deploy step).
    pub failed: u64,
    /// Deployed promotions rolled back within the environment's window.
    pub rolled_back: u64,
    /// Seconds from commit to `DEPLOYED`, summed over `lead_count` deployments.
    pub lead_seconds: u64,
    pub lead_count: u64,
    /// Deployments whose commit time is unknown.
    pub lead_unknown: u64,
    /// Seconds from the first failure to the next healthy deployment, summed.
    pub restore_seconds: u64,
    pub restore_count: u64,
}

impl Counts {
    /// Every counter with its stored name, in one order.
    pub fn fields(&self) -> [(&'static str, u64); 8] {
        [
            ("succeeded", self.succeeded),
            ("failed", self.failed),
            ("rolledBack", self.rolled_back),
            ("leadSeconds", self.lead_seconds),
            ("leadCount", self.lead_count),
            ("leadUnknown", self.lead_unknown),
            ("restoreSeconds", self.restore_seconds),
            ("restoreCount", self.restore_count),
        ]
    }

    fn add(&mut self, o: &Counts) {
        self.succeeded += o.succeeded;
        self.failed += o.failed;
        self.rolled_back += o.rolled_back;
        self.lead_seconds += o.lead_seconds;
        self.lead_count += o.lead_count;
        self.lead_unknown += o.lead_unknown;
        self.restore_seconds += o.restore_seconds;
        self.restore_count += o.restore_count;
    }

    pub fn is_empty(&self) -> bool {
        self.fields().iter().all(|(_, n)| *n == 0)
    }
}

/// The counters one day adds for one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub day: NaiveDate,
    pub scope: Scope,
    pub counts: Counts,
}

/// How an environment's health moves with a promotion's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthChange {
    Keep,
    /// It fails from this time on, unless it already was.
    Failing(DateTime<Utc>),
    /// It was failing since this time (as read) and is healthy again.
    Restored(DateTime<Utc>),
}

/// What a promotion's end adds to its environment's figures, written with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub environment_id: EnvironmentId,
    pub buckets: Vec<Bucket>,
    pub health: HealthChange,
}

impl Tally {
    pub fn none(environment_id: EnvironmentId) -> Self {
        Self { environment_id, buckets: Vec::new(), health: HealthChange::Keep }
    }
}

/// How a promotion ended, as the figures see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It deployed. `lead` is from commit to now (`None`: unknown); a rollback has no lead.
    Deployed { lead: Option<u64>, rollback: bool },
    /// It failed while deploying.
    Failed,
    /// It had deployed at `deployed_at` and is rolled back now; a change failure when
    /// that is within the environment's window.
    RolledBack { deployed_at: DateTime<Utc>, within_window: bool },
}

/// The counters and health change of one promotion's end at `at`, for the environment and
/// each component it changed there; `failing_since` is the environment's health as read.
pub fn tally(
    environment_id: EnvironmentId,
    end: End,
    at: DateTime<Utc>,
    changed: &[ComponentId],
    failing_since: Option<DateTime<Utc>>,
) -> Tally {
    let mut counts = Counts::default();
    let (mut day, mut health) = (at.date_naive(), HealthChange::Keep);
    match end {
        End::Deployed { lead, rollback } => {
            counts.succeeded = 1;
            match (rollback, lead) {
                (true, _) => {}
                (false, Some(seconds)) => (counts.lead_seconds, counts.lead_count) = (seconds, 1),
                (false, None) => counts.lead_unknown = 1,
            }
        }
        End::Failed => {
            counts.failed = 1;
            health = HealthChange::Failing(at);
        }
        End::RolledBack { within_window: false, .. } => return Tally::none(environment_id),
        End::RolledBack { deployed_at, within_window: true } => {
            counts.rolled_back = 1;
            day = deployed_at.date_naive();
            health = HealthChange::Failing(at);
        }
    }
    let mut buckets: Vec<Bucket> =
        changed.iter().map(|c| Bucket { day, scope: Scope::Component(*c), counts }).collect();
    if let (End::Deployed { .. }, Some(since)) = (end, failing_since) {
        counts.restore_seconds = seconds_between(since, at);
        counts.restore_count = 1;
        health = HealthChange::Restored(since);
    }
    buckets.insert(0, Bucket { day, scope: Scope::Environment, counts });
    Tally { environment_id, buckets, health }
}

/// Whole seconds from `from` to `to`, zero when `to` is earlier.
pub fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_seconds()).unwrap_or(0)
}

/// A day as `YYYY-MM-DD`; `name` says which in the error.
pub fn parse_day(name: &str, raw: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| DomainError::validation(format!("{name} must be a day as YYYY-MM-DD, not {:?}", truncated(raw))))
}

fn truncated(raw: &str) -> String {
    raw.chars().take(40).collect()
}

/// Days `from` to `to`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Window {
    /// A window of at most [`MAX_DAYS`] days, `from` not after `to`.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Self> {
        if from > to {
            return Err(DomainError::validation(format!("from ({from}) must not be after to ({to})")));
        }
        let days = (to - from).num_days() + 1;
        if days > MAX_DAYS {
            return Err(DomainError::validation(format!("a window holds at most {MAX_DAYS} days, not {days}")));
        }
        Ok(Self { from, to })
    }

    pub fn days(&self) -> u64 {
        (self.to - self.from).num_days() as u64 + 1
    }

    pub fn each_day(&self) -> impl Iterator<Item = NaiveDate> + use<> {
        self.from.iter_days().take(self.days() as usize)
    }
}

/// The figures of some counters over a window's days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    pub counts: Counts,
    pub days: u64,
}

impl Figures {
    /// Promotions that deployed, whether they stayed or not.
    pub fn deployments(&self) -> u64 {
        self.counts.succeeded + self.counts.failed
    }

    /// Successful deployments per day.
    pub fn per_day(&self) -> f64 {
        self.counts.succeeded as f64 / self.days.max(1) as f64
    }

    /// Failed or rolled-back deployments out of all; `None` without deployments.
    pub fn change_failure_rate(&self) -> Option<f64> {
        let all = self.deployments();
        (all > 0).then(|| (self.counts.failed + self.counts.rolled_back) as f64 / all as f64)
    }

    pub fn lead_time_seconds(&self) -> Option<f64> {
        mean(self.counts.lead_seconds, self.counts.lead_count)
    }

    pub fn restore_seconds(&self) -> Option<f64> {
        mean(self.counts.restore_seconds, self.counts.restore_count)
    }
}

fn mean(sum: u64, count: u64) -> Option<f64> {
    (count > 0).then(|| sum as f64 / count as f64)
}

/// An environment's figures over a window: in all, day by day, and per component.
#[derive(Debug, Clone, PartialEq)]
pub struct Insights {
    pub environment_id: EnvironmentId,
    pub window: Window,
    pub total: Figures,
    /// Every day of the window, in order, zero where nothing happened.
    pub daily: Vec<(NaiveDate, Counts)>,
    /// Each component with a bucket in the window, in id order.
    pub components: Vec<(ComponentId, Figures)>,
}

/// Sums a window's buckets.
pub fn summarise(environment_id: EnvironmentId, window: Window, buckets: &[Bucket]) -> Insights {
    let mut daily: BTreeMap<NaiveDate, Counts> = window.each_day().map(|d| (d, Counts::default())).collect();
    let mut components: BTreeMap<ComponentId, Counts> = BTreeMap::new();
    let mut total = Counts::default();
    for b in buckets.iter().filter(|b| (window.from..=window.to).contains(&b.day)) {
        match b.scope {
            Scope::Environment => {
                total.add(&b.counts);
                daily.entry(b.day).or_default().add(&b.counts);
            }
            Scope::Component(c) => components.entry(c).or_default().add(&b.counts),
        }
    }
    let days = window.days();
    Insights {
        environment_id,
        window,
        total: Figures { counts: total, days },
        daily: daily.into_iter().collect(),
        components: components.into_iter().map(|(c, counts)| (c, Figures { counts, days })).collect(),
    }
}

/// Storage of the counters and of each environment's health.
#[async_trait]
pub trait InsightsRepository: Send + Sync {
    /// Every bucket of the environment in the window, in one read per page.
    async fn buckets(&self, environment: EnvironmentId, window: &Window) -> Result<Vec<Bucket>>;
    /// Since when the environment fails, if it does.
    async fn failing_since(&self, environment: EnvironmentId) -> Result<Option<DateTime<Utc>>>;
}

/// Reads an environment's insights.
#[derive(Clone)]
pub struct DeliveryInsights {
    repo: Arc<dyn InsightsRepository>,
    environments: Arc<dyn EnvironmentRepository>,
}

impl DeliveryInsights {
    pub fn new(repo: Arc<dyn InsightsRepository>, environments: Arc<dyn EnvironmentRepository>) -> Self {
        Self { repo, environments }
    }

    /// The environment and its figures over `window`: one read of its buckets (a page per
    /// 1 MB of them), whatever the number of deployments.
    #[tracing::instrument(skip_all, fields(environment_id = %environment), err(level = "info"))]
    pub async fn read(&self, environment: EnvironmentId, window: Window) -> Result<(Environment, Insights)> {
        let found = self.environments.get_environment(environment).await?;
        let found = found.ok_or_else(|| DomainError::not_found("environment", environment))?;
        let buckets = self.repo.buckets(environment, &window).await?;
        Ok((found, summarise(environment, window, &buckets)))
    }
}

#[cfg(test)]
#[path = "insights_tests.rs"]
mod tests;
