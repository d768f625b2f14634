//! SQS: the messages Gantry queues, the sender, and a poller that feeds queued messages to
//! a worker's handler outside Lambda (the devserver), exactly as an event source mapping
//! would, partial batch failures included. It knows message shapes and SQS, not what a
//! message means.

use std::future::Future;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use gantry_domain::deployments::{DeployJob, DeployQueue};
use gantry_domain::events::{EventQueue, QueuedImageEvent};
use gantry_domain::notifications::{EventSink, PromotionEvent};
use gantry_domain::notifier::{NotifierJob, NotifierQueue};
use gantry_domain::reports::{ReportJob, ReportQueue};
use gantry_domain::steps::{StepJob, StepQueue};
use gantry_domain::{DomainError, Result};
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};
use tracing::{Instrument as _, instrument};

mod dead_letters;
mod doorbell;
mod worker;
pub use dead_letters::SqsDeadLetters;
pub use doorbell::SqsDoorbells;
pub use worker::serve;

/// SQS accepts at most this many messages in one SendMessageBatch.
const SEND_BATCH_MAX: usize = 10;

/// How many groups (or, on a standard queue, records) of one batch [`handle_batch`] works
/// on at once: a batch of 100 events makes no more than this many callers of DynamoDB and
/// the registry.
pub const CONCURRENT_GROUPS: usize = 16;

/// How many receivers [`SqsQueue::poll`] runs on one queue (outside Lambda, where the event
/// source mapping's concurrency plays this part).
pub const POLLERS: usize = 4;

/// How long a polled message stays hidden; a live poller extends it every third of that.
pub const POLL_VISIBILITY_SECONDS: i32 = 60;

/// A timeout or a broken connection is `Unavailable`; anything else internal.
fn sdk<E: std::error::Error + Send + Sync + 'static, R: std::fmt::Debug + Send + Sync + 'static>(
    err: aws_sdk_sqs::error::SdkError<E, R>,
) -> DomainError {
    use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
    let unavailable = match &err {
        SdkError::TimeoutError(_) => true,
        SdkError::DispatchFailure(failure) => failure.is_timeout() || failure.is_io(),
        _ => false,
    };
    if unavailable {
        tracing::warn!(error = %DisplayErrorContext(&err), "SQS unavailable");
        return DomainError::unavailable("the queue did not answer in time; try again");
    }
    DomainError::internal(DisplayErrorContext(err))
}

