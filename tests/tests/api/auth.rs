use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use gantry_domain::access::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::support::{JWT_SECRET, OIDC_ISSUER, TestApp, token};

const LIST: &str = "{ components { name } }";
const CREATE: &str = "mutation { createComponent(input: { name: \"api\", imageRepository: \"acme/api\" }) { id } }";

fn claims(iss: &str, aud: &str, roles: &[&str], expires_in: Duration) -> Value {
    json!({ "sub": "someone", "iss": iss, "aud": aud, "exp": (Utc::now() + expires_in).timestamp(), "roles": roles })
}

fn hs256(claims: &Value, secret: &[u8], kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn oidc(alg: Algorithm, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(include_bytes!("../../fixtures/keys/rsa-private.pem")).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(include_bytes!("../../fixtures/keys/ec-private.pem")).unwrap(),
        other => panic!("{other:?}"),
    };
    encode(&header, claims, &key).unwrap()
}

/// Asserts the request is refused with 401 UNAUTHENTICATED and writes nothing.
async fn assert_unauthenticated(app: &TestApp, token: Option<&str>) {
    let before = app.snapshot().await;
    let (status, body) = app.gql_as(token, CREATE, json!({})).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let gantry = |roles: &[&str], expires: Duration| claims("gantry", "gantry", roles, expires);
    assert_unauthenticated(&app, None).await;
    assert_unauthenticated(&app, Some("not-a-jwt")).await;
    // Expired, wrong issuer, wrong audience, wrong key.
    assert_unauthenticated(&app, Some(&hs256(&gantry(&["admin"], Duration::minutes(-5)), JWT_SECRET.as_bytes(), None)))
        .await;
    assert_unauthenticated(
        &app,
        Some(&hs256(&claims("evil", "gantry", &["admin"], Duration::hours(1)), JWT_SECRET.as_bytes(), None)),
    )
    .await;
    assert_unauthenticated(
        &app,
        Some(&hs256(&claims("gantry", "other", &["admin"], Duration::hours(1)), JWT_SECRET.as_bytes(), None)),
    )
    .await;
    assert_unauthenticated(
        &app,
        Some(&hs256(&gantry(&["admin"], Duration::hours(1)), b"another-secret-of-at-least-32-bytes!!", None)),
    )
    .await;
    // Not yet valid.
    let mut early = gantry(&["admin"], Duration::hours(2));
    early["nbf"] = json!((Utc::now() + Duration::hours(1)).timestamp());
    assert_unauthenticated(&app, Some(&hs256(&early, JWT_SECRET.as_bytes(), None))).await;
    // alg: none.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(gantry(&["admin"], Duration::hours(1)).to_string())
    );
    assert_unauthenticated(&app, Some(&none)).await;
    // Algorithm confusion: HS256 "signed" with the RSA public key, with and without its kid.
    let public = include_bytes!("../../fixtures/keys/rsa-public.pem");
    let oidc_claims = claims(OIDC_ISSUER, "gantry-api", &["admin"], Duration::hours(1));
    assert_unauthenticated(&app, Some(&hs256(&oidc_claims, public, Some("test-rsa")))).await;
    assert_unauthenticated(&app, Some(&hs256(&gantry(&["admin"], Duration::hours(1)), public, None))).await;
    // An unknown kid, and a key used with another key's algorithm.
    assert_unauthenticated(&app, Some(&oidc(Algorithm::RS256, "nobody", &oidc_claims))).await;
    assert_unauthenticated(&app, Some(&oidc(Algorithm::ES256, "test-rsa", &oidc_claims))).await;
    // A Gantry-issued audience on an OIDC key.
    assert_unauthenticated(
        &app,
        Some(&oidc(Algorithm::RS256, "test-rsa", &claims(OIDC_ISSUER, "gantry", &["admin"], Duration::hours(1)))),
    )
    .await;
}

