//! Dead-lettered messages: each of Gantry's queues with its dead-letter queue, and putting
//! what is there back on the queue once the cause is fixed.

use async_trait::async_trait;

use crate::error::Result;

/// The queues with a dead-letter queue, as operators name them.
pub const QUEUES: [&str; 3] = ["events", "deploy-jobs", "notifications"];

/// One queue's dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterQueue {
    /// `events`, `deploy-jobs` or `notifications`.
    pub queue: String,
    /// The dead-letter queue's own name.
    pub name: String,
    /// Messages waiting there (SQS's approximate count).
    pub visible: u64,
    /// Messages received from it and not yet deleted or back.
    pub in_flight: u64,
    /// How often a message is received from the queue before it is dead-lettered.
    pub max_receive_count: u64,
}

/// How messages were put back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedriveMethod {
    /// SQS's own `StartMessageMoveTask`, which moves them in the background.
    MessageMoveTask,
    /// Received, sent to the queue and deleted by Gantry, where SQS lacks the operation.
    MovedByGantry,
}

/// What a redrive did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    pub queue: String,
    pub method: RedriveMethod,
    /// Messages moved; for a move task, the messages waiting when it started.
    pub moved: u64,
    /// The move task's handle, for `ListMessageMoveTasks`.
    pub task: Option<String>,
    /// The new ids of the messages Gantry moved (none for a move task).
    pub message_ids: Vec<String>,
}

/// Gantry's queues and their dead-letter queues.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Every queue with a dead-letter queue, in [`QUEUES`] order.
    async fn dead_letter_queues(&self) -> Result<Vec<DeadLetterQueue>>;
    /// Puts the dead-letter queue's messages back on `queue` (one of [`QUEUES`]: `NotFound`
    /// otherwise).
    async fn redrive(&self, queue: &str) -> Result<Redrive>;
}
