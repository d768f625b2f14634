//! The supply chain in GraphQL: an environment's signing keys, and a dry run of a
//! promotion's gates that shows what is verified about each component and the policy's
//! reasons.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use gantry_domain::DomainError;
use gantry_domain::access::{Action, Principal, Resource};
use gantry_domain::promotions::{PolicyEvaluation, Promotions};
use gantry_domain::signatures::{KeyGiven, SignatureVerdict, TrustedKey};
use gantry_domain::supply_chain::ComponentFacts;
use gantry_domain::values::{EnvironmentId, ReleaseId};

use crate::delivery::promotions::GateResult;
use crate::error::IntoGraphql;
use crate::guard::Can;

/// A public key that signatures of images promoted into an environment must verify under.
pub struct SigningKey(pub TrustedKey);

#[Object]
impl SigningKey {
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The PEM `PUBLIC KEY` (ECDSA P-256); null for a key given by reference.
    async fn pem(&self) -> Option<&str> {
        self.0.reference.is_none().then_some(self.0.pem.as_str())
    }
    /// Where a key given by reference is kept (read when signatures are checked).
    async fn key_ref(&self) -> Option<&str> {
        self.0.reference.as_deref()
    }
    /// The sha256 of the key's DER (SubjectPublicKeyInfo), as
    /// `openssl pkey -pubin -outform DER | sha256sum` prints it; null for a key given by
    /// reference.
    async fn fingerprint(&self) -> Option<String> {
        self.0.reference.is_none().then(|| self.0.fingerprint().to_string())
    }
}

/// A cosign public key: a name, and either the PEM `cosign generate-key-pair` writes
/// (`cosign.pub`) or where it is kept: `secretsmanager:<name>`, `ssm:/<path>` or
/// `env:COSIGN_<NAME>`, read when signatures are checked (so a rotated key takes effect
/// within five minutes).
#[derive(InputObject)]
pub struct SigningKeyInput {
    pub name: String,
    pub pem: Option<String>,
    pub key_ref: Option<String>,
}

