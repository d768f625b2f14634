//! Configuration, AWS clients and tracing: everything a function's `main` sets up once.

pub mod secrets;

use std::sync::Arc;

use base64::Engine as _;
use gantry_domain::integrations::Integrations;
use gantry_domain::service::Catalog;
use gantry_domain::sync::VersionSync;
use gantry_gateway::intake::Intake;
use gantry_queue::SqsQueue;
use gantry_store::DynamoRepository;

use secrets::AesGcmBox;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, as CloudWatch expects.
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

/// Settings read from the environment. See the README for every variable.
#[derive(Debug, Clone)]
pub struct Config {
    /// `GANTRY_TABLE`: the DynamoDB table (required).
    pub table: String,
    /// `GANTRY_LOG_FORMAT`: `json` or `pretty`; JSON by default inside Lambda.
    pub log_format: LogFormat,
    /// `GANTRY_EVENTS_QUEUE_URL`: the FIFO queue registry events travel on (required).
    pub events_queue_url: String,
    /// `GANTRY_DATA_KEY`: base64 of the 32-byte key that seals secrets at rest (required).
    pub data_key: Vec<u8>,
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
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required =
            |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty()).ok_or(ConfigError::Missing(name));
        let table = required("GANTRY_TABLE")?;
        let events_queue_url = required("GANTRY_EVENTS_QUEUE_URL")?;
        let data_key = base64::engine::general_purpose::STANDARD
            .decode(required("GANTRY_DATA_KEY")?.trim())
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or(ConfigError::Invalid {
                name: "GANTRY_DATA_KEY",
                value: "(hidden)".into(),
                why: "expected base64 of 32 bytes",
            })?;
        let in_lambda = lookup("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let log_format = match lookup("GANTRY_LOG_FORMAT").as_deref() {
            None | Some("") => {
                if in_lambda {
                    LogFormat::Json
                } else {
                    LogFormat::Pretty
                }
            }
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "GANTRY_LOG_FORMAT",
                    value: other.to_owned(),
                    why: "expected json or pretty",
                });
            }
        };
        Ok(Self { table, log_format, events_queue_url, data_key })
    }
}

/// Installs the global tracing subscriber; `RUST_LOG` filters (default `info`).
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).without_time().try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// The shared AWS configuration: region, credentials and `AWS_ENDPOINT_URL` from the environment.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// What every request handler shares, built once per process.
pub struct AppState {
    pub config: Config,
    pub catalog: Catalog,
    pub integrations: Integrations,
    pub intake: Intake,
    pub sync: VersionSync,
    pub events: SqsQueue,
}

impl AppState {
    /// Builds the state with clients from the environment's AWS configuration.
    pub async fn from_config(config: Config) -> Arc<Self> {
        let sdk = aws_config().await;
        Self::with_clients(config, aws_sdk_dynamodb::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk))
    }

    /// Builds the state around given clients (tests add interceptors to theirs).
    pub fn with_clients(config: Config, dynamodb: aws_sdk_dynamodb::Client, sqs: aws_sdk_sqs::Client) -> Arc<Self> {
        let repo = Arc::new(DynamoRepository::new(dynamodb, config.table.clone()));
        let sealer = Arc::new(AesGcmBox::new(&config.data_key).expect("Config holds a 32-byte data key"));
        let events = SqsQueue::new(sqs, config.events_queue_url.clone());
        let integrations = Integrations::new(repo.clone(), sealer);
        let intake = Intake::new(integrations.clone(), repo.clone(), Arc::new(events.clone()));
        let sync = VersionSync::new(repo.clone(), integrations.clone(), Arc::new(gantry_registry::OciRegistry::new()));
        Arc::new(Self { catalog: Catalog::new(repo), integrations, intake, sync, events, config })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![("GANTRY_TABLE", "t"), ("GANTRY_EVENTS_QUEUE_URL", "http://q"), ("GANTRY_DATA_KEY", KEY)]
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut pairs = base();
        pairs.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        pairs.extend_from_slice(extra);
        Config::from_lookup(env(&pairs))
    }

    #[test]
    fn required_settings() {
        assert_eq!(Config::from_lookup(env(&[])).unwrap_err().to_string(), "GANTRY_TABLE must be set");
        assert!(with(&[("GANTRY_TABLE", " ")]).is_err());
        assert_eq!(
            with(&[("GANTRY_EVENTS_QUEUE_URL", "")]).unwrap_err().to_string(),
            "GANTRY_EVENTS_QUEUE_URL must be set"
        );
        let bad_key = with(&[("GANTRY_DATA_KEY", "c2hvcnQ=")]).unwrap_err().to_string();
        assert!(
            bad_key.contains("GANTRY_DATA_KEY") && !bad_key.contains("c2hvcnQ"),
            "names the setting, hides the value: {bad_key}"
        );
        assert_eq!(with(&[]).unwrap().data_key.len(), 32);
    }

    #[test]
    fn log_format_defaults_by_runtime() {
        assert_eq!(with(&[]).unwrap().log_format, LogFormat::Pretty);
        assert_eq!(with(&[("AWS_LAMBDA_FUNCTION_NAME", "api")]).unwrap().log_format, LogFormat::Json);
        assert_eq!(with(&[("GANTRY_LOG_FORMAT", "json")]).unwrap().log_format, LogFormat::Json);
        assert!(with(&[("GANTRY_LOG_FORMAT", "xml")]).is_err());
    }
}
