//! An SDK interceptor that records the operation of every request a client sends, for the
//! tests and benches that count requests (DynamoDB and SQS clients alike).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};

/// The service prefixes of `x-amz-target` that [`Recorder`] drops.
const PREFIXES: [&str; 2] = ["DynamoDB_20120810.", "AmazonSQS."];

/// Records every request: its operation (`Query`, `SendMessageBatch`, ...) and body, in order.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Request>>>);

/// One request a client sent.
#[derive(Debug, Clone)]
pub struct Request {
    pub operation: String,
    pub body: Vec<u8>,
    /// Its place among the requests of every recorder in this process, to put requests
    /// recorded apart back in the order they were sent.
    pub seq: u64,
}

static SENT: AtomicU64 = AtomicU64::new(0);

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "Recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request();
        let target = request.headers().get("x-amz-target").unwrap_or("?");
        let operation = PREFIXES.iter().find_map(|p| target.strip_prefix(p)).unwrap_or(target).to_owned();
        let body = request.body().bytes().unwrap_or_default().to_vec();
        let seq = SENT.fetch_add(1, Ordering::Relaxed);
        self.0.lock().unwrap().push(Request { operation, body, seq });
        Ok(())
    }
}

impl Recorder {
    /// The operations recorded since the last call.
    pub fn take(&self) -> Vec<String> {
        self.take_requests().into_iter().map(|r| r.operation).collect()
    }

    /// The requests recorded since the last call, bodies included.
    pub fn take_requests(&self) -> Vec<Request> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Fails every request whose body mentions its marker before it is sent, as a table or a
/// queue out of reach at that one write (a process that dies there leaves the same state).
#[derive(Debug, Clone)]
pub struct Refuse(pub &'static str);

impl Intercept for Refuse {
    fn name(&self) -> &'static str {
        "Refuse"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let body = context.request().body().bytes().unwrap_or_default();
        if String::from_utf8_lossy(body).contains(self.0) {
            return Err(format!("refused by the test: the request mentions {}", self.0).into());
        }
        Ok(())
    }
}
