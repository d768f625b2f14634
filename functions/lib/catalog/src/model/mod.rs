//! The entities Gantry manages, and the rules that govern how they change.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Result};
use crate::ids::{ComponentId, ReleaseId, VersionMapId};
use crate::values::{Channel, Digest, ImageRepository, Name};

/// A container image that Gantry releases: one OCI repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub id: ComponentId,
    pub name: Name,
    pub display_name: Option<String>,
    pub image_repository: ImageRepository,
    pub registry_integration_id: Option<String>,
    pub versioning_strategy: VersioningStrategy,
    pub default_channel: Channel,
    /// Cut a release whenever a new stable version arrives from the registry.
    #[serde(default)]
    pub auto_release: Option<AutoRelease>,
    /// Pre-release names mapped to channels, ahead of the usual `rc.1` → `rc` rule
    /// (such as `preview` → `beta`).
    #[serde(default)]
    pub channel_overrides: std::collections::BTreeMap<String, Channel>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped on every write; updates are conditional on it.
    pub revision: u64,
}

impl Component {
    /// The channel a version of this component lands on: an override for its pre-release
    /// name if there is one, else the pre-release name itself, else the default channel.
    pub fn channel_for(&self, version: &semver::Version) -> Channel {
        let name = prerelease_name(version);
        self.channel_overrides
            .get(&name)
            .cloned()
            .unwrap_or_else(|| Channel::for_version(version, &self.default_channel))
    }
}

pub use crate::values::prerelease_name;

/// Where a promotion stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromotionStatus {
    PendingApproval,
    Approved,
    Deploying,
    Deployed,
    Rejected,
    Cancelled,
    Failed,
    RolledBack,
}

impl PromotionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingApproval => "pending_approval",
            Self::Approved => "approved",
            Self::Deploying => "deploying",
            Self::Deployed => "deployed",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
        }
    }

    /// A promotion that holds its environment: only one at a time.
    pub fn is_active(self) -> bool {
        matches!(self, Self::PendingApproval | Self::Approved | Self::Deploying)
    }
}

/// Checks channel overrides: keys are pre-release names (lowercase letters), values channels.
pub fn channel_overrides(pairs: Vec<(String, String)>) -> Result<std::collections::BTreeMap<String, Channel>> {
    let mut map = std::collections::BTreeMap::new();
    for (prerelease, channel) in pairs {
        if prerelease.is_empty() || !prerelease.chars().all(|c| c.is_ascii_lowercase()) {
            return Err(DomainError::validation(format!(
                "pre-release name {prerelease:?} must be lowercase letters, such as preview"
            )));
        }
        if map.insert(prerelease.clone(), Channel::parse(&channel)?).is_some() {
            return Err(DomainError::validation(format!("pre-release name {prerelease:?} is mapped twice")));
        }
    }
    Ok(map)
}

/// A component's policy for releasing new stable versions by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoRelease {
    /// The release name, with `{component}` and `{version}` filled in.
    pub name_pattern: String,
}

impl AutoRelease {
    pub fn parse(name_pattern: &str) -> Result<Self> {
        let sample = Self { name_pattern: name_pattern.to_owned() }.render("component", &semver::Version::new(1, 2, 3));
        crate::values::Name::parse(&sample)
            .map_err(|_| DomainError::validation(format!("autoRelease name pattern {name_pattern:?} must make a valid release name, such as \"{{component}}-{{version}}\"")))?;
        if !name_pattern.contains("{version}") {
            return Err(DomainError::validation(
                "autoRelease name pattern must contain {version}, so each release gets its own name",
            ));
        }
        Ok(Self { name_pattern: name_pattern.to_owned() })
    }

    pub fn render(&self, component: &str, version: &semver::Version) -> String {
        self.name_pattern.replace("{component}", component).replace("{version}", &version.to_string())
    }
}

/// How a component's tags become versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VersioningStrategy {
    /// Tags are semantic versions (`v2.3.1`, `2.4.0-rc.1`).
    #[default]
    Semver,
}

