//! Traffic: how a rollout moves user requests from the stable version to the new one through
//! a router, modelled on Argo Rollouts.
//!
//! - `canary`: both versions run side by side while the new one's weight moves in steps
//!   (5 → 25 → 50 → 100), each held for a pause or an analysis. A failed analysis or an abort
//!   puts every request back on the stable version at once; `promoteFull` skips the rest.
//! - `abTest`: requests whose header or cookie matches reach the new version, the rest the
//!   stable one, until the promotion is promoted in full or aborted.
//! - `blueGreen`: the new version starts beside the old one, the router switches every
//!   request at once, and the old one stops: no downtime.
//!
//! A router is a port ([`Router`]); its adapters (HAProxy's Runtime API, ALB weighted target
//! groups, Consul's service splitter) live with the drivers. Every change it makes is
//! recorded as a [`TrafficStep`] on the deployment, with the commands it sent and their
//! sha256, and sealed in the promotion's evidence with the deployment's result.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::analysis::AnalysisSpec;
use crate::error::{DomainError, Result};

/// Canary steps at most.
pub const MAX_STEPS: usize = 10;
/// The longest pause of a step, and the longest an A/B test waits to be promoted or aborted.
pub const MAX_PAUSE_SECONDS: u32 = 3600;

/// Where a target's traffic is steered, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Traffic {
    pub router: RouterConfig,
    pub strategy: Strategy,
}

/// A router and the two places (slots) a version can run behind it: the stable version
/// holds one, the new version starts in the other, and they swap with each rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum RouterConfig {
    /// HAProxy, steered through its Runtime API (`set server <backend>/<server> weight`),
    /// so nothing reloads.
    #[serde(rename = "haproxy", rename_all = "camelCase")]
    Haproxy {
        /// The admin socket: `unix:///path` or `tcp://host:port` on loopback.
        admin: String,
        backend: String,
        /// Exactly two, one server each.
        slots: Vec<Slot>,
        /// For `abTest`: the map file whose entries (`<matched value> <server>`) the
        /// backend's `use-server` rules read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ab_map: Option<String>,
    },
    /// An AWS Application Load Balancer: weighted target groups on a listener's default
    /// action, or on one of its rules (`ModifyListener` / `ModifyRule` with
    /// `ForwardConfig.TargetGroups[].Weight`). Each slot's server is a target group's ARN,
    /// and its workload the ECS service registered with it.
    #[serde(rename = "alb", rename_all = "camelCase")]
    Alb {
        listener_arn: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule_arn: Option<String>,
        slots: Vec<Slot>,
    },
    /// Consul's service mesh, for Nomad: a `service-resolver` defines one subset per slot
    /// (instances whose service meta `gantry_slot` names it) and a `service-splitter`
    /// weights them, both written through Consul's HTTP API (`PUT /v1/config`). Each slot's
    /// server is a subset's name, and its workload the Nomad job that runs it.
    #[serde(rename = "consul", rename_all = "camelCase")]
    Consul {
        /// `https://host:port` (or `http://` on loopback) of Consul's HTTP API.
        address: String,
        /// Where the ACL token is kept: `env:CONSUL_...`, `ssm:/path` or `secretsmanager:name`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_ref: Option<String>,
        /// The service clients address, whose resolver and splitter Gantry writes.
        service: String,
        slots: Vec<Slot>,
    },
}

/// One place a version runs: the router's name for it, and what the container is given to
/// serve there (on the host network, a port of its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    pub server: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// What runs in the slot where the target does not start it itself: an ECS service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Strategy {
    #[serde(rename = "canary")]
    Canary { steps: Vec<CanaryStep> },
    /// Requests matching `matcher` reach the new version until it is promoted or aborted,
    /// for at most `max_seconds`, after which it is promoted.
    #[serde(rename = "abTest", rename_all = "camelCase")]
    AbTest { matcher: Matcher, max_seconds: u32 },
    #[serde(rename = "blueGreen")]
    BlueGreen,
}

/// What an A/B test matches: a request header's value, or a cookie's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    pub source: MatchSource,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchSource {
    Header,
    Cookie,
}

/// One step of a canary: the new version's weight (percent), then a pause or an analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStep {
    pub set_weight: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSpec>,
}

/// What a router was asked, in its own words, and the sha256 of those words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterChange {
    pub router: String,
    pub commands: Vec<String>,
    pub sha256: String,
}

