//! A worker polling one queue in the bench, counting its batches (an invocation each under
//! an event source mapping) and the time its handler was busy.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use gantry_platform::AppState;
use gantry_queue::SqsQueue;

pub struct Worker {
    batches: Arc<AtomicUsize>,
    busy_micros: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// Polls `queue` with `receivers` receivers, handing each batch to `handle`.
    pub fn spawn<H, F>(state: Arc<AppState>, queue: SqsQueue, receivers: usize, handle: H) -> Self
    where
        H: Fn(Arc<AppState>, SqsEvent) -> F + Send + Sync + 'static,
        F: Future<Output = SqsBatchResponse> + Send + 'static,
    {
        let batches = Arc::new(AtomicUsize::new(0));
        let busy_micros = Arc::new(AtomicU64::new(0));
        let (count, busy) = (batches.clone(), busy_micros.clone());
        let task = tokio::spawn(async move {
            let handler = |event| {
                let (count, busy) = (count.clone(), busy.clone());
                let work = handle(state.clone(), event);
                async move {
                    let started = Instant::now();
                    let response = work.await;
                    count.fetch_add(1, Ordering::Relaxed);
                    busy.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                    response
                }
            };
            queue.poll_with(receivers, handler).await;
        });
        Self { batches, busy_micros, task }
    }

    /// Stops polling; the batches handled and the mean time one took.
    pub fn stop(self) -> (usize, Duration) {
        self.task.abort();
        let batches = self.batches.load(Ordering::Relaxed);
        let busy = Duration::from_micros(self.busy_micros.load(Ordering::Relaxed));
        (batches, busy / batches.max(1) as u32)
    }
}
