//! Slack's Web API (`chat.postMessage`, `chat.update`) with the app's bot token, and the
//! `response_url`s of commands and clicks.

use async_trait::async_trait;
use gantry_domain::chatops::{Message, Reply, SlackApi};
use gantry_domain::{DomainError, Result};
use serde_json::Value;

use crate::http::{Retries, send};

/// Slack's Web API, unless configured otherwise.
pub const SLACK_API: &str = "https://slack.com/api";
/// Where Slack's response URLs point.
const RESPONSE_HOST: &str = "https://hooks.slack.com/";

pub struct SlackWeb {
    http: reqwest::Client,
    retries: Retries,
    /// `https://slack.com/api`, or a stand-in's.
    api_url: String,
    /// The bot token (`xoxb-…`); without one nothing is posted.
    token: Option<String>,
}

impl SlackWeb {
    pub fn new(api_url: &str, token: Option<String>, retries: Retries) -> Self {
        Self { http: crate::client(), retries, api_url: api_url.trim_end_matches('/').to_owned(), token }
    }

    fn token(&self) -> Result<&str> {
        self.token
            .as_deref()
            .ok_or_else(|| DomainError::validation("Slack is not configured: set GANTRY_SLACK_BOT_TOKEN"))
    }

    /// Calls a Web API method with a form body; Slack answers 200 with `ok: false` and an
    /// error code for what it refuses.
    async fn call(&self, method: &str, form: &[(&str, String)]) -> Result<Value> {
        let token = self.token()?;
        let url = format!("{}/{method}", self.api_url);
        let body = send(self.retries, "Slack", method, || self.http.post(&url).bearer_auth(token).form(form)).await?;
        if body["ok"].as_bool() == Some(true) {
            return Ok(body);
        }
        let error: String = body["error"].as_str().unwrap_or("no error given").chars().take(100).collect();
        Err(match error.as_str() {
            "ratelimited" | "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
                DomainError::unavailable(format!("Slack {method}: {error}"))
            }
            "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
                DomainError::Unauthorized(format!("Slack refused the bot token: {error}"))
            }
            _ => DomainError::validation(format!("Slack refused {method}: {error}")),
        })
    }

    /// Only Slack's own response URLs (or the configured API's host, for a stand-in).
    /// Whether a `response_url` is Slack's (or the configured API's, for a stand-in): judged by
    /// its parsed origin (scheme, host and port), never by a prefix, and with no user info.
    fn response_url_ok(&self, url: &str) -> bool {
        let Ok(parsed) = url::Url::parse(url) else { return false };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return false;
        }
        let origin = parsed.origin();
        let of = |base: &str| url::Url::parse(base).map(|u| u.origin()).ok();
        of(RESPONSE_HOST).is_some_and(|o| o == origin) || of(&self.api_url).is_some_and(|o| o == origin)
    }
}

fn blocks(message: &Message) -> Result<String> {
    serde_json::to_string(&message.blocks).map_err(DomainError::internal)
}

#[async_trait]
impl SlackApi for SlackWeb {
    async fn post_message(&self, channel: &str, message: &Message) -> Result<(String, String)> {
        let form = [("channel", channel.to_owned()), ("text", message.text.clone()), ("blocks", blocks(message)?)];
        let body = self.call("chat.postMessage", &form).await?;
        let ts = body["ts"].as_str().ok_or_else(|| DomainError::internal("chat.postMessage answered no ts"))?;
        Ok((body["channel"].as_str().unwrap_or(channel).to_owned(), ts.to_owned()))
    }

    async fn update_message(&self, channel: &str, ts: &str, message: &Message) -> Result<()> {
        let form = [
            ("channel", channel.to_owned()),
            ("ts", ts.to_owned()),
            ("text", message.text.clone()),
            ("blocks", blocks(message)?),
        ];
        self.call("chat.update", &form).await.map(drop)
    }

    async fn respond(&self, response_url: &str, reply: &Reply) -> Result<()> {
        if !self.response_url_ok(response_url) {
            return Err(DomainError::validation("the response_url is not Slack's"));
        }
        let body = reply.body();
        send(self.retries, "Slack", "response_url", || self.http.post(response_url).json(&body)).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_urls_are_judged_by_their_parsed_origin() {
        let slack = SlackWeb::new("http://127.0.0.1:9200/api", None, Retries::default());
        for url in ["https://hooks.slack.com/commands/T1/2/x", "http://127.0.0.1:9200/commands/T1/1/t"] {
            assert!(slack.response_url_ok(url), "{url}");
        }
        for url in [
            "https://hooks.slack.com.evil.example/x",
            "https://evil@hooks.slack.com/x",
            "http://hooks.slack.com/x",
            "https://hooks.slack.com:8443/x",
            "http://127.0.0.1:9201/x",
            "http://127.0.0.1:9200@10.0.0.1/x",
            "not a url",
        ] {
            assert!(!slack.response_url_ok(url), "{url}");
        }
    }
}
