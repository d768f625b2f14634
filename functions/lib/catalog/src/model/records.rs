//! Where releases run: the records promotions write on a release for each environment it
//! reached, and on an environment for each component running there. Environments themselves
//! (the promotion path and its policies) belong to delivery, above the catalogue.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ComponentId, EnvironmentId, ReleaseId};
use crate::values::{Channel, Digest};

/// How a release stands in one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    NotDeployed,
    Deploying,
    Deployed,
    Failed,
    RolledBack,
    /// A later release was deployed over it.
    Superseded,
}

/// The record promotions write on a release for each environment it reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseEnvironmentRecord {
    pub release_id: ReleaseId,
    pub environment_id: EnvironmentId,
    pub status: DeploymentStatus,
    pub deployed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// The record promotions write on an environment for each component running there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployedComponent {
    pub environment_id: EnvironmentId,
    pub component_id: ComponentId,
    pub release_id: ReleaseId,
    pub digest: Digest,
    pub tag: String,
    pub version: semver::Version,
    pub channel: Channel,
    pub deployed_at: DateTime<Utc>,
}
