//! AWS list prices the benches turn counted work into dollars with: us-east-1, on demand, in
//! dollars per million units (docs/cost.md states them), and the functions' memory as
//! infra/template.yaml sets it.

pub const WEBHOOKS_MB: f64 = 128.0;
/// The notifier's memory in `infra/template.yaml`.
pub const NOTIFIER_MB: f64 = 128.0;
pub const FUNCTION_MB: f64 = 256.0;

pub const DYNAMODB_WRITE_UNIT: f64 = 0.625;
pub const DYNAMODB_READ_UNIT: f64 = 0.125;
pub const SQS_FIFO_REQUEST: f64 = 0.50;
pub const SQS_STANDARD_REQUEST: f64 = 0.40;
pub const LAMBDA_REQUEST: f64 = 0.20;
/// Arm64, per million GB-seconds.
pub const LAMBDA_GB_SECOND: f64 = 13.3334;
