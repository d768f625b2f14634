//! `gantry insights`: an environment's four DORA figures over a window of days.

use chrono::{Duration, NaiveDate, Utc};

use crate::client::Client;
use crate::error::Result;
use crate::ops::{Insights, insights};
use crate::output::{Out, table};
use crate::resolve::environment_id;

/// Prints the figures of `environment` from `from` (30 days before `to` unless given) to
/// `to` (today, UTC, unless given).
pub async fn show(
    c: &Client,
    out: &Out,
    environment: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<()> {
    let to = to.unwrap_or_else(|| Utc::now().date_naive());
    let from = from.unwrap_or(to - Duration::days(29));
    let environment_id = environment_id(c, environment).await?;
    let vars = insights::Variables { environment_id, from: from.to_string(), to: to.to_string() };
    let (data, raw) = c.answer::<Insights>(vars).await?;
    out.print(&raw["insights"], &data.insights, |i| lines(environment, i));
    Ok(())
}

/// A day as `--from` and `--to` take it.
pub fn date(raw: &str) -> std::result::Result<NaiveDate, String> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| format!("{raw:?} is not a date (YYYY-MM-DD)"))
}

fn lines(environment: &str, i: &insights::InsightsInsights) -> Vec<String> {
    let f = &i.figures;
    let mut lines = vec![format!("{environment}, {} to {} ({} days)", i.from, i.to, i.days)];
    let rows = vec![
        vec![
            "Deployment frequency".into(),
            format!("{:.2} per day ({} deployed, {} deployments)", f.deployments_per_day, f.succeeded, f.deployments),
        ],
        vec!["Lead time for changes".into(), lead(f.lead_time_seconds, f.lead_time_known, f.lead_time_unknown)],
        vec![
            "Change failure rate".into(),
            match f.change_failure_rate {
                Some(rate) => format!("{:.1}% ({} failed, {} rolled back)", rate * 100.0, f.failed, f.rolled_back),
                None => "no deployments".into(),
            },
        ],
        vec![
            "Time to restore".into(),
            match f.time_to_restore_seconds {
                Some(s) => format!("{} (mean of {})", duration(s), f.restores),
                None => "nothing to restore".into(),
            },
        ],
    ];
    lines.extend(table(&["FIGURE", "VALUE"], rows));
    if !i.components.is_empty() {
        lines.push(String::new());
        let rows = i
            .components
            .iter()
            .map(|c| {
                let f = &c.figures;
                vec![
                    c.component_name.clone().unwrap_or_else(|| c.component_id.clone()),
                    f.succeeded.to_string(),
                    f.failed.to_string(),
                    f.rolled_back.to_string(),
                    lead(f.lead_time_seconds, f.lead_time_known, f.lead_time_unknown),
                ]
            })
            .collect();
        lines.extend(table(&["COMPONENT", "DEPLOYED", "FAILED", "ROLLED BACK", "LEAD TIME"], rows));
    }
    lines
}

/// The mean lead time, and how many deployments it is known for.
fn lead(mean: Option<f64>, known: i64, unknown: i64) -> String {
    let unknown = if unknown > 0 { format!("; {unknown} unknown") } else { String::new() };
    match mean {
        Some(s) => format!("{} (mean of {known}{unknown})", duration(s)),
        None if unknown.is_empty() => "no deployments".into(),
        None => format!("unknown (no commit time{unknown})"),
    }
}

/// Seconds as `2d 3h`, `4h 5m`, `6m 7s` or `8s`.
fn duration(seconds: f64) -> String {
    let s = seconds.round() as i64;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(super::duration(8.4), "8s");
        assert_eq!(super::duration(367.0), "6m 7s");
        assert_eq!(super::duration(14_700.0), "4h 5m");
        assert_eq!(super::duration(183_600.0), "2d 3h");
    }
}
