//! Latency figures for the two hot paths, against the local emulator (start it with
//! `make emulator-up`; `cargo bench -p gantry-tests` builds optimised):
//! - webhook intake: authenticate, parse, conditional put, enqueue, answer;
//! - a page of 50 releases with component names through GraphQL.
//!
//! It prints percentiles; it asserts nothing, as timings belong here and not in tests.

use std::time::{Duration, Instant};

use gantry_tests::app::{TestApp, digest};
use serde_json::json;

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    format!(
        "n={} p50={:.2?} p95={:.2?} p99={:.2?} max={:.2?}",
        samples.len(),
        at(0.50),
        at(0.95),
        at(0.99),
        samples.last().unwrap()
    )
}

#[tokio::main]
async fn main() {
    // Figures only: the app's logs are for failing tests.
    let _ = tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default());
    let rounds: usize = std::env::var("GANTRY_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let app = TestApp::spawn().await;

    // Webhook intake.
    let (_, secret) = app.create_integration("bench", "DISTRIBUTION", "http://127.0.0.1:5000").await;
    let auth = format!("Bearer {secret}");
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let body = json!({ "events": [{ "id": format!("bench-{i}"), "action": "push",
            "target": { "mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": "bench/web", "tag": format!("1.0.{i}"),
                        "digest": digest(&i.to_string()) }, "request": { "host": "127.0.0.1:5000" } }] });
        let started = Instant::now();
        let (status, _) = app
            .post_webhook(
                "/webhooks/registry/distribution",
                &[("authorization", &auth)],
                serde_json::to_vec(&body).unwrap(),
            )
            .await;
        samples.push(started.elapsed());
        assert_eq!(status, 202);
    }
    println!("webhook intake (202, stored and queued): {}", percentiles(samples));

    // A page of releases with component names.
    let mut components = Vec::new();
    for name in ["api", "web", "worker"] {
        let id = app.create_component(name).await;
        app.add_version(&id, "1.0.0", &digest(name)).await;
        components.push(id);
    }
    for i in 0..50 {
        let picked: Vec<_> = components.iter().map(|c| json!({ "componentId": c, "version": "1.0.0" })).collect();
        app.create_release(&format!("r{i}"), json!(picked)).await;
    }
    app.requests.take();
    let query = "{ releases(first: 50) { edges { node { name components { componentName digest } } } } }";
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        app.ok(query, json!({})).await;
        samples.push(started.elapsed());
    }
    let ops = app.requests.take();
    let requests = ops.len() as f64 / rounds as f64;
    if std::env::var("GANTRY_BENCH_DEBUG").is_ok() {
        println!("{:?}", &ops[..ops.len().min(12)]);
    }
    println!("releases(first: 50) with names: {} ({requests:.1} DynamoDB requests a query)", percentiles(samples));

    hostile_documents(&app).await;
}

/// Documents built to exhaust the server: how long each takes to be answered, how long a
/// cheap query sent alongside takes, and the process's memory before and after.
async fn hostile_documents(app: &TestApp) {
    let mut doubling = String::from("query { ...F30 }\nfragment F0 on Query { __typename }\n");
    for i in 1..=30 {
        doubling.push_str(&format!("fragment F{i} on Query {{ ...F{p} ...F{p} }}\n", p = i - 1));
    }
    let page = "releases(first: 100) { edges { node { state { environments { status } } } } }";
    let documents = [
        ("30 doubling fragments", doubling),
        ("1 MiB of nested brackets", format!("{{ a(x: {}) }}", "[".repeat((1 << 20) - 4096))),
        (
            "400 aliased pages of releases",
            format!("{{ {} }}", (0..400).map(|i| format!("a{i}: {page} ")).collect::<String>()),
        ),
        ("1 MiB of aliases", format!("{{ {} }}", (0..55_000).map(|i| format!("a{i}:__typename ")).collect::<String>())),
    ];
    let before = rss_kib();
    for (name, document) in documents {
        let started = Instant::now();
        let hostile = app.gql_as(Some(&app.token), &document, json!({}));
        let cheap = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let started = Instant::now();
            app.ok("{ __typename }", json!({})).await;
            started.elapsed()
        };
        let ((status, answer), cheap) = tokio::join!(hostile, cheap);
        let code = answer["errors"][0]["extensions"]["code"].as_str().unwrap_or("answered").to_owned();
        println!("{name}: {status} {code} in {:.2?}; a cheap query alongside took {cheap:.2?}", started.elapsed());
    }
    println!("resident memory: {} KiB before the hostile documents, {} KiB after", before, rss_kib());
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
