//! Notifications: what happens to promotions, sent where subscriptions ask — Slack channels
//! or HTTPS webhooks signed as Standard Webhooks. Promotions publish an event on every
//! change of status (and on every approval); the notifier worker fans each event out to
//! the subscriptions that want it, one delivery message each, so every delivery is retried
//! with backoff on its own; and keeps the environment's approval card in Slack current.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::access::Principal;
use crate::error::{DomainError, Result};
use crate::ids::{EnvironmentId, EventId, PromotionId, ReleaseId, SubscriptionId};
use crate::integrations::{Sealed, SecretBox};
use crate::model::PromotionStatus;
use crate::values::Name;

/// What happened to a promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Requested,
    /// An approval was recorded and more are needed.
    ApprovalRecorded,
    Approved,
    Rejected,
    Cancelled,
    Deploying,
    Deployed,
    Failed,
    RolledBack,
}

impl EventKind {
    pub const ALL: &'static [EventKind] = &[
        Self::Requested,
        Self::ApprovalRecorded,
        Self::Approved,
        Self::Rejected,
        Self::Cancelled,
        Self::Deploying,
        Self::Deployed,
        Self::Failed,
        Self::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::ApprovalRecorded => "approval_recorded",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Deploying => "deploying",
            Self::Deployed => "deployed",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
        }
    }
}

/// One thing that happened to a promotion. Its id is the `webhook-id` of every delivery,
/// so receivers drop duplicates by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromotionEvent {
    pub id: EventId,
    pub kind: EventKind,
    pub promotion_id: PromotionId,
    pub environment_id: EnvironmentId,
    pub release_id: ReleaseId,
    pub status: PromotionStatus,
    pub approvals: u32,
    pub required_approvals: u32,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// The events a promotion's change makes, from its status and number of approvals `before`
/// (`None`: it is new) to `after`.
pub fn events_between(before: Option<(PromotionStatus, usize)>, after: (PromotionStatus, usize)) -> Vec<EventKind> {
    let mut kinds = Vec::new();
    if before.is_none() {
        kinds.push(EventKind::Requested);
    }
    let changed = before.is_none_or(|(status, _)| status != after.0);
    let kind = match after.0 {
        PromotionStatus::PendingApproval => None,
        PromotionStatus::Approved => Some(EventKind::Approved),
        PromotionStatus::Deploying => Some(EventKind::Deploying),
        PromotionStatus::Deployed => Some(EventKind::Deployed),
        PromotionStatus::Rejected => Some(EventKind::Rejected),
        PromotionStatus::Cancelled => Some(EventKind::Cancelled),
        PromotionStatus::Failed => Some(EventKind::Failed),
        PromotionStatus::RolledBack => Some(EventKind::RolledBack),
    };
    match (changed, kind, before) {
        (true, Some(kind), _) => kinds.push(kind),
        (false, _, Some((_, approvals))) if after.0 == PromotionStatus::PendingApproval && after.1 > approvals => {
            kinds.push(EventKind::ApprovalRecorded)
        }
        _ => {}
    }
    kinds
}

/// Where a subscription sends its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum SubscriptionTarget {
    /// A message in a Slack channel, posted by Gantry's Slack app.
    Slack { channel: String },
    /// A JSON POST signed with the subscription's secret (Standard Webhooks).
    Webhook { url: String, secret: Sealed },
}

/// How the last delivery of a subscription went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryOutcome {
    pub event_id: EventId,
    pub kind: EventKind,
    pub delivered: bool,
    pub attempts: u32,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: SubscriptionId,
    pub name: Name,
    /// The events it wants; never empty.
    pub events: Vec<EventKind>,
    /// The environments it follows; every environment when empty.
    pub environment_ids: Vec<EnvironmentId>,
    pub target: SubscriptionTarget,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub last_delivery: Option<DeliveryOutcome>,
}

impl Subscription {
    pub fn wants(&self, event: &PromotionEvent) -> bool {
        self.events.contains(&event.kind)
            && (self.environment_ids.is_empty() || self.environment_ids.contains(&event.environment_id))
    }
}

#[async_trait]
pub trait SubscriptionRepository: Send + Sync {
    /// `Conflict` when the name is taken or [`MAX_SUBSCRIPTIONS`] exist.
    async fn create_subscription(&self, subscription: &Subscription) -> Result<()>;
    async fn get_subscription(&self, id: SubscriptionId) -> Result<Option<Subscription>>;
    /// Every subscription (there are at most [`MAX_SUBSCRIPTIONS`]), oldest first.
    async fn list_subscriptions(&self) -> Result<Vec<Subscription>>;
    /// `false` when there was none.
    async fn delete_subscription(&self, id: SubscriptionId) -> Result<bool>;
    async fn record_delivery(&self, id: SubscriptionId, outcome: &DeliveryOutcome) -> Result<()>;
}

