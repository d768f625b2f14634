//! Settings read from the environment, checked once at start: a function whose
//! configuration is wrong stops at init, naming the setting.

use base64::Engine as _;
use gantry_domain::deployments::DriverSettings;

pub use gantry_telemetry::LogFormat;

/// Settings read from the environment. See the README for every variable.
#[derive(Debug, Clone)]
pub struct Config {
    /// `GANTRY_TABLE`: the DynamoDB table (required).
    pub table: String,
    /// `GANTRY_LOG_FORMAT`: `json` or `pretty`; JSON by default inside Lambda.
    pub log_format: LogFormat,
    /// `GANTRY_EVENTS_QUEUE_URL`: the queue registry events travel on (required).
    pub events_queue_url: String,
    /// `GANTRY_DEPLOY_QUEUE_URL`: the queue deploy jobs travel on (required).
    pub deploy_queue_url: String,
    /// `GANTRY_NOTIFY_QUEUE_URL`: the queue Slack requests, notification events and their
    /// deliveries travel on (required).
    pub notify_queue_url: String,
    /// `GANTRY_SLACK_SIGNING_SECRET`: the Slack app's signing secret; without it the Slack
    /// endpoints answer 404.
    pub slack_signing_secret: Option<Vec<u8>>,
    /// `GANTRY_SLACK_BOT_TOKEN`: the Slack app's bot token (`xoxb-…`), for approval cards and
    /// channel notifications.
    pub slack_bot_token: Option<String>,
    /// `GANTRY_SLACK_API_URL`: Slack's Web API (`https://slack.com/api` by default).
    pub slack_api_url: String,
    /// `GANTRY_PUBLIC_URL`: where people reach the API function (its dashboard); CI
    /// deployments link to a promotion's page there.
    pub public_url: Option<String>,
    /// `GANTRY_DEPLOY_TIMEOUT_SECONDS`: how long a Nomad or ECS rollout may run before it is
    /// failed and undone (600 by default).
    pub deploy_timeout_seconds: u64,
    /// `GANTRY_DEPLOY_LEASE_SECONDS` (60): how long a worker holds a deployment before
    /// another may take it over (a worker that died is taken over after this).
    pub deploy_lease_seconds: u64,
    /// `GANTRY_STEP_POLL_SECONDS`: how often a promotion step waiting for a CI run checks it
    /// when no webhook brings the check forward (30 by default).
    pub step_poll_seconds: u32,
    /// `GANTRY_DATA_KEY`: base64 of the 32-byte key that seals secrets at rest (required).
    pub data_key: Vec<u8>,
    /// `GANTRY_JWT_SECRET`: the HS256 key of tokens Gantry issues, 32 bytes or more (required).
    pub jwt_secret: Vec<u8>,
    /// `GANTRY_EVIDENCE_KEY`: the key evidence records are signed with, 32 bytes or more (required).
    pub evidence_key: Vec<u8>,
    /// `GANTRY_JWT_ISSUER` and `GANTRY_JWT_AUDIENCE` of Gantry's tokens (both `gantry` by default).
    pub jwt_issuer: String,
    pub jwt_audience: String,
    /// `GANTRY_REQUEST_TIMEOUT_MS`: an HTTP request not answered within this is answered
    /// 503 `UNAVAILABLE` (10000 by default).
    pub request_timeout_ms: u64,
    /// `GANTRY_AWS_TIMEOUT_MS`: one DynamoDB or SQS operation, retries included, may take this
    /// long before it fails as `UNAVAILABLE` (5000 by default).
    pub aws_timeout_ms: u64,
    /// `GANTRY_CORS_ORIGINS`: the browser origins allowed to call the API (none by default).
    pub cors_origins: Vec<axum::http::HeaderValue>,
    /// `GANTRY_SESSION_IDLE_MINUTES` (30) and `GANTRY_SESSION_MAX_HOURS` (12): how long a
    /// dashboard session lasts unused, and at most.
    pub session_idle_minutes: u64,
    pub session_max_hours: u64,
    /// `GANTRY_WEBHOOK_ALLOWED_HOSTS`: comma-separated host names or addresses that
    /// notification webhooks may reach although they are loopback, private or link-local.
    pub webhook_allowed_hosts: Vec<String>,
    /// `GANTRY_JOB_SIGNING_KEY`: Gantry's Ed25519 job-signing key (PKCS#8, PEM or base64 of
    /// the DER), or `kms:<key id, ARN or alias>` for an ECC_NIST_P256 SIGN_VERIFY key in AWS
    /// KMS; agents pin its public half at enrollment. Without it, agents cannot enroll and
    /// agent-served targets cannot deploy.
    pub job_signing: Option<JobSigning>,
    /// `GANTRY_EVIDENCE_SIGNING_KEY`: the key new evidence records are signed with, in the
    /// same forms (an Ed25519 key signs `EdDSA`, a KMS key `ES256`); its public half is
    /// published at `/.well-known/gantry/evidence-keys.json`. Without it, records are signed
    /// HS256 under `GANTRY_EVIDENCE_KEY`, which only Gantry can check.
    pub evidence_signing: Option<JobSigning>,
    /// `GANTRY_AGENT_OFFLINE_SECONDS` (45): an agent without a heartbeat this long is offline.
    pub agent_offline_seconds: u64,
    /// `GANTRY_AGENT_JOB_SECONDS` (600): how long an agent has to finish a job before it fails.
    pub agent_job_seconds: u64,
    /// `GANTRY_AGENT_QUEUE_PREFIX` (`gantry-agent-`): agents' doorbell queues are named this
    /// followed by the agent's id (letters, digits, `-` and `_`; at most 40).
    pub agent_queue_prefix: String,
    /// `NOMAD_*`, `DOCKER_*` and `CONSUL_*`: the values targets' `env:NOMAD_...` (and so on)
    /// references name (tokens and TLS material; the deployer only).
    pub secret_env: std::collections::BTreeMap<String, String>,
    /// `COSIGN_*`: the public keys environments name as `env:COSIGN_...`.
    pub key_env: std::collections::BTreeMap<String, String>,
    /// `GANTRY_OIDC_ISSUER`, `GANTRY_OIDC_AUDIENCE` and `GANTRY_OIDC_JWKS` (the JWKS JSON, or
    /// `@path` to a file holding it): accept RS256/ES256 tokens from an OIDC provider.
    pub oidc: Option<OidcConfig>,
    /// `GANTRY_OIDC_CLIENT_ID`, `GANTRY_OIDC_AUTHORIZE_URL`, `GANTRY_OIDC_TOKEN_URL` and
    /// (optional) `GANTRY_OIDC_CLIENT_SECRET`: the dashboard's "Sign in with OIDC" (the
    /// authorization code flow with PKCE); needs the OIDC settings and `GANTRY_PUBLIC_URL`.
    pub oidc_sign_in: Option<OidcSignIn>,
    /// (optional) `AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2`: ELB's endpoint (the ALB router).
    pub elb_endpoint: Option<String>,
    /// (optional) `OTEL_EXPORTER_OTLP_ENDPOINT`: the OTLP/HTTP collector spans are exported
    /// to (`/v1/traces` is added); without it nothing is exported.
    pub otlp_endpoint: Option<String>,
}

