//! CI build records, by commit.

use async_trait::async_trait;
use gantry_domain::Result;
use gantry_domain::builds::{BuildRecord, BuildRepository};
use tracing::instrument;

use crate::DynamoRepository;
use crate::codec::{from_items, sdk, to_item};
use crate::keys;

#[async_trait]
impl BuildRepository for DynamoRepository {
    #[instrument(skip_all, fields(source = %build.source, build_id = %build.build_id), err(level = "info"))]
    async fn record_build(&self, build: &BuildRecord) -> Result<()> {
        let item = to_item(build, &keys::build(&build.commit_sha, &build.source, &build.build_id))?;
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(sdk)?;
        Ok(())
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn builds_for_commit(&self, commit_sha: &str) -> Result<Vec<BuildRecord>> {
        from_items(self.partition(&keys::builds_pk(commit_sha), keys::BUILD_PREFIX).await?)
    }
}
