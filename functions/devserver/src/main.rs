//! Local development server: every HTTP function's router on one address
//! (127.0.0.1:8080 unless `GANTRY_BIND` says otherwise), against the local emulator.

use gantry_platform::{AppState, Config, init_tracing};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env_or_exit();
    init_tracing(&config, env!("CARGO_PKG_NAME"));
    let bind = std::env::var("GANTRY_BIND").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let state = AppState::from_config(config, gantry_targets::from_sdk).await;
    let app = gantry_api::router(state.clone()).merge(gantry_webhooks::router(state.clone()));
    // The workers: poll their queues with the handlers Lambda runs.
    let ingest = state.clone();
    tokio::spawn(async move {
        let queue = ingest.events.clone();
        queue.poll(|event| gantry_ingest::handle(ingest.clone(), event)).await;
    });
    let deployer = state.clone();
    tokio::spawn(async move {
        let queue = deployer.deploy_jobs.clone();
        queue.poll(|event| gantry_deployer::handle(deployer.clone(), event)).await;
    });
    let notifier = state.clone();
    tokio::spawn(async move {
        let queue = notifier.notify_jobs.clone();
        queue.poll(|event| gantry_notifier::handle(notifier.clone(), event)).await;
    });
    // What the template's schedule asks of the deployer every minute: stalled promotions moved on.
    let sweeper = state.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            let sweep = gantry_domain::promotions::Sweep::promotions();
            if let Err(err) = sweeper.promotions.sweep(&sweep, chrono::Utc::now()).await {
                tracing::warn!(error = %err, "sweep failed");
            }
        }
    });
    // A token for the person at the keyboard: admin, for twelve hours.
    let token = state.auth.local().sign(
        "dev-admin",
        &[gantry_domain::access::Role::Admin],
        &[],
        chrono::Utc::now() + chrono::Duration::hours(12),
        None,
    )?;
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let url = format!("http://{}/graphql", listener.local_addr()?);
    // The fragment never reaches a server: the page keeps the token in the tab and presets
    // the Authorization header with it.
    println!("Gantry admin token (12 h): {token}");
    println!("GraphiQL, signed in as admin: {url}#token={token}");
    // Browsers keep the dashboard's Secure session cookie over plain HTTP on localhost only.
    let port = listener.local_addr()?.port();
    println!("Dashboard (sign in with the token): http://localhost:{port}/ui");
    tracing::info!(url = %url, "devserver listening");
    gantry_platform::serve::serve(listener, app, state.config.request_timeout(), shutdown()).await;
    Ok(())
}

async fn shutdown() {
    let _ = tokio::signal::ctrl_c().await;
}
