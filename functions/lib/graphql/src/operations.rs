//! Operating the stack: each queue's dead-letter queue, and putting its messages back.

use std::sync::Arc;

use async_graphql::{Context, Enum, Object, SimpleObject};
use gantry_domain::access::{Action, Resource};
use gantry_domain::dead_letters::{self as domain, DeadLetters};

use crate::error::IntoGraphql;
use crate::guard::Can;

fn dead_letters<'a>(ctx: &Context<'a>) -> &'a Arc<dyn DeadLetters> {
    ctx.data_unchecked::<Arc<dyn DeadLetters>>()
}

#[derive(Default)]
pub struct OperationsQuery;

#[Object]
impl OperationsQuery {
    /// Each of Gantry's queues with its dead-letter queue, and what waits there (admins).
    #[graphql(guard = "Can(Resource::DeadLetter, Action::Read)")]
    async fn dead_letter_queues(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<DeadLetterQueue>> {
        let queues = dead_letters(ctx).dead_letter_queues().await.gql()?;
        Ok(queues.into_iter().map(DeadLetterQueue::from).collect())
    }
}

#[derive(Default)]
pub struct OperationsMutation;

#[Object]
impl OperationsMutation {
    /// Puts a dead-letter queue's messages back on its queue (`events`, `deploy-jobs` or
    /// `notifications`), once what made them fail is fixed (admins). SQS's
    /// `StartMessageMoveTask` moves them where SQS has it; elsewhere Gantry moves up to 1,000
    /// a call itself (each received, sent to the queue, then deleted).
    #[graphql(guard = "Can(Resource::DeadLetter, Action::Update)")]
    async fn redrive_dead_letters(&self, ctx: &Context<'_>, queue: String) -> async_graphql::Result<Redrive> {
        dead_letters(ctx).redrive(&queue).await.gql().map(Redrive::from)
    }
}

/// A queue's dead-letter queue.
#[derive(SimpleObject)]
pub struct DeadLetterQueue {
    /// `events`, `deploy-jobs` or `notifications`.
    pub queue: String,
    /// The dead-letter queue's name.
    pub name: String,
    /// Messages waiting there (SQS's approximate count).
    pub visible: u64,
    /// Messages received from it and not yet back or deleted.
    pub in_flight: u64,
    /// Receives of one message before the queue dead-letters it.
    pub max_receive_count: u64,
}

impl From<domain::DeadLetterQueue> for DeadLetterQueue {
    fn from(q: domain::DeadLetterQueue) -> Self {
        Self {
            queue: q.queue,
            name: q.name,
            visible: q.visible,
            in_flight: q.in_flight,
            max_receive_count: q.max_receive_count,
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::RedriveMethod")]
pub enum RedriveMethod {
    /// SQS's `StartMessageMoveTask`: the messages move in the background.
    MessageMoveTask,
    /// Moved by Gantry, where the queue service lacks that operation.
    MovedByGantry,
}

/// What a redrive did.
#[derive(SimpleObject)]
pub struct Redrive {
    pub queue: String,
    pub method: RedriveMethod,
    /// Messages moved; for a move task, those waiting when it started.
    pub moved: u64,
    /// The move task's handle.
    pub task_handle: Option<String>,
    /// The new message ids of what Gantry moved.
    pub message_ids: Vec<String>,
}

impl From<domain::Redrive> for Redrive {
    fn from(r: domain::Redrive) -> Self {
        Self {
            queue: r.queue,
            method: r.method.into(),
            moved: r.moved,
            task_handle: r.task,
            message_ids: r.message_ids,
        }
    }
}
