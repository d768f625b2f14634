//! Ingest after a burst: webhooks of one event each, over 50 image repositories, accepted at concurrency 8 while the ingest worker drains the events
//! queue; how long after the last accept the queue is empty, with one receiver and with
//! the devserver's `POLLERS`.

use std::time::{Duration, Instant};

use gantry_tests::app::TestApp;
use gantry_tests::recorder::Request;

use crate::measure;
use crate::worker::Worker;

/// What ingest spent on the last burst.
pub struct Drained {
    pub events: usize,
    pub receivers: usize,
    pub dynamodb: Vec<Request>,
    pub sqs: Vec<Request>,
    /// Batches handled: a Lambda invocation each under an event source mapping.
    pub batches: usize,
    /// The mean time a batch took.
    pub batch_time: Duration,
}

/// One run with a single receiver, one with the devserver's `POLLERS`.
pub async fn run(app: &TestApp, burst: usize) -> Vec<Drained> {
    let (_, secret) = app.create_integration("burst", "DISTRIBUTION", "http://127.0.0.1:5001").await;
    let auth = format!("Bearer {secret}");
    println!("\nIngest after a burst of {burst} webhooks (50 image repositories, accepted at concurrency 8)");
    let mut runs = Vec::new();
    for receivers in [1, gantry_queue::POLLERS] {
        fresh_queue(app).await;
        let (state, dynamodb, sqs) = app.worker_state();
        let worker = Worker::spawn(state.clone(), state.events.clone(), receivers, gantry_ingest::handle);
        let accepted =
            measure::run(burst, 8, |i| crate::intake::post(app, &auth, format!("burst{receivers}-{i}"), i % 50)).await;
        let empty_after = until_empty(app).await;
        let (batches, batch_time) = worker.stop();
        let whole = accepted.wall + empty_after;
        println!(
            "  {receivers} receiver(s): accepted at {:.0}/s; queue empty {:.2?} after the last accept; \
             ingest averaged {:.0} events/s over the burst ({batches} batches, {batch_time:.2?} each)",
            accepted.per_second(),
            empty_after,
            burst as f64 / whole.as_secs_f64()
        );
        let (dynamodb, sqs) = (dynamodb.take_requests(), sqs.take_requests());
        runs.push(Drained { events: burst, receivers, dynamodb, sqs, batches, batch_time });
    }
    runs
}

/// Empties the events queue of what earlier figures left, once any receive a stopped
/// worker left waiting has ended (it would take messages to nobody, for a visibility
/// timeout).
async fn fresh_queue(app: &TestApp) {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.sqs.purge_queue().queue_url(&app.events_queue).send().await.unwrap();
    until_empty(app).await;
}

/// Waits until no message of the events queue waits or is in flight.
async fn until_empty(app: &TestApp) -> Duration {
    let started = Instant::now();
    loop {
        let (waiting, in_flight) = app.queue_depth(&app.events_queue).await;
        if waiting == "0" && in_flight == "0" {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(300), "the events queue did not drain: {waiting} waiting");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
