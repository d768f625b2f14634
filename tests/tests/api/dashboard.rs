//! The dashboard in a real browser: Debian's Chromium, headless, driven through WebDriver
//! (Debian's chromedriver). An approver signs in with a token, reads the matrix, approves a
//! promotion from the queue and sees it deploy; the page is also checked over plain HTTP
//! for its cookie, its CSRF defence and its sign-in redirect.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use gantry_domain::access::Role;
use gantry_tests::eventually;
use serde_json::json;

use crate::support::{TestApp, digest, token};

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(std::env::var("GANTRY_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs (make test installs Debian's chromium-driver)");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    eventually(Duration::from_secs(20), "chromedriver to listen", || async {
        http.get(format!("{url}/status")).send().await.ok().map(drop)
    })
    .await;
    Driver { child, url }
}

async fn browser(driver: &Driver) -> fantoccini::Client {
    let profile = std::env::temp_dir().join(format!("gantry-webdriver-{}", uuid::Uuid::new_v4()));
    let mut caps = serde_json::Map::new();
    let binary = std::env::var("GANTRY_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": binary, "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--window-size=1400,900", format!("--user-data-dir={}", profile.display()),
        ] }),
    );
    // chromedriver speaks plain HTTP on loopback: no TLS connector.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await.expect("a WebDriver session")
}

/// dev (deployed), prod (one approval): a promotion of shop-1 awaiting approval in prod.
async fn waiting_promotion(app: &TestApp) -> (String, String) {
    let web = app.create_component("web").await;
    app.add_version(&web, "1.0.0", &digest("web-1")).await;
    let dev = app.create_environment("dev", 10).await;
    let prod = app.create_environment_with(json!({ "name": "prod", "order": 20, "requiredApprovals": 1 })).await;
    let release = app.ready_release("shop-1", json!([{ "componentId": web, "version": "1.0.0" }])).await;
    app.promote(&release, &dev).await;
    let promotion = app.request_promotion(&release, &prod).await["id"].as_str().unwrap().to_owned();
    (prod, promotion)
}

