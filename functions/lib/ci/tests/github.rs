//! The GitHub client against the GitHub stand-in, which checks every request against
//! GitHub's published description.

use std::time::Duration;

use gantry_ci::{CiClients, Retries};
use gantry_domain::ci::{CiAccess, CiClient, CiCredentials, CiProvider, DeploymentReport, ReportState};
use gantry_github_fake::{FakeGitHub, Fault};
use serde_json::json;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn access(gh: &FakeGitHub, token: &str) -> CiAccess {
    CiAccess {
        provider: CiProvider::Github,
        api_url: gh.url.clone(),
        project: None,
        credentials: CiCredentials::Token { token: token.into() },
    }
}

fn report(state: ReportState) -> DeploymentReport {
    DeploymentReport {
        repository: "https://github.com/acme/shop".into(),
        commit: SHA.into(),
        environment: "prod".into(),
        production: true,
        payload: json!({ "releaseId": "r-1", "promotionId": "p-1" }),
        state,
        description: "x".repeat(300),
        log_url: Some("https://gantry.example.com/promotions/p-1".into()),
        environment_url: None,
        git_ref: None,
    }
}

fn quick() -> Retries {
    Retries { attempts: 3, timeout: Duration::from_millis(500), max_wait: Duration::from_millis(50) }
}

