//! A Consul HTTP API stand-in for tests. No Consul binary can be had here, so routing through
//! Consul is tested against this: every request is checked against
//! `contract/consul-api-excerpt.yaml` (transcribed from Consul's API documentation) and
//! refused with 400 and a recorded violation when it breaks it.
//!
//! It behaves as Consul documents: a request without the ACL token it requires is refused
//! with 403 `Permission denied`; a splitter's weights must add up to 100, its subsets must be
//! ones the service's resolver defines, and the service's protocol (its `service-defaults`)
//! must be http-based, or the entry is refused with 500 and Consul's sentence; the health
//! endpoint lists instances, `passing` ones only when asked, narrowed by a
//! `Service.Meta.<key> == "<value>"` filter. A test scripts rate limits (429), server errors
//! and slowness.

pub use gantry_contract as contract;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use contract::{Fault, Request, StandIn};
use serde_json::{Value, json};

/// A service instance: its id, its service meta, and whether its checks pass.
pub type Instance = (String, BTreeMap<String, String>, bool);

#[derive(Default)]
struct State {
    index: u64,
    /// `(kind, name)` → the entry as written, with its indexes.
    entries: BTreeMap<(String, String), Value>,
    /// Service → `(instance id, meta, passing)`.
    instances: HashMap<String, Vec<Instance>>,
    token: Option<String>,
}

#[derive(Clone)]
pub struct FakeConsul {
    pub url: String,
    state: Arc<Mutex<State>>,
    stand_in: Arc<StandIn>,
}

gantry_contract::deref_stand_in!(FakeConsul);

const CONTRACT: &str = include_str!("../contract/consul-api-excerpt.yaml");

impl FakeConsul {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let stand_in = StandIn::new(CONTRACT, "/v1");
        let url = stand_in.serve(state.clone(), handle).await;
        Self { url, state, stand_in }
    }

    /// Requests without this `X-Consul-Token` are refused with 403.
    pub fn require_token(&self, token: &str) {
        self.state.lock().unwrap().token = Some(token.to_owned());
    }

    /// Sets a service's instances: `(id, meta, passing)` each.
    pub fn set_instances(&self, service: &str, instances: Vec<Instance>) {
        self.state.lock().unwrap().instances.insert(service.to_owned(), instances);
    }

    /// A config entry as written, if there is one.
    pub fn entry(&self, kind: &str, name: &str) -> Option<Value> {
        self.state.lock().unwrap().entries.get(&(kind.to_owned(), name.to_owned())).cloned()
    }

    /// The splitter's weights of `service`, by subset.
    pub fn splits(&self, service: &str) -> Vec<(String, f64)> {
        let entry = self.entry("service-splitter", service).unwrap_or(Value::Null);
        let splits = entry["Splits"].as_array().cloned().unwrap_or_default();
        splits
            .iter()
            .map(|s| (s["ServiceSubset"].as_str().unwrap_or_default().to_owned(), s["Weight"].as_f64().unwrap_or(0.0)))
            .collect()
    }
}

fn text(status: StatusCode, body: &str) -> Response {
    (status, body.to_owned()).into_response()
}

