//! An environment's delivery insights: the four DORA figures over a window of days, with
//! charts drawn here as inline SVG (nothing is loaded from elsewhere).

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{Duration, NaiveDate, Utc};
use gantry_domain::insights::{Counts, Figures, Insights, Window, parse_day};
use std::collections::HashMap;

use gantry_domain::values::{ComponentId, EnvironmentId};
use maud::{Markup, html};
use serde::Deserialize;

use super::*;

/// The window shown unless the page asks for another.
const DEFAULT_DAYS: i64 = 30;
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 160.0;

#[derive(Deserialize)]
pub struct Range {
    from: Option<String>,
    to: Option<String>,
}

fn day(name: &str, raw: Option<&str>) -> Result<Option<NaiveDate>, DomainError> {
    raw.filter(|r| !r.is_empty()).map(|r| parse_day(name, r)).transpose()
}

/// `GET /ui/environments/{id}/insights?from=YYYY-MM-DD&to=YYYY-MM-DD` (the last 30 days
/// unless given).
pub async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(range): Query<Range>,
) -> Response {
    signed_in(&state, &headers, async |_| {
        let id = EnvironmentId::parse(&id)?;
        let to = day("to", range.to.as_deref())?.unwrap_or_else(|| Utc::now().date_naive());
        let from = day("from", range.from.as_deref())?.unwrap_or(to - Duration::days(DEFAULT_DAYS - 1));
        let window = Window::new(from, to)?;
        let (environment, insights) = state.insights.read(id, window).await?;
        let ids: Vec<ComponentId> = insights.components.iter().map(|(c, _)| *c).collect();
        let names = state.catalog.component_names(&ids).await?.into_iter().collect();
        Ok(("Insights".to_owned(), body(environment.name.as_str(), &insights, &names)))
    })
    .await
}

fn body(environment: &str, i: &Insights, names: &HashMap<ComponentId, String>) -> Markup {
    let f = &i.total;
    html! {
        h1 { "Insights of " (environment) }
        form.range method="get" {
            label { "From " input type="date" name="from" value=(i.window.from); }
            label { " to " input type="date" name="to" value=(i.window.to); }
            button type="submit" { "Show" }
        }
        div #figures .tiles {
            (tile("Deployment frequency", &format!("{:.2} per day", f.per_day()), &format!("{} deployed in {} days", f.counts.succeeded, f.days)))
            (tile("Lead time for changes", &mean(f.lead_time_seconds()), &lead_note(f)))
            (tile("Change failure rate", &f.change_failure_rate().map_or("none".into(), |r| format!("{:.1}%", r * 100.0)),
                &format!("{} failed, {} rolled back of {}", f.counts.failed, f.counts.rolled_back, f.deployments())))
            (tile("Time to restore", &mean(f.restore_seconds()), &format!("{} restores", f.counts.restore_count)))
        }
        h2 { "Deployments per day" }
        (deployments_chart(&i.daily))
        h2 { "Lead time per day (hours)" }
        (lead_chart(&i.daily))
        h2 { "Components" }
        @if i.components.is_empty() { p.muted { "No component changed here in these days." } } @else {
            table #components {
                thead { tr { th { "Component" } th { "Deployed" } th { "Failed" } th { "Rolled back" } th { "Failure rate" } th { "Lead time" } } }
                tbody { @for (c, f) in &i.components { tr {
                    td { (names.get(c).cloned().unwrap_or_else(|| c.to_string())) }
                    td { (f.counts.succeeded) } td { (f.counts.failed) } td { (f.counts.rolled_back) }
                    td { (f.change_failure_rate().map_or("–".into(), |r| format!("{:.1}%", r * 100.0))) }
                    td { (mean(f.lead_time_seconds())) }
                } } }
            }
        }
    }
}

fn tile(name: &str, value: &str, note: &str) -> Markup {
    html! { div.tile { span.name { (name) } span.value { (value) } span.muted { (note) } } }
}

fn lead_note(f: &Figures) -> String {
    match f.counts.lead_unknown {
        0 => format!("mean of {}", f.counts.lead_count),
        n => format!("mean of {}; {n} with no commit time", f.counts.lead_count),
    }
}

