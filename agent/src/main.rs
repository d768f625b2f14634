//! `gantry-agent`: Gantry's pull agent.
//!
//! - `gantry-agent enroll --url URL --token TOKEN`: makes an Ed25519 key pair on this host
//!   (the private key stays here, mode 0600), registers its public key with a one-time
//!   token, and pins Gantry's job-signing key.
//! - `gantry-agent run`: heartbeats, and claims and applies this agent's jobs on the local
//!   Docker Engine. Only outbound requests to the Gantry API are made.

use gantry_agent::{client, run, state};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Parser)]
#[command(name = "gantry-agent", version, about = "Gantry's pull agent")]
struct Args {
    /// Where the key, the identity and the job journal are kept.
    #[arg(long, env = "GANTRY_AGENT_STATE_DIR", default_value = "/var/lib/gantry-agent", global = true)]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll this host with a one-time token from `createAgentEnrollment`.
    Enroll {
        /// The Gantry API: https://…, or http:// on loopback.
        #[arg(long, env = "GANTRY_URL")]
        url: String,
        #[arg(long, env = "GANTRY_AGENT_TOKEN")]
        token: String,
    },
    /// Heartbeat, and claim and apply this agent's jobs.
    Run {
        /// The local Docker Engine.
        #[arg(long, env = "DOCKER_HOST", default_value = "unix:///var/run/docker.sock")]
        docker_host: String,
        /// Seconds between heartbeats.
        #[arg(long, env = "GANTRY_AGENT_HEARTBEAT_SECONDS", default_value_t = 15)]
        heartbeat_seconds: u64,
    },
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false).init();
    let args = Args::parse();
    let state = state::StateDir(args.state_dir);
    let outcome = match args.command {
        Command::Enroll { url, token } => enroll(&state, &url, &token).await,
        Command::Run { docker_host, heartbeat_seconds } => run(state, docker_host, heartbeat_seconds).await,
    };
    if let Err(err) = outcome {
        eprintln!("gantry-agent: {err}");
        std::process::exit(1);
    }
}

async fn enroll(state: &state::StateDir, url: &str, token: &str) -> Result<(), String> {
    if state.key_path().exists() {
        return Err(format!("{} exists: this host is enrolled already", state.key_path().display()));
    }
    let api = client::Api::new(url)?;
    let (key, pkcs8) = gantry_signing::SigningKey::generate();
    let answer = api
        .post_unsigned("/agent/v1/enroll", &json!({ "token": token, "publicKey": key.public().encode() }))
        .await
        .map_err(|e| format!("enrollment refused: {e}"))?;
    let identity = state::Identity {
        url: url.to_owned(),
        agent_id: answer["agentId"].as_str().unwrap_or_default().to_owned(),
        job_signing_key: answer["jobSigningKey"].as_str().unwrap_or_default().to_owned(),
    };
    gantry_signing::PublicKey::parse(&identity.job_signing_key).map_err(|_| "the answer has no job-signing key")?;
    state.write_key(&gantry_signing::pem_encode(&pkcs8, "PRIVATE KEY")).map_err(|e| e.to_string())?;
    state.write_identity(&identity).map_err(|e| e.to_string())?;
    println!("enrolled as agent {}", identity.agent_id);
    Ok(())
}

async fn run(state: state::StateDir, docker_host: String, heartbeat_seconds: u64) -> Result<(), String> {
    let identity = state.read_identity()?;
    let key = state.read_key()?;
    let pinned = gantry_signing::PublicKey::parse(&identity.job_signing_key).map_err(|e| e.to_string())?;
    let agent = Arc::new(run::Agent {
        api: client::Api::new(&identity.url)?,
        key,
        identity,
        pinned,
        state,
        docker_host,
        heartbeat: Duration::from_secs(heartbeat_seconds.clamp(1, 300)),
        engine: None,
    });
    tracing::info!(agent_id = %agent.identity.agent_id, "agent running");
    tokio::spawn(agent.clone().heartbeats());
    agent.jobs().await
}
