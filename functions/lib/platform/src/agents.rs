//! The job-signing key agents pin: Gantry's Ed25519 key, or none (then agents cannot enroll
//! and agent-served targets cannot deploy, and both say why).

use gantry_domain::agents::JobSealer;
use gantry_domain::{DomainError, Result};
use gantry_signing::SigningKey;

pub struct Sealer(Option<SigningKey>);

impl Sealer {
    /// From the PKCS#8 DER [`crate::config::Config`] checked.
    pub fn new(pkcs8: Option<&[u8]>) -> Self {
        Self(pkcs8.and_then(|der| SigningKey::from_pkcs8(der).ok()))
    }

    fn key(&self) -> Result<&SigningKey> {
        self.0.as_ref().ok_or_else(|| {
            DomainError::validation("agents need a job-signing key: set GANTRY_JOB_SIGNING_KEY on every function")
        })
    }
}

impl JobSealer for Sealer {
    fn seal(&self, payload: &str) -> Result<(String, String)> {
        let envelope = gantry_signing::jobs::seal(self.key()?, payload.to_owned());
        Ok((envelope.signature, envelope.key_id))
    }

    fn public_key(&self) -> Result<String> {
        Ok(self.key()?.public().encode())
    }
}