/// An SQS queue. On a FIFO queue (a URL ending in `.fifo`) messages of one group stay in
/// order and a deduplication id seen in the last five minutes is dropped by SQS itself; the
/// events and deploy-jobs queues are standard queues, whose consumers are order-independent
/// and idempotent.
#[derive(Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
    /// How long a polled message stays hidden (extended while its handler works).
    poll_visibility: i32,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into(), poll_visibility: POLL_VISIBILITY_SECONDS }
    }

    /// Polled messages stay hidden `seconds` (at least 3), extended every third of that.
    pub fn with_poll_visibility(mut self, seconds: i32) -> Self {
        self.poll_visibility = seconds.max(3);
        self
    }

    /// Sends messages as `(group, deduplication key, body)` in batches; group and key matter
    /// only on a FIFO queue.
    pub async fn send(&self, messages: Vec<(String, String, String)>) -> Result<()> {
        let trace = trace_attribute();
        for chunk in messages.chunks(SEND_BATCH_MAX) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, (group, dedup, body))| {
                    let entry = SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .set_message_attributes(trace.clone());
                    let entry = if self.url.ends_with(".fifo") {
                        // SQS allows 128 characters here; a hash fits any key.
                        entry
                            .message_group_id(group)
                            .message_deduplication_id(hex::encode(Sha256::digest(dedup.as_bytes())))
                    } else {
                        entry
                    };
                    entry.build().map_err(DomainError::internal)
                })
                .collect::<Result<Vec<_>>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sdk)?;
            if let Some(failed) = out.failed.first() {
                return Err(DomainError::internal(format!("SQS refused a message: {failed:?}")));
            }
        }
        Ok(())
    }

    /// Receives up to ten messages, waiting up to `wait_seconds`, as a Lambda SQS event.
    pub async fn receive(&self, wait_seconds: i32) -> Result<SqsEvent> {
        self.receive_hidden(wait_seconds, None).await
    }

    /// As [`SqsQueue::receive`], hiding what it receives for `visibility` seconds instead
    /// of the queue's own visibility timeout.
    async fn receive_hidden(&self, wait_seconds: i32, visibility: Option<i32>) -> Result<SqsEvent> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .set_visibility_timeout(visibility)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .message_attribute_names(gantry_telemetry::TRACEPARENT)
            .send()
            .await
            .map_err(sdk)?;
        let records = out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let mut record = SqsMessage::default();
                record.message_id = m.message_id;
                record.receipt_handle = m.receipt_handle;
                record.body = m.body;
                record.attributes =
                    m.attributes.unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect();
                record.message_attributes = m
                    .message_attributes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(name, value)| {
                        let mut attribute = aws_lambda_events::event::sqs::SqsMessageAttribute::default();
                        attribute.string_value = value.string_value;
                        attribute.data_type = Some(value.data_type);
                        (name, attribute)
                    })
                    .collect();
                record.event_source_arn = Some(self.url.clone());
                record
            })
            .collect();
        let mut event = SqsEvent::default();
        event.records = records;
        Ok(event)
    }

    /// Deletes the messages a handler did not report as failed, as an event source mapping
    /// does: one DeleteMessageBatch for a received batch (at most ten messages).
    pub async fn acknowledge(&self, event: &SqsEvent, response: &SqsBatchResponse) -> Result<()> {
        let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        let entries = event
            .records
            .iter()
            .filter_map(|r| Some((r.message_id.as_deref()?, r.receipt_handle.as_deref()?)))
            .filter(|(id, _)| !failed.contains(id))
            .enumerate()
            .map(|(i, (_, handle))| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()
                    .map_err(DomainError::internal)
            })
            .collect::<Result<Vec<_>>>()?;
        for chunk in entries.chunks(SEND_BATCH_MAX) {
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(sdk)?;
            if let Some(failed) = out.failed.first() {
                return Err(DomainError::internal(format!("SQS did not delete a message: {failed:?}")));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl EventQueue for SqsQueue {
    #[instrument(skip_all, fields(count = events.len()), err(level = "info"))]
    async fn enqueue(&self, events: &[QueuedImageEvent]) -> Result<()> {
        let messages = events
            .iter()
            .map(|e| {
                Ok((
                    e.event.image_repository(),
                    e.delivery_key(),
                    serde_json::to_string(e).map_err(DomainError::internal)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        self.send(messages).await
    }
}

#[async_trait]
impl DeployQueue for SqsQueue {
    #[instrument(skip_all, fields(count = jobs.len()), err(level = "info"))]
    async fn enqueue_jobs(&self, jobs: &[DeployJob]) -> Result<()> {
        let messages = jobs
            .iter()
            .map(|j| {
                let key = format!("{}#{}#{}", j.promotion_id, j.target_id, j.attempt);
                Ok((j.promotion_id.to_string(), key, serde_json::to_string(j).map_err(DomainError::internal)?))
            })
            .collect::<Result<Vec<_>>>()?;
        self.send(messages).await
    }
}

impl SqsQueue {
    /// Sends one JSON message, delivered after `delay_seconds` (SQS allows 15 minutes at most).
    async fn send_delayed(&self, job: &impl serde::Serialize, delay_seconds: u32) -> Result<()> {
        let body = serde_json::to_string(job).map_err(DomainError::internal)?;
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .set_message_attributes(trace_attribute());
        if delay_seconds > 0 {
            send = send.delay_seconds(i32::try_from(delay_seconds.min(900)).unwrap_or(900));
        }
        send.send().await.map_err(sdk)?;
        Ok(())
    }
}

#[async_trait]
impl ReportQueue for SqsQueue {
    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, delay_seconds), err(level = "info"))]
    async fn enqueue_report(&self, job: &ReportJob, delay_seconds: u32) -> Result<()> {
        self.send_delayed(job, delay_seconds).await
    }
}

#[async_trait]
impl gantry_domain::agents::jobs::DeadlineQueue for SqsQueue {
    #[instrument(skip_all, fields(promotion_id = %check.promotion_id, delay_seconds), err(level = "info"))]
    async fn enqueue_deadline(
        &self,
        check: &gantry_domain::agents::jobs::DeadlineCheck,
        delay_seconds: u32,
    ) -> Result<()> {
        self.send_delayed(check, delay_seconds).await
    }
}

#[async_trait]
impl StepQueue for SqsQueue {
    #[instrument(skip_all, fields(promotion_id = %job.promotion_id, step = job.step, delay_seconds), err(level = "info"))]
    async fn enqueue_step(&self, job: &StepJob, delay_seconds: u32) -> Result<()> {
        self.send_delayed(job, delay_seconds).await
    }
}

#[async_trait]
impl NotifierQueue for SqsQueue {
    #[instrument(skip_all, fields(delay_seconds), err(level = "info"))]
    async fn enqueue_notifier(&self, job: &NotifierJob, delay_seconds: u32) -> Result<()> {
        self.send_delayed(job, delay_seconds).await
    }

    #[instrument(skip_all, fields(count = jobs.len()), err(level = "info"))]
    async fn enqueue_notifiers(&self, jobs: &[NotifierJob]) -> Result<()> {
        // A standard queue: group and key matter only on FIFO queues, which this is not.
        let messages = jobs
            .iter()
            .map(|job| Ok((String::new(), String::new(), serde_json::to_string(job).map_err(DomainError::internal)?)))
            .collect::<Result<Vec<_>>>()?;
        self.send(messages).await
    }
}

#[async_trait]
impl EventSink for SqsQueue {
    /// Queues the events for the notifier, in one batch of up to ten; events that cannot be
    /// queued are logged, and the promotion goes on.
    async fn publish(&self, events: &[PromotionEvent]) {
        let Some(first) = events.first() else { return };
        let jobs: Vec<NotifierJob> = events.iter().cloned().map(NotifierJob::Event).collect();
        if let Err(err) = self.enqueue_notifiers(&jobs).await {
            let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
            tracing::warn!(promotion_id = %first.promotion_id, ?kinds, error = %err, "could not queue notification events");
        }
    }
}

/// The current trace context as a message attribute, so the handler of the message
/// continues the trace (SQS allows ten attributes a message; Gantry sets only this one).
fn trace_attribute() -> Option<std::collections::HashMap<String, aws_sdk_sqs::types::MessageAttributeValue>> {
    let value = gantry_telemetry::traceparent()?;
    let attribute =
        aws_sdk_sqs::types::MessageAttributeValue::builder().data_type("String").string_value(value).build().ok()?;
    Some([(gantry_telemetry::TRACEPARENT.to_owned(), attribute)].into())
}

/// The span a record is handled in: a consumer span continuing the trace its sender's
/// `traceparent` attribute names.
fn message_span(record: &SqsMessage) -> tracing::Span {
    let queue = record.event_source_arn.as_deref().and_then(|q| q.rsplit([':', '/']).next()).unwrap_or_default();
    let span = tracing::info_span!(
        "sqs.process",
        otel.name = %format_args!("{queue} process"),
        otel.kind = "consumer",
        "messaging.system" = "aws_sqs",
        "messaging.destination.name" = queue,
        "messaging.message.id" = record.message_id.as_deref().unwrap_or_default(),
    );
    let traceparent =
        record.message_attributes.get(gantry_telemetry::TRACEPARENT).and_then(|a| a.string_value.as_deref());
    gantry_telemetry::follow(&span, traceparent);
    span
}

/// Runs `process` on every record of an SQS event and reports the ones that failed, so
/// only those are retried (and, past the queue's maxReceiveCount, dead-lettered).
/// A record whose body does not decode fails too: it is poison, and the DLQ is its place.
///
/// Message groups (FIFO) run concurrently, up to [`CONCURRENT_GROUPS`] at once, each in
/// order; after a failure the rest of its group is reported failed unprocessed, so a retry
/// cannot overtake it. Records without a group (a standard queue) each run on their own.
pub async fn handle_batch<T, F, Fut>(event: SqsEvent, process: F) -> SqsBatchResponse
where
    T: DeserializeOwned,
    F: Fn(T, u32) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    use futures::StreamExt as _;
    let groups = by_group(event.records);
    let failed: Vec<Vec<String>> = futures::stream::iter(groups)
        .map(|group| handle_group(group, &process))
        .buffer_unordered(CONCURRENT_GROUPS)
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .flatten()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// The records in groups, each in arrival order: by `MessageGroupId`, or one per record.
fn by_group(records: Vec<SqsMessage>) -> Vec<Vec<SqsMessage>> {
    let mut groups: Vec<(Option<String>, Vec<SqsMessage>)> = Vec::new();
    for record in records {
        let key = record.attributes.get("MessageGroupId").cloned();
        match groups.iter_mut().find(|(k, _)| key.is_some() && *k == key) {
            Some((_, group)) => group.push(record),
            None => groups.push((key, vec![record])),
        }
    }
    groups.into_iter().map(|(_, group)| group).collect()
}

/// Processes one group in order; returns the ids of the records that failed or were held
/// back behind a failure.
async fn handle_group<T, F, Fut>(records: Vec<SqsMessage>, process: &F) -> Vec<String>
where
    T: DeserializeOwned,
    F: Fn(T, u32) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut failed = Vec::new();
    for record in records {
        let id = record.message_id.clone().unwrap_or_default();
        if !failed.is_empty() {
            tracing::info!(message_id = %id, "held back behind a failed message of its group");
            failed.push(id);
            continue;
        }
        let receives = receive_count(&record);
        let span = message_span(&record);
        let outcome = match serde_json::from_str::<T>(record.body.as_deref().unwrap_or_default()) {
            Ok(message) => process(message, receives).instrument(span.clone()).await,
            Err(err) => Err(DomainError::validation(format!("message {id} does not decode: {err}"))),
        };
        let _entered = span.enter();
        match outcome {
            Ok(()) => tracing::info!(message_id = %id, "message handled"),
            Err(DomainError::Internal(detail)) => {
                tracing::error!(message_id = %id, error = %detail, "message failed");
                failed.push(id);
            }
            Err(other) => {
                tracing::warn!(message_id = %id, code = other.code(), error = %other, "message failed");
                failed.push(id);
            }
        }
    }
    failed
}

/// How many times SQS has delivered the record (`ApproximateReceiveCount`), 1 the first time.
fn receive_count(record: &SqsMessage) -> u32 {
    record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(bodies: &[&str]) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let mut m = SqsMessage::default();
                m.message_id = Some(format!("m{i}"));
                m.body = Some((*b).to_owned());
                m
            })
            .collect();
        e
    }

    #[tokio::test]
    async fn only_failed_records_are_reported() {
        let mut batch = event(&["1", "2", "not json", "4"]);
        batch.records[3].attributes.insert("ApproximateReceiveCount".into(), "3".into());
        let response = handle_batch(batch, |n: u32, receives: u32| async move {
            match (n, receives) {
                (2, _) => Err(DomainError::internal("boom")),
                (4, 3) | (1, 1) => Ok(()),
                other => panic!("unexpected {other:?}"),
            }
        })
        .await;
        let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(failed, ["m1", "m2"]);
    }

    fn failed(response: &SqsBatchResponse) -> Vec<&str> {
        response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
    }

    #[tokio::test]
    async fn groups_run_concurrently_and_a_failure_holds_back_the_rest_of_its_group() {
        let mut batch = event(&["1", "2", "3", "10", "20"]);
        for (i, group) in ["a", "a", "a", "b", "b"].iter().enumerate() {
            batch.records[i].attributes.insert("MessageGroupId".into(), (*group).into());
        }
        let seen = std::sync::Mutex::new(Vec::new());
        let b_done = tokio::sync::Notify::new();
        let batch = handle_batch(batch, |n: u32, _| {
            let (seen, b_done) = (&seen, &b_done);
            async move {
                // Group a's first message waits for group b to finish: only concurrency ends it.
                if n == 1 {
                    b_done.notified().await;
                }
                seen.lock().unwrap().push(n);
                if n == 20 {
                    b_done.notify_one();
                }
                if n == 2 { Err(DomainError::internal("boom")) } else { Ok(()) }
            }
        });
        let response = tokio::time::timeout(std::time::Duration::from_secs(5), batch)
            .await
            .expect("run one group at a time, and group a waits for ever");
        assert_eq!(*seen.lock().unwrap(), [10, 20, 1, 2], "3 is never processed after 2 failed");
        assert_eq!(failed(&response), ["m1", "m2"]);
    }
}
