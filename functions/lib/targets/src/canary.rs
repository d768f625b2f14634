//! What the drivers share for canaries: measuring a canary analysis while the rollout waits.

use std::time::Duration;

use gantry_domain::analysis::{AnalysisSpec, Measurement, Prober, Verdict};

/// Measures the canaries every interval until the analysis passes (a summary) or fails (why).
pub(crate) async fn analyse(prober: &dyn Prober, spec: &AnalysisSpec) -> std::result::Result<String, String> {
    let mut seen: Vec<Measurement> = Vec::new();
    loop {
        let measured = futures::future::join_all(spec.probes.iter().map(|p| prober.measure(p))).await;
        let passed = measured.iter().all(|(ok, _)| *ok);
        let detail = measured.into_iter().map(|(_, d)| d).collect::<Vec<_>>().join("; ");
        seen.push(Measurement { at: chrono::Utc::now(), passed, detail: detail.clone() });
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
