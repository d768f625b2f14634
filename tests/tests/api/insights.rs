//! Delivery insights: a scripted history's four DORA figures, worked out by hand here from
//! the times the promotions were written, and what reading them costs.

use chrono::{DateTime, Duration, DurationRound, Utc};
use gantry_domain::access::Role;
use gantry_nomad_fake::{FakeNomad, Outcome};
use serde_json::{Value, json};

use crate::support::{TestApp, digest, token};

const INSIGHTS: &str = "query($e: ID!, $from: Date!, $to: Date!) { insights(environmentId: $e, from: $from, to: $to) {
    days figures { deployments succeeded failed rolledBack deploymentsPerDay changeFailureRate
      leadTimeSeconds leadTimeKnown leadTimeUnknown timeToRestoreSeconds restores }
    daily { date succeeded failed rolledBack }
    components { componentName figures { succeeded failed rolledBack leadTimeKnown leadTimeUnknown } } } }";

const SHA1: &str = "1111111111111111111111111111111111111111";
const SHA2: &str = "2222222222222222222222222222222222222222";

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// The promotion's status and when it was last written.
async fn written(app: &TestApp, promotion: &str) -> (String, DateTime<Utc>) {
    let q = "query($id: ID!) { promotion(id: $id) { status updatedAt } }";
    let p = app.ok(q, json!({ "id": promotion })).await["promotion"].clone();
    (p["status"].as_str().unwrap().to_owned(), time(&p["updatedAt"]))
}

/// Promotes a release of `api` (and `web`) at these versions and waits for its end.
async fn promote(app: &TestApp, env: &str, (api, web): (&str, &str), versions: (&str, &str), source: Value) -> String {
    let components =
        json!([{ "componentId": api, "version": versions.0 }, { "componentId": web, "version": versions.1 }]);
    let name = format!("shop-{}-{}", versions.0, versions.1);
    let mut input = json!({ "name": name, "components": components });
    if !source.is_null() {
        input["sourceRef"] = source;
    }
    let release = app.ready_release_with(input).await;
    let id = app.request_promotion(&release, env).await["id"].as_str().unwrap().to_owned();
    app.settled(&id).await;
    id
}