/// A mean in seconds as `2d 3h`, `4h 5m`, `6m 7s` or `8s`; `–` when there is none.
fn mean(seconds: Option<f64>) -> String {
    let Some(seconds) = seconds else { return "–".into() };
    let s = seconds.round() as i64;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// One bar segment: `class`, its bottom and top in value units on a scale to `max`.
struct Segment {
    class: &'static str,
    from: f64,
    to: f64,
}

/// A bar per day, each of stacked segments, under a scale to the highest bar.
fn bars(
    label: &str,
    days: &[(NaiveDate, Counts)],
    max: f64,
    segments: impl Fn(&Counts) -> Vec<Segment>,
    title: impl Fn(&NaiveDate, &Counts) -> String,
) -> Markup {
    let width = WIDTH / days.len().max(1) as f64;
    let scale = |v: f64| HEIGHT - v / max.max(1.0) * HEIGHT;
    let (first, last) = (days.first().map(|d| d.0), days.last().map(|d| d.0));
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT + 16.0) } role="img" aria-label=(label) {
            line.axis x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) {}
            @for (n, (date, counts)) in days.iter().enumerate() {
                g { title { (title(date, counts)) }
                    @for s in segments(counts) { @if s.to > s.from {
                        rect class=(s.class) x=(format!("{:.2}", n as f64 * width + 0.5)) y=(format!("{:.2}", scale(s.to)))
                            width=(format!("{:.2}", (width - 1.0).max(0.5))) height=(format!("{:.2}", scale(s.from) - scale(s.to))) {}
                    } }
                }
            }
            text x="2" y="12" { (format!("{max:.0}")) }
            @if let (Some(first), Some(last)) = (first, last) {
                text x="0" y=(HEIGHT + 14.0) { (first) }
                text x=(WIDTH) y=(HEIGHT + 14.0) text-anchor="end" { (last) }
            }
        }
    }
}

/// Deployed, failed and rolled back per day, stacked.
fn deployments_chart(days: &[(NaiveDate, Counts)]) -> Markup {
    let total = |c: &Counts| (c.succeeded + c.failed) as f64;
    let max = days.iter().map(|(_, c)| total(c)).fold(0.0, f64::max);
    bars(
        "deployments per day: deployed, failed and rolled back",
        days,
        max,
        |c| {
            let (ok, rolled, failed) =
                ((c.succeeded - c.rolled_back.min(c.succeeded)) as f64, c.rolled_back as f64, c.failed as f64);
            vec![
                Segment { class: "ok", from: 0.0, to: ok },
                Segment { class: "warn", from: ok, to: ok + rolled },
                Segment { class: "bad", from: ok + rolled, to: ok + rolled + failed },
            ]
        },
        |d, c| format!("{d}: {} deployed ({} rolled back), {} failed", c.succeeded, c.rolled_back, c.failed),
    )
}

/// The mean lead time of each day, in hours.
fn lead_chart(days: &[(NaiveDate, Counts)]) -> Markup {
    let hours = |c: &Counts| Figures { counts: *c, days: 1 }.lead_time_seconds().map_or(0.0, |s| s / 3_600.0);
    let max = days.iter().map(|(_, c)| hours(c)).fold(0.0, f64::max);
    if days.iter().all(|(_, c)| c.lead_count == 0) {
        return html! { p.muted { "No lead time is known in these days: no deployment's commit time was given." } };
    }
    bars(
        "mean lead time for changes per day, in hours",
        days,
        max.ceil(),
        |c| vec![Segment { class: "lead", from: 0.0, to: hours(c) }],
        |d, c| format!("{d}: {} (mean of {})", mean(Figures { counts: *c, days: 1 }.lead_time_seconds()), c.lead_count),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_day_is_a_bar_stacked_by_outcome() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let days = vec![
            (d("2026-03-01"), Counts { succeeded: 3, rolled_back: 1, failed: 1, ..Default::default() }),
            (d("2026-03-02"), Counts::default()),
        ];
        let svg = deployments_chart(&days).into_string();
        assert_eq!(svg.matches("<rect").count(), 3, "ok, rolled back and failed for day 1, none for day 2: {svg}");
        assert!(svg.contains("<title>2026-03-01: 3 deployed (1 rolled back), 1 failed</title>"), "{svg}");
        // The day's 4 deployments fill the height: 2 ok, 1 rolled back, 1 failed.
        assert!(svg.contains(r#"class="ok" x="0.50" y="80.00" width="359.00" height="80.00""#), "{svg}");
        assert!(svg.contains(r#"class="bad" x="0.50" y="0.00""#), "{svg}");
        assert!(!svg.contains("http"), "nothing is loaded from elsewhere");
    }
}
