//! Documents built to exhaust the server are refused cheaply, and the server stays
//! responsive. Response times are measured by `cargo bench --bench abuse`; here, a refusal
//! that does not come at all fails through the client's timeout.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::TestApp;

/// `fragment F{n} on Query { ...F{n-1} ...F{n-1} }`: 2^n selections once written out.
fn doubling_fragments(n: usize) -> String {
    let mut doc = format!("query {{ ...F{n} }}\nfragment F0 on Query {{ __typename }}\n");
    for i in 1..=n {
        doc.push_str(&format!("fragment F{i} on Query {{ ...F{p} ...F{p} }}\n", p = i - 1));
    }
    doc
}

async fn post(app: &TestApp, query: &str) -> Value {
    let res = app
        .http
        .post(format!("{}/graphql", app.url))
        .bearer_auth(&app.token)
        .timeout(Duration::from_secs(20))
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("answered, not hung");
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn first_error(res: &Value) -> (&str, &str) {
    let err = &res["errors"][0];
    (err["extensions"]["code"].as_str().unwrap_or_default(), err["message"].as_str().unwrap_or_default())
}

#[tokio::test]
async fn fragments_that_double_are_refused_before_validation() {
    let app = TestApp::spawn().await;
    let res = post(&app, &doubling_fragments(30)).await;
    let (code, message) = first_error(&res);
    assert_eq!(code, "GRAPHQL_VALIDATION_FAILED", "{res}");
    assert!(message.contains("millions of selections"), "{message}");
    // A modest use of fragments still runs.
    let res = post(&app, &doubling_fragments(6)).await;
    assert_eq!(res["data"]["__typename"], "Query", "{res}");
    // And so does the standard introspection query of real clients.
    let standard = include_str!("../../fixtures/graphql/introspection-full.graphql");
    assert!(post(&app, standard).await["data"]["__schema"]["types"].is_array());
}

#[tokio::test]
async fn deep_brackets_are_refused_without_parsing() {
    let app = TestApp::spawn().await;
    let depth = 400_000;
    let query = format!("{{ components(x: {}1{}) {{ id }} }}", "[".repeat(depth), "]".repeat(depth));
    let (code, message) = {
        let res = post(&app, &query).await;
        let (c, m) = first_error(&res);
        (c.to_owned(), m.to_owned())
    };
    assert_eq!(code, "GRAPHQL_VALIDATION_FAILED");
    assert!(message.contains("deeper than 64"), "{message}");
    assert_eq!(post(&app, "{ __typename }").await["data"]["__typename"], "Query", "the server lives on");
}

#[tokio::test]
async fn complexity_counts_page_sizes() {
    let app = TestApp::spawn().await;
    let one = "releases(first: 100) { edges { node { state { environments { status } } } } }";
    assert!(app.gql(&format!("{{ {one} }}"), json!({})).await.get("errors").is_none(), "one page is fine");
    let many: String = (0..400).map(|i| format!("a{i}: {one}\n")).collect();
    let res = post(&app, &format!("{{ {many} }}")).await;
    let (code, message) = first_error(&res);
    assert_eq!((code, message), ("GRAPHQL_VALIDATION_FAILED", "Query is too complex."), "{res}");
    assert!(app.requests.take().len() <= 2, "a refused document reads nothing");
}

#[tokio::test]
async fn one_request_makes_a_bounded_number_of_storage_requests() {
    let app = TestApp::spawn().await;
    let limit = gantry_graphql::MAX_STORAGE_REQUESTS as usize;
    let aliases: String = (0..limit + 50)
        .map(|i| format!("r{i}: release(id: \"00000000-0000-4000-8000-{i:012}\") {{ name }}\n"))
        .collect();
    app.requests.take();
    let res = post(&app, &format!("{{ {aliases} }}")).await;
    let errors = res["errors"].as_array().expect("errors");
    let codes: Vec<&str> = errors.iter().map(|e| e["extensions"]["code"].as_str().unwrap()).collect();
    assert_eq!(codes.iter().filter(|c| **c == "NOT_FOUND").count(), limit, "each read within the budget ran");
    let refused: Vec<&Value> = errors.iter().filter(|e| e["extensions"]["code"] == "BAD_USER_INPUT").collect();
    assert_eq!(refused.len(), 50, "{res}");
    assert!(refused[0]["message"].as_str().unwrap().contains(&format!("more than {limit} storage reads")));
    assert_eq!(app.requests.take().len(), limit, "no request past the budget reached DynamoDB");
}
