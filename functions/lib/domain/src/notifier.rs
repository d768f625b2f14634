//! The notifier's side: fanning an event out to its subscriptions and delivering each.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::chatops::{ChatJob, ChatOps, SlackApi, cards};
use crate::error::{DomainError, Result};
use crate::ids::SubscriptionId;
use crate::integrations::SecretBox;
use crate::model::{Environment, Release};
use crate::notifications::*;
use crate::ports::Repository;

/// One event on its way to one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub event: PromotionEvent,
    pub subscription_id: SubscriptionId,
    /// Deliveries tried so far that did not go through.
    pub attempt: u32,
    pub release: String,
    pub environment: String,
}

/// What the notifications queue carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "job")]
pub enum NotifierJob {
    /// A Slack command or button click to carry out.
    Chat(ChatJob),
    /// An event to fan out.
    Event(PromotionEvent),
    /// An event to deliver to one subscription.
    Deliver(Delivery),
    /// An event to show on the approval card, again: the card was being posted.
    Card(PromotionEvent),
}

#[async_trait]
pub trait NotifierQueue: Send + Sync {
    async fn enqueue_notifier(&self, job: &NotifierJob, delay_seconds: u32) -> Result<()>;
    /// Queues jobs at once, ten to a request.
    async fn enqueue_notifiers(&self, jobs: &[NotifierJob]) -> Result<()>;
}

/// Posts a signed webhook: `Ok` for a 2xx answer, `Unavailable` for what may work later
/// (a timeout, 5xx, 429), any other error for a refusal.
#[async_trait]
pub trait WebhookSender: Send + Sync {
    async fn send(&self, url: &str, secret: &str, message_id: &str, body: &[u8]) -> Result<()>;
}

/// How often a delivery is tried before it is given up.
pub const MAX_DELIVERY_ATTEMPTS: u32 = 6;
/// How long an event waits for its approval card to be posted, and how often it looks.
const CARD_PATIENCE_SECONDS: i64 = 300;
const CARD_RETRY_SECONDS: u32 = 2;

/// Fans events out, delivers them, and keeps approval cards current.
#[derive(Clone)]
pub struct Notifier {
    pub(crate) subscriptions: Arc<dyn SubscriptionRepository>,
    pub(crate) repo: Arc<dyn Repository>,
    pub(crate) secrets: Arc<dyn SecretBox>,
    pub(crate) queue: Arc<dyn NotifierQueue>,
    pub(crate) webhooks: Arc<dyn WebhookSender>,
    pub(crate) slack: Arc<dyn SlackApi>,
    pub(crate) chat: ChatOps,
}

impl Notifier {
    pub fn new(
        subscriptions: Arc<dyn SubscriptionRepository>,
        repo: Arc<dyn Repository>,
        secrets: Arc<dyn SecretBox>,
        (queue, webhooks, slack): (Arc<dyn NotifierQueue>, Arc<dyn WebhookSender>, Arc<dyn SlackApi>),
        chat: ChatOps,
    ) -> Self {
        Self { subscriptions, repo, secrets, queue, webhooks, slack, chat }
    }

    /// Runs one job of the notifications queue.
    pub async fn run(&self, job: NotifierJob) -> Result<()> {
        match job {
            NotifierJob::Chat(chat) => self.chat.run(chat).await,
            NotifierJob::Event(event) => self.fan_out(event).await,
            NotifierJob::Deliver(delivery) => self.deliver(delivery).await,
            NotifierJob::Card(event) => self.card(event).await,
        }
    }

    /// The event's release and environment; `None` when either is gone.
    async fn subjects(&self, event: &PromotionEvent) -> Result<Option<(Release, Environment)>> {
        let (release, environment) = futures::try_join!(
            self.repo.get_release(event.release_id),
            self.repo.get_environment(event.environment_id)
        )?;
        Ok(release.zip(environment))
    }

    /// Shows the event on the promotion's approval card, again: the card was being posted.
    async fn card(&self, event: PromotionEvent) -> Result<()> {
        let Some((release, environment)) = self.subjects(&event).await? else { return Ok(()) };
        self.show_on_card(event, &release, &environment).await
    }

    /// Brings the approval card up to date; while another delivery is posting the card,
    /// comes back in a few seconds (for up to [`CARD_PATIENCE_SECONDS`] after the event).
    async fn show_on_card(&self, event: PromotionEvent, release: &Release, environment: &Environment) -> Result<()> {
        match self.chat.refresh_card(&event, release, environment).await {
            Err(DomainError::Unavailable { .. })
                if Utc::now() - event.at < chrono::Duration::seconds(CARD_PATIENCE_SECONDS) =>
            {
                self.queue.enqueue_notifier(&NotifierJob::Card(event), CARD_RETRY_SECONDS).await
            }
            other => other,
        }
    }

