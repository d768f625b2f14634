//! The supply-chain gate: the facts verified about each component's digest, judged by the
//! environment's admission policy (Rego) at the request and again just before deploying.
//! The input the policy reads is documented in `docs/admission.md`.

use serde_json::{Value, json};

use super::*;
use crate::admission::policy_digest;
use crate::manifest::{ReleaseSignature, ServiceRefs, SupplyChainRefs};
use crate::signatures::SignatureVerdict;
use crate::supply_chain::ComponentFacts;
use crate::values::Digest;

/// When the gate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Request,
    Deploy,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Deploy => "deploy",
        }
    }
}

/// Who asks, as the policy sees it.
pub(super) struct Asker<'a> {
    pub requested_by: &'a str,
    pub automatic: bool,
}

/// What the gate decided, and on what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplyChainVerdict {
    pub gate: GateResult,
    pub components: Vec<ComponentFacts>,
    /// The sha256 of the policy that decided.
    pub policy: Digest,
    /// The policy's reasons to refuse, in order; none when admitted.
    pub denials: Vec<String>,
}

impl SupplyChainVerdict {
    /// What evidence seals of the decision: the policy's digest, its reasons, and the facts
    /// it used (keys, builders, commits, SBOMs, vulnerability counts).
    pub fn evidence(&self) -> Value {
        json!({
            "policy": self.policy,
            "admitted": self.gate.passed,
            "denials": self.denials,
            "components": self.components.iter().map(ComponentFacts::evidence).collect::<Vec<_>>(),
        })
    }
}

/// The policy's input: the release, the environment, the promotion and each component.
fn input(
    release: &Release,
    environment: &Environment,
    phase: Phase,
    asker: &Asker<'_>,
    facts: &[ComponentFacts],
) -> Value {
    let source = release.source_ref.clone().unwrap_or_default();
    json!({
        "release": { "id": release.id, "name": release.name.as_str(),
            "sourceRef": { "repository": source.repository, "commitSha": source.commit_sha, "branch": source.branch } },
        "environment": { "id": environment.id, "name": environment.name.as_str(), "order": environment.order,
            "signingKeys": environment.policy.signing_keys.iter().map(|k| &k.name).collect::<Vec<_>>(),
            "signingIdentities": environment.policy.signing_identities.iter().map(|i| &i.name).collect::<Vec<_>>(),
            "trustedBuilders": environment.policy.trusted_builders },
        "promotion": { "phase": phase.as_str(), "requestedBy": asker.requested_by, "automatic": asker.automatic },
        "components": facts,
    })
}

impl Promotions {
    /// The supply-chain gate of `environment` for `release`; `None` when the environment
    /// names neither signing keys nor an admission policy. A policy that cannot be
    /// evaluated fails the gate.
    pub(super) async fn supply_chain_gate(
        &self,
        release: &Release,
        environment: &Environment,
        phase: Phase,
        asker: Asker<'_>,
    ) -> Result<Option<SupplyChainVerdict>> {
        let policy = &environment.policy;
        if !policy.guards_supply_chain() {
            return Ok(None);
        }
        let rego = policy.admission_rego();
        let components = match self.rollout.supply_chain.facts(release, &policy.signers()).await {
            Ok(components) => components,
            Err(DomainError::Unresolvable(why)) => {
                let gate = gates::gate("supply_chain", false, why.clone());
                return Ok(Some(SupplyChainVerdict {
                    gate,
                    components: Vec::new(),
                    policy: policy_digest(rego),
                    denials: vec![why],
                }));
            }
            Err(err) => return Err(err),
        };
        let input = input(release, environment, phase, &asker, &components);
        let (denials, gate) = match self.rollout.admission.denials(rego, &input) {
            Ok(denials) if denials.is_empty() => {
                let signed: Vec<String> = components.iter().map(ComponentFacts::describe).collect();
                let detail = format!("admitted by policy {}: {}", policy_digest(rego), signed.join(", "));
                (denials, gates::gate("supply_chain", true, detail))
            }
            Ok(denials) => {
                let detail = denials.join("; ");
                (denials, gates::gate("supply_chain", false, detail))
            }
            Err(DomainError::Unresolvable(why)) => (vec![why.clone()], gates::gate("supply_chain", false, why)),
            Err(err) => return Err(err),
        };
        Ok(Some(SupplyChainVerdict { gate, components, policy: policy_digest(rego), denials }))
    }
}

/// The manifest's references from a release's facts: each service's attestations and SBOM
/// (the attestations' address with the SBOM's format as fragment), and each verified
/// signature with its key's id.
fn manifest_refs(facts: &[ComponentFacts], keys: &[crate::signatures::TrustedKey]) -> SupplyChainRefs {
    let services = facts
        .iter()
        .map(|c| ServiceRefs {
            digest: c.digest.clone(),
            attestation_ref: c.attestation_ref.clone(),
            sbom_ref: c.facts.sboms.first().zip(c.attestation_ref.as_ref()).map(|(s, at)| format!("{at}#{}", s.format)),
        })
        .collect();
    let signatures = facts
        .iter()
        .filter_map(|c| match &c.signature {
            SignatureVerdict::Verified { key, signature, identity, log } => Some(ReleaseSignature {
                signature_type: "cosign",
                signature: signature.clone(),
                key_id: match identity {
                    Some(identity) => identity.subject.clone(),
                    None => keys.iter().find(|k| k.name == *key).map_or_else(|| key.clone(), key_id),
                },
                signed_at: log.as_ref().and_then(|l| chrono::DateTime::from_timestamp(l.integrated_time, 0)),
                rekor_log_index: log.as_ref().map(|l| l.log_index),
            }),
            _ => None,
        })
        .collect();
    SupplyChainRefs { services, signatures }
}

/// How the manifest names a key: the sha256 of its DER, or where a key given by reference
/// is kept.
fn key_id(key: &crate::signatures::TrustedKey) -> String {
    key.reference.clone().unwrap_or_else(|| key.fingerprint().to_string())
}

impl Promotions {
    /// The release's production manifest, unsigned. When the production environment (the
    /// last on the path) guards its supply chain, each service names where its attestations
    /// and SBOM are, and the image signatures that verify under that environment's keys are
    /// listed.
    #[instrument(skip_all, fields(release_id = %release.id), err(level = "info"))]
    pub(super) async fn unsigned_manifest(&self, release: &Release) -> Result<Value> {
        let environments = self.repo.list_environments().await?;
        let production = environments.iter().max_by_key(|e| e.order).filter(|e| e.policy.guards_supply_chain());
        let Some(production) = production else { return crate::manifest::release_manifest(release) };
        let keys = &production.policy.signing_keys;
        match self.rollout.supply_chain.facts(release, &production.policy.signers()).await {
            Ok(facts) => crate::manifest::release_manifest_with(release, &manifest_refs(&facts, keys)),
            // A key that cannot be read leaves the manifest without what it would vouch for.
            Err(DomainError::Unresolvable(why)) => {
                tracing::warn!(why = %why, "the manifest names no supply chain");
                crate::manifest::release_manifest(release)
            }
            Err(err) => Err(err),
        }
    }
}
