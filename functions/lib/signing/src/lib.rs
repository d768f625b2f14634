//! Ed25519 signatures for the pull agent: its key pair, HTTP Message Signatures (RFC 9421)
//! over its requests, and Gantry's signed job envelopes. It knows nothing of Gantry's
//! domain, storage or transport; the API verifies with it and the agent signs with it.

pub mod jobs;
pub mod requests;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigningError {
    #[error("the key is not an Ed25519 PKCS#8 key")]
    BadKey,
    #[error("the public key is not 32 bytes of base64url")]
    BadPublicKey,
    #[error("{0}")]
    Refused(String),
}

/// An Ed25519 key pair.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

/// An Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl SigningKey {
    /// A new key pair and its PKCS#8 document (to keep as PEM).
    pub fn generate() -> (Self, Vec<u8>) {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("the system's randomness");
        let pkcs8 = doc.as_ref().to_vec();
        (Self::from_pkcs8(&pkcs8).expect("a key just generated"), pkcs8)
    }

    pub fn from_pkcs8(der: &[u8]) -> Result<Self, SigningError> {
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map(|pair| Self { pair }).map_err(|_| SigningError::BadKey)
    }

    /// From `-----BEGIN PRIVATE KEY-----` PEM.
    pub fn from_pem(pem: &str) -> Result<Self, SigningError> {
        Self::from_pkcs8(&pem_decode(pem, "PRIVATE KEY").ok_or(SigningError::BadKey)?)
    }

    pub fn public(&self) -> PublicKey {
        let mut key = [0; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(key)
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

impl PublicKey {
    /// From the unpadded base64url of its 32 bytes (as a JWK's `x`).
    pub fn parse(encoded: &str) -> Result<Self, SigningError> {
        let bytes = URL_SAFE_NO_PAD.decode(encoded.trim()).map_err(|_| SigningError::BadPublicKey)?;
        <[u8; 32]>::try_from(bytes.as_slice()).map(Self).map_err(|_| SigningError::BadPublicKey)
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, self.0).verify(message, signature).is_ok()
    }
}

/// PEM of `der` under `label`, in 64-character lines.
pub fn pem_encode(der: &[u8], label: &str) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// The DER inside PEM of `label`.
pub fn pem_decode(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let inner = pem.trim().strip_prefix(&begin)?.strip_suffix(&end)?;
    let joined: String = inner.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(joined).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_pem_and_base64url() {
        let (key, pkcs8) = SigningKey::generate();
        let again = SigningKey::from_pem(&pem_encode(&pkcs8, "PRIVATE KEY")).unwrap();
        assert_eq!(key.public(), again.public());
        let public = PublicKey::parse(&key.public().encode()).unwrap();
        let signature = key.sign(b"message");
        assert!(public.verify(b"message", &signature));
        assert!(!public.verify(b"massage", &signature));
        assert_eq!(PublicKey::parse("c2hvcnQ"), Err(SigningError::BadPublicKey));
        assert!(SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").is_err());
    }
}
