//! Documents built to exhaust the server: how long each takes to be answered, how long a
//! cheap query sent alongside takes, and the process's memory before and after.

use std::time::{Duration, Instant};

use gantry_tests::app::TestApp;
use serde_json::json;

pub async fn run(app: &TestApp) {
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
