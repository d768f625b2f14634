//! Supply-chain facts of an image, by digest, starting with its cosign signatures: whether a
//! signature stored for the digest verifies under a key the caller trusts. Registries are
//! read, and signatures checked, through [`ImageSignatures`]; the registry protocol and the
//! cryptography are the adapters'. [`SignatureChecks`] judges every component of a release.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::error::{DomainError, Result};
use crate::integrations::{Integrations, RegistryAccess};
use crate::model::{Release, ReleaseComponent};
use crate::ports::Repository;
use crate::values::Digest;
use gantry_kernel::kept::Kept;

/// A public key signatures are checked against: a PEM `PUBLIC KEY` (ECDSA P-256, as cosign
/// makes them), and the name verdicts give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKey {
    pub name: String,
    pub pem: String,
}

/// The DER prefix of an ECDSA P-256 SubjectPublicKeyInfo; 65 bytes of point follow.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

impl TrustedKey {
    /// Keys one environment may trust.
    pub const MAX: usize = 16;
    const MAX_NAME: usize = 64;

    /// A key checked for shape: a short printable name, and a PEM `PUBLIC KEY` holding an
    /// ECDSA P-256 key (the adapter checks the point itself when it verifies).
    pub fn parse(name: &str, pem: &str) -> Result<Self> {
        let name = name.trim();
        if name.is_empty() || name.len() > Self::MAX_NAME || !name.chars().all(|c| c.is_ascii_graphic()) {
            return Err(DomainError::validation(format!(
                "a signing key's name must be 1 to {} printable characters without spaces",
                Self::MAX_NAME
            )));
        }
        let pem = pem.trim();
        let body = pem
            .strip_prefix("-----BEGIN PUBLIC KEY-----")
            .and_then(|rest| rest.strip_suffix("-----END PUBLIC KEY-----"))
            .filter(|body| body.len() <= 512);
        let der = body.and_then(|b| STANDARD.decode(b.split_whitespace().collect::<String>()).ok());
        match der {
            Some(der) if der.len() == 91 && der.starts_with(&P256_SPKI_PREFIX) && der[26] == 0x04 => {
                Ok(Self { name: name.to_owned(), pem: pem.to_owned() })
            }
            _ => Err(DomainError::validation(format!(
                "signing key {name}: pem must be a PEM PUBLIC KEY holding an ECDSA P-256 key (as `cosign generate-key-pair` writes)"
            ))),
        }
    }

    /// The sha256 of the key's DER (its SubjectPublicKeyInfo), which names it in evidence
    /// whatever it is called.
    pub fn fingerprint(&self) -> Digest {
        let body: String = self.pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let body: String = body.split_whitespace().collect();
        Digest::of(&STANDARD.decode(&body).unwrap_or_else(|_| body.into_bytes()))
    }
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

/// One component of a release, judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentVerdict {
    pub component: String,
    pub digest: Digest,
    #[serde(flatten)]
    pub verdict: SignatureVerdict,
}

impl ComponentVerdict {
    /// The component, its digest and the verdict, for a gate's detail.
    pub fn describe(&self) -> String {
        format!("{} ({}): {}", self.component, self.digest, self.verdict.describe())
    }
}

/// Verified digests kept per process.
const KEPT: usize = 4096;

/// Judges the components of releases under an environment's keys. A verified signature
/// cannot stop verifying under the same keys, so that verdict is kept per digest and key
/// set; any other is asked again, since a signature may be pushed after the image.
#[derive(Clone)]
pub struct SignatureChecks {
    repo: Arc<dyn Repository>,
    integrations: Integrations,
    reader: Arc<dyn ImageSignatures>,
    verified: Kept<(Digest, Digest), String>,
}

impl SignatureChecks {
    pub fn new(repo: Arc<dyn Repository>, integrations: Integrations, reader: Arc<dyn ImageSignatures>) -> Self {
        Self { repo, integrations, reader, verified: Kept::new(KEPT) }
    }