impl RouterChange {
    pub fn new(router: &str, commands: Vec<String>) -> Self {
        let sha256 = crate::values::Digest::of(commands.join("\n").as_bytes()).to_string();
        Self { router: router.to_owned(), commands, sha256 }
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepVerdict {
    /// The weight is set; its pause or analysis runs.
    Holding,
    /// Its pause ran out, or its analysis passed.
    Passed,
    /// Its analysis failed: traffic goes back to the stable version.
    Failed,
    /// Someone aborted the promotion.
    Aborted,
    /// Someone promoted it in full: the remaining steps are skipped.
    Skipped,
    /// Traffic went back to the stable version.
    RolledBack,
    /// The new version takes every request.
    Completed,
}

/// One move of a deployment's traffic, as recorded on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficStep {
    /// The new version's share, in percent.
    pub weight: u8,
    pub at: DateTime<Utc>,
    pub verdict: StepVerdict,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<RouterChange>,
}

/// What an operator asked of a rollout that steers traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    Continue,
    /// Every request back on the stable version, and the new one removed.
    Abort,
    /// Skip the remaining steps: the new version takes every request.
    PromoteFull,
}

/// Steers requests between two slots. `Validation` is the router refusing the change (the
/// rollout fails and traffic stays where it was); anything else is the router not answering.
#[async_trait]
pub trait Router: Send + Sync {
    /// Gives the `to` slot `weight` percent of the requests and the other slot the rest.
    async fn shift(&self, config: &RouterConfig, to: usize, weight: u8) -> Result<RouterChange>;
    /// Sends requests matching `matcher` to slot `to` (`Some`), or no longer (`None`).
    async fn route_matching(&self, config: &RouterConfig, matcher: &Matcher, to: Option<usize>)
    -> Result<RouterChange>;
    /// Whether the router counts slot `slot` as up (its health checks pass), so it would
    /// be given requests.
    async fn ready(&self, config: &RouterConfig, slot: usize) -> Result<bool>;
    /// How many requests the router has in flight to slot `slot`, when it tells (HAProxy
    /// does; an ALB's or Consul's API does not, and they answer `None`).
    async fn in_flight(&self, _config: &RouterConfig, _slot: usize) -> Result<Option<u64>> {
        Ok(None)
    }
}

impl Traffic {
    pub fn slots(&self) -> &[Slot] {
        match &self.router {
            RouterConfig::Haproxy { slots, .. }
            | RouterConfig::Alb { slots, .. }
            | RouterConfig::Consul { slots, .. } => slots,
        }
    }

    /// Checks everything that can be checked without reaching the router.
    pub fn check(&self) -> Result<()> {
        let invalid = |why: String| Err(DomainError::validation(format!("traffic: {why}")));
        let slots = self.slots();
        if slots.len() != 2 {
            return invalid("a router has exactly two slots".into());
        }
        if slots[0].server == slots[1].server {
            return invalid("the two slots name the same server".into());
        }
        for slot in slots {
            if slot.env.len() > 16 || slot.env.iter().any(|(k, v)| !env_name(k) || v.len() > 1000) {
                return invalid("a slot's env has at most 16 variables, each NAME=value".into());
            }
        }
        match &self.router {
            RouterConfig::Haproxy { admin, backend, ab_map, .. } => {
                check_admin(admin)?;
                if !haproxy_name(backend) {
                    return invalid(format!("backend {backend:?} must be 1-64 of a-z, A-Z, 0-9, _ . : -"));
                }
                if let Some(slot) = slots.iter().find(|s| !haproxy_name(&s.server)) {
                    return invalid(format!("server {:?} must be 1-64 of a-z, A-Z, 0-9, _ . : -", slot.server));
                }
                if let Some(map) = ab_map
                    && (!map.starts_with('/') || map.len() > 256 || !map.chars().all(|c| c.is_ascii_graphic()))
                {
                    return invalid("abMap must be an absolute path".into());
                }
                if matches!(self.strategy, Strategy::AbTest { .. }) && ab_map.is_none() {
                    return invalid("an abTest needs the router's abMap".into());
                }
            }
            RouterConfig::Alb { listener_arn, rule_arn, .. } => {
                check_arn("listenerArn", listener_arn, "listener/")?;
                if let Some(rule) = rule_arn {
                    check_arn("ruleArn", rule, "listener-rule/")?;
                }
                for slot in slots {
                    check_arn("a slot's target group", &slot.server, "targetgroup/")?;
                }
            }
            RouterConfig::Consul { address, token_ref, service, .. } => {
                let url = crate::outbound::parse("traffic: Consul address", address, 512)?;
                if !matches!(url.path(), "" | "/") || url.query().is_some() {
                    return invalid(format!("Consul address {address:?} must be http(s)://host:port"));
                }
                if let Some(r) = token_ref {
                    crate::engines::check_secret_ref("tokenRef", r, "CONSUL_")?;
                }
                let word = |s: &str| {
                    (1..=64).contains(&s.len())
                        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                };
                if !word(service) || slots.iter().any(|s| !word(&s.server)) {
                    return invalid("a Consul service and its subsets are 1-64 of a-z, 0-9 and -".into());
                }
            }
        }
        if !matches!(self.router, RouterConfig::Haproxy { .. }) && matches!(self.strategy, Strategy::AbTest { .. }) {
            return invalid("an abTest routes through HAProxy; ALB and Consul routers take canary or blueGreen".into());
        }
        self.strategy.check()
    }
}

