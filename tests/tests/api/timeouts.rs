//! Every request has a time limit. A database that stops answering gives a clear
//! `UNAVAILABLE` (503 outside GraphQL) once the SDK's operation timeout passes; a client
//! that sends its headers or body too slowly is cut off.

use std::time::Duration;

use gantry_platform::AppState;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{test_config, token};

/// An "emulator" that accepts connections and never answers.
async fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    url
}

/// The API and webhooks over clients of `endpoint`, with the given limits in milliseconds.
async fn app_over(endpoint: &str, aws_ms: &str, request_ms: &str) -> String {
    let config = test_config(
        "gantry-stalled",
        &format!("{endpoint}/000000000000/events"),
        &format!("{endpoint}/000000000000/deploy"),
        &[("GANTRY_AWS_TIMEOUT_MS", aws_ms), ("GANTRY_REQUEST_TIMEOUT_MS", request_ms)],
    );
    let sdk = gantry_tests::emulator()
        .into_builder()
        .endpoint_url(endpoint)
        .timeout_config(gantry_platform::timeouts(config.aws_timeout()))
        .build();
    let state = AppState::with_clients(
        config,
        aws_sdk_dynamodb::Client::new(&sdk),
        aws_sdk_sqs::Client::new(&sdk),
        gantry_domain::deployments::Drivers::new(),
    );
    let app = gantry_api::router(state.clone()).merge(gantry_webhooks::router(state.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let header_timeout = state.config.request_timeout();
    tokio::spawn(gantry_platform::serve::serve(listener, app, header_timeout, std::future::pending()));
    url
}

#[tokio::test]
async fn a_stalled_database_is_unavailable_not_a_hang() {
    let url = app_over(&black_hole().await, "700", "30000").await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let admin = token("admin", &[gantry_domain::access::Role::Admin]);
    let (status, body) =
        gantry_tests::post_graphql(&http, &format!("{url}/graphql"), Some(&admin), "{ components { id } }", json!({}))
            .await;
    assert_eq!(status, 503, "as the README's error table says: {body}");
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "UNAVAILABLE", "{body}");
    assert!(error["message"].as_str().unwrap().contains("did not answer in time"), "the SDK's limit, not the router's");

    let component = "00000000-0000-4000-8000-000000000001";
    let release = json!({ "name": "r1", "components": [{ "componentId": component, "version": "1.0.0" }] });
    let res = http.post(format!("{url}/api/v1/releases")).bearer_auth(&admin).json(&release).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "UNAVAILABLE");

    let res = http.post(format!("{url}/webhooks/registry/distribution/secret")).body("{}").send().await.unwrap();
    assert_eq!(res.status(), 503, "a sender is told to retry");
}

#[tokio::test]
async fn a_request_over_its_time_limit_is_answered_503() {
    // The database stalls for longer than the request may take.
    let url = app_over(&black_hole().await, "60000", "800").await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let admin = token("admin", &[gantry_domain::access::Role::Admin]);
    let (status, body) =
        gantry_tests::post_graphql(&http, &format!("{url}/graphql"), Some(&admin), "{ components { id } }", json!({}))
            .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAVAILABLE");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("within 800 ms"), "{body}");
}

/// Reads until the server closes the connection; what it sent before closing.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes a slow connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn slow_headers_and_slow_bodies_are_cut_off() {
    let url = app_over(&black_hole().await, "60000", "800").await;
    let address = url.trim_start_matches("http://");

    let mut slow_headers = TcpStream::connect(address).await.unwrap();
    slow_headers.write_all(b"POST /graphql HTTP/1.1\r\nHost: gantry\r\n").await.unwrap();
    let answer = until_closed(&mut slow_headers).await;
    assert!(!answer.contains("200 OK"), "{answer}");

    let mut slow_body = TcpStream::connect(address).await.unwrap();
    let head = "POST /webhooks/ci/github HTTP/1.1\r\nHost: gantry\r\nContent-Length: 1000\r\n\r\n{\"partial\":";
    slow_body.write_all(head.as_bytes()).await.unwrap();
    let answer = until_closed(&mut slow_body).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("UNAVAILABLE"), "{answer}");
}
