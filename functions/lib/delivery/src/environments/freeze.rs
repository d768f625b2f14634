//! Freeze windows: recurring weekly spans, in an environment's time zone, when nothing is
//! promoted into it unless an approver overrides the freeze with a reason. A window starts on
//! each of its days at its local start time and lasts its duration (up to a week, so
//! "Friday 16:00 for 64 hours" covers a weekend). Rollbacks are not held by a freeze.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Result};

/// Windows per environment, at most.
pub const MAX_WINDOWS: usize = 20;
/// The longest window: a week.
pub const MAX_DURATION_MINUTES: u32 = 7 * 24 * 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FreezeWindow {
    pub name: String,
    /// The days it starts on, in its time zone.
    pub days: Vec<Weekday>,
    /// Local start time, `HH:MM`.
    pub start: NaiveTime,
    pub duration_minutes: u32,
    /// An IANA time zone, such as `Europe/Berlin`.
    pub time_zone: String,
}

/// A window in force, and when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freeze<'a> {
    pub window: &'a FreezeWindow,
    pub until: DateTime<Utc>,
}

impl FreezeWindow {
    /// Checks a window as given: a name, at least one day (each once), `HH:MM`, a duration of
    /// a minute to a week, and a known time zone.
    pub fn new(name: &str, days: Vec<Weekday>, start: &str, duration_minutes: i64, time_zone: &str) -> Result<Self> {
        let name = name.trim();
        let name_ok = (1..=63).contains(&name.len())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ' '));
        if !name_ok {
            return Err(DomainError::validation(format!(
                "freeze window name {name:?} must be 1-63 letters, digits, - _ or spaces"
            )));
        }
        if days.is_empty() {
            return Err(DomainError::validation(format!("freeze window {name}: name at least one day")));
        }
        let mut unique = days.clone();
        unique.sort_by_key(Weekday::num_days_from_monday);
        unique.dedup();
        let start = NaiveTime::parse_from_str(start.trim(), "%H:%M").map_err(|_| {
            DomainError::validation(format!("freeze window {name}: start must be HH:MM, not {start:?}"))
        })?;
        let duration_minutes = u32::try_from(duration_minutes)
            .ok()
            .filter(|d| (1..=MAX_DURATION_MINUTES).contains(d))
            .ok_or_else(|| {
                DomainError::validation(format!(
                    "freeze window {name}: durationMinutes must be between 1 and {MAX_DURATION_MINUTES}"
                ))
            })?;
        let time_zone = time_zone.trim();
        if time_zone.parse::<Tz>().is_err() {
            return Err(DomainError::validation(format!(
                "freeze window {name}: {time_zone:?} is not an IANA time zone (such as Europe/Berlin)"
            )));
        }
        Ok(Self { name: name.to_owned(), days: unique, start, duration_minutes, time_zone: time_zone.to_owned() })
    }

    /// When the window is in force at `now`, the end of the latest occurrence covering it.
    pub fn until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let tz: Tz = self.time_zone.parse().ok()?;
        let today = now.with_timezone(&tz).date_naive();
        let length = Duration::minutes(i64::from(self.duration_minutes));
        // An occurrence that covers `now` started at most a week (plus a day) before it.
        (0..=8)
            .filter_map(|back| today.checked_sub_signed(Duration::days(back)))
            .filter(|day| self.days.contains(&day.weekday()))
            .filter_map(|day| {
                let local = day.and_time(self.start);
                // In a spring-forward gap the window starts when the clocks resume.
                let start = tz
                    .from_local_datetime(&local)
                    .earliest()
                    .or_else(|| tz.from_local_datetime(&(local + Duration::hours(1))).earliest())?;
                Some(start.with_timezone(&Utc))
            })
            .filter(|start| *start <= now && now < *start + length)
            .map(|start| start + length)
            .max()
    }
}

