//! Signing in and out, and the session every page reads: an opaque session id in an
//! HttpOnly, Secure, SameSite=Strict cookie, standing for a bearer token kept sealed on the
//! server ([`gantry_domain::sessions`]). The token is checked on every request exactly as
//! the API checks a bearer token (so the session ends when the token expires or its service
//! account is revoked); signing out deletes the session, so a copied cookie is worthless.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gantry_domain::DomainError;
use gantry_domain::access::Principal;
use maud::html;

use super::*;

pub const COOKIE: &str = "gantry_session";

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

/// The CSRF token of a session: an HMAC of its id under the server's key, so it needs no
/// storage and no other site can compute it.
pub fn csrf_token(key: &[u8], session: &str) -> String {
    mac_hex(key, &format!("gantry-csrf:{session}"))[..32].to_owned()
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

/// The cookie for a session id, kept by the browser no longer than the session can last.
pub fn session_cookie(session: &str, max_age_seconds: i64) -> String {
    format!("{COOKIE}={session}; Path=/ui; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age_seconds}")
}

/// The session of a request; `Unauthorized` without a live one, or when its token no
/// longer passes (expired, or its service account revoked), which also ends the session.
pub async fn session(state: &AppState, headers: &HeaderMap) -> Result<Session, DomainError> {
    let id = cookie(headers, COOKIE).ok_or_else(|| DomainError::Unauthorized("not signed in".into()))?;
    let token = state.sessions.token(id).await?;
    let principal = match state.auth.authenticate(Some(&format!("Bearer {token}"))).await {
        Ok(principal) => principal,
        Err(err @ DomainError::Unauthorized(_)) => {
            state.sessions.end(id).await?;
            return Err(err);
        }
        Err(err) => return Err(err),
    };
    Ok(Session { principal, csrf: csrf_token(&state.config.jwt_secret, id) })
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
    let session = match state.sessions.start(&token).await {
        Ok(session) => session,
        Err(err) => return error_page(&err, None),
    };
    let cookie = session_cookie(&session, state.sessions.limits().absolute.num_seconds());
    ([(header::SET_COOKIE, cookie)], Redirect::to("/ui")).into_response()
}

pub async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(err) = posted(&state, &headers, &form(&body)).await {
        return error_page(&err, None);
    }
    // The session is deleted on the server: the cookie, wherever it was copied, is worthless.
    if let Some(id) = cookie(&headers, COOKIE)
        && let Err(err) = state.sessions.end(id).await
    {
        return error_page(&err, None);
    }
    let cookie = format!("{COOKIE}=; Path=/ui; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/ui/login")).into_response()
}
