//! The agent's only connection: outbound HTTPS (plain HTTP to a loopback host only) to the
//! Gantry API, every request but enrollment signed with the agent's key (RFC 9421).

use std::time::Duration;

use gantry_signing::SigningKey;
use gantry_signing::requests::{Params, sign};
use serde_json::Value;

pub struct Api {
    http: reqwest::Client,
    base: url::Url,
}

/// A request that got no usable answer.
#[derive(Debug)]
pub struct Failed {
    pub status: Option<u16>,
    pub message: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "{status}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl Api {
    /// `url` must be `https://…`, or `http://` to a loopback host.
    pub fn new(url: &str) -> Result<Self, String> {
        let base = gantry_domain::outbound::parse("the Gantry URL", url, 2048).map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("gantry-agent/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(40))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { http, base })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    /// An unsigned POST (enrollment).
    pub async fn post_unsigned(&self, path: &str, body: &Value) -> Result<Value, Failed> {
        let res = self.http.post(self.url(path)).json(body).send().await;
        answer(res).await
    }

    /// A POST signed by `key` as agent `agent_id`.
    pub async fn post(&self, key: &SigningKey, agent_id: &str, path: &str, body: &Value) -> Result<Value, Failed> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let params = Params {
            created: chrono::Utc::now().timestamp(),
            keyid: agent_id.to_owned(),
            nonce: uuid::Uuid::new_v4().simple().to_string(),
        };
        // `@path` is the path the API sees: behind a prefix a proxy strips (as the local
        // emulator's Function URLs are), the prefix is not part of it.
        let signed = sign(key, "POST", path, &bytes, &params);
        let res = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .header("content-digest", signed.content_digest)
            .header("signature-input", signed.signature_input)
            .header("signature", signed.signature)
            .body(bytes)
            .send()
            .await;
        answer(res).await
    }
}

async fn answer(res: reqwest::Result<reqwest::Response>) -> Result<Value, Failed> {
    let res = res.map_err(|e| Failed { status: None, message: format!("the Gantry API did not answer: {e}") })?;
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
    }
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(200).collect());
    Err(Failed { status: Some(status.as_u16()), message })
}
