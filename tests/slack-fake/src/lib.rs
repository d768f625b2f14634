//! A Slack stand-in for tests. Every request is checked against
//! `contract/slack-web-api.yaml`, an excerpt of Slack's published Web API description
//! (`chat.postMessage`, `chat.update`, and the response URLs of commands and interactions);
//! a request that breaks it is refused with 400 and recorded as a violation. Web API calls
//! must carry the bot token the test names, as `Authorization: Bearer`.
//!
//! What Gantry calls is simulated as Slack does it: a message posted to a channel the test
//! created gets a `ts`, and `chat.update` replaces the text and blocks of a message by its
//! channel id and `ts`; refusals are `200 {"ok": false, "error": …}`. A test can also make
//! the next requests fail with 502, be rate limited (429 with `Retry-After`), or answer slowly.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gantry_contract::{Request, StandIn};
use serde_json::{Value, json};

pub use gantry_contract::Fault;

/// A message as it now stands in a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
    pub text: String,
    pub blocks: Value,
    /// How often `chat.update` replaced it.
    pub updates: u32,
}

/// What was sent to a response URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Responded {
    pub path: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    authorization: String,
    /// `(id, name)` of each channel.
    channels: Vec<(String, String)>,
    messages: Vec<Posted>,
    responses: Vec<Responded>,
}

#[derive(Clone)]
pub struct FakeSlack {
    pub url: String,
    state: Arc<Mutex<State>>,
    stand_in: Arc<StandIn>,
}

gantry_contract::deref_stand_in!(FakeSlack);

const CONTRACT: &str = include_str!("../contract/slack-web-api.yaml");

impl FakeSlack {
    /// Serves on a random loopback port until the test ends; `bot_token` signs Web API calls.
    pub async fn start(bot_token: &str) -> Self {
        let state = State { authorization: format!("Bearer {bot_token}"), ..State::default() };
        let state = Arc::new(Mutex::new(state));
        let stand_in = StandIn::new(CONTRACT, "");
        let url = stand_in.serve(state.clone(), handle).await;
        Self { url, state, stand_in }
    }

    /// The Web API base URL (`GANTRY_SLACK_API_URL`).
    pub fn api_url(&self) -> String {
        format!("{}/api", self.url)
    }

    /// Creates a channel messages may be posted to, by id or `#name`.
    pub fn add_channel(&self, id: &str, name: &str) {
        self.state.lock().unwrap().channels.push((id.to_owned(), name.to_owned()));
    }

    /// A response URL of this stand-in, as Slack gives one with a command or a click.
    pub fn response_url(&self, kind: &str, n: u32) -> String {
        format!("{}/{kind}/T0001/{n}/response-token", self.url)
    }

    /// Every message, as it now stands, oldest first.
    pub fn messages(&self) -> Vec<Posted> {
        self.state.lock().unwrap().messages.clone()
    }

    /// What was sent to response URLs, oldest first.
    pub fn responses(&self) -> Vec<Responded> {
        self.state.lock().unwrap().responses.clone()
    }
}

fn ok(body: Value) -> Response {
    let mut body = body;
    body["ok"] = json!(true);
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn refused(error: &str) -> Response {
    (StatusCode::OK, axum::Json(json!({ "ok": false, "error": error }))).into_response()
}

fn fault_answer(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited | Fault::SecondaryRateLimited => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response()
        }
        _ => (StatusCode::BAD_GATEWAY, "Bad Gateway").into_response(),
    }
}

async fn handle(stand_in: Arc<StandIn>, state: Arc<Mutex<State>>, req: Request) -> Response {
    let (op, _) = match stand_in.check(&req) {
        Ok(found) => found,
        Err(violation) => return (StatusCode::BAD_REQUEST, violation.reason).into_response(),
    };
    if let Some(response) = stand_in.fault(fault_answer).await {
        return response;
    }
    let mut s = state.lock().unwrap();
    if op.id.starts_with("response_url") {
        stand_in.answered(&op);
        let body = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        s.responses.push(Responded { path: req.uri.path().to_owned(), body });
        return (StatusCode::OK, "ok").into_response();
    }
    if req.header("authorization") != s.authorization {
        return refused("invalid_auth");
    }
    stand_in.answered(&op);
    let form: Vec<(String, String)> = gantry_contract::form_pairs(&req.body);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let Ok(blocks) = serde_json::from_str::<Value>(&field("blocks")) else { return refused("invalid_blocks") };
    if !blocks.is_array() {
        return refused("invalid_blocks");
    }
    let wanted = field("channel");
    let Some((channel, _)) = s.channels.iter().find(|(id, name)| *id == wanted || *name == wanted).cloned() else {
        return refused("channel_not_found");
    };
    match op.id.as_str() {
        "chat_postMessage" => {
            let ts = format!("1700000000.{:06}", s.messages.len() + 1);
            let text = field("text");
            s.messages.push(Posted {
                channel: channel.clone(),
                ts: ts.clone(),
                text: text.clone(),
                blocks,
                updates: 0,
            });
            ok(json!({ "channel": channel, "ts": ts, "message": { "text": text } }))
        }
        "chat_update" => {
            let ts = field("ts");
            let Some(message) = s.messages.iter_mut().find(|m| m.channel == channel && m.ts == ts) else {
                return refused("message_not_found");
            };
            message.text = field("text");
            message.blocks = blocks;
            message.updates += 1;
            ok(json!({ "channel": channel, "ts": ts, "text": message.text }))
        }
        other => (StatusCode::NOT_IMPLEMENTED, format!("{other} is not simulated")).into_response(),
    }
}

#[cfg(test)]
mod tests;
