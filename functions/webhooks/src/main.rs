//! Lambda entry point: tracing, configuration, clients, then `run`.

use gantry_platform::{AppState, Config, init_tracing, no_drivers};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = Config::from_env_or_exit();
    init_tracing(&config, env!("CARGO_PKG_NAME"));
    let state = AppState::from_config(config, no_drivers).await;
    gantry_webhooks::run(state).await
}
