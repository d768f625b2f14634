//! Freeze windows: an environment's recurring weekly spans when promotions into it wait
//! (`Environment.freezeWindows`, `Environment.freeze`, `setFreezeWindows`).

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use gantry_domain::access::{Action, Resource};
use gantry_domain::model::{FreezeWindow, freeze};
use gantry_domain::service::Environments;
use gantry_domain::values::EnvironmentId;

use crate::delivery::Environment;
use crate::error::IntoGraphql;
use crate::guard::Can;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl From<Weekday> for chrono::Weekday {
    fn from(day: Weekday) -> Self {
        match day {
            Weekday::Monday => Self::Mon,
            Weekday::Tuesday => Self::Tue,
            Weekday::Wednesday => Self::Wed,
            Weekday::Thursday => Self::Thu,
            Weekday::Friday => Self::Fri,
            Weekday::Saturday => Self::Sat,
            Weekday::Sunday => Self::Sun,
        }
    }
}

impl From<chrono::Weekday> for Weekday {
    fn from(day: chrono::Weekday) -> Self {
        match day {
            chrono::Weekday::Mon => Self::Monday,
            chrono::Weekday::Tue => Self::Tuesday,
            chrono::Weekday::Wed => Self::Wednesday,
            chrono::Weekday::Thu => Self::Thursday,
            chrono::Weekday::Fri => Self::Friday,
            chrono::Weekday::Sat => Self::Saturday,
            chrono::Weekday::Sun => Self::Sunday,
        }
    }
}

/// A recurring weekly span: it starts on each of `days` at `start` (`HH:MM`, local to
/// `timeZone`) and lasts `durationMinutes` (at most a week).
#[derive(InputObject)]
pub struct FreezeWindowInput {
    pub name: String,
    pub days: Vec<Weekday>,
    pub start: String,
    pub duration_minutes: i64,
    /// An IANA time zone, such as `Europe/Berlin`.
    pub time_zone: String,
}

/// A freeze window of an environment.
#[derive(SimpleObject)]
#[graphql(name = "FreezeWindow")]
pub struct FreezeWindowView {
    pub name: String,
    pub days: Vec<Weekday>,
    /// Local start time, `HH:MM`.
    pub start: String,
    pub duration_minutes: u32,
    pub time_zone: String,
}

impl From<&FreezeWindow> for FreezeWindowView {
    fn from(w: &FreezeWindow) -> Self {
        Self {
            name: w.name.clone(),
            days: w.days.iter().copied().map(Into::into).collect(),
            start: w.start.format("%H:%M").to_string(),
            duration_minutes: w.duration_minutes,
            time_zone: w.time_zone.clone(),
        }
    }
}

/// The freeze in force: its window and when it ends.
#[derive(SimpleObject)]
pub struct Freeze {
    pub window: String,
    pub until: DateTime<Utc>,
}

/// An environment's windows, and the freeze in force now.
pub(crate) fn windows(environment: &gantry_domain::model::Environment) -> Vec<FreezeWindowView> {
    environment.freeze_windows.iter().map(Into::into).collect()
}

pub(crate) fn current(environment: &gantry_domain::model::Environment) -> Option<Freeze> {
    freeze::freeze_at(&environment.freeze_windows, Utc::now())
        .map(|f| Freeze { window: f.window.name.clone(), until: f.until })
}

#[derive(Default)]
pub struct FreezeMutation;

#[Object]
impl FreezeMutation {
    /// Replaces an environment's freeze windows (an empty list removes them).
    #[graphql(guard = "Can(Resource::Environment, Action::Update)")]
    async fn set_freeze_windows(
        &self,
        ctx: &Context<'_>,
        environment_id: ID,
        windows: Vec<FreezeWindowInput>,
    ) -> async_graphql::Result<Environment> {
        let id = EnvironmentId::parse(&environment_id).gql()?;
        let windows = windows
            .into_iter()
            .map(|w| {
                let days = w.days.into_iter().map(Into::into).collect();
                FreezeWindow::new(&w.name, days, &w.start, w.duration_minutes, &w.time_zone)
            })
            .collect::<gantry_domain::Result<Vec<_>>>()
            .gql()?;
        ctx.data_unchecked::<Environments>().set_freeze_windows(id, windows).await.gql().map(Environment)
    }
}
