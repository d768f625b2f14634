//! A function missing a required setting stops at init, and the emulator's function log
//! names the setting.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, Runtime};

use crate::support::{Stack, unique};

#[tokio::test]
async fn a_missing_setting_fails_at_init_with_its_name_in_the_log() {
    let stack = Stack::load().await;
    let name = unique("gantry-misconfigured");
    // The deployed api function's own code, with every setting but the table.
    let code =
        FunctionCode::builder().s3_bucket(stack.output("FunctionBucket")).s3_key(stack.output("Code_api")).build();
    let environment = Environment::builder()
        .variables("GANTRY_EVENTS_QUEUE_URL", stack.output("EventsQueueUrl"))
        .variables("GANTRY_DEPLOY_QUEUE_URL", stack.output("DeployJobsQueueUrl"))
        .variables("GANTRY_LOG_FORMAT", "json")
        .build();
    stack
        .lambda
        .create_function()
        .function_name(&name)
        .runtime(Runtime::Providedal2023)
        .architectures(Architecture::X8664)
        .handler("bootstrap")
        .role("arn:aws:iam::000000000000:role/gantry-misconfigured")
        .code(code)
        .environment(environment)
        .timeout(10)
        .send()
        .await
        .unwrap();
    let invoked = stack.lambda.invoke().function_name(&name).payload(Blob::new("{}")).send().await.unwrap();
    stack.lambda.delete_function().function_name(&name).send().await.unwrap();
    let expected = "gantry: configuration error: GANTRY_TABLE must be set";
    assert!(invoked.function_error.is_some(), "the invocation fails");
    let error: serde_json::Value = serde_json::from_slice(invoked.payload.as_ref().unwrap().as_ref()).unwrap();
    assert!(error["errorMessage"].as_str().unwrap_or("").contains(expected), "the error names the setting: {error}");
    // The emulator logs the function's init output under the function's name (it keeps init
    // output out of CloudWatch Logs, which real Lambda does not).
    let log = std::env::var("GANTRY_EMULATOR_LOG")
        .unwrap_or_else(|_| format!("{}/../.run/ministack.log", env!("CARGO_MANIFEST_DIR")));
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("the emulator's log {log}: {e}"));
    assert!(
        text.lines().any(|l| l.contains(&name) && l.contains(expected)),
        "{log} names the function and the setting"
    );
}
