//! Moving a rollout's requests by its traffic strategy, once the new version runs beside the
//! stable one: canary steps held by pauses or analyses, an A/B test, or a blue/green switch.
//! Every change is recorded on the deployment as a traffic step before the rollout goes on,
//! and every wait reads what an operator asked (abort, promote in full) twice a second, so
//! an abort puts every request back on the stable version within a second.

use std::time::Duration;

use chrono::Utc;
use gantry_domain::analysis::{AnalysisSpec, Measurement, Prober, Verdict, measure_all};
use gantry_domain::deployments::Attempt;
use gantry_domain::traffic::{
    CanaryStep, Control, Matcher, Router, RouterChange, StepVerdict, Strategy, Traffic, TrafficStep,
};
use gantry_domain::{DomainError, Result};

/// How often a waiting rollout reads what an operator asked.
const TICK: Duration = Duration::from_millis(500);
/// The longest the router may take to count the new version up.
pub(crate) const READY_WITHIN: Duration = Duration::from_secs(30);

/// A rollout whose new version runs in slot `new` behind the router.
pub(crate) struct Steer<'a> {
    pub router: &'a dyn Router,
    pub traffic: &'a Traffic,
    pub attempt: &'a dyn Attempt,
    pub prober: &'a dyn Prober,
    pub new: usize,
}

/// How a wait ended.
enum Held {
    Passed(String),
    Failed(String),
    Asked(Control),
}

