//! Supply-chain facts of an image, by digest, starting with its cosign signatures: whether a
//! signature stored for the digest verifies under a key the caller trusts. Registries are
//! read, and signatures checked, through [`ImageSignatures`]; the registry protocol and the
//! cryptography are the adapters'.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Result};
use crate::integrations::RegistryAccess;
pub use crate::keyless::{SigningIdentity, TrustRoot};
use crate::values::Digest;

/// A public key signatures are checked against: a PEM `PUBLIC KEY` (ECDSA P-256, as cosign
/// makes them), or a reference to where one is kept, read when signatures are checked; and
/// the name verdicts give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKey {
    pub name: String,
    /// The PEM; empty for a key given by reference until it is read.
    #[serde(default)]
    pub pem: String,
    /// `secretsmanager:<name>`, `ssm:/<path>` or `env:COSIGN_<NAME>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// How a key is given: its PEM, or where it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyGiven {
    Pem(String),
    Reference(String),
}

impl TrustedKey {
    /// A key as given, checked for shape.
    pub fn given(name: &str, given: &KeyGiven) -> Result<Self> {
        match given {
            KeyGiven::Pem(pem) => Self::parse(name, pem),
            KeyGiven::Reference(reference) => Self::by_reference(name, reference),
        }
    }
}

/// Reads the public keys environments name by reference.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The value `reference` names (a PEM, to be checked); `Validation` when it names
    /// nothing. `name` is the key's, for errors, which never carry the value.
    async fn public_key(&self, name: &str, reference: &str) -> Result<String>;
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

    /// A key given by reference, checked for shape: `secretsmanager:<name>`, `ssm:/<path>`,
    /// or `env:COSIGN_<NAME>` (only those environment variables are read).
    pub fn by_reference(name: &str, reference: &str) -> Result<Self> {
        let name = Self::name(name)?;
        let reference = reference.trim();
        let shaped = |rest: Option<&str>, ok: &dyn Fn(char) -> bool| {
            rest.is_some_and(|r| !r.is_empty() && r.len() <= 512 && r.chars().all(ok))
        };
        let path = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c);
        let valid = shaped(reference.strip_prefix("secretsmanager:"), &path)
            || shaped(reference.strip_prefix("ssm:/"), &path)
            || shaped(reference.strip_prefix("env:COSIGN_"), &|c| {
                c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
            });
        if !valid {
            return Err(DomainError::validation(format!(
                "signing key {name}: keyRef must be secretsmanager:<name>, ssm:/<path> or env:COSIGN_<NAME>"
            )));
        }
        Ok(Self { name, pem: String::new(), reference: Some(reference.to_owned()) })
    }

    fn name(name: &str) -> Result<String> {
        let name = name.trim();
        if name.is_empty() || name.len() > Self::MAX_NAME || !name.chars().all(|c| c.is_ascii_graphic()) {
            return Err(DomainError::validation(format!(
                "a signing key's name must be 1 to {} printable characters without spaces",
                Self::MAX_NAME
            )));
        }
        Ok(name.to_owned())
    }

    /// A key checked for shape: a short printable name, and a PEM `PUBLIC KEY` holding an
    /// ECDSA P-256 key (the adapter checks the point itself when it verifies).
    pub fn parse(name: &str, pem: &str) -> Result<Self> {
        let name = Self::name(name)?;
        let pem = pem.trim();
        let body = pem
            .strip_prefix("-----BEGIN PUBLIC KEY-----")
            .and_then(|rest| rest.strip_suffix("-----END PUBLIC KEY-----"))
            .filter(|body| body.len() <= 512);
        let der = body.and_then(|b| STANDARD.decode(b.split_whitespace().collect::<String>()).ok());
        match der {
            Some(der) if der.len() == 91 && der.starts_with(&P256_SPKI_PREFIX) && der[26] == 0x04 => {
                Ok(Self { name, pem: pem.to_owned(), reference: None })
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

/// Who may sign what is promoted into an environment: its keys, and its keyless identities
/// under its trust root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signers {
    pub keys: Vec<TrustedKey>,
    pub identities: Vec<SigningIdentity>,
    pub trust_root: Option<TrustRoot>,
}

impl Signers {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.identities.is_empty()
    }

    /// Names the set whatever its order or names: what a verdict under it depends on.
    pub fn digest(&self) -> Digest {
        let mut parts: Vec<String> = self.keys.iter().map(|k| format!("key {}={}", k.name, k.fingerprint())).collect();
        parts.extend(self.identities.iter().map(|i| {
            let subject = i.subject.as_deref().map_or_else(|| format!("~{:?}", i.subject_regexp), |s| format!("={s}"));
            format!("identity {}={} {subject}", i.name, i.issuer)
        }));
        parts.sort();
        if let Some(root) = &self.trust_root {
            parts.push(format!("root {}", Digest::of(root.as_str().as_bytes())));
        }
        Digest::of(parts.join("\n").as_bytes())
    }
}

/// What the signatures stored for one digest amount to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum SignatureVerdict {
    /// A signature of this digest verifies under the named key, or was made by the named
    /// keyless identity.
    Verified {
        key: String,
        /// The signature that verified (base64), for the release manifest; not in evidence.
        #[serde(skip)]
        signature: String,
        /// A keyless signature's certificate identity.
        #[serde(skip_serializing_if = "Option::is_none")]
        identity: Option<Certified>,
        /// Where the transparency log says it logged the signature, when its bundle is stored.
        #[serde(skip_serializing_if = "Option::is_none")]
        log: Option<Logged>,
    },
    /// No signature is stored for this digest.
    Unsigned,
    /// Signatures are stored, and none stands for this image under a trusted key: why not,
    /// one reason per signature.
    Refused { reasons: Vec<String> },
}

