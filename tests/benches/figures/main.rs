//! Figures for Gantry's hot paths against the local emulator (start it with
//! `make emulator-up`; `cargo bench -p gantry-tests` builds optimised), each beside what
//! the emulator alone gives where that comparison means something:
//! - webhook intake at concurrency 1 and 8, beside the same calls made straight;
//! - DynamoDB requests per GraphQL query as lists grow, and latency beside raw calls;
//! - ingest draining a burst of webhooks;
//! - promotions end to end;
//! - the AWS cost of a million webhooks and of a million promotions, from the counted requests;
//! - hostile documents, and memory;
//! - the Slack app's acknowledgement of commands and clicks;
//! - the supply-chain gate on a release of signed and attested images, cached and not.
//!
//! It prints figures; it asserts nothing about them, as timings belong here and not in tests.

mod admission;
mod cost;
mod drain;
mod evidence;
mod hostile;
mod images;
mod intake;
mod measure;
mod promotions;
mod reads;
mod slack;
mod worker;

use gantry_tests::app::TestApp;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    // Figures only: the app's logs are for failing tests, or GANTRY_BENCH_LOG=warn.
    match std::env::var("GANTRY_BENCH_LOG").ok().and_then(|l| l.parse::<tracing::Level>().ok()) {
        Some(level) => tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).init(),
        None => drop(tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default())),
    }
    let only = std::env::var("GANTRY_BENCH_ONLY").ok();
    let wants = |part: &str| only.as_deref().is_none_or(|o| o.split(',').any(|p| p == part));
    let rounds = setting("GANTRY_BENCH_ROUNDS", 200);
    let app = TestApp::spawn().await;
    let accepted = if wants("intake") { Some(intake::run(&app, rounds).await) } else { None };
    let drained = if wants("drain") { Some(drain::run(&app, setting("GANTRY_BENCH_BURST", 2000)).await) } else { None };
    if wants("reads") {
        reads::run(&app, rounds).await;
    }
    let promoted = if wants("promotions") {
        Some(promotions::run(&app, setting("GANTRY_BENCH_PROMOTIONS", 20)).await)
    } else {
        None
    };
    if let (Some(accepted), Some(drains), Some(promoted)) = (accepted, drained, promoted) {
        cost::report(&accepted, &drains, &promoted);
    }
    if wants("hostile") {
        hostile::run(&app).await;
    }
    if wants("slack") {
        slack::run(rounds).await;
    }
    if wants("admission") {
        admission::run(&app, setting("GANTRY_BENCH_COMPONENTS", 20), rounds).await;
    }
    if wants("evidence") {
        evidence::run(&app, setting("GANTRY_BENCH_RECORDS", 10_000), rounds).await;
    }
}
