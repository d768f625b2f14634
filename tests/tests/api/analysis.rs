//! Analysis steps: HTTP probes against a scripted service and Prometheus queries against a
//! scripted stand-in, measured every interval after deploying.

use std::time::Duration;

use gantry_ci::HttpProber;
use gantry_domain::analysis::{Comparison, Condition, Probe, Prober};
use gantry_tests::probes::{Answer, FakePrometheus, Service};
use serde_json::{Value, json};

use crate::support::{TestApp, digest};

const SET: &str = "mutation($e: ID!, $s: [PromotionStepInput!]!) { setEnvironmentSteps(environmentId: $e, steps: $s) {
    steps { name type analysis { http { url expectStatus } prometheus { query op value } intervalSeconds count failureLimit } } } }";
const STEPS: &str = "query($id: ID!) { promotion(id: $id) { status reason
    steps { step { name } state detail measurements { passed detail } } } }";

/// A post-deploy analysis measuring `service` and `error_rate < 0.05` on `prometheus`, every
/// second, `count` times, with `failure_limit` failures allowed.
fn analysis(service: &Service, prometheus: &FakePrometheus, count: u32, failure_limit: u32) -> Value {
    json!({ "name": "canary-analysis", "phase": "POST_DEPLOY", "analysis": {
        "probes": [{ "http": { "url": service.url, "bodyContains": "ok" } },
                   { "prometheus": { "address": prometheus.url, "query": "error_rate", "op": "LT", "value": 0.05 } }],
        "intervalSeconds": 1, "count": count, "failureLimit": failure_limit } })
}

