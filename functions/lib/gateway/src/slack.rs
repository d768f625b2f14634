//! Requests from Slack: the signature check (`X-Slack-Signature: v0=<hex HMAC-SHA256 of
//! "v0:{X-Slack-Request-Timestamp}:{body}">`, within five minutes) and the two bodies Gantry
//! takes, a slash command's form and an interaction's `payload`.

use gantry_domain::chatops::cards::{APPROVE_ACTION, REJECT_ACTION};
use gantry_domain::chatops::slack_id;
use gantry_domain::{DomainError, Result};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// How far a request's timestamp may be from now, either way.
pub const MAX_SKEW_SECONDS: i64 = 300;

/// What a Slack request carries, independent of the HTTP framework.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlackInbound<'a> {
    pub body: &'a [u8],
    /// `X-Slack-Request-Timestamp`.
    pub timestamp: Option<&'a str>,
    /// `X-Slack-Signature`.
    pub signature: Option<&'a str>,
}

fn unauthorized(why: &str) -> DomainError {
    DomainError::Unauthorized(why.to_owned())
}

/// `v0=<hex>` for a body, as Slack computes it.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks the request's signature, in constant time, and that it was signed within
/// [`MAX_SKEW_SECONDS`] of `now` (a Unix time), so a captured request cannot be replayed later.
pub fn verify(secret: &[u8], inbound: &SlackInbound<'_>, now: i64) -> Result<()> {
    let timestamp = inbound.timestamp.ok_or_else(|| unauthorized("missing X-Slack-Request-Timestamp"))?;
    let at: i64 = timestamp.parse().map_err(|_| unauthorized("X-Slack-Request-Timestamp is not a Unix time"))?;
    // Checked: a timestamp near i64's ends would overflow a plain subtraction.
    let skew = now.checked_sub(at).and_then(i64::checked_abs);
    if skew.is_none_or(|skew| skew > MAX_SKEW_SECONDS) {
        return Err(unauthorized("X-Slack-Request-Timestamp is more than five minutes away"));
    }
    let header = inbound.signature.ok_or_else(|| unauthorized("missing X-Slack-Signature"))?;
    let hex_sig = header.strip_prefix("v0=").ok_or_else(|| unauthorized("X-Slack-Signature must start with v0="))?;
    let signature = hex::decode(hex_sig).map_err(|_| unauthorized("X-Slack-Signature is not hex"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| unauthorized("unusable secret"))?;
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(inbound.body);
    mac.verify_slice(&signature).map_err(|_| unauthorized("X-Slack-Signature does not match"))
}

/// A slash command's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashCommand {
    pub team_id: String,
    pub user_id: String,
    pub text: String,
    pub response_url: String,
    /// Unique per invocation, and the same on Slack's retries.
    pub trigger_id: String,
}

/// An opaque Slack value (`trigger_id`, `action_ts`): printable, at most 255 characters.
fn token(name: &str, value: String) -> Result<String> {
    if !value.is_empty() && value.len() <= 255 && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(value)
    } else {
        Err(DomainError::validation(format!("the Slack request's {name} is not a Slack value")))
    }
}

/// A `response_url`: a parsed https (or http, for a stand-in) URL with a host and no user
/// info, at most 2,000 characters. Which hosts may be called is the notifier's check.
fn checked_url(value: String) -> Result<String> {
    let parsed = url::Url::parse(&value).is_ok_and(|u| {
        matches!(u.scheme(), "https" | "http")
            && u.host().is_some()
            && u.username().is_empty()
            && u.password().is_none()
    });
    if parsed && value.len() <= 2000 && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(value)
    } else {
        Err(DomainError::validation("the Slack request's response_url is not a URL"))
    }
}

fn field(form: &[(String, String)], name: &str) -> Result<String> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| DomainError::validation(format!("the Slack request has no {name}")))
}

/// Parses a slash command's form body.
pub fn parse_command(body: &[u8]) -> Result<SlashCommand> {
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    Ok(SlashCommand {
        team_id: slack_id("team_id", &field(&form, "team_id")?)?,
        user_id: slack_id("user_id", &field(&form, "user_id")?)?,
        text: field(&form, "text").unwrap_or_default(),
        response_url: checked_url(field(&form, "response_url")?)?,
        trigger_id: token("trigger_id", field(&form, "trigger_id")?)?,
    })
}