/// The AWS SDKs' variable naming Elastic Load Balancing's endpoint.
const ELB_ENDPOINT: &str = "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2";

/// OpenTelemetry's variable naming the collector (read again by its exporter).
const OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

#[derive(Debug, Clone)]
pub struct OidcSignIn {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub authorize_url: String,
    pub token_url: String,
    /// `<GANTRY_PUBLIC_URL>/ui/oidc/callback`.
    pub redirect_uri: String,
}

#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub issuer: String,
    pub audience: String,
    pub jwks: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("{name} has an invalid value {value:?}: {why}")]
    Invalid { name: &'static str, value: String, why: &'static str },
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut config = Self::from_lookup(|name| std::env::var(name).ok())?;
        let engine = |name: &str| ["NOMAD_", "DOCKER_", "CONSUL_"].iter().any(|p| name.starts_with(p));
        config.secret_env = std::env::vars().filter(|(name, _)| engine(name)).collect();
        config.key_env = std::env::vars().filter(|(name, _)| name.starts_with("COSIGN_")).collect();
        Ok(config)
    }

    /// How long a Nomad or ECS rollout may run (`GANTRY_DEPLOY_TIMEOUT_SECONDS`).
    pub fn deploy_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.deploy_timeout_seconds)
    }

    /// What the deployer's drivers need: the rollout deadline and the Nomad tokens.
    pub fn driver_settings(&self) -> DriverSettings {
        let (deadline, secret_env) = (self.deploy_timeout(), self.secret_env.clone());
        DriverSettings { deadline, secret_env, elb_endpoint: self.elb_endpoint.clone() }
    }

    /// The settings, or a one-line message naming the setting that is wrong on stderr (which
    /// Lambda keeps in the function's log) and exit status 78 (EX_CONFIG): a function whose
    /// configuration is wrong stops at init, before it serves anything.
    pub fn from_env_or_exit() -> Self {
        Self::from_env().unwrap_or_else(|err| {
            eprintln!("gantry: configuration error: {err}");
            std::process::exit(78)
        })
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required =
            |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty()).ok_or(ConfigError::Missing(name));
        let optional =
            |name: &str, default: &str| lookup(name).filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned());
        let number =
            |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>, why: &'static str| match lookup(
                name,
            )
            .filter(|v| !v.is_empty())
            {
                None => Ok(default),
                Some(v) => {
                    v.parse().ok().filter(|n| range.contains(n)).ok_or(ConfigError::Invalid { name, value: v, why })
                }
            };
        Ok(Self {
            table: required("GANTRY_TABLE")?,
            events_queue_url: required("GANTRY_EVENTS_QUEUE_URL")?,
            deploy_queue_url: required("GANTRY_DEPLOY_QUEUE_URL")?,
            notify_queue_url: required("GANTRY_NOTIFY_QUEUE_URL")?,
            slack_signing_secret: lookup("GANTRY_SLACK_SIGNING_SECRET")
                .filter(|v| !v.is_empty())
                .map(|v| long_secret_min("GANTRY_SLACK_SIGNING_SECRET", v, 16))
                .transpose()?,
            slack_bot_token: lookup("GANTRY_SLACK_BOT_TOKEN").filter(|v| !v.is_empty()),
            // The bot token travels there: https, or http to loopback only.
            slack_api_url: callable_setting(
                "GANTRY_SLACK_API_URL",
                &optional("GANTRY_SLACK_API_URL", gantry_ci::SLACK_API),
            )?,
            public_url: lookup("GANTRY_PUBLIC_URL")
                .filter(|v| !v.is_empty())
                .map(|v| http_setting("GANTRY_PUBLIC_URL", &v))
                .transpose()?,
            oidc_sign_in: oidc_sign_in(&lookup)?,
            data_key: data_key(&required("GANTRY_DATA_KEY")?)?,
            jwt_secret: long_secret("GANTRY_JWT_SECRET", required("GANTRY_JWT_SECRET")?)?,
            evidence_key: long_secret("GANTRY_EVIDENCE_KEY", required("GANTRY_EVIDENCE_KEY")?)?,
            oidc: oidc(&lookup)?,
            deploy_timeout_seconds: number("GANTRY_DEPLOY_TIMEOUT_SECONDS", 600, 1..=3600, "expected 1 to 3600")?,
            deploy_lease_seconds: number("GANTRY_DEPLOY_LEASE_SECONDS", 60, 2..=3600, "expected 2 to 3600")?,
            step_poll_seconds: number("GANTRY_STEP_POLL_SECONDS", 30, 1..=900, "expected 1 to 900")? as u32,
            request_timeout_ms: number("GANTRY_REQUEST_TIMEOUT_MS", 10_000, 100..=900_000, "expected 100 to 900000")?,
            aws_timeout_ms: number("GANTRY_AWS_TIMEOUT_MS", 5_000, 100..=600_000, "expected 100 to 600000")?,
            cors_origins: cors_origins(lookup("GANTRY_CORS_ORIGINS").as_deref().unwrap_or_default())?,
            session_idle_minutes: number("GANTRY_SESSION_IDLE_MINUTES", 30, 1..=1440, "expected 1 to 1440")?,
            session_max_hours: number("GANTRY_SESSION_MAX_HOURS", 12, 1..=720, "expected 1 to 720")?,
            webhook_allowed_hosts: lookup("GANTRY_WEBHOOK_ALLOWED_HOSTS")
                .unwrap_or_default()
                .split(',')
                .map(|h| h.trim().trim_matches(['[', ']']).to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            log_format: log_format(
                lookup("GANTRY_LOG_FORMAT").as_deref(),
                lookup("AWS_LAMBDA_FUNCTION_NAME").is_some(),
            )?,
            secret_env: Default::default(),
            key_env: Default::default(),
            elb_endpoint: lookup(ELB_ENDPOINT)
                .filter(|v| !v.is_empty())
                .map(|v| http_setting(ELB_ENDPOINT, &v))
                .transpose()?,
            otlp_endpoint: lookup(OTLP_ENDPOINT)
                .filter(|v| !v.trim().is_empty())
                .map(|v| http_setting(OTLP_ENDPOINT, &v))
                .transpose()?,
            job_signing: lookup("GANTRY_JOB_SIGNING_KEY")
                .filter(|v| !v.trim().is_empty())
                .map(|v| signing_key("GANTRY_JOB_SIGNING_KEY", &v))
                .transpose()?,
            evidence_signing: lookup("GANTRY_EVIDENCE_SIGNING_KEY")
                .filter(|v| !v.trim().is_empty())
                .map(|v| signing_key("GANTRY_EVIDENCE_SIGNING_KEY", &v))
                .transpose()?,
            agent_offline_seconds: number("GANTRY_AGENT_OFFLINE_SECONDS", 45, 20..=3600, "expected 20 to 3600")?,
            agent_job_seconds: number("GANTRY_AGENT_JOB_SECONDS", 600, 30..=86_400, "expected 30 to 86400")?,
            agent_queue_prefix: queue_prefix(optional("GANTRY_AGENT_QUEUE_PREFIX", "gantry-agent-"))?,
            jwt_issuer: optional("GANTRY_JWT_ISSUER", "gantry"),
            jwt_audience: optional("GANTRY_JWT_AUDIENCE", "gantry"),
        })
    }

    /// How long a request may take before it is answered 503 (`GANTRY_REQUEST_TIMEOUT_MS`).
    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.request_timeout_ms)
    }

    /// How long one DynamoDB or SQS operation may take, retries included (`GANTRY_AWS_TIMEOUT_MS`).
    pub fn aws_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.aws_timeout_ms)
    }
}

