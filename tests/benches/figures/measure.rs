//! Timing helpers: run an operation a number of times at a concurrency, and describe the
//! samples; plus the DynamoDB size of an item, which sets its write units.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;

/// What one run of an operation gave: every latency, and the wall time of the whole run.
pub struct Run {
    pub samples: Vec<Duration>,
    pub wall: Duration,
    /// The CPU time this process used meanwhile.
    pub cpu: Duration,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.samples.len() as f64 / self.wall.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.samples.clone();
        sorted.sort();
        sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
    }

    /// `p50 / p99` as text.
    pub fn latency(&self) -> String {
        format!("p50 {:>8.2?}  p99 {:>8.2?}", self.percentile(0.50), self.percentile(0.99))
    }
}

/// Runs `op(i)` for i in 0..total, `concurrency` at a time (each of `concurrency` lanes
/// running its share in turn).
pub async fn run<F, Fut>(total: usize, concurrency: usize, op: F) -> Run
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let (started, cpu) = (Instant::now(), cpu_time());
    let lanes = (0..concurrency).map(|lane| {
        let op = &op;
        async move {
            let mut samples = Vec::new();
            for i in (lane..total).step_by(concurrency) {
                let at = Instant::now();
                op(i).await;
                samples.push(at.elapsed());
            }
            samples
        }
    });
    let samples = futures::future::join_all(lanes).await.into_iter().flatten().collect();
    Run { samples, wall: started.elapsed(), cpu: cpu_time() - cpu }
}

/// Runs `a` and `b` one after the other, `rounds` times each, so that whatever drifts over a
/// run (the emulator's caches, other load) weighs on both alike.
pub async fn interleaved<A, FutA, B, FutB>(rounds: usize, a: A, b: B) -> (Run, Run)
where
    A: Fn() -> FutA,
    FutA: Future<Output = ()>,
    B: Fn() -> FutB,
    FutB: Future<Output = ()>,
{
    let empty = || Run { samples: Vec::new(), wall: Duration::ZERO, cpu: Duration::ZERO };
    let (mut ra, mut rb) = (empty(), empty());
    for _ in 0..rounds {
        timed(&mut ra, a()).await;
        timed(&mut rb, b()).await;
    }
    (ra, rb)
}

async fn timed(run: &mut Run, op: impl Future<Output = ()>) {
    let (at, cpu) = (Instant::now(), cpu_time());
    op.await;
    let took = at.elapsed();
    run.samples.push(took);
    run.wall += took;
    run.cpu += cpu_time() - cpu;
}

/// CPU time this process has used so far, user and system, all threads.
pub fn cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec, which `now` is.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime");
    Duration::new(now.tv_sec.unsigned_abs(), u32::try_from(now.tv_nsec).unwrap_or(0))
}

/// An item's size as DynamoDB bills it: each attribute's name and value, in bytes.
pub fn item_size(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::L(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        AttributeValue::Ss(items) => items.iter().map(String::len).sum(),
        _ => 1,
    }
}
