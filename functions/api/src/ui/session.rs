//! Signing in and out, and the session every page reads: the bearer token in an HttpOnly,
//! Secure, SameSite=Strict cookie, checked on every request exactly as the API checks a
//! bearer token (so it ends when the token expires or its service account is revoked).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gantry_domain::DomainError;
use gantry_domain::access::Principal;
use maud::html;

use super::*;

pub const COOKIE: &str = "gantry_session";
/// The cookie lasts twelve hours at most; the token's own expiry applies within that.
const MAX_AGE_SECONDS: u32 = 12 * 3600;

/// Who is signed in, and the CSRF token their forms carry.
pub struct Session {
    pub principal: Principal,
    pub csrf: String,
}

impl Session {
    pub fn who(&self) -> Option<(&Principal, &str)> {
        Some((&self.principal, self.csrf.as_str()))
    }
}

/// The CSRF token of a session: an HMAC of its bearer token under the server's key, so it
/// needs no storage and no other site can compute it.
pub fn csrf_token(key: &[u8], bearer: &str) -> String {
    mac_hex(key, &format!("gantry-csrf:{bearer}"))[..32].to_owned()
}

/// A cookie's value, when the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// The session cookie for a token.
pub fn session_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; Path=/ui; HttpOnly; Secure; SameSite=Strict; Max-Age={MAX_AGE_SECONDS}")
}

/// The session of a request; `Unauthorized` without a valid one.
pub async fn session(state: &AppState, headers: &HeaderMap) -> Result<Session, DomainError> {
    let token = cookie(headers, COOKIE).ok_or_else(|| DomainError::Unauthorized("not signed in".into()))?;
    let principal = state.auth.authenticate(Some(&format!("Bearer {token}"))).await?;
    Ok(Session { principal, csrf: csrf_token(&state.config.jwt_secret, token) })
}

/// The session of a form post: from this origin, with the session's CSRF token.
pub async fn posted(state: &AppState, headers: &HeaderMap, form: &[(String, String)]) -> Result<Session, DomainError> {
    if !same_origin(headers) {
        return Err(DomainError::Forbidden("a form from another site".into()));
    }
    let session = session(state, headers).await?;
    let presented = field(form, "csrf").unwrap_or_default();
    if !gantry_gateway::verify::secrets_match(presented.as_bytes(), session.csrf.as_bytes()) {
        return Err(DomainError::Forbidden("the form is stale or forged: reload the page".into()));
    }
    Ok(session)
}

/// A page's session, or the response that sends the browser to sign in.
pub async fn or_sign_in(state: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    match session(state, headers).await {
        Ok(session) => Ok(session),
        Err(DomainError::Unauthorized(_)) => Err(Redirect::to("/ui/login").into_response()),
        Err(err) => Err(error_page(&err, None)),
    }
}

pub fn login_form(error: Option<&str>, oidc: bool) -> maud::Markup {
    let body = html! {
        div.login {
            h1 { "Sign in to Gantry" }
            p.muted { "Paste a token Gantry issued (a service account's, or the one make dev prints) or one from your OIDC provider. It is kept in an HttpOnly cookie for this browser." }
            @if let Some(error) = error { p.error { (error) } }
            form method="post" action="/ui/login" {
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="off" required;
                button type="submit" { "Sign in" }
            }
            @if oidc { p { a #oidc href="/ui/oidc" { "Sign in with your identity provider" } } }
        }
    };
    layout("Sign in", None, body)
}

pub async fn login_page(State(state): State<Arc<AppState>>) -> Response {
    page(StatusCode::OK, login_form(None, state.config.oidc_sign_in.is_some()))
}

pub async fn login(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    if !same_origin(&headers) {
        return page(
            StatusCode::FORBIDDEN,
            login_form(Some("Sign in from Gantry's own page."), state.config.oidc_sign_in.is_some()),
        );
    }
    let form = form(&body);
    let token = field(&form, "token").unwrap_or_default().trim().to_owned();
    let valid = !token.is_empty()
        && token.len() <= 8192
        && token.bytes().all(|b| b.is_ascii_graphic())
        && state.auth.authenticate(Some(&format!("Bearer {token}"))).await.is_ok();
    if !valid {
        return page(
            StatusCode::UNAUTHORIZED,
            login_form(Some("That token is not valid here."), state.config.oidc_sign_in.is_some()),
        );
    }
    ([(header::SET_COOKIE, session_cookie(&token))], Redirect::to("/ui")).into_response()
}

pub async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(err) = posted(&state, &headers, &form(&body)).await {
        return error_page(&err, None);
    }
    let cookie = format!("{COOKIE}=; Path=/ui; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/ui/login")).into_response()
}
