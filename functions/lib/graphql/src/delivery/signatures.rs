//! Signatures in GraphQL: an environment's signing keys, and a dry run of a promotion's
//! gates that shows each component's signature verdict.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use gantry_domain::access::{Action, Resource};
use gantry_domain::promotions::{PolicyEvaluation, Promotions};
use gantry_domain::signatures::{ComponentVerdict, SignatureVerdict, TrustedKey};
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
    /// The PEM `PUBLIC KEY` (ECDSA P-256).
    async fn pem(&self) -> &str {
        &self.0.pem
    }
    /// The sha256 of the key's DER (SubjectPublicKeyInfo), as `openssl pkey -pubin -outform DER | sha256sum` prints it.
    async fn fingerprint(&self) -> String {
        self.0.fingerprint().to_string()
    }
}

/// A cosign public key: a name, and the PEM `cosign generate-key-pair` writes (`cosign.pub`).
#[derive(InputObject)]
pub struct SigningKeyInput {
    pub name: String,
    pub pem: String,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum SignatureVerdictKind {
    /// A signature of the digest verifies under a trusted key.
    Verified,
    /// No signature is stored for the digest.
    Unsigned,
    /// Signatures are stored, and none stands under a trusted key.
    Refused,
}

/// One component's signature verdict.
#[derive(SimpleObject)]
pub struct ComponentSignature {
    pub component: String,
    pub digest: String,
    pub verdict: SignatureVerdictKind,
    /// The key a verified signature verifies under.
    pub key: Option<String>,
    /// Why each stored signature was refused.
    pub reasons: Vec<String>,
}

impl From<&ComponentVerdict> for ComponentSignature {
    fn from(v: &ComponentVerdict) -> Self {
        let (verdict, key, reasons) = match &v.verdict {
            SignatureVerdict::Verified { key } => (SignatureVerdictKind::Verified, Some(key.clone()), Vec::new()),
            SignatureVerdict::Unsigned => (SignatureVerdictKind::Unsigned, None, Vec::new()),
            SignatureVerdict::Refused { reasons } => (SignatureVerdictKind::Refused, None, reasons.clone()),
        };
        Self { component: v.component.clone(), digest: v.digest.to_string(), verdict, key, reasons }
    }
}

/// What a promotion of a release into an environment would meet now.
#[derive(SimpleObject)]
pub struct PolicyVerdict {
    /// Whether every gate passes.
    pub allowed: bool,
    pub gates: Vec<GateResult>,
    /// Each component's signature verdict; empty when the environment names no signing key.
    pub signatures: Vec<ComponentSignature>,
}

impl From<PolicyEvaluation> for PolicyVerdict {
    fn from(e: PolicyEvaluation) -> Self {
        Self {
            allowed: e.allowed(),
            gates: e.gates.iter().map(GateResult::from).collect(),
            signatures: e.signatures.iter().map(ComponentSignature::from).collect(),
        }
    }
}

#[derive(Default)]
pub struct SignatureQuery;

#[Object]
impl SignatureQuery {
    /// A dry run: the gates a promotion of the release into the environment would meet now,
    /// signatures included, each with its reasons. Nothing is written.
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
        promotions.evaluate_policy(release, environment).await.gql().map(PolicyVerdict::from)
    }
}