async fn stage(app: &TestApp, nomad: &FakeNomad) -> (String, String, String) {
    nomad.seed_service("shop", &["api", "web"]);
    let prod = app.create_environment_with(json!({ "name": "prod", "order": 10 })).await;
    let (api, web) = (app.create_component("api").await, app.create_component("web").await);
    for v in ["1.0.0", "1.1.0", "1.2.0", "1.3.0"] {
        app.add_version(&api, v, &digest(&format!("api-{v}"))).await;
    }
    app.add_version(&web, "1.0.0", &digest("web-1.0.0")).await;
    let tasks = json!([{ "name": "api", "componentId": api }, { "name": "web", "componentId": web }]);
    let target =
        json!({ "name": "nomad", "type": "NOMAD", "nomad": { "address": nomad.url, "jobId": "shop", "tasks": tasks } });
    app.ok(
        "mutation($e: ID!, $t: AddDeploymentTargetInput!) { addDeploymentTarget(environmentId: $e, input: $t) { id } }",
        json!({ "e": prod, "t": target }),
    )
    .await;
    (prod, api, web)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_history_gives_the_four_figures_worked_out_by_hand() {
    let app = TestApp::spawn_with_workers().await;
    let nomad = FakeNomad::start().await;
    let (prod, api, web) = stage(&app, &nomad).await;
    let ids = (api.as_str(), web.as_str());

    // 1. Both components change; the release says it was committed three hours ago.
    let committed1 = Utc::now() - Duration::hours(3);
    let p1 =
        promote(&app, &prod, ids, ("1.0.0", "1.0.0"), json!({ "commitSha": SHA1, "committedAt": committed1 })).await;
    let (status, t1) = written(&app, &p1).await;
    assert_eq!(status, "DEPLOYED");
    // 2. api changes; its commit time comes from a CI build of its commit, an hour ago.
    let committed2 = Utc::now() - Duration::hours(1);
    let build = json!({ "buildId": "b2", "status": "success", "commit": SHA2, "committedAt": committed2 });
    let ci = token("ci", &[Role::ReleaseCreator]);
    let res = app.http.post(format!("{}/api/v1/ci-events/build-complete", app.url)).bearer_auth(ci).json(&build);
    assert_eq!(res.send().await.unwrap().status().as_u16(), 201);
    let p2 = promote(&app, &prod, ids, ("1.1.0", "1.0.0"), json!({ "commitSha": SHA2 })).await;
    let (_, t2) = written(&app, &p2).await;
    // 3. The engine fails the next one: the environment fails from then on.
    nomad.script([Outcome::Fail]);
    let p3 = promote(&app, &prod, ids, ("1.2.0", "1.0.0"), Value::Null).await;
    let (status, t3) = written(&app, &p3).await;
    assert_eq!(status, "FAILED");
    // 4. A release with no commit time deploys: lead time unknown, and the environment is
    // restored.
    let p4 = promote(&app, &prod, ids, ("1.3.0", "1.0.0"), Value::Null).await;
    let (_, t4) = written(&app, &p4).await;
    // 5. It is rolled back (to 1.1.0) within the day: a change failure, then a restore.
    let rollback = "mutation($e: ID!) { rollbackEnvironment(environmentId: $e, reason: \"errors up\") { id } }";
    let p5 = app.ok(rollback, json!({ "e": prod })).await["rollbackEnvironment"]["id"].as_str().unwrap().to_owned();
    app.settled(&p5).await;
    let (status, t4_rolled) = written(&app, &p4).await;
    assert_eq!(status, "ROLLED_BACK");
    let (status, t5) = written(&app, &p5).await;
    assert_eq!(status, "DEPLOYED");

    // By hand. Failure times are kept to the microsecond.
    let micros = |t: DateTime<Utc>| t.duration_trunc(Duration::microseconds(1)).unwrap();
    let secs = |from: DateTime<Utc>, to: DateTime<Utc>| (to - from).num_seconds() as f64;
    let lead = (secs(committed1, t1) + secs(committed2, t2)) / 2.0;
    let restore = (secs(micros(t3), t4) + secs(micros(t4_rolled), t5)) / 2.0;
    let today = Utc::now().date_naive();
    let from = today.pred_opt().unwrap();
    let vars = json!({ "e": prod, "from": from.to_string(), "to": today.to_string() });
    let insights = app.ok(INSIGHTS, vars).await["insights"].clone();
    assert_eq!(insights["days"], 2);
    assert_eq!(
        insights["figures"],
        json!({ "deployments": 5, "succeeded": 4, "failed": 1, "rolledBack": 1, "deploymentsPerDay": 2.0,
            "changeFailureRate": 0.4, "leadTimeSeconds": lead, "leadTimeKnown": 2, "leadTimeUnknown": 1,
            "timeToRestoreSeconds": restore, "restores": 2 })
    );
    let daily = insights["daily"].as_array().unwrap();
    assert_eq!(daily.iter().map(|d| d["succeeded"].as_u64().unwrap()).sum::<u64>(), 4);
    assert_eq!(daily[1]["date"], today.to_string());
    assert_eq!(
        insights["components"].as_array().unwrap().iter().find(|c| c["componentName"] == "api").unwrap()["figures"],
        json!({ "succeeded": 4, "failed": 1, "rolledBack": 1, "leadTimeKnown": 2, "leadTimeUnknown": 1 })
    );
    assert_eq!(
        insights["components"].as_array().unwrap().iter().find(|c| c["componentName"] == "web").unwrap()["figures"],
        json!({ "succeeded": 1, "failed": 0, "rolledBack": 0, "leadTimeKnown": 1, "leadTimeUnknown": 0 })
    );
    assert!(nomad.violations().is_empty(), "{:?}", nomad.violations());

    a_year_costs_three_requests(&app, &prod).await;
    the_dashboard_draws_them(&app, &prod, &format!("from={from}&to={today}")).await;
}

/// The dashboard's page: the figures, and a chart per measure drawn as inline SVG.
async fn the_dashboard_draws_them(app: &TestApp, prod: &str, window: &str) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let session = crate::dashboard::sign_in(app, &http, &token("viv", &[Role::Viewer])).await;
    let path = format!("/ui/environments/{prod}/insights?{window}");
    let (status, html) = crate::dashboard::ui(app, &http, &session, &path).await;
    assert_eq!(status, 200, "{html}");
    let figures = html.split("id=\"figures\"").nth(1).unwrap();
    for shown in ["2.00 per day", "4 deployed in 2 days", "40.0%", "1 failed, 1 rolled back of 5", "2 restores"] {
        assert!(figures.contains(shown), "{shown} in {figures}");
    }
    // Today's bar: 3 deployed that stayed, 1 rolled back, 1 failed; and today's lead time.
    assert_eq!(html.matches("<rect").count(), 4, "{html}");
    assert_eq!(html.matches("<svg").count(), 2);
    assert!(!html.contains("http://") && !html.contains("https://"), "nothing is loaded from elsewhere");
    let (status, _) =
        crate::dashboard::ui(app, &http, &session, &format!("/ui/environments/{prod}/insights?from=someday")).await;
    assert_eq!(status, 400);
}

