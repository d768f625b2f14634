//! Outgoing webhooks, signed as Standard Webhooks (standardwebhooks.com) do: `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, keyed by the secret's base64 after `whsec_`.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use gantry_domain::notifications::deliver::WebhookSender;
use gantry_domain::{DomainError, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::http::{Retries, send};

/// The `webhook-signature` of a message.
pub fn sign(secret: &str, message_id: &str, timestamp: i64, body: &[u8]) -> Result<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| DomainError::internal("a webhook secret is not base64"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(DomainError::internal)?;
    mac.update(format!("{message_id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!("v1,{}", b64.encode(mac.finalize().into_bytes())))
}

/// Posts signed webhooks, each try within five seconds; the domain retries later with
/// backoff, so one delivery tries twice at most.
pub struct StandardWebhooks {
    http: reqwest::Client,
    retries: Retries,
}

impl Default for StandardWebhooks {
    fn default() -> Self {
        let retries = Retries { attempts: 2, timeout: Duration::from_secs(5), max_wait: Duration::from_secs(1) };
        // A receiver's redirect is not followed: the subscription names where to deliver.
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap_or_default();
        Self { http, retries }
    }
}

#[async_trait]
impl WebhookSender for StandardWebhooks {
    async fn send(&self, url: &str, secret: &str, message_id: &str, body: &[u8]) -> Result<()> {
        let body = body.to_vec();
        send(self.retries, "the webhook receiver", "the notification", || {
            // Signed afresh on each try, so the timestamp is current.
            let timestamp = chrono::Utc::now().timestamp();
            let signature = sign(secret, message_id, timestamp, &body).unwrap_or_default();
            self.http
                .post(url)
                .header("content-type", "application/json")
                .header("webhook-id", message_id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(body.clone())
        })
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_standard_webhooks_example_signs_alike() {
        // The example in the Standard Webhooks specification.
        let signature = super::sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
