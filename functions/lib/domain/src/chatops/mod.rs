//! ChatOps through Slack: Slack users mapped to Gantry principals, the `/gantry` command,
//! and approval cards with Approve and Reject buttons. Requests from Slack are verified and
//! queued at the edge; the notifier worker carries them out here, as the mapped principal,
//! and answers through the request's `response_url`.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::access::{Principal, Role, Via};
use crate::error::{DomainError, Result};
use crate::ids::PromotionId;
use crate::model::{Environment, Release};
use crate::notifications::PromotionEvent;
use crate::ports::Repository;
use crate::promotions::{PromotionStatus, Promotions};

pub mod cards;
pub mod command;
mod run;

pub use cards::{Message, Reply};
pub use command::Command;

/// A Slack user of a Slack workspace (team) acting as a Gantry principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlackUser {
    pub team_id: String,
    pub user_id: String,
    /// The principal's subject: the name its decisions are recorded under.
    pub principal: String,
    pub roles: Vec<Role>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl SlackUser {
    pub fn principal(&self) -> Principal {
        let mut principal = Principal::new(self.principal.clone(), self.roles.clone(), Vec::new());
        principal.via = Some(Via::Slack { team: self.team_id.clone(), user: self.user_id.clone() });
        principal
    }
}

/// Input for `mapSlackUser`.
#[derive(Debug, Clone)]
pub struct NewSlackUser {
    pub team_id: String,
    pub user_id: String,
    pub principal: String,
    pub roles: Vec<Role>,
}

#[async_trait]
pub trait SlackUserRepository: Send + Sync {
    /// Stores the mapping, replacing the one of the same Slack user.
    async fn put_slack_user(&self, user: &SlackUser) -> Result<()>;
    async fn get_slack_user(&self, team: &str, user: &str) -> Result<Option<SlackUser>>;
    /// At most [`MAX_SLACK_USERS`].
    async fn list_slack_users(&self) -> Result<Vec<SlackUser>>;
    /// `false` when there was none.
    async fn delete_slack_user(&self, team: &str, user: &str) -> Result<bool>;
}

/// The approval card of a promotion: where it was posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlackCard {
    pub promotion_id: PromotionId,
    pub channel: String,
    /// The message's timestamp, once posted (absent, not null, until then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    pub claimed_at: DateTime<Utc>,
}

#[async_trait]
pub trait CardRepository: Send + Sync {
    async fn card(&self, promotion: PromotionId) -> Result<Option<SlackCard>>;
    /// Claims the right to post the card: `false` when another delivery holds a claim made
    /// after `stale_before`, or the card is posted.
    async fn claim_card(&self, card: &SlackCard, stale_before: DateTime<Utc>) -> Result<bool>;
    async fn set_card_posted(&self, promotion: PromotionId, channel: &str, ts: &str) -> Result<()>;
}

/// Slack's Web API and response URLs.
#[async_trait]
pub trait SlackApi: Send + Sync {
    /// Posts a message; the channel's id and the message's timestamp.
    async fn post_message(&self, channel: &str, message: &Message) -> Result<(String, String)>;
    async fn update_message(&self, channel: &str, ts: &str, message: &Message) -> Result<()>;
    async fn respond(&self, response_url: &str, reply: &Reply) -> Result<()>;
}

/// A Slack request to carry out, as the edge queued it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatJob {
    pub team: String,
    pub user: String,
    pub response_url: String,
    pub action: ChatAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ChatAction {
    Command {
        command: Command,
    },
    /// An approval card's button.
    Click {
        approve: bool,
        promotion: String,
    },
}

/// At most this many Slack users are mapped.
pub const MAX_SLACK_USERS: usize = 1000;
/// A card claimed this long ago and still not posted is claimed again.
const CARD_CLAIM_SECONDS: i64 = 60;

/// A Slack team, user or channel id: 1 to 32 letters and digits.
pub fn slack_id(field: &str, raw: &str) -> Result<String> {
    let trimmed = raw.trim();
    if !trimmed.is_empty() && trimmed.len() <= 32 && trimmed.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(trimmed.to_owned())
    } else {
        Err(DomainError::validation(format!("{field} must be a Slack id of 1 to 32 letters and digits")))
    }
}

/// A principal's subject for a Slack user: printable, no spaces, up to 128 characters, and
/// not one of Gantry's own (`gantry:`, `service-account:`).
fn principal_name(raw: &str) -> Result<String> {
    let trimmed = raw.trim();
    let ok = !trimmed.is_empty() && trimmed.len() <= 128 && trimmed.chars().all(|c| c.is_ascii_graphic());
    if !ok {
        return Err(DomainError::validation("principal must be 1 to 128 printable characters without spaces"));
    }
    if trimmed.starts_with("gantry:") || trimmed.starts_with("service-account:") {
        return Err(DomainError::validation("principal must not start with gantry: or service-account:"));
    }
    Ok(trimmed.to_owned())
}

#[derive(Clone)]
pub struct ChatOps {
    users: Arc<dyn SlackUserRepository>,
    cards: Arc<dyn CardRepository>,
    slack: Arc<dyn SlackApi>,
    promotions: Promotions,
    repo: Arc<dyn Repository>,
}

