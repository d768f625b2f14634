//! Deployment artifacts: what a deployment applied to its target (the container spec, the
//! ECS task definition, the Nomad job, or the rendered compose file), kept with its sha256.
//! The deployment names it (`kind`, `sha256`, `size`), the `deployment_result` evidence
//! refers to it by that hash, and its content is stored beside the deployment, under that
//! hash.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::{PromotionId, TargetId};

/// The largest content kept (a DynamoDB item holds 400 KB); a larger one keeps its hash.
pub const MAX_STORED: usize = 300 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    /// The Docker Engine's container create body (JSON).
    DockerContainer,
    /// The task definition registered (JSON).
    EcsTaskDefinition,
    /// The job registered (JSON).
    NomadJob,
    /// The compose file deployed (YAML).
    ComposeFile,
}

/// What a driver applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    pub kind: ArtifactKind,
    pub content: String,
}

impl Applied {
    /// A JSON artifact, pretty-printed so it reads and diffs well, with every object's keys
    /// in order: the same value always gives the same bytes (and sha256), whichever process
    /// rendered it (a map's iteration order is not kept).
    pub fn json(kind: ArtifactKind, value: &impl Serialize) -> Self {
        let canonical = serde_json_canonicalizer::to_string(value).unwrap_or_default();
        let sorted: serde_json::Value = serde_json::from_str(&canonical).unwrap_or_default();
        Self { kind, content: serde_json::to_string_pretty(&sorted).unwrap_or_default() }
    }
}

/// How a deployment names its artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactRef {
    pub kind: ArtifactKind,
    /// `sha256:<hex>` of the content.
    pub sha256: String,
    pub size: u64,
}

/// A stored artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub promotion_id: PromotionId,
    pub target_id: TargetId,
    #[serde(flatten)]
    pub reference: ArtifactRef,
    /// `None` when it was larger than [`MAX_STORED`].
    pub content: Option<String>,
    pub stored_at: DateTime<Utc>,
}

/// Which artifact a deployment names: its promotion, its target and the content's sha256.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArtifactKey {
    pub promotion_id: PromotionId,
    pub target_id: TargetId,
    pub sha256: String,
}

impl ArtifactKey {
    /// The artifact `reference` names, of the deployment of `promotion_id` to `target_id`.
    pub fn of(promotion_id: PromotionId, target_id: TargetId, reference: &ArtifactRef) -> Self {
        Self { promotion_id, target_id, sha256: reference.sha256.clone() }
    }
}

impl Artifact {
    /// The key a deployment that names it reads it by.
    pub fn key(&self) -> ArtifactKey {
        ArtifactKey::of(self.promotion_id, self.target_id, &self.reference)
    }

    pub fn seal(promotion_id: PromotionId, target_id: TargetId, applied: Applied, at: DateTime<Utc>) -> Self {
        let sha256 = crate::values::Digest::of(applied.content.as_bytes()).to_string();
        let size = applied.content.len() as u64;
        let content = (applied.content.len() <= MAX_STORED).then_some(applied.content);
        Self {
            promotion_id,
            target_id,
            reference: ArtifactRef { kind: applied.kind, sha256, size },
            content,
            stored_at: at,
        }
    }
}

#[async_trait]
pub trait ArtifactRepository: Send + Sync {
    /// The artifacts these deployments name, in one batch; those not stored are left out.
    async fn artifacts(&self, named: &[ArtifactKey]) -> Result<Vec<Artifact>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artifact_is_named_by_its_content() {
        let (p, t, at) = (PromotionId::new(), TargetId::new(), Utc::now());
        let a = Artifact::seal(p, t, Applied { kind: ArtifactKind::NomadJob, content: "{}".into() }, at);
        assert_eq!(a.reference.sha256, "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        assert_eq!((a.reference.size, a.content.as_deref()), (2, Some("{}")));
        let big = Applied { kind: ArtifactKind::ComposeFile, content: "x".repeat(MAX_STORED + 1) };
        let kept = Artifact::seal(p, t, big, at);
        assert_eq!(
            (kept.content, kept.reference.size),
            (None, MAX_STORED as u64 + 1),
            "too big to keep: its hash stays"
        );
    }
}