/// Where a version map came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionSource {
    Manual,
    Webhook,
    Sync,
    /// Reported by CI with a build.
    Ci,
}

/// A tag of a component pinned to the digest it pointed at, with its semver and channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionMap {
    pub id: VersionMapId,
    pub component_id: ComponentId,
    pub tag: String,
    pub digest: Digest,
    pub semver: semver::Version,
    pub channel: Channel,
    pub pushed_at: DateTime<Utc>,
    pub source: VersionSource,
    /// The tag was deleted at the registry; kept as history, never chosen for a release.
    #[serde(default)]
    pub removed: bool,
    /// The digest a webhook claimed when it disagreed with the registry (which won).
    #[serde(default)]
    pub payload_digest: Option<Digest>,
}

/// Checks an image tag as the OCI distribution spec defines it.
pub fn validate_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(DomainError::validation(format!(
            "tag {tag:?} must be 1-128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        )))
    }
}

/// Where a release sits in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseStatus {
    Draft,
    Ready,
    Promoting,
    Deployed,
    Deprecated,
}

impl ReleaseStatus {
    pub const ALL: [ReleaseStatus; 5] = [Self::Draft, Self::Ready, Self::Promoting, Self::Deployed, Self::Deprecated];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Ready => "ready",
            Self::Promoting => "promoting",
            Self::Deployed => "deployed",
            Self::Deprecated => "deprecated",
        }
    }

    /// The moves the release lifecycle allows. `deprecated` is final.
    pub fn can_become(self, next: ReleaseStatus) -> bool {
        use ReleaseStatus::*;
        matches!(
            (self, next),
            (Draft, Ready)
                | (Ready, Draft)
                | (Ready, Promoting)
                | (Promoting, Deployed)
                | (Promoting, Ready)
                | (Deployed, Promoting)
                | (Draft | Ready | Promoting | Deployed, Deprecated)
        )
    }

    /// `promoting` and `deployed` follow promotions; people set the others.
    pub fn is_user_settable(self) -> bool {
        matches!(self, Self::Draft | Self::Ready | Self::Deprecated)
    }

    /// A release in flight or running somewhere must not disappear.
    pub fn is_deletable(self) -> bool {
        matches!(self, Self::Draft | Self::Ready | Self::Deprecated)
    }

    /// Checks a status change asked for by a person.
    pub fn check_user_transition(self, next: ReleaseStatus) -> Result<()> {
        if self == next {
            return Ok(());
        }
        if !next.is_user_settable() {
            return Err(DomainError::validation(format!(
                "status {} is set by promotions, not by updateRelease",
                next.as_str()
            )));
        }
        if !self.can_become(next) {
            return Err(DomainError::conflict(format!("a {} release cannot become {}", self.as_str(), next.as_str())));
        }
        Ok(())
    }
}

/// One component of a release, pinned by digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseComponent {
    pub component_id: ComponentId,
    /// The component's name when the release was cut.
    pub component_name: String,
    /// The component's image repository when the release was cut.
    pub image: String,
    pub tag: String,
    pub version: semver::Version,
    pub digest: Digest,
    pub channel: Channel,
}

/// The source-control commit a release was cut from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    pub scm_integration_id: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    #[serde(alias = "commit")]
    pub commit_sha: Option<String>,
    pub tag: Option<String>,
    /// When the commit was made: where lead time for changes starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<DateTime<Utc>>,
}

impl SourceRef {
    /// The reference with each field bounded and the commit a full sha.
    pub fn checked(self) -> Result<Self> {
        use crate::values::plain_text;
        Ok(Self {
            scm_integration_id: plain_text("sourceRef.scmIntegrationId", self.scm_integration_id, 128)?,
            repository: plain_text("sourceRef.repository", self.repository, 512)?,
            branch: plain_text("sourceRef.branch", self.branch, 255)?,
            commit_sha: self.commit_sha.as_deref().map(crate::values::commit_sha).transpose()?,
            tag: plain_text("sourceRef.tag", self.tag, 255)?,
            committed_at: self.committed_at,
        })
    }

