//! Signatures Gantry makes and checks: the pull agent's Ed25519 key pair, HTTP Message
//! Signatures (RFC 9421) over its requests, Gantry's signed job envelopes, and cosign's
//! key-based image signatures. It knows nothing of Gantry's domain, storage or transport.

pub mod bundle;
pub mod cosign;
pub mod dsse;
pub mod jobs;
pub mod jwk;
pub mod keyless;
pub mod requests;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigningError {
    #[error("the key is not an Ed25519 PKCS#8 key")]
    BadKey,
    #[error("the public key is not 32 bytes of base64url (Ed25519), nor es256: and a P-256 SubjectPublicKeyInfo")]
    BadPublicKey,
    #[error("{0}")]
    Refused(String),
}

/// An Ed25519 key pair.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

/// A public key: Ed25519 (agents' keys, and a job-signing key held by Gantry itself), or
/// ECDSA P-256 (a job-signing key held in AWS KMS, which signs no Ed25519).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Ed25519([u8; 32]),
    /// The DER SubjectPublicKeyInfo, as KMS's GetPublicKey gives it.
    P256(Vec<u8>),
}

/// How a P-256 key's SubjectPublicKeyInfo starts (id-ecPublicKey, prime256v1, then the
/// 65-byte uncompressed point as a bit string).
pub(crate) const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const P256_TAG: &str = "es256:";

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
        PublicKey::Ed25519(key)
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

impl PublicKey {
    /// An Ed25519 key from the unpadded base64url of its 32 bytes (as a JWK's `x`), or a
    /// P-256 key from `es256:` and the base64url of its SubjectPublicKeyInfo.
    pub fn parse(encoded: &str) -> Result<Self, SigningError> {
        let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| SigningError::BadPublicKey);
        match encoded.trim().strip_prefix(P256_TAG) {
            Some(spki) => Self::p256(&decode(spki)?),
            None => Self::ed25519(&decode(encoded.trim())?),
        }
    }

    /// A P-256 key from a PEM `PUBLIC KEY` (a SubjectPublicKeyInfo), as cosign writes its
    /// public keys.
    pub fn from_pem(pem: &str) -> Result<Self, SigningError> {
        Self::p256(&pem_decode(pem, "PUBLIC KEY").ok_or(SigningError::BadPublicKey)?)
    }

    /// An Ed25519 key only: what an agent's own key must be.
    pub fn ed25519(bytes: &[u8]) -> Result<Self, SigningError> {
        <[u8; 32]>::try_from(bytes).map(Self::Ed25519).map_err(|_| SigningError::BadPublicKey)
    }

    /// A P-256 key from its DER SubjectPublicKeyInfo (an uncompressed point).
    pub fn p256(spki: &[u8]) -> Result<Self, SigningError> {
        let point = spki.get(P256_SPKI_PREFIX.len()..).unwrap_or_default();
        if spki.starts_with(&P256_SPKI_PREFIX) && point.len() == 65 && point[0] == 0x04 {
            Ok(Self::P256(spki.to_vec()))
        } else {
            Err(SigningError::BadPublicKey)
        }
    }

    pub fn encode(&self) -> String {
        match self {
            Self::Ed25519(key) => URL_SAFE_NO_PAD.encode(key),
            Self::P256(spki) => format!("{P256_TAG}{}", URL_SAFE_NO_PAD.encode(spki)),
        }
    }

    /// Whether `signature` is this key's over `message`: Ed25519, or ECDSA P-256 with SHA-256
    /// (an ASN.1 DER signature, as KMS gives it).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Ed25519(key) => UnparsedPublicKey::new(&ED25519, key).verify(message, signature).is_ok(),
            Self::P256(spki) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &spki[P256_SPKI_PREFIX.len()..])
                .verify(message, signature)
                .is_ok(),
        }
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
        // A P-256 key as KMS gives it: es256: and its SubjectPublicKeyInfo, which must name
        // P-256 and hold an uncompressed point.
        let spki = [&P256_SPKI_PREFIX[..], &[0x04], &[7; 64]].concat();
        let p256 = PublicKey::parse(&format!("es256:{}", URL_SAFE_NO_PAD.encode(&spki))).unwrap();
        assert_eq!(PublicKey::parse(&p256.encode()), Ok(p256.clone()));
        assert!(!p256.verify(b"message", &signature), "an Ed25519 signature is not a P-256 one");
        let mut other_curve = spki.clone();
        other_curve[22] = 0x08;
        for bad in [&spki[..90], &other_curve[..], &[&P256_SPKI_PREFIX[..], &[0x02], &[7; 64]].concat()[..]] {
            assert_eq!(PublicKey::p256(bad), Err(SigningError::BadPublicKey));
        }
        assert!(SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").is_err());
    }
}
