//! Bearer-token authentication with jsonwebtoken.
//!
//! - Tokens Gantry issues (service accounts, the development admin token) are HS256 under
//!   `GANTRY_JWT_SECRET`, with issuer and audience `gantry` unless configured otherwise.
//! - Tokens from an OIDC issuer are RS256 or ES256, verified with the configured JWKS.
//!
//! It owns token checks only: what a principal may do is the domain's (`access`).
//!
//! Every key is pinned to one algorithm: a token is checked only with the key its `kid`
//! names (or, without a `kid`, Gantry's own HS256 key), and only if its header names that
//! key's algorithm. So `alg: none`, an HS256 token "signed" with an RSA public key, an
//! expired or not-yet-valid token, a wrong issuer or audience, and an unknown `kid` are
//! all refused.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use gantry_domain::access::{Permission, Principal, Role};
use gantry_domain::accounts::{ServiceAccountId, ServiceAccounts, TokenGrant, TokenIssuer};
use gantry_domain::{DomainError, Result};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};

/// `aud`: one audience, or several (RFC 7519 §4.1.3). The validation checks that Gantry's
/// is among them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The claims Gantry reads. `roles` and `permissions` are Gantry's; an OIDC provider can
/// be set up to add `roles`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: Audience,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default)]
    pub iat: i64,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<Permission>,
    /// The service account a token was issued for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sa: Option<ServiceAccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Where Gantry's own tokens come from.
#[derive(Clone)]
pub struct LocalIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// What every token is checked against, built once.
    validation: Validation,
    pub issuer: String,
    pub audience: String,
}

impl LocalIssuer {
    pub fn new(secret: &[u8], issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        let (issuer, audience) = (issuer.into(), audience.into());
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation: validation(Algorithm::HS256, &issuer, &audience),
            issuer,
            audience,
        }
    }

    /// Signs a token for `subject`, valid until `expires_at`.
    pub fn sign(
        &self,
        subject: &str,
        roles: &[Role],
        permissions: &[Permission],
        expires_at: DateTime<Utc>,
        sa: Option<ServiceAccountId>,
    ) -> Result<String> {
        let claims = Claims {
            sub: subject.to_owned(),
            iss: self.issuer.clone(),
            aud: Audience::One(self.audience.clone()),
            exp: expires_at.timestamp(),
            nbf: None,
            iat: Utc::now().timestamp(),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            permissions: permissions.to_vec(),
            sa,
            jti: Some(uuid::Uuid::new_v4().to_string()),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(DomainError::internal)
    }
}

/// Service-account tokens that "never expire" still carry an `exp`: a hundred years on.
const NEVER: i64 = 100 * 365;

impl TokenIssuer for LocalIssuer {
    fn issue(&self, grant: &TokenGrant) -> Result<String> {
        let expires_at = grant.expires_at.unwrap_or_else(|| Utc::now() + chrono::Duration::days(NEVER));
        self.sign(&grant.subject, &grant.roles, &grant.permissions, expires_at, Some(grant.account))
    }
}

/// An OIDC issuer's keys, each pinned to the algorithm its JWK names.
pub struct OidcKeys {
    pub issuer: String,
    pub audience: String,
    /// Each key with the validation of its algorithm, built once.
    keys: HashMap<String, (DecodingKey, Algorithm, Validation)>,
}

