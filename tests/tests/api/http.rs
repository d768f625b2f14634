use serde_json::{Value, json};

use crate::support::TestApp;

#[tokio::test]
async fn graphiql_is_served_on_get_with_every_asset_from_gantry_itself() {
    let app = TestApp::spawn().await;
    let res = app.http.get(format!("{}/graphql", app.url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(!page.contains("http:") && !page.contains("https:") && !page.contains("//"), "nothing from elsewhere");
    let assets: Vec<&str> = page.split('"').filter(|s| s.starts_with("graphiql/")).collect();
    assert_eq!(assets.len(), 6, "{assets:?}");
    for asset in assets {
        let res = app.http.get(format!("{}/{asset}", app.url)).header("accept-encoding", "gzip").send().await.unwrap();
        assert_eq!(res.status(), 200, "{asset}");
        let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(kind.starts_with("text/javascript") || kind.starts_with("text/css"), "{asset}: {kind}");
        assert!(!res.bytes().await.unwrap().is_empty());
    }
    // A client that does not take gzip gets the plain text.
    let plain = reqwest::Client::builder().no_gzip().build().unwrap();
    let res = plain.get(format!("{}/graphiql/vendor/react.production.min.js", app.url)).send().await.unwrap();
    assert!(res.headers().get("content-encoding").is_none());
    assert!(res.text().await.unwrap().contains("react.production.min.js"));
    let missing = app.http.get(format!("{}/graphiql/vendor/../../etc/passwd", app.url)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
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

    // A batch is refused for what it is, not with a parser's message, and nothing runs.
    let batch = r#" [{"query":"mutation { createComponent(input: { name: "api", imageRepository: "a/b" }) { id } }"}]"#;
    let res = app
        .http
        .post(format!("{}/graphql", app.url))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body(batch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("batching") && message.contains("not supported"), "{message}");
    assert!(app.snapshot().await.is_empty());
}

#[tokio::test]
async fn invalid_documents_get_a_code() {
    let app = TestApp::spawn().await;
    let res = app.gql("{ components { nosuchfield } }", json!({})).await;
    assert_eq!(res["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(res["data"], Value::Null);
}

/// What GraphiQL, Apollo tools and code generators send first: graphql-js's standard
/// introspection query, which nests deeper than data queries may.
#[tokio::test]
async fn standard_introspection_queries_get_the_whole_schema() {
    let app = TestApp::spawn().await;
    for query in [
        include_str!("../../fixtures/graphql/introspection-default.graphql"),
        include_str!("../../fixtures/graphql/introspection-full.graphql"),
    ] {
        let res = app.gql(query, json!({})).await;
        assert!(res.get("errors").is_none(), "{res}");
        let schema = &res["data"]["__schema"];
        assert_eq!(schema["queryType"]["name"], "Query");
        assert_eq!(schema["mutationType"]["name"], "Mutation");
        let types: Vec<&str> = schema["types"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
        for name in ["Release", "Component", "Environment", "Promotion", "Deployment", "DateTime"] {
            assert!(types.contains(&name), "{name} is described: {types:?}");
        }
    }
    // The data limits still hold for everything else: introspection nested that deep beside
    // a data field is refused.
    let of_type = format!("{}name{}", "ofType { ".repeat(10), " }".repeat(10));
    let mixed = format!("{{ components {{ id }} __schema {{ types {{ fields {{ type {{ {of_type} }} }} }} }} }}");
    let res = app.gql(&mixed, json!({})).await;
    assert!(res["errors"][0]["message"].as_str().unwrap_or("").contains("nested too deep"), "{res}");
    // Introspection aliased over and over is refused by its own limit.
    let aliased: String =
        (0..300).map(|i| format!("a{i}: __schema {{ types {{ name fields {{ name type {{ name }} }} }} }} ")).collect();
    let res = app.gql(&format!("{{ {aliased} }}"), json!({})).await;
    assert_eq!(res["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{res}");
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let app = TestApp::spawn().await;
    for (method, path) in
        [("GET", "/health"), ("GET", "/graphql"), ("POST", "/graphql"), ("POST", "/webhooks/ci/github")]
    {
        let res = app.http.request(method.parse().unwrap(), format!("{}{path}", app.url)).send().await.unwrap();
        let headers = res.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{method} {path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{method} {path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{csp}");
        assert!(headers.get("access-control-allow-origin").is_none(), "no CORS unless configured");
    }
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.url))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let app =
        TestApp::spawn_with(&[("GANTRY_CORS_ORIGINS", "https://release.example.test, http://localhost:3000")]).await;
    let allowed = preflight(&app, "https://release.example.test").await;
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://release.example.test");
    let methods = allowed.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let headers = allowed.headers()["access-control-allow-headers"].to_str().unwrap().to_lowercase();
    assert!(headers.contains("authorization"), "{headers}");
    let other = preflight(&app, "https://evil.example.test").await;
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // A browser's actual request from an allowed origin is answered with the origin.
    let res = app
        .http
        .post(format!("{}/graphql", app.url))
        .header("origin", "http://localhost:3000")
        .bearer_auth(&app.token)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], "http://localhost:3000");
}
