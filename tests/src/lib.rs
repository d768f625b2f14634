//! Support for the end-to-end tests in tests/: real processes the tests drive.

pub mod registry;

/// The AWS configuration of every client a test builds: the local emulator
/// (`AWS_ENDPOINT_URL`, 127.0.0.1:4566 by default), its region and static test credentials,
/// so no request ever leaves loopback.
pub fn emulator() -> aws_config::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned());
    let credentials = aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "gantry-tests");
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(credentials))
        .build()
}
