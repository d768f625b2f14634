//! Delivery insights: the four DORA figures of an environment over a window of days.

use async_graphql::{Context, ID, InputValueError, InputValueResult, Object, Scalar, ScalarType, SimpleObject, Value};
use chrono::NaiveDate;
use gantry_domain::access::{Action, Resource};
use gantry_domain::insights::{Counts, DeliveryInsights, Figures, Insights, Window, parse_day};
use gantry_domain::values::EnvironmentId;

use crate::error::IntoGraphql;
use crate::guard::Can;
use crate::loader::Components;

/// A calendar day, `YYYY-MM-DD` (UTC).
#[derive(Clone, Copy)]
pub struct Date(pub NaiveDate);

#[Scalar]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) if s.len() == 10 => {
                parse_day("a Date", s).map(Date).map_err(|e| InputValueError::custom(e.public_message()))
            }
            _ => Err(InputValueError::custom("a date is a string YYYY-MM-DD")),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

#[derive(Default)]
pub struct InsightsQuery;

#[Object]
impl InsightsQuery {
    /// The four DORA figures of an environment over the UTC days `from` to `to` (both
    /// included, at most 366), day by day and for each component it changed. They are
    /// counters kept as promotions end, so a year costs as little to read as a day.
    #[graphql(guard = "Can(Resource::Environment, Action::Read)")]
    async fn insights(
        &self,
        ctx: &Context<'_>,
        environment_id: ID,
        from: Date,
        to: Date,
    ) -> async_graphql::Result<InsightsView> {
        let environment = EnvironmentId::parse(&environment_id).gql()?;
        let window = Window::new(from.0, to.0).gql()?;
        let (_, insights) = ctx.data_unchecked::<DeliveryInsights>().read(environment, window).await.gql()?;
        Ok(InsightsView(insights))
    }
}

pub struct InsightsView(Insights);

#[Object(name = "Insights")]
impl InsightsView {
    async fn environment_id(&self) -> ID {
        ID(self.0.environment_id.to_string())
    }
    async fn from(&self) -> Date {
        Date(self.0.window.from)
    }
    async fn to(&self) -> Date {
        Date(self.0.window.to)
    }
    async fn days(&self) -> u64 {
        self.0.window.days()
    }
    /// The whole window's figures.
    async fn figures(&self) -> DeliveryFigures {
        DeliveryFigures::from(self.0.total)
    }
    /// Every day of the window, in order.
    async fn daily(&self) -> Vec<InsightsDay> {
        self.0.daily.iter().map(|(date, counts)| InsightsDay::new(*date, counts)).collect()
    }
    /// Each component a promotion changed here in the window. Time to restore is the
    /// environment's only.
    async fn components(&self) -> Vec<ComponentInsights> {
        self.0.components.iter().map(|(id, figures)| ComponentInsights { id: *id, figures: *figures }).collect()
    }
}

/// DORA figures over some days.
#[derive(SimpleObject)]
pub struct DeliveryFigures {
    /// Promotions that deployed: `succeeded` and `failed`.
    pub deployments: u64,
    /// Promotions that ended `DEPLOYED`.
    pub succeeded: u64,
    /// Promotions that failed while deploying or after (a post-deploy step).
    pub failed: u64,
    /// Deployed promotions rolled back within the environment's `changeFailureWindowHours`.
    pub rolled_back: u64,
    /// Deployment frequency: `succeeded` per day.
    pub deployments_per_day: f64,
    /// `failed` and `rolledBack` out of `deployments`; null without deployments.
    pub change_failure_rate: Option<f64>,
    /// Mean lead time for changes, from commit to `DEPLOYED`; null when no commit time is
    /// known. Rollbacks have none.
    pub lead_time_seconds: Option<f64>,
    /// Deployments whose lead time is known.
    pub lead_time_known: u64,
    /// Deployments whose commit time is unknown: neither the release's `sourceRef` nor a CI
    /// build of its commit gave one.
    pub lead_time_unknown: u64,
    /// Mean time to restore, from the first failure to the next healthy deployment.
    pub time_to_restore_seconds: Option<f64>,
    /// Restores measured.
    pub restores: u64,
}

impl From<Figures> for DeliveryFigures {
    fn from(f: Figures) -> Self {
        Self {
            deployments: f.deployments(),
            succeeded: f.counts.succeeded,
            failed: f.counts.failed,
            rolled_back: f.counts.rolled_back,
            deployments_per_day: f.per_day(),
            change_failure_rate: f.change_failure_rate(),
            lead_time_seconds: f.lead_time_seconds(),
            lead_time_known: f.counts.lead_count,
            lead_time_unknown: f.counts.lead_unknown,
            time_to_restore_seconds: f.restore_seconds(),
            restores: f.counts.restore_count,
        }
    }
}

/// One day's counts.
#[derive(SimpleObject)]
pub struct InsightsDay {
    pub date: Date,
    pub succeeded: u64,
    pub failed: u64,
    pub rolled_back: u64,
    /// The day's mean lead time; null when none is known.
    pub lead_time_seconds: Option<f64>,
}

impl InsightsDay {
    fn new(date: NaiveDate, c: &Counts) -> Self {
        let figures = Figures { counts: *c, days: 1 };
        Self {
            date: Date(date),
            succeeded: c.succeeded,
            failed: c.failed,
            rolled_back: c.rolled_back,
            lead_time_seconds: figures.lead_time_seconds(),
        }
    }
}

pub struct ComponentInsights {
    id: gantry_domain::values::ComponentId,
    figures: Figures,
}

#[Object]
impl ComponentInsights {
    async fn component_id(&self) -> ID {
        ID(self.id.to_string())
    }
    /// The component's name; null once it is deleted.
    async fn component_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let name = ctx.data_unchecked::<Components>().load_one(self.id).await.gql()?;
        Ok(name.map(|n| n.to_string()))
    }
    async fn figures(&self) -> DeliveryFigures {
        DeliveryFigures::from(self.figures)
    }
}
