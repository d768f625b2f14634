//! The supply-chain gate's time: `n` images pushed to a real registry (CNCF distribution),
//! each signed and attested (provenance, an SBOM, a scan), one release of them all judged by
//! the default policy through `evaluatePolicy`'s service. Uncached is a fresh state (nothing
//! verified yet: every manifest and envelope read and checked); cached is the same state
//! again (only the tags' digests and the referrers asked). A release of one component
//! gives the per-component figures.

use std::time::{Duration, Instant};

use gantry_domain::access::{Principal, Role};
use gantry_domain::ids::{EnvironmentId, ReleaseId};
use gantry_tests::app::TestApp;
use gantry_tests::cosign::{attest, keygen, provenance, sbom, scan, sign};
use gantry_tests::registry::{Registry, free_port};
use serde_json::json;

use crate::measure;

const BUILDER: &str = "https://ci.example/builder";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

pub async fn run(app: &TestApp, n: usize, rounds: usize) {
    let registry = Registry::start(free_port(), "http://127.0.0.1:9/unused", "unused");
    app.create_integration("bench-registry", "DISTRIBUTION", &format!("http://{}", registry.host())).await;
    let dir = std::env::temp_dir().join(format!("gantry-bench-admission-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("release.pem");
    let pem = keygen(&key);
    let mut pins = Vec::new();
    for i in 0..n {
        let repo = format!("bench/svc{i}");
        let digest = registry.push(&repo, "1.0.0", &format!("svc{i}"));
        sign(&registry, &repo, &digest, &key, &[]);
        attest(&registry, &repo, &digest, &key, &[provenance(BUILDER, COMMIT), sbom(), scan("CVE-1", "LOW")], &[]);
        let image = format!("{}/{repo}", registry.host());
        let id = app.create_component_with(json!({ "name": format!("bench-svc{i}"), "imageRepository": image })).await;
        app.add_version(&id, "1.0.0", &digest).await;
        pins.push(json!({ "componentId": id, "version": "1.0.0" }));
    }
    let env = app
        .create_environment_with(json!({ "name": "bench-guarded", "order": 5000,
            "signingKeys": [{ "name": "release", "pem": pem }], "trustedBuilders": [BUILDER] }))
        .await;
    let source = json!({ "commitSha": COMMIT });
    let all = app.ready_release_with(json!({ "name": "bench-all", "components": pins, "sourceRef": source })).await;
    let one =
        app.ready_release_with(json!({ "name": "bench-one", "components": [pins[0]], "sourceRef": source })).await;
    let env = EnvironmentId::parse(&env).unwrap();
    let who = Principal::new("bench", vec![Role::Viewer], Vec::new());

    println!("\n== supply-chain gate ({n} signed and attested images, default policy) ==");
    for (label, release, size) in [("release of 1", one, 1), (&*format!("release of {n}"), all, n)] {
        let release = ReleaseId::parse(&release).unwrap();
        let (uncached, cached) = gate(app, (&registry, release), env, &who, rounds).await;
        let policy = policy_alone(app, release, env, &who, rounds).await;
        let per = |d: Duration| d.as_secs_f64() * 1000.0 / size as f64;
        println!(
            "{label:<16} uncached p50 {:>7.1} ms ({:.1} ms a component)   cached p50 {:>6.1} ms ({:.2} ms a component)   of which the policy {:>5.2} ms",
            uncached.as_secs_f64() * 1000.0,
            per(uncached),
            cached.as_secs_f64() * 1000.0,
            per(cached),
            policy.as_secs_f64() * 1000.0,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The gate's p50, uncached (a fresh state each time) and cached (one state, warmed).
async fn gate(
    app: &TestApp,
    (registry, release): (&Registry, ReleaseId),
    env: EnvironmentId,
    who: &Principal,
    rounds: usize,
) -> (Duration, Duration) {
    let mut uncached = Vec::new();
    for _ in 0..rounds.clamp(1, 5) {
        let (state, _, _) = app.worker_state();
        let started = Instant::now();
        let verdict = state.promotions.evaluate_policy(release, env, who).await.unwrap();
        uncached.push(started.elapsed());
        let gate = verdict.supply_chain.map(|v| v.gate);
        assert!(gate.as_ref().is_some_and(|g| g.passed), "the bench measures an admitted release: {gate:?}");
    }
    let (state, _, _) = app.worker_state();
    state.promotions.evaluate_policy(release, env, who).await.unwrap();
    let before = registry.requests();
    state.promotions.evaluate_policy(release, env, who).await.unwrap();
    let asked: Vec<String> = registry.requests().split_off(before.len());
    let probes = asked.iter().filter(|r| r.as_str() == "GET /v2/").count();
    let shown: Vec<&str> = asked.iter().filter(|r| r.as_str() != "GET /v2/").map(String::as_str).collect();
    println!(
        "  a cached evaluation made {} registry requests, {} of them oci-client's GET /v2/ auth probe (a registry without auth){}",
        asked.len(),
        probes,
        if shown.len() <= 6 { format!(": {shown:?}") } else { String::new() }
    );
    let mut cached = Vec::new();
    for _ in 0..rounds.clamp(1, 50) {
        let started = Instant::now();
        state.promotions.evaluate_policy(release, env, who).await.unwrap();
        cached.push(started.elapsed());
    }
    let p50 =
        |samples: Vec<Duration>| measure::Run { samples, wall: Duration::ZERO, cpu: Duration::ZERO }.percentile(0.5);
    (p50(uncached), p50(cached))
}

/// The default policy alone on the release's facts: its p50.
async fn policy_alone(
    app: &TestApp,
    release: ReleaseId,
    env: EnvironmentId,
    who: &Principal,
    rounds: usize,
) -> Duration {
    use gantry_domain::admission::{AdmissionEngine, DEFAULT_POLICY};
    let (state, _, _) = app.worker_state();
    let verdict = state.promotions.evaluate_policy(release, env, who).await.unwrap();
    let components = verdict.supply_chain.map(|v| v.components).unwrap_or_default();
    let input = json!({ "release": { "sourceRef": { "repository": null, "commitSha": COMMIT } },
        "environment": { "trustedBuilders": [BUILDER] }, "promotion": { "phase": "request" }, "components": components });
    let engine = gantry_policy::RegoEngine::new();
    let mut samples = Vec::new();
    for _ in 0..rounds.clamp(1, 50) {
        let started = Instant::now();
        assert!(engine.denials(DEFAULT_POLICY, &input).unwrap().is_empty());
        samples.push(started.elapsed());
    }
    measure::Run { samples, wall: Duration::ZERO, cpu: Duration::ZERO }.percentile(0.5)
}
