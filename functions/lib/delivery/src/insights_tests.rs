use super::*;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[test]
fn a_scripted_history_sums_to_the_figures_worked_out_by_hand() {
    let env = EnvironmentId::new();
    let (api, web) = (ComponentId::new(), ComponentId::new());
    let mut buckets = Vec::new();
    let mut health: Option<DateTime<Utc>> = None;
    let mut step = |end: End, when: &str, changed: &[ComponentId]| {
        let t = tally(env, end, at(when), changed, health);
        health = match t.health {
            HealthChange::Keep => health,
            HealthChange::Failing(since) => health.or(Some(since)),
            HealthChange::Restored(_) => None,
        };
        buckets.extend(t.buckets);
    };
    // Day 1: api deploys 2 h after its commit; web fails at 14:00, and a rollback is healthy
    // at 14:30 (restore 1,800 s).
    step(End::Deployed { lead: Some(7_200), rollback: false }, "2026-03-01T10:00:00Z", &[api]);
    step(End::Failed, "2026-03-01T14:00:00Z", &[web]);
    step(End::Deployed { lead: None, rollback: true }, "2026-03-01T14:30:00Z", &[web]);
    // Day 2: both deploy (lead 4 h); the commit time of a second one is unknown.
    step(End::Deployed { lead: Some(14_400), rollback: false }, "2026-03-02T09:00:00Z", &[api, web]);
    step(End::Deployed { lead: None, rollback: false }, "2026-03-02T12:00:00Z", &[api]);
    // Day 3: the day-2 noon deployment is rolled back within the window at 08:00 (counted on
    // day 2), and a fix deploys at 09:00 (restore 3,600 s, lead 1 h). A rollback past the
    // window counts nothing.
    step(
        End::RolledBack { deployed_at: at("2026-03-02T12:00:00Z"), within_window: true },
        "2026-03-03T08:00:00Z",
        &[api],
    );
    step(End::Deployed { lead: Some(3_600), rollback: false }, "2026-03-03T09:00:00Z", &[api]);
    step(
        End::RolledBack { deployed_at: at("2026-01-01T00:00:00Z"), within_window: false },
        "2026-03-03T10:00:00Z",
        &[api],
    );
    let insights = summarise(env, Window::new(day("2026-03-01"), day("2026-03-04")).unwrap(), &buckets);

    let f = insights.total;
    assert_eq!((f.counts.succeeded, f.counts.failed, f.counts.rolled_back), (5, 1, 1));
    assert_eq!(f.deployments(), 6);
    assert_eq!(f.per_day(), 5.0 / 4.0);
    assert_eq!(f.change_failure_rate(), Some(2.0 / 6.0));
    assert_eq!(f.lead_time_seconds(), Some((7_200.0 + 14_400.0 + 3_600.0) / 3.0));
    assert_eq!(f.counts.lead_unknown, 1, "the rollback has no lead time; the unknown commit is counted");
    assert_eq!(f.restore_seconds(), Some((1_800.0 + 3_600.0) / 2.0));

    let daily: Vec<(u64, u64, u64)> =
        insights.daily.iter().map(|(_, c)| (c.succeeded, c.failed, c.rolled_back)).collect();
    assert_eq!(daily, vec![(2, 1, 0), (2, 0, 1), (1, 0, 0), (0, 0, 0)]);

    let of = |c: ComponentId| insights.components.iter().find(|(id, _)| *id == c).unwrap().1;
    assert_eq!((of(api).counts.succeeded, of(api).counts.rolled_back), (4, 1));
    assert_eq!(of(api).lead_time_seconds(), Some((7_200.0 + 14_400.0 + 3_600.0) / 3.0));
    assert_eq!((of(web).counts.succeeded, of(web).counts.failed), (2, 1));
    assert_eq!(of(web).change_failure_rate(), Some(1.0 / 3.0));
    assert_eq!(of(web).counts.restore_count, 0, "restores are the environment's");

    // A window that leaves day 1 out leaves its buckets out.
    let later = summarise(env, Window::new(day("2026-03-02"), day("2026-03-02")).unwrap(), &buckets);
    assert_eq!((later.total.counts.succeeded, later.total.counts.rolled_back), (2, 1));
    assert_eq!(later.total.change_failure_rate(), Some(0.5));
}

#[test]
fn a_window_is_ordered_and_at_most_a_year_and_a_day() {
    assert_eq!(Window::new(day("2026-01-01"), day("2026-12-31")).unwrap().days(), 365);
    assert!(Window::new(day("2024-01-01"), day("2024-12-31")).is_ok(), "a leap year is 366 days");
    let err = Window::new(day("2026-01-02"), day("2026-01-01")).unwrap_err();
    assert_eq!(err.code(), "BAD_USER_INPUT");
    assert!(Window::new(day("2025-01-01"), day("2026-01-02")).unwrap_err().to_string().contains("366"));
}

#[test]
fn an_empty_window_has_no_rates() {
    let insights = summarise(EnvironmentId::new(), Window::new(day("2026-01-01"), day("2026-01-07")).unwrap(), &[]);
    assert_eq!(insights.total.deployments(), 0);
    assert_eq!(insights.total.change_failure_rate(), None);
    assert_eq!(insights.total.lead_time_seconds(), None);
    assert_eq!(insights.daily.len(), 7);
}