/// The window in force at `now` that lasts longest, if any.
pub fn freeze_at(windows: &[FreezeWindow], now: DateTime<Utc>) -> Option<Freeze<'_>> {
    windows.iter().filter_map(|window| window.until(now).map(|until| Freeze { window, until })).max_by_key(|f| f.until)
}

/// Checks a whole set of windows: bounded, names unique.
pub fn check_windows(windows: Vec<FreezeWindow>) -> Result<Vec<FreezeWindow>> {
    if windows.len() > MAX_WINDOWS {
        return Err(DomainError::validation(format!("an environment has at most {MAX_WINDOWS} freeze windows")));
    }
    for (i, w) in windows.iter().enumerate() {
        if windows[..i].iter().any(|other| other.name == w.name) {
            return Err(DomainError::validation(format!("two freeze windows are named {}", w.name)));
        }
    }
    Ok(windows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn weekend() -> FreezeWindow {
        FreezeWindow::new("weekend", vec![Weekday::Fri], "16:00", 64 * 60, "Europe/Berlin").unwrap()
    }

    #[test]
    fn a_weekend_freeze_holds_from_friday_afternoon_to_monday_morning_local_time() {
        let w = weekend();
        // 2026-12-04 is a Friday; Berlin is UTC+1 in winter.
        assert_eq!(w.until(at("2026-12-04T14:59:00Z")), None);
        assert_eq!(w.until(at("2026-12-04T15:00:00Z")), Some(at("2026-12-07T07:00:00Z")));
        assert_eq!(w.until(at("2026-12-06T23:00:00Z")), Some(at("2026-12-07T07:00:00Z")));
        assert_eq!(w.until(at("2026-12-07T07:00:00Z")), None);
        assert_eq!(w.until(at("2026-12-09T12:00:00Z")), None);
    }

    #[test]
    fn local_time_follows_daylight_saving() {
        let w = weekend();
        // 2026-06-05 is a Friday; Berlin is UTC+2 in summer.
        assert_eq!(w.until(at("2026-06-05T14:00:00Z")), Some(at("2026-06-08T06:00:00Z")));
        assert_eq!(w.until(at("2026-06-05T13:59:00Z")), None);
    }

    #[test]
    fn a_window_may_cross_midnight_and_the_longest_one_in_force_wins() {
        let nightly = FreezeWindow::new(
            "nightly",
            vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
            "22:00",
            8 * 60,
            "UTC",
        )
        .unwrap();
        assert_eq!(nightly.until(at("2026-12-08T03:00:00Z")), Some(at("2026-12-08T06:00:00Z")));
        let windows = vec![nightly, weekend()];
        let freeze = freeze_at(&windows, at("2026-12-04T23:00:00Z")).unwrap();
        assert_eq!((freeze.window.name.as_str(), freeze.until), ("weekend", at("2026-12-07T07:00:00Z")));
    }

    #[test]
    fn bad_windows_are_refused() {
        assert!(FreezeWindow::new("w", vec![], "16:00", 60, "UTC").is_err());
        assert!(FreezeWindow::new("w", vec![Weekday::Fri], "25:00", 60, "UTC").is_err());
        assert!(FreezeWindow::new("w", vec![Weekday::Fri], "16:00", 0, "UTC").is_err());
        assert!(
            FreezeWindow::new("w", vec![Weekday::Fri], "16:00", i64::from(MAX_DURATION_MINUTES) + 1, "UTC").is_err()
        );
        assert!(FreezeWindow::new("w", vec![Weekday::Fri], "16:00", 60, "Mars/Olympus").is_err());
        assert!(FreezeWindow::new("w/x", vec![Weekday::Fri], "16:00", 60, "UTC").is_err());
        let twice = vec![weekend(), weekend()];
        assert!(check_windows(twice).unwrap_err().to_string().contains("two freeze windows"));
        let days = FreezeWindow::new("w", vec![Weekday::Fri, Weekday::Mon, Weekday::Fri], "16:00", 60, "UTC").unwrap();
        assert_eq!(days.days, [Weekday::Mon, Weekday::Fri]);
    }
}
