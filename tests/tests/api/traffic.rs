//! Real traffic through a real HAProxy: two containers on the private dockerd answer with
//! their version, and Gantry moves requests between them through HAProxy's Runtime API.

use serde_json::{Value, json};

use crate::support::{TestApp, docker_host};
use gantry_tests::haproxy::Haproxy;
use gantry_tests::routed::{Stage, verdicts};

/// The new version's share of `n` requests, in percent; no request may fail.
fn share(counts: &std::collections::BTreeMap<String, usize>, n: usize) -> f64 {
    assert!(!counts.contains_key("error"), "every request is answered: {counts:?}");
    assert_eq!(counts.values().sum::<usize>(), n);
    100.0 * *counts.get("web 1.1.0").unwrap_or(&0) as f64 / n as f64
}

fn payload(record: &Value) -> Value {
    match &record["payload"] {
        Value::String(text) => serde_json::from_str(text).unwrap(),
        other => other.clone(),
    }
}

/// Each canary step's weight is what 1,000 real requests see (within 5 points), and
/// `promoteFull` skips the steps left: the new version takes every request, the old
/// container is gone, and each router change is sealed in evidence by its sha256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_steps_split_real_requests_by_weight_and_promote_full_skips_the_rest() {
    let strategy = json!({ "canary": { "steps": [
        { "setWeight": 5, "pauseSeconds": 15 }, { "setWeight": 25, "pauseSeconds": 15 },
        { "setWeight": 50, "pauseSeconds": 3600 }] } });
    let stage = Stage::start("roundrobin", |_| strategy.clone()).await;
    let promotion = stage.promote("1.1.0").await;
    let id = promotion["id"].as_str().unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let session = crate::dashboard::sign_in(&stage.app, &http, &stage.app.token).await;
    for weight in [5, 25, 50] {
        stage.holding(id, weight).await;
        let seen = share(&stage.haproxy.split(1000, None).await, 1000);
        assert!((seen - weight as f64).abs() <= 5.0, "at {weight}% the new version answered {seen}%");
        // The promotion's live page shows the weight.
        let (_, live) = crate::dashboard::ui(&stage.app, &http, &session, &format!("/ui/promotions/{id}/live")).await;
        assert!(live.contains(&format!("data-weight=\"{weight}\"")) && live.contains("HOLDING"), "{live}");
    }
    let full = "mutation($id: ID!) { promoteFull(id: $id) { id status } }";
    assert_eq!(stage.app.ok(full, json!({ "id": id })).await["promoteFull"]["status"], "DEPLOYING");
    let done = stage.app.settled(id).await;
    assert_eq!(done["status"], "DEPLOYED", "{done:#}");
    assert_eq!(stage.haproxy.split(200, None).await, [("web 1.1.0".to_owned(), 200)].into());

    let steps = stage.steps(id).await;
    assert_eq!(
        verdicts(&steps),
        ["HOLDING@5", "PASSED@5", "HOLDING@25", "PASSED@25", "HOLDING@50", "SKIPPED@50", "COMPLETED@100"]
    );
    assert_eq!(
        steps[2]["change"]["commands"],
        json!(["set server web/blue weight 75", "set server web/green weight 25"])
    );
    let evidence = stage.evidence(id).await;
    let kinds: Vec<&str> = evidence.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    let asked = kinds.iter().position(|k| *k == "traffic_promote_full").expect("promoteFull is sealed");
    let result = kinds.iter().position(|k| *k == "deployment_result").unwrap();
    assert!(asked < result, "{kinds:?}");
    let sealed = &payload(&evidence[result])[0]["trafficSteps"];
    assert_eq!(sealed[2]["change"]["sha256"], steps[2]["change"]["sha256"], "each change is sealed by its hash");
    let listed = std::process::Command::new("docker")
        .args(["-H", &docker_host(), "ps", "-a", "--format", "{{.Names}} {{.Label \"gantry.slot\"}}"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    let ours: Vec<&str> = listed.lines().filter(|l| l.starts_with(&stage.container)).collect();
    assert_eq!(ours, [format!("{} green", stage.container)], "the old container is gone");
}

/// An analysis that fails at 25% puts every request back on the stable version within a
/// second of its verdict, and the new container is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_analysis_puts_every_request_back_on_the_stable_version_at_once() {
    // The analysis probes the new version's slot: green, as 1.0.0 holds blue.
    let strategy = |haproxy: &Haproxy| {
        let probe = format!("http://127.0.0.1:{}/no-such-page", haproxy.slots[1]);
        json!({ "canary": { "steps": [{ "setWeight": 5, "pauseSeconds": 2 }, { "setWeight": 25, "analysis": {
            "intervalSeconds": 2, "count": 3, "probes": [{ "http": { "url": probe, "expectStatus": 200 } }] } }] } })
    };
    let stage = Stage::start("roundrobin", strategy).await;
    let promotion = stage.promote("1.1.0").await;
    let id = promotion["id"].as_str().unwrap();
    let failed = stage.app.settled(id).await;
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    assert!(failed["reason"].as_str().unwrap().contains("canary analysis failed at 25%"), "{failed:#}");
    let steps = stage.steps(id).await;
    assert_eq!(verdicts(&steps), ["HOLDING@5", "PASSED@5", "HOLDING@25", "FAILED@25", "ROLLED_BACK@0"]);
    let at = |i: usize| chrono::DateTime::parse_from_rfc3339(steps[i]["at"].as_str().unwrap()).unwrap();
    let back = at(4) - at(3);
    assert!(back < chrono::Duration::seconds(1), "every request went back {back} after the verdict");
    assert_eq!(stage.haproxy.split(1000, None).await, [("web 1.0.0".to_owned(), 1000)].into());
}

