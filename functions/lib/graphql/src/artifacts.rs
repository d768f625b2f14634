//! What a deployment applied (`Deployment.artifact`), its content loaded in one batch for
//! every deployment a request shows.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use async_graphql::{Context, Enum, Object};
use gantry_domain::DomainError;
use gantry_domain::artifacts::{self, ArtifactKey, ArtifactRef};
use gantry_domain::promotions::Promotions;

use crate::error::IntoGraphql;

/// The request's loader of deployments' artifacts.
pub type Artifacts = DataLoader<ArtifactsLoader, HashMapCache>;

pub struct ArtifactsLoader {
    promotions: Promotions,
}

impl ArtifactsLoader {
    pub fn for_request(promotions: Promotions) -> Artifacts {
        crate::loader::for_request(Self { promotions })
    }
}

impl Loader<ArtifactKey> for ArtifactsLoader {
    type Value = artifacts::Artifact;
    type Error = DomainError;

    async fn load(&self, keys: &[ArtifactKey]) -> Result<HashMap<ArtifactKey, Self::Value>, DomainError> {
        Ok(self.promotions.artifacts(keys).await?.into_iter().map(|a| (a.key(), a)).collect())
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "gantry_domain::artifacts::ArtifactKind")]
pub enum ArtifactKind {
    DockerContainer,
    EcsTaskDefinition,
    NomadJob,
    ComposeFile,
}

/// What a deployment applied to its target.
pub struct DeploymentArtifact {
    pub key: ArtifactKey,
    pub reference: ArtifactRef,
}

#[Object]
impl DeploymentArtifact {
    async fn kind(&self) -> ArtifactKind {
        self.reference.kind.into()
    }
    /// `sha256:<hex>` of the content; the deployment's evidence names it.
    async fn sha256(&self) -> &str {
        &self.reference.sha256
    }
    /// Bytes.
    async fn size(&self) -> u64 {
        self.reference.size
    }
    /// The content as applied (JSON, or the compose file's YAML); null when it was too large
    /// to keep.
    async fn content(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let loaded = ctx.data_unchecked::<Artifacts>().load_one(self.key.clone()).await.gql()?;
        Ok(loaded.and_then(|a| a.content))
    }
}