fn shots() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approver_signs_in_reads_the_matrix_and_approves_a_promotion() {
    let app = TestApp::spawn_with_workers().await;
    let (prod, promotion) = waiting_promotion(&app).await;
    let carol = token("carol", &[Role::Approver]);
    let driver = driver().await;
    let b = browser(&driver).await;
    // Chromium keeps a Secure cookie from plain HTTP only on `localhost`.
    let site = app.url.replace("127.0.0.1", "localhost");

    b.goto(&format!("{site}/ui")).await.unwrap();
    assert!(b.current_url().await.unwrap().path().ends_with("/ui/login"), "signed out: sent to sign in");
    b.find(Locator::Css("#token")).await.unwrap().send_keys(&carol).await.unwrap();
    b.find(Locator::Css("form[action='/ui/login'] button")).await.unwrap().click().await.unwrap();
    let matrix = match b.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css("#matrix")).await {
        Ok(found) => found.text().await.unwrap(),
        Err(err) => panic!("no matrix ({err}) at {}: {}", b.current_url().await.unwrap(), b.source().await.unwrap()),
    };
    assert!(matrix.contains("shop-1") && matrix.contains("DEPLOYED"), "{matrix}");
    let running = b.find(Locator::Css("#running")).await.unwrap().text().await.unwrap();
    assert!(running.contains("web 1.0.0 sha256:"), "components by digest: {running}");
    std::fs::write(shots().join("dashboard-matrix.png"), b.screenshot().await.unwrap()).unwrap();

    b.goto(&format!("{site}/ui/promotions")).await.unwrap();
    let row = b.find(Locator::Css(&format!("tr[data-promotion='{promotion}']"))).await.unwrap();
    assert!(row.text().await.unwrap().contains("0 of 1"));
    std::fs::write(shots().join("dashboard-queue.png"), b.screenshot().await.unwrap()).unwrap();
    row.find(Locator::Css("button.approve")).await.unwrap().click().await.unwrap();

    // The promotion's page: its status moves to DEPLOYED while it is open.
    let status = eventually(Duration::from_secs(30), "the page to show DEPLOYED", || async {
        let text = b.find(Locator::Css("#promotion-status")).await.ok()?.text().await.ok()?;
        text.contains("DEPLOYED").then_some(text)
    })
    .await;
    assert_eq!(status, "DEPLOYED");
    assert!(b.find(Locator::Css("#live")).await.unwrap().text().await.unwrap().contains("Approved by carol"));
    std::fs::write(shots().join("dashboard-promotion.png"), b.screenshot().await.unwrap()).unwrap();
    let q = "query($id: ID!) { promotion(id: $id) { status approvals { principal } } }";
    let stored = app.ok(q, json!({ "id": promotion })).await["promotion"].clone();
    assert_eq!(stored["approvals"][0]["principal"], "carol");

    b.goto(&format!("{site}/ui/environments/{prod}/evidence")).await.unwrap();
    let verified = b.find(Locator::Css("#verification")).await.unwrap().text().await.unwrap();
    assert!(verified.starts_with("valid"), "{verified}");
    let chain = b.find(Locator::Css("#evidence")).await.unwrap().text().await.unwrap();
    assert!(chain.contains("approval") && chain.contains("carol"), "{chain}");
    // Each record names the key that signed it, as the key set publishes it.
    let kid = gantry_signing::jwk::thumbprint(
        &gantry_signing::SigningKey::from_pkcs8(
            &base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                gantry_tests::app::EVIDENCE_SIGNING_KEY,
            )
            .unwrap(),
        )
        .unwrap()
        .public(),
    );
    let keys = b.find_all(Locator::Css("#evidence td.key")).await.unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        assert_eq!(key.text().await.unwrap(), kid);
    }

    // The environment's insights: the deployment just made, counted and drawn.
    b.goto(&format!("{site}/ui/environments/{prod}/insights")).await.unwrap();
    let figures = b.find(Locator::Css("#figures")).await.unwrap().text().await.unwrap();
    assert!(figures.contains("1 deployed in 30 days") && figures.contains("0.0%"), "{figures}");
    let bars = b.find_all(Locator::Css("svg.chart rect.ok")).await.unwrap();
    assert_eq!(bars.len(), 1, "one day with a deployment");
    std::fs::write(shots().join("dashboard-insights.png"), b.screenshot().await.unwrap()).unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn sessions_are_httponly_cookies_and_forms_need_their_csrf_token() {
    let app = TestApp::spawn().await;
    let (_, promotion) = waiting_promotion(&app).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let signed_out = http.get(format!("{}/ui", app.url)).send().await.unwrap();
    assert_eq!(signed_out.status(), 303);
    assert_eq!(signed_out.headers()["location"], "/ui/login");

    let form = |pairs: &[(&str, &str)]| {
        pairs.iter().map(|(k, v)| format!("{k}={}", v.replace('+', "%2B"))).collect::<Vec<_>>().join("&")
    };
    let bad = http.post(format!("{}/ui/login", app.url)).body(form(&[("token", "forged")])).send().await.unwrap();
    assert_eq!(bad.status(), 401);
    let carol = token("carol", &[Role::Approver]);
    let login = http.post(format!("{}/ui/login", app.url)).body(form(&[("token", &carol)])).send().await.unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_owned();
    let page = http.get(format!("{}/ui/promotions", app.url)).header("cookie", &session).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("form-action 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();

    let before = app.snapshot().await;
    let approve = format!("{}/ui/promotions/{promotion}/approve", app.url);
    let forged = http.post(&approve).header("cookie", &session).body(form(&[("csrf", "0000")])).send().await.unwrap();
    assert_eq!(forged.status(), 403, "a wrong CSRF token");
    let missing = http.post(&approve).header("cookie", &session).send().await.unwrap();
    assert_eq!(missing.status(), 403, "no CSRF token");
    let cross = http
        .post(&approve)
        .header("cookie", &session)
        .header("origin", "https://evil.example")
        .body(form(&[("csrf", &csrf)]))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403, "another origin");
    let unsigned = http.post(&approve).body(form(&[("csrf", &csrf)])).send().await.unwrap();
    assert_eq!(unsigned.status(), 401, "no session");
    assert_eq!(app.snapshot().await, before, "nothing was approved");
    let approved = http.post(&approve).header("cookie", &session).body(form(&[("csrf", &csrf)])).send().await.unwrap();
    assert_eq!(approved.status(), 303, "{}", approved.text().await.unwrap());
}