impl ChatOps {
    pub fn new(
        users: Arc<dyn SlackUserRepository>,
        cards: Arc<dyn CardRepository>,
        slack: Arc<dyn SlackApi>,
        promotions: Promotions,
        repo: Arc<dyn Repository>,
    ) -> Self {
        Self { users, cards, slack, promotions, repo }
    }

    /// Maps a Slack user to a principal with roles, replacing an earlier mapping.
    #[instrument(skip_all, err(level = "info"))]
    pub async fn map_user(&self, input: NewSlackUser, admin: &Principal) -> Result<SlackUser> {
        let user = SlackUser {
            team_id: slack_id("teamId", &input.team_id)?,
            user_id: slack_id("userId", &input.user_id)?,
            principal: principal_name(&input.principal)?,
            roles: input.roles,
            created_by: admin.subject.clone(),
            created_at: Utc::now(),
        };
        if user.roles.is_empty() || user.roles.len() > Role::ALL.len() {
            return Err(DomainError::validation("a Slack user needs at least one role"));
        }
        let known = self.users.get_slack_user(&user.team_id, &user.user_id).await?.is_some();
        if !known && self.users.list_slack_users().await?.len() >= MAX_SLACK_USERS {
            return Err(DomainError::conflict(format!("{MAX_SLACK_USERS} Slack users are mapped already")));
        }
        self.users.put_slack_user(&user).await?;
        Ok(user)
    }

    #[instrument(skip_all, err(level = "info"))]
    pub async fn unmap_user(&self, team: &str, user: &str) -> Result<bool> {
        self.users.delete_slack_user(&slack_id("teamId", team)?, &slack_id("userId", user)?).await
    }

    pub async fn users(&self) -> Result<Vec<SlackUser>> {
        self.users.list_slack_users().await
    }

    /// Posts the approval card of a promotion that awaits approval to its environment's
    /// channel, or updates the card in place as the promotion moves on.
    #[instrument(skip_all, fields(promotion_id = %event.promotion_id), err(level = "info"))]
    pub async fn refresh_card(
        &self,
        event: &PromotionEvent,
        release: &Release,
        environment: &Environment,
    ) -> Result<()> {
        let Some(channel) = &environment.slack_channel else { return Ok(()) };
        if event.required_approvals == 0 {
            return Ok(());
        }
        let promotion = self.promotions.get(event.promotion_id).await?;
        let names = (release.name.as_str(), environment.name.as_str());
        let now = Utc::now();
        let (channel, ts) = match self.cards.card(promotion.id).await? {
            Some(SlackCard { channel, ts: Some(ts), .. }) => {
                let message = cards::approval_card(&promotion, names.0, names.1);
                if let Err(err) = self.slack.update_message(&channel, &ts, &message).await {
                    return Self::slack_refused(err);
                }
                (channel, ts)
            }
            Some(card) if card.claimed_at > now - Duration::seconds(CARD_CLAIM_SECONDS) => {
                return Err(DomainError::unavailable("the approval card is being posted"));
            }
            found => {
                if found.is_none() && promotion.status != PromotionStatus::PendingApproval {
                    return Ok(());
                }
                let card =
                    SlackCard { promotion_id: promotion.id, channel: channel.clone(), ts: None, claimed_at: now };
                if !self.cards.claim_card(&card, now - Duration::seconds(CARD_CLAIM_SECONDS)).await? {
                    return Err(DomainError::unavailable("the approval card is being posted"));
                }
                let message = cards::approval_card(&promotion, names.0, names.1);
                let (channel_id, ts) = match self.slack.post_message(channel, &message).await {
                    Ok(posted) => posted,
                    Err(err) => return Self::slack_refused(err),
                };
                self.cards.set_card_posted(promotion.id, &channel_id, &ts).await?;
                (channel_id, ts)
            }
        };
        self.keep_current(&channel, &ts, promotion, names).await
    }

    /// Updates the card until it shows the promotion as it now stands: events are handled
    /// concurrently, so a decision may have been made since `shown` was read.
    async fn keep_current(
        &self,
        channel: &str,
        ts: &str,
        mut shown: crate::promotions::Promotion,
        (release, environment): (&str, &str),
    ) -> Result<()> {
        for _ in 0..3 {
            let now = self.promotions.get(shown.id).await?;
            if now.revision == shown.revision {
                return Ok(());
            }
            let message = cards::approval_card(&now, release, environment);
            if let Err(err) = self.slack.update_message(channel, ts, &message).await {
                return Self::slack_refused(err);
            }
            shown = now;
        }
        Ok(())
    }

    /// What Slack refused: tried again later when it may work then, else logged, since the
    /// promotion stands whatever its card shows.
    fn slack_refused(err: DomainError) -> Result<()> {
        if matches!(err, DomainError::Unavailable { .. }) {
            return Err(err);
        }
        tracing::warn!(code = err.code(), error = %err, "the approval card was not posted or updated");
        Ok(())
    }
}
