//! Secret references (`env:`, `ssm:`, `secretsmanager:`): the TLS material and tokens a
//! target names, and the public keys an environment trusts. Read when needed and kept for
//! five minutes, so a rotated secret is picked up without a restart and a burst of
//! deployments does not call the secret stores once each.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gantry_domain::{DomainError, Result};

const KEEP: Duration = Duration::from_secs(300);

/// Reads secret references: environment variables captured at start (only the engines'
/// `DOCKER_*` and `NOMAD_*`), SSM parameters (decrypted) and Secrets Manager secrets.
pub struct Secrets {
    env: BTreeMap<String, String>,
    ssm: Option<aws_sdk_ssm::Client>,
    secrets_manager: Option<aws_sdk_secretsmanager::Client>,
    kept: Mutex<HashMap<String, (Instant, String)>>,
}

impl Secrets {
    /// Only environment references; `ssm:` and `secretsmanager:` are refused.
    pub fn from_env(env: BTreeMap<String, String>) -> Self {
        Self { env, ssm: None, secrets_manager: None, kept: Mutex::default() }
    }

    /// Every kind of reference, the stores reached with the shared AWS configuration.
    pub fn new(env: BTreeMap<String, String>, sdk: &aws_config::SdkConfig) -> Self {
        Self {
            ssm: Some(aws_sdk_ssm::Client::new(sdk)),
            secrets_manager: Some(aws_sdk_secretsmanager::Client::new(sdk)),
            ..Self::from_env(env)
        }
    }

    /// The value `reference` names. `field` names the setting in errors, which never carry
    /// the value. A reference that names nothing is a `Validation` error (the deployment
    /// fails); a store that does not answer is `Internal` (the job is retried).
    pub async fn resolve(&self, field: &str, reference: &str) -> Result<String> {
        if let Some(name) = reference.strip_prefix("env:") {
            return self.env.get(name).cloned().ok_or_else(|| {
                DomainError::validation(format!("{field}: the worker has no {name} environment variable"))
            });
        }
        let now = Instant::now();
        if let Some((at, value)) = self.kept.lock().expect("secret cache").get(reference)
            && now.duration_since(*at) < KEEP
        {
            return Ok(value.clone());
        }
        let value = self.fetch(field, reference).await?;
        self.kept.lock().expect("secret cache").insert(reference.to_owned(), (now, value.clone()));
        Ok(value)
    }

    async fn fetch(&self, field: &str, reference: &str) -> Result<String> {
        let missing = |what: &str| DomainError::validation(format!("{field}: {what} {reference:?}"));
        if let Some(path) = reference.strip_prefix("ssm:") {
            let ssm = self.ssm.as_ref().ok_or_else(|| missing("this worker cannot read"))?;
            let out = ssm.get_parameter().name(path).with_decryption(true).send().await.map_err(|e| {
                let e = e.into_service_error();
                if e.is_parameter_not_found() {
                    missing("there is no SSM parameter")
                } else {
                    DomainError::internal(format!("{field}: SSM GetParameter failed: {e}"))
                }
            })?;
            return out.parameter.and_then(|p| p.value).ok_or_else(|| missing("there is no value in"));
        }
        if let Some(name) = reference.strip_prefix("secretsmanager:") {
            let sm = self.secrets_manager.as_ref().ok_or_else(|| missing("this worker cannot read"))?;
            let out = sm.get_secret_value().secret_id(name).send().await.map_err(|e| {
                let e = e.into_service_error();
                if e.is_resource_not_found_exception() {
                    missing("there is no secret")
                } else {
                    DomainError::internal(format!("{field}: Secrets Manager GetSecretValue failed: {e}"))
                }
            })?;
            return out.secret_string.ok_or_else(|| missing("there is no secret string in"));
        }
        Err(missing("is not a secret reference:"))
    }
}

#[async_trait::async_trait]
impl gantry_domain::signatures::KeyStore for Secrets {
    async fn public_key(&self, name: &str, reference: &str) -> Result<String> {
        self.resolve(&format!("signing key {name}"), reference).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn environment_references_read_only_what_was_captured() {
        let secrets = Secrets::from_env([("NOMAD_TOKEN".to_owned(), "s3cret".to_owned())].into());
        assert_eq!(secrets.resolve("tokenRef", "env:NOMAD_TOKEN").await.unwrap(), "s3cret");
        let absent = secrets.resolve("tokenRef", "env:NOMAD_OTHER").await.unwrap_err().to_string();
        assert!(absent.contains("no NOMAD_OTHER environment variable"), "{absent}");
        let no_store = secrets.resolve("tls.caRef", "ssm:/gantry/ca").await.unwrap_err().to_string();
        assert!(no_store.contains("cannot read"), "{no_store}");
    }
}
