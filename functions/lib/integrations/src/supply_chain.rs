//! The supply-chain facts of a release: for each component's digest, its signature verdict
//! and what its verified attestations say, read through the component's registry
//! integration (the adapter keeps what it verified per stored manifest digest, which cannot
//! change). A registry that cannot be read gives a refusal, never an error: the gate fails
//! closed.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use tracing::instrument;

use crate::attestations::{Attestations, ImageFacts, summarize};
use crate::error::{DomainError, Result};
use crate::integrations::{Integrations, RegistryAccess};
use crate::model::{Component, Release, ReleaseComponent};
use crate::ports::Repository;
use crate::signatures::{ImageSignatures, KeyStore, SignatureVerdict, Signers, TrustedKey};
use crate::values::Digest;

/// One component of a release and what is verified about its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentFacts {
    pub component: String,
    pub image: String,
    pub digest: Digest,
    pub signature: SignatureVerdict,
    #[serde(flatten)]
    pub facts: ImageFacts,
    /// Where its attestations are stored, when any is.
    pub attestation_ref: Option<String>,
}

impl ComponentFacts {
    /// The component, its digest and its signature verdict, in a sentence.
    pub fn describe(&self) -> String {
        format!("{} ({}): {}", self.component, self.digest, self.signature.describe())
    }

    /// What evidence keeps of the facts a decision used: the key, builders, commits,
    /// SBOM formats, vulnerability counts by severity and the findings VEX rules out.
    pub fn evidence(&self) -> Value {
        let f = &self.facts;
        let mut severities = std::collections::BTreeMap::<&str, usize>::new();
        for v in &f.vulnerabilities {
            *severities.entry(v.severity.as_str()).or_default() += 1;
        }
        let not_affected: Vec<&str> =
            f.vex.iter().filter(|v| v.status == "not_affected").map(|v| v.vulnerability.as_str()).collect();
        json!({
            "component": self.component,
            "digest": self.digest,
            "signature": self.signature,
            "builders": f.provenance.iter().map(|p| &p.builder_id).collect::<Vec<_>>(),
            "commits": f.provenance.iter().map(|p| &p.commit).collect::<Vec<_>>(),
            "sboms": f.sboms.iter().map(|s| &s.format).collect::<Vec<_>>(),
            "vulnerabilities": severities,
            "vexNotAffected": not_affected,
            "refused": f.refused,
        })
    }
}

/// A component's signature verdict, facts and attestations' address.
type Read = (SignatureVerdict, ImageFacts, Option<String>);

/// Reads the supply-chain facts of releases under an environment's keys.
#[derive(Clone)]
pub struct SupplyChain {
    repo: Arc<dyn Repository>,
    integrations: Integrations,
    reader: Arc<dyn ImageSignatures>,
    keys: Arc<dyn KeyStore>,
}

impl SupplyChain {
    pub fn new(
        repo: Arc<dyn Repository>,
        integrations: Integrations,
        reader: Arc<dyn ImageSignatures>,
        keys: Arc<dyn KeyStore>,
    ) -> Self {
        Self { repo, integrations, reader, keys }
    }

    /// The keys with those given by reference read; `Unresolvable` naming the key when one
    /// cannot be read or does not hold a P-256 public key.
    async fn resolve(&self, keys: &[TrustedKey]) -> Result<Vec<TrustedKey>> {
        let mut resolved = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(reference) = &key.reference else {
                resolved.push(key.clone());
                continue;
            };
            let pem = match self.keys.public_key(&key.name, reference).await {
                Ok(pem) => pem,
                Err(DomainError::Validation(why)) => return Err(DomainError::Unresolvable(why)),
                Err(err) => {
                    tracing::warn!(key = %key.name, error = %err, "signing key not read");
                    return Err(DomainError::Unresolvable(format!("signing key {} could not be read", key.name)));
                }
            };
            let read = TrustedKey::parse(&key.name, &pem).map_err(|_| {
                DomainError::Unresolvable(format!(
                    "signing key {}: {reference} holds no ECDSA P-256 public key",
                    key.name
                ))
            })?;
            resolved.push(TrustedKey { reference: key.reference.clone(), ..read });
        }
        Ok(resolved)
    }

    /// The facts of every component of `release` under `signers`, in the release's order;
    /// `Unresolvable` when a key given by reference cannot be read.
    #[instrument(skip_all, fields(release_id = %release.id, keys = signers.keys.len(), identities = signers.identities.len()), err(level = "info"))]
    pub async fn facts(&self, release: &Release, signers: &Signers) -> Result<Vec<ComponentFacts>> {
        let keys = &Signers { keys: self.resolve(&signers.keys).await?, ..signers.clone() };
        let ids: Vec<_> = release.components.iter().map(|c| c.component_id).collect();
        let components = self.repo.get_components(&ids).await?;
        let found: Vec<&Component> = components.iter().collect();
        // Every component's registry from one listing of the integrations.
        let registries = self.integrations.registries_for(&found).await;
        let read = release.components.iter().map(|rc| {
            let registry = match (&registries, components.iter().position(|c| c.id == rc.component_id)) {
                (Ok(registries), Some(i)) => registries[i].clone(),
                (Err(err), Some(_)) => Err(err.clone()),
                (_, None) => Err(DomainError::Unresolvable("the component was deleted".into())),
            };
            self.component(rc, registry, keys)
        });
        Ok(futures::future::join_all(read).await)
    }

    async fn component(
        &self,
        rc: &ReleaseComponent,
        registry: Result<(RegistryAccess, String)>,
        keys: &Signers,
    ) -> ComponentFacts {
        let (signature, facts, attestation_ref) = self.read(rc, registry, keys).await;
        ComponentFacts {
            component: rc.component_name.clone(),
            image: rc.image.clone(),
            digest: rc.digest.clone(),
            signature,
            facts,
            attestation_ref,
        }
    }

    /// Asks the registry for the signature and the attestations, at once.
    async fn read(&self, rc: &ReleaseComponent, registry: Result<(RegistryAccess, String)>, keys: &Signers) -> Read {
        let asked = async {
            let (access, repository) = registry?;
            let signature = self.reader.verify(&access, &repository, &rc.digest, keys);
            let attestations = self.reader.attestations(&access, &repository, &rc.digest, keys);
            let (signature, attestations) = futures::future::join(signature, attestations).await;
            Ok::<_, DomainError>((signature?, attestations?))
        };
        match asked.await {
            Ok((signature, attestations)) => {
                let reference = attestations.reference.clone();
                (signature, summarize(&attestations), reference)
            }
            Err(err) => {
                let why = match &err {
                    DomainError::Unresolvable(why) | DomainError::Validation(why) | DomainError::NotFound(why) => {
                        why.clone()
                    }
                    _ => "the registry could not be read".to_owned(),
                };
                tracing::warn!(component = %rc.component_name, error = %err, "supply-chain facts not read");
                let reasons = vec![format!("its signatures could not be read: {why}")];
                (SignatureVerdict::Refused { reasons }, summarize(&Attestations::default()), None)
            }
        }
    }
}
