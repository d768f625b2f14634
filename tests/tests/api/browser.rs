//! GraphiQL in a real browser: Debian's Chromium, headless, against the API on loopback.
//! The page must render, sign in with the token from the link, load the schema's docs and
//! show a query's result, with nothing fetched from outside the API.

use std::process::Command;

use serde_json::json;

use crate::support::TestApp;

fn chromium() -> String {
    std::env::var("GANTRY_CHROMIUM").unwrap_or_else(|_| "chromium".to_owned())
}

/// Runs headless Chromium on `url` with `output` (`--dump-dom` or `--screenshot=…`) and
/// returns what it printed. It runs off the test's runtime, which serves the API.
async fn headless(url: &str, output: &str) -> String {
    let (url, output) = (url.to_owned(), output.to_owned());
    tokio::task::spawn_blocking(move || run_chromium(&url, &output)).await.unwrap()
}

fn run_chromium(url: &str, output: &str) -> String {
    let profile = std::env::temp_dir().join(format!("gantry-chromium-{}", uuid::Uuid::new_v4()));
    // A hung browser is killed after a minute (the page's own time is bounded by the
    // virtual-time budget).
    let out = Command::new("timeout")
        .args(["60", &chromium()])
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,800",
            "--virtual-time-budget=15000",
            &format!("--user-data-dir={}", profile.display()),
            output,
            url,
        ])
        .output()
        .expect("chromium runs (make test installs Debian's chromium)");
    let _ = std::fs::remove_dir_all(profile);
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn graphiql_signs_in_from_the_link_shows_docs_and_runs_a_query() {
    let app = TestApp::spawn().await;
    let name = format!("shop-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    app.ok(
        "mutation($n: String!) { createComponent(input: { name: $n, imageRepository: \"registry.example.com/acme/shop\" }) { id } }",
        json!({ "n": name }),
    )
    .await;
    let query = "{ components { name imageRepository } }";
    let encoded: String = url_encode(query);
    let url = format!("{}/graphql?query={encoded}#token={}&docs&run", app.url, app.token);

    let dom = headless(&url, "--dump-dom").await;
    assert!(dom.contains("graphiql-container"), "GraphiQL rendered:\n{}", &dom[..dom.len().min(2000)]);
    assert!(dom.contains(&name), "the result pane shows the component the query returned");
    assert!(dom.contains("Root Types") && dom.contains("CreateComponentInput"), "the docs list the schema");
    assert!(dom.contains("Bearer"), "the headers editor holds the token from the link");

    // Without the token the page still renders, and the API refuses the query.
    let dom = headless(&format!("{}/graphql?query={encoded}#run", app.url), "--dump-dom").await;
    assert!(dom.contains("graphiql-container") && !dom.contains(&name));

    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("graphiql.png");
    headless(&url, &format!("--screenshot={}", png.display())).await;
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000, "a screenshot of the page");
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
