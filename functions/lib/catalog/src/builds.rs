//! CI build records, linked to commits. CI reports them through the REST API or webhooks;
//! a release whose `sourceRef.commitSha` matches shows them, and promotion gates read them.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::error::{DomainError, Result};
use crate::ids::VersionMapId;
use crate::model::{VersionMap, VersionSource};
use crate::ports::Repository;
use crate::values::{Digest, semver_from_tag};

/// How a build ended (or stands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildStatus {
    Success,
    Failure,
    Running,
    Cancelled,
}

impl BuildStatus {
    /// Reads the words CI systems use: `success`, `SUCCESS`, `failed`, `canceled`, `aborted`, ...
    pub fn parse(raw: &str) -> Result<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "success" | "succeeded" | "passed" => Ok(Self::Success),
            "failure" | "failed" | "error" | "unstable" | "timed_out" => Ok(Self::Failure),
            "running" | "pending" | "in_progress" | "queued" | "created" | "waiting" => Ok(Self::Running),
            "cancelled" | "canceled" | "aborted" | "skipped" => Ok(Self::Cancelled),
            other => Err(DomainError::validation(format!("unknown build status {other:?}"))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TestResults {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// An image a build pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildArtifact {
    pub name: String,
    /// `host/path` of the image.
    pub repository: String,
    pub digest: Digest,
    /// The tag it was pushed under; a semver tag makes a version map.
    pub tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildRecord {
    /// `ci` (the REST API), `jenkins`, `github` or `gitlab`.
    pub source: String,
    pub build_id: String,
    pub commit_sha: String,
    pub status: BuildStatus,
    pub pipeline: Option<String>,
    pub url: Option<String>,
    pub test_results: Option<TestResults>,
    pub artifacts: Vec<BuildArtifact>,
    pub recorded_at: DateTime<Utc>,
    /// When the commit was made, where the CI system says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<DateTime<Utc>>,
}

pub use crate::values::commit_sha;

#[async_trait]
pub trait BuildRepository: Send + Sync {
    /// Stores a build; a later report of the same build (source and id) replaces it.
    async fn record_build(&self, build: &BuildRecord) -> Result<()>;
    async fn builds_for_commit(&self, commit_sha: &str) -> Result<Vec<BuildRecord>>;
}

/// What recording a build did with its artifacts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildOutcome {
    pub version_maps: Vec<VersionMap>,
    /// Artifacts that made no version map, with the reason.
    pub skipped: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct Builds {
    builds: Arc<dyn BuildRepository>,
    repo: Arc<dyn Repository>,
}

impl Builds {
    pub fn new(builds: Arc<dyn BuildRepository>, repo: Arc<dyn Repository>) -> Self {
        Self { builds, repo }
    }

    /// Records a build and turns its tagged artifacts into version maps of the components
    /// that release their repositories.
    #[instrument(skip_all, fields(source = %build.source, build_id = %build.build_id), err(level = "info"))]
    pub async fn record(&self, build: BuildRecord) -> Result<BuildOutcome> {
        if build.build_id.trim().is_empty() || build.build_id.len() > 200 {
            return Err(DomainError::validation("buildId must be 1-200 characters"));
        }
        commit_sha(&build.commit_sha)?;
        self.builds.record_build(&build).await?;
        let mut outcome = BuildOutcome::default();
        if build.status != BuildStatus::Success {
            return Ok(outcome);
        }
        for artifact in &build.artifacts {
            let skip = |why: &str| (artifact.name.clone(), why.to_owned());
            let Some((tag, semver)) = artifact.tag.as_deref().and_then(|t| semver_from_tag(t).map(|v| (t, v))) else {
                outcome.skipped.push(skip("no semver tag"));
                continue;
            };
            let components = self.repo.components_by_image(&artifact.repository).await?;
            if components.is_empty() {
                outcome.skipped.push(skip("no component releases this repository"));
            }
            for component in components {
                let version = VersionMap {
                    id: VersionMapId::new(),
                    component_id: component.id,
                    tag: tag.to_owned(),
                    digest: artifact.digest.clone(),
                    channel: component.channel_for(&semver),
                    semver: semver.clone(),
                    pushed_at: build.recorded_at,
                    source: VersionSource::Ci,
                    removed: false,
                    payload_digest: None,
                };
                match self.repo.create_version_map(&version).await {
                    Ok(()) => outcome.version_maps.push(version),
                    Err(DomainError::Conflict(_)) => outcome.skipped.push(skip("mapped already")),
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(outcome)
    }

    pub async fn for_commit(&self, commit: &str) -> Result<Vec<BuildRecord>> {
        self.builds.builds_for_commit(&commit_sha(commit)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_shas() {
        assert_eq!(BuildStatus::parse("SUCCESS").unwrap(), BuildStatus::Success);
        assert_eq!(BuildStatus::parse("failed").unwrap(), BuildStatus::Failure);
        assert_eq!(BuildStatus::parse("canceled").unwrap(), BuildStatus::Cancelled);
        assert!(BuildStatus::parse("great").is_err());
        let sha1 = "0123456789ABCDEF0123456789abcdef01234567";
        assert_eq!(commit_sha(sha1).unwrap(), sha1.to_lowercase());
        assert_eq!(commit_sha(&"a".repeat(64)).unwrap().len(), 64);
        for bad in ["abc123def", "abc", &"a".repeat(41), &"g".repeat(40), &"a".repeat(500_000)] {
            let err = commit_sha(bad).unwrap_err().to_string();
            assert!(err.contains("40 or 64 hex") && err.len() < 100, "{err}");
        }
    }
}
