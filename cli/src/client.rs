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
    pub fn new(url: &str, token: Option<String>) -> Result<Self> {
        let base = url.trim_end_matches('/').trim_end_matches("/graphql");
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(CliError::new(
                Exit::BadInput,
                format!("the API URL {url:?} must start with https:// or http://"),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
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
        let response = request.send().await.map_err(|e| {
            let exit = if e.is_timeout() || e.is_connect() { Exit::Unavailable } else { Exit::Failure };
            CliError::new(exit, format!("{}: {e}", self.endpoint))
        })?;
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
