//! ChatOps and notifications in GraphQL: the Slack users mapped to principals, and the
//! subscriptions that send promotion events to Slack channels or signed webhooks.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use gantry_domain::access::{Action, Principal, Resource, Role};
use gantry_domain::chatops::{self, ChatOps, NewSlackUser};
use gantry_domain::ids::{EnvironmentId, SubscriptionId};
use gantry_domain::notifications::{self, NewSubscription, SubscriptionTarget, Subscriptions};

use crate::error::IntoGraphql;
use crate::guard::Can;

/// A Slack user who acts in Gantry as a principal, with roles.
pub struct SlackUser(pub chatops::SlackUser);

#[Object]
impl SlackUser {
    async fn team_id(&self) -> &str {
        &self.0.team_id
    }
    async fn user_id(&self) -> &str {
        &self.0.user_id
    }
    /// The subject decisions made through Slack are recorded under.
    async fn principal(&self) -> &str {
        &self.0.principal
    }
    async fn roles(&self) -> Vec<&str> {
        self.0.roles.iter().map(|r| r.as_str()).collect()
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(InputObject)]
pub struct MapSlackUserInput {
    /// The Slack workspace (`T…`).
    pub team_id: String,
    /// The Slack user (`U…` or `W…`).
    pub user_id: String,
    /// The subject to act as, such as the person's OIDC subject or e-mail address.
    pub principal: String,
    /// `admin`, `release-creator`, `approver` or `viewer`.
    pub roles: Vec<String>,
}

/// What a promotion went through.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "NotificationEvent", remote = "gantry_domain::notifications::EventKind")]
pub enum EventKindView {
    Requested,
    ApprovalRecorded,
    Approved,
    Rejected,
    Cancelled,
    Deploying,
    Deployed,
    Failed,
    RolledBack,
}

/// How the last delivery of a subscription went.
#[derive(SimpleObject)]
pub struct NotificationDelivery {
    /// The `webhook-id` it was sent with.
    pub event_id: ID,
    pub event: EventKindView,
    pub delivered: bool,
    pub attempts: u32,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

pub struct NotificationSubscription(pub notifications::Subscription);

#[Object]
impl NotificationSubscription {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }
    async fn events(&self) -> Vec<EventKindView> {
        self.0.events.iter().map(|k| (*k).into()).collect()
    }
    /// The environments it follows; every environment when empty.
    async fn environment_ids(&self) -> Vec<ID> {
        self.0.environment_ids.iter().map(|id| ID(id.to_string())).collect()
    }
    async fn slack_channel(&self) -> Option<&str> {
        match &self.0.target {
            SubscriptionTarget::Slack { channel } => Some(channel),
            SubscriptionTarget::Webhook { .. } => None,
        }
    }
    async fn webhook_url(&self) -> Option<&str> {
        match &self.0.target {
            SubscriptionTarget::Webhook { url, .. } => Some(url),
            SubscriptionTarget::Slack { .. } => None,
        }
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn last_delivery(&self) -> Option<NotificationDelivery> {
        self.0.last_delivery.as_ref().map(|d| NotificationDelivery {
            event_id: ID(d.event_id.to_string()),
            event: d.kind.into(),
            delivered: d.delivered,
            attempts: d.attempts,
            error: d.error.clone(),
            at: d.at,
        })
    }
}

/// A new subscription, and the webhook's signing secret (`whsec_…`), shown only here, once.
#[derive(SimpleObject)]
pub struct NotificationSubscriptionWithSecret {
    pub subscription: NotificationSubscription,
    pub signing_secret: Option<String>,
}

#[derive(InputObject)]
pub struct CreateNotificationSubscriptionInput {
    pub name: String,
    pub events: Vec<EventKindView>,
    /// Only these environments; every environment when absent or empty.
    #[graphql(default)]
    pub environment_ids: Vec<ID>,
    /// Post to this Slack channel (id or `#name`) …
    pub slack_channel: Option<String>,
    /// … or POST signed JSON here (`https://`).
    pub webhook_url: Option<String>,
}

fn chat<'a>(ctx: &Context<'a>) -> &'a ChatOps {
    ctx.data_unchecked::<ChatOps>()
}