    /// Every component of `release` judged under `keys`, in the release's order; nothing
    /// when no key is given (the environment asks for no signature).
    #[instrument(skip_all, fields(release_id = %release.id, keys = keys.len()), err(level = "info"))]
    pub async fn check(&self, release: &Release, keys: &[TrustedKey]) -> Result<Vec<ComponentVerdict>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<_> = release.components.iter().map(|c| c.component_id).collect();
        let components = self.repo.get_components(&ids).await?;
        let keyset = key_set(keys);
        let judged = release.components.iter().map(|rc| {
            let component = components.iter().find(|c| c.id == rc.component_id);
            self.judge(rc, component, keys, &keyset)
        });
        Ok(futures::future::join_all(judged).await)
    }

    async fn judge(
        &self,
        rc: &ReleaseComponent,
        component: Option<&crate::model::Component>,
        keys: &[TrustedKey],
        keyset: &Digest,
    ) -> ComponentVerdict {
        let cached = (rc.digest.clone(), keyset.clone());
        let verdict = match self.verified.get(&cached) {
            Some(key) => SignatureVerdict::Verified { key },
            None => {
                let verdict = self.read(rc, component, keys).await;
                if let SignatureVerdict::Verified { key } = &verdict {
                    self.verified.keep(cached, key.clone());
                }
                verdict
            }
        };
        ComponentVerdict { component: rc.component_name.clone(), digest: rc.digest.clone(), verdict }
    }

    /// Asks the registry. A registry that cannot be read refuses: the gate fails closed.
    async fn read(
        &self,
        rc: &ReleaseComponent,
        component: Option<&crate::model::Component>,
        keys: &[TrustedKey],
    ) -> SignatureVerdict {
        let asked = async {
            let component = component.ok_or_else(|| DomainError::Unresolvable("the component was deleted".into()))?;
            let (access, repository) = self.integrations.registry_for(component).await?;
            self.reader.verify(&access, &repository, &rc.digest, keys).await
        };
        match asked.await {
            Ok(verdict) => verdict,
            Err(err) => {
                let why = match &err {
                    DomainError::Unresolvable(why) | DomainError::Validation(why) | DomainError::NotFound(why) => {
                        why.clone()
                    }
                    _ => "the registry could not be read".to_owned(),
                };
                tracing::warn!(component = %rc.component_name, error = %err, "signatures not read");
                SignatureVerdict::Refused { reasons: vec![format!("its signatures could not be read: {why}")] }
            }
        }
    }
}

/// Names a set of keys whatever their order or names.
fn key_set(keys: &[TrustedKey]) -> Digest {
    let mut prints: Vec<String> = keys.iter().map(|k| format!("{}={}", k.name, k.fingerprint())).collect();
    prints.sort();
    Digest::of(prints.join("\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7Bd2aYqRhv1ZEGKkUFXsJVKp3mMA\nJ3OsbHb5aoN9bAvE4cZhnYJGJ/yXw0EP9d3R9tvFGDuMF4vxf6Ga4bjYMg==\n-----END PUBLIC KEY-----\n";

    #[test]
    fn keys_are_checked_for_shape() {
        let key = TrustedKey::parse(" ci ", PEM).unwrap();
        assert_eq!(key.name, "ci");
        assert!(key.fingerprint().as_str().starts_with("sha256:"));
        for (name, pem) in [
            ("", PEM),
            ("two words", PEM),
            ("ci", "not a pem"),
            ("ci", &PEM.replace("PUBLIC KEY", "PRIVATE KEY")),
            ("ci", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
            (
                "ci",
                "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----",
            ),
        ] {
            assert!(matches!(TrustedKey::parse(name, pem), Err(DomainError::Validation(_))), "{name:?} {pem:?}");
        }
    }

    #[test]
    fn a_key_set_is_named_by_its_keys_not_their_order() {
        let a = TrustedKey::parse("a", PEM).unwrap();
        let b = TrustedKey { name: "b".into(), ..a.clone() };
        assert_eq!(key_set(&[a.clone(), b.clone()]), key_set(&[b.clone(), a.clone()]));
        assert_ne!(key_set(std::slice::from_ref(&a)), key_set(&[a, b]));
    }
}
