//! Environments, where delivery begins: the promotion path, each stage's policy, freeze
//! windows and approval channel, and how a release stands along the path. The catalogue
//! below keeps only the records of where releases run, by environment id.

pub mod freeze;
mod service;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use freeze::FreezeWindow;
pub use service::*;

use crate::error::{DomainError, Result};
use crate::ids::EnvironmentId;
use crate::model::{DeploymentStatus, ReleaseEnvironmentRecord};
use crate::values::Name;

/// Environments.
#[async_trait]
pub trait EnvironmentRepository: Send + Sync {
    /// `Conflict` if the name or the order is taken.
    async fn create_environment(&self, environment: &Environment) -> Result<()>;
    async fn get_environment(&self, id: EnvironmentId) -> Result<Option<Environment>>;
    /// In promotion order.
    async fn list_environments(&self) -> Result<Vec<Environment>>;
    async fn update_environment(&self, before: &Environment, after: &Environment) -> Result<()>;
    /// `Conflict` while anything is deployed there.
    async fn delete_environment(&self, environment: &Environment) -> Result<()>;
}

/// Storage for the catalogue and its environments together: what the services above need.
pub trait Repository: gantry_catalog::ports::Repository + EnvironmentRepository {}

impl<T> Repository for T where T: gantry_catalog::ports::Repository + EnvironmentRepository {}

/// A stage on the promotion path, such as `dev`, `staging` or `prod`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    pub id: EnvironmentId,
    pub name: Name,
    pub display_name: Option<String>,
    /// Position on the promotion path; unique, lowest first.
    pub order: u32,
    pub required_approvals: u32,
    /// Who approves, which gates apply, and what happens on its own.
    #[serde(default)]
    pub policy: EnvironmentPolicy,
    /// Where the environment's service is reached; shown with its CI deployments.
    #[serde(default)]
    pub url: Option<String>,
    /// CI pipelines promotions here run before and after deploying, pre-deploy first.
    #[serde(default)]
    pub steps: Vec<crate::steps::StepSpec>,
    /// When promotions into it wait, unless an approver overrides the freeze.
    #[serde(default)]
    pub freeze_windows: Vec<FreezeWindow>,
    /// The Slack channel approval cards of promotions here are posted to.
    #[serde(default)]
    pub slack_channel: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revision: u64,
}

impl Environment {
    pub const MAX_REQUIRED_APPROVALS: u32 = 10;
    pub const MAX_SOAK_MINUTES: u32 = 30 * 24 * 60;
    const MAX_URL: usize = 500;

    /// An environment's `url`: `http(s)://host[:port][/path]`, printable ASCII with no spaces;
    /// an empty string means none.
    pub fn url(raw: &str) -> Result<Option<String>> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let printable = trimmed.chars().all(|c| c.is_ascii_graphic());
        match crate::outbound::http_url(trimmed) {
            Some((url, _)) if printable && url.len() <= Self::MAX_URL => Ok(Some(url.to_owned())),
            _ => {
                let shown: String = trimmed.chars().take(80).collect();
                Err(DomainError::validation(format!("url {shown:?} must be http(s)://host[:port][/path]")))
            }
        }
    }
}

/// An environment's promotion rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvironmentPolicy {
    /// Roles whose holders may approve promotions into this environment.
    pub approver_roles: Vec<crate::access::Role>,
    /// Whether the requester may approve their own promotion.
    pub allow_self_approval: bool,
    /// Gate: the release's commit has a successful CI build.
    pub require_build_success: bool,
    /// Gate: the release has run this long in the previous environment.
    pub min_soak_minutes: u32,
    /// Gate: promotions here are requested by people, never automatically.
    pub manual_only: bool,
    /// A release deployed to the previous environment is proposed here by itself.
    pub auto_promote: bool,
    /// A failed deployment here rolls back by itself.
    pub auto_rollback: bool,
    /// Gate: every component's digest carries a cosign signature that verifies under one
    /// of these keys; no gate when empty.
    pub signing_keys: Vec<crate::signatures::TrustedKey>,
    /// Gate: keyless signatures whose certificate names one of these identities (checked
    /// against `sigstore_trust_root`) stand as signed, as well as the keys'.
    pub signing_identities: Vec<crate::signatures::SigningIdentity>,
    /// The Sigstore trust root keyless signatures are checked against.
    pub sigstore_trust_root: Option<crate::signatures::TrustRoot>,
    /// The builder ids (SLSA `builder.id`) the admission policy trusts.
    pub trusted_builders: Vec<String>,
    /// The Rego admission policy; the default one when unset.
    pub admission_policy: Option<String>,
    /// A deployment rolled back within this many hours counts as a change failure.
    pub change_failure_window_hours: u32,
}