#[tokio::test]
async fn crit_extensions_are_refused_and_audience_lists_accepted() {
    let app = TestApp::spawn().await;
    let mut header = Header::new(Algorithm::HS256);
    header.crit = Some(vec!["exp-ext".into()]);
    let critical = encode(
        &header,
        &claims("gantry", "gantry", &["admin"], Duration::hours(1)),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    assert_unauthenticated(&app, Some(&critical)).await;

    let mut listed = claims("gantry", "gantry", &["admin"], Duration::hours(1));
    listed["aud"] = json!(["another-service", "gantry"]);
    let (status, body) = app.gql_as(Some(&hs256(&listed, JWT_SECRET.as_bytes(), None)), CREATE, json!({})).await;
    assert_eq!((status, body["errors"].is_null()), (200, true), "{body}");
    listed["aud"] = json!(["another-service", "third"]);
    assert_unauthenticated(&app, Some(&hs256(&listed, JWT_SECRET.as_bytes(), None))).await;
}

#[tokio::test]
async fn oidc_tokens_through_jwks() {
    let app = TestApp::spawn().await;
    for (alg, kid) in [(Algorithm::RS256, "test-rsa"), (Algorithm::ES256, "test-ec")] {
        let viewer =
            oidc(alg, kid, &claims(OIDC_ISSUER, "gantry-api", &["viewer", "some-idp-group"], Duration::hours(1)));
        let (status, body) = app.gql_as(Some(&viewer), LIST, json!({})).await;
        assert_eq!((status, body["errors"].is_null()), (200, true), "{alg:?}: {body}");
        let (_, body) = app.gql_as(Some(&viewer), CREATE, json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{alg:?}: {body}");
    }
}

#[tokio::test]
async fn roles_limit_what_callers_do() {
    let app = TestApp::spawn().await;
    let api = app.create_component("api").await;
    app.add_version(&api, "1.0.0", &crate::support::digest("api")).await;

    let viewer = token("viv", &[Role::Viewer]);
    let before = app.snapshot().await;
    let (_, body) = app.gql_as(Some(&viewer), CREATE, json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("component:create"));
    assert_eq!(app.snapshot().await, before, "a refused mutation writes nothing");
    let (_, body) = app.gql_as(Some(&viewer), "{ serviceAccounts { name } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");

    let creator = token("ci", &[Role::ReleaseCreator]);
    let release = "mutation($c: ID!) { createRelease(input: { name: \"r1\", components: [{ componentId: $c, version: \"1.0.0\" }] }) { createdBy } }";
    let (_, body) = app.gql_as(Some(&creator), release, json!({ "c": api })).await;
    assert_eq!(body["data"]["createRelease"]["createdBy"], "ci", "{body}");
    let (_, body) = app.gql_as(Some(&creator), CREATE, json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");

    let nobody = token("nobody", &[]);
    let (_, body) = app.gql_as(Some(&nobody), LIST, json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "every query needs read");
}

#[tokio::test]
async fn service_accounts_issue_once_and_revoke_at_once() {
    let app = TestApp::spawn().await;
    let api = app.create_component("api").await;
    app.add_version(&api, "1.0.0", &crate::support::digest("api")).await;
    let created = app
        .ok(
            "mutation($input: CreateServiceAccountInput!) { createServiceAccount(input: $input) {
                token serviceAccount { id name roles permissions { resource action } expiresAt createdBy } } }",
            json!({ "input": { "name": "ci-pipeline", "description": "CI", "roles": ["release-creator"],
                               "permissions": [{ "resource": "component", "action": "read" }], "expiresIn": "30d" } }),
        )
        .await["createServiceAccount"]
        .clone();
    let sa_token = created["token"].as_str().unwrap().to_owned();
    let account = &created["serviceAccount"];
    assert_eq!(account["roles"], json!(["release-creator"]));
    assert_eq!(account["createdBy"], "test-admin");
    assert!(account["expiresAt"].is_string());
    assert!(
        !serde_json::to_string(&app.snapshot().await).unwrap().contains(&sa_token),
        "only the token's hash is stored"
    );

    let release = "mutation($c: ID!) { createRelease(input: { name: \"from-ci\", components: [{ componentId: $c, version: \"1.0.0\" }] }) { createdBy } }";
    let (_, body) = app.gql_as(Some(&sa_token), release, json!({ "c": api })).await;
    assert_eq!(body["data"]["createRelease"]["createdBy"], "service-account:ci-pipeline", "{body}");

    let listed = app.ok("{ serviceAccounts { name revokedAt } }", json!({})).await;
    assert_eq!(listed["serviceAccounts"], json!([{ "name": "ci-pipeline", "revokedAt": null }]));

    app.ok("mutation($id: ID!) { revokeServiceAccount(id: $id) { revokedAt } }", json!({ "id": account["id"] })).await;
    assert_unauthenticated(&app, Some(&sa_token)).await;
    app.assert_rejected(
        "CONFLICT",
        "mutation($id: ID!) { revokeServiceAccount(id: $id) { id } }",
        json!({ "id": account["id"] }),
    )
    .await;

    for input in [
        json!({ "name": "x", "roles": ["superuser"] }),
        json!({ "name": "x", "roles": [] }),
        json!({ "name": "x", "roles": ["viewer"], "expiresIn": "forever" }),
        json!({ "name": "x", "permissions": [{ "resource": "release", "action": "fly" }] }),
    ] {
        app.assert_rejected(
            "BAD_USER_INPUT",
            "mutation($input: CreateServiceAccountInput!) { createServiceAccount(input: $input) { token } }",
            json!({ "input": input }),
        )
        .await;
    }
    app.assert_rejected(
        "CONFLICT",
        "mutation($input: CreateServiceAccountInput!) { createServiceAccount(input: $input) { token } }",
        json!({ "input": { "name": "ci-pipeline", "roles": ["viewer"] } }),
    )
    .await;
}
