//! Secrets at rest and the randomness every secret is made of: what the integrations, the
//! sessions and the agents share without knowing of one another.

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Result};

/// Bytes encrypted by a [`SecretBox`], base64-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(pub String);

/// Encrypts and decrypts secrets at rest (AES-256-GCM under a data key, or a KMS).
pub trait SecretBox: Send + Sync {
    fn seal(&self, plain: &[u8]) -> Result<Sealed>;
    fn open(&self, sealed: &Sealed) -> Result<Vec<u8>>;
}

/// 32 bytes from the operating system's random source: the body of every secret Gantry makes.
pub fn random_key() -> Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(DomainError::internal)?;
    Ok(bytes)
}
