//! Analysis probes: an HTTP request checked for its status, latency and body, and a
//! Prometheus instant query checked against a condition. A probe that cannot be measured
//! (no answer, a body that does not parse) is a failed measurement that says why.

use gantry_telemetry::SendTraced as _;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gantry_domain::analysis::{Condition, Probe, Prober};
use serde_json::Value;

/// The most of a body a probe reads.
const MAX_BODY: usize = 1024 * 1024;

pub struct HttpProber {
    http: reqwest::Client,
    /// How long one probe may take.
    timeout: Duration,
}

impl Default for HttpProber {
    fn default() -> Self {
        Self { http: crate::client(), timeout: Duration::from_secs(10) }
    }
}

#[async_trait]
impl Prober for HttpProber {
    async fn measure(&self, probe: &Probe) -> (bool, String) {
        match probe {
            Probe::Http { url, expect_status, max_latency_ms, body_contains } => {
                let started = Instant::now();
                let answer = match self.http.get(url).timeout(self.timeout).send_traced().await {
                    Ok(answer) => answer,
                    Err(err) => return (false, format!("{url}: no answer ({})", without_url(&err))),
                };
                let status = answer.status().as_u16();
                let body = answer.bytes().await.map(|b| b.slice(..b.len().min(MAX_BODY))).unwrap_or_default();
                let millis = started.elapsed().as_millis();
                let mut missed = Vec::new();
                if status != *expect_status {
                    missed.push(format!("status {status}, not {expect_status}"));
                }
                if let Some(limit) = max_latency_ms.filter(|limit| millis > u128::from(*limit)) {
                    missed.push(format!("{millis} ms, over {limit} ms"));
                }
                if let Some(text) =
                    body_contains.as_ref().filter(|t| !String::from_utf8_lossy(&body).contains(t.as_str()))
                {
                    missed.push(format!("no {text:?} in the body"));
                }
                match missed.is_empty() {
                    true => (true, format!("{url}: {status} in {millis} ms")),
                    false => (false, format!("{url}: {}", missed.join(", "))),
                }
            }
            Probe::Prometheus { address, query, condition } => self.query(address, query, condition).await,
        }
    }
}

impl HttpProber {
    async fn query(&self, address: &str, query: &str, condition: &Condition) -> (bool, String) {
        let url = format!("{}/api/v1/query", address.trim_end_matches('/'));
        let answer = self.http.get(&url).query(&[("query", query)]).timeout(self.timeout).send_traced().await;
        let body: Value = match answer {
            Ok(a) => a.json().await.unwrap_or(Value::Null),
            Err(err) => return (false, format!("Prometheus at {address}: no answer ({})", without_url(&err))),
        };
        if body["status"] != "success" {
            let error = body["error"].as_str().unwrap_or("not a Prometheus answer");
            return (false, format!("{query}: {}", error.chars().take(200).collect::<String>()));
        }
        let samples = samples(&body["data"]);
        let op = serde_json::to_value(condition.op).unwrap_or_default();
        let wanted = format!("{} {}", op.as_str().unwrap_or_default(), condition.value);
        match samples.iter().all(|s| condition.holds(*s)) && !samples.is_empty() {
            true => (true, format!("{query} = {samples:?}, {wanted}")),
            false if samples.is_empty() => (false, format!("{query}: no samples")),
            false => (false, format!("{query} = {samples:?}, not {wanted}")),
        }
    }
}

/// The sample values of a query result: a scalar, or every series of a vector.
fn samples(data: &Value) -> Vec<f64> {
    let value = |pair: &Value| pair[1].as_str().and_then(|v| v.parse::<f64>().ok());
    match data["resultType"].as_str() {
        Some("scalar") => value(&data["result"]).into_iter().collect(),
        Some("vector") => data["result"].as_array().into_iter().flatten().filter_map(|s| value(&s["value"])).collect(),
        _ => Vec::new(),
    }
}

/// A request error's cause, without the URL it repeats.
fn without_url(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection refused"
    } else {
        "request failed"
    };
    kind.to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::samples;

    #[test]
    fn samples_of_scalars_and_vectors() {
        assert_eq!(samples(&json!({ "resultType": "scalar", "result": [1.0, "0.5"] })), [0.5]);
        let vector = json!({ "resultType": "vector", "result": [{ "metric": {}, "value": [1.0, "2"] }, { "metric": {}, "value": [1.0, "3"] }] });
        assert_eq!(samples(&vector), [2.0, 3.0]);
        assert!(samples(&json!({ "resultType": "matrix", "result": [] })).is_empty());
    }
}
