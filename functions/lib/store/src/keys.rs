//! Every DynamoDB key Gantry writes is built here and nowhere else.
//! `docs/data-model.md` lists the access patterns these keys serve.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use gantry_domain::accounts::ServiceAccountId;
use gantry_domain::ci::CiIntegrationId;
use gantry_domain::events::RegistrySource;
use gantry_domain::ids::SubscriptionId;
use gantry_domain::integrations::IntegrationId;
use gantry_domain::model::ReleaseStatus;
use gantry_domain::promotions::PromotionId;
use gantry_domain::targets::TargetId;
use gantry_domain::values::{Channel, ComponentId, Digest, EnvironmentId, ReleaseId, VersionMapId};

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
pub const GSI2: &str = "GSI2";
pub const GSI2PK: &str = "GSI2PK";
pub const GSI2SK: &str = "GSI2SK";

/// A full key set for one item: the table key plus whichever index keys it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemKeys {
    pub pk: String,
    pub sk: String,
    pub gsi1: Option<(String, String)>,
    pub gsi2: Option<(String, String)>,
}

impl ItemKeys {
    pub fn new(pk: String, sk: impl Into<String>) -> Self {
        Self { pk, sk: sk.into(), gsi1: None, gsi2: None }
    }

    pub fn gsi1(mut self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.gsi1 = Some((pk.into(), sk.into()));
        self
    }

    pub fn gsi2(mut self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.gsi2 = Some((pk.into(), sk.into()));
        self
    }

    /// The table key only, for GetItem, DeleteItem and friends.
    pub fn primary(&self) -> std::collections::HashMap<String, AttributeValue> {
        [(PK.to_owned(), s(&self.pk)), (SK.to_owned(), s(&self.sk))].into()
    }

    /// Every key attribute, for writing an item or resuming a query.
    pub fn all(&self) -> std::collections::HashMap<String, AttributeValue> {
        let mut map = self.primary();
        if let Some((pk, sk)) = &self.gsi1 {
            map.insert(GSI1PK.into(), s(pk));
            map.insert(GSI1SK.into(), s(sk));
        }
        if let Some((pk, sk)) = &self.gsi2 {
            map.insert(GSI2PK.into(), s(pk));
            map.insert(GSI2SK.into(), s(sk));
        }
        map
    }
}

pub fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// Fixed-width UTC with microseconds, so times in keys and leases compare as strings.
pub fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

// ----- partitions -----

pub fn component_pk(id: ComponentId) -> String {
    format!("COMPONENT#{id}")
}

pub fn release_pk(id: ReleaseId) -> String {
    format!("RELEASE#{id}")
}

pub fn environment_pk(id: EnvironmentId) -> String {
    format!("ENVIRONMENT#{id}")
}

/// The primary keys of an aggregate's main item, for reads and existence checks (the
/// full keys, with their index attributes, come from the functions below).
pub fn component_key(id: ComponentId) -> ItemKeys {
    ItemKeys::new(component_pk(id), COMPONENT_SK)
}

pub fn release_key(id: ReleaseId) -> ItemKeys {
    ItemKeys::new(release_pk(id), RELEASE_SK)
}

pub fn environment_key(id: EnvironmentId) -> ItemKeys {
    ItemKeys::new(environment_pk(id), ENVIRONMENT_SK)
}

pub const COMPONENT_SK: &str = "COMPONENT";
pub const RELEASE_SK: &str = "RELEASE";
pub const ENVIRONMENT_SK: &str = "ENVIRONMENT";

// ----- components -----

pub const COMPONENTS: &str = "COMPONENTS";

pub fn component(id: ComponentId, name: &str, image_repository: &str) -> ItemKeys {
    component_key(id).gsi1(COMPONENTS, name).gsi2(image_pk(image_repository), format!("COMPONENT#{id}"))
}

/// Components by the image repository they release, so registry events find them.
pub fn image_pk(image_repository: &str) -> String {
    format!("IMAGE#{image_repository}")
}

/// What a name is unique among.
#[derive(Debug, Clone, Copy)]
pub enum Named {
    Component,
    Release,
    Environment,
    Integration,
    CiIntegration,
    ServiceAccount,
    Target,
    Subscription,
}

impl Named {
    fn as_str(self) -> &'static str {
        match self {
            Named::Component => "COMPONENT",
            Named::Release => "RELEASE",
            Named::Environment => "ENVIRONMENT",
            Named::Integration => "INTEGRATION",
            Named::CiIntegration => "CI_INTEGRATION",
            Named::ServiceAccount => "SERVICE_ACCOUNT",
            Named::Target => "TARGET",
            Named::Subscription => "SUBSCRIPTION",
        }
    }
}

