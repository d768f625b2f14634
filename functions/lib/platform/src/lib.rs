//! Configuration, AWS clients and tracing: everything a function's `main` sets up once.

use std::sync::Arc;

use gantry_domain::service::Catalog;
use gantry_store::DynamoRepository;

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
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("{name} has an invalid value {value:?}: {why}")]
    Invalid {
        name: &'static str,
        value: String,
        why: &'static str,
    },
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table = lookup("GANTRY_TABLE")
            .filter(|t| !t.trim().is_empty())
            .ok_or(ConfigError::Missing("GANTRY_TABLE"))?;
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
        Ok(Self { table, log_format })
    }
}

/// Installs the global tracing subscriber; `RUST_LOG` filters (default `info`).
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .without_time()
            .try_init(),
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
}

impl AppState {
    /// Builds the state with clients from the environment's AWS configuration.
    pub async fn from_config(config: Config) -> Arc<Self> {
        let sdk = aws_config().await;
        Self::with_dynamodb(config, aws_sdk_dynamodb::Client::new(&sdk))
    }

    /// Builds the state around a given DynamoDB client (tests add interceptors to theirs).
    pub fn with_dynamodb(config: Config, dynamodb: aws_sdk_dynamodb::Client) -> Arc<Self> {
        let repo = DynamoRepository::new(dynamodb, config.table.clone());
        Arc::new(Self {
            catalog: Catalog::new(Arc::new(repo)),
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn table_is_required() {
        let err = Config::from_lookup(env(&[])).unwrap_err();
        assert_eq!(err.to_string(), "GANTRY_TABLE must be set");
        assert!(Config::from_lookup(env(&[("GANTRY_TABLE", " ")])).is_err());
    }

    #[test]
    fn log_format_defaults_by_runtime() {
        let local = Config::from_lookup(env(&[("GANTRY_TABLE", "t")])).unwrap();
        assert_eq!(local.log_format, LogFormat::Pretty);
        let lambda = Config::from_lookup(env(&[
            ("GANTRY_TABLE", "t"),
            ("AWS_LAMBDA_FUNCTION_NAME", "api"),
        ]))
        .unwrap();
        assert_eq!(lambda.log_format, LogFormat::Json);
        let forced =
            Config::from_lookup(env(&[("GANTRY_TABLE", "t"), ("GANTRY_LOG_FORMAT", "json")]))
                .unwrap();
        assert_eq!(forced.log_format, LogFormat::Json);
        assert!(
            Config::from_lookup(env(&[("GANTRY_TABLE", "t"), ("GANTRY_LOG_FORMAT", "xml")]))
                .is_err()
        );
    }
}