/// A stage whose 1.1.0 is promoted by an A/B test on header `X-Canary: yes`, which holds;
/// the promotion's id.
async fn holding_ab_test() -> (Stage, String) {
    let strategy = json!({ "abTest": { "header": { "name": "X-Canary", "value": "yes" }, "maxSeconds": 3600 } });
    let stage = Stage::start("roundrobin", |_| strategy.clone()).await;
    let promotion = stage.promote("1.1.0").await;
    let id = promotion["id"].as_str().unwrap().to_owned();
    stage.holding(&id, 0).await;
    (stage, id)
}

/// An A/B test sends requests carrying the header to the new version and no others, until
/// the promotion is aborted: then every request is back on the stable version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ab_test_routes_matching_requests_until_it_is_aborted() {
    let (stage, id) = holding_ab_test().await;
    let id = id.as_str();
    let matching = stage.haproxy.split(200, Some(("X-Canary", "yes"))).await;
    assert_eq!(matching, [("web 1.1.0".to_owned(), 200)].into());
    let others = stage.haproxy.split(200, Some(("X-Canary", "no"))).await;
    assert_eq!(others, [("web 1.0.0".to_owned(), 200)].into());
    assert_eq!(stage.haproxy.split(200, None).await, [("web 1.0.0".to_owned(), 200)].into());

    let abort = "mutation($id: ID!) { abortPromotion(id: $id) { id status } }";
    stage.app.ok(abort, json!({ "id": id })).await;
    let aborted = stage.app.settled(id).await;
    assert_eq!(aborted["status"], "FAILED", "{aborted:#}");
    assert!(aborted["reason"].as_str().unwrap().contains("aborted"), "{aborted:#}");
    assert_eq!(verdicts(&stage.steps(id).await), ["HOLDING@0", "ABORTED@0", "ROLLED_BACK@0"]);
    let matching = stage.haproxy.split(200, Some(("X-Canary", "yes"))).await;
    assert_eq!(matching, [("web 1.0.0".to_owned(), 200)].into(), "the A/B route is gone");
    let kinds: Vec<String> = stage.evidence(id).await.iter().map(|r| r["kind"].as_str().unwrap().to_owned()).collect();
    assert!(kinds.contains(&"traffic_abort".to_owned()), "{kinds:?}");
    // Nothing is left to abort.
    let again = stage.app.gql(abort, json!({ "id": id })).await;
    assert_eq!(again["errors"][0]["extensions"]["code"], "CONFLICT", "{again:#}");
}

/// An aborted rollout lets the requests in flight to the new version finish there: HAProxy
/// tells how many it has in flight to a slot, and the new container is removed only once
/// none is left (removing it at once would cut the request, which HAProxy would then retry
/// on the stable version).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_rollout_lets_requests_in_flight_to_the_new_version_finish() {
    use gantry_domain::traffic::Router;
    let (stage, id) = holding_ab_test().await;
    let id = id.as_str();
    let (router, config) = (gantry_targets::haproxy::Haproxy, stage.haproxy.config());
    assert_eq!(router.in_flight(&config, 1).await.unwrap(), Some(0), "nothing in flight yet");
    let abort = async {
        gantry_tests::eventually(std::time::Duration::from_secs(10), "the slow request in flight", || async {
            (router.in_flight(&config, 1).await.unwrap() == Some(1)).then_some(())
        })
        .await;
        assert_eq!(router.in_flight(&config, 0).await.unwrap(), Some(0), "nothing in flight to the stable slot");
        stage.app.ok("mutation($id: ID!) { abortPromotion(id: $id) { id } }", json!({ "id": id })).await;
        stage.app.settled(id).await
    };
    let (answer, aborted) = tokio::join!(stage.haproxy.slow(Some(("X-Canary", "yes"))), abort);
    assert_eq!(aborted["status"], "FAILED", "{aborted:#}");
    assert_eq!(answer, "web 1.1.0", "answered by the version it reached, which was not cut off");
    assert_eq!(router.in_flight(&config, 1).await.unwrap(), Some(0));
    assert_eq!(stage.haproxy.split(50, Some(("X-Canary", "yes"))).await, [("web 1.0.0".to_owned(), 50)].into());
}

