//! Workers on a queue: the devserver's pollers, and the Lambda runtime's loop. Both keep the
//! messages a handler works on hidden for a short while at a time, so a worker that dies
//! leaves them to another within [`POLL_VISIBILITY_SECONDS`](crate::POLL_VISIBILITY_SECONDS)
//! instead of the queue's own (longer) visibility timeout.

use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

use crate::{POLLERS, SqsQueue, sdk};

impl SqsQueue {
    /// Polls for ever with [`POLLERS`] concurrent receivers, giving each batch to `handler`
    /// and acknowledging it, as an event source mapping with that concurrency would. On a
    /// FIFO queue SQS hands a message group to one receiver at a time, so order within a
    /// group holds while other groups proceed.
    pub async fn poll<H, F>(&self, handler: H)
    where
        H: Fn(SqsEvent) -> F,
        F: Future<Output = SqsBatchResponse>,
    {
        self.poll_with(POLLERS, handler).await;
    }

    /// As [`SqsQueue::poll`], with `receivers` concurrent receivers.
    pub async fn poll_with<H, F>(&self, receivers: usize, handler: H)
    where
        H: Fn(SqsEvent) -> F,
        F: Future<Output = SqsBatchResponse>,
    {
        futures::future::join_all((0..receivers.max(1)).map(|_| self.poll_one(&handler))).await;
    }

    /// Runs `work` while `event`'s messages stay hidden: every third of the poll visibility
    /// they are hidden for that long again. With `at_once` they are first hidden for the
    /// poll visibility right away: a batch Lambda hands over is hidden for the queue's own
    /// timeout, which must outlast the whole function.
    pub async fn while_hidden<T>(&self, event: &SqsEvent, at_once: bool, work: impl Future<Output = T>) -> T {
        tokio::select! {
            out = work => out,
            () = self.keep_hidden(event, at_once) => unreachable!("keep_hidden never returns"),
        }
    }

    async fn keep_hidden(&self, event: &SqsEvent, at_once: bool) {
        let every = std::time::Duration::from_secs(u64::from(self.poll_visibility.unsigned_abs()) / 3);
        if !at_once {
            tokio::time::sleep(every).await;
        }
        loop {
            for handle in event.records.iter().filter_map(|r| r.receipt_handle.as_deref()) {
                let hidden = self
                    .client
                    .change_message_visibility()
                    .queue_url(&self.url)
                    .receipt_handle(handle)
                    .visibility_timeout(self.poll_visibility)
                    .send()
                    .await;
                if let Err(err) = hidden {
                    tracing::warn!(error = %sdk(err), "a message's visibility was not changed");
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    async fn poll_one<H, F>(&self, handler: &H)
    where
        H: Fn(SqsEvent) -> F,
        F: Future<Output = SqsBatchResponse>,
    {
        loop {
            match self.receive_hidden(1, Some(self.poll_visibility)).await {
                Ok(event) if event.records.is_empty() => {}
                Ok(event) => {
                    // Received hidden for the poll visibility already.
                    let response = self.while_hidden(&event, false, handler(event.clone())).await;
                    if let Err(err) = self.acknowledge(&event, &response).await {
                        tracing::error!(error = %err, "acknowledging messages failed");
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, queue = %self.url, "receiving messages failed");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// Serves SQS batches as a Lambda function until the runtime stops it: each batch goes to
/// `handler`, whose response reports the records that failed. With `hiding`, the queue the
/// batches come from, they stay hidden only while the handler works (see
/// [`SqsQueue::while_hidden`]): a function that dies or times out mid-batch leaves them to
/// another within the poll visibility. Without it they stay hidden for the queue's timeout.
pub async fn serve<F, Fut>(hiding: Option<SqsQueue>, handler: F) -> std::result::Result<(), lambda_runtime::Error>
where
    F: Fn(SqsEvent) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
    let hiding = &hiding;
    let handler = &handler;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
        let event = event.payload;
        let response = match hiding {
            Some(queue) => queue.while_hidden(&event, true, handler(event.clone())).await,
            None => handler(event).await,
        };
        // A frozen environment exports nothing: the batch's spans go before its answer.
        gantry_telemetry::flush().await;
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}