impl EnvironmentPolicy {
    /// The longest change-failure window: 90 days.
    pub const MAX_CHANGE_FAILURE_WINDOW_HOURS: u32 = 2_160;

    /// Whether promotions here pass the supply-chain gate: the environment names signing
    /// keys or an admission policy.
    pub fn guards_supply_chain(&self) -> bool {
        !self.signing_keys.is_empty() || !self.signing_identities.is_empty() || self.admission_policy.is_some()
    }

    /// Who may sign what is promoted here.
    pub fn signers(&self) -> crate::signatures::Signers {
        crate::signatures::Signers {
            keys: self.signing_keys.clone(),
            identities: self.signing_identities.clone(),
            trust_root: self.sigstore_trust_root.clone(),
        }
    }

    /// The admission policy in force: the environment's, else the default.
    pub fn admission_rego(&self) -> &str {
        self.admission_policy.as_deref().unwrap_or(crate::admission::DEFAULT_POLICY)
    }
}

impl Default for EnvironmentPolicy {
    fn default() -> Self {
        Self {
            approver_roles: vec![crate::access::Role::Approver, crate::access::Role::Admin],
            allow_self_approval: false,
            require_build_success: false,
            min_soak_minutes: 0,
            manual_only: false,
            auto_promote: false,
            auto_rollback: false,
            signing_keys: Vec::new(),
            signing_identities: Vec::new(),
            sigstore_trust_root: None,
            trusted_builders: Vec::new(),
            admission_policy: None,
            change_failure_window_hours: 24,
        }
    }
}

/// Changes to an environment's policy: only the fields given change.
#[derive(Debug, Clone, Default)]
pub struct PolicyPatch {
    pub approver_roles: Option<Vec<crate::access::Role>>,
    pub allow_self_approval: Option<bool>,
    pub require_build_success: Option<bool>,
    pub min_soak_minutes: Option<i64>,
    pub manual_only: Option<bool>,
    pub auto_promote: Option<bool>,
    pub auto_rollback: Option<bool>,
    /// The signing keys, each a name and its PEM or reference, replacing the ones set.
    pub signing_keys: Option<Vec<(String, crate::signatures::KeyGiven)>>,
    /// The keyless identities (each checked by `SigningIdentity::parse`), replacing the ones set.
    pub signing_identities: Option<Vec<crate::signatures::SigningIdentity>>,
    /// The Sigstore trust root (`trusted_root.json`); `Some(None)` removes it.
    pub sigstore_trust_root: Option<Option<String>>,
    /// The trusted builder ids, replacing the ones set.
    pub trusted_builders: Option<Vec<String>>,
    /// The admission policy, compiled already (see `admission::checked_policy`); `Some(None)`
    /// removes it.
    pub admission_policy: Option<Option<String>>,
    pub change_failure_window_hours: Option<i64>,
}