fn data_key(encoded: &str) -> Result<Vec<u8>, ConfigError> {
    base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok().filter(|k| k.len() == 32).ok_or(
        ConfigError::Invalid { name: "GANTRY_DATA_KEY", value: "(hidden)".into(), why: "expected base64 of 32 bytes" },
    )
}

fn long_secret(name: &'static str, value: String) -> Result<Vec<u8>, ConfigError> {
    long_secret_min(name, value, 32)
}

fn long_secret_min(name: &'static str, value: String, min: usize) -> Result<Vec<u8>, ConfigError> {
    if value.len() < min {
        let why = if min == 32 { "must be at least 32 bytes" } else { "must be at least 16 bytes" };
        return Err(ConfigError::Invalid { name, value: "(hidden)".into(), why });
    }
    Ok(value.into_bytes())
}

fn oidc_sign_in(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<OidcSignIn>, ConfigError> {
    let Some(client_id) = lookup("GANTRY_OIDC_CLIENT_ID").filter(|v| !v.is_empty()) else { return Ok(None) };
    let needed = |name: &'static str| lookup(name).filter(|v| !v.is_empty()).ok_or(ConfigError::Missing(name));
    needed("GANTRY_OIDC_ISSUER")?;
    let public = http_setting("GANTRY_PUBLIC_URL", &needed("GANTRY_PUBLIC_URL")?)?;
    Ok(Some(OidcSignIn {
        client_id,
        client_secret: lookup("GANTRY_OIDC_CLIENT_SECRET").filter(|v| !v.is_empty()),
        authorize_url: callable_setting("GANTRY_OIDC_AUTHORIZE_URL", &needed("GANTRY_OIDC_AUTHORIZE_URL")?)?,
        token_url: callable_setting("GANTRY_OIDC_TOKEN_URL", &needed("GANTRY_OIDC_TOKEN_URL")?)?,
        redirect_uri: format!("{public}/ui/oidc/callback"),
    }))
}

/// A URL Gantry calls or sends browsers to: parsed, `https://` (or `http://` to a loopback
/// host), no user info.
fn callable_setting(name: &'static str, raw: &str) -> Result<String, ConfigError> {
    match gantry_domain::outbound::parse(name, raw, 2000) {
        Ok(_) => Ok(raw.trim().trim_end_matches('/').to_owned()),
        Err(_) => Err(ConfigError::Invalid {
            name,
            value: raw.to_owned(),
            why: "expected an https:// URL (http:// only to a loopback host) with no user info",
        }),
    }
}

/// A URL people are sent to (links, redirects): parsed, `http` or `https`, with a host and
/// no user info.
fn http_setting(name: &'static str, raw: &str) -> Result<String, ConfigError> {
    let parsed = url::Url::parse(raw).ok().filter(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some_and(|h| !h.is_empty())
            && u.username().is_empty()
            && u.password().is_none()
    });
    if parsed.is_some() && raw.chars().all(|c| c.is_ascii_graphic()) {
        Ok(raw.trim_end_matches('/').to_owned())
    } else {
        Err(ConfigError::Invalid { name, value: raw.to_owned(), why: "expected an http(s) URL" })
    }
}

