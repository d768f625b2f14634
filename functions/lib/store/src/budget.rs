//! Charges every DynamoDB request to the budget of the client request it serves
//! (`gantry_domain::budget`), before the SDK sends it.

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};

#[derive(Debug)]
pub(crate) struct ChargeBudget;

impl Intercept for ChargeBudget {
    fn name(&self) -> &'static str {
        "ChargeBudget"
    }

    fn read_before_execution(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        gantry_domain::budget::charge().map_err(Into::into)
    }
}

/// `client`, with every request charged to the running request's budget.
pub(crate) fn charging(client: aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
    let config = client.config().to_builder().interceptor(ChargeBudget).build();
    aws_sdk_dynamodb::Client::from_conf(config)
}