impl EnvironmentPolicy {
    /// The policy with `patch` applied, checked.
    pub fn patched(&self, patch: PolicyPatch) -> Result<Self> {
        let mut p = self.clone();
        if let Some(mut roles) = patch.approver_roles {
            if roles.is_empty() {
                return Err(DomainError::validation("approverRoles must name at least one role"));
            }
            // Each role once, in the order first given.
            let mut seen = std::collections::HashSet::new();
            roles.retain(|r| seen.insert(*r));
            p.approver_roles = roles;
        }
        if let Some(minutes) = patch.min_soak_minutes {
            p.min_soak_minutes =
                u32::try_from(minutes).ok().filter(|m| *m <= Environment::MAX_SOAK_MINUTES).ok_or_else(|| {
                    DomainError::validation(format!(
                        "minSoakMinutes must be between 0 and {}",
                        Environment::MAX_SOAK_MINUTES
                    ))
                })?;
        }
        if let Some(hours) = patch.change_failure_window_hours {
            let most = Self::MAX_CHANGE_FAILURE_WINDOW_HOURS;
            p.change_failure_window_hours =
                u32::try_from(hours).ok().filter(|h| (1..=most).contains(h)).ok_or_else(|| {
                    DomainError::validation(format!("changeFailureWindowHours must be between 1 and {most}"))
                })?;
        }
        p.allow_self_approval = patch.allow_self_approval.unwrap_or(p.allow_self_approval);
        p.require_build_success = patch.require_build_success.unwrap_or(p.require_build_success);
        p.manual_only = patch.manual_only.unwrap_or(p.manual_only);
        p.auto_promote = patch.auto_promote.unwrap_or(p.auto_promote);
        p.auto_rollback = patch.auto_rollback.unwrap_or(p.auto_rollback);
        if let Some(keys) = patch.signing_keys {
            p.signing_keys = signing_keys(keys)?;
        }
        if let Some(identities) = patch.signing_identities {
            p.signing_identities = signing_identities(identities)?;
        }
        if let Some(root) = patch.sigstore_trust_root {
            p.sigstore_trust_root = root.as_deref().map(crate::signatures::TrustRoot::parse).transpose()?;
        }
        if !p.signing_identities.is_empty() && p.sigstore_trust_root.is_none() {
            return Err(DomainError::validation(
                "signingIdentities need a sigstoreTrustRoot to check certificates against",
            ));
        }
        if let Some(builders) = patch.trusted_builders {
            p.trusted_builders = trusted_builders(builders)?;
        }
        if let Some(policy) = patch.admission_policy {
            p.admission_policy = policy;
        }
        if p.manual_only && p.auto_promote {
            return Err(DomainError::validation("an environment cannot be both manualOnly and autoPromote"));
        }
        Ok(p)
    }
}

/// Keys checked one by one, at most [`TrustedKey::MAX`](crate::signatures::TrustedKey::MAX),
/// each name once.
fn signing_keys(keys: Vec<(String, crate::signatures::KeyGiven)>) -> Result<Vec<crate::signatures::TrustedKey>> {
    use crate::signatures::TrustedKey;
    if keys.len() > TrustedKey::MAX {
        return Err(DomainError::validation(format!("signingKeys takes at most {} keys", TrustedKey::MAX)));
    }
    let mut parsed: Vec<TrustedKey> = Vec::with_capacity(keys.len());
    for (name, given) in keys {
        let key = TrustedKey::given(&name, &given)?;
        if parsed.iter().any(|k| k.name == key.name) {
            return Err(DomainError::validation(format!("signingKeys names {} twice", key.name)));
        }
        parsed.push(key);
    }
    Ok(parsed)
}

/// Identities each named once, at most [`SigningIdentity::MAX`](crate::signatures::SigningIdentity::MAX).
fn signing_identities(
    identities: Vec<crate::signatures::SigningIdentity>,
) -> Result<Vec<crate::signatures::SigningIdentity>> {
    use crate::signatures::SigningIdentity;
    if identities.len() > SigningIdentity::MAX {
        return Err(DomainError::validation(format!(
            "signingIdentities takes at most {} identities",
            SigningIdentity::MAX
        )));
    }
    for (i, identity) in identities.iter().enumerate() {
        if identities[..i].iter().any(|other| other.name == identity.name) {
            return Err(DomainError::validation(format!("signingIdentities names {} twice", identity.name)));
        }
    }
    Ok(identities)
}

