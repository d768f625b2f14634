//! Evidence signatures and bundles: the time to sign and to verify one record (Ed25519, the
//! DSSE envelope over its in-toto Statement), then an environment of `n` records appended
//! to the emulator's table, exported in pages as `gantry evidence export` does, and the
//! bundle verified offline (`gantry_signing::bundle`).

use std::time::{Duration, Instant};

use gantry_domain::evidence::{ChainHead, EvidenceAppend, EvidenceDraft, EvidenceRepository, seal};
use gantry_domain::ids::EnvironmentId;
use gantry_domain::promotions::BundleScope;
use gantry_tests::app::TestApp;
use serde_json::json;

use crate::measure;

/// Records per transaction: DynamoDB takes 100 writes, the head is one.
const BATCH: usize = 99;

pub async fn run(app: &TestApp, n: usize, rounds: usize) {
    let state = app.state_with(&[]);
    let env = EnvironmentId::parse(&app.create_environment("bench-evidence", 7000).await).unwrap();
    let signer = gantry_platform::evidence::signing(&state.config, &std::sync::Arc::new(app.repo.clone())).0;
    let draft = |i: usize| EvidenceDraft {
        environment_id: env,
        promotion_id: None,
        release_id: None,
        kind: "gate_evaluation",
        actor: "bench".into(),
        payload: json!({ "gates": [{ "gate": "previous_environment", "passed": true, "detail": format!("record {i}") }] }),
    };
    let (mut sign, mut verify) = (Vec::new(), Vec::new());
    let mut head: Option<ChainHead> = None;
    let started = Instant::now();
    for batch in 0..n.div_ceil(BATCH) {
        let drafts: Vec<EvidenceDraft> = (0..BATCH.min(n - batch * BATCH)).map(|i| draft(batch * BATCH + i)).collect();
        let count = drafts.len();
        let t = Instant::now();
        let records = seal(drafts, head.as_ref(), signer.as_ref()).await.unwrap();
        sign.push(t.elapsed() / count as u32);
        if sign.len() <= rounds {
            let t = Instant::now();
            for r in &records {
                assert!(signer.verify(r).await.unwrap());
            }
            verify.push(t.elapsed() / count as u32);
        }
        app.repo.append_evidence(EvidenceAppend { records: &records, head: head.as_ref() }).await.unwrap();
        let last = records.last().unwrap();
        head = Some(ChainHead { seq: last.seq, hash: last.hash.clone() });
    }
    let stored = started.elapsed();
    let p50 =
        |samples: Vec<Duration>| measure::Run { samples, wall: Duration::ZERO, cpu: Duration::ZERO }.percentile(0.5);
    println!("\n== evidence ({n} records, Ed25519) ==");
    println!(
        "sign p50 {:>6.1} µs a record   verify p50 {:>6.1} µs a record   ({n} records sealed and stored in {:.1} s)",
        p50(sign).as_secs_f64() * 1e6,
        p50(verify).as_secs_f64() * 1e6,
        stored.as_secs_f64()
    );
    let started = Instant::now();
    let bundle = export(&state, env, n).await;
    let exported = started.elapsed();
    let bytes = serde_json::to_vec(&bundle).unwrap().len();
    let started = Instant::now();
    let check = gantry_signing::bundle::verify(&bundle, &bundle["keys"]);
    let verified = started.elapsed();
    assert!(check.valid && check.chains[0].verified == n, "{:?}", check.problems);
    println!(
        "export {:.2} s ({} pages, {:.1} MB)   offline verification {:.2} s   together {:.2} s (goal: under 5 s)",
        exported.as_secs_f64(),
        n.div_ceil(gantry_domain::promotions::MAX_BUNDLE_RECORDS),
        bytes as f64 / 1e6,
        verified.as_secs_f64(),
        (exported + verified).as_secs_f64()
    );
}

/// The environment's bundle, page by page, joined as the CLI joins them.
async fn export(state: &gantry_platform::AppState, env: EnvironmentId, n: usize) -> serde_json::Value {
    let first = gantry_domain::promotions::MAX_BUNDLE_RECORDS;
    let mut records = Vec::new();
    loop {
        let scope = BundleScope::Environment { id: env, after: records.len() as u64, first };
        let mut bundle = state.promotions.evidence_bundle(scope).await.unwrap();
        let got = bundle["chains"][0]["records"].as_array().cloned().unwrap_or_default();
        let last = got.len() < first;
        records.extend(got);
        if last || records.len() >= n {
            bundle["chains"][0]["records"] = serde_json::Value::Array(records);
            return bundle;
        }
    }
}
