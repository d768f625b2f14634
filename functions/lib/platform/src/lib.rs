//! Configuration, AWS clients and tracing: everything a function's `main` sets up once.
//! It wires adapters into the domain's ports and holds no rule of its own.

pub mod agents;
mod config;
pub mod evidence;
pub mod http;
pub mod layers;
pub mod secrets;
pub mod serve;

use std::sync::Arc;

use gantry_auth::{Authenticator, LocalIssuer, OidcKeys};
use gantry_domain::accounts::ServiceAccounts;
use gantry_domain::admission::AdmissionEngine;
use gantry_domain::builds::Builds;
use gantry_domain::chatops::ChatOps;
use gantry_domain::ci::CiIntegrations;
use gantry_domain::integrations::Integrations;
use gantry_domain::notifications::Subscriptions;
use gantry_domain::notifier::Notifier;
use gantry_domain::reports::Reports;
use gantry_domain::supply_chain::SupplyChain;
use gantry_gateway::chat::SlackIntake;

use gantry_domain::deployer::Deployer;
use gantry_domain::deployments::{DriverSettings, Drivers};
use gantry_domain::promotions::{Promotions, Rollout, StepRunner};
use gantry_domain::service::Catalog;
use gantry_domain::steps::Nudges;
use gantry_domain::sync::VersionSync;
use gantry_domain::targets::Targets;
use gantry_gateway::intake::Intake;
use gantry_queue::SqsQueue;
use gantry_store::DynamoRepository;

use secrets::AesGcmBox;

pub use config::{Config, ConfigError, LogFormat, OidcConfig, OidcSignIn};

/// Installs the global tracing subscriber (see `gantry_telemetry`): log lines as
/// `GANTRY_LOG_FORMAT` says, filtered by `RUST_LOG` (`info`, `warn,gantry_store=debug`;
/// `info` when unset or unparsable), and spans exported when `OTEL_EXPORTER_OTLP_ENDPOINT`
/// is set. `service` names this function's spans unless `OTEL_SERVICE_NAME` does.
pub fn init_tracing(config: &Config, service: &str) {
    gantry_telemetry::init(gantry_telemetry::Setup {
        logs: config.log_format,
        directives: std::env::var("RUST_LOG").ok().as_deref(),
        service,
        export: config.otlp_endpoint.is_some(),
    });
}

/// The shared AWS configuration: region, credentials and `AWS_ENDPOINT_URL` from the
/// environment, and [`timeouts`] of `limit`.
pub async fn aws_config(limit: std::time::Duration) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts(limit)).load().await
}

/// Every SDK operation, retries included, ends within `limit`; connecting may take at most
/// two seconds of it.
pub fn timeouts(limit: std::time::Duration) -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(limit)
        .connect_timeout(limit.min(std::time::Duration::from_secs(2)))
        .build()
}

/// The drivers of every function but the deployer: none.
pub fn no_drivers(_: &aws_config::SdkConfig, _: DriverSettings) -> Drivers {
    Drivers::new()
}

/// What every request handler shares, built once per process.
pub struct AppState {
    pub config: Config,
    pub catalog: Catalog,
    pub environments: gantry_domain::service::Environments,
    pub integrations: Integrations,
    pub ci: CiIntegrations,
    pub reports: Reports,
    pub intake: Intake,
    pub sync: VersionSync,
    pub events: SqsQueue,
    pub accounts: ServiceAccounts,
    pub auth: Authenticator,
    pub builds: Builds,
    pub targets: Targets,
    pub promotions: Promotions,
    pub deployer: Deployer,
    pub deploy_jobs: SqsQueue,
    /// Slack requests, notification events and deliveries.
    pub notify_jobs: SqsQueue,
    pub subscriptions: Subscriptions,
    pub chat: ChatOps,
    pub notifier: Notifier,
    pub slack: SlackIntake,
    /// Dashboard sessions.
    pub sessions: gantry_domain::sessions::Sessions,
    /// Pull agents, and the jobs handed to them.
    pub agents: gantry_domain::agents::Agents,
    pub agent_jobs: gantry_domain::agents::jobs::AgentJobs,
    /// The environments' DORA figures.
    pub insights: gantry_domain::insights::DeliveryInsights,
    /// The queues' dead-letter queues, and redrives.
    pub dead_letters: Arc<dyn gantry_domain::dead_letters::DeadLetters>,
    /// The public keys evidence is signed with.
    pub evidence_keys: gantry_domain::evidence::EvidenceKeySet,
}