impl Steer<'_> {
    /// Moves every request to the new version by the strategy: `Ok(summary)` when it takes
    /// them all, `Err(why)` when they went back to the stable version (a failed analysis,
    /// an abort, a router that refused a change). `Err` outside is a router or store that
    /// did not answer.
    pub(crate) async fn run(&self) -> Result<std::result::Result<String, String>> {
        if let Err(why) = self.wait_ready().await? {
            return Ok(Err(why));
        }
        let outcome = match &self.traffic.strategy {
            Strategy::Canary { steps } => self.canary(steps).await,
            Strategy::AbTest { matcher, max_seconds } => self.ab_test(matcher, *max_seconds).await,
            Strategy::BlueGreen => self.complete("switched at once (blue/green)").await,
        };
        match outcome {
            Err(DomainError::Validation(why)) => self.roll_back(&format!("the router refused a change: {why}")).await,
            other => other,
        }
    }

    /// The first version behind the router (nothing ran before): it takes every request
    /// once the router counts it up, whatever the strategy.
    pub(crate) async fn first(&self) -> Result<std::result::Result<String, String>> {
        if let Err(why) = self.wait_ready().await? {
            return Ok(Err(why));
        }
        match self.complete("nothing ran before").await {
            Err(DomainError::Validation(why)) => Ok(Err(format!("the router refused a change: {why}"))),
            other => other,
        }
    }

    async fn wait_ready(&self) -> Result<std::result::Result<(), String>> {
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            match self.router.ready(&self.traffic.router, self.new).await {
                Ok(true) => return Ok(Ok(())),
                Ok(false) if tokio::time::Instant::now() < deadline => tokio::time::sleep(TICK / 2).await,
                Ok(false) => {
                    let why = format!("the router did not count the new version up within {}s", READY_WITHIN.as_secs());
                    return Ok(Err(why));
                }
                Err(DomainError::Validation(why)) => return Ok(Err(format!("the router refused: {why}"))),
                Err(err) => return Err(err),
            }
        }
    }

    async fn record(
        &self,
        weight: u8,
        verdict: StepVerdict,
        detail: String,
        change: Option<RouterChange>,
    ) -> Result<Control> {
        let step = TrafficStep { weight, at: Utc::now(), verdict, detail, change };
        self.attempt.traffic(&step).await
    }

    async fn canary(&self, steps: &[CanaryStep]) -> Result<std::result::Result<String, String>> {
        for step in steps {
            let weight = step.set_weight;
            let change = self.router.shift(&self.traffic.router, self.new, weight).await?;
            let holding = match (&step.analysis, step.pause_seconds) {
                (Some(_), _) => "analysis running".to_owned(),
                (None, pause) => format!("paused for {}s", pause.unwrap_or(0)),
            };
            let asked = self.record(weight, StepVerdict::Holding, holding, Some(change)).await?;
            let held = match (asked, &step.analysis) {
                (Control::Continue, Some(analysis)) => self.analyse(analysis).await?,
                (Control::Continue, None) => self.pause(step.pause_seconds.unwrap_or(0)).await?,
                (asked, _) => Held::Asked(asked),
            };
            match held {
                Held::Passed(detail) => {
                    self.record(weight, StepVerdict::Passed, detail, None).await?;
                }
                Held::Failed(why) => {
                    self.record(weight, StepVerdict::Failed, why.clone(), None).await?;
                    return self.roll_back(&format!("canary analysis failed at {weight}%: {why}")).await;
                }
                Held::Asked(control) => return self.asked(control, weight).await,
            }
        }
        self.complete("every canary step passed").await
    }

    async fn ab_test(&self, matcher: &Matcher, max_seconds: u32) -> Result<std::result::Result<String, String>> {
        let change = self.router.route_matching(&self.traffic.router, matcher, Some(self.new)).await?;
        let what =
            format!("requests with {:?} {}={} reach the new version", matcher.source, matcher.name, matcher.value);
        let asked = self.record(0, StepVerdict::Holding, what.to_lowercase(), Some(change)).await?;
        let held = match asked {
            Control::Continue => self.pause(max_seconds).await?,
            asked => Held::Asked(asked),
        };
        let change = self.router.route_matching(&self.traffic.router, matcher, None).await?;
        match held {
            Held::Asked(Control::Abort) => {
                self.record(0, StepVerdict::Aborted, "aborted: the A/B route is removed".into(), Some(change)).await?;
                self.roll_back("aborted during the A/B test").await
            }
            _ => {
                let detail = "the A/B test ended: the route is removed".to_owned();
                self.record(0, StepVerdict::Passed, detail, Some(change)).await?;
                self.complete("promoted after the A/B test").await
            }
        }
    }

    async fn asked(&self, control: Control, weight: u8) -> Result<std::result::Result<String, String>> {
        match control {
            Control::Abort => {
                self.record(weight, StepVerdict::Aborted, "aborted by an operator".into(), None).await?;
                self.roll_back(&format!("aborted at {weight}%")).await
            }
            _ => {
                let detail = "promoted in full: the remaining steps are skipped".to_owned();
                self.record(weight, StepVerdict::Skipped, detail, None).await?;
                self.complete("promoted in full by an operator").await
            }
        }
    }

    /// Holds for `seconds`, or until an operator asks for something.
    async fn pause(&self, seconds: u32) -> Result<Held> {
        let until = tokio::time::Instant::now() + Duration::from_secs(u64::from(seconds));
        if let Some(asked) = self.wait_until(until).await? {
            return Ok(Held::Asked(asked));
        }
        Ok(Held::Passed(format!("paused {seconds}s")))
    }

    /// Waits until `until`, reading the operator's request every tick; what was asked.
    async fn wait_until(&self, until: tokio::time::Instant) -> Result<Option<Control>> {
        while tokio::time::Instant::now() < until {
            tokio::time::sleep(TICK.min(until - tokio::time::Instant::now())).await;
            match self.attempt.control().await? {
                Control::Continue => {}
                asked => return Ok(Some(asked)),
            }
        }
        Ok(None)
    }

    /// Measures the analysis every interval, reading the operator's requests between.
    async fn analyse(&self, spec: &AnalysisSpec) -> Result<Held> {
        let mut seen: Vec<Measurement> = Vec::new();
        loop {
            let measurement = measure_all(self.prober, &spec.probes).await;
            let detail = measurement.detail.clone();
            seen.push(measurement);
            let failed = seen.iter().filter(|m| !m.passed).count();
            match spec.verdict(&seen) {
                Verdict::Passed => {
                    return Ok(Held::Passed(format!(
                        "analysis passed ({failed} of {} measurements failed)",
                        seen.len()
                    )));
                }
                Verdict::Failed => {
                    return Ok(Held::Failed(format!("{failed} of {} measurements failed; last: {detail}", seen.len())));
                }
                Verdict::Continue => {
                    let next = tokio::time::Instant::now() + Duration::from_secs(u64::from(spec.interval_seconds));
                    if let Some(asked) = self.wait_until(next).await? {
                        return Ok(Held::Asked(asked));
                    }
                }
            }
        }
    }

    async fn complete(&self, why: &str) -> Result<std::result::Result<String, String>> {
        let change = self.router.shift(&self.traffic.router, self.new, 100).await?;
        self.record(100, StepVerdict::Completed, why.to_owned(), Some(change)).await?;
        Ok(Ok(format!("{why}; the new version takes every request")))
    }

    /// Every request back on the stable version, then recorded. A router that refuses even
    /// that is reported as it is: traffic may be split.
    async fn roll_back(&self, why: &str) -> Result<std::result::Result<String, String>> {
        match self.router.shift(&self.traffic.router, self.new, 0).await {
            Ok(change) => {
                let detail = format!("{why}; every request is back on the stable version");
                self.record(0, StepVerdict::RolledBack, detail.clone(), Some(change)).await?;
                Ok(Err(detail))
            }
            Err(DomainError::Validation(refused)) => Ok(Err(format!(
                "{why}; the router refused to send every request back to the stable version: {refused}"
            ))),
            Err(err) => Err(err),
        }
    }
}