/// A click on an approval card's button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    pub team_id: String,
    pub user_id: String,
    pub approve: bool,
    pub promotion: String,
    pub response_url: String,
    /// Unique per click, and the same on Slack's retries.
    pub action_ts: String,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    user: User,
    #[serde(default)]
    team: Option<Team>,
    #[serde(default)]
    actions: Vec<ActionPayload>,
    #[serde(default)]
    response_url: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: String,
    #[serde(default)]
    team_id: Option<String>,
}

#[derive(Deserialize)]
struct Team {
    id: String,
}

#[derive(Deserialize)]
struct ActionPayload {
    action_id: String,
    #[serde(default)]
    value: Option<String>,
    action_ts: String,
}

/// Parses an interaction's `payload`: the click on an approval card's button, or `None` for
/// any other interaction.
pub fn parse_interaction(body: &[u8]) -> Result<Option<Click>> {
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let payload: Payload = serde_json::from_str(&field(&form, "payload")?)
        .map_err(|e| DomainError::validation(format!("the interaction payload does not parse: {e}")))?;
    if payload.kind != "block_actions" {
        return Ok(None);
    }
    let Some(action) = payload.actions.into_iter().next() else { return Ok(None) };
    let approve = match action.action_id.as_str() {
        APPROVE_ACTION => true,
        REJECT_ACTION => false,
        _ => return Ok(None),
    };
    let team_id = payload.team.map(|t| t.id).or(payload.user.team_id);
    let (Some(team_id), Some(response_url), Some(promotion)) = (team_id, payload.response_url, action.value) else {
        return Err(DomainError::validation("the click has no team, response_url or promotion"));
    };
    Ok(Some(Click {
        team_id: slack_id("team", &team_id)?,
        user_id: slack_id("user", &payload.user.id)?,
        approve,
        promotion: token("value", promotion)?,
        response_url: checked_url(response_url)?,
        action_ts: token("action_ts", action.action_ts)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example in Slack's "Verifying requests from Slack".
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn inbound<'a>(timestamp: &'a str, signature: &'a str) -> SlackInbound<'a> {
        SlackInbound { body: BODY.as_bytes(), timestamp: Some(timestamp), signature: Some(signature) }
    }

    #[test]
    fn slacks_documented_example_verifies() {
        assert_eq!(sign(SECRET, "1531420618", BODY.as_bytes()), SIGNATURE);
        assert!(verify(SECRET, &inbound("1531420618", SIGNATURE), 1531420618 + 299).is_ok());
        let command = parse_command(BODY.as_bytes()).unwrap();
        assert_eq!(
            (command.team_id.as_str(), command.user_id.as_str(), command.text.as_str()),
            ("T1DC2JH3J", "U2CERLKJA", "")
        );
        let response_url = url::Url::parse(&command.response_url).unwrap();
        assert_eq!(
            (response_url.scheme(), response_url.host_str(), response_url.path().starts_with("/commands/")),
            ("https", Some("hooks.slack.com"), true)
        );
        let huge = BODY.replace("trigger_id=398738663015", &format!("trigger_id={}", "9".repeat(300)));
        assert_eq!(parse_command(huge.as_bytes()).unwrap_err().code(), "BAD_USER_INPUT");
        let hostile = BODY.replace("team_id=T1DC2JH3J", "team_id=T1%23USER%23x");
        assert_eq!(parse_command(hostile.as_bytes()).unwrap_err().code(), "BAD_USER_INPUT", "no key injection");
        for url in
            ["ftp%3A%2F%2Fhooks.slack.com%2Fx", "https%3A%2F%2Fu%3Ap%40hooks.slack.com%2Fx", "http%3A%2F%2F%5Bbad"]
        {
            let odd = BODY.replace("https%3A%2F%2Fhooks.slack.com%2Fcommands", url);
            assert_eq!(parse_command(odd.as_bytes()).unwrap_err().code(), "BAD_USER_INPUT", "{url}");
        }
    }

    #[test]
    fn forged_stale_and_malformed_requests_are_refused() {
        let now = 1531420618;
        let refused = |i: SlackInbound<'_>, at: i64| verify(SECRET, &i, at).unwrap_err().code();
        assert_eq!(refused(inbound("1531420618", SIGNATURE), now + 301), "UNAUTHENTICATED", "stale");
        assert_eq!(refused(inbound("1531420618", SIGNATURE), now - 301), "UNAUTHENTICATED", "from the future");
        let forged = sign(b"another secret", "1531420618", BODY.as_bytes());
        assert_eq!(refused(inbound("1531420618", &forged), now), "UNAUTHENTICATED");
        let moved = sign(SECRET, "1531420619", BODY.as_bytes());
        assert_eq!(refused(inbound("1531420618", &moved), now), "UNAUTHENTICATED", "the timestamp is signed");
        for bad in ["", "v1=00", "v0=zz", "a2114d57"] {
            assert_eq!(refused(inbound("1531420618", bad), now), "UNAUTHENTICATED", "{bad}");
        }
        assert_eq!(refused(inbound("soon", SIGNATURE), now), "UNAUTHENTICATED");
        // Correctly signed, with a time at either end of i64: refused, never an overflow.
        for extreme in [i64::MIN.to_string(), i64::MAX.to_string(), "-1".to_owned()] {
            let signed = sign(SECRET, &extreme, BODY.as_bytes());
            assert_eq!(refused(inbound(&extreme, &signed), now), "UNAUTHENTICATED", "{extreme}");
        }
        assert_eq!(refused(inbound("1531420618", SIGNATURE), i64::MIN), "UNAUTHENTICATED");
        assert_eq!(refused(SlackInbound { body: BODY.as_bytes(), ..Default::default() }, now), "UNAUTHENTICATED");
    }

    fn interaction(payload: serde_json::Value) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish()
            .into_bytes()
    }

    #[test]
    fn card_clicks_parse_and_other_interactions_are_ignored() {
        let click = serde_json::json!({
            "type": "block_actions", "user": { "id": "U1", "team_id": "T1" }, "team": { "id": "T1" },
            "response_url": "https://hooks.slack.com/actions/T1/1/x", "trigger_id": "1.2.3",
            "actions": [{ "action_id": APPROVE_ACTION, "block_id": "gantry_decision", "value": "p-1", "action_ts": "1700000000.1" }]
        });
        let parsed = parse_interaction(&interaction(click.clone())).unwrap().unwrap();
        assert_eq!((parsed.team_id.as_str(), parsed.user_id.as_str(), parsed.approve), ("T1", "U1", true));
        assert_eq!((parsed.promotion.as_str(), parsed.action_ts.as_str()), ("p-1", "1700000000.1"));
        let mut other = click.clone();
        other["actions"][0]["action_id"] = "something_else".into();
        assert_eq!(parse_interaction(&interaction(other)).unwrap(), None);
        let mut shortcut = click;
        shortcut["type"] = "shortcut".into();
        assert_eq!(parse_interaction(&interaction(shortcut)).unwrap(), None);
        assert_eq!(parse_interaction(b"payload=%7Bnot-json").unwrap_err().code(), "BAD_USER_INPUT");
        assert_eq!(parse_interaction(b"nothing=here").unwrap_err().code(), "BAD_USER_INPUT");
        let mut long = serde_json::json!({
            "type": "block_actions", "user": { "id": "U1" }, "team": { "id": "T1" }, "response_url": "https://hooks.slack.com/x",
            "actions": [{ "action_id": APPROVE_ACTION, "value": "p", "action_ts": "1".repeat(300) }]
        });
        assert_eq!(
            parse_interaction(&interaction(long.clone())).unwrap_err().code(),
            "BAD_USER_INPUT",
            "a bounded action_ts"
        );
        long["actions"][0]["action_ts"] = "1.2".into();
        long["user"]["id"] = "U#1".into();
        assert_eq!(parse_interaction(&interaction(long)).unwrap_err().code(), "BAD_USER_INPUT", "a Slack user id");
    }
}