/// An A/B test by cookie: requests carrying `canary=beta` reach the new version until
/// `promoteFull` ends the test, its map entry is removed, and every request goes to the new
/// version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ab_test_by_cookie_ends_when_promoted_in_full() {
    let strategy = json!({ "abTest": { "cookie": { "name": "canary", "value": "beta" }, "maxSeconds": 3600 } });
    let stage = Stage::start("roundrobin", |_| strategy.clone()).await;
    let promotion = stage.promote("1.1.0").await;
    let id = promotion["id"].as_str().unwrap();
    stage.holding(id, 0).await;
    let beta = stage.haproxy.split(200, Some(("Cookie", "theme=dark; canary=beta"))).await;
    assert_eq!(beta, [("web 1.1.0".to_owned(), 200)].into());
    let other = stage.haproxy.split(200, Some(("Cookie", "canary=stable"))).await;
    assert_eq!(other, [("web 1.0.0".to_owned(), 200)].into());
    stage.app.ok("mutation($id: ID!) { promoteFull(id: $id) { id } }", json!({ "id": id })).await;
    assert_eq!(stage.app.settled(id).await["status"], "DEPLOYED");
    assert_eq!(verdicts(&stage.steps(id).await), ["HOLDING@0", "PASSED@0", "COMPLETED@100"]);
    let entries = stage.haproxy.command(&format!("show map {}", stage.haproxy.ab_map()));
    assert_eq!(entries.trim(), "", "the A/B entry is removed");
    assert_eq!(stage.haproxy.split(200, None).await, [("web 1.1.0".to_owned(), 200)].into());
}

/// A router that refuses a change (a static balancing algorithm takes no 25%) fails the
/// promotion, and every request stays on the stable version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_that_refuses_a_change_fails_the_promotion_and_traffic_stays() {
    let strategy = json!({ "canary": { "steps": [{ "setWeight": 25, "pauseSeconds": 5 }] } });
    let stage = Stage::start("source", |_| strategy.clone()).await;
    let promotion = stage.promote("1.1.0").await;
    let id = promotion["id"].as_str().unwrap();
    let failed = stage.app.settled(id).await;
    assert_eq!(failed["status"], "FAILED", "{failed:#}");
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains("the router refused a change") && reason.contains("static LB algorithm"), "{reason}");
    assert_eq!(stage.haproxy.split(500, None).await, [("web 1.0.0".to_owned(), 500)].into());
}

/// Blue/green on Compose: the new stack starts beside the old one, and with requests in
/// flight, a thousand at a time, while the router switches and the old stack stops, not
/// one fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_green_switch_of_a_compose_stack_fails_no_request_in_flight() {
    let stage = Stage::start_as("roundrobin", true, |_| json!({ "blueGreen": true })).await;
    let promotion = stage.promote("1.1.0").await;
    let id = promotion["id"].as_str().unwrap().to_owned();
    let mut seen = std::collections::BTreeMap::new();
    let mut rounds = 0;
    // Requests go on, a thousand at a time, until the switch is over.
    loop {
        for (answer, n) in stage.haproxy.split(1000, None).await {
            *seen.entry(answer).or_insert(0) += n;
        }
        rounds += 1;
        let status = stage.app.promotion(&id).await["status"].as_str().unwrap().to_owned();
        if !["APPROVED", "DEPLOYING"].contains(&status.as_str()) || rounds > 60 {
            break;
        }
    }
    for (answer, n) in stage.haproxy.split(1000, None).await {
        *seen.entry(answer).or_insert(0) += n;
    }
    assert!(!seen.contains_key("error"), "no request failed: {seen:?}");
    assert_eq!(stage.app.settled(&id).await["status"], "DEPLOYED");
    assert_eq!(stage.haproxy.split(200, None).await, [("web 1.1.0".to_owned(), 200)].into());
}

