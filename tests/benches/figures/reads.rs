//! GraphQL reads: DynamoDB requests per query as lists grow (N = 10, 50 and 100), and
//! latency beside the raw DynamoDB calls the same answer needs.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use gantry_domain::ids::{ComponentId, ReleaseId};
use gantry_store::keys;
use gantry_tests::app::{TestApp, digest};
use serde_json::{Value, json};

use crate::measure;

/// The queries whose request counts are printed, by the list size they take.
const COUNTED: [(&str, &str); 4] = [
    (
        "releases { state { environments } }",
        "{ releases(first: $N) { edges { node { state { environments { status } } } } } }",
    ),
    (
        "releases { components { componentName } }",
        "{ releases(first: $N) { edges { node { name components { componentName digest } } } } }",
    ),
    ("releases { totalCount }", "{ releases(first: $N) { totalCount edges { node { name } } } }"),
    ("components { versions }", "{ components { name versions(limit: 5) { tag } } }"),
];

/// A store of N components (one version each), N releases of three components each, and
/// three environments, grown in steps.
struct Data {
    components: Vec<String>,
    releases: Vec<Value>,
}

impl Data {
    async fn grow(&mut self, app: &TestApp, n: usize) {
        while self.components.len() < n {
            let name = format!("svc{:03}", self.components.len());
            let id = app.create_component(&name).await;
            app.add_version(&id, "1.0.0", &digest(&name)).await;
            self.components.push(id);
        }
        while self.releases.len() < n {
            let i = self.releases.len();
            let picked: Vec<_> =
                (i..i + 3).map(|c| json!({ "componentId": self.components[c % n], "version": "1.0.0" })).collect();
            self.releases.push(app.create_release(&format!("r{i:03}"), json!(picked)).await);
        }
    }
}

pub async fn run(app: &TestApp, rounds: usize) {
    for (name, order) in [("dev", 1), ("staging", 2), ("prod", 3)] {
        app.create_environment(name, order).await;
    }
    let mut data = Data { components: Vec::new(), releases: Vec::new() };
    let mut counts: HashMap<(&str, usize), usize> = HashMap::new();
    for n in [10, 50, 100] {
        data.grow(app, n).await;
        for (name, query) in COUNTED {
            app.requests.take();
            app.ok(&query.replace("$N", &n.to_string()), json!({})).await;
            counts.insert((name, n), app.requests.take().len());
        }
    }
    println!("\nDynamoDB requests per query           N=10   N=50  N=100");
    for (name, _) in COUNTED {
        println!("  {name:<36}{:>5}  {:>5}  {:>5}", counts[&(name, 10)], counts[&(name, 50)], counts[&(name, 100)]);
    }
    beside_raw(app, &data, rounds).await;
}

/// GraphQL latency beside the raw calls, taken in turns: GetItem + BatchGetItem (of the
/// names only) for one release with its component names; Query + BatchGetItem for a page of
/// 50 releases with theirs. The GraphQL figure includes the HTTP round trip and the client's JSON parse.
async fn beside_raw(app: &TestApp, data: &Data, rounds: usize) {
    let release = data.releases[0]["id"].as_str().unwrap().to_owned();
    let one = json!({ "id": release });
    let one_query = "query($id: ID!) { release(id: $id) { components { componentName } } }";
    let (gantry, raw) = measure::interleaved(
        rounds,
        || async { drop(app.ok(one_query, one.clone()).await) },
        || async {
            let id = ReleaseId::parse(&release).unwrap();
            let item = app.dynamodb.get_item().table_name(&app.table).set_key(Some(keys::release_key(id).primary()));
            let item = item.send().await.unwrap().item.unwrap();
            batch_get_components(app, component_ids(&item)).await;
        },
    )
    .await;
    compare("release(id) { components { componentName } }", &gantry, &raw);

    let page_query = "{ releases(first: 50) { edges { node { name components { componentName digest } } } } }";
    let (gantry, raw) = measure::interleaved(
        rounds,
        || async { drop(app.ok(page_query, json!({})).await) },
        || async {
            let page = app
                .dynamodb
                .query()
                .table_name(&app.table)
                .index_name(keys::GSI1)
                .key_condition_expression("GSI1PK = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(keys::RELEASES.to_owned()))
                .scan_index_forward(false)
                .limit(51)
                .send()
                .await
                .unwrap();
            let mut ids: Vec<String> = page.items().iter().take(50).flat_map(component_ids).collect();
            ids.sort();
            ids.dedup();
            batch_get_components(app, ids).await;
        },
    )
    .await;
    compare("releases(first: 50) with component names", &gantry, &raw);
}

fn compare(what: &str, gantry: &measure::Run, raw: &measure::Run) {
    let ratio = gantry.percentile(0.5).as_secs_f64() / raw.percentile(0.5).as_secs_f64();
    let cpu = |run: &measure::Run| run.cpu / run.samples.len() as u32;
    println!(
        "{what}\n  GraphQL    {}  CPU {:.2?} (client and server)\n  raw calls  {}  CPU {:.2?}\n  GraphQL/raw at p50: {ratio:.2}×",
        gantry.latency(),
        cpu(gantry),
        raw.latency(),
        cpu(raw)
    );
}

/// The component ids a release item names.
fn component_ids(item: &HashMap<String, AttributeValue>) -> Vec<String> {
    let Some(AttributeValue::L(components)) = item.get("components") else { return Vec::new() };
    components.iter().filter_map(|c| c.as_m().ok()?.get("componentId")?.as_s().ok().cloned()).collect()
}

async fn batch_get_components(app: &TestApp, ids: Vec<String>) {
    let keys: Vec<_> = ids.iter().map(|id| keys::component_key(ComponentId::parse(id).unwrap()).primary()).collect();
    for chunk in keys.chunks(100) {
        // The same names-only read the loader makes.
        let wanted = KeysAndAttributes::builder()
            .set_keys(Some(chunk.to_vec()))
            .projection_expression("#id, #name")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#name", "name")
            .build()
            .unwrap();
        let out = app.dynamodb.batch_get_item().request_items(&app.table, wanted).send().await.unwrap();
        assert!(out.unprocessed_keys.unwrap_or_default().is_empty());
    }
}