/// A year of figures: the environment's GetItem, one Query of its buckets and one
/// BatchGetItem of component names, however many promotions ended.
async fn a_year_costs_three_requests(app: &TestApp, prod: &str) {
    let today = Utc::now().date_naive();
    let from = today - Duration::days(365);
    app.requests.take();
    let vars = json!({ "e": prod, "from": from.to_string(), "to": today.to_string() });
    let year = app.ok(INSIGHTS, vars).await["insights"].clone();
    assert_eq!((year["days"].as_u64(), year["figures"]["deployments"].as_u64()), (Some(366), Some(5)));
    assert_eq!(app.requests.take(), ["GetItem", "Query", "BatchGetItem"]);
}

#[tokio::test]
async fn bad_windows_and_unknown_environments_are_refused() {
    let app = TestApp::spawn().await;
    let env = app.create_environment("dev", 10).await;
    let refused = |from: &str, to: &str| json!({ "e": env, "from": from, "to": to });
    for (from, to, code) in [
        ("2026-01-02", "2026-01-01", "BAD_USER_INPUT"),
        ("2025-01-01", "2026-01-02", "BAD_USER_INPUT"),
        ("2026-02-30", "2026-03-01", "BAD_USER_INPUT"),
        ("yesterday", "2026-03-01", "BAD_USER_INPUT"),
    ] {
        app.assert_rejected(code, INSIGHTS, refused(from, to)).await;
    }
    let unknown = json!({ "e": uuid::Uuid::new_v4().to_string(), "from": "2026-01-01", "to": "2026-01-31" });
    app.assert_rejected("NOT_FOUND", INSIGHTS, unknown).await;
    let empty = app.ok(INSIGHTS, refused("2026-01-01", "2026-01-31")).await["insights"].clone();
    assert_eq!(empty["figures"]["deployments"], 0);
    assert_eq!(empty["figures"]["changeFailureRate"], Value::Null);
    assert_eq!(empty["daily"].as_array().unwrap().len(), 31);
    let (status, _) = app.gql_as(None, INSIGHTS, refused("2026-01-01", "2026-01-31")).await;
    assert_eq!(status, 401, "insights need a principal");

    // The change-failure window is an hour to 90 days.
    let update = "mutation($e: ID!, $h: Int!) { updateEnvironment(id: $e, input: { changeFailureWindowHours: $h }) { changeFailureWindowHours } }";
    for hours in [0, 2_161] {
        let before = app.snapshot().await;
        app.assert_rejected("BAD_USER_INPUT", update, json!({ "e": env, "h": hours })).await;
        assert_eq!(app.snapshot().await, before, "nothing is written");
    }
    let set = app.ok(update, json!({ "e": env, "h": 72 })).await;
    assert_eq!(set["updateEnvironment"]["changeFailureWindowHours"], 72);
}
