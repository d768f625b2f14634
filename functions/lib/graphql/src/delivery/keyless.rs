//! Keyless signers in GraphQL: an environment's signing identities and Sigstore trust root,
//! what a keyless signature's certificate named, and `setEnvironmentPolicy`, which sets the
//! admission policy alone.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use gantry_domain::access::{Action, Resource};
use gantry_domain::service::{EnvironmentPatch, PolicySource};
use gantry_domain::signatures::{SignatureVerdict, SigningIdentity};
use gantry_domain::values::EnvironmentId;

use crate::delivery::environments::Environment;
use crate::error::IntoGraphql;
use crate::guard::Can;

/// A keyless signer: the identity a Fulcio certificate names (an email, or a CI workflow's
/// URI) and the OIDC issuer that vouched for it.
pub struct SigningIdentityView(pub SigningIdentity);

#[Object(name = "SigningIdentity")]
impl SigningIdentityView {
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn issuer(&self) -> &str {
        &self.0.issuer
    }
    /// The identity, exactly; null when `subjectRegexp` is set.
    async fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }
    /// A regular expression the whole identity must match.
    async fn subject_regexp(&self) -> Option<&str> {
        self.0.subject_regexp.as_deref()
    }
}

/// A keyless signer: a name, the OIDC issuer's URL (exactly), and exactly one of `subject`
/// (the certificate's identity, exactly) and `subjectRegexp` (a regular expression the
/// whole identity must match).
#[derive(InputObject)]
pub struct SigningIdentityInput {
    pub name: String,
    pub issuer: String,
    pub subject: Option<String>,
    pub subject_regexp: Option<String>,
}

impl SigningIdentityInput {
    pub fn parse(self) -> async_graphql::Result<SigningIdentity> {
        SigningIdentity::parse(&self.name, &self.issuer, self.subject.as_deref(), self.subject_regexp.as_deref()).gql()
    }
}

/// What a keyless signature's certificate named, and where the log put it.
#[derive(SimpleObject)]
pub struct CertificateIdentity {
    pub subject: String,
    pub issuer: String,
    /// The signature's index in the transparency log, when its bundle is stored.
    pub rekor_log_index: Option<u64>,
    /// When the log says it logged it.
    pub logged_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The certificate identity of a verified keyless signature.
pub fn certificate(verdict: &SignatureVerdict) -> Option<CertificateIdentity> {
    match verdict {
        SignatureVerdict::Verified { identity: Some(identity), log, .. } => Some(CertificateIdentity {
            subject: identity.subject.clone(),
            issuer: identity.issuer.clone(),
            rekor_log_index: log.as_ref().map(|l| l.log_index),
            logged_at: log.as_ref().and_then(|l| chrono::DateTime::from_timestamp(l.integrated_time, 0)),
        }),
        _ => None,
    }
}

#[derive(Default)]
pub struct AdmissionMutation;

#[Object]
impl AdmissionMutation {
    /// Sets an environment's admission policy (Rego: package `gantry.admission` with a
    /// `deny` set of reasons), compiled first and refused with nothing written when it
    /// does not compile. An empty string restores the default policy.
    #[graphql(guard = "Can(Resource::Environment, Action::Update)")]
    async fn set_environment_policy(
        &self,
        ctx: &Context<'_>,
        environment_id: ID,
        policy: String,
    ) -> async_graphql::Result<Environment> {
        let id = EnvironmentId::parse(&environment_id).gql()?;
        let patch = EnvironmentPatch { admission_policy: PolicySource(Some(policy)), ..Default::default() };
        let environments = ctx.data_unchecked::<gantry_domain::service::Environments>();
        environments.update_environment(id, patch).await.gql().map(Environment)
    }
}