/// Guards a unique name among `kind`.
pub fn unique_name(kind: Named, name: &str) -> ItemKeys {
    ItemKeys::new(format!("UNIQUE#{}_NAME#{name}", kind.as_str()), "UNIQUE")
}

// ----- version maps -----

pub const VERSION_PREFIX: &str = "VERSION#";

pub fn version_map(
    component: ComponentId,
    id: VersionMapId,
    version: &semver::Version,
    digest: &Digest,
    channel: &Channel,
) -> ItemKeys {
    let order = semver_sort_key(version);
    ItemKeys::new(component_pk(component), format!("{VERSION_PREFIX}{order}#{id}"))
        .gsi1(digest_pk(digest), format!("{}{id}", digest_component_prefix(component)))
        .gsi2(channel_pk(component, channel), format!("{order}#{id}"))
}

/// A component's highest live version maps, beside it in its partition.
pub fn recent_versions(component: ComponentId) -> ItemKeys {
    ItemKeys::new(component_pk(component), "RECENT_VERSIONS")
}

/// The order of version maps in a component's partition (highest last), as a value.
pub fn version_rank(version: &semver::Version, id: VersionMapId) -> (String, String) {
    (semver_sort_key(version), id.to_string())
}

/// The sort-key prefix of every version map of one semver.
pub fn semver_prefix(version: &semver::Version) -> String {
    format!("{VERSION_PREFIX}{}#", semver_sort_key(version))
}

pub fn digest_pk(digest: &Digest) -> String {
    format!("DIGEST#{digest}")
}

pub fn digest_component_prefix(component: ComponentId) -> String {
    format!("COMPONENT#{component}#")
}

pub fn channel_pk(component: ComponentId, channel: &Channel) -> String {
    format!("CHANNEL#{component}#{channel}")
}

/// Guards one version map per (component, tag, digest).
pub fn tag_digest(component: ComponentId, tag: &str, digest: &Digest) -> ItemKeys {
    ItemKeys::new(component_pk(component), format!("TAGDIGEST#{tag}#{digest}"))
}

/// A string whose byte order is semver precedence, so DynamoDB can sort versions:
/// zero-padded `MAJOR.MINOR.PATCH`, then `~` for a release, or each pre-release identifier
/// as `!` + (`0` + padded number | `1` + text) closed by a space. Build metadata has no
/// precedence and is left out.
pub fn semver_sort_key(v: &semver::Version) -> String {
    let mut key = format!("{:020}.{:020}.{:020}", v.major, v.minor, v.patch);
    if v.pre.is_empty() {
        key.push('~');
        return key;
    }
    for ident in v.pre.as_str().split('.') {
        key.push('!');
        match ident.parse::<u64>() {
            Ok(n) if ident.bytes().all(|b| b.is_ascii_digit()) => key.push_str(&format!("0{n:020}")),
            _ => {
                key.push('1');
                key.push_str(ident);
            }
        }
    }
    key.push(' ');
    key
}

// ----- releases -----

pub const RELEASES: &str = "RELEASES";