/// The identity a keyless signature's certificate names, and the issuer that vouched for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Certified {
    pub subject: String,
    pub issuer: String,
}

/// A transparency-log entry of a signature, verified offline from its bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Logged {
    pub log_index: u64,
    /// When the log says it logged it, in seconds since the epoch.
    pub integrated_time: i64,
    /// The log's id: the hex sha256 of its key.
    pub log_id: String,
}

impl SignatureVerdict {
    /// A key-based signature that verified under `key`.
    pub fn by_key(key: &str, signature: &str) -> Self {
        Self::Verified { key: key.to_owned(), signature: signature.to_owned(), identity: None, log: None }
    }

    pub fn verified(&self) -> bool {
        matches!(self, Self::Verified { .. })
    }

    /// In a sentence, for refusals and evidence.
    pub fn describe(&self) -> String {
        match self {
            Self::Verified { key, identity: Some(id), log, .. } => {
                let logged = log.as_ref().map_or_else(String::new, |l| format!(", logged at index {}", l.log_index));
                format!("signed by {} ({}) as identity {key}{logged}", id.subject, id.issuer)
            }
            Self::Verified { key, .. } => format!("signed with key {key}"),
            Self::Unsigned => "not signed".to_owned(),
            Self::Refused { reasons } => format!("no signature stands for it: {}", reasons.join("; ")),
        }
    }
}

/// Reads the signatures stored for an image and judges them.
#[async_trait]
pub trait ImageSignatures: Send + Sync {
    /// The verdict on the image at `digest` in `repository`, under `signers`.
    async fn verify(
        &self,
        access: &RegistryAccess,
        repository: &str,
        digest: &Digest,
        signers: &Signers,
    ) -> Result<SignatureVerdict>;

    /// The attestations stored for the image at `digest`: those that verify under the
    /// signers' keys and name the image, and why the others do not stand.
    async fn attestations(
        &self,
        access: &RegistryAccess,
        repository: &str,
        digest: &Digest,
        signers: &Signers,
    ) -> Result<crate::attestations::Attestations>;
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
        for good in ["secretsmanager:gantry/keys/release", "ssm:/gantry/keys/ci", "env:COSIGN_RELEASE_KEY"] {
            let key = TrustedKey::by_reference("k", good).unwrap();
            assert_eq!((key.pem.as_str(), key.reference.as_deref()), ("", Some(good)));
        }
        for bad in ["", "env:GANTRY_DATA_KEY", "file:/etc/passwd", "ssm:relative", "secretsmanager:a b"] {
            assert!(TrustedKey::by_reference("k", bad).is_err(), "{bad}");
        }
        let set = |keys: &[&TrustedKey]| {
            Signers { keys: keys.iter().map(|k| (*k).clone()).collect(), ..Default::default() }.digest()
        };
        assert_eq!(set(&[&a, &b]), set(&[&b, &a]));
        assert_ne!(set(&[&a]), set(&[&a, &b]));
    }

    #[test]
    fn a_signer_set_is_named_by_its_members() {
        let a = SigningIdentity::parse("a", "https://issuer.example", Some("a@acme.example"), None).unwrap();
        let b = SigningIdentity::parse("b", "https://issuer.example", None, Some(".*@acme.example")).unwrap();
        let one = Signers { identities: vec![a.clone(), b.clone()], ..Default::default() };
        let other = Signers { identities: vec![b, a.clone()], ..Default::default() };
        assert_eq!(one.digest(), other.digest());
        assert_ne!(one.digest(), Signers { identities: vec![a], ..Default::default() }.digest());
    }
}
