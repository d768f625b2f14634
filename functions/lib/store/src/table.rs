//! The table definition. `infra/table.json` is the one source: the local bootstrap hook
//! passes it to `aws dynamodb create-table`, tests create their tables from it here, and a
//! test checks that `infra/template.yaml` declares the same keys and indexes.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};
use serde::Deserialize;

/// `infra/table.json`, compiled in.
pub const TABLE_JSON: &str = include_str!("../../../../infra/table.json");

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableDefinition {
    pub attribute_definitions: Vec<AttributeDef>,
    pub key_schema: Vec<KeyDef>,
    pub global_secondary_indexes: Vec<IndexDef>,
    pub billing_mode: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDef {
    pub attribute_name: String,
    pub attribute_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyDef {
    pub attribute_name: String,
    pub key_type: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexDef {
    pub index_name: String,
    pub key_schema: Vec<KeyDef>,
    pub projection: ProjectionDef,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectionDef {
    pub projection_type: String,
}

pub fn definition() -> TableDefinition {
    serde_json::from_str(TABLE_JSON).expect("infra/table.json is valid")
}

fn key_schema(keys: &[KeyDef]) -> Vec<KeySchemaElement> {
    keys.iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(&k.attribute_name)
                .key_type(KeyType::from(k.key_type.as_str()))
                .build()
                .expect("key schema element is complete")
        })
        .collect()
}

/// Creates a table named `name` from the definition and waits until it is active.
pub async fn create_table(client: &Client, name: &str) -> Result<(), aws_sdk_dynamodb::Error> {
    let def = definition();
    let attributes = def.attribute_definitions.iter().map(|a| {
        AttributeDefinition::builder()
            .attribute_name(&a.attribute_name)
            .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
            .build()
            .expect("attribute definition is complete")
    });
    let indexes = def.global_secondary_indexes.iter().map(|i| {
        GlobalSecondaryIndex::builder()
            .index_name(&i.index_name)
            .set_key_schema(Some(key_schema(&i.key_schema)))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::from(i.projection.projection_type.as_str()))
                    .build(),
            )
            .build()
            .expect("index definition is complete")
    });
    client
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(attributes.collect()))
        .set_key_schema(Some(key_schema(&def.key_schema)))
        .set_global_secondary_indexes(Some(indexes.collect()))
        .billing_mode(BillingMode::from(def.billing_mode.as_str()))
        .send()
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SAM template's table must match `infra/table.json`, which the local stack uses.
    #[test]
    fn template_declares_the_same_table() {
        let template: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(include_str!("../../../../infra/template.yaml")).expect("template.yaml parses");
        let tables: Vec<_> = template["Resources"]
            .as_mapping()
            .expect("Resources")
            .values()
            .filter(|r| r["Type"].as_str() == Some("AWS::DynamoDB::Table"))
            .collect();
        assert_eq!(tables.len(), 1, "one table");
        let props = tables[0]["Properties"].clone();
        let from_template =
            |field: &str| -> serde_json::Value { serde_json::to_value(&props[field]).expect("yaml converts to json") };
        let def = definition();
        let mut want_attrs = def.attribute_definitions.clone();
        let mut got_attrs: Vec<AttributeDef> = serde_json::from_value(from_template("AttributeDefinitions")).unwrap();
        want_attrs.sort();
        got_attrs.sort();
        assert_eq!(got_attrs, want_attrs);
        let got_keys: Vec<KeyDef> = serde_json::from_value(from_template("KeySchema")).unwrap();
        assert_eq!(got_keys, def.key_schema);
        let got_indexes: Vec<IndexDef> = serde_json::from_value(from_template("GlobalSecondaryIndexes")).unwrap();
        assert_eq!(got_indexes, def.global_secondary_indexes);
        assert_eq!(props["BillingMode"].as_str(), Some(def.billing_mode.as_str()));
    }

    /// The SAM template's queues must carry the attributes of `infra/queues.json`.
    #[test]
    fn template_declares_the_same_queues() {
        let template: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(include_str!("../../../../infra/template.yaml")).expect("template.yaml parses");
        let queues: serde_json::Value = serde_json::from_str(include_str!("../../../../infra/queues.json")).unwrap();
        let declared: Vec<_> = template["Resources"]
            .as_mapping()
            .unwrap()
            .values()
            .filter(|r| r["Type"].as_str() == Some("AWS::SQS::Queue"))
            .map(|r| r["Properties"].clone())
            .collect();
        // A parameter stands for its default.
        fn text(template: &serde_yaml_ng::Value, v: &serde_yaml_ng::Value) -> String {
            match v {
                serde_yaml_ng::Value::Bool(b) => b.to_string(),
                serde_yaml_ng::Value::Number(n) => n.to_string(),
                serde_yaml_ng::Value::String(s) => s.clone(),
                serde_yaml_ng::Value::Tagged(t) if t.tag == "Ref" => {
                    let name = t.value.as_str().unwrap_or_default();
                    text(template, &template["Parameters"][name]["Default"])
                }
                other => format!("{other:?}"),
            }
        }
        let wanted = queues["Queues"].as_array().unwrap();
        assert_eq!(declared.len(), wanted.len());
        for queue in wanted {
            let found = declared.iter().any(|props| {
                let attrs_match = queue["Attributes"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| props.get(k.as_str()).map(|p| text(&template, p)).as_deref() == v.as_str());
                // A FIFO queue in one and a standard queue in the other differ too.
                let kind_match = props.get("FifoQueue").map(|p| text(&template, p)).as_deref()
                    == queue["Attributes"].get("FifoQueue").and_then(|v| v.as_str());
                let dead_letter_match = match queue.get("DeadLetter") {
                    None => props.get("RedrivePolicy").is_none(),
                    Some(dl) => props["RedrivePolicy"]["maxReceiveCount"].as_u64() == dl["MaxReceiveCount"].as_u64(),
                };
                attrs_match && kind_match && dead_letter_match
            });
            assert!(found, "template lacks a queue like {queue}");
        }
    }
}