async fn release(app: &TestApp, component: &str, version: &str) -> String {
    app.add_version(component, version, &digest(version)).await;
    app.ready_release(&format!("shop-{version}"), json!([{ "componentId": component, "version": version }])).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_analysis_lets_the_promotion_end_deployed() {
    let app = TestApp::spawn_with_workers().await;
    let (service, prometheus) = (Service::start().await, FakePrometheus::start().await);
    prometheus.script([0.01, 0.02, 0.0]);
    let staging = app.create_environment("staging", 10).await;
    let set = app.ok(SET, json!({ "e": staging, "s": [analysis(&service, &prometheus, 3, 0)] })).await;
    let shown = &set["setEnvironmentSteps"]["steps"][0];
    assert_eq!((shown["type"].as_str(), shown["analysis"]["count"].as_u64()), (Some("ANALYSIS"), Some(3)));
    assert_eq!(shown["analysis"]["prometheus"][0]["op"], "LT");
    let component = app.create_component("api").await;
    let release = release(&app, &component, "1.0.0").await;

    let id = app.request_promotion(&release, &staging).await["id"].as_str().unwrap().to_owned();
    app.settled(&id).await;
    let done = app.ok(STEPS, json!({ "id": id })).await["promotion"].clone();
    assert_eq!(done["status"], "DEPLOYED", "{done:#}");
    let measurements = done["steps"][0]["measurements"].as_array().unwrap();
    assert_eq!(measurements.len(), 3);
    assert!(measurements.iter().all(|m| m["passed"] == true), "{measurements:#?}");
    assert!(measurements[0]["detail"].as_str().unwrap().contains("error_rate = [0.01], lt 0.05"), "{measurements:#?}");
    assert_eq!(prometheus.queries(), ["error_rate"; 3]);
    let kinds = app.evidence_kinds(&id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "analysis_measurement").count(),
        3,
        "every measurement is sealed, the last one with the step's end: {kinds:?}"
    );
    let last = kinds.iter().rposition(|k| k == "analysis_measurement").unwrap();
    assert_eq!(kinds[last + 1], "step_result", "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_analysis_fails_the_promotion_and_rolls_back() {
    let app = TestApp::spawn_with_workers().await;
    let (service, prometheus) = (Service::start().await, FakePrometheus::start().await);
    let prod = app.create_environment("prod", 10).await;
    let component = app.create_component("api").await;
    let first = release(&app, &component, "1.0.0").await;
    assert_eq!(app.promote(&first, &prod).await["status"], "DEPLOYED");
    app.ok(SET, json!({ "e": prod, "s": [analysis(&service, &prometheus, 5, 1)] })).await;
    prometheus.script([0.01, 0.5, 0.6]);
    service.script([Answer { status: 200, delay: Duration::ZERO }]);

    let second = release(&app, &component, "1.1.0").await;
    let id = app.request_promotion(&second, &prod).await["id"].as_str().unwrap().to_owned();
    app.settled(&id).await;
    let done = app.ok(STEPS, json!({ "id": id })).await["promotion"].clone();
    assert_eq!(done["status"], "FAILED", "{done:#}");
    let reason = done["reason"].as_str().unwrap();
    assert!(reason.starts_with("step canary-analysis: 2 of 3 measurements failed (at most 1 may)"), "{reason}");
    assert_eq!(done["steps"][0]["state"], "FAILED");
    // The measurement that failed the analysis is sealed, as structured as the others.
    let q = "query($p: ID!) { evidence(promotionId: $p) { kind payload } }";
    let evidence = app.ok(q, json!({ "p": id })).await["evidence"].clone();
    let sealed: Vec<&Value> =
        evidence.as_array().unwrap().iter().filter(|e| e["kind"] == "analysis_measurement").collect();
    assert_eq!(sealed.len(), 3, "{evidence:#}");
    let last = &sealed[2]["payload"];
    assert_eq!((last["measurement"].as_u64(), last["passed"].as_bool()), (Some(3), Some(false)), "{last:#}");
    assert!(last["at"].as_str().is_some_and(|at| at.contains('T')), "{last:#}");
    assert!(last["detail"].as_str().unwrap().contains("error_rate = [0.6]"), "{last:#}");
    let environment = gantry_tests::rolled_back_to(&app, &prod, &first).await;
    assert!(environment["hold"]["reason"].as_str().unwrap().contains("rollback"), "without autoRollback too");
}

#[tokio::test]
async fn http_probes_check_status_latency_and_body() {
    let service = Service::start().await;
    let prober = HttpProber::default();
    let probe = |expect_status: u16, max_latency_ms: Option<u32>, body: &str| Probe::Http {
        url: service.url.clone(),
        expect_status,
        max_latency_ms,
        body_contains: Some(body.to_owned()),
    };
    assert!(prober.measure(&probe(200, Some(2000), "ok")).await.0);
    service.script([Answer { status: 503, delay: Duration::ZERO }]);
    let (passed, detail) = prober.measure(&probe(200, None, "ok")).await;
    assert!(!passed && detail.contains("status 503, not 200"), "{detail}");
    service.script([Answer { status: 200, delay: Duration::from_millis(300) }]);
    let (passed, detail) = prober.measure(&probe(200, Some(100), "ok")).await;
    assert!(!passed && detail.contains("over 100 ms"), "{detail}");
    let (passed, detail) = prober.measure(&probe(200, None, "healthy")).await;
    assert!(!passed && detail.contains("no \"healthy\" in the body"), "{detail}");
    let gone = Probe::Http {
        url: "http://127.0.0.1:9/".into(),
        expect_status: 200,
        max_latency_ms: None,
        body_contains: None,
    };
    let (passed, detail) = prober.measure(&gone).await;
    assert!(!passed && detail.contains("no answer"), "{detail}");
    let empty = Probe::Prometheus {
        address: FakePrometheus::start().await.url,
        query: " ".into(),
        condition: Condition { op: Comparison::Lt, value: "1".into() },
    };
    let (passed, detail) = prober.measure(&empty).await;
    assert!(!passed && detail.contains("parse error"), "{detail}");
}

#[tokio::test]
async fn bad_analyses_are_refused() {
    let app = TestApp::spawn().await;
    let (service, prometheus) = (Service::start().await, FakePrometheus::start().await);
    let env = app.create_environment("prod", 10).await;
    let before = app.snapshot().await;
    let good = analysis(&service, &prometheus, 3, 0);
    let with = |path: &[&str], value: Value| {
        let mut step = good.clone();
        let mut at = &mut step;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
        step
    };
    for (step, why) in [
        (with(&["phase"], json!("PRE_DEPLOY")), "runs post-deploy"),
        (with(&["integrationId"], json!("0b6b0998-4aac-4743-94c8-b906db3adcef")), "no integrationId"),
        (with(&["analysis", "failureLimit"], json!(3)), "failureLimit below it"),
        (with(&["analysis", "probes"], json!([])), "1 to 10 probes"),
        (with(&["analysis", "probes"], json!([{ "http": { "url": "ftp://x" } }])), "http(s)"),
        (with(&["analysis", "probes"], json!([{}])), "exactly one of http and prometheus"),
    ] {
        let message = app.assert_rejected("BAD_USER_INPUT", SET, json!({ "e": env, "s": [step] })).await;
        assert!(message.contains(why), "{why}: {message}");
    }
    assert_eq!(app.snapshot().await, before);
}
