//! Receiving Slack's requests: verify, parse, drop Slack's retries, queue the work for the
//! notifier and answer at once (Slack waits three seconds at most). A request that fails
//! verification writes and queues nothing; a malformed command is answered with how to
//! write it, and nothing is queued either.

use std::sync::Arc;

use gantry_domain::chatops::command::USAGE;
use gantry_domain::chatops::{ChatAction, ChatJob, Command, Reply, SlackUserRepository};
use gantry_domain::events::DeliveryLog;
use gantry_domain::notifier::{NotifierJob, NotifierQueue};
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::slack::{self, SlackInbound};

#[derive(Clone)]
pub struct SlackIntake {
    /// The Slack app's signing secret; `None` when Slack is not configured.
    secret: Option<Arc<[u8]>>,
    deliveries: Arc<dyn DeliveryLog>,
    queue: Arc<dyn NotifierQueue>,
    /// Who Slack users are in Gantry: an unmapped user is told at once that nothing happens.
    users: Arc<dyn SlackUserRepository>,
}

impl SlackIntake {
    pub fn new(
        secret: Option<Vec<u8>>,
        deliveries: Arc<dyn DeliveryLog>,
        queue: Arc<dyn NotifierQueue>,
        users: Arc<dyn SlackUserRepository>,
    ) -> Self {
        Self { secret: secret.map(Arc::from), deliveries, queue, users }
    }

    fn verify(&self, inbound: &SlackInbound<'_>) -> Result<()> {
        let secret = self.secret.as_deref().ok_or_else(|| DomainError::NotFound("Slack is not configured".into()))?;
        slack::verify(secret, inbound, chrono::Utc::now().timestamp())
    }

    /// A slash command: the immediate answer (only the user who typed it sees it).
    #[instrument(skip_all, err(level = "info"))]
    pub async fn command(&self, inbound: &SlackInbound<'_>) -> Result<Reply> {
        self.verify(inbound)?;
        let request = slack::parse_command(inbound.body)?;
        let command = match Command::parse(&request.text) {
            Ok(Command::Help) => return Ok(Reply::private(USAGE)),
            Ok(command) => command,
            Err(err) => return Ok(Reply::private(format!(":warning: {err}"))),
        };
        if self.users.get_slack_user(&request.team_id, &request.user_id).await?.is_none() {
            return Ok(Reply::private(format!(
                "Your Slack account ({} in {}) is not mapped to a Gantry principal, so Gantry will do nothing. An admin can map it with mapSlackUser.",
                request.user_id, request.team_id
            )));
        }
        // The command's text is the user's: escaped before Slack shows it.
        let described = gantry_domain::chatops::cards::escape(&command.describe(), 200);
        let job = ChatJob {
            team: request.team_id,
            user: request.user_id,
            response_url: request.response_url,
            action: ChatAction::Command { command },
        };
        if !self.first(&format!("slack-command#{}", request.trigger_id)).await? {
            return Ok(Reply::private(format!("Already working on `{described}`…")));
        }
        self.queue.enqueue_notifier(&NotifierJob::Chat(job), 0).await?;
        Ok(Reply::private(format!("Working on `{described}`…")))
    }

    /// An interaction: `true` when it was an approval card's button and is now queued.
    #[instrument(skip_all, err(level = "info"))]
    pub async fn interaction(&self, inbound: &SlackInbound<'_>) -> Result<bool> {
        self.verify(inbound)?;
        let Some(click) = slack::parse_interaction(inbound.body)? else { return Ok(false) };
        let key = format!("slack-click#{}#{}#{}", click.team_id, click.user_id, click.action_ts);
        if !self.first(&key).await? {
            return Ok(false);
        }
        let job = ChatJob {
            team: click.team_id,
            user: click.user_id,
            response_url: click.response_url,
            action: ChatAction::Click { approve: click.approve, promotion: click.promotion },
        };
        self.queue.enqueue_notifier(&NotifierJob::Chat(job), 0).await?;
        Ok(true)
    }

    /// `false` for a request seen before: Slack resends one it got no answer to in time.
    async fn first(&self, key: &str) -> Result<bool> {
        let first = self.deliveries.claim(key).await?;
        if !first {
            tracing::info!("a Slack retry: dropped");
        }
        Ok(first)
    }
}