async fn handle(stand_in: Arc<StandIn>, state: Arc<Mutex<State>>, req: Request) -> Response {
    let (op, params) = match stand_in.check(&req) {
        Ok(found) => found,
        Err(violation) => return text(StatusCode::BAD_REQUEST, &violation.reason),
    };
    let fault = stand_in.fault(|fault| match fault {
        Fault::ServerError => text(StatusCode::BAD_GATEWAY, "Bad Gateway"),
        _ => text(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded"),
    });
    if let Some(response) = fault.await {
        return response;
    }
    let mut s = state.lock().unwrap();
    if s.token.as_ref().is_some_and(|token| req.header("X-Consul-Token") != token) {
        return text(StatusCode::FORBIDDEN, "Permission denied: token lacks permission 'service:write'");
    }
    stand_in.answered(&op);
    match op.id.as_str() {
        "ApplyConfig" => apply(&mut s, serde_json::from_slice(&req.body).unwrap_or(Value::Null)),
        "GetConfig" => {
            let key = (params["kind"].clone(), params["name"].clone());
            match s.entries.get(&key) {
                Some(entry) => (StatusCode::OK, axum::Json(entry.clone())).into_response(),
                None => text(StatusCode::NOT_FOUND, &format!("Config entry not found for {:?} / {:?}", key.0, key.1)),
            }
        }
        "HealthService" => health(&s, &params["service"], req.uri.query().unwrap_or_default()),
        other => text(StatusCode::NOT_IMPLEMENTED, &format!("{other} is in the contract but not simulated")),
    }
}

/// Writes an entry as Consul's config endpoint does, refusing what Consul refuses.
fn apply(s: &mut State, entry: Value) -> Response {
    let (kind, name) = (entry["Kind"].as_str().unwrap_or_default(), entry["Name"].as_str().unwrap_or_default());
    if kind == "service-splitter"
        && let Err(why) = check_splitter(s, name, &entry)
    {
        return text(StatusCode::INTERNAL_SERVER_ERROR, &why);
    }
    s.index += 1;
    let mut stored = entry.clone();
    let key = (kind.to_owned(), name.to_owned());
    let created = s.entries.get(&key).map_or(s.index, |e| e["CreateIndex"].as_u64().unwrap_or(s.index));
    stored["CreateIndex"] = json!(created);
    stored["ModifyIndex"] = json!(s.index);
    s.entries.insert(key, stored);
    (StatusCode::OK, axum::Json(json!(true))).into_response()
}

fn check_splitter(s: &State, name: &str, entry: &Value) -> Result<(), String> {
    let protocol = s.entries.get(&("service-defaults".to_owned(), name.to_owned()));
    let protocol = protocol.and_then(|e| e["Protocol"].as_str()).unwrap_or("tcp");
    if !matches!(protocol, "http" | "http2" | "grpc") {
        return Err(format!(
            "discovery chain {name:?} uses a protocol {protocol:?} that does not permit advanced routing or splitting behavior"
        ));
    }
    let splits = entry["Splits"].as_array().cloned().unwrap_or_default();
    let sum: i64 = splits.iter().map(|s| (s["Weight"].as_f64().unwrap_or(0.0) * 100.0).round() as i64).sum();
    if sum != 10_000 {
        return Err(format!("the sum of all split weights must be 100, not {:.6}", sum as f64 / 100.0));
    }
    let resolver = s.entries.get(&("service-resolver".to_owned(), name.to_owned()));
    for split in &splits {
        let Some(subset) = split["ServiceSubset"].as_str().filter(|s| !s.is_empty()) else { continue };
        if resolver.is_none_or(|r| r["Subsets"].get(subset).is_none()) {
            return Err(format!("service {name:?} does not have a subset named {subset:?}"));
        }
    }
    Ok(())
}

/// The service's instances as `/health/service` lists them.
fn health(s: &State, service: &str, query: &str) -> Response {
    let pairs: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let passing_only = pairs.get("passing").is_some_and(|v| v != "false");
    let wanted = match pairs.get("filter") {
        None => None,
        Some(filter) => match meta_filter(filter) {
            Some(found) => Some(found),
            None => return text(StatusCode::BAD_REQUEST, "Failed to create boolean expression evaluator"),
        },
    };
    let listed: Vec<Value> = s
        .instances
        .get(service)
        .into_iter()
        .flatten()
        .filter(|(_, _, passing)| *passing || !passing_only)
        .filter(|(_, meta, _)| wanted.as_ref().is_none_or(|(k, v)| meta.get(k) == Some(v)))
        .map(|(id, meta, passing)| {
            let status = if *passing { "passing" } else { "critical" };
            json!({ "Node": { "Node": "node-1" }, "Service": { "ID": id, "Service": service, "Meta": meta },
                    "Checks": [{ "CheckID": format!("service:{id}"), "Status": status }] })
        })
        .collect();
    (StatusCode::OK, [("X-Consul-Index", s.index.to_string())], axum::Json(json!(listed))).into_response()
}

/// `Service.Meta.<key> == "<value>"` (or the value unquoted): the key and the value.
fn meta_filter(filter: &str) -> Option<(String, String)> {
    let (selector, value) = filter.split_once("==")?;
    let key = selector.trim().strip_prefix("Service.Meta.")?;
    let value = value.trim().trim_matches('"');
    (!key.is_empty() && !value.is_empty()).then(|| (key.to_owned(), value.to_owned()))
}
