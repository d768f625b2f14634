//! Lambda entry point: tracing, configuration, clients, then `run`.

use gantry_platform::{AppState, Config, init_tracing};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = Config::from_env_or_exit();
    init_tracing(&config, env!("CARGO_PKG_NAME"));
    let state = AppState::from_config(config, gantry_targets::from_sdk).await;
    gantry_deployer::run(state).await
}
