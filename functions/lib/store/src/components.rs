//! Components: their items, the image index and deletion with their version maps.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use gantry_domain::model::{Component, RecentVersions};
use gantry_domain::ports::ComponentRepository;
use gantry_domain::values::ComponentId;
use gantry_domain::{DomainError, Result};
use tracing::instrument;

use crate::codec::{from_items, to_item};
use crate::keys::{GSI1, GSI2, s};

use crate::Projection;
use crate::keys;
use crate::string_attr;
use crate::versions::RecentItem;
use crate::{DynamoRepository, Tx};

#[async_trait]
impl ComponentRepository for DynamoRepository {
    #[instrument(skip_all, fields(component_id = %component.id), err(level = "info"))]
    async fn create_component(&self, component: &Component) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.put_new(to_item(
                component,
                &keys::component(component.id, component.name.as_str(), component.image_repository.as_str()),
            )?)?,
            DomainError::conflict("component id exists"),
        );
        tx.push(
            self.guard(&keys::unique_name(keys::Named::Component, component.name.as_str()))?,
            DomainError::conflict(format!("a component named {} exists", component.name)),
        );
        let recent = RecentItem::new(component.id, RecentVersions::empty());
        tx.push(
            self.put_new(to_item(&recent, &keys::recent_versions(component.id))?)?,
            DomainError::conflict("component id exists"),
        );
        self.transact(tx).await
    }

    #[instrument(skip_all, fields(component_id = %id), err(level = "info"))]
    async fn get_component(&self, id: ComponentId) -> Result<Option<Component>> {
        self.get(&keys::component_key(id)).await
    }

    #[instrument(skip_all, fields(count = ids.len()), err(level = "info"))]
    async fn get_components(&self, ids: &[ComponentId]) -> Result<Vec<Component>> {
        let keys = ids.iter().copied().map(keys::component_key).collect();
        from_items(self.batch_get(keys).await?)
    }

    #[instrument(skip_all, fields(count = ids.len()), err(level = "info"))]
    async fn component_names(&self, ids: &[ComponentId]) -> Result<Vec<(ComponentId, String)>> {
        const NAMES: Projection = Projection { expression: "#id, #name", names: &[("#id", "id"), ("#name", "name")] };
        let keys = ids.iter().copied().map(keys::component_key).collect();
        let items = self.batch_get_projected(keys, Some(NAMES)).await?;
        items
            .iter()
            .map(|item| {
                let id = ComponentId::parse(&string_attr(item, "id")?)
                    .map_err(|_| DomainError::internal("a stored component id is not a UUID"))?;
                Ok((id, string_attr(item, "name")?))
            })
            .collect()
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn list_components(&self) -> Result<Vec<Component>> {
        let items = self
            .query_all(
                self.query()
                    .index_name(GSI1)
                    .key_condition_expression("GSI1PK = :pk")
                    .expression_attribute_values(":pk", s(keys::COMPONENTS)),
            )
            .await?;
        from_items(items)
    }

    #[instrument(skip_all, fields(component_id = %after.id), err(level = "info"))]
    async fn update_component(&self, before: &Component, after: &Component) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            self.update_revision(
                &keys::component(after.id, after.name.as_str(), after.image_repository.as_str()),
                after,
                before.revision,
            )?,
            DomainError::conflict(format!("component {} changed meanwhile; read it again and retry", before.id)),
        );
        if before.name != after.name {
            tx.push(
                self.delete(&keys::unique_name(keys::Named::Component, before.name.as_str()), None)?,
                DomainError::internal("name guard delete"),
            );
            tx.push(
                self.guard(&keys::unique_name(keys::Named::Component, after.name.as_str()))?,
                DomainError::conflict(format!("a component named {} exists", after.name)),
            );
        }
        self.transact(tx).await
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn components_by_image(&self, image_repository: &str) -> Result<Vec<Component>> {
        let query = self
            .query()
            .index_name(GSI2)
            .key_condition_expression("GSI2PK = :pk")
            .expression_attribute_values(":pk", s(&keys::image_pk(image_repository)));
        from_items(self.query_all(query).await?)
    }

    #[instrument(skip_all, fields(component_id = %component.id), err(level = "info"))]
    async fn delete_component(&self, component: &Component) -> Result<()> {
        let key = keys::component(component.id, component.name.as_str(), component.image_repository.as_str());
        let mut tx = Tx::new();
        tx.push(
            self.delete(
                &key,
                Some((
                    "revision = :rev AND (attribute_not_exists(releaseCount) OR releaseCount = :zero)",
                    vec![
                        (":rev", AttributeValue::N(component.revision.to_string())),
                        (":zero", AttributeValue::N("0".into())),
                    ],
                )),
            )?,
            DomainError::conflict(format!("component {} is used by a release or changed meanwhile", component.name)),
        );
        tx.push(
            self.delete(&keys::unique_name(keys::Named::Component, component.name.as_str()), None)?,
            DomainError::internal("name guard delete"),
        );
        if let Err(err) = self.transact(tx).await {
            // Say which it was: a release still holding the component is the common case.
            let in_use = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key.primary()))
                .send()
                .await
                .ok()
                .and_then(|o| o.item)
                .and_then(|i| i.get("releaseCount").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<u64>().ok()))
                .unwrap_or(0);
            return Err(if in_use > 0 {
                DomainError::conflict(format!(
                    "component {} is used by {in_use} release(s); delete or deprecate them first",
                    component.name
                ))
            } else {
                err
            });
        }
        // The component is gone; sweep its version maps and guards.
        let leftovers = self
            .query_all(
                self.query()
                    .key_condition_expression("PK = :pk")
                    .expression_attribute_values(":pk", s(&keys::component_pk(component.id))),
            )
            .await?;
        self.batch_delete(Self::primary_keys(&leftovers)).await
    }
}
