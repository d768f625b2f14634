//! Outgoing HTTP requests: a client span around each, and its `traceparent` sent along.

use std::future::Future;

use tracing::Instrument as _;
use tracing::field::Empty;

/// Sends a request through [`execute`].
pub trait SendTraced {
    fn send_traced(self) -> impl Future<Output = reqwest::Result<reqwest::Response>> + Send;
}

impl SendTraced for reqwest::RequestBuilder {
    fn send_traced(self) -> impl Future<Output = reqwest::Result<reqwest::Response>> + Send {
        let (client, request) = self.build_split();
        async move { execute(&client, request?).await }
    }
}

/// Sends `request` inside a [`client_span`] that records the response's status, with the
/// span's `traceparent` header.
pub async fn execute(client: &reqwest::Client, mut request: reqwest::Request) -> reqwest::Result<reqwest::Response> {
    let url = request.url();
    let span = client_span(request.method(), url.host_str().unwrap_or_default(), url.port_or_known_default());
    inject(&span, request.headers_mut());
    let response = client.execute(request).instrument(span.clone()).await;
    record_status(&span, response.as_ref().ok().map(reqwest::Response::status));
    response
}

/// A client span for one request: named by the method and host (`GET nomad.example`). The
/// path and query are left out: some URLs are secrets (a Slack response URL, a webhook's).
pub fn client_span(method: &http::Method, host: &str, port: Option<u16>) -> tracing::Span {
    tracing::info_span!(
        "http.client",
        otel.name = %format_args!("{method} {host}"),
        otel.kind = "client",
        otel.status_code = Empty,
        "http.request.method" = %method,
        "server.address" = host,
        "server.port" = port,
        "http.response.status_code" = Empty,
    )
}

/// Puts `span`'s `traceparent` in a request's headers.
pub fn inject(span: &tracing::Span, headers: &mut http::HeaderMap) {
    if let Some(value) = crate::traceparent_of(span).and_then(|v| http::HeaderValue::from_str(&v).ok()) {
        headers.insert(crate::TRACEPARENT, value);
    }
}

/// Records the answer's status on a client span; no answer, or a 5xx, marks it an error.
pub fn record_status(span: &tracing::Span, status: Option<http::StatusCode>) {
    if let Some(status) = status {
        span.record("http.response.status_code", status.as_u16());
    }
    if status.is_none_or(|s| s.is_server_error()) {
        span.record("otel.status_code", "ERROR");
    }
}
