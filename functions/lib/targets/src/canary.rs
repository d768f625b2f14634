//! What the drivers share for canaries: measuring a canary analysis while the rollout waits.

use std::time::Duration;

use gantry_domain::analysis::{AnalysisSpec, Measurement, Prober, Verdict, measure_all};

/// Measures the canaries every interval until the analysis passes (a summary) or fails (why).
pub(crate) async fn analyse(prober: &dyn Prober, spec: &AnalysisSpec) -> std::result::Result<String, String> {
    let mut seen: Vec<Measurement> = Vec::new();
    loop {
        let measurement = measure_all(prober, &spec.probes).await;
        let detail = measurement.detail.clone();
        seen.push(measurement);
        let failed = seen.iter().filter(|m| !m.passed).count();
        match spec.verdict(&seen) {
            Verdict::Continue => tokio::time::sleep(Duration::from_secs(u64::from(spec.interval_seconds))).await,
            Verdict::Passed => {
                return Ok(format!("canary analysis passed ({failed} of {} measurements failed)", seen.len()));
            }
            Verdict::Failed => return Err(format!("{failed} of {} measurements failed; last: {detail}", seen.len())),
        }
    }
}