/// Sorts releases by creation time, then id; also the page cursor.
pub fn created_sort_key(created_at: DateTime<Utc>, id: ReleaseId) -> String {
    format!("{}#{id}", created_at.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
}

pub fn release(id: ReleaseId, status: ReleaseStatus, created_at: DateTime<Utc>) -> ItemKeys {
    let order = created_sort_key(created_at, id);
    release_key(id).gsi1(RELEASES, order.clone()).gsi2(release_status_pk(status), order)
}

pub fn release_status_pk(status: ReleaseStatus) -> String {
    format!("RELEASE_STATUS#{}", status.as_str())
}

/// The sort key of a release's link to one of its components.
pub fn member_sk(component: ComponentId) -> String {
    format!("MEMBER#{component}")
}

/// Links a release to a component it uses, so releases can be listed by component.
pub fn release_member(release: ReleaseId, component: ComponentId, created_at: DateTime<Utc>) -> ItemKeys {
    ItemKeys::new(release_pk(release), member_sk(component))
        .gsi1(releases_of_pk(component), created_sort_key(created_at, release))
}

pub fn releases_of_pk(component: ComponentId) -> String {
    format!("RELEASES_OF#{component}")
}

/// How a release stands in one environment; written by promotions.
pub fn release_environment(release: ReleaseId, environment: EnvironmentId) -> ItemKeys {
    ItemKeys::new(release_pk(release), format!("{ENVSTATE_PREFIX}{environment}"))
}

pub const ENVSTATE_PREFIX: &str = "ENVSTATE#";

// ----- environments -----

pub const ENVIRONMENTS: &str = "ENVIRONMENTS";

pub fn environment(id: EnvironmentId, order: u32) -> ItemKeys {
    environment_key(id).gsi1(ENVIRONMENTS, format!("{order:010}#{id}"))
}

pub fn unique_order(order: u32) -> ItemKeys {
    ItemKeys::new(format!("UNIQUE#ENVIRONMENT_ORDER#{order:010}"), "UNIQUE")
}

/// What runs of one component in one environment; written by promotions.
pub fn deployed_component(environment: EnvironmentId, component: ComponentId) -> ItemKeys {
    ItemKeys::new(environment_pk(environment), format!("{DEPLOYED_PREFIX}{component}"))
}

pub const DEPLOYED_PREFIX: &str = "DEPLOYED#";

pub const TARGET_PREFIX: &str = "TARGET#";

/// A deployment target in its environment's partition, findable by id through GSI1.
pub fn target(environment: EnvironmentId, id: TargetId) -> ItemKeys {
    ItemKeys::new(environment_pk(environment), format!("{TARGET_PREFIX}{id}")).gsi1(target_lookup(id), "TARGET")
}

pub fn target_lookup(id: TargetId) -> String {
    format!("TARGET#{id}")
}

// ----- registry integrations -----

pub const INTEGRATIONS: &str = "INTEGRATIONS";

pub fn integration_pk(id: IntegrationId) -> String {
    format!("INTEGRATION#{id}")
}

pub fn integration_key(id: IntegrationId) -> ItemKeys {
    ItemKeys::new(integration_pk(id), "INTEGRATION")
}

pub fn integration(id: IntegrationId, name: &str, kind: RegistrySource) -> ItemKeys {
    integration_key(id).gsi1(INTEGRATIONS, name).gsi2(integrations_of_kind_pk(kind), name)
}

pub fn integrations_of_kind_pk(kind: RegistrySource) -> String {
    format!("INTEGRATIONS#{kind}")
}

/// Finds an integration by the sha256 of its webhook secret.
pub fn webhook_secret(hash: &str) -> ItemKeys {
    ItemKeys::new(format!("WEBHOOK_SECRET#{hash}"), "WEBHOOK_SECRET")
}

// ----- CI integrations -----

pub const CI_INTEGRATIONS: &str = "CI_INTEGRATIONS";

pub fn ci_integration_key(id: CiIntegrationId) -> ItemKeys {
    ItemKeys::new(format!("CI_INTEGRATION#{id}"), "CI_INTEGRATION")
}

/// A CI integration, listed by name.
pub fn ci_integration(id: CiIntegrationId, name: &str) -> ItemKeys {
    ci_integration_key(id).gsi1(CI_INTEGRATIONS, name)
}

// ----- service accounts -----

pub const SERVICE_ACCOUNTS: &str = "SERVICE_ACCOUNTS";

pub fn service_account_pk(id: ServiceAccountId) -> String {
    format!("SERVICE_ACCOUNT#{id}")
}

pub fn service_account_key(id: ServiceAccountId) -> ItemKeys {
    ItemKeys::new(service_account_pk(id), "SERVICE_ACCOUNT")
}

pub fn service_account(id: ServiceAccountId, name: &str) -> ItemKeys {
    service_account_key(id).gsi1(SERVICE_ACCOUNTS, name)
}

// ----- promotions -----

pub fn promotion_pk(id: PromotionId) -> String {
    format!("PROMOTION#{id}")
}

pub fn promotions_pk(environment: EnvironmentId) -> String {
    format!("PROMOTIONS_OF#{environment}")
}

pub fn promotions_with_status_pk(environment: EnvironmentId, status: &str) -> String {
    format!("PROMOTIONS_OF#{environment}#{status}")
}

/// What has been reported of a promotion to CI systems, beside it.
pub fn promotion_reports(id: PromotionId) -> ItemKeys {
    ItemKeys::new(promotion_pk(id), "REPORTS")
}

/// The promotion step waiting for a CI run, found when the run's webhook comes.
pub fn ci_run_watch(integration: CiIntegrationId, run_id: &str) -> ItemKeys {
    ItemKeys::new(format!("CI_RUN#{integration}#{run_id}"), "WATCH")
}

/// A promotion, listed newest first per environment (GSI1) and per environment and status (GSI2).
pub fn promotion_key(id: PromotionId) -> ItemKeys {
    ItemKeys::new(promotion_pk(id), "PROMOTION")
}

pub fn promotion(id: PromotionId, environment: EnvironmentId, status: &str, created_at: DateTime<Utc>) -> ItemKeys {
    let order = format!("{}#{id}", stamp(created_at));
    promotion_key(id)
        .gsi1(promotions_pk(environment), order.clone())
        .gsi2(promotions_with_status_pk(environment, status), order)
}

pub const DEPLOYMENT_PREFIX: &str = "DEPLOYMENT#";

/// One target's deployment, in its promotion's partition.
pub fn deployment(promotion: PromotionId, target: TargetId) -> ItemKeys {
    ItemKeys::new(promotion_pk(promotion), format!("{DEPLOYMENT_PREFIX}{target}"))
}

/// How many of a promotion's deployments have not ended (`open`, a number): written with
/// them, counted down in the write that ends each, so whoever ends the last one knows it
/// with one read instead of reading every deployment.
pub fn open_deployments(promotion: PromotionId) -> ItemKeys {
    ItemKeys::new(promotion_pk(promotion), "OPEN_DEPLOYMENTS")
}

/// What a deployment applied, beside it (outside the `DEPLOYMENT#` range settling reads),
/// under the content's sha256: stored before the write that ends the deployment names it,
/// so a worker that lost its lease can leave content nothing names, never change what a
/// deployment names.
pub fn artifact(promotion: PromotionId, target: TargetId, sha256: &str) -> ItemKeys {
    ItemKeys::new(promotion_pk(promotion), format!("ARTIFACT#{target}#{sha256}"))
}

/// Where an artifact stored before artifacts were keyed by their hash is (read only).
pub fn artifact_unhashed(promotion: PromotionId, target: TargetId) -> ItemKeys {
    ItemKeys::new(promotion_pk(promotion), format!("ARTIFACT#{target}"))
}

/// An environment's auto-promotion hold.
pub fn hold(environment: EnvironmentId) -> ItemKeys {
    ItemKeys::new(environment_pk(environment), "HOLD")
}

// ----- evidence -----

pub const EVIDENCE_SEQ_PREFIX: &str = "SEQ#";

pub fn evidence_pk(environment: EnvironmentId) -> String {
    format!("EVIDENCE#{environment}")
}

pub fn evidence_sk(seq: u64) -> String {
    format!("{EVIDENCE_SEQ_PREFIX}{seq:020}")
}

pub fn evidence_of_pk(promotion: PromotionId) -> String {
    format!("EVIDENCE_OF#{promotion}")
}

/// The attribute of a promotion's item that lists the sequence numbers of its records in its
/// environment's chain: each write that seals records for the promotion appends theirs.
pub const EVIDENCE_SEQS: &str = "evidenceSeqs";

/// One record of an environment's chain, listed under `listed_under` (GSI1) when given: a
/// record sealed without its promotion's write (which lists it in [`EVIDENCE_SEQS`] instead),
/// and every record of a promotion stored before promotions listed them.
pub fn evidence(environment: EnvironmentId, seq: u64, listed_under: Option<PromotionId>) -> ItemKeys {
    let keys = ItemKeys::new(evidence_pk(environment), evidence_sk(seq));
    match listed_under {
        Some(p) => keys.gsi1(evidence_of_pk(p), evidence_sk(seq)),
        None => keys,
    }
}

/// The last record's place and hash.
pub fn evidence_head(environment: EnvironmentId) -> ItemKeys {
    ItemKeys::new(evidence_pk(environment), "HEAD")
}

/// The partition of the keys evidence was ever signed with (a handful of items).
pub const EVIDENCE_KEYS: &str = "EVIDENCE_KEYS";
pub const EVIDENCE_KEY_PREFIX: &str = "KEY#";

/// One evidence-signing key, by its JWK thumbprint.
pub fn evidence_key(key_id: &str) -> ItemKeys {
    ItemKeys::new(EVIDENCE_KEYS.to_owned(), format!("{EVIDENCE_KEY_PREFIX}{key_id}"))
}

// ----- CI builds -----

pub fn builds_pk(commit_sha: &str) -> String {
    format!("COMMIT#{commit_sha}")
}

/// One build of a commit; a later report of the same build replaces it.
pub fn build(commit_sha: &str, source: &str, build_id: &str) -> ItemKeys {
    ItemKeys::new(builds_pk(commit_sha), format!("{BUILD_PREFIX}{source}#{build_id}"))
}

/// The sort-key prefix of a commit's builds.
pub const BUILD_PREFIX: &str = "BUILD#";

// ----- ChatOps and notifications -----

/// Every Slack user mapping, under one partition (at most 1,000).
pub const SLACK_USERS: &str = "SLACK_USERS";
pub const SLACK_USER_PREFIX: &str = "USER#";

pub fn slack_user(team: &str, user: &str) -> ItemKeys {
    ItemKeys::new(SLACK_USERS.to_owned(), format!("{SLACK_USER_PREFIX}{team}#{user}"))
}

// ----- Pull agents -----

/// Every agent, under one partition (a few thousand at most): listing them is one Query.
pub const AGENTS: &str = "AGENTS";
pub const AGENT_PREFIX: &str = "AGENT#";

pub fn agent(id: gantry_domain::agents::AgentId) -> ItemKeys {
    ItemKeys::new(AGENTS.to_owned(), format!("{AGENT_PREFIX}{id}"))
}

/// An enrollment token, by its sha256; removed by TTL after it expires, deleted when used.
pub fn agent_enrollment(token_hash: &str) -> ItemKeys {
    ItemKeys::new(format!("ENROLL#{token_hash}"), "ENROLL")
}

/// A signed request's nonce, kept (then removed by TTL) while a replay could verify.
pub fn agent_nonce(agent: gantry_domain::agents::AgentId, nonce: &str) -> ItemKeys {
    ItemKeys::new(format!("NONCE#{agent}#{nonce}"), "NONCE")
}

/// An agent's jobs live in its own partition: what it may claim is one Query, and another
/// agent's job is never under its key.
pub fn agent_jobs_pk(agent: gantry_domain::agents::AgentId) -> String {
    format!("{AGENT_PREFIX}{agent}")
}
pub const AGENT_JOB_PREFIX: &str = "JOB#";

pub fn agent_job(agent: gantry_domain::agents::AgentId, promotion: PromotionId, target: TargetId) -> ItemKeys {
    ItemKeys::new(agent_jobs_pk(agent), format!("{AGENT_JOB_PREFIX}{promotion}#{target}"))
}

/// A dashboard session, by the sha256 of its id (the id itself is never stored).
pub fn dashboard_session(id_hash: &str) -> ItemKeys {
    ItemKeys::new(format!("SESSION#{id_hash}"), "SESSION")
}

/// Every notification subscription, under one partition (at most 100).
pub const SUBSCRIPTIONS: &str = "SUBSCRIPTIONS";
pub const SUBSCRIPTION_PREFIX: &str = "SUBSCRIPTION#";

pub fn subscription(id: SubscriptionId) -> ItemKeys {
    ItemKeys::new(SUBSCRIPTIONS.to_owned(), format!("{SUBSCRIPTION_PREFIX}{id}"))
}

/// Where a promotion's Slack approval card was posted, beside the promotion.
pub fn slack_card(promotion: PromotionId) -> ItemKeys {
    ItemKeys::new(promotion_pk(promotion), "SLACK_CARD")
}

// ----- webhook deliveries -----

/// One received event; its existence is how a redelivery is recognised.
pub fn delivery(delivery_key: &str) -> ItemKeys {
    ItemKeys::new(format!("DELIVERY#{delivery_key}"), "DELIVERY")
}

// ----- delivery insights -----

/// An environment's insight buckets and its health, in one partition: a window is one Query.
pub fn insights_pk(environment: EnvironmentId) -> String {
    format!("INSIGHTS#{environment}")
}

/// The sort key of a day's buckets; the environment's is `DAY#<day>#ENVIRONMENT`, a
/// component's `DAY#<day>#COMPONENT#<id>`, so a range of days is one `BETWEEN`.
pub fn insights_day(day: chrono::NaiveDate) -> String {
    format!("DAY#{day}#")
}

pub fn insights_bucket(environment: EnvironmentId, day: chrono::NaiveDate, component: Option<ComponentId>) -> ItemKeys {
    let scope = component.map_or_else(|| "ENVIRONMENT".to_owned(), |c| format!("COMPONENT#{c}"));
    ItemKeys::new(insights_pk(environment), format!("{}{scope}", insights_day(day)))
}

/// Since when the environment fails (`failingSince`), while it does.
pub fn insights_health(environment: EnvironmentId) -> ItemKeys {
    ItemKeys::new(insights_pk(environment), "HEALTH")
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
