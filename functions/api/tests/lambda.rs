//! The router answers requests in the shape Lambda delivers them: a function URL event
//! (API Gateway HTTP API v2 payload) converted by lambda_http, as `lambda_http::run` does.

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use gantry_platform::{AppState, Config};
use tower::ServiceExt;

const JWT_SECRET: &str = "lambda-test-secret-of-thirty-two-bytes!";

fn admin_token() -> String {
    gantry_auth::LocalIssuer::new(JWT_SECRET.as_bytes(), "gantry", "gantry")
        .sign("test", &[gantry_domain::access::Role::Admin], &[], chrono::Utc::now() + chrono::Duration::hours(1), None)
        .unwrap()
}

fn state() -> std::sync::Arc<AppState> {
    // These requests never reach DynamoDB; the client points at a closed port to prove it.
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    let settings = Config::from_lookup(|name| match name {
        "GANTRY_TABLE" => Some("unused".into()),
        "GANTRY_EVENTS_QUEUE_URL" => Some("http://127.0.0.1:9/queue".into()),
        "GANTRY_DEPLOY_QUEUE_URL" => Some("http://127.0.0.1:9/deploy".into()),
        "GANTRY_NOTIFY_QUEUE_URL" => Some("http://127.0.0.1:9/notify".into()),
        "GANTRY_DATA_KEY" => Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into()),
        "GANTRY_JWT_SECRET" => Some(JWT_SECRET.into()),
        "GANTRY_EVIDENCE_KEY" => Some("lambda-test-evidence-key-32-bytes-long".into()),
        _ => None,
    })
    .unwrap();
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .endpoint_url("http://127.0.0.1:9")
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "test"))
            .build(),
    );
    AppState::with_clients(settings, aws_sdk_dynamodb::Client::from_conf(config), sqs, Default::default())
}

fn function_url_event(method: &str, body: &str, token: Option<&str>) -> String {
    let mut headers =
        serde_json::json!({ "content-type": "application/json", "host": "abc.lambda-url.us-east-1.on.aws" });
    if let Some(token) = token {
        headers["authorization"] = format!("Bearer {token}").into();
    }
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/graphql",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc",
            "domainName": "abc.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abc",
            "http": { "method": method, "path": "/graphql", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test" },
            "requestId": "id",
            "routeKey": "$default",
            "stage": "$default",
            "time": "21/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

async fn call(method: &str, body: &str, token: Option<&str>) -> (u16, String) {
    let request =
        lambda_http::request::from_str(&function_url_event(method, body, token)).expect("a function URL event");
    let response = gantry_api::router(state()).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn graphql_over_a_function_url_event() {
    let token = admin_token();
    let (status, body) = call("POST", r#"{"query":"{ __typename }"}"#, Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(body, r#"{"data":{"__typename":"Query"}}"#);
}

#[tokio::test]
async fn graphiql_and_bad_bodies_over_lambda() {
    let (status, body) = call("GET", "", None).await;
    assert_eq!(status, 200);
    assert!(body.contains("graphiql"));
    let token = admin_token();
    let (status, body) = call("POST", "{not json", Some(&token)).await;
    assert_eq!(status, 400);
    assert!(body.contains("BAD_REQUEST"), "{body}");
    let (status, body) = call("POST", r#"{"query":"{ __typename }"}"#, None).await;
    assert_eq!(status, 401);
    assert!(body.contains("UNAUTHENTICATED"), "{body}");
}