impl OidcKeys {
    /// Reads a JWKS document. Every key needs a `kid` and an `alg` of RS256 or ES256.
    pub fn from_jwks(issuer: &str, audience: &str, jwks: &str) -> std::result::Result<Self, String> {
        let set: JwkSet = serde_json::from_str(jwks).map_err(|e| format!("JWKS does not parse: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone().ok_or("every JWKS key needs a kid")?;
            let alg = match jwk.common.key_algorithm {
                Some(jsonwebtoken::jwk::KeyAlgorithm::RS256) => Algorithm::RS256,
                Some(jsonwebtoken::jwk::KeyAlgorithm::ES256) => Algorithm::ES256,
                other => return Err(format!("JWKS key {kid} has alg {other:?}; RS256 and ES256 are accepted")),
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("JWKS key {kid}: {e}"))?;
            keys.insert(kid, (key, alg, validation(alg, issuer, audience)));
        }
        Ok(Self { issuer: issuer.to_owned(), audience: audience.to_owned(), keys })
    }
}

/// Turns `Authorization` headers into principals.
pub struct Authenticator {
    local: LocalIssuer,
    oidc: Option<OidcKeys>,
    accounts: ServiceAccounts,
}

fn unauthorized(why: impl Into<String>) -> DomainError {
    DomainError::Unauthorized(why.into())
}

fn validation(alg: Algorithm, issuer: &str, audience: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.validate_nbf = true;
    v.leeway = 30;
    v
}

impl Authenticator {
    pub fn new(local: LocalIssuer, oidc: Option<OidcKeys>, accounts: ServiceAccounts) -> Self {
        Self { local, oidc, accounts }
    }

    pub fn local(&self) -> &LocalIssuer {
        &self.local
    }

    /// Checks `Authorization: Bearer <JWT>` and returns who it is.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal> {
        let header = authorization.ok_or_else(|| unauthorized("missing Authorization: Bearer <token>"))?;
        let token =
            header.strip_prefix("Bearer ").ok_or_else(|| unauthorized("Authorization must be Bearer <token>"))?.trim();
        let head = decode_header(token)
            .map_err(|_| unauthorized("the token is malformed or its algorithm is not accepted"))?;
        // RFC 7515 §4.1.11: a token whose `crit` names an extension the recipient does not
        // understand must be refused, and Gantry understands none.
        if let Some(crit) = &head.crit {
            return Err(unauthorized(format!("the token requires extensions Gantry does not support: {crit:?}")));
        }
        let claims = match &head.kid {
            Some(kid) => {
                let oidc = self.oidc.as_ref().ok_or_else(|| unauthorized("no OIDC issuer is configured"))?;
                let (key, alg, validation) =
                    oidc.keys.get(kid).ok_or_else(|| unauthorized(format!("unknown key id {kid:?}")))?;
                if head.alg != *alg {
                    return Err(unauthorized(format!("key {kid:?} signs with {alg:?}, not {:?}", head.alg)));
                }
                decode::<Claims>(token, key, validation)
            }
            None => {
                if head.alg != Algorithm::HS256 {
                    return Err(unauthorized(format!("tokens without a key id must be HS256, not {:?}", head.alg)));
                }
                decode::<Claims>(token, &self.local.decoding, &self.local.validation)
            }
        }
        .map_err(|e| unauthorized(format!("the token is not valid: {e}")))?
        .claims;
        if let Some(account) = claims.sa {
            return self.accounts.check(account, token).await;
        }
        let roles = claims.roles.iter().filter_map(|r| r.parse::<Role>().ok()).collect();
        Ok(Principal::new(claims.sub, roles, claims.permissions))
    }
}

/// Evidence signatures as compact JWS (HS256 under `GANTRY_EVIDENCE_KEY`) whose payload
/// names the record and its hash: what records carry when no asymmetric evidence key is
/// configured, and what records made before one was still carry.
pub struct JwsEvidenceSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

#[derive(Serialize, Deserialize)]
struct EvidenceClaims {
    sub: String,
    hash: String,
}

impl JwsEvidenceSigner {
    pub fn new(key: &[u8]) -> Self {
        Self { encoding: EncodingKey::from_secret(key), decoding: DecodingKey::from_secret(key) }
    }
}

impl JwsEvidenceSigner {
    /// A JWS naming the record and its hash.
    pub fn sign(&self, record: &gantry_domain::evidence::EvidenceId, hash: &str) -> Result<String> {
        let claims = EvidenceClaims { sub: record.to_string(), hash: hash.to_owned() };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(DomainError::internal)
    }

    /// Whether `signature` is a JWS under this key naming `hash`.
    pub fn verify(&self, signature: &str, hash: &str) -> bool {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_required_spec_claims::<&str>(&[]);
        v.validate_exp = false;
        v.validate_aud = false;
        decode::<EvidenceClaims>(signature, &self.decoding, &v).is_ok_and(|d| d.claims.hash == hash)
    }
}