#[tokio::test]
async fn a_deployment_and_its_statuses_keep_to_the_description() {
    let gh = FakeGitHub::start().await;
    gh.require_token("ghp_ok");
    let client = CiClients::new(quick());
    let access = access(&gh, "ghp_ok");
    let id = client.create_deployment(&access, &report(ReportState::Queued)).await.unwrap();
    for state in [ReportState::Queued, ReportState::InProgress, ReportState::Success] {
        client.post_status(&access, &id, &report(state)).await.unwrap();
    }
    assert!(gh.violations().is_empty(), "{:#?}", gh.violations());
    let deployment = &gh.deployments()[0];
    assert_eq!((deployment["ref"].as_str(), deployment["environment"].as_str()), (Some(SHA), Some("prod")));
    assert_eq!(deployment["production_environment"], true);
    assert_eq!(deployment["payload"], json!({ "releaseId": "r-1", "promotionId": "p-1" }));
    assert_eq!(gh.states(id.parse().unwrap()), ["queued", "in_progress", "success"]);
    let (_, status) = &gh.statuses()[0];
    assert_eq!(status["description"].as_str().unwrap().len(), 140, "cut to what GitHub shows");
    assert_eq!(status["log_url"], "https://gantry.example.com/promotions/p-1");
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried_within_bounds() {
    let gh = FakeGitHub::start().await;
    let client = CiClients::new(quick());
    gh.faults([Fault::ServerError, Fault::SecondaryRateLimited]);
    // A 502 is tried again at once; a secondary limit's `retry-after` (1 s, longer than this
    // client waits in process) ends the call with when to come back.
    let limited = client.create_deployment(&access(&gh, "t"), &report(ReportState::Queued)).await.unwrap_err();
    let at = limited.retry_at().expect("retry-after is handed back");
    assert!(at > chrono::Utc::now() + chrono::Duration::milliseconds(500), "{at}");
    tokio::time::sleep((at - chrono::Utc::now()).to_std().unwrap_or_default()).await;
    let id = client.create_deployment(&access(&gh, "t"), &report(ReportState::Queued)).await.unwrap();
    assert_eq!(gh.deployments().len(), 1, "the third try went through, once");
    gh.faults([Fault::ServerError, Fault::ServerError, Fault::ServerError]);
    let err = client.post_status(&access(&gh, "t"), &id, &report(ReportState::Success)).await.unwrap_err();
    assert_eq!(err.code(), "UNAVAILABLE", "{err}");
    assert!(err.to_string().contains("502") && err.retry_at().is_none(), "{err}");
    gh.faults([
        Fault::Slow(Duration::from_secs(2)),
        Fault::Slow(Duration::from_secs(2)),
        Fault::Slow(Duration::from_secs(2)),
    ]);
    let err = client.post_status(&access(&gh, "t"), &id, &report(ReportState::Success)).await.unwrap_err();
    assert_eq!(err.code(), "UNAVAILABLE", "a slow GitHub is given up on: {err}");
    assert!(gh.states(id.parse().unwrap()).is_empty());
}

#[tokio::test]
async fn a_primary_rate_limit_is_not_called_again_before_its_reset() {
    let gh = FakeGitHub::start().await;
    let client = CiClients::new(quick());
    let id = client.create_deployment(&access(&gh, "t"), &report(ReportState::Queued)).await.unwrap();
    gh.faults([Fault::RateLimited]);
    let err = client.post_status(&access(&gh, "t"), &id, &report(ReportState::Queued)).await.unwrap_err();
    let reset = err.retry_at().expect("the reset GitHub announced");
    assert_eq!(err.code(), "UNAVAILABLE", "{err}");
    assert!(reset > chrono::Utc::now() + chrono::Duration::milliseconds(500), "{reset}");
    // Until the reset, this process does not call GitHub with that token at all.
    let again = client.post_status(&access(&gh, "t"), &id, &report(ReportState::Queued)).await.unwrap_err();
    assert_eq!(again.retry_at(), Some(reset));
    assert_eq!(gh.early_requests(), 0, "nothing was sent before the reset");
    tokio::time::sleep((reset - chrono::Utc::now()).to_std().unwrap_or_default()).await;
    client.post_status(&access(&gh, "t"), &id, &report(ReportState::Queued)).await.unwrap();
    assert_eq!((gh.early_requests(), gh.states(id.parse().unwrap())), (0, vec!["queued".to_owned()]));
}

#[tokio::test]
async fn refusals_are_final_and_say_why() {
    let gh = FakeGitHub::start().await;
    gh.require_token("ghp_ok");
    let client = CiClients::new(quick());
    let err = client.create_deployment(&access(&gh, "ghp_wrong"), &report(ReportState::Queued)).await.unwrap_err();
    assert_eq!((err.code(), err.to_string().contains("Bad credentials")), ("UNAUTHENTICATED", true), "{err}");
    let err = client.post_status(&access(&gh, "ghp_ok"), "424242", &report(ReportState::Success)).await.unwrap_err();
    assert_eq!(err.code(), "BAD_USER_INPUT", "no such deployment: {err}");
    let mut odd = report(ReportState::Queued);
    odd.repository = "not a repository".into();
    assert_eq!(client.create_deployment(&access(&gh, "ghp_ok"), &odd).await.unwrap_err().code(), "BAD_USER_INPUT");
    let jenkins = CiAccess { provider: CiProvider::Jenkins, ..access(&gh, "t") };
    assert!(
        client
            .create_deployment(&jenkins, &report(ReportState::Queued))
            .await
            .unwrap_err()
            .to_string()
            .contains("not supported yet")
    );
    assert_eq!(
        gh.operations(),
        ["repos/create-deployment-status"],
        "only the status for a missing deployment got past the checks"
    );
}

const APP_KEY: &str = include_str!("fixtures/app-key.pem");
const APP_PUBLIC_KEY: &[u8] = include_bytes!("fixtures/app-key.pub.pem");

fn app_access(gh: &FakeGitHub, private_key: &str) -> CiAccess {
    CiAccess {
        credentials: CiCredentials::GithubApp { app_id: 4242, installation_id: 77, private_key: private_key.into() },
        ..access(gh, "")
    }
}

#[tokio::test]
async fn a_github_app_buys_an_installation_token_once_and_uses_it() {
    let gh = FakeGitHub::start().await;
    gh.register_app(4242, 77, APP_PUBLIC_KEY);
    let client = CiClients::new(quick());
    let access = app_access(&gh, APP_KEY);
    let id = client.create_deployment(&access, &report(ReportState::Queued)).await.unwrap();
    client.post_status(&access, &id, &report(ReportState::Success)).await.unwrap();
    assert!(gh.violations().is_empty(), "{:#?}", gh.violations());
    assert_eq!(gh.issued_tokens().len(), 1, "the token is kept while it is valid");
    assert_eq!(
        gh.operations(),
        ["apps/create-installation-access-token", "repos/create-deployment", "repos/create-deployment-status"]
    );
    // A key that is not the app's gets no token, and says so.
    let other = "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----";
    let err = CiClients::new(quick()).create_deployment(&app_access(&gh, other), &report(ReportState::Queued)).await;
    assert!(err.unwrap_err().to_string().contains("private key does not load"));
}