/// Signs `token` in over HTTP; the session cookie (`name=value`).
pub(crate) async fn sign_in(app: &TestApp, http: &reqwest::Client, token: &str) -> String {
    let body = format!("token={}", token.replace('+', "%2B"));
    let login = http.post(format!("{}/ui/login", app.url)).body(body).send().await.unwrap();
    assert_eq!(login.status(), 303);
    login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned()
}

/// The page at `path` for a session: its status and HTML.
pub(crate) async fn ui(app: &TestApp, http: &reqwest::Client, session: &str, path: &str) -> (u16, String) {
    let page = http.get(format!("{}{path}", app.url)).header("cookie", session).send().await.unwrap();
    (page.status().as_u16(), page.text().await.unwrap())
}

/// Sessions are opaque ids kept on the server: signing out ends a copied cookie too, and a
/// revoked token ends its sessions at the next request. Approve shows only where the API
/// would accept it.
#[tokio::test]
async fn sessions_are_server_side_and_end_at_sign_out_or_revocation() {
    let app = TestApp::spawn().await;
    let (_, promotion) = waiting_promotion(&app).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let carol = token("carol", &[Role::Approver]);
    let session = sign_in(&app, &http, &carol).await;
    let id = session.split_once('=').unwrap().1;
    assert!(id.len() == 64 && !carol.contains(id) && !id.contains(&carol[..20]), "an opaque id: {session}");
    let (status, html) = ui(&app, &http, &session, "/ui/promotions").await;
    assert_eq!(status, 200);
    assert!(html.contains(">Approve<"), "carol may approve");
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let copied = session.clone();
    let out = http
        .post(format!("{}/ui/logout", app.url))
        .header("cookie", &session)
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let (status, _) = ui(&app, &http, &copied, "/ui").await;
    assert_eq!(status, 303, "a copied cookie ends with the sign-out");

    // The requester sees no Approve on their own promotion; the API would refuse it.
    let requester = sign_in(&app, &http, &app.token).await;
    let (_, html) = ui(&app, &http, &requester, &format!("/ui/promotions/{promotion}")).await;
    assert!(!html.contains(">Approve<") && html.contains(">Reject<"), "{html}");

    // A service account's session ends when the account is revoked.
    let create = "mutation { createServiceAccount(input: { name: \"dash\", roles: [\"approver\"] }) { serviceAccount { id } token } }";
    let created = app.ok(create, json!({})).await["createServiceAccount"].clone();
    let robot = sign_in(&app, &http, created["token"].as_str().unwrap()).await;
    assert_eq!(ui(&app, &http, &robot, "/ui").await.0, 200);
    let revoke = "mutation($id: ID!) { revokeServiceAccount(id: $id) { id } }";
    app.ok(revoke, json!({ "id": created["serviceAccount"]["id"] })).await;
    assert_eq!(ui(&app, &http, &robot, "/ui").await.0, 303, "revoked: the session ends");
}