impl AppState {
    /// Builds the state with clients from the environment's AWS configuration. `drivers`
    /// makes the target drivers from it and the rollout deadline (the deployer passes
    /// `gantry_targets::from_sdk`; every other function [`no_drivers`], so it links none).
    pub async fn from_config(
        config: Config,
        drivers: impl FnOnce(&aws_config::SdkConfig, DriverSettings) -> Drivers,
    ) -> Arc<Self> {
        let sdk = aws_config(config.aws_timeout()).await;
        let drivers = drivers(&sdk, config.driver_settings());
        let keys = Arc::new(gantry_secrets::Secrets::new(config.key_env.clone(), &sdk));
        let clients = (aws_sdk_dynamodb::Client::new(&sdk), aws_sdk_sqs::Client::new(&sdk));
        Self::with_stores(config, clients, drivers, keys)
    }

    /// Builds the state around given clients (tests add interceptors to theirs); signing
    /// keys can be given by `env:` reference only.
    pub fn with_clients(
        config: Config,
        dynamodb: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
        drivers: Drivers,
    ) -> Arc<Self> {
        let keys = Arc::new(gantry_secrets::Secrets::from_env(config.key_env.clone()));
        Self::with_stores(config, (dynamodb, sqs), drivers, keys)
    }

    /// As [`Self::with_clients`], with the store signing keys given by reference are read from.
    pub fn with_stores(
        config: Config,
        (dynamodb, sqs): (aws_sdk_dynamodb::Client, aws_sdk_sqs::Client),
        drivers: Drivers,
        keys: Arc<dyn gantry_domain::signatures::KeyStore>,
    ) -> Arc<Self> {
        let repo = Arc::new(DynamoRepository::new(dynamodb, config.table.clone()));
        let sealer = Arc::new(AesGcmBox::new(&config.data_key).expect("Config holds a 32-byte data key"));
        let events = SqsQueue::new(sqs.clone(), config.events_queue_url.clone());
        let ci = CiIntegrations::new(repo.clone(), sealer.clone());
        let integrations = Integrations::new(repo.clone(), sealer.clone());
        let builds = Builds::new(repo.clone(), repo.clone());
        let catalog = Catalog::new(repo.clone(), repo.clone());
        let admission: Arc<dyn AdmissionEngine> = Arc::new(gantry_policy::RegoEngine::new());
        let environments = gantry_domain::service::Environments::new(repo.clone(), admission.clone());
        let registry = Arc::new(gantry_registry::OciRegistry::new());
        let supply_chain = SupplyChain::new(repo.clone(), integrations.clone(), registry.clone(), keys);
        let sync = VersionSync::new(catalog.clone(), repo.clone(), integrations.clone(), registry);
        let (accounts, auth) = authenticator(&config, &repo);
        let targets = Targets::new(repo.clone(), repo.clone()).with_agents(repo.clone());
        let signing = evidence::signing(&config, &repo);
        let deploy_jobs = SqsQueue::new(sqs.clone(), config.deploy_queue_url.clone());
        let notify_jobs = SqsQueue::new(sqs.clone(), config.notify_queue_url.clone());
        // Deployment reports to CI systems travel on the deploy-jobs queue too.
        let client = Arc::new(gantry_ci::CiClients::new(gantry_ci::Retries::default()));
        let rollout = Rollout {
            targets: repo.clone(),
            deployments: repo.clone(),
            queue: Arc::new(deploy_jobs.clone()),
            reports: Arc::new(deploy_jobs.clone()),
            steps: step_runner(&config, &repo, &ci, &client, &deploy_jobs),
            artifacts: repo.clone(),
            insights: repo.clone(),
            events: Arc::new(notify_jobs.clone()),
            supply_chain,
            admission,
        };
        let nudges = Nudges { watches: repo.clone(), queue: Arc::new(deploy_jobs.clone()) };
        let intake = Intake::new(
            (integrations.clone(), ci.clone()),
            repo.clone(),
            Arc::new(events.clone()),
            builds.clone(),
            nudges,
        );
        let facts = reported_facts(&repo);
        let reports =
            Reports::new(facts, repo.clone(), repo.clone(), ci.clone(), client, Arc::new(deploy_jobs.clone()))
                .linking_to(config.public_url.clone());
        let key_set = signing.1.clone();
        let promotions = Promotions::new(repo.clone(), repo.clone(), builds.clone(), repo.clone(), signing, rollout);
        let (agents, agent_jobs) = agent_services(&config, &repo, (&deploy_jobs, &sqs));
        let deployer = Deployer::new(repo.clone(), repo.clone(), repo.clone(), promotions.clone(), drivers)
            .with_lease(config.deploy_lease_seconds)
            .with_agents(agent_jobs.clone());
        let Chat { chat, subscriptions, notifier, slack } =
            Chat::new(&config, &repo, &sealer, &notify_jobs, &promotions);
        Arc::new(Self {
            insights: gantry_domain::insights::DeliveryInsights::new(repo.clone(), repo.clone()),
            dead_letters: dead_letters(&config, &sqs),
            sessions: sessions(&config, &repo, &sealer),
            evidence_keys: key_set,
            agents,
            agent_jobs,
            promotions,
            deployer,
            deploy_jobs,
            notify_jobs,
            subscriptions,
            chat,
            notifier,
            slack,
            targets,
            catalog,
            environments,
            integrations,
            ci,
            reports,
            intake,
            sync,
            events,
            accounts,
            auth,
            builds,
            config,
        })
    }
}

