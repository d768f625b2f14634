//! Dashboard sessions: an opaque id in the browser's cookie, and on the server (one item,
//! expiring) the sealed bearer token it stands for, with an idle and an absolute limit.
//! Signing out deletes the item, so a copied cookie stops working at once; the token is
//! checked again on every request, so revoking it ends its sessions at the next one.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tracing::instrument;

use crate::error::{DomainError, Result};
use gantry_kernel::secrets::{Sealed, SecretBox, random_key};

/// A session as stored: keyed by the sha256 of its id, which is never stored itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSession {
    pub id_hash: String,
    /// The bearer token the session stands for, sealed.
    pub token: Sealed,
    pub created_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// The absolute limit: the session ends then, however busy.
    pub ends_at: DateTime<Utc>,
}

#[async_trait]
pub trait SessionRepository: Send + Sync {
    async fn put_session(&self, session: &StoredSession) -> Result<()>;
    async fn get_session(&self, id_hash: &str) -> Result<Option<StoredSession>>;
    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<()>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
}

/// How long a session lasts unused, and at most.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub idle: Duration,
    pub absolute: Duration,
}

/// A session's last-seen time is written again only after this long, so a busy page does
/// not write on every request (the idle limit is kept to within this).
const TOUCH_EVERY_SECONDS: i64 = 60;

#[derive(Clone)]
pub struct Sessions {
    repo: Arc<dyn SessionRepository>,
    secrets: Arc<dyn SecretBox>,
    limits: SessionLimits,
}

fn hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Whether a session may still be used at `now`.
pub fn live(session: &StoredSession, limits: SessionLimits, now: DateTime<Utc>) -> bool {
    now < session.ends_at && now - session.last_seen <= limits.idle
}

impl Sessions {
    pub fn new(repo: Arc<dyn SessionRepository>, secrets: Arc<dyn SecretBox>, limits: SessionLimits) -> Self {
        Self { repo, secrets, limits }
    }

    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    /// Starts a session for a token already checked; the new session's id, for the cookie.
    #[instrument(skip_all, err(level = "info"))]
    pub async fn start(&self, token: &str) -> Result<String> {
        let id = hex::encode(random_key()?);
        let now = Utc::now();
        let session = StoredSession {
            id_hash: hash(&id),
            token: self.secrets.seal(token.as_bytes())?,
            created_at: now,
            last_seen: now,
            ends_at: now + self.limits.absolute,
        };
        self.repo.put_session(&session).await?;
        Ok(id)
    }

    /// The token a live session stands for; `Unauthorized` for an unknown, idle or expired
    /// one (which is deleted).
    #[instrument(skip_all, err(level = "info"))]
    pub async fn token(&self, id: &str) -> Result<String> {
        let ended = || DomainError::Unauthorized("the session has ended: sign in again".into());
        if id.is_empty() || id.len() > 128 {
            return Err(ended());
        }
        let key = hash(id);
        let session = self.repo.get_session(&key).await?.ok_or_else(ended)?;
        let now = Utc::now();
        if !live(&session, self.limits, now) {
            self.repo.delete_session(&key).await?;
            return Err(ended());
        }
        if now - session.last_seen > Duration::seconds(TOUCH_EVERY_SECONDS) {
            self.repo.touch_session(&key, now).await?;
        }
        String::from_utf8(self.secrets.open(&session.token)?).map_err(DomainError::internal)
    }

    /// Ends a session: its id works no more, wherever it was copied to.
    #[instrument(skip_all, err(level = "info"))]
    pub async fn end(&self, id: &str) -> Result<()> {
        self.repo.delete_session(&hash(id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_when_idle_or_at_their_absolute_limit() {
        let limits = SessionLimits { idle: Duration::minutes(30), absolute: Duration::hours(12) };
        let now = Utc::now();
        let session = StoredSession {
            id_hash: hash("abc"),
            token: Sealed(String::new()),
            created_at: now,
            last_seen: now,
            ends_at: now + limits.absolute,
        };
        assert!(live(&session, limits, now + Duration::minutes(29)));
        assert!(!live(&session, limits, now + Duration::minutes(31)), "idle");
        let busy = StoredSession { last_seen: now + Duration::hours(12), ..session.clone() };
        assert!(!live(&busy, limits, now + Duration::hours(12) + Duration::seconds(1)), "absolute");
        assert_ne!(hash("abc"), "abc");
    }
}