    /// Whether it names a commit in a CI integration's repository: what deployment
    /// reports are posted to.
    pub fn names_a_ci_commit(&self) -> bool {
        self.scm_integration_id.is_some() && self.repository.is_some() && self.commit_sha.is_some()
    }
}

/// An immutable bundle of component digests that moves through environments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    pub id: ReleaseId,
    pub name: Name,
    pub display_name: Option<String>,
    pub status: ReleaseStatus,
    pub components: Vec<ReleaseComponent>,
    pub source_ref: Option<SourceRef>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub revision: u64,
}

impl Release {
    /// At most this many components fit in one release, so that creating or deleting one
    /// stays within a single DynamoDB transaction.
    pub const MAX_COMPONENTS: usize = 40;

    /// Whether its promotions are reported to a CI system: its sourceRef names a commit
    /// in a CI integration's repository.
    pub fn reports_to_ci(&self) -> bool {
        self.source_ref.as_ref().is_some_and(SourceRef::names_a_ci_commit)
    }

    pub fn uses(&self, component: ComponentId) -> bool {
        self.components.iter().any(|c| c.component_id == component)
    }
}

mod recent;
mod records;
pub use recent::*;
pub use records::*;

/// A component present in one release of a comparison and absent from the other.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentRef {
    pub component_id: ComponentId,
    pub component_name: String,
}

/// A component whose digest differs between two releases.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentChange {
    pub component_id: ComponentId,
    pub component: String,
    pub from_version: semver::Version,
    pub to_version: semver::Version,
    pub from_digest: Digest,
    pub to_digest: Digest,
}

/// What changes when moving from one release to another.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReleaseComparison {
    pub added: Vec<ComponentRef>,
    pub removed: Vec<ComponentRef>,
    pub changed: Vec<ComponentChange>,
}

