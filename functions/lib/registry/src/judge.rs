//! Who may sign, ready to judge what is stored: the environment's keys parsed and its
//! Sigstore trust root read, applied to key-based and keyless signatures and attestations.

use gantry_domain::DomainError;
use gantry_domain::Result;
use gantry_domain::attestations::VerifiedStatement;
use gantry_domain::signatures::{Certified, Logged, SignatureVerdict, Signers, SigningIdentity};
use gantry_signing::PublicKey;
use gantry_signing::cosign;
use gantry_signing::dsse;
use gantry_signing::keyless;

use crate::trusted;

/// Who may sign, ready to check signatures: the keys parsed, the trust root read.
pub(crate) struct Judge<'a> {
    pub(crate) keys: Vec<(String, PublicKey)>,
    signers: &'a Signers,
    root: Option<keyless::TrustRoot>,
}

impl<'a> Judge<'a> {
    pub(crate) fn new(signers: &'a Signers) -> Result<Self> {
        let root = match &signers.trust_root {
            Some(root) => Some(keyless::TrustRoot::parse(root.as_str().as_bytes()).map_err(|why| {
                DomainError::Unresolvable(format!("the environment's Sigstore trust root does not parse: {why}"))
            })?),
            None => None,
        };
        Ok(Self { keys: trusted(&signers.keys)?, signers, root })
    }

    /// The verdict of a key-based signature: the first key it stands under; else why not.
    pub(crate) fn keyed(&self, payload: &[u8], signature: &str, digest: &str) -> Result<SignatureVerdict, String> {
        let mut last = cosign::Refusal::DoesNotVerify;
        for (name, key) in &self.keys {
            match cosign::check(payload, signature, key, digest) {
                Ok(()) => return Ok(SignatureVerdict::by_key(name, signature.trim())),
                // A payload that verifies says so whichever key it verified under.
                Err(cosign::Refusal::DoesNotVerify) => {}
                Err(other) => last = other,
            }
        }
        Err(format!("a signature: {last}"))
    }

    /// The trusted identity a certificate names; why not, else (`what` names the artefact).
    fn signer(&self, what: &str, identity: &keyless::Identity) -> Result<&'a SigningIdentity, String> {
        self.signers
            .identities
            .iter()
            .find(|i| i.matches(&identity.subject, &identity.issuer))
            .ok_or_else(|| format!("{what} by {} ({}): not a trusted identity", identity.subject, identity.issuer))
    }

    /// The Statement a keyless Sigstore bundle vouches for: its certificate, log entry and
    /// envelope check out under the trust root, it names a trusted identity, and its
    /// Statement is about the image.
    pub(crate) fn keyless_statement(
        &self,
        bundle: &serde_json::Value,
        digest: &str,
    ) -> Result<VerifiedStatement, String> {
        let Some(root) = self.root.as_ref().filter(|_| !self.signers.identities.is_empty()) else {
            return Err("a keyless attestation: the environment trusts no signing identity".into());
        };
        let verdict = keyless::check_bundle(root, bundle).map_err(|r| format!("a keyless attestation: {r}"))?;
        let signer = self.signer("a keyless attestation", &verdict.identity)?;
        let statement = dsse::statement(&verdict.payload, digest).map_err(|r| format!("a keyless attestation: {r}"))?;
        Ok(VerifiedStatement {
            key: signer.name.clone(),
            predicate_type: statement.predicate_type,
            predicate: statement.predicate,
        })
    }

    /// The verdict of a keyless signature: its certificate and bundle check out under the
    /// trust root, it names a trusted identity, and its payload names the image.
    pub(crate) fn keyless(&self, signed: &keyless::Signed<'_>, digest: &str) -> Result<SignatureVerdict, String> {
        let (Some(root), false) = (&self.root, self.signers.identities.is_empty()) else {
            return Err("a keyless signature: the environment trusts no signing identity".into());
        };
        let (identity, entry) = keyless::check(root, signed).map_err(|r| format!("a keyless signature: {r}"))?;
        let signer = self.signer("a keyless signature", &identity)?;
        match cosign::signed_digest(signed.payload) {
            Some(named) if named == digest => {}
            Some(named) => return Err(format!("a keyless signature: it signs another image ({named})")),
            None => return Err("a keyless signature: its payload is not a cosign signature payload".into()),
        }
        Ok(SignatureVerdict::Verified {
            key: signer.name.clone(),
            signature: signed.signature.trim().to_owned(),
            identity: Some(Certified { subject: identity.subject, issuer: identity.issuer }),
            log: entry.map(|e| Logged { log_index: e.log_index, integrated_time: e.integrated_time, log_id: e.log_id }),
        })
    }
}
