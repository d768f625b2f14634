use serde_json::{Value, json};

use crate::support::TestApp;

#[tokio::test]
async fn graphiql_is_served_on_get() {
    let app = TestApp::spawn().await;
    let res = app.http.get(format!("{}/graphql", app.url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(body.contains("graphiql") && body.contains("/graphql"), "GraphiQL page");
    let health = app.http.get(format!("{}/health", app.url)).send().await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_refused_without_writes() {
    let app = TestApp::spawn().await;
    let huge = format!(
        r#"{{"query":"mutation {{ createComponent(input: {{ name: \"api\", imageRepository: \"a/b\", displayName: \"{}\" }}) {{ id }} }}"}}"#,
        "x".repeat(1024 * 1024)
    );
    let res = app
        .http
        .post(format!("{}/graphql", app.url))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);

    let res = app
        .http
        .post(format!("{}/graphql", app.url))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(app.snapshot().await.is_empty());
}

#[tokio::test]
async fn invalid_documents_get_a_code() {
    let app = TestApp::spawn().await;
    let res = app.gql("{ components { nosuchfield } }", json!({})).await;
    assert_eq!(res["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(res["data"], Value::Null);
}
