//! `gantry promote --wait` follows a canary through a real HAProxy, printing each traffic
//! step as the router moves; `gantry promote-full` and `gantry abort` steer one that holds.

use gantry_tests::routed::Stage;
use serde_json::json;

/// Runs `gantry args` against the stage's app: its exit code, stdout and stderr.
async fn gantry(stage: &Stage, args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .env("GANTRY_URL", &stage.app.url)
        .env("GANTRY_TOKEN", &stage.app.token)
        .env("GANTRY_CONFIG", std::env::temp_dir().join(format!("{}.json", stage.container)))
        .output()
        .await
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_wait_prints_each_traffic_step() {
    let steps = json!({ "canary": { "steps": [{ "setWeight": 10, "pauseSeconds": 2 }, { "setWeight": 50, "pauseSeconds": 2 }] } });
    let stage = Stage::start("roundrobin", |_| steps.clone()).await;
    stage.app.ready_release("cli-web-2", json!([{ "componentId": stage.web, "version": "1.1.0" }])).await;
    let (code, _, stderr) =
        gantry(&stage, &["promote", "cli-web-2", "--to", "dev", "--wait", "--timeout", "120"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let steps: Vec<&str> = stderr.lines().filter_map(|l| l.split_once("] host-1: ").map(|(_, step)| step)).collect();
    assert_eq!(
        steps,
        [
            "10% of requests on the new version, HOLDING (paused for 2s)",
            "10% of requests on the new version, PASSED (paused 2s)",
            "50% of requests on the new version, HOLDING (paused for 2s)",
            "50% of requests on the new version, PASSED (paused 2s)",
            "100% of requests on the new version, COMPLETED (every canary step passed)",
        ],
        "{stderr}"
    );
    assert_eq!(stage.haproxy.split(100, None).await, [("web 1.1.0".to_owned(), 100)].into());
}

/// A canary held for an hour: `gantry promote-full` ends it, `gantry abort` undoes the next.
#[tokio::test(flavor = "multi_thread")]
async fn promote_full_and_abort_steer_a_canary_that_holds() {
    let held = json!({ "canary": { "steps": [{ "setWeight": 50, "pauseSeconds": 3600 }] } });
    let stage = Stage::start("roundrobin", |_| held.clone()).await;
    let id = stage.promote("1.1.0").await["id"].as_str().unwrap().to_owned();
    stage.holding(&id, 50).await;
    let (code, stdout, stderr) = gantry(&stage, &["promote-full", &id, "--json"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["status"], "DEPLOYING");
    assert_eq!(stage.app.settled(&id).await["status"], "DEPLOYED");
    assert_eq!(stage.haproxy.split(100, None).await, [("web 1.1.0".to_owned(), 100)].into());

    let id = stage.promote("1.0.0").await["id"].as_str().unwrap().to_owned();
    stage.holding(&id, 50).await;
    let (code, stdout, stderr) = gantry(&stage, &["abort", &id]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("aborting"), "{stdout}");
    assert_eq!(stage.app.settled(&id).await["status"], "FAILED");
    let served = stage.haproxy.split(100, None).await;
    assert_eq!(served, [("web 1.1.0".to_owned(), 100)].into(), "every request is back on the stable version");
    // Nothing deploys any more: there is nothing to abort.
    let (code, _, stderr) = gantry(&stage, &["abort", &id]).await;
    assert_ne!(code, Some(0), "{stderr}");
}