/// An OIDC provider for the sign-in test: `/authorize` sends the browser back with a code,
/// `/token` redeems it for an ID token signed with the test RSA key, only with the verifier
/// whose challenge `/authorize` was given.
async fn identity_provider() -> String {
    use axum::extract::Query;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    let challenge: Arc<Mutex<Option<String>>> = Arc::default();
    let (kept, checked) = (challenge.clone(), challenge.clone());
    let app = axum::Router::new()
        .route(
            "/authorize",
            axum::routing::get(move |Query(q): Query<HashMap<String, String>>| {
                let kept = kept.clone();
                async move {
                    assert_eq!((q["response_type"].as_str(), q["code_challenge_method"].as_str()), ("code", "S256"));
                    *kept.lock().unwrap() = Some(q["code_challenge"].clone());
                    let back = format!("{}?code=the-code&state={}", q["redirect_uri"], q["state"]);
                    axum::response::Redirect::to(&back)
                }
            }),
        )
        .route(
            "/token",
            axum::routing::post(move |body: axum::body::Bytes| {
                let checked = checked.clone();
                async move {
                    let f: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
                    use base64::Engine as _;
                    use sha2::Digest as _;
                    let digest = sha2::Sha256::digest(f.get("code_verifier").cloned().unwrap_or_default().as_bytes());
                    let proof = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
                    let good = f.get("code").map(String::as_str) == Some("the-code")
                        && checked.lock().unwrap().as_deref() == Some(proof.as_str())
                        && f.get("client_id").map(String::as_str) == Some("gantry-api");
                    if !good {
                        return (axum::http::StatusCode::BAD_REQUEST, axum::Json(json!({ "error": "invalid_grant" })));
                    }
                    let claims = json!({ "iss": crate::support::OIDC_ISSUER, "aud": "gantry-api", "sub": "dana@example.com",
                        "roles": ["approver"], "exp": chrono::Utc::now().timestamp() + 3600, "iat": chrono::Utc::now().timestamp() });
                    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
                    header.kid = Some("test-rsa".into());
                    let key = jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!("../../fixtures/keys/rsa-private.pem")).unwrap();
                    let id_token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
                    (axum::http::StatusCode::OK, axum::Json(json!({ "id_token": id_token, "token_type": "Bearer" })))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn signing_in_through_oidc_uses_the_code_flow_with_pkce() {
    let idp = identity_provider().await;
    let (authorize, token) = (format!("{idp}/authorize"), format!("{idp}/token"));
    let app = TestApp::spawn_with(&[
        ("GANTRY_OIDC_CLIENT_ID", "gantry-api"),
        ("GANTRY_OIDC_AUTHORIZE_URL", authorize.as_str()),
        ("GANTRY_OIDC_TOKEN_URL", token.as_str()),
        ("GANTRY_PUBLIC_URL", "https://gantry.example"),
    ])
    .await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = http.get(format!("{}/ui/login", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(login.contains("href=\"/ui/oidc\""), "the sign-in page offers the provider");
    let started = http.get(format!("{}/ui/oidc", app.url)).send().await.unwrap();
    assert_eq!(started.status(), 303);
    let to_provider = started.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to_provider.starts_with(&authorize)
            && to_provider.contains("redirect_uri=https%3A%2F%2Fgantry.example%2Fui%2Foidc%2Fcallback")
    );
    let flow = started.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let back = http.get(&to_provider).send().await.unwrap();
    let callback = back.headers()["location"].to_str().unwrap().replace("https://gantry.example", &app.url);

    // A callback whose state is not the one this browser started with signs nobody in.
    let forged = callback.replace("state=", "state=x");
    let refused = http.get(&forged).header("cookie", &flow).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().get("set-cookie").is_none());
    assert_eq!(http.get(&callback).send().await.unwrap().status(), 401, "no flow cookie");

    let signed_in = http.get(&callback).header("cookie", &flow).send().await.unwrap();
    assert_eq!(signed_in.status(), 303);
    let session = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("gantry_session="))
        .expect("a session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    let session = session.split(';').next().unwrap().to_owned();
    let page = http.get(format!("{}/ui", app.url)).header("cookie", &session).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Signed in as dana@example.com"));
}