    /// Queues one delivery per subscription that wants the event (in batches), and brings
    /// the environment's approval card up to date. An event no subscription wants, of a
    /// promotion that needs no approval (so has no card), reads nothing more.
    #[instrument(skip_all, fields(event_id = %event.id, promotion_id = %event.promotion_id, kind = event.kind.as_str()), err(level = "info"))]
    pub async fn fan_out(&self, event: PromotionEvent) -> Result<()> {
        let subscriptions = self.subscriptions.list_subscriptions().await?;
        let wanting: Vec<_> = subscriptions.iter().filter(|s| s.wants(&event)).collect();
        if wanting.is_empty() && event.required_approvals == 0 {
            return Ok(());
        }
        let Some((release, environment)) = self.subjects(&event).await? else {
            tracing::info!("the release or environment is gone: nothing to send");
            return Ok(());
        };
        let deliveries: Vec<NotifierJob> = wanting
            .into_iter()
            .map(|subscription| {
                NotifierJob::Deliver(Delivery {
                    event: event.clone(),
                    subscription_id: subscription.id,
                    attempt: 0,
                    release: release.name.to_string(),
                    environment: environment.name.to_string(),
                })
            })
            .collect();
        if !deliveries.is_empty() {
            self.queue.enqueue_notifiers(&deliveries).await?;
        }
        self.show_on_card(event, &release, &environment).await
    }

    /// Delivers one event to one subscription. What may work later is queued again after
    /// a growing delay, up to [`MAX_DELIVERY_ATTEMPTS`]; the outcome is kept on the
    /// subscription. Only a failure of Gantry's own storage or queue is an error.
    #[instrument(skip_all, fields(event_id = %d.event.id, subscription_id = %d.subscription_id, attempt = d.attempt), err(level = "info"))]
    pub async fn deliver(&self, d: Delivery) -> Result<()> {
        let Some(subscription) = self.subscriptions.get_subscription(d.subscription_id).await? else {
            return Ok(());
        };
        let sent = match &subscription.target {
            SubscriptionTarget::Webhook { url, secret } => {
                let secret = String::from_utf8(self.secrets.open(secret)?).map_err(DomainError::internal)?;
                let body = serde_json::to_vec(&webhook_body(&d)).map_err(DomainError::internal)?;
                self.webhooks.send(url, &secret, &d.event.id.to_string(), &body).await
            }
            SubscriptionTarget::Slack { channel } => {
                let message = cards::notice(&d.event, &d.release, &d.environment);
                self.slack.post_message(channel, &message).await.map(drop)
            }
        };
        let retry = matches!(sent, Err(DomainError::Unavailable { .. })) && d.attempt + 1 < MAX_DELIVERY_ATTEMPTS;
        if let Err(err) = &sent {
            tracing::warn!(code = err.code(), error = %err, retry, "notification not delivered");
        }
        let outcome = DeliveryOutcome {
            event_id: d.event.id,
            kind: d.event.kind,
            delivered: sent.is_ok(),
            attempts: d.attempt + 1,
            error: sent.as_ref().err().map(|e| e.to_string().chars().take(300).collect()),
            at: Utc::now(),
        };
        self.subscriptions.record_delivery(subscription.id, &outcome).await?;
        if retry {
            let next = Delivery { attempt: d.attempt + 1, ..d };
            // Not before the receiver's `retry-after`, when it gave one (SQS delays 15 minutes at most).
            let asked = sent.as_ref().err().and_then(DomainError::retry_at);
            let asked = asked.map_or(0, |at| (at - Utc::now()).num_seconds().clamp(0, 900) as u32 + 1);
            let delay = crate::reports::retry_delay(next.attempt).max(asked);
            self.queue.enqueue_notifier(&NotifierJob::Deliver(next), delay).await?;
        }
        Ok(())
    }
}

/// The JSON a webhook receives: Standard Webhooks' `type`, `timestamp` and `data`.
pub fn webhook_body(d: &Delivery) -> serde_json::Value {
    let e = &d.event;
    serde_json::json!({
        "type": format!("promotion.{}", e.kind.as_str()),
        "timestamp": e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {
            "eventId": e.id,
            "promotionId": e.promotion_id,
            "releaseId": e.release_id,
            "release": d.release,
            "environmentId": e.environment_id,
            "environment": d.environment,
            "status": e.status.as_str(),
            "approvals": e.approvals,
            "requiredApprovals": e.required_approvals,
            "actor": e.actor,
        }
    })
}