/// Builder ids trimmed and checked, each once, at most 32.
fn trusted_builders(builders: Vec<String>) -> Result<Vec<String>> {
    const MAX: usize = 32;
    if builders.len() > MAX {
        return Err(DomainError::validation(format!("trustedBuilders takes at most {MAX} builder ids")));
    }
    let mut kept: Vec<String> = Vec::with_capacity(builders.len());
    for raw in builders {
        let id = raw.trim();
        if id.is_empty() || id.len() > 512 || !id.chars().all(|c| c.is_ascii_graphic()) {
            return Err(DomainError::validation("a trusted builder id must be 1 to 512 printable characters"));
        }
        if !kept.iter().any(|k| k == id) {
            kept.push(id.to_owned());
        }
    }
    Ok(kept)
}

/// One row of a release's state: an environment and how the release stands there.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentState {
    pub environment: Environment,
    pub status: DeploymentStatus,
    pub deployed_at: Option<DateTime<Utc>>,
}

/// Every environment in promotion order, with what is recorded for the release there.
pub fn release_state(
    mut environments: Vec<Environment>,
    records: &[ReleaseEnvironmentRecord],
) -> Vec<EnvironmentState> {
    environments.sort_by_key(|e| e.order);
    environments
        .into_iter()
        .map(|environment| {
            let record = records.iter().find(|r| r.environment_id == environment.id);
            EnvironmentState {
                status: record.map_or(DeploymentStatus::NotDeployed, |r| r.status),
                deployed_at: record.and_then(|r| r.deployed_at),
                environment,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ReleaseId;
    use crate::model::{DeploymentStatus, ReleaseEnvironmentRecord};

    #[test]
    fn policies_patch_and_check() {
        let p = EnvironmentPolicy::default();
        assert!(
            p.patched(PolicyPatch { manual_only: Some(true), auto_promote: Some(true), ..Default::default() }).is_err()
        );
        assert!(p.patched(PolicyPatch { approver_roles: Some(vec![]), ..Default::default() }).is_err());
        use crate::access::Role;
        let repeated = PolicyPatch { approver_roles: Some(vec![Role::Admin; 1_000]), ..Default::default() };
        assert_eq!(p.patched(repeated).unwrap().approver_roles, [Role::Admin]);
        let mixed = vec![Role::Approver, Role::Admin, Role::Approver, Role::Admin];
        let mixed = PolicyPatch { approver_roles: Some(mixed), ..Default::default() };
        assert_eq!(p.patched(mixed).unwrap().approver_roles, [Role::Approver, Role::Admin], "first-given order");
        assert!(p.patched(PolicyPatch { min_soak_minutes: Some(-1), ..Default::default() }).is_err());
        let q = p
            .patched(PolicyPatch { min_soak_minutes: Some(30), auto_rollback: Some(true), ..Default::default() })
            .unwrap();
        assert_eq!((q.min_soak_minutes, q.auto_rollback, q.manual_only), (30, true, false));
    }

    #[test]
    fn state_lists_every_environment_in_order() {
        let now = Utc::now();
        let env = |name: &str, order| Environment {
            id: EnvironmentId::new(),
            name: Name::parse(name).unwrap(),
            display_name: None,
            order,
            required_approvals: 0,
            policy: EnvironmentPolicy::default(),
            url: None,
            steps: Vec::new(),
            freeze_windows: Vec::new(),
            slack_channel: None,
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        let (prod, dev, staging) = (env("prod", 30), env("dev", 10), env("staging", 20));
        let records = vec![ReleaseEnvironmentRecord {
            release_id: ReleaseId::new(),
            environment_id: dev.id,
            status: DeploymentStatus::Deployed,
            deployed_at: Some(now),
            updated_at: now,
        }];
        let state = release_state(vec![prod, dev, staging], &records);
        let names: Vec<_> = state.iter().map(|s| s.environment.name.to_string()).collect();
        assert_eq!(names, ["dev", "staging", "prod"]);
        assert_eq!(state[0].status, DeploymentStatus::Deployed);
        assert_eq!(state[0].deployed_at, Some(now));
        assert_eq!(state[1].status, DeploymentStatus::NotDeployed);
        assert_eq!(state[2].deployed_at, None);
    }
}