/// Queues events for the notifier (best effort: a promotion goes on when it cannot).
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Publishes the events, in order, in as few requests as the sink allows.
    async fn publish(&self, events: &[PromotionEvent]);
}

/// At most this many subscriptions, so fanning an event out is one bounded query.
pub const MAX_SUBSCRIPTIONS: usize = 100;
const MAX_URL: usize = 500;

/// Input for `createNotificationSubscription`: `slack_channel` or `webhook_url`, not both.
#[derive(Debug, Clone, Default)]
pub struct NewSubscription {
    pub name: String,
    pub events: Vec<EventKind>,
    pub environment_ids: Vec<EnvironmentId>,
    pub slack_channel: Option<String>,
    pub webhook_url: Option<String>,
}

/// A Slack channel id or name (`C0123ABCD`, `#deploys`): up to 80 characters.
pub fn slack_channel(raw: &str) -> Result<String> {
    let trimmed = raw.trim();
    let ok = !trimmed.is_empty()
        && trimmed.len() <= 80
        && trimmed.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '#' | '-' | '_' | '.'));
    if ok {
        Ok(trimmed.to_owned())
    } else {
        Err(DomainError::validation(format!(
            "slack channel {:?} must be a channel id or #name of up to 80 letters, digits, '-', '_' and '.'",
            trimmed.chars().take(80).collect::<String>()
        )))
    }
}

/// A webhook URL: `https://`, or `http://` to a host that parses as loopback (for local
/// receivers); no user info. Where an https host resolves is checked at each delivery.
pub fn webhook_url(raw: &str) -> Result<String> {
    crate::outbound::parse("webhookUrl", raw, MAX_URL).map(|_| raw.trim().to_owned())
}

/// Subscriptions, managed by admins.
#[derive(Clone)]
pub struct Subscriptions {
    repo: Arc<dyn SubscriptionRepository>,
    secrets: Arc<dyn SecretBox>,
}

impl Subscriptions {
    pub fn new(repo: Arc<dyn SubscriptionRepository>, secrets: Arc<dyn SecretBox>) -> Self {
        Self { repo, secrets }
    }

    /// Creates a subscription; for a webhook, also its signing secret (`whsec_` and base64 of
    /// 32 random bytes), which the caller sees this once.
    #[instrument(skip_all, err(level = "info"))]
    pub async fn create(&self, input: NewSubscription, who: &Principal) -> Result<(Subscription, Option<String>)> {
        let name = Name::parse(&input.name)?;
        if input.events.is_empty() || input.events.len() > EventKind::ALL.len() {
            return Err(DomainError::validation("events must name at least one event"));
        }
        if input.environment_ids.len() > 50 {
            return Err(DomainError::validation("environmentIds may name at most 50 environments"));
        }
        let mut events = input.events;
        events.sort();
        events.dedup();
        let (target, secret) = match (input.slack_channel, input.webhook_url) {
            (Some(channel), None) => (SubscriptionTarget::Slack { channel: slack_channel(&channel)? }, None),
            (None, Some(url)) => {
                let url = webhook_url(&url)?;
                let secret = new_secret()?;
                let sealed = self.secrets.seal(secret.as_bytes())?;
                (SubscriptionTarget::Webhook { url, secret: sealed }, Some(secret))
            }
            _ => return Err(DomainError::validation("give slackChannel or webhookUrl, one of them")),
        };
        let subscription = Subscription {
            id: SubscriptionId::new(),
            name,
            events,
            environment_ids: input.environment_ids,
            target,
            created_by: who.subject.clone(),
            created_at: Utc::now(),
            last_delivery: None,
        };
        if self.repo.list_subscriptions().await?.len() >= MAX_SUBSCRIPTIONS {
            return Err(DomainError::conflict(format!("there are {MAX_SUBSCRIPTIONS} subscriptions already")));
        }
        self.repo.create_subscription(&subscription).await?;
        Ok((subscription, secret))
    }

    pub async fn list(&self) -> Result<Vec<Subscription>> {
        self.repo.list_subscriptions().await
    }

    #[instrument(skip_all, fields(subscription_id = %id), err(level = "info"))]
    pub async fn delete(&self, id: SubscriptionId) -> Result<Subscription> {
        let found = self.repo.get_subscription(id).await?.ok_or_else(|| DomainError::not_found("subscription", id))?;
        self.repo.delete_subscription(id).await?;
        Ok(found)
    }
}

/// `whsec_` and base64 of 32 random bytes, as Standard Webhooks secrets are written.
fn new_secret() -> Result<String> {
    Ok(format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(crate::integrations::random_key()?)))
}

#[cfg(test)]
mod tests;
