//! Analysis: checks a promotion runs after its deployments, modelled on Argo Rollouts'
//! AnalysisTemplate. Every `interval_seconds` each probe is measured once; the analysis
//! passes after `count` measurements with at most `failure_limit` failed ones, and fails as
//! soon as more fail. A failed analysis fails the promotion and rolls the environment back.
//!
//! - An HTTP probe passes when the answer has the expected status, within the latency limit,
//!   with the expected text in its body.
//! - A Prometheus probe runs an instant query; it passes when every sample of the result
//!   meets the condition (and there is at least one).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Result};

/// Probes per analysis, measurements per analysis, and the longest interval.
pub const MAX_PROBES: usize = 10;
pub const MAX_COUNT: u32 = 100;
pub const MAX_INTERVAL_SECONDS: u32 = 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisSpec {
    pub probes: Vec<Probe>,
    pub interval_seconds: u32,
    pub count: u32,
    pub failure_limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Probe {
    #[serde(rename_all = "camelCase")]
    Http { url: String, expect_status: u16, max_latency_ms: Option<u32>, body_contains: Option<String> },
    #[serde(rename_all = "camelCase")]
    Prometheus { address: String, query: String, condition: Condition },
}

/// `result <op> value`, the value a decimal number kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub op: Comparison,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Condition {
    /// Whether a sample meets the condition (a sample that is not a number does not).
    pub fn holds(&self, sample: f64) -> bool {
        let Ok(value) = self.value.parse::<f64>() else { return false };
        match self.op {
            Comparison::Lt => sample < value,
            Comparison::Le => sample <= value,
            Comparison::Gt => sample > value,
            Comparison::Ge => sample >= value,
            Comparison::Eq => (sample - value).abs() < f64::EPSILON,
        }
    }
}

/// One measurement of every probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    pub at: DateTime<Utc>,
    pub passed: bool,
    /// What each probe saw, in a sentence each.
    pub detail: String,
}

/// Measures probes.
#[async_trait]
pub trait Prober: Send + Sync {
    /// Whether the probe passed, and what it saw; never an error (an unreachable target is
    /// a failed measurement).
    async fn measure(&self, probe: &Probe) -> (bool, String);
}

/// One measurement: every probe measured once, together; passed when all of them did.
pub async fn measure_all(prober: &dyn Prober, probes: &[Probe]) -> Measurement {
    let seen = futures::future::join_all(probes.iter().map(|probe| prober.measure(probe))).await;
    let passed = seen.iter().all(|(ok, _)| *ok);
    let detail: Vec<String> = seen.into_iter().map(|(_, what)| what).collect();
    Measurement { at: Utc::now(), passed, detail: detail.join("; ") }
}

/// Where an analysis stands after `measurements`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    Passed,
    Failed,
}

impl AnalysisSpec {
    pub fn verdict(&self, measurements: &[Measurement]) -> Verdict {
        let failed = measurements.iter().filter(|m| !m.passed).count() as u32;
        if failed > self.failure_limit {
            Verdict::Failed
        } else if measurements.len() as u32 >= self.count {
            Verdict::Passed
        } else {
            Verdict::Continue
        }
    }

    /// Checks an analysis as given.
    pub fn check(&self, step: &str) -> Result<()> {
        let bad = |why: String| Err(DomainError::validation(format!("step {step}: {why}")));
        if self.probes.is_empty() || self.probes.len() > MAX_PROBES {
            return bad(format!("an analysis has 1 to {MAX_PROBES} probes"));
        }
        if !(1..=MAX_INTERVAL_SECONDS).contains(&self.interval_seconds) {
            return bad(format!("intervalSeconds must be between 1 and {MAX_INTERVAL_SECONDS}"));
        }
        if !(1..=MAX_COUNT).contains(&self.count) || self.failure_limit >= self.count {
            return bad(format!("count must be between 1 and {MAX_COUNT}, and failureLimit below it"));
        }
        self.probes.iter().try_for_each(|p| check_probe(step, p))
    }

    /// The longest the analysis may take: every interval, and a minute.
    pub fn duration_seconds(&self) -> u32 {
        self.interval_seconds.saturating_mul(self.count).saturating_add(60)
    }
}

