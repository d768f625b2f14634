//! Outgoing webhooks, signed as Standard Webhooks (standardwebhooks.com) do: `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, keyed by the secret's base64 after `whsec_`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use gantry_domain::notifier::WebhookSender;
use gantry_domain::outbound::forbidden_address;
use gantry_domain::{DomainError, Result};
use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
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
///
/// Where a receiver's host resolves is checked at each delivery, by the resolver the
/// connection uses: a name that resolves to a loopback, private, link-local or metadata
/// address is refused unless it is on the allowlist, and the connection goes to an address
/// that was checked, so a second answer (DNS rebinding) cannot swap it.
pub struct StandardWebhooks {
    http: reqwest::Client,
    retries: Retries,
    allowed: Arc<Vec<String>>,
}

impl Default for StandardWebhooks {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl StandardWebhooks {
    /// `allowed`: host names (or addresses) that may be private or loopback.
    pub fn new(allowed: Vec<String>) -> Self {
        let retries = Retries { attempts: 2, timeout: Duration::from_secs(5), max_wait: Duration::from_secs(1) };
        let allowed = Arc::new(allowed.into_iter().map(|h| h.trim().to_ascii_lowercase()).collect::<Vec<_>>());
        // A receiver's redirect is not followed: the subscription names where to deliver.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(crate::USER_AGENT)
            .dns_resolver(Arc::new(CheckedResolver { allowed: allowed.clone() }))
            .build()
            .unwrap_or_default();
        Self { http, retries, allowed }
    }

    /// Refuses a URL whose parsed host is an address not to be called (an https URL to a
    /// loopback host, or to a private or metadata address) unless the allowlist names it.
    async fn check(&self, raw: &str) -> Result<()> {
        let url = gantry_domain::outbound::parse("webhookUrl", raw, 2000)?;
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_ascii_lowercase();
        if self.allowed.contains(&host) || url.scheme() == "http" {
            return Ok(());
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        let refused = || DomainError::validation(format!("webhook host {host} is a private or loopback address"));
        if gantry_domain::outbound::is_loopback(&url) || literal.is_some_and(forbidden_address) {
            return Err(refused());
        }
        if literal.is_none() {
            // Refused here as final; the connection's resolver checks again what it uses.
            let found: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), 443)).await {
                Ok(found) => found.collect(),
                Err(err) => {
                    return Err(DomainError::unavailable(format!("webhook host {host} did not resolve: {err}")));
                }
            };
            if !found.is_empty() && found.iter().all(|a| forbidden_address(a.ip())) {
                return Err(refused());
            }
        }
        Ok(())
    }
}

/// Resolves as the system does, then keeps only addresses a webhook may go to.
struct CheckedResolver {
    allowed: Arc<Vec<String>>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        // `localhost` is loopback by definition; only http:// URLs reach it (see `check`).
        let any = self.allowed.contains(&host) || host == "localhost";
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found.into_iter().filter(|a| any || !forbidden_address(a.ip())).collect();
            if kept.is_empty() {
                let refusal = format!("{host} resolves to no address a webhook may be delivered to");
                return Err(Box::<dyn std::error::Error + Send + Sync>::from(refusal));
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[async_trait]
impl WebhookSender for StandardWebhooks {
    async fn send(&self, url: &str, secret: &str, message_id: &str, body: &[u8]) -> Result<()> {
        self.check(url).await?;
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

    use gantry_domain::notifier::WebhookSender;

    #[tokio::test]
    async fn private_loopback_and_metadata_receivers_are_refused_before_any_connection() {
        let sender = super::StandardWebhooks::default();
        for url in [
            "https://10.0.0.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00:ec2::254]/",
            "https://127.0.0.1:9/x",
            "https://localhost:9/x",
            "https://[::ffff:192.168.0.1]/x",
            "http://127.0.0.1:1@10.0.0.1/x",
        ] {
            let err = sender.send(url, "whsec_c2VjcmV0", "msg_1", b"{}").await.unwrap_err();
            assert_eq!(err.code(), "BAD_USER_INPUT", "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn an_allowed_host_is_called_although_it_is_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let sender = super::StandardWebhooks::new(vec!["localhost".into()]);
        let err = sender.send(&format!("https://localhost:{port}/x"), "whsec_c2VjcmV0", "m", b"{}").await.unwrap_err();
        assert_eq!(err.code(), "UNAVAILABLE", "let through, then nothing listened: {err}");
    }

    #[tokio::test]
    async fn a_receivers_retry_after_is_handed_back_and_kept() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let hits = std::sync::Arc::new(AtomicU32::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().fallback(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { (axum::http::StatusCode::TOO_MANY_REQUESTS, [("retry-after", "30")], "slow down") }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let sender = super::StandardWebhooks::default();
        let err = sender.send(&url, "whsec_c2VjcmV0", "m1", b"{}").await.unwrap_err();
        let at = err.retry_at().expect("the receiver's retry-after");
        assert!(at > chrono::Utc::now() + chrono::Duration::seconds(25), "{at}");
        let again = sender.send(&url, "whsec_c2VjcmV0", "m2", b"{}").await.unwrap_err();
        assert_eq!((again.retry_at(), hits.load(Ordering::SeqCst)), (Some(at), 1), "not called again before then");
    }
}