fn oidc(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<OidcConfig>, ConfigError> {
    match (lookup("GANTRY_OIDC_ISSUER"), lookup("GANTRY_OIDC_AUDIENCE"), lookup("GANTRY_OIDC_JWKS")) {
        (None, None, None) => Ok(None),
        (Some(issuer), Some(audience), Some(jwks)) => {
            let jwks = match jwks.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).map_err(|_| ConfigError::Invalid {
                    name: "GANTRY_OIDC_JWKS",
                    value: jwks.clone(),
                    why: "the file cannot be read",
                })?,
                None => jwks,
            };
            gantry_auth::OidcKeys::from_jwks(&issuer, &audience, &jwks).map_err(|_| ConfigError::Invalid {
                name: "GANTRY_OIDC_JWKS",
                value: "(JWKS)".into(),
                why: "not a JWKS of RS256/ES256 keys with kid and alg",
            })?;
            Ok(Some(OidcConfig { issuer, audience, jwks }))
        }
        _ => Err(ConfigError::Missing("GANTRY_OIDC_ISSUER, GANTRY_OIDC_AUDIENCE and GANTRY_OIDC_JWKS together")),
    }
}

/// At most this many CORS origins.
const MAX_CORS_ORIGINS: usize = 20;

/// `GANTRY_CORS_ORIGINS`: comma-separated `scheme://host[:port]` origins, exactly as a
/// browser sends them; `*` is refused, since the API takes bearer tokens.
fn cors_origins(list: &str) -> Result<Vec<axum::http::HeaderValue>, ConfigError> {
    let invalid = |value: &str, why| ConfigError::Invalid { name: "GANTRY_CORS_ORIGINS", value: value.to_owned(), why };
    let origins: Vec<&str> = list.split(',').map(str::trim).filter(|o| !o.is_empty()).collect();
    if origins.len() > MAX_CORS_ORIGINS {
        return Err(invalid(list, "at most 20 origins"));
    }
    origins
        .into_iter()
        .map(|origin| {
            let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
            let host_ok = rest.is_some_and(|r| {
                !r.is_empty()
                    && r.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
            });
            if !host_ok {
                return Err(invalid(origin, "expected origins like https://app.example.com, without a path or *"));
            }
            axum::http::HeaderValue::from_str(origin).map_err(|_| invalid(origin, "not a header value"))
        })
        .collect()
}