fn check_probe(step: &str, probe: &Probe) -> Result<()> {
    let bad = |why: &str| Err(DomainError::validation(format!("step {step}: {why}")));
    // Probes are meant for internal services, so any host will do; the URL is still parsed
    // and judged by its parts: an http(s) scheme, a host, no user info.
    let url_ok = |url: &str| {
        url.len() <= 500
            && url.chars().all(|c| c.is_ascii_graphic())
            && url::Url::parse(url).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.username().is_empty()
                    && u.password().is_none()
            })
    };
    match probe {
        Probe::Http { url, expect_status, body_contains, .. } => {
            if !url_ok(url) {
                return bad("an HTTP probe's url must be http(s)://…, at most 500 characters");
            }
            if !(100..=599).contains(expect_status) {
                return bad("expectStatus must be an HTTP status");
            }
            if body_contains.as_ref().is_some_and(|b| b.is_empty() || b.len() > 1000) {
                return bad("bodyContains must be 1 to 1000 characters");
            }
            Ok(())
        }
        Probe::Prometheus { address, query, condition } => {
            if !url_ok(address) {
                return bad("a Prometheus probe's address must be http(s)://…, at most 500 characters");
            }
            if query.trim().is_empty() || query.len() > 2000 {
                return bad("a Prometheus query is 1 to 2000 characters");
            }
            if condition.value.parse::<f64>().map_or(true, |v| !v.is_finite()) {
                return bad("a condition's value must be a number");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_urls_are_parsed() {
        let probe =
            |url: &str| Probe::Http { url: url.into(), expect_status: 200, max_latency_ms: None, body_contains: None };
        for url in ["http://api.internal:8080/health", "https://10.0.0.5/ready"] {
            assert!(check_probe("s", &probe(url)).is_ok(), "{url}");
        }
        for url in ["ftp://x/", "http://", "http://user:pass@api.internal/", "http//x", "not a url"] {
            assert!(check_probe("s", &probe(url)).is_err(), "{url}");
        }
    }

    fn spec(count: u32, failure_limit: u32) -> AnalysisSpec {
        let probe =
            Probe::Http { url: "http://x".into(), expect_status: 200, max_latency_ms: None, body_contains: None };
        AnalysisSpec { probes: vec![probe], interval_seconds: 1, count, failure_limit }
    }

    fn seen(passed: &[bool]) -> Vec<Measurement> {
        passed.iter().map(|p| Measurement { at: Utc::now(), passed: *p, detail: String::new() }).collect()
    }

    #[test]
    fn an_analysis_fails_past_its_failure_limit_and_passes_after_its_count() {
        let s = spec(3, 1);
        assert_eq!(s.verdict(&seen(&[true, false])), Verdict::Continue);
        assert_eq!(s.verdict(&seen(&[true, false, true])), Verdict::Passed);
        assert_eq!(s.verdict(&seen(&[false, false])), Verdict::Failed, "fails as soon as it must");
    }

    #[test]
    fn conditions_compare_samples() {
        let below = Condition { op: Comparison::Lt, value: "0.05".into() };
        assert!(below.holds(0.01) && !below.holds(0.05));
        assert!(Condition { op: Comparison::Ge, value: "1".into() }.holds(1.0));
    }

    #[test]
    fn bad_analyses_are_refused() {
        assert!(spec(3, 3).check("a").is_err(), "a failure limit as high as the count");
        assert!(spec(0, 0).check("a").is_err());
        assert!(AnalysisSpec { probes: vec![], ..spec(3, 0) }.check("a").is_err());
        let prom = Probe::Prometheus {
            address: "http://prom".into(),
            query: "up".into(),
            condition: Condition { op: Comparison::Lt, value: "NaN".into() },
        };
        assert!(AnalysisSpec { probes: vec![prom], ..spec(3, 0) }.check("a").is_err());
        let http = Probe::Http { url: "ftp://x".into(), expect_status: 200, max_latency_ms: None, body_contains: None };
        assert!(AnalysisSpec { probes: vec![http], ..spec(3, 0) }.check("a").is_err());
    }
}