fn subscriptions<'a>(ctx: &Context<'a>) -> &'a Subscriptions {
    ctx.data_unchecked::<Subscriptions>()
}

#[derive(Default)]
pub struct ChatQuery;

#[Object]
impl ChatQuery {
    /// Every Slack user mapped to a principal.
    #[graphql(guard = "Can(Resource::SlackUser, Action::Read)")]
    async fn slack_users(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SlackUser>> {
        chat(ctx).users().await.gql().map(|users| users.into_iter().map(SlackUser).collect())
    }

    /// Every notification subscription, oldest first.
    #[graphql(guard = "Can(Resource::Subscription, Action::Read)")]
    async fn notification_subscriptions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<NotificationSubscription>> {
        subscriptions(ctx).list().await.gql().map(|all| all.into_iter().map(NotificationSubscription).collect())
    }
}

#[derive(Default)]
pub struct ChatMutation;

#[Object]
impl ChatMutation {
    /// Lets a Slack user act as `principal` with `roles` (replacing an earlier mapping).
    /// Every command and click is authorised again against the mapping as it then stands.
    #[graphql(guard = "Can(Resource::SlackUser, Action::Create)")]
    async fn map_slack_user(&self, ctx: &Context<'_>, input: MapSlackUserInput) -> async_graphql::Result<SlackUser> {
        let roles = input.roles.iter().map(|r| r.parse::<Role>()).collect::<Result<Vec<_>, _>>().gql()?;
        let input = NewSlackUser { team_id: input.team_id, user_id: input.user_id, principal: input.principal, roles };
        chat(ctx).map_user(input, ctx.data_unchecked::<Principal>()).await.gql().map(SlackUser)
    }

    /// Removes a Slack user's mapping; `false` when there was none.
    #[graphql(guard = "Can(Resource::SlackUser, Action::Delete)")]
    async fn unmap_slack_user(
        &self,
        ctx: &Context<'_>,
        team_id: String,
        user_id: String,
    ) -> async_graphql::Result<bool> {
        chat(ctx).unmap_user(&team_id, &user_id).await.gql()
    }

    /// Sends the events to a Slack channel or a webhook. A webhook's deliveries are signed
    /// with the secret returned here, as Standard Webhooks describes.
    #[graphql(guard = "Can(Resource::Subscription, Action::Create)")]
    async fn create_notification_subscription(
        &self,
        ctx: &Context<'_>,
        input: CreateNotificationSubscriptionInput,
    ) -> async_graphql::Result<NotificationSubscriptionWithSecret> {
        if input.environment_ids.len() > 50 {
            return Err(gantry_domain::DomainError::validation("environmentIds may name at most 50")).gql();
        }
        let environment_ids =
            input.environment_ids.iter().map(|id| EnvironmentId::parse(id)).collect::<Result<Vec<_>, _>>().gql()?;
        let new = NewSubscription {
            name: input.name,
            events: input.events.into_iter().map(Into::into).collect(),
            environment_ids,
            slack_channel: input.slack_channel,
            webhook_url: input.webhook_url,
        };
        let (subscription, signing_secret) =
            subscriptions(ctx).create(new, ctx.data_unchecked::<Principal>()).await.gql()?;
        Ok(NotificationSubscriptionWithSecret { subscription: NotificationSubscription(subscription), signing_secret })
    }

    #[graphql(guard = "Can(Resource::Subscription, Action::Delete)")]
    async fn delete_notification_subscription(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<NotificationSubscription> {
        let id = SubscriptionId::parse(&id).gql()?;
        subscriptions(ctx).delete(id).await.gql().map(NotificationSubscription)
    }
}
