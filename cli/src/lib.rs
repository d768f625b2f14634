//! `gantry`: Gantry's API from a terminal or a CI job. Every command speaks typed GraphQL
//! operations checked against `schema.graphql` at build time, prints a table (or, with
//! `--json`, the API's data), and exits with a code CI can act on.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod client;
mod commands;
mod config;
mod dlq;
pub mod error;
mod evidence;
mod insights;
mod ops;
mod output;
mod progress;
mod resolve;

use error::{CliError, Exit, Result};

const EXIT_CODES: &str = "Exit codes: 0 done; 1 the API could not be reached (connection refused, DNS, TLS) \
or answered oddly; 2 usage; 3 not found; 4 refused (a gate, a freeze, another promotion, a state); \
5 bad input (an unresolvable version included); 6 no valid token or not allowed; 7 unavailable, \
timed out, or --wait ran out; 8 the promotion failed, was rejected, cancelled or rolled back.";

#[derive(Parser)]
#[command(name = "gantry", version, about = "Gantry's release control plane, from the command line", after_help = EXIT_CODES)]
pub struct Cli {
    /// The API's base URL (as `gantry login` saved it otherwise).
    #[arg(long, env = "GANTRY_URL", global = true)]
    url: Option<String>,
    /// A bearer token (as `gantry login` saved it otherwise).
    #[arg(long, env = "GANTRY_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Print the API's data as JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// How long one request to the API may take, in seconds.
    #[arg(long, env = "GANTRY_REQUEST_TIMEOUT", global = true, default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    request_timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Checks `--url` and `--token` against the API and saves them for later commands.
    Login,
    /// Lists the components.
    Components,
    /// Lists a component's versions, highest first.
    Versions {
        /// The component, by name or id.
        component: String,
        #[arg(long)]
        channel: Option<String>,
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=500))]
        limit: i64,
    },
    /// Creates, lists, shows and compares releases.
    #[command(subcommand)]
    Release(ReleaseCommand),
    /// Requests a promotion of a release into an environment.
    Promote {
        /// The release, by name or id.
        release: String,
        /// The environment, by name or id.
        #[arg(long)]
        to: String,
        #[arg(long)]
        comment: Option<String>,
        /// Follow the promotion until it ends, showing its deployments as they move.
        #[arg(long)]
        wait: bool,
        /// How long `--wait` waits, in seconds.
        #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        timeout: u64,
    },
    /// Approves a promotion awaiting approval.
    Approve {
        promotion: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Rejects a promotion awaiting approval.
    Reject {
        promotion: String,
        #[arg(long)]
        reason: String,
    },
    /// Aborts a deploying promotion's rollouts behind a router: every request goes back to
    /// the stable version at once, and the promotion fails.
    Abort { promotion: String },
    /// Skips the remaining canary steps (or ends an A/B test) of a deploying promotion: the
    /// new version takes every request.
    PromoteFull { promotion: String },
    /// Rolls an environment back to its previous release, or to `--to`.
    Rollback {
        /// The environment, by name or id.
        environment: String,
        #[arg(long)]
        reason: String,
        /// The release to go back to, by name or id.
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        timeout: u64,
    },
    /// What runs where: components by environment, with versions and digests.
    Status {
        /// Only this environment.
        environment: Option<String>,
    },
    /// Verifies an environment's evidence chain, or exports and checks evidence bundles.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// An environment's four DORA figures (deployment frequency, lead time for changes,
    /// change failure rate, time to restore) over UTC days, in all and per component.
    Insights {
        /// The environment, by name or id.
        environment: String,
        /// The first day (YYYY-MM-DD); 30 days up to `--to` unless given.
        #[arg(long, value_parser = insights::date)]
        from: Option<chrono::NaiveDate>,
        /// The last day (YYYY-MM-DD); today unless given. At most 366 days in all.
        #[arg(long, value_parser = insights::date)]
        to: Option<chrono::NaiveDate>,
    },
    /// Gantry's dead-letter queues (admins): what waits there, and putting it back.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Lists the pull agents: online or not, last seen, version and host.
    Agents,
    /// Manages one pull agent.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Prints a shell completion script.
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum ReleaseCommand {
    /// Creates a release of components pinned by version, digest or channel.
    Create {
        #[arg(long)]
        name: String,
        /// `component=1.4.0`, `component=sha256:…` or `component=channel:rc`; repeat for each.
        #[arg(long = "component", required = true, num_args = 1)]
        components: Vec<String>,
        /// Mark it READY, so it can be promoted.
        #[arg(long)]
        ready: bool,
    },
    /// Lists releases, newest first.
    List {
        /// DRAFT, READY, PROMOTING, DEPLOYED or DEPRECATED.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=100))]
        first: i64,
    },
    /// Shows a release: its components, where it runs, and its manifest.
    Show { release: String },
    /// What changed from one release to another.
    Compare { release: String, other: String },
    /// Whether the release may be promoted into an environment now, and why: every gate,
    /// and what is verified about each component's image (signature, provenance, SBOM,
    /// vulnerabilities). Exits 4 when it may not.
    Verify {
        release: String,
        /// The environment, by name or id.
        #[arg(long)]
        env: String,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Each queue's dead-letter queue: messages waiting, in flight, and the receives before
    /// a message lands there.
    List,
    /// Puts a dead-letter queue's messages back on its queue (`events`, `deploy-jobs` or
    /// `notifications`), once what made them fail is fixed.
    Redrive { queue: String },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Revokes an agent (by name or id): its next request is refused.
    Revoke { agent: String },
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// With an environment, has the server walk its chain: every record's hash, link and
    /// signature. With --bundle, checks an exported bundle offline, without the server:
    /// signatures under the bundle's keys (or --keys, a JWKS fetched from
    /// /.well-known/gantry/evidence-keys.json), links, completeness to each signed head,
    /// and the manifests' digests. Exits 4 when it does not verify.
    Verify {
        environment: Option<String>,
        #[arg(long, conflicts_with = "environment")]
        bundle: Option<std::path::PathBuf>,
        #[arg(long, requires = "bundle")]
        keys: Option<std::path::PathBuf>,
    },
    /// Exports a self-contained evidence bundle (JSON): an environment's whole chain, or the
    /// evidence and manifest of a release or a promotion.
    Export {
        #[arg(long, group = "scope")]
        env: Option<String>,
        #[arg(long, group = "scope")]
        release: Option<String>,
        #[arg(long, group = "scope")]
        promotion: Option<String>,
        /// Where to write it; standard output otherwise.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
}

/// Runs the command line `args` (the program name first) and gives the exit code.
pub fn main_with(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { 2 } else { 0 });
        }
    };
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "gantry", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => return fail(&CliError::new(Exit::Failure, err.to_string())),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

fn fail(err: &CliError) -> ExitCode {
    eprintln!("gantry: {err}");
    ExitCode::from(err.exit as u8)
}

async fn run(cli: Cli) -> Result<()> {
    let out = output::Out { json: cli.json };
    // A bundle is checked offline: no API, no token.
    if let Command::Evidence(EvidenceCommand::Verify { bundle: Some(bundle), keys, .. }) = &cli.command {
        return evidence::verify(&out, bundle, keys.as_deref());
    }
    let saved = config::load();
    let url =
        cli.url.clone().or(saved.url).ok_or_else(|| {
            CliError::new(Exit::BadInput, "no API URL: give --url or GANTRY_URL, or run gantry login")
        })?;
    let token = cli.token.clone().or(saved.token);
    let client = client::Client::new(&url, token.clone(), std::time::Duration::from_secs(cli.request_timeout))?;
    commands::dispatch(cli.command, &client, &out, (url, token)).await
}
