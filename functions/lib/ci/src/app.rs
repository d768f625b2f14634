//! GitHub App authentication: a JWT signed with the app's private key buys an installation
//! token, valid an hour, which is kept in memory and bought again shortly before it ends.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use gantry_domain::{DomainError, Result};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::http::{Retries, send};

/// Which installation of which app, on which GitHub.
pub(crate) struct App<'a> {
    pub api_url: &'a str,
    pub app_id: u64,
    pub installation_id: u64,
}

/// GitHub's API URL, the app and the installation.
type Installation = (String, u64, u64);
/// A token and when it ends.
type Token = (String, DateTime<Utc>);

/// Installation tokens bought so far.
#[derive(Default)]
pub(crate) struct InstallationTokens {
    cache: Mutex<HashMap<Installation, Token>>,
}

/// A token is bought again when it has less than this left.
const RENEW_BEFORE_MINUTES: i64 = 5;

impl InstallationTokens {
    /// The installation's token, bought with `retries` through `request` (a POST to a path
    /// of the app's API, with a bearer JWT) when none is kept.
    pub(crate) async fn token(
        &self,
        app: &App<'_>,
        private_key: &str,
        (retries, request): (Retries, impl Fn(&str, &str) -> reqwest::RequestBuilder),
    ) -> Result<String> {
        let key = (app.api_url.to_owned(), app.app_id, app.installation_id);
        let cached = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
        if let Some((token, until)) = cached
            && until > Utc::now() + Duration::minutes(RENEW_BEFORE_MINUTES)
        {
            return Ok(token);
        }
        let jwt = sign(app.app_id, private_key)?;
        let path = format!("/app/installations/{}/access_tokens", app.installation_id);
        let bought = send(retries, "GitHub", "creating an installation token", || request(&jwt, &path)).await?;
        let token = bought["token"]
            .as_str()
            .ok_or_else(|| DomainError::validation("GitHub issued no installation token"))?
            .to_owned();
        let until = bought["expires_at"]
            .as_str()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map_or_else(|| Utc::now() + Duration::minutes(55), |at| at.with_timezone(&Utc));
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key, (token.clone(), until));
        Ok(token)
    }
}

/// The app's JWT: issued a minute ago (clocks drift), ten minutes long, GitHub's most.
fn sign(app_id: u64, private_key: &str) -> Result<String> {
    let now = Utc::now().timestamp();
    let claims = json!({ "iat": now - 60, "exp": now + 540, "iss": app_id.to_string() });
    let key = EncodingKey::from_rsa_pem(private_key.as_bytes())
        .map_err(|e| DomainError::validation(format!("the GitHub App's private key does not load: {e}")))?;
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).map_err(DomainError::internal)
}
