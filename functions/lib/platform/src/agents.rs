//! The job-signing key agents pin: Gantry's Ed25519 key, a P-256 key in AWS KMS (which signs
//! and never hands the private key out), or none (then agents cannot enroll and agent-served
//! targets cannot deploy, and both say why).

use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use base64::Engine as _;
use gantry_domain::agents::JobSealer;
use gantry_domain::{DomainError, Result};
use gantry_signing::{PublicKey, SigningKey};
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;

use crate::config::JobSigning;

pub enum Sealer {
    Missing,
    Key(SigningKey),
    Kms(Kms),
}

/// A KMS key: its client is made at first use (from the environment's AWS configuration),
/// its public key read once.
pub struct Kms {
    key: String,
    limit: std::time::Duration,
    client: OnceCell<aws_sdk_kms::Client>,
    public: OnceCell<PublicKey>,
}

impl Sealer {
    /// From what [`crate::config::Config`] checked; `limit` bounds each KMS request.
    pub fn new(signing: Option<&JobSigning>, limit: std::time::Duration) -> Self {
        match signing {
            None => Self::Missing,
            Some(JobSigning::Key(der)) => SigningKey::from_pkcs8(der).map(Self::Key).unwrap_or(Self::Missing),
            Some(JobSigning::Kms(key)) => Self::Kms(Kms::new(key, limit)),
        }
    }
}

fn missing() -> DomainError {
    DomainError::validation("agents need a job-signing key: set GANTRY_JOB_SIGNING_KEY on every function")
}

impl Kms {
    pub(crate) fn new(key: &str, limit: std::time::Duration) -> Self {
        Self { key: key.to_owned(), limit, client: OnceCell::new(), public: OnceCell::new() }
    }

    async fn client(&self) -> &aws_sdk_kms::Client {
        self.client.get_or_init(|| async { aws_sdk_kms::Client::new(&crate::aws_config(self.limit).await) }).await
    }

    pub(crate) async fn public(&self) -> Result<&PublicKey> {
        self.public
            .get_or_try_init(|| async {
                let out = self.client().await.get_public_key().key_id(&self.key).send().await.map_err(|e| {
                    DomainError::internal(format!("KMS GetPublicKey: {}", aws_sdk_kms::error::DisplayErrorContext(e)))
                })?;
                let der = out.public_key.ok_or_else(|| DomainError::internal("KMS gave no public key"))?;
                PublicKey::p256(der.as_ref()).map_err(|_| {
                    DomainError::internal(format!("KMS key {} must be ECC_NIST_P256 with SIGN_VERIFY usage", self.key))
                })
            })
            .await
    }

    /// ECDSA P-256 over the job's bytes: KMS signs their SHA-256 (a job may exceed the 4 KB
    /// KMS takes as a raw message).
    pub(crate) async fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let out = self
            .client()
            .await
            .sign()
            .key_id(&self.key)
            .message(Blob::new(Sha256::digest(message).to_vec()))
            .message_type(MessageType::Digest)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| DomainError::internal(format!("KMS Sign: {}", aws_sdk_kms::error::DisplayErrorContext(e))))?;
        Ok(out.signature.ok_or_else(|| DomainError::internal("KMS gave no signature"))?.into_inner())
    }
}

#[async_trait]
impl JobSealer for Sealer {
    async fn seal(&self, payload: &str) -> Result<(String, String)> {
        match self {
            Self::Missing => Err(missing()),
            Self::Key(key) => {
                let envelope = gantry_signing::jobs::seal(key, payload.to_owned());
                Ok((envelope.signature, envelope.key_id))
            }
            Self::Kms(kms) => {
                let signature = kms.sign(&gantry_signing::jobs::message(payload)).await?;
                let encoded = base64::engine::general_purpose::STANDARD.encode(signature);
                Ok((encoded, kms.public().await?.encode()))
            }
        }
    }

    async fn public_key(&self) -> Result<String> {
        match self {
            Self::Missing => Err(missing()),
            Self::Key(key) => Ok(key.public().encode()),
            Self::Kms(kms) => Ok(kms.public().await?.encode()),
        }
    }
}
