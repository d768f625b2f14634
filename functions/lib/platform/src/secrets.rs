//! Secrets at rest: AES-256-GCM under the data key from `GANTRY_DATA_KEY`.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gantry_domain::integrations::{Sealed, SecretBox};
use gantry_domain::{DomainError, Result};

const NONCE_LEN: usize = 12;

/// Seals with a random nonce per value; the stored form is base64(nonce || ciphertext).
pub struct AesGcmBox {
    cipher: Aes256Gcm,
}

impl AesGcmBox {
    /// `key` is 32 bytes.
    pub fn new(key: &[u8]) -> Option<Self> {
        Aes256Gcm::new_from_slice(key).ok().map(|cipher| Self { cipher })
    }
}

impl SecretBox for AesGcmBox {
    fn seal(&self, plain: &[u8]) -> Result<Sealed> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(DomainError::internal)?;
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .map_err(|_| DomainError::internal("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend(ciphertext);
        Ok(Sealed(STANDARD.encode(out)))
    }

    fn open(&self, sealed: &Sealed) -> Result<Vec<u8>> {
        let bytes = STANDARD.decode(&sealed.0).map_err(|_| DomainError::internal("sealed value is not base64"))?;
        if bytes.len() < NONCE_LEN {
            return Err(DomainError::internal("sealed value is too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| DomainError::internal("sealed value does not open with this data key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let sealer = AesGcmBox::new(&[7u8; 32]).unwrap();
        let a = sealer.seal(b"s3cret").unwrap();
        let b = sealer.seal(b"s3cret").unwrap();
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.0.contains("s3cret"));
        assert_eq!(sealer.open(&a).unwrap(), b"s3cret");
        let mut bytes = STANDARD.decode(&a.0).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&Sealed(STANDARD.encode(bytes))).is_err(), "tampering is detected");
        assert!(AesGcmBox::new(&[7u8; 32 - 1]).is_none());
        let other = AesGcmBox::new(&[8u8; 32]).unwrap();
        assert!(other.open(&a).is_err(), "another key cannot open it");
    }
}
