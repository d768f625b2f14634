//! "Sign in with OIDC": the authorization code flow with PKCE (RFC 7636). The browser is
//! sent to the provider with a random `state` and a code challenge, both kept in a
//! short-lived HttpOnly cookie; the callback checks the state, redeems the code with the
//! verifier, and signs in with the ID token, which is checked like any OIDC bearer token
//! (issuer, audience, signature from the JWKS, expiry).

use gantry_telemetry::SendTraced as _;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use gantry_platform::OidcSignIn;
use serde::Deserialize;
use sha2::Digest as _;

use super::session::{login_form, session_cookie};
use super::*;

const FLOW_COOKIE: &str = "gantry_oidc";

fn random(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS gives random bytes");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

fn refuse(why: &str) -> Response {
    page(StatusCode::UNAUTHORIZED, login_form(Some(why), true))
}

/// `GET /ui/oidc`: off to the provider.
pub async fn start(State(state): State<Arc<AppState>>) -> Response {
    let Some(oidc) = &state.config.oidc_sign_in else { return StatusCode::NOT_FOUND.into_response() };
    let (flow, verifier) = (random(16), random(32));
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.client_id)
        .append_pair("redirect_uri", &oidc.redirect_uri)
        .append_pair("scope", "openid")
        .append_pair("state", &flow)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let separator = if oidc.authorize_url.contains('?') { '&' } else { '?' };
    // Lax: the provider sends the browser back with a top-level GET.
    let cookie = format!("{FLOW_COOKIE}={flow}.{verifier}; Path=/ui/oidc; HttpOnly; Secure; SameSite=Lax; Max-Age=600");
    ([(header::SET_COOKIE, cookie)], Redirect::to(&format!("{}{separator}{query}", oidc.authorize_url))).into_response()
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /ui/oidc/callback`: back from the provider.
pub async fn callback(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(back): Query<Callback>,
) -> Response {
    let Some(oidc) = &state.config.oidc_sign_in else { return StatusCode::NOT_FOUND.into_response() };
    if let Some(error) = back.error {
        return refuse(&format!("The provider refused: {}", error.chars().take(100).collect::<String>()));
    }
    let flow = super::session::cookie(&headers, FLOW_COOKIE)
        .and_then(|v| v.split_once('.').map(|(s, v)| (s.to_owned(), v.to_owned())));
    let (Some((expected, verifier)), Some(code), Some(returned)) = (flow, back.code, back.state) else {
        return refuse("The sign-in expired or did not start here; try again.");
    };
    if !gantry_gateway::verify::secrets_match(returned.as_bytes(), expected.as_bytes()) {
        return refuse("The sign-in did not start here; try again.");
    }
    let id_token = match redeem(oidc, &code, &verifier).await {
        Ok(token) => token,
        Err(why) => {
            tracing::warn!(error = %why, "OIDC code not redeemed");
            return refuse("The provider did not give a token; try again.");
        }
    };
    if let Err(err) = state.auth.authenticate(Some(&format!("Bearer {id_token}"))).await {
        tracing::info!(reason = %err, "OIDC ID token refused");
        return refuse("The provider's token is not valid here.");
    }
    let session = match state.sessions.start(&id_token).await {
        Ok(session) => session,
        Err(err) => return super::error_page(&err, None),
    };
    let clear = format!("{FLOW_COOKIE}=; Path=/ui/oidc; HttpOnly; Secure; SameSite=Lax; Max-Age=0");
    let mut response = Redirect::to("/ui").into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, clear.parse().expect("a header value"));
    let cookie = session_cookie(&session, state.sessions.limits().absolute.num_seconds());
    headers.append(header::SET_COOKIE, cookie.parse().expect("a header value"));
    response
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: String,
}

/// Redeems the code at the token endpoint, within ten seconds.
async fn redeem(oidc: &OidcSignIn, code: &str, verifier: &str) -> Result<String, String> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", oidc.redirect_uri.as_str()),
        ("client_id", oidc.client_id.as_str()),
        ("code_verifier", verifier),
    ];
    if let Some(secret) = &oidc.client_secret {
        form.push(("client_secret", secret));
    }
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())?;
    let answer = http
        .post(&oidc.token_url)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(body)
        .send_traced()
        .await
        .map_err(|e| e.to_string())?;
    if !answer.status().is_success() {
        return Err(format!("the token endpoint answered {}", answer.status()));
    }
    let parsed: TokenAnswer = answer.json().await.map_err(|e| e.to_string())?;
    if parsed.id_token.len() > 16 * 1024 {
        return Err("the ID token is over 16 KiB".into());
    }
    Ok(parsed.id_token)
}
