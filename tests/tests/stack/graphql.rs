//! GraphQL over the api function's URL, with a bearer token.

use serde_json::json;

use crate::support::{Stack, unique, unique_order};

#[tokio::test]
async fn components_releases_and_environments_over_the_function_url() {
    let stack = Stack::load().await;
    let name = unique("api");
    let component = stack
        .ok(
            "mutation($n: String!) { createComponent(input: { name: $n, imageRepository: \"registry.example.com/acme/api\" }) { id name defaultChannel } }",
            json!({ "n": name }),
        )
        .await["createComponent"]
        .clone();
    assert_eq!(component["name"], name.as_str());
    assert_eq!(component["defaultChannel"], "stable");
    let digest = format!("sha256:{}", "ab".repeat(32));
    stack
        .ok(
            "mutation($c: ID!, $d: String!) { createVersionMap(input: { componentId: $c, tag: \"v1.4.0\", digest: $d }) { semver } }",
            json!({ "c": component["id"], "d": digest }),
        )
        .await;
    let release = stack
        .ok(
            "mutation($n: String!, $c: ID!) { createRelease(input: { name: $n, components: [{ componentId: $c, version: \"1.4.0\" }] }) { id status components { digest version } } }",
            json!({ "n": unique("shop"), "c": component["id"] }),
        )
        .await["createRelease"]
        .clone();
    assert_eq!(release["status"], "DRAFT");
    assert_eq!(release["components"][0]["digest"], digest.as_str());
    let environment = stack
        .ok(
            "mutation($n: String!, $o: Int!) { createEnvironment(input: { name: $n, order: $o }) { id name } }",
            json!({ "n": unique("dev"), "o": unique_order() }),
        )
        .await["createEnvironment"]
        .clone();
    let listed = stack.ok("{ environments { id } }", json!({})).await;
    assert!(listed["environments"].as_array().unwrap().iter().any(|e| e["id"] == environment["id"]));

    // No token, or a forged one: refused, and nothing is written.
    let (status, body) = stack.gql_as(None, "{ components { id } }", json!({})).await;
    assert_eq!(status, 401, "{body}");
    let forged = format!("{}x", stack.token);
    let (status, _) = stack
        .gql_as(
            Some(&forged),
            "mutation { createComponent(input: { name: \"forged\", imageRepository: \"a/b\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 401);
    let names = stack.ok("{ components { name } }", json!({})).await;
    assert!(!names.to_string().contains("\"forged\""));
}
