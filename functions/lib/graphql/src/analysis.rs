//! Analysis steps in GraphQL: the probes an environment measures after deploying
//! (`PromotionStepInput.analysis`, `PromotionStep.analysis`) and what they saw
//! (`StepRun.measurements`).

use async_graphql::{Enum, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use gantry_domain::analysis::{self, AnalysisSpec, Condition, Probe};
use gantry_domain::{DomainError, Result};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "gantry_domain::analysis::Comparison")]
pub enum Comparison {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

/// An HTTP GET that passes with `expectStatus` (200 unless set), within `maxLatencyMs`, with
/// `bodyContains` in its body.
#[derive(InputObject, SimpleObject, Clone)]
#[graphql(input_name = "HttpProbeInput", name = "HttpProbe")]
pub struct HttpProbe {
    pub url: String,
    #[graphql(default = 200)]
    pub expect_status: u16,
    pub max_latency_ms: Option<u32>,
    pub body_contains: Option<String>,
}

/// A Prometheus instant query whose every sample must meet `op value`.
#[derive(InputObject, SimpleObject, Clone)]
#[graphql(input_name = "PrometheusProbeInput", name = "PrometheusProbe")]
pub struct PrometheusProbe {
    /// The server's base URL (`/api/v1/query` is called under it).
    pub address: String,
    pub query: String,
    pub op: Comparison,
    pub value: f64,
}

/// Exactly one of `http` and `prometheus`.
#[derive(InputObject)]
pub struct ProbeInput {
    pub http: Option<HttpProbe>,
    pub prometheus: Option<PrometheusProbe>,
}

/// Every `intervalSeconds`, each probe is measured once; the analysis passes after `count`
/// measurements with at most `failureLimit` failed, and fails as soon as more fail.
#[derive(InputObject)]
pub struct AnalysisInput {
    pub probes: Vec<ProbeInput>,
    pub interval_seconds: u32,
    pub count: u32,
    #[graphql(default)]
    pub failure_limit: u32,
}

impl AnalysisInput {
    pub(crate) fn into_spec(self, step: &str) -> Result<AnalysisSpec> {
        let probes = self
            .probes
            .into_iter()
            .map(|p| match (p.http, p.prometheus) {
                (Some(h), None) => Ok(Probe::Http {
                    url: h.url,
                    expect_status: h.expect_status,
                    max_latency_ms: h.max_latency_ms,
                    body_contains: h.body_contains,
                }),
                (None, Some(q)) => Ok(Probe::Prometheus {
                    address: q.address,
                    query: q.query,
                    condition: Condition { op: q.op.into(), value: q.value.to_string() },
                }),
                _ => {
                    Err(DomainError::validation(format!("step {step}: a probe is exactly one of http and prometheus")))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AnalysisSpec {
            probes,
            interval_seconds: self.interval_seconds,
            count: self.count,
            failure_limit: self.failure_limit,
        })
    }
}

/// An analysis as an environment declares it.
#[derive(SimpleObject)]
pub struct Analysis {
    pub http: Vec<HttpProbe>,
    pub prometheus: Vec<PrometheusProbe>,
    pub interval_seconds: u32,
    pub count: u32,
    pub failure_limit: u32,
}

impl From<&AnalysisSpec> for Analysis {
    fn from(spec: &AnalysisSpec) -> Self {
        let (mut http, mut prometheus) = (Vec::new(), Vec::new());
        for probe in &spec.probes {
            match probe {
                Probe::Http { url, expect_status, max_latency_ms, body_contains } => http.push(HttpProbe {
                    url: url.clone(),
                    expect_status: *expect_status,
                    max_latency_ms: *max_latency_ms,
                    body_contains: body_contains.clone(),
                }),
                Probe::Prometheus { address, query, condition } => prometheus.push(PrometheusProbe {
                    address: address.clone(),
                    query: query.clone(),
                    op: condition.op.into(),
                    value: condition.value.parse().unwrap_or_default(),
                }),
            }
        }
        Self {
            http,
            prometheus,
            interval_seconds: spec.interval_seconds,
            count: spec.count,
            failure_limit: spec.failure_limit,
        }
    }
}

/// One measurement of every probe of an analysis.
#[derive(SimpleObject)]
pub struct Measurement {
    pub at: DateTime<Utc>,
    pub passed: bool,
    pub detail: String,
}

impl From<&analysis::Measurement> for Measurement {
    fn from(m: &analysis::Measurement) -> Self {
        Self { at: m.at, passed: m.passed, detail: m.detail.clone() }
    }
}