impl SigningKeyInput {
    /// The name and the key as given; exactly one of `pem` and `keyRef`.
    pub fn given(self) -> async_graphql::Result<(String, KeyGiven)> {
        match (self.pem, self.key_ref) {
            (Some(pem), None) => Ok((self.name, KeyGiven::Pem(pem))),
            (None, Some(reference)) => Ok((self.name, KeyGiven::Reference(reference))),
            _ => Err(DomainError::validation(format!("signing key {}: give exactly one of pem and keyRef", self.name)))
                .gql(),
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum SignatureVerdictKind {
    /// A signature of the digest verifies under a trusted key, or a trusted identity made it.
    Verified,
    /// No signature is stored for the digest.
    Unsigned,
    /// Signatures are stored, and none stands under a trusted key.
    Refused,
}

/// A component's count of vulnerability findings of one severity.
#[derive(SimpleObject)]
pub struct SeverityCount {
    /// `critical`, `high`, `medium`, `low` or `unknown`.
    pub severity: String,
    pub count: u32,
}

/// What is verified about one component's digest.
pub struct ComponentSupplyChain(ComponentFacts);

#[Object]
impl ComponentSupplyChain {
    async fn component(&self) -> &str {
        &self.0.component
    }
    async fn digest(&self) -> String {
        self.0.digest.to_string()
    }
    async fn signature(&self) -> SignatureVerdictKind {
        match self.0.signature {
            SignatureVerdict::Verified { .. } => SignatureVerdictKind::Verified,
            SignatureVerdict::Unsigned => SignatureVerdictKind::Unsigned,
            SignatureVerdict::Refused { .. } => SignatureVerdictKind::Refused,
        }
    }
    /// What a verified keyless signature's certificate names.
    async fn certificate(&self) -> Option<crate::delivery::keyless::CertificateIdentity> {
        crate::delivery::keyless::certificate(&self.0.signature)
    }
    /// The key a verified signature verifies under (or the signing identity it matched).
    async fn key(&self) -> Option<&str> {
        match &self.0.signature {
            SignatureVerdict::Verified { key, .. } => Some(key),
            _ => None,
        }
    }
    /// Why stored signatures and attestations were refused.
    async fn refusals(&self) -> Vec<String> {
        let signature = match &self.0.signature {
            SignatureVerdict::Refused { reasons } => reasons.clone(),
            _ => Vec::new(),
        };
        [signature, self.0.facts.refused.clone()].concat()
    }
    /// The builder ids of its verified provenance.
    async fn builders(&self) -> Vec<String> {
        self.0.facts.provenance.iter().filter_map(|p| p.builder_id.clone()).collect()
    }
    /// The commits its verified provenance names.
    async fn commits(&self) -> Vec<String> {
        self.0.facts.provenance.iter().filter_map(|p| p.commit.clone()).collect()
    }
    /// The formats of its verified SBOMs (`spdx`, `cyclonedx`).
    async fn sboms(&self) -> Vec<&str> {
        self.0.facts.sboms.iter().map(|s| s.format.as_str()).collect()
    }
    /// Findings of its verified vulnerability scans, by severity.
    async fn vulnerabilities(&self) -> Vec<SeverityCount> {
        let mut counts = std::collections::BTreeMap::<&str, u32>::new();
        for v in &self.0.facts.vulnerabilities {
            *counts.entry(v.severity.as_str()).or_default() += 1;
        }
        counts.into_iter().map(|(severity, count)| SeverityCount { severity: severity.to_owned(), count }).collect()
    }
    /// Vulnerabilities a verified VEX statement says it is not affected by.
    async fn not_affected(&self) -> Vec<&str> {
        let vex = &self.0.facts.vex;
        vex.iter().filter(|v| v.status == "not_affected").map(|v| v.vulnerability.as_str()).collect()
    }
    /// Where its attestations are stored.
    async fn attestation_ref(&self) -> Option<&str> {
        self.0.attestation_ref.as_deref()
    }
}

/// What a promotion of a release into an environment would meet now.
#[derive(SimpleObject)]
pub struct PolicyVerdict {
    /// Whether every gate passes.
    pub allowed: bool,
    pub gates: Vec<GateResult>,
    /// The sha256 of the admission policy that decided; null when the environment has no
    /// supply-chain gate.
    pub policy: Option<String>,
    /// The admission policy's reasons to refuse, each naming the component and the rule.
    pub denials: Vec<String>,
    /// What is verified about each component; empty without a supply-chain gate.
    pub components: Vec<ComponentSupplyChain>,
}

impl From<PolicyEvaluation> for PolicyVerdict {
    fn from(e: PolicyEvaluation) -> Self {
        let allowed = e.allowed();
        let gates = e.gates.iter().map(GateResult::from).collect();
        match e.supply_chain {
            None => Self { allowed, gates, policy: None, denials: Vec::new(), components: Vec::new() },
            Some(v) => Self {
                allowed,
                gates,
                policy: Some(v.policy.to_string()),
                denials: v.denials,
                components: v.components.into_iter().map(ComponentSupplyChain).collect(),
            },
        }
    }
}

#[derive(Default)]
pub struct SignatureQuery;

#[Object]
impl SignatureQuery {
    /// A dry run: the gates a promotion of the release into the environment would meet now,
    /// the supply-chain gate included, each with its reasons. Nothing is written.
    #[graphql(guard = "Can(Resource::Promotion, Action::Read)")]
    async fn evaluate_policy(
        &self,
        ctx: &Context<'_>,
        release_id: ID,
        environment_id: ID,
    ) -> async_graphql::Result<PolicyVerdict> {
        let release = ReleaseId::parse(&release_id).gql()?;
        let environment = EnvironmentId::parse(&environment_id).gql()?;
        let promotions = ctx.data_unchecked::<Promotions>();
        let asker = ctx.data_unchecked::<Principal>();
        promotions.evaluate_policy(release, environment, asker).await.gql().map(PolicyVerdict::from)
    }
}
