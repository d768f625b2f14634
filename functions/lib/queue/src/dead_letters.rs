//! The dead-letter queues of Gantry's queues, found through each queue's redrive policy, and
//! redrives: SQS's `StartMessageMoveTask` where SQS has it, else a move by Gantry (receive,
//! send to the queue with the same body and attributes, then delete).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use gantry_domain::dead_letters::{DeadLetterQueue, DeadLetters, QUEUES, Redrive, RedriveMethod};
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::sdk;

/// At most this many messages are moved by one redrive that Gantry does itself...
const MAX_MOVED: usize = 1_000;
/// ...and for at most this long, so the request answers in time; the rest waits for the next.
const MOVE_FOR: Duration = Duration::from_secs(20);
/// How long a received message stays hidden while it is moved.
const MOVE_VISIBILITY_SECONDS: i32 = 60;

/// Gantry's queues, by the names operators use, with their URLs.
#[derive(Clone)]
pub struct SqsDeadLetters {
    client: aws_sdk_sqs::Client,
    queues: [(&'static str, String); 3],
}

/// A queue and the dead-letter queue its redrive policy names.
struct Pair {
    source_arn: String,
    source_url: String,
    dlq_arn: String,
    dlq_name: String,
    dlq_url: String,
    max_receive_count: u64,
}

impl SqsDeadLetters {
    /// `urls`: the events, deploy-jobs and notifications queues' URLs.
    pub fn new(client: aws_sdk_sqs::Client, urls: [String; 3]) -> Self {
        let [events, deploy, notify] = urls;
        Self { client, queues: [(QUEUES[0], events), (QUEUES[1], deploy), (QUEUES[2], notify)] }
    }

    async fn attributes(&self, url: &str, names: &[QueueAttributeName]) -> Result<Vec<Option<String>>> {
        let mut get = self.client.get_queue_attributes().queue_url(url);
        for n in names {
            get = get.attribute_names(n.clone());
        }
        let found = get.send().await.map_err(sdk)?.attributes.unwrap_or_default();
        Ok(names.iter().map(|n| found.get(n).cloned()).collect())
    }

    /// The queue's dead-letter queue; `None` when it has no redrive policy.
    async fn pair(&self, source_url: &str) -> Result<Option<Pair>> {
        let found =
            self.attributes(source_url, &[QueueAttributeName::QueueArn, QueueAttributeName::RedrivePolicy]).await?;
        let (Some(source_arn), Some(policy)) = (found[0].clone(), found[1].clone()) else { return Ok(None) };
        let policy: serde_json::Value = serde_json::from_str(&policy).map_err(DomainError::internal)?;
        let dlq_arn = policy["deadLetterTargetArn"].as_str().unwrap_or_default().to_owned();
        // arn:aws:sqs:<region>:<account>:<name>
        let parts: Vec<&str> = dlq_arn.split(':').collect();
        let [_, _, "sqs", _, account, name] = parts[..] else {
            return Err(DomainError::internal(format!("a redrive policy names {dlq_arn:?}, not an SQS queue ARN")));
        };
        let url = self.client.get_queue_url().queue_name(name).queue_owner_aws_account_id(account).send().await;
        let dlq_url = url.map_err(sdk)?.queue_url.unwrap_or_default();
        let max_receive_count = match &policy["maxReceiveCount"] {
            serde_json::Value::String(s) => s.parse().unwrap_or(0),
            other => other.as_u64().unwrap_or(0),
        };
        Ok(Some(Pair {
            source_arn,
            source_url: source_url.to_owned(),
            dlq_name: name.to_owned(),
            dlq_arn,
            dlq_url,
            max_receive_count,
        }))
    }

    /// Moves the dead-letter queue's messages itself: what it received it sends to the queue
    /// and then deletes, so a message is never lost (at worst, sent twice, which every
    /// handler tolerates).
    async fn move_messages(&self, pair: &Pair) -> Result<Vec<String>> {
        let (started, mut ids) = (Instant::now(), Vec::new());
        while ids.len() < MAX_MOVED && started.elapsed() < MOVE_FOR {
            let received = self
                .client
                .receive_message()
                .queue_url(&pair.dlq_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .visibility_timeout(MOVE_VISIBILITY_SECONDS)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(sdk)?
                .messages
                .unwrap_or_default();
            if received.is_empty() {
                break;
            }
            let entries = received
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(m.body.clone().unwrap_or_default())
                        .set_message_attributes(m.message_attributes.clone())
                        .build()
                        .map_err(DomainError::internal)
                })
                .collect::<Result<Vec<_>>>()?;
            let sent = self.client.send_message_batch().queue_url(&pair.source_url).set_entries(Some(entries)).send();
            let sent = sent.await.map_err(sdk)?;
            let mut deletes = Vec::new();
            for ok in sent.successful {
                let i: usize = ok.id.parse().map_err(DomainError::internal)?;
                let handle = received[i].receipt_handle.clone().unwrap_or_default();
                deletes.push(
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(ok.id)
                        .receipt_handle(handle)
                        .build()
                        .map_err(DomainError::internal)?,
                );
                ids.push(ok.message_id);
            }
            if !deletes.is_empty() {
                let delete = self.client.delete_message_batch().queue_url(&pair.dlq_url).set_entries(Some(deletes));
                delete.send().await.map_err(sdk)?;
            }
        }
        Ok(ids)
    }
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    #[instrument(skip_all, err(level = "info"))]
    async fn dead_letter_queues(&self) -> Result<Vec<DeadLetterQueue>> {
        let mut all = Vec::new();
        for (queue, url) in &self.queues {
            let Some(pair) = self.pair(url).await? else { continue };
            let counts = [
                QueueAttributeName::ApproximateNumberOfMessages,
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            ];
            let found = self.attributes(&pair.dlq_url, &counts).await?;
            let count = |i: usize| found[i].as_deref().and_then(|n| n.parse().ok()).unwrap_or(0);
            all.push(DeadLetterQueue {
                queue: (*queue).to_owned(),
                name: pair.dlq_name,
                visible: count(0),
                in_flight: count(1),
                max_receive_count: pair.max_receive_count,
            });
        }
        Ok(all)
    }

    #[instrument(skip_all, fields(queue), err(level = "info"))]
    async fn redrive(&self, queue: &str) -> Result<Redrive> {
        let Some((name, url)) = self.queues.iter().find(|(name, _)| *name == queue) else {
            return Err(DomainError::not_found("queue", format!("{queue} (one of {})", QUEUES.join(", "))));
        };
        let pair =
            self.pair(url).await?.ok_or_else(|| DomainError::conflict(format!("{name} has no dead-letter queue")))?;
        let waiting = self.attributes(&pair.dlq_url, &[QueueAttributeName::ApproximateNumberOfMessages]).await?;
        let moved = waiting[0].as_deref().and_then(|n| n.parse().ok()).unwrap_or(0);
        let task = self
            .client
            .start_message_move_task()
            .source_arn(&pair.dlq_arn)
            .destination_arn(&pair.source_arn)
            .send()
            .await;
        let redrive =
            |method, moved, task, message_ids| Redrive { queue: (*name).to_owned(), method, moved, task, message_ids };
        match task {
            Ok(out) => Ok(redrive(RedriveMethod::MessageMoveTask, moved, out.task_handle, Vec::new())),
            Err(err) if unsupported(&err) => {
                tracing::info!("the queue service has no StartMessageMoveTask: moving the messages here");
                let ids = self.move_messages(&pair).await?;
                Ok(redrive(RedriveMethod::MovedByGantry, ids.len() as u64, None, ids))
            }
            Err(err) => Err(sdk(err)),
        }
    }
}

/// Whether SQS answered that it does not know the operation (emulators without it).
fn unsupported<E: aws_sdk_sqs::error::ProvideErrorMetadata, R>(err: &aws_sdk_sqs::error::SdkError<E, R>) -> bool {
    let code = err.as_service_error().and_then(|e| e.code()).unwrap_or_default();
    [
        "InvalidAction",
        "UnsupportedOperation",
        "AWS.SimpleQueueService.UnsupportedOperation",
        "UnknownOperationException",
    ]
    .contains(&code)
}
