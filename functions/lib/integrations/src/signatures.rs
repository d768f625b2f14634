//! Supply-chain facts of an image, by digest, starting with its cosign signatures: whether a
//! signature stored for the digest verifies under a key the caller trusts. Registries are
//! read, and signatures checked, through [`ImageSignatures`]; the registry protocol and the
//! cryptography are the adapters'.

use async_trait::async_trait;
use serde::Serialize;

use crate::error::Result;
use crate::integrations::RegistryAccess;
use crate::values::Digest;

/// A public key signatures are checked against: a PEM `PUBLIC KEY` (ECDSA P-256, as cosign
/// makes them), and the name verdicts give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub name: String,
    pub pem: String,
}

/// What the signatures stored for one digest amount to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum SignatureVerdict {
    /// A signature of this digest verifies under the named key.
    Verified { key: String },
    /// No signature is stored for this digest.
    Unsigned,
    /// Signatures are stored, and none stands for this image under a trusted key: why not,
    /// one reason per signature.
    Refused { reasons: Vec<String> },
}

impl SignatureVerdict {
    pub fn verified(&self) -> bool {
        matches!(self, Self::Verified { .. })
    }

    /// In a sentence, for refusals and evidence.
    pub fn describe(&self) -> String {
        match self {
            Self::Verified { key } => format!("signed with key {key}"),
            Self::Unsigned => "not signed".to_owned(),
            Self::Refused { reasons } => format!("no signature stands for it: {}", reasons.join("; ")),
        }
    }
}

/// Reads the signatures stored for an image and judges them.
#[async_trait]
pub trait ImageSignatures: Send + Sync {
    /// The verdict on the image at `digest` in `repository`, under `keys`.
    async fn verify(
        &self,
        access: &RegistryAccess,
        repository: &str,
        digest: &Digest,
        keys: &[TrustedKey],
    ) -> Result<SignatureVerdict>;
}