fn log_format(value: Option<&str>, in_lambda: bool) -> Result<LogFormat, ConfigError> {
    match value {
        None | Some("") if in_lambda => Ok(LogFormat::Json),
        None | Some("") => Ok(LogFormat::Pretty),
        Some("json") => Ok(LogFormat::Json),
        Some("pretty") => Ok(LogFormat::Pretty),
        Some(other) => Err(ConfigError::Invalid {
            name: "GANTRY_LOG_FORMAT",
            value: other.to_owned(),
            why: "expected json or pretty",
        }),
    }
}

/// A prefix of SQS queue names: with an agent's id (36 characters) it stays within the 80
/// SQS allows.
fn queue_prefix(prefix: String) -> Result<String, ConfigError> {
    if prefix.len() <= 40 && prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Ok(prefix);
    }
    let why = "expected at most 40 letters, digits, - and _";
    Err(ConfigError::Invalid { name: "GANTRY_AGENT_QUEUE_PREFIX", value: prefix, why })
}

/// Where a signing key (jobs', evidence's) is.
#[derive(Clone, PartialEq, Eq)]
pub enum JobSigning {
    /// The PKCS#8 DER of an Ed25519 key this process holds.
    Key(Vec<u8>),
    /// A P-256 key in AWS KMS, by key id, ARN or alias: it signs (`kms:Sign`) and never leaves.
    Kms(String),
}

