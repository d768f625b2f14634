//! The `gantry` binary against the API spawned on the local emulator: every command, its
//! JSON, its exit codes, login and completions.

use std::path::PathBuf;

use gantry_domain::access::Role;
use gantry_tests::app::{TestApp, digest, token};
use serde_json::{Value, json};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `gantry args` with `env` (and nothing from the real environment's Gantry settings).
async fn gantry(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_gantry"));
    command.args(args).env_remove("GANTRY_URL").env_remove("GANTRY_TOKEN");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), command.output()).await.unwrap().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn config_path() -> PathBuf {
    std::env::temp_dir().join(format!("gantry-cli-{}.json", uuid_like()))
}

fn uuid_like() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_goes_from_the_command_line_to_production() {
    let app = TestApp::spawn_with_workers().await;
    let config = config_path();
    let config = config.to_str().unwrap();
    let env = [("GANTRY_URL", app.url.as_str()), ("GANTRY_TOKEN", app.token.as_str()), ("GANTRY_CONFIG", config)];
    let web = app.create_component("web").await;
    app.add_version(&web, "1.0.0", &digest("web-1")).await;
    app.add_version(&web, "1.1.0", &digest("web-2")).await;
    let dev = app.create_environment("dev", 10).await;
    let prod = app.create_environment_with(json!({ "name": "prod", "order": 20, "requiredApprovals": 1 })).await;

    let listed = gantry(&env, &["components", "--json"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert_eq!(listed.json()[0]["name"], "web");
    let versions = gantry(&env, &["versions", "web"]).await;
    assert!(versions.stdout.contains("1.1.0") && versions.stdout.contains("sha256:"), "{}", versions.stdout);

    let created = gantry(&env, &["release", "create", "--name", "shop-1", "--component", "web=1.0.0", "--ready"]).await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    assert!(created.stdout.contains("shop-1") && created.stdout.contains("READY"), "{}", created.stdout);
    gantry(&env, &["release", "create", "--name", "shop-2", "--component", "web=1.1.0", "--ready"]).await;
    let shown = gantry(&env, &["release", "show", "shop-1"]).await;
    assert!(
        shown.stdout.contains("web") && shown.stdout.contains("READY") && shown.stdout.contains("dev"),
        "{}",
        shown.stdout
    );
    assert_eq!(
        gantry(&env, &["release", "show", "shop-1", "--json"]).await.json()["manifest"]["manifest"]["services"][0]["name"],
        "web"
    );
    let list = gantry(&env, &["release", "list", "--json"]).await.json();
    assert_eq!(list["totalCount"], 2);
    let compare = gantry(&env, &["release", "compare", "shop-1", "shop-2"]).await;
    assert!(compare.stdout.contains("1.0.0 → 1.1.0"), "{}", compare.stdout);

    // Deployed to dev, followed live.
    let promoted = gantry(&env, &["promote", "shop-1", "--to", "dev", "--wait"]).await;
    assert_eq!(promoted.code, 0, "{}", promoted.stderr);
    assert!(promoted.stderr.contains("shop-1 → dev: DEPLOYED"), "progress on stderr: {}", promoted.stderr);
    let status = gantry(&env, &["status"]).await;
    assert!(status.stdout.contains("COMPONENT") && status.stdout.contains("dev") && status.stdout.contains("prod"));
    assert!(status.stdout.contains("1.0.0 sha256:"), "{}", status.stdout);
    let one = gantry(&env, &["status", "dev", "--json"]).await.json();
    assert_eq!(one[0]["currentRelease"]["name"], "shop-1");

    // Production waits for another approver.
    let requested = gantry(&env, &["promote", "shop-1", "--to", "prod", "--json"]).await.json();
    assert_eq!(requested["status"], "PENDING_APPROVAL");
    let id = requested["id"].as_str().unwrap();
    let bob = token("bob", &[Role::Approver]);
    let approved = gantry(&[env[0], ("GANTRY_TOKEN", bob.as_str()), env[2]], &["approve", id, "--json"]).await;
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    assert_eq!(approved.json()["approvals"][0]["principal"], "bob");

    // Waiting on a promotion that is rejected meanwhile ends with 8.
    assert_eq!(gantry(&env, &["promote", "shop-2", "--to", "dev", "--wait"]).await.code, 0);
    let reject = async {
        let q = "query($e: ID!) { promotions(environmentId: $e, status: PENDING_APPROVAL) { edges { node { id } } } }";
        let id = gantry_tests::eventually(std::time::Duration::from_secs(30), "the pending promotion", || async {
            app.ok(q, json!({ "e": prod })).await["promotions"]["edges"][0]["node"]["id"].as_str().map(str::to_owned)
        })
        .await;
        let as_bob = [env[0], ("GANTRY_TOKEN", bob.as_str()), env[2]];
        let rejected = gantry(&as_bob, &["reject", &id, "--reason", "not this week", "--json"]).await;
        assert_eq!(rejected.json()["status"], "REJECTED", "{}", rejected.stderr);
    };
    let (waited, ()) =
        tokio::join!(gantry(&env, &["promote", "shop-2", "--to", "prod", "--wait", "--timeout", "60"]), reject);
    assert_eq!(waited.code, 8, "{}", waited.stderr);
    assert!(waited.stderr.contains("(0 of 1 approvals)") && waited.stderr.contains("REJECTED"), "{}", waited.stderr);

    let verified = gantry(&env, &["evidence", "verify", &dev]).await;
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    assert!(verified.stdout.contains("valid"), "{}", verified.stdout);
    bundles_are_exported_and_checked_offline(&env, &app.url).await;
}

/// `gantry evidence export` writes dev's chain (in pages) and `gantry evidence verify
/// --bundle` checks it without the API (no URL, no token); an altered file exits 4.
async fn bundles_are_exported_and_checked_offline(env: &[(&str, &str)], url: &str) {
    let dir = std::env::temp_dir().join(format!("gantry-cli-bundle-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("dev.json");
    let exported = gantry(env, &["evidence", "export", "--env", "dev", "-o", file.to_str().unwrap()]).await;
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let keys = dir.join("keys.json");
    let jwks =
        reqwest::get(format!("{url}/.well-known/gantry/evidence-keys.json")).await.unwrap().text().await.unwrap();
    std::fs::write(&keys, jwks).unwrap();
    let offline =
        gantry(&[], &["evidence", "verify", "--bundle", file.to_str().unwrap(), "--keys", keys.to_str().unwrap()])
            .await;
    assert_eq!(offline.code, 0, "{}{}", offline.stdout, offline.stderr);
    assert!(
        offline.stdout.contains("the bundle verifies") && offline.stdout.contains("complete to its signed head"),
        "{}",
        offline.stdout
    );
    let mut bundle: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    bundle["chains"][0]["records"].as_array_mut().unwrap().remove(0);
    std::fs::write(&file, bundle.to_string()).unwrap();
    let broken = gantry(&[], &["evidence", "verify", "--bundle", file.to_str().unwrap(), "--json"]).await;
    assert_eq!(broken.code, 4, "{}", broken.stderr);
    assert_eq!(broken.json()["valid"], false);
    let neither = gantry(env, &["evidence", "verify"]).await;
    assert_eq!((neither.code, neither.stderr.contains("--bundle FILE")), (5, true), "{}", neither.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The exit-code table `gantry --help` prints: code → what it says.
async fn exit_code_table() -> std::collections::BTreeMap<i32, String> {
    let help = gantry(&[], &["--help"]).await.stdout.replace('\n', " ");
    let table = help.split("Exit codes:").nth(1).expect("an exit-code table in --help");
    table
        .split(';')
        .map(|row| {
            let row = row.trim().trim_end_matches('.');
            let (code, says) = row.split_once(' ').unwrap_or((row, ""));
            (code.parse().unwrap_or_else(|_| panic!("row {row:?}")), says.to_owned())
        })
        .collect()
}

/// A GraphQL endpoint that answers every request with one error of `code`, or never.
async fn fake_api(code: Option<&'static str>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(move || async move {
        match code {
            Some(code) => axum::Json(
                json!({ "data": null, "errors": [{ "message": "try later", "extensions": { "code": code } }] }),
            ),
            None => {
                tokio::time::sleep(std::time::Duration::from_secs(600)).await;
                axum::Json(json!({}))
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_have_exit_codes_ci_can_act_on() {
    let app = TestApp::spawn().await;
    let config = config_path();
    let config = config.to_str().unwrap();
    let env = [("GANTRY_URL", app.url.as_str()), ("GANTRY_TOKEN", app.token.as_str()), ("GANTRY_CONFIG", config)];
    let web = app.create_component("web").await;
    app.add_version(&web, "1.0.0", &digest("web-1")).await;
    app.create_environment("dev", 10).await;
    let before = app.snapshot().await;
    let table = exit_code_table().await;
    assert_eq!(table.keys().copied().collect::<Vec<_>>(), (0..=8).collect::<Vec<_>>(), "{table:?}");
    // Each row of the table, caused and checked: (code, a word of its row, the run).
    let mut rows: Vec<(i32, &str, Run)> = Vec::new();
    rows.push((2, "usage", gantry(&env, &["promote"]).await));
    let missing = gantry(&env, &["promote", "nope", "--to", "dev"]).await;
    assert!(missing.stderr.contains("no release named \"nope\""));
    rows.push((3, "not found", missing));
    rows.push((4, "refused", gantry(&env, &["rollback", "dev", "--reason", "broken"]).await));
    let unresolvable = gantry(&env, &["release", "create", "--name", "x", "--component", "web=9.9.9"]).await;
    assert!(unresolvable.stderr.contains("UNRESOLVABLE_VERSION"), "{}", unresolvable.stderr);
    rows.push((5, "unresolvable version", unresolvable));
    rows.push((5, "bad input", gantry(&env, &["release", "create", "--name", "x", "--component", "web"]).await));
    let userinfo = gantry(&[("GANTRY_URL", "http://u:p@127.0.0.1:9"), env[1], env[2]], &["components"]).await;
    assert!(userinfo.stderr.contains("no user info"), "{}", userinfo.stderr);
    rows.push((5, "bad input", userinfo));
    let bad_name = gantry(&env, &["release", "create", "--name", "no spaces", "--component", "web=1.0.0"]).await;
    rows.push((5, "bad input", bad_name));
    rows.push((6, "no valid token", gantry(&[env[0], ("GANTRY_TOKEN", "not-a-token"), env[2]], &["components"]).await));
    let viewer = token("vera", &[Role::Viewer]);
    let as_viewer = [env[0], ("GANTRY_TOKEN", viewer.as_str()), env[2]];
    rows.push((
        6,
        "not allowed",
        gantry(&as_viewer, &["release", "create", "--name", "y", "--component", "web=1.0.0"]).await,
    ));
    let refused = gantry(&[("GANTRY_URL", "http://127.0.0.1:9"), env[1], env[2]], &["components"]).await;
    assert!(refused.stderr.contains("connection refused"), "the cause is named: {}", refused.stderr);
    rows.push((1, "connection refused", refused));
    let dns = gantry(&[("GANTRY_URL", "http://no-such-host.invalid"), env[1], env[2]], &["components"]).await;
    assert!(dns.stderr.contains("DNS"), "the cause is named: {}", dns.stderr);
    rows.push((1, "DNS", dns));
    let unavailable = fake_api(Some("UNAVAILABLE")).await;
    let plain = unavailable.replace("http://", "https://");
    let tls = gantry(&[("GANTRY_URL", plain.as_str()), env[1], env[2]], &["components"]).await;
    assert!(tls.stderr.contains("TLS"), "https to a server that speaks plain HTTP: {}", tls.stderr);
    rows.push((1, "TLS", tls));
    rows.push((
        7,
        "unavailable",
        gantry(&[("GANTRY_URL", unavailable.as_str()), env[1], env[2]], &["components"]).await,
    ));
    let hanging = fake_api(None).await;
    let slow =
        gantry(&[("GANTRY_URL", hanging.as_str()), env[1], env[2]], &["components", "--request-timeout", "1"]).await;
    assert!(slow.stderr.contains("timed out"), "{}", slow.stderr);
    rows.push((7, "timed out", slow));
    for (code, word, run) in &rows {
        assert_eq!(run.code, *code, "{word}: {}", run.stderr);
        let says = word.split(' ').next().unwrap();
        assert!(table[code].contains(says), "row {code} of --help ({:?}) covers {word}", table[code]);
    }
    assert_eq!(app.snapshot().await, before, "no failed command wrote anything");
}

#[tokio::test(flavor = "multi_thread")]
async fn login_saves_the_url_and_token_for_later_commands() {
    let app = TestApp::spawn().await;
    let config = config_path();
    let path = config.to_str().unwrap();
    let refused = gantry(&[("GANTRY_CONFIG", path)], &["login", "--url", &app.url, "--token", "forged"]).await;
    assert_eq!(refused.code, 6);
    assert!(!config.exists(), "a token that does not work is not saved");
    let login = gantry(&[("GANTRY_CONFIG", path)], &["login", "--url", &app.url, "--token", &app.token]).await;
    assert_eq!(login.code, 0, "{}", login.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&config).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let listed = gantry(&[("GANTRY_CONFIG", path)], &["components", "--json"]).await;
    assert_eq!((listed.code, listed.json()), (0, json!([])));
    let completions = gantry(&[], &["completions", "bash"]).await;
    assert!(completions.code == 0 && completions.stdout.contains("_gantry"), "{}", completions.stderr);
    let _ = std::fs::remove_file(config);
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_are_listed_and_revoked() {
    let app = TestApp::spawn().await;
    let config = config_path();
    let config = config.to_str().unwrap();
    let env = [("GANTRY_URL", app.url.as_str()), ("GANTRY_TOKEN", app.token.as_str()), ("GANTRY_CONFIG", config)];
    let enrollment = app
        .ok("mutation { createAgentEnrollment(name: \"edge-1\") { token } }", json!({}))
        .await["createAgentEnrollment"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Any 32 bytes are a public key as far as enrollment goes.
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    let enrolled = app
        .http
        .post(format!("{}/agent/v1/enroll", app.url))
        .json(&json!({ "token": enrollment, "publicKey": key }))
        .send()
        .await
        .unwrap();
    assert_eq!(enrolled.status(), 201);

    let listed = gantry(&env, &["agents", "--json"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert_eq!(listed.json()[0]["name"], "edge-1");
    assert_eq!(listed.json()[0]["revokedAt"], Value::Null);
    let text = gantry(&env, &["agents"]).await;
    assert!(text.stdout.contains("edge-1") && text.stdout.contains("online"), "{}", text.stdout);

    let revoked = gantry(&env, &["agent", "revoke", "edge-1"]).await;
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    assert!(revoked.stdout.contains("edge-1") && revoked.stdout.contains("revoked"), "{}", revoked.stdout);
    assert!(gantry(&env, &["agents", "--json"]).await.json()[0]["revokedAt"].is_string());
    let unknown = gantry(&env, &["agent", "revoke", "nope"]).await;
    assert_eq!(unknown.code, 3, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("no agent is named"), "{}", unknown.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn release_verify_shows_each_gate_and_fails_when_the_policy_refuses() {
    let app = TestApp::spawn().await;
    let env = [("GANTRY_URL", app.url.as_str()), ("GANTRY_TOKEN", app.token.as_str())];
    let web = app.create_component("web").await;
    app.add_version(&web, "1.0.0", &digest("web-1")).await;
    let signed_only = "package gantry.admission\nimport rego.v1\ndeny contains msg if {\n\tsome c in input.components\n\tc.signature.verdict != \"verified\"\n\tmsg := sprintf(\"%s: unsigned (rule signed)\", [c.component])\n}";
    app.create_environment("dev", 10).await;
    app.create_environment_with(json!({ "name": "guarded", "order": 20, "admissionPolicy": signed_only })).await;
    app.ready_release("web-1.0.0", json!([{ "componentId": web, "version": "1.0.0" }])).await;

    let open = gantry(&env, &["release", "verify", "web-1.0.0", "--env", "dev"]).await;
    assert_eq!(open.code, 0, "{}{}", open.stdout, open.stderr);
    assert!(open.stdout.contains("web-1.0.0 → dev: may be promoted"), "{}", open.stdout);

    let guarded = gantry(&env, &["release", "verify", "web-1.0.0", "--env", "guarded"]).await;
    assert_eq!(guarded.code, 4, "{}{}", guarded.stdout, guarded.stderr);
    let gate = guarded.stdout.lines().find(|l| l.starts_with("supply_chain")).unwrap_or_default();
    assert!(gate.contains("FAIL") && gate.ends_with("web: unsigned (rule signed)"), "{}", guarded.stdout);
    assert!(guarded.stdout.contains("denied: web: unsigned (rule signed)"), "{}", guarded.stdout);
    let json = gantry(&env, &["release", "verify", "web-1.0.0", "--env", "guarded", "--json"]).await;
    let verdict = json.json();
    assert_eq!(
        (verdict["allowed"].clone(), verdict["components"][0]["signature"].clone()),
        (json!(false), json!("REFUSED"))
    );
    let why = verdict["components"][0]["refusals"][0].as_str().unwrap();
    assert!(why.contains("no registry integration serves"), "fails closed: {why}");
}

/// `gantry insights` prints the four figures of a window and each component's row; bad
/// dates are usage errors.
#[tokio::test(flavor = "multi_thread")]
async fn insights_print_the_four_figures() {
    let app = TestApp::spawn().await;
    let env = [("GANTRY_URL", app.url.as_str()), ("GANTRY_TOKEN", app.token.as_str())];
    let web = app.create_component("web").await;
    let dev = app.create_environment("dev", 10).await;
    let committed = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    for (i, v) in ["1.0.0", "1.1.0"].into_iter().enumerate() {
        app.add_version(&web, v, &digest(v)).await;
        let source = if i == 0 { json!({ "committedAt": committed }) } else { json!({}) };
        let input = json!({ "name": format!("web-{v}"), "components": [{ "componentId": web, "version": v }], "sourceRef": source });
        let release = app.ready_release_with(input).await;
        assert_eq!(app.request_promotion(&release, &dev).await["status"], "DEPLOYED");
    }
    let today = chrono::Utc::now().date_naive();
    let from = (today - chrono::Duration::days(1)).to_string();
    let run = gantry(&env, &["insights", "dev", "--from", &from]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], format!("dev, {from} to {today} (2 days)"));
    assert_eq!(lines[2], "Deployment frequency   1.00 per day (2 deployed, 2 deployments)");
    assert!(lines[3].starts_with("Lead time for changes  2h 0m (mean of 1; 1 unknown)"), "{}", run.stdout);
    assert_eq!(lines[4], "Change failure rate    0.0% (0 failed, 0 rolled back)");
    assert_eq!(lines[5], "Time to restore        nothing to restore");
    assert_eq!(
        lines[7].split_whitespace().collect::<Vec<_>>(),
        ["COMPONENT", "DEPLOYED", "FAILED", "ROLLED", "BACK", "LEAD", "TIME"]
    );
    assert!(lines[8].starts_with("web        2         0       0            2h 0m"), "{}", run.stdout);

    let json = gantry(&env, &["insights", &dev, "--json"]).await;
    assert_eq!(json.code, 0, "{}", json.stderr);
    assert_eq!((json.json()["days"].as_i64(), json.json()["figures"]["succeeded"].as_i64()), (Some(30), Some(2)));

    let bad = gantry(&env, &["insights", "dev", "--to", "2026-13-01"]).await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    let long = gantry(&env, &["insights", "dev", "--from", "2020-01-01", "--to", "2026-01-01"]).await;
    assert_eq!(long.code, 5, "a window over 366 days is bad input: {}", long.stderr);
    let unknown = gantry(&env, &["insights", "nowhere"]).await;
    assert_eq!(unknown.code, 3, "{}", unknown.stderr);
}

/// `gantry dlq list` shows what waits in each dead-letter queue; `gantry dlq redrive` puts it
/// back (moved by Gantry on the emulator, which has no move task); a viewer is refused.
#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_and_redriven() {
    let app = TestApp::spawn().await;
    let env = [("GANTRY_URL", app.url.as_str()), ("GANTRY_TOKEN", app.token.as_str())];
    let name = format!("{}-gantry-deploy-jobs-dlq", app.table);
    let dlq = app.sqs.get_queue_url().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    for i in 0..2 {
        app.sqs.send_message().queue_url(&dlq).message_body(format!("{{\"job\":{i}}}")).send().await.unwrap();
    }
    let listed = gantry(&env, &["dlq", "list"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let row: Vec<&str> =
        listed.stdout.lines().find(|l| l.starts_with("deploy-jobs")).unwrap().split_whitespace().collect();
    assert_eq!(row, ["deploy-jobs", name.as_str(), "2", "0", "3"], "{}", listed.stdout);

    let viewer = token("viv", &[Role::Viewer]);
    let refused = gantry(
        &[("GANTRY_URL", app.url.as_str()), ("GANTRY_TOKEN", viewer.as_str())],
        &["dlq", "redrive", "deploy-jobs"],
    )
    .await;
    assert_eq!(refused.code, 6, "{}", refused.stderr);
    let unknown = gantry(&env, &["dlq", "redrive", "nowhere"]).await;
    assert_eq!(unknown.code, 3, "{}", unknown.stderr);

    let redriven = gantry(&env, &["dlq", "redrive", "deploy-jobs"]).await;
    assert_eq!(redriven.code, 0, "{}", redriven.stderr);
    assert_eq!(
        redriven.stdout.trim(),
        "deploy-jobs: 2 messages moved back by Gantry (the queue service has no move task)"
    );
    let after = gantry(&env, &["dlq", "list", "--json"]).await.json();
    let jobs = after.as_array().unwrap().iter().find(|q| q["queue"] == "deploy-jobs").unwrap().clone();
    assert_eq!((jobs["visible"].as_i64(), jobs["inFlight"].as_i64()), (Some(0), Some(0)));
}