/// Compares `from` with `to`: `added` are in `to` only, `removed` in `from` only,
/// and `changed` are in both with different digests.
pub fn compare(from: &Release, to: &Release) -> ReleaseComparison {
    let find = |r: &Release, id: ComponentId| r.components.iter().find(|c| c.component_id == id).cloned();
    let as_ref =
        |c: &ReleaseComponent| ComponentRef { component_id: c.component_id, component_name: c.component_name.clone() };
    let mut out = ReleaseComparison::default();
    for new in &to.components {
        match find(from, new.component_id) {
            None => out.added.push(as_ref(new)),
            Some(old) if old.digest != new.digest => out.changed.push(ComponentChange {
                component_id: new.component_id,
                component: new.component_name.clone(),
                from_version: old.version.clone(),
                to_version: new.version.clone(),
                from_digest: old.digest.clone(),
                to_digest: new.digest.clone(),
            }),
            Some(_) => {}
        }
    }
    out.removed = from.components.iter().filter(|c| find(to, c.component_id).is_none()).map(as_ref).collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{component, release};
    use crate::values::{ImageRepository, Name};

    #[test]
    fn components_can_override_channels() {
        let now = Utc::now();
        let mut component = Component {
            id: ComponentId::new(),
            name: Name::parse("api").unwrap(),
            display_name: None,
            image_repository: ImageRepository::parse("acme/api").unwrap(),
            registry_integration_id: None,
            versioning_strategy: VersioningStrategy::Semver,
            default_channel: Channel::stable(),
            auto_release: None,
            channel_overrides: channel_overrides(vec![("preview".into(), "beta".into())]).unwrap(),
            created_at: now,
            updated_at: now,
            revision: 1,
        };
        let v = |s: &str| crate::values::parse_semver(s).unwrap();
        assert_eq!(component.channel_for(&v("2.0.0-preview.3")).as_str(), "beta");
        assert_eq!(component.channel_for(&v("2.0.0-rc.1")).as_str(), "rc");
        assert_eq!(component.channel_for(&v("2.0.0")).as_str(), "stable");
        component.default_channel = Channel::parse("main").unwrap();
        assert_eq!(component.channel_for(&v("2.0.0")).as_str(), "main");
        assert!(channel_overrides(vec![("Preview".into(), "beta".into())]).is_err());
        assert!(channel_overrides(vec![("preview".into(), "Beta".into())]).is_err());
        assert!(channel_overrides(vec![("a".into(), "x".into()), ("a".into(), "y".into())]).is_err());
    }

    #[test]
    fn deprecated_is_final() {
        for next in ReleaseStatus::ALL {
            if next != ReleaseStatus::Deprecated {
                assert!(!ReleaseStatus::Deprecated.can_become(next), "deprecated -> {next:?}");
                assert!(ReleaseStatus::Deprecated.check_user_transition(next).is_err());
            }
        }
    }

    #[test]
    fn users_cannot_set_promotion_statuses() {
        let err = ReleaseStatus::Ready.check_user_transition(ReleaseStatus::Promoting).unwrap_err();
        assert_eq!(err.code(), "BAD_USER_INPUT");
        let err = ReleaseStatus::Ready.check_user_transition(ReleaseStatus::Deployed).unwrap_err();
        assert_eq!(err.code(), "BAD_USER_INPUT");
    }

    #[test]
    fn user_transitions() {
        use ReleaseStatus::*;
        assert!(Draft.check_user_transition(Ready).is_ok());
        assert!(Ready.check_user_transition(Draft).is_ok());
        assert!(Deployed.check_user_transition(Deprecated).is_ok());
        assert!(Draft.check_user_transition(Draft).is_ok(), "no change is always allowed");
        assert_eq!(Deployed.check_user_transition(Draft).unwrap_err().code(), "CONFLICT");
        assert_eq!(Deployed.check_user_transition(Ready).unwrap_err().code(), "CONFLICT");
    }

    #[test]
    fn promotion_edges() {
        use ReleaseStatus::*;
        assert!(Ready.can_become(Promoting));
        assert!(Promoting.can_become(Deployed));
        assert!(Deployed.can_become(Promoting));
        assert!(!Draft.can_become(Promoting), "a draft must be marked ready first");
        assert!(!Draft.can_become(Deployed));
    }

    #[test]
    fn only_idle_releases_are_deletable() {
        use ReleaseStatus::*;
        assert!(Draft.is_deletable() && Ready.is_deletable() && Deprecated.is_deletable());
        assert!(!Promoting.is_deletable() && !Deployed.is_deletable());
    }

    #[test]
    fn tags() {
        for ok in ["v1.0.0", "latest", "1.0.0-rc.1", "_x"] {
            assert!(validate_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", &"a".repeat(129)] {
            assert!(validate_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn comparison_finds_added_removed_changed() {
        let (api, web, worker, legacy) =
            (ComponentId::new(), ComponentId::new(), ComponentId::new(), ComponentId::new());
        let from = release(
            "r",
            vec![
                component(api, "api", "1", "2.3.0"),
                component(web, "web", "2", "1.0.0"),
                component(legacy, "legacy", "3", "0.9.0"),
            ],
        );
        let to = release(
            "r",
            vec![
                component(api, "api", "9", "2.3.1"),
                component(web, "web", "2", "1.0.0"),
                component(worker, "worker", "4", "1.0.0"),
            ],
        );
        let cmp = compare(&from, &to);
        assert_eq!(cmp.added, vec![ComponentRef { component_id: worker, component_name: "worker".into() }]);
        assert_eq!(cmp.removed, vec![ComponentRef { component_id: legacy, component_name: "legacy".into() }]);
        assert_eq!(cmp.changed.len(), 1);
        let change = &cmp.changed[0];
        assert_eq!(
            (change.component.as_str(), change.from_version.to_string(), change.to_version.to_string()),
            ("api", "2.3.0".into(), "2.3.1".into())
        );
        assert_eq!(change.from_digest, Digest::of(b"1"));
        assert_eq!(change.to_digest, Digest::of(b"9"));
        assert_eq!(compare(&from, &from), ReleaseComparison::default());
    }
}