impl std::fmt::Debug for JobSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key(_) => f.write_str("Key(hidden)"),
            Self::Kms(key) => f.debug_tuple("Kms").field(key).finish(),
        }
    }
}

/// `kms:<key>`, or an Ed25519 key given as PEM or as base64 of its PKCS#8 DER.
fn signing_key(name: &'static str, raw: &str) -> Result<JobSigning, ConfigError> {
    match raw.trim().strip_prefix("kms:") {
        Some(key) if !key.is_empty() && key.len() <= 2048 && key.chars().all(|c| c.is_ascii_graphic()) => {
            Ok(JobSigning::Kms(key.to_owned()))
        }
        Some(key) => Err(ConfigError::Invalid {
            name,
            value: format!("kms:{key}"),
            why: "expected kms: and a KMS key id, ARN or alias",
        }),
        None => ed25519_key(name, raw).map(JobSigning::Key),
    }
}

/// The PKCS#8 DER of an Ed25519 key given as PEM or as base64 of the DER.
fn ed25519_key(name: &'static str, raw: &str) -> Result<Vec<u8>, ConfigError> {
    let invalid = || ConfigError::Invalid {
        name,
        value: "(hidden)".into(),
        why: "expected an Ed25519 PKCS#8 key: PEM, or base64 of the DER (openssl genpkey -algorithm ed25519)",
    };
    let trimmed = raw.trim();
    let der = if trimmed.starts_with("-----BEGIN") {
        gantry_signing::pem_decode(trimmed, "PRIVATE KEY").ok_or_else(invalid)?
    } else {
        base64::engine::general_purpose::STANDARD.decode(trimmed).map_err(|_| invalid())?
    };
    gantry_signing::SigningKey::from_pkcs8(&der).map_err(|_| invalid())?;
    Ok(der)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