/// Blue/green on a Docker target, without a request failing either; the container taking
/// over carries its slot, and the next rollout goes back to the first slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_green_switch_of_a_container_alternates_slots() {
    let stage = Stage::start("roundrobin", |_| json!({ "blueGreen": true })).await;
    let second = stage.promote("1.1.0").await;
    let (during, settled) =
        tokio::join!(stage.haproxy.split(1000, None), stage.app.settled(second["id"].as_str().unwrap()));
    assert!(!during.contains_key("error"), "no request failed: {during:?}");
    assert_eq!(settled["status"], "DEPLOYED", "{settled:#}");
    assert!(settled["deployments"][0]["message"].as_str().unwrap().contains("(slot green)"), "{settled:#}");
    assert_eq!(stage.haproxy.split(200, None).await, [("web 1.1.0".to_owned(), 200)].into());
    let third = stage.promote("1.0.0").await;
    let settled = stage.app.settled(third["id"].as_str().unwrap()).await;
    assert!(settled["deployments"][0]["message"].as_str().unwrap().contains("(slot blue)"), "{settled:#}");
    assert_eq!(stage.haproxy.split(200, None).await, [("web 1.0.0".to_owned(), 200)].into());
}

/// A router or strategy that cannot work is refused when the target is added, and nothing is
/// written; steering is for approvers, and for a promotion that deploys.
#[tokio::test]
async fn bad_traffic_is_refused_and_steering_needs_a_deploying_promotion() {
    use gantry_domain::access::Role;
    let app = TestApp::spawn().await;
    let web = app.create_component("web").await;
    let dev = app.create_environment("dev", 10).await;
    let slots =
        |a: &str, b: &str| json!([{ "server": a, "env": [{ "key": "PORT", "value": "18081" }] }, { "server": b }]);
    let router = |admin: &str, slots: Value| json!({ "haproxy": { "admin": admin, "backend": "web", "slots": slots } });
    let pause = json!({ "canary": { "steps": [{ "setWeight": 10, "pauseSeconds": 10 }] } });
    let target = |traffic: Value, extra: Value| {
        let mut docker = json!({ "endpoint": "unix:///run/docker.sock", "containerName": "web", "componentId": web,
            "traffic": traffic });
        docker.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({ "name": "host-1", "type": "DOCKER", "docker": docker })
    };
    let local = router("unix:///run/haproxy.sock", slots("blue", "green"));
    let cases = [
        (
            json!({ "router": router("tcp://10.0.0.5:9999", slots("blue", "green")), "strategy": pause }),
            json!({}),
            "loopback",
        ),
        (
            json!({ "router": router("unix:///run/haproxy.sock", slots("blue", "blue")), "strategy": pause }),
            json!({}),
            "same server",
        ),
        (
            json!({ "router": router("unix:///run/haproxy.sock", json!([{ "server": "blue" }])), "strategy": pause }),
            json!({}),
            "exactly two",
        ),
        (
            json!({ "router": local, "strategy": { "canary": { "steps": [{ "setWeight": 50, "pauseSeconds": 5 }, { "setWeight": 20, "pauseSeconds": 5 }] } } }),
            json!({}),
            "never go down",
        ),
        (
            json!({ "router": local, "strategy": { "abTest": { "header": { "name": "X-Canary", "value": "yes" }, "maxSeconds": 60 } } }),
            json!({}),
            "abMap",
        ),
        (json!({ "router": local, "strategy": pause }), json!({ "networkMode": "none" }), "host network"),
    ];
    let add =
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }";
    for (traffic, extra, why) in cases {
        let message =
            app.assert_rejected("BAD_USER_INPUT", add, json!({ "e": dev, "t": target(traffic, extra) })).await;
        assert!(message.contains(why), "{why}: {message}");
    }
    let listed = app.ok("query($e: ID!) { environment(id: $e) { targets { id } } }", json!({ "e": dev })).await;
    assert_eq!(listed["environment"]["targets"], json!([]), "nothing was written");

    let abort = "mutation($id: ID!) { abortPromotion(id: $id) { id } }";
    let viewer = crate::support::token("vera", &[Role::Viewer]);
    let (_, denied) = app.gql_as(Some(&viewer), abort, json!({ "id": uuid::Uuid::new_v4().to_string() })).await;
    assert_eq!(denied["errors"][0]["extensions"]["code"], "FORBIDDEN", "{denied}");
    app.assert_rejected("NOT_FOUND", abort, json!({ "id": uuid::Uuid::new_v4().to_string() })).await;
}