/// What reports read of promotions and environments.
/// What runs the environments' CI steps and probes.
fn step_runner(
    config: &Config,
    repo: &Arc<DynamoRepository>,
    ci: &CiIntegrations,
    client: &Arc<gantry_ci::CiClients>,
    deploy_jobs: &SqsQueue,
) -> StepRunner {
    StepRunner {
        ci: ci.clone(),
        client: client.clone(),
        queue: Arc::new(deploy_jobs.clone()),
        watches: repo.clone(),
        poll_seconds: config.step_poll_seconds,
        prober: Arc::new(gantry_ci::HttpProber::default()),
    }
}

fn reported_facts(repo: &Arc<DynamoRepository>) -> Arc<gantry_domain::promotions::ReportedFacts> {
    Arc::new(gantry_domain::promotions::ReportedFacts { promotions: repo.clone(), environments: repo.clone() })
}

/// Service accounts and the authenticator of every request: Gantry's own tokens, and the
/// OIDC issuer's when one is configured.
fn authenticator(config: &Config, repo: &Arc<DynamoRepository>) -> (ServiceAccounts, Authenticator) {
    let local = LocalIssuer::new(&config.jwt_secret, config.jwt_issuer.clone(), config.jwt_audience.clone());
    let accounts = ServiceAccounts::new(repo.clone(), Arc::new(local.clone()));
    let oidc = config
        .oidc
        .as_ref()
        .map(|o| OidcKeys::from_jwks(&o.issuer, &o.audience, &o.jwks).expect("Config checked the JWKS"));
    let auth = Authenticator::new(local, oidc, accounts.clone());
    (accounts, auth)
}