/// An Elastic Load Balancing ARN of `kind` (`listener/`, `listener-rule/`, `targetgroup/`).
fn check_arn(what: &str, arn: &str, kind: &str) -> Result<()> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = arn.len() <= 512
        && parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "elasticloadbalancing"
        && parts[5].starts_with(kind)
        && arn.chars().all(|c| c.is_ascii_graphic());
    if ok { Ok(()) } else { Err(DomainError::validation(format!("traffic: {what} must be an ELB {kind} ARN"))) }
}

impl Strategy {
    fn check(&self) -> Result<()> {
        let invalid = |why: String| Err(DomainError::validation(format!("traffic: {why}")));
        match self {
            Self::Canary { steps } => {
                if steps.is_empty() || steps.len() > MAX_STEPS {
                    return invalid(format!("a canary has 1 to {MAX_STEPS} steps"));
                }
                let mut last = 0;
                for (i, step) in steps.iter().enumerate() {
                    if !(1..=100).contains(&step.set_weight) || step.set_weight < last {
                        return invalid(format!("step {}: setWeight must be 1-100 and never go down", i + 1));
                    }
                    last = step.set_weight;
                    match (step.pause_seconds, &step.analysis) {
                        (Some(p), None) if (1..=MAX_PAUSE_SECONDS).contains(&p) => {}
                        (None, Some(analysis)) => analysis.check(&format!("canary step {}", i + 1))?,
                        _ => {
                            return invalid(format!(
                                "step {}: give a pause (1-{MAX_PAUSE_SECONDS} seconds) or an analysis",
                                i + 1
                            ));
                        }
                    }
                }
                Ok(())
            }
            Self::AbTest { matcher, max_seconds } => {
                if !(1..=MAX_PAUSE_SECONDS).contains(max_seconds) {
                    return invalid(format!("an abTest's maxSeconds must be 1-{MAX_PAUSE_SECONDS}"));
                }
                let word = |s: &str| {
                    (1..=128).contains(&s.len()) && s.chars().all(|c| c.is_ascii_graphic() && !"\";,\\".contains(c))
                };
                if !word(&matcher.name) || !word(&matcher.value) {
                    return invalid("an abTest matches a name and a value of 1-128 printable characters".into());
                }
                Ok(())
            }
            Self::BlueGreen => Ok(()),
        }
    }
}

/// A socket on this host, or a TCP port on loopback: the Runtime API has no authentication
/// of its own, so it is never reached across a network.
fn check_admin(admin: &str) -> Result<()> {
    let refuse = |why: &str| DomainError::validation(format!("traffic: admin {why}"));
    let url = Url::parse(admin).map_err(|_| refuse("must be unix:///path or tcp://127.0.0.1:port"))?;
    if admin.len() > 256 || !url.username().is_empty() || url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("must be unix:///path or tcp://127.0.0.1:port"));
    }
    match url.scheme() {
        "unix" if url.host_str().is_none_or(str::is_empty) && url.path().len() > 1 => Ok(()),
        "tcp" if url.port().is_some() && matches!(url.path(), "" | "/") && crate::outbound::is_loopback(&url) => Ok(()),
        "tcp" => Err(refuse("over TCP must be on loopback: the Runtime API has no authentication")),
        _ => Err(refuse("must be unix:///path or tcp://127.0.0.1:port")),
    }
}

fn haproxy_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
}

fn env_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && !name.contains(['=', '\0'])
}

#[cfg(test)]
#[path = "traffic_tests.rs"]
mod tests;
