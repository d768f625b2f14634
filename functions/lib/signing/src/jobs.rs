//! Signed job envelopes: Gantry signs the exact bytes of a job's payload (JSON) with its
//! job-signing key; an agent that pinned the public key at enrollment verifies those bytes
//! before it parses them, so nothing it acts on was changed on the way.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::{PublicKey, SigningError, SigningKey};

/// What travels to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The job as JSON, exactly as signed.
    pub payload: String,
    /// Base64 of the signature over `payload`'s bytes, prefixed with this context: Ed25519,
    /// or ECDSA P-256 with SHA-256 (DER) for a key held in KMS.
    pub signature: String,
    /// Which of Gantry's keys signed it (its public key, as [`PublicKey::encode`] gives it).
    pub key_id: String,
}

/// Signatures are over this prefix and the payload, so a job signature can never be taken
/// for any other kind of Gantry signature.
const CONTEXT: &[u8] = b"gantry-agent-job-v1\n";

/// The bytes a job's signature covers.
pub fn message(payload: &str) -> Vec<u8> {
    [CONTEXT, payload.as_bytes()].concat()
}

pub fn seal(key: &SigningKey, payload: String) -> Envelope {
    let signature = STANDARD.encode(key.sign(&message(&payload)));
    Envelope { payload, signature, key_id: key.public().encode() }
}

/// The payload, once the signature verifies with `pinned`.
pub fn open<'a>(envelope: &'a Envelope, pinned: &PublicKey) -> Result<&'a str, SigningError> {
    let refuse = |why: &str| SigningError::Refused(format!("the job's signature {why}"));
    if envelope.key_id != pinned.encode() {
        return Err(refuse("is by a key this agent did not pin"));
    }
    let signature = STANDARD.decode(&envelope.signature).map_err(|_| refuse("is not base64"))?;
    if !pinned.verify(&message(&envelope.payload), &signature) {
        return Err(refuse("does not verify"));
    }
    Ok(&envelope.payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_payload_or_another_key_is_refused() {
        let (gantry, _) = SigningKey::generate();
        let envelope = seal(&gantry, "{\"job\":1}".into());
        assert_eq!(open(&envelope, &gantry.public()).unwrap(), "{\"job\":1}");
        let tampered = Envelope { payload: "{\"job\":2}".into(), ..envelope.clone() };
        assert!(open(&tampered, &gantry.public()).unwrap_err().to_string().contains("does not verify"));
        let (other, _) = SigningKey::generate();
        assert!(open(&envelope, &other.public()).unwrap_err().to_string().contains("did not pin"));
        let forged = Envelope { key_id: other.public().encode(), ..seal(&other, "{\"job\":1}".into()) };
        assert!(open(&forged, &gantry.public()).is_err());
    }
}
