//! Agents' doorbells: one SQS queue per agent (`<prefix><agentId>`), made by its first
//! claim that waits. The deployer rings it when it writes a job for the agent, and a claim
//! waiting on it (a ReceiveMessage long poll) returns at once, in whichever process it
//! waits: no table reads while an agent idles.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName};
use gantry_domain::agents::AgentId;
use gantry_domain::agents::jobs::Doorbell;
use gantry_domain::kept::Kept;
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::sdk;

/// Agents whose queue URLs one process keeps at most.
const MAX_URLS: usize = 10_000;

/// The longest wait SQS allows in one receive.
const MAX_WAIT: Duration = Duration::from_secs(20);

#[derive(Clone)]
pub struct SqsDoorbells {
    client: aws_sdk_sqs::Client,
    prefix: String,
    urls: Kept<AgentId, String>,
}

impl SqsDoorbells {
    /// Doorbells named `<prefix><agentId>`.
    pub fn new(client: aws_sdk_sqs::Client, prefix: impl Into<String>) -> Self {
        Self { client, prefix: prefix.into(), urls: Kept::new(MAX_URLS) }
    }

    /// The agent's queue URL; with `make`, the queue is made when it is not there, else
    /// `None` then.
    async fn url(&self, agent: AgentId, make: bool) -> Result<Option<String>> {
        if let Some(url) = self.urls.get(&agent) {
            return Ok(Some(url));
        }
        let name = format!("{}{agent}", self.prefix);
        let url = if make {
            // A ring older than a minute means nothing: the claim after it read the jobs.
            let made = self
                .client
                .create_queue()
                .queue_name(&name)
                .attributes(QueueAttributeName::MessageRetentionPeriod, "60")
                .send()
                .await
                .map_err(sdk)?;
            made.queue_url
        } else {
            match self.client.get_queue_url().queue_name(&name).send().await {
                Ok(out) => out.queue_url,
                Err(err) if err.as_service_error().is_some_and(|e| e.is_queue_does_not_exist()) => None,
                Err(err) => return Err(sdk(err)),
            }
        };
        if let Some(url) = &url {
            self.urls.keep(agent, url.clone());
        }
        Ok(url)
    }
}

#[async_trait]
impl Doorbell for SqsDoorbells {
    #[instrument(skip_all, fields(agent_id = %agent), err(level = "info"))]
    async fn ring(&self, agent: AgentId) -> Result<()> {
        // No queue: the agent never waited, and its next claim reads its jobs anyway.
        let Some(url) = self.url(agent, false).await? else { return Ok(()) };
        self.client.send_message().queue_url(url).message_body("job").send().await.map_err(sdk)?;
        Ok(())
    }

    #[instrument(skip_all, fields(agent_id = %agent), err(level = "info"))]
    async fn wait(&self, agent: AgentId, wait: Duration) -> Result<bool> {
        // Whole seconds, rounded up: what is left of a claim's wait is rarely a round number.
        let seconds = wait.min(MAX_WAIT).as_millis().div_ceil(1000) as u64;
        if seconds == 0 {
            return Ok(false);
        }
        let url = self.url(agent, true).await?.ok_or_else(|| DomainError::internal("no doorbell queue"))?;
        // The long poll outlasts the SDK's usual operation timeout.
        let timeouts = aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
            .operation_timeout(Duration::from_secs(seconds + 5))
            .build();
        let out = self
            .client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(i32::try_from(seconds).unwrap_or(20))
            .customize()
            .config_override(aws_sdk_sqs::config::Builder::default().timeout_config(timeouts))
            .send()
            .await
            .map_err(sdk)?;
        let rings = out.messages.unwrap_or_default();
        let entries: Vec<DeleteMessageBatchRequestEntry> = rings
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect();
        if !entries.is_empty() {
            let deleted = self.client.delete_message_batch().queue_url(&url).set_entries(Some(entries)).send().await;
            if let Err(err) = deleted {
                // A ring left behind only wakes the next wait once more.
                tracing::warn!(error = %sdk(err), "rings were not deleted");
            }
        }
        Ok(!rings.is_empty())
    }

    #[instrument(skip_all, fields(agent_id = %agent), err(level = "info"))]
    async fn remove(&self, agent: AgentId) -> Result<()> {
        if let Some(url) = self.url(agent, false).await? {
            self.client.delete_queue().queue_url(url).send().await.map_err(sdk)?;
        }
        self.urls.forget(&agent);
        Ok(())
    }
}
