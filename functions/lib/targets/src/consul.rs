//! Consul's service mesh as a router, through its HTTP API: a `service-resolver` gives the
//! service one subset per slot (its instances whose service meta `gantry_slot` names the
//! subset, passing only), and a `service-splitter` weights the two subsets; both are written
//! with `PUT /v1/config`, which takes effect without restarting anything. A slot is up when
//! `GET /v1/health/service/<service>?passing` finds an instance of its subset.
//!
//! Consul answers a refused entry (a token without `service:write`, a service whose protocol
//! is not http, an entry it does not accept) with 403, 400 or 500 and a sentence: the rollout
//! fails with it. A rate limit (429) is waited out (its `retry-after`, else a second) twice.

use gantry_telemetry::SendTraced as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gantry_domain::traffic::{Matcher, Router, RouterChange, RouterConfig};
use gantry_domain::{DomainError, Result};
use serde_json::{Value, json};
use tracing::instrument;

use crate::secrets::Secrets;

/// The service meta key a slot's instances carry.
pub const SLOT_META: &str = "gantry_slot";

pub struct Consul {
    pub http: reqwest::Client,
    pub secrets: Arc<Secrets>,
}

impl Consul {
    pub fn new(secrets: Arc<Secrets>) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        Self { http, secrets }
    }
}

struct Target<'a> {
    address: &'a str,
    token: Option<String>,
    service: &'a str,
    subsets: [&'a str; 2],
}

impl Consul {
    async fn target<'a>(&self, config: &'a RouterConfig) -> Result<Target<'a>> {
        let RouterConfig::Consul { address, token_ref, service, slots } = config else {
            return Err(DomainError::internal("the Consul router got another router's configuration"));
        };
        let [a, b] = slots.as_slice() else { return Err(DomainError::internal("a router without two slots passed")) };
        let token = match token_ref {
            Some(r) => Some(self.secrets.resolve("tokenRef", r).await?),
            None => None,
        };
        Ok(Target { address: address.trim_end_matches('/'), token, service, subsets: [&a.server, &b.server] })
    }

    /// Sends a request, waiting out rate limits; the answer's body.
    async fn call(&self, t: &Target<'_>, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value> {
        for attempt in 0..3 {
            let mut req = self.http.request(method.clone(), format!("{}/v1{path}", t.address));
            if let Some(token) = &t.token {
                req = req.header("X-Consul-Token", token);
            }
            if let Some(body) = body {
                req = req.json(body);
            }
            let res = req.send_traced().await.map_err(|e| DomainError::internal(format!("Consul {path}: {e}")))?;
            let status = res.status();
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS && attempt < 2 {
                let wait = res.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                tokio::time::sleep(Duration::from_secs(wait.unwrap_or(1).min(30))).await;
                continue;
            }
            let text = res.text().await.map_err(|e| DomainError::internal(format!("Consul {path}: {e}")))?;
            let said: String = text.trim().chars().take(300).collect();
            return match status.as_u16() {
                200..=299 => Ok(serde_json::from_str(&text).unwrap_or(Value::Null)),
                400 | 403 | 404 | 500 => {
                    Err(DomainError::validation(format!("Consul refused {path} ({status}): {said}")))
                }
                _ => Err(DomainError::internal(format!("Consul {path} answered {status}: {said}"))),
            };
        }
        Err(DomainError::internal(format!("Consul {path} stayed rate limited")))
    }

    /// Writes a config entry; Consul answers `true` when it took it.
    async fn apply(&self, t: &Target<'_>, entry: &Value) -> Result<()> {
        match self.call(t, reqwest::Method::PUT, "/config", Some(entry)).await? {
            Value::Bool(true) => Ok(()),
            other => Err(DomainError::validation(format!("Consul did not apply the {} entry: {other}", entry["Kind"]))),
        }
    }
}

#[async_trait]
impl Router for Consul {
    #[instrument(skip_all, fields(slot = to, weight), err(level = "info"))]
    async fn shift(&self, config: &RouterConfig, to: usize, weight: u8) -> Result<RouterChange> {
        let t = self.target(config).await?;
        let subsets: serde_json::Map<String, Value> = t
            .subsets
            .iter()
            .map(|s| {
                (
                    (*s).to_owned(),
                    json!({ "Filter": format!("Service.Meta.{SLOT_META} == \"{s}\""), "OnlyPassing": true }),
                )
            })
            .collect();
        let resolver = json!({ "Kind": "service-resolver", "Name": t.service, "Subsets": subsets });
        self.apply(&t, &resolver).await?;
        let (new, old) = (t.subsets[to % 2], t.subsets[(to + 1) % 2]);
        let splits = [(new, weight), (old, 100 - weight)];
        let splitter = json!({ "Kind": "service-splitter", "Name": t.service,
            "Splits": splits.iter().map(|(s, w)| json!({ "Weight": w, "ServiceSubset": s })).collect::<Vec<_>>() });
        self.apply(&t, &splitter).await?;
        let shown = splits.iter().map(|(s, w)| format!("{s}={w}")).collect::<Vec<_>>().join(" ");
        Ok(RouterChange::new(
            "consul",
            vec![
                format!("PUT /v1/config service-resolver/{} subsets {}", t.service, t.subsets.join(",")),
                format!("PUT /v1/config service-splitter/{} {shown}", t.service),
            ],
        ))
    }

    async fn route_matching(&self, _: &RouterConfig, _: &Matcher, _: Option<usize>) -> Result<RouterChange> {
        Err(DomainError::validation("an abTest routes through HAProxy"))
    }

    #[instrument(skip_all, fields(slot), err(level = "info"))]
    async fn ready(&self, config: &RouterConfig, slot: usize) -> Result<bool> {
        let t = self.target(config).await?;
        let filter = format!("Service.Meta.{SLOT_META} == \"{}\"", t.subsets[slot % 2]);
        let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("filter", &filter).finish();
        let path = format!("/health/service/{}?passing=true&{query}", t.service);
        let found = self.call(&t, reqwest::Method::GET, &path, None).await?;
        Ok(found.as_array().is_some_and(|instances| !instances.is_empty()))
    }
}
