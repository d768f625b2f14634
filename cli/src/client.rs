//! Sends typed operations to the API with the bearer token, each within a time limit, and
//! turns GraphQL errors into exit codes.

use std::time::Duration;

use graphql_client::{GraphQLQuery, Response};

use crate::error::{CliError, Exit, Result};

pub struct Client {
    endpoint: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client of the API at `url` (its base, or its `/graphql`).
    pub fn new(url: &str, token: Option<String>, timeout: Duration) -> Result<Self> {
        let base = url.trim().trim_end_matches('/').trim_end_matches("/graphql");
        // Judged by the parsed URL: an http(s) scheme, a host, and no user info.
        let parsed = url::Url::parse(base).ok().filter(|u| {
            matches!(u.scheme(), "https" | "http")
                && u.host().is_some()
                && u.username().is_empty()
                && u.password().is_none()
        });
        if parsed.is_none() {
            return Err(CliError::new(
                Exit::BadInput,
                format!("the API URL {url:?} must be an https:// or http:// URL with a host and no user info"),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("gantry-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::new(Exit::Failure, e.to_string()))?;
        Ok(Self { endpoint: format!("{base}/graphql"), token, http })
    }

    /// Runs one operation; its data, or the first error as an exit code and message.
    pub async fn run<Q: GraphQLQuery>(&self, variables: Q::Variables) -> Result<Q::ResponseData> {
        self.answer::<Q>(variables).await.map(|(data, _)| data)
    }

    /// As [`Client::run`], with the data as the API sent it (for `--json`).
    pub async fn answer<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
    ) -> Result<(Q::ResponseData, serde_json::Value)> {
        let body = Q::build_query(variables);
        let mut request = self.http.post(&self.endpoint).json(&body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| unreachable(&self.endpoint, &e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| CliError::new(Exit::Failure, e.to_string()))?;
        let unreadable =
            || CliError::new(Exit::Failure, format!("{} answered {status} with no GraphQL response", self.endpoint));
        let raw: serde_json::Value = serde_json::from_str(&text).map_err(|_| unreadable())?;
        let parsed: Response<Q::ResponseData> = serde_json::from_value(raw.clone()).map_err(|_| unreadable())?;
        if let Some(error) = parsed.errors.as_ref().and_then(|e| e.first()) {
            let code = error
                .extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .and_then(|c| c.as_str())
                .unwrap_or("INTERNAL_SERVER_ERROR");
            return Err(CliError::from_code(code, format!("{} ({code})", error.message)));
        }
        let data = parsed
            .data
            .ok_or_else(|| CliError::new(Exit::Failure, format!("{} answered {status} with no data", self.endpoint)))?;
        Ok((data, raw["data"].clone()))
    }
}

/// Why a request did not get an answer, by its cause: a time-out is 7 (unavailable); a
/// refused connection, a name that does not resolve or a TLS failure is 1 (unreachable).
fn unreachable(endpoint: &str, err: &reqwest::Error) -> CliError {
    if err.is_timeout() {
        return CliError::new(Exit::Unavailable, format!("{endpoint}: timed out waiting for the API"));
    }
    let mut chain = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        chain.push(e.to_string());
        source = e.source();
    }
    let refused = std::iter::successors(Some(err as &dyn std::error::Error), |e| e.source())
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
    let text = chain.join(": ").to_lowercase();
    let cause = if refused || text.contains("connection refused") {
        "connection refused".to_owned()
    } else if text.contains("dns error") || text.contains("failed to lookup") || text.contains("name or service") {
        "DNS: the host name did not resolve".to_owned()
    } else if ["certificate", "tls", "handshake", "corrupt message", "alert"].iter().any(|w| text.contains(w)) {
        format!("TLS: {}", chain.last().cloned().unwrap_or_default())
    } else {
        chain.last().cloned().unwrap_or_default()
    };
    CliError::new(Exit::Failure, format!("{endpoint}: could not reach the API ({cause})"))
}
