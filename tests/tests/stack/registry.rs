//! A real registry's push notifications reach the webhooks function's URL; the events
//! queue's event source mapping hands them to the ingest function, which resolves the tag at
//! the registry and records a version map and an auto-release.

use std::time::{Duration, Instant};

use gantry_tests::otlp::OtlpReceiver;
use gantry_tests::registry::{Registry, free_port};
use serde_json::{Value, json};

use crate::support::{Stack, eventually, unique};

/// The collector the test stack's functions export their spans to (`OtlpEndpoint`, set by
/// `make test`).
const OTLP_PORT: u16 = 14318;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_pushes_become_version_maps_and_releases_through_the_lambdas() {
    let stack = Stack::load().await;
    let collector = OtlpReceiver::start_on(OTLP_PORT).await;
    let port = free_port();
    let created = stack
        .ok(
            "mutation($input: CreateRegistryIntegrationInput!) { createRegistryIntegration(input: $input) { integration { id webhookPath } webhookSecret } }",
            json!({ "input": { "name": unique("registry"), "type": "DISTRIBUTION", "url": format!("http://127.0.0.1:{port}") } }),
        )
        .await["createRegistryIntegration"]
        .clone();
    let path = created["integration"]["webhookPath"].as_str().unwrap().trim_start_matches('/');
    let secret = created["webhookSecret"].as_str().unwrap();
    let registry = Registry::start(port, &format!("{}{path}", stack.webhooks_url), secret);
    let name = unique("web");
    let component = stack
        .ok(
            "mutation($input: CreateComponentInput!) { createComponent(input: $input) { id } }",
            json!({ "input": { "name": name, "imageRepository": format!("127.0.0.1:{port}/stack/{name}"),
                               "autoRelease": { "namePattern": "{component}-{version}" } } }),
        )
        .await["createComponent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let pushed_at = Instant::now();
    let digest = registry.push(&format!("stack/{name}"), "1.0.0", "web 1.0.0");
    let versions_query = "query($id: ID!) { componentVersions(componentId: $id) { tag digest semver source } }";
    let version = eventually(Duration::from_secs(60), "the pushed tag's version map", || async {
        let data = stack.ok(versions_query, json!({ "id": component })).await;
        data["componentVersions"].as_array().and_then(|v| v.first().cloned())
    })
    .await;
    println!("registry push to version map through the Lambdas: {} ms", pushed_at.elapsed().as_millis());
    assert_eq!(version["digest"], digest.as_str(), "the registry's digest");
    assert_eq!(version["semver"], "1.0.0");
    assert_eq!(version["tag"], "1.0.0");

    let release_name = format!("{name}-1.0.0");
    let release: Value = eventually(Duration::from_secs(30), "the auto-release", || async {
        let query =
            "query($c: ID!) { releases(componentId: $c, first: 10) { edges { node { name components { digest } } } } }";
        let data = stack.ok(query, json!({ "c": component })).await;
        data["releases"]["edges"]
            .as_array()?
            .iter()
            .map(|e| e["node"].clone())
            .find(|n| n["name"] == release_name.as_str())
    })
    .await;
    assert_eq!(release["components"][0]["digest"], digest.as_str());

    // Each Lambda exported its spans before it answered: the push is one trace from the
    // webhooks function's server span through the queue to ingest's question to the registry.
    let registry_url = format!("http://127.0.0.1:{port}");
    let spans =
        collector.wait_for(30, |spans| spans.iter().any(|s| s.attributes.get("url") == Some(&registry_url))).await;
    let asked = spans.iter().find(|s| s.attributes.get("url") == Some(&registry_url)).expect("ingest's registry span");
    let trace: Vec<_> = spans.iter().filter(|s| s.trace_id == asked.trace_id).collect();
    // The runtime's invocation span is the root; the request's server span is under it.
    let root = trace.iter().find(|s| s.parent_span_id.is_empty()).expect("the trace's root");
    assert_eq!((root.service.as_str(), root.name.as_str()), ("gantry-webhooks", "Lambda runtime invoke"));
    let server = trace.iter().find(|s| s.name == "POST /webhooks/registry/{source}").expect("the server span");
    assert_eq!((server.service.as_str(), server.parent_span_id.as_str()), ("gantry-webhooks", root.span_id.as_str()));
    assert_eq!(asked.service, "gantry-ingest");
    let consumer = trace.iter().find(|s| s.service == "gantry-ingest" && s.kind == 5).expect("ingest's consumer span");
    assert!(trace.iter().any(|s| s.span_id == consumer.parent_span_id && s.service == "gantry-webhooks"), "{trace:#?}");
}
