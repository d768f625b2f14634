//! The dashboard: server-rendered pages under `/ui` (maud), with a few lines of script for
//! live regions and nothing loaded from elsewhere. Signing in puts the bearer token (one
//! Gantry issued, or an OIDC provider's) in an HttpOnly, Secure, SameSite=Strict cookie;
//! every form carries a CSRF token derived from the session, and a POST from another origin
//! is refused. Handlers stay thin: read the session, call one service, render.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gantry_domain::DomainError;
use gantry_domain::access::Principal;
use gantry_platform::AppState;
use hmac::{Hmac, Mac};
use maud::{DOCTYPE, Markup, html};
use sha2::Sha256;

mod agents;
mod evidence;
mod insights;
mod oidc;
mod pages;
mod promotions;
mod session;
mod verdict;

pub use session::{COOKIE, csrf_token};

/// Form bodies are small: a token, a reason.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The pages' own policy: as the API's, but forms may post to Gantry itself.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ui", get(pages::matrix))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/oidc", get(oidc::start))
        .route("/ui/oidc/callback", get(oidc::callback))
        .route("/ui/releases/{id}", get(pages::release))
        .route("/ui/agents", get(agents::page))
        .route("/ui/promotions", get(promotions::queue))
        .route("/ui/promotions/{id}", get(promotions::show))
        .route("/ui/promotions/{id}/live", get(promotions::live))
        .route("/ui/promotions/{id}/approve", post(promotions::approve))
        .route("/ui/promotions/{id}/reject", post(promotions::reject))
        .route("/ui/environments/{id}/evidence", get(evidence::page))
        .route("/ui/environments/{id}/insights", get(insights::page))
        .route("/ui/assets/{name}", get(asset))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(state)
}

async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "ui.css" => (include_str!("../../assets/ui/ui.css"), "text/css; charset=utf-8"),
        "ui.js" => (include_str!("../../assets/ui/ui.js"), "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}

/// A whole page: the header with the signed-in principal, and `body`.
fn layout(title: &str, who: Option<(&Principal, &str)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Gantry" }
                link rel="stylesheet" href="/ui/assets/ui.css";
                script src="/ui/assets/ui.js" defer {}
            }
            body {
                header {
                    a href="/ui" { "Gantry" }
                    a href="/ui" { "Matrix" }
                    a href="/ui/promotions" { "Promotions" }
                    a href="/ui/agents" { "Agents" }
                    @if let Some((principal, csrf)) = who {
                        span.who { "Signed in as " (principal.subject) }
                        form method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// An HTML response with the pages' security policy and no caching.
fn page(status: StatusCode, markup: Markup) -> Response {
    let mut response =
        (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Browsers send `Origin: null` on form posts from a `no-referrer` page, which would
    // make every post look cross-site.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// A page for the signed-in: the session (or the way to sign in), then `render`'s title and
/// body in the layout; what `render` refuses or fails at becomes the error page.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    render: impl AsyncFnOnce(&session::Session) -> Result<(String, Markup), DomainError>,
) -> Response {
    let session = match session::or_sign_in(state, headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    match render(&session).await {
        Ok((title, body)) => page(StatusCode::OK, layout(&title, session.who(), body)),
        Err(err) => error_page(&err, session.who()),
    }
}

/// What a refused or failed request shows. Internal detail is logged, never shown.
fn error_page(err: &DomainError, who: Option<(&Principal, &str)>) -> Response {
    let status = gantry_platform::http::status(err);
    let body = html! {
        h1 { "That did not work" }
        p.error { (err.public_message()) }
        p { a href="/ui" { "Back to the matrix" } }
    };
    page(status, layout("Error", who, body))
}

/// `sha256:` and the first 12 hex digits.
fn short(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// A status as a coloured badge.
fn badge(status: &str) -> Markup {
    let upper = status.to_uppercase();
    html! { span class={ "status " (upper) } { (upper.replace('_', " ")) } }
}

/// The HMAC of `message` under `key`, hex.
fn mac_hex(key: &[u8], message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The form fields of a body (`a=1&b=2`).
fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A POST is refused when its `Origin` is not this server's.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://")).is_some_and(|rest| rest == host)
}
