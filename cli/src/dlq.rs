//! `gantry dlq`: the dead-letter queues, and putting their messages back.

use crate::client::Client;
use crate::error::Result;
use crate::ops::{DeadLetterQueues, RedriveDeadLetters, dead_letter_queues, redrive_dead_letters};
use crate::output::{Out, table, word};

pub async fn list(c: &Client, out: &Out) -> Result<()> {
    let (data, raw) = c.answer::<DeadLetterQueues>(dead_letter_queues::Variables).await?;
    out.print(&raw["deadLetterQueues"], &data.dead_letter_queues, |queues| {
        let rows = queues
            .iter()
            .map(|q| {
                let cells = [q.visible.to_string(), q.in_flight.to_string(), q.max_receive_count.to_string()];
                [q.queue.clone(), q.name.clone()].into_iter().chain(cells).collect()
            })
            .collect();
        table(&["QUEUE", "DEAD-LETTER QUEUE", "WAITING", "IN FLIGHT", "MAX RECEIVES"], rows)
    });
    Ok(())
}

pub async fn redrive(c: &Client, out: &Out, queue: String) -> Result<()> {
    let (data, raw) = c.answer::<RedriveDeadLetters>(redrive_dead_letters::Variables { queue }).await?;
    out.print(&raw["redriveDeadLetters"], &data.redrive_dead_letters, |r| {
        let line = match (word(&r.method).as_str(), &r.task_handle) {
            ("MESSAGE_MOVE_TASK", Some(task)) => {
                format!("{}: a message move task started for {} messages (task {task})", r.queue, r.moved)
            }
            _ => format!("{}: {} messages moved back by Gantry (the queue service has no move task)", r.queue, r.moved),
        };
        vec![line]
    });
    Ok(())
}