/// Pull agents and their jobs, signed with the configured job-signing key; deadline checks
/// travel on the deploy-jobs queue.
/// Each queue's dead-letter queue, found through its redrive policy.
fn dead_letters(config: &Config, sqs: &aws_sdk_sqs::Client) -> Arc<dyn gantry_domain::dead_letters::DeadLetters> {
    let urls = [config.events_queue_url.clone(), config.deploy_queue_url.clone(), config.notify_queue_url.clone()];
    Arc::new(gantry_queue::SqsDeadLetters::new(sqs.clone(), urls))
}

fn agent_services(
    config: &Config,
    repo: &Arc<DynamoRepository>,
    (deploy_jobs, sqs): (&SqsQueue, &aws_sdk_sqs::Client),
) -> (gantry_domain::agents::Agents, gantry_domain::agents::jobs::AgentJobs) {
    let sealer = Arc::new(agents::Sealer::new(config.job_signing.as_ref(), config.aws_timeout()));
    let doorbell = Arc::new(gantry_queue::SqsDoorbells::new(sqs.clone(), config.agent_queue_prefix.clone()));
    let agents = gantry_domain::agents::Agents::new(repo.clone(), sealer.clone(), config.agent_offline_seconds)
        .with_doorbell(doorbell.clone());
    let jobs = gantry_domain::agents::jobs::AgentJobs {
        repo: repo.clone(),
        deployments: repo.clone(),
        sealer,
        queue: Arc::new(deploy_jobs.clone()),
        deadline: chrono::Duration::seconds(i64::try_from(config.agent_job_seconds).unwrap_or(600)),
        doorbell,
    };
    (agents, jobs)
}

/// Dashboard sessions, with the configured limits.
fn sessions(
    config: &Config,
    repo: &Arc<DynamoRepository>,
    sealer: &Arc<AesGcmBox>,
) -> gantry_domain::sessions::Sessions {
    let limits = gantry_domain::sessions::SessionLimits {
        idle: chrono::Duration::minutes(i64::try_from(config.session_idle_minutes).unwrap_or(30)),
        absolute: chrono::Duration::hours(i64::try_from(config.session_max_hours).unwrap_or(12)),
    };
    gantry_domain::sessions::Sessions::new(repo.clone(), sealer.clone(), limits)
}

/// The Slack app and notifications, over the same table and the notifications queue.
struct Chat {
    chat: ChatOps,
    subscriptions: Subscriptions,
    notifier: Notifier,
    slack: SlackIntake,
}

impl Chat {
    fn new(
        config: &Config,
        repo: &Arc<DynamoRepository>,
        sealer: &Arc<AesGcmBox>,
        notify_jobs: &SqsQueue,
        promotions: &Promotions,
    ) -> Self {
        let (repo, sealer, notify_jobs, promotions) =
            (repo.clone(), sealer.clone(), notify_jobs.clone(), promotions.clone());
        let slack_api = Arc::new(gantry_ci::SlackWeb::new(
            &config.slack_api_url,
            config.slack_bot_token.clone(),
            gantry_ci::Retries::default(),
        ));
        let chat = ChatOps::new(repo.clone(), repo.clone(), slack_api.clone(), promotions.clone(), repo.clone());
        let subscriptions = Subscriptions::new(repo.clone(), sealer.clone());
        let outbound = (
            Arc::new(notify_jobs.clone()) as Arc<dyn gantry_domain::notifier::NotifierQueue>,
            Arc::new(gantry_ci::StandardWebhooks::new(config.webhook_allowed_hosts.clone()))
                as Arc<dyn gantry_domain::notifier::WebhookSender>,
            slack_api as Arc<dyn gantry_domain::chatops::SlackApi>,
        );
        let notifier = Notifier::new(repo.clone(), repo.clone(), sealer.clone(), outbound, chat.clone());
        let slack = SlackIntake::new(
            config.slack_signing_secret.clone(),
            repo.clone(),
            Arc::new(notify_jobs.clone()),
            repo.clone(),
        );
        Self { chat, subscriptions, notifier, slack }
    }
}
