//! What Gantry says in Slack, as Block Kit: the approval card, event notices and replies.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::notifications::{EventKind, PromotionEvent};
use crate::promotions::{Promotion, PromotionStatus};

/// The `action_id`s of the approval card's buttons; their `value` is the promotion id.
pub const APPROVE_ACTION: &str = "gantry_approve";
pub const REJECT_ACTION: &str = "gantry_reject";

/// A channel message: the fallback text and its blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub text: String,
    pub blocks: Value,
}

/// An answer through a command's or click's `response_url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub text: String,
    /// Only the user who asked sees it.
    pub ephemeral: bool,
}

impl Reply {
    pub fn private(text: impl Into<String>) -> Self {
        Self { text: text.into(), ephemeral: true }
    }

    pub fn public(text: impl Into<String>) -> Self {
        Self { text: text.into(), ephemeral: false }
    }

    /// The body Slack takes at a `response_url`: a new message, never replacing the card.
    pub fn body(&self) -> Value {
        json!({
            "response_type": if self.ephemeral { "ephemeral" } else { "in_channel" },
            "replace_original": false,
            "text": self.text,
        })
    }
}

/// Text with Slack's control characters escaped, cut to `max` characters.
pub fn escape(text: &str, max: usize) -> String {
    text.chars().take(max).collect::<String>().replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn status_word(status: PromotionStatus) -> &'static str {
    match status {
        PromotionStatus::PendingApproval => "awaiting approval",
        PromotionStatus::Approved => "approved",
        PromotionStatus::Deploying => "deploying",
        PromotionStatus::Deployed => "deployed",
        PromotionStatus::Rejected => "rejected",
        PromotionStatus::Cancelled => "cancelled",
        PromotionStatus::Failed => "failed",
        PromotionStatus::RolledBack => "rolled back",
    }
}

/// The approval card of a promotion, as it stands: Approve and Reject buttons while it
/// awaits approval, the outcome afterwards.
pub fn approval_card(p: &Promotion, release: &str, environment: &str) -> Message {
    let votes = format!("{} of {}", p.approvals.len(), p.required_approvals);
    let title = format!("Promotion of *{}* to *{}*", escape(release, 128), escape(environment, 128));
    let mut fields = vec![
        json!({ "type": "mrkdwn", "text": format!("*Status*\n{}", status_word(p.status)) }),
        json!({ "type": "mrkdwn", "text": format!("*Approvals*\n{votes}") }),
        json!({ "type": "mrkdwn", "text": format!("*Requested by*\n{}", escape(&p.requested_by, 128)) }),
    ];
    if !p.approvals.is_empty() {
        let names: Vec<String> = p.approvals.iter().map(|a| escape(&a.principal, 128)).collect();
        fields.push(json!({ "type": "mrkdwn", "text": format!("*Approved by*\n{}", names.join(", ")) }));
    }
    let mut blocks = vec![
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": title } }),
        json!({ "type": "section", "fields": fields }),
    ];
    if let Some(comment) = &p.comment {
        blocks.push(json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": escape(comment, 500) }] }));
    }
    if p.status == PromotionStatus::PendingApproval {
        let id = p.id.to_string();
        blocks.push(json!({
            "type": "actions",
            "block_id": "gantry_decision",
            "elements": [
                { "type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": id, "text": { "type": "plain_text", "text": "Approve" } },
                { "type": "button", "action_id": REJECT_ACTION, "style": "danger", "value": id, "text": { "type": "plain_text", "text": "Reject" } },
            ]
        }));
    } else if let Some(reason) = &p.reason {
        blocks.push(json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": escape(reason, 500) }] }));
    }
    blocks.push(
        json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": format!("promotion `{}`", p.id) }] }),
    );
    let text = format!("Promotion of {release} to {environment}: {} ({votes} approvals)", status_word(p.status));
    Message { text, blocks: Value::Array(blocks) }
}

fn emoji(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Requested => ":inbox_tray:",
        EventKind::ApprovalRecorded | EventKind::Approved => ":white_check_mark:",
        EventKind::Rejected | EventKind::Cancelled => ":no_entry_sign:",
        EventKind::Deploying => ":rocket:",
        EventKind::Deployed => ":tada:",
        EventKind::Failed => ":x:",
        EventKind::RolledBack => ":rewind:",
    }
}

/// One line about an event, for a channel that subscribed to it.
pub fn notice(e: &PromotionEvent, release: &str, environment: &str) -> Message {
    let (release, environment) = (escape(release, 128), escape(environment, 128));
    let what = match e.kind {
        EventKind::Requested => format!("{} requested *{release}* for *{environment}*", escape(&e.actor, 128)),
        EventKind::ApprovalRecorded => format!(
            "{} approved *{release}* for *{environment}* ({} of {})",
            escape(&e.actor, 128),
            e.approvals,
            e.required_approvals
        ),
        EventKind::Approved => format!("*{release}* is approved for *{environment}*"),
        EventKind::Rejected => format!("{} rejected *{release}* for *{environment}*", escape(&e.actor, 128)),
        EventKind::Cancelled => format!("the promotion of *{release}* to *{environment}* was cancelled"),
        EventKind::Deploying => format!("*{release}* is deploying to *{environment}*"),
        EventKind::Deployed => format!("*{release}* is deployed to *{environment}*"),
        EventKind::Failed => format!("*{release}* failed to deploy to *{environment}*"),
        EventKind::RolledBack => format!("*{release}* was rolled back in *{environment}*"),
    };
    let text = format!("{} {what}", emoji(e.kind));
    let blocks = json!([
        { "type": "section", "text": { "type": "mrkdwn", "text": text } },
        { "type": "context", "elements": [{ "type": "mrkdwn", "text": format!("promotion `{}`", e.promotion_id) }] },
    ]);
    Message { text, blocks }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_cannot_inject_mentions_or_links() {
        assert_eq!(escape("<!channel> & <https://x|y>", 100), "&lt;!channel&gt; &amp; &lt;https://x|y&gt;");
        assert_eq!(escape("abcdef", 3), "abc");
    }

    #[test]
    fn replies_never_replace_the_card() {
        let body = Reply::private("hi").body();
        assert_eq!(
            (body["response_type"].as_str(), body["replace_original"].as_bool()),
            (Some("ephemeral"), Some(false))
        );
        assert_eq!(Reply::public("x").body()["response_type"], "in_channel");
    }
}
