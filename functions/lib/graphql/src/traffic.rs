//! Traffic in GraphQL: a target's router and strategy (input and output), and each
//! deployment's traffic steps. The mutations that steer a rollout are the delivery
//! context's (`delivery::steering`).

use async_graphql::{Enum, InputObject, OneofObject, SimpleObject};
use chrono::{DateTime, Utc};
use gantry_domain::traffic as domain;
use gantry_domain::{DomainError, Result};

use crate::types::{KeyValue, KeyValueInput};

/// A router in front of the container and how requests move to each new version.
#[derive(InputObject)]
pub struct TrafficInput {
    pub router: RouterInput,
    pub strategy: StrategyInput,
}

#[derive(OneofObject)]
pub enum RouterInput {
    Haproxy(HaproxyRouterInput),
    Alb(AlbRouterInput),
    Consul(ConsulRouterInput),
}

/// Consul's service mesh, for Nomad targets: Gantry writes the service's resolver (a subset
/// per slot, by service meta `gantry_slot`) and splitter.
#[derive(InputObject)]
pub struct ConsulRouterInput {
    /// `https://host:port` (or `http://` on loopback) of Consul's HTTP API.
    pub address: String,
    /// Where the ACL token is kept: `env:CONSUL_...`, `ssm:/path` or `secretsmanager:name`.
    pub token_ref: Option<String>,
    pub service: String,
    /// Exactly two: each a subset name and the Nomad job that runs it.
    pub slots: Vec<ConsulSlotInput>,
}

#[derive(InputObject)]
pub struct ConsulSlotInput {
    pub subset: String,
    pub job_id: String,
}

/// An AWS Application Load Balancer, for ECS targets: weighted target groups on the
/// listener's default action, or on one of its rules.
#[derive(InputObject)]
pub struct AlbRouterInput {
    pub listener_arn: String,
    pub rule_arn: Option<String>,
    /// Exactly two: each a target group and the ECS service registered with it.
    pub slots: Vec<AlbSlotInput>,
}

#[derive(InputObject)]
pub struct AlbSlotInput {
    pub target_group_arn: String,
    pub service: String,
}

/// HAProxy, steered through its Runtime API.
#[derive(InputObject)]
pub struct HaproxyRouterInput {
    /// The admin socket: `unix:///path` or `tcp://127.0.0.1:port`.
    pub admin: String,
    pub backend: String,
    /// Exactly two: where the stable and the new version take turns.
    pub slots: Vec<SlotInput>,
    /// For an A/B test: the map file the backend's `use-server` rules read.
    pub ab_map: Option<String>,
}

/// A server of the backend, and the environment a container serving it gets (its port).
#[derive(InputObject)]
pub struct SlotInput {
    pub server: String,
    #[graphql(default)]
    pub env: Vec<KeyValueInput>,
}

#[derive(OneofObject)]
pub enum StrategyInput {
    Canary(CanaryInput),
    AbTest(AbTestInput),
    /// Switch every request at once (the value is ignored).
    BlueGreen(bool),
}

#[derive(InputObject)]
pub struct CanaryInput {
    pub steps: Vec<CanaryStepInput>,
}

/// The new version's weight (percent), held for a pause or an analysis.
#[derive(InputObject)]
pub struct CanaryStepInput {
    pub set_weight: u8,
    pub pause_seconds: Option<u32>,
    pub analysis: Option<crate::analysis::AnalysisInput>,
}

/// Requests whose header (or cookie) `name` is `value` reach the new version until it is
/// promoted in full or aborted, or `maxSeconds` pass (then it is promoted).
#[derive(InputObject)]
pub struct AbTestInput {
    pub header: Option<MatchInput>,
    pub cookie: Option<MatchInput>,
    pub max_seconds: u32,
}

#[derive(InputObject)]
pub struct MatchInput {
    pub name: String,
    pub value: String,
}

impl TrafficInput {
    pub(crate) fn into_domain(self) -> Result<domain::Traffic> {
        let router = match self.router {
            RouterInput::Haproxy(h) => {
                let slots = h
                    .slots
                    .into_iter()
                    .map(|s| domain::Slot {
                        server: s.server,
                        env: s.env.into_iter().map(|kv| (kv.key, kv.value)).collect(),
                        workload: None,
                    })
                    .collect();
                domain::RouterConfig::Haproxy { admin: h.admin, backend: h.backend, slots, ab_map: h.ab_map }
            }
            RouterInput::Alb(a) => {
                let slots = a
                    .slots
                    .into_iter()
                    .map(|s| domain::Slot {
                        server: s.target_group_arn,
                        env: Default::default(),
                        workload: Some(s.service),
                    })
                    .collect();
                domain::RouterConfig::Alb { listener_arn: a.listener_arn, rule_arn: a.rule_arn, slots }
            }
            RouterInput::Consul(c) => {
                let slots = c
                    .slots
                    .into_iter()
                    .map(|s| domain::Slot { server: s.subset, env: Default::default(), workload: Some(s.job_id) })
                    .collect();
                domain::RouterConfig::Consul { address: c.address, token_ref: c.token_ref, service: c.service, slots }
            }
        };
        let strategy = match self.strategy {
            StrategyInput::Canary(c) => domain::Strategy::Canary {
                steps: c
                    .steps
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let analysis =
                            s.analysis.map(|a| a.into_spec(&format!("canary step {}", i + 1))).transpose()?;
                        Ok(domain::CanaryStep { set_weight: s.set_weight, pause_seconds: s.pause_seconds, analysis })
                    })
                    .collect::<Result<_>>()?,
            },
            StrategyInput::AbTest(ab) => {
                let matcher = match (ab.header, ab.cookie) {
                    (Some(m), None) => {
                        domain::Matcher { source: domain::MatchSource::Header, name: m.name, value: m.value }
                    }
                    (None, Some(m)) => {
                        domain::Matcher { source: domain::MatchSource::Cookie, name: m.name, value: m.value }
                    }
                    _ => return Err(DomainError::validation("traffic: an abTest matches a header or a cookie")),
                };
                domain::Strategy::AbTest { matcher, max_seconds: ab.max_seconds }
            }
            StrategyInput::BlueGreen(_) => domain::Strategy::BlueGreen,
        };
        Ok(domain::Traffic { router, strategy })
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum TrafficStrategy {
    Canary,
    AbTest,
    BlueGreen,
}

/// A target's router and strategy.
#[derive(SimpleObject)]
pub struct Traffic {
    /// `haproxy`, `alb` or `consul`.
    pub router: String,
    /// HAProxy's Runtime API address.
    pub admin: Option<String>,
    /// Consul's HTTP API, and the service whose resolver and splitter it keeps.
    pub address: Option<String>,
    pub service: Option<String>,
    pub backend: Option<String>,
    /// The ALB listener (and rule) whose forward action is weighted.
    pub listener_arn: Option<String>,
    pub rule_arn: Option<String>,
    pub slots: Vec<Slot>,
    pub strategy: TrafficStrategy,
    /// A canary's steps: each weight (percent) with its pause, or null for an analysis.
    pub canary_steps: Vec<CanaryStep>,
}

/// Where a version runs: an HAProxy server (and the environment its container gets), or
/// an ALB target group (and the ECS service registered with it).
#[derive(SimpleObject)]
pub struct Slot {
    pub server: String,
    pub env: Vec<KeyValue>,
    pub workload: Option<String>,
}

#[derive(SimpleObject)]
pub struct CanaryStep {
    pub set_weight: u8,
    pub pause_seconds: Option<u32>,
    pub analysis: bool,
}

impl From<&domain::Traffic> for Traffic {
    fn from(t: &domain::Traffic) -> Self {
        let slots = t
            .slots()
            .iter()
            .map(|s| Slot {
                server: s.server.clone(),
                env: s.env.iter().map(|(key, value)| KeyValue { key: key.clone(), value: value.clone() }).collect(),
                workload: s.workload.clone(),
            })
            .collect();
        let mut out = Self {
            router: String::new(),
            admin: None,
            address: None,
            service: None,
            backend: None,
            listener_arn: None,
            rule_arn: None,
            slots,
            strategy: TrafficStrategy::BlueGreen,
            canary_steps: Vec::new(),
        };
        match &t.router {
            domain::RouterConfig::Haproxy { admin, backend, .. } => {
                (out.admin, out.backend) = (Some(admin.clone()), Some(backend.clone()));
            }
            domain::RouterConfig::Alb { listener_arn, rule_arn, .. } => {
                (out.listener_arn, out.rule_arn) = (Some(listener_arn.clone()), rule_arn.clone());
            }
            domain::RouterConfig::Consul { address, service, .. } => {
                (out.address, out.service) = (Some(address.clone()), Some(service.clone()));
            }
        }
        out.router = serde_json::to_value(&t.router)
            .ok()
            .and_then(|v| v["kind"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let (strategy, canary_steps) = match &t.strategy {
            domain::Strategy::Canary { steps } => (
                TrafficStrategy::Canary,
                steps
                    .iter()
                    .map(|s| CanaryStep {
                        set_weight: s.set_weight,
                        pause_seconds: s.pause_seconds,
                        analysis: s.analysis.is_some(),
                    })
                    .collect(),
            ),
            domain::Strategy::AbTest { .. } => (TrafficStrategy::AbTest, Vec::new()),
            domain::Strategy::BlueGreen => (TrafficStrategy::BlueGreen, Vec::new()),
        };
        (out.strategy, out.canary_steps) = (strategy, canary_steps);
        out
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "gantry_domain::traffic::StepVerdict")]
pub enum StepVerdict {
    Holding,
    Passed,
    Failed,
    Aborted,
    Skipped,
    RolledBack,
    Completed,
}

/// One move of a deployment's traffic.
#[derive(SimpleObject)]
pub struct TrafficStep {
    /// The new version's share of requests, in percent.
    pub weight: u8,
    pub at: DateTime<Utc>,
    pub verdict: StepVerdict,
    pub detail: String,
    /// What the router was asked, when this step changed it.
    pub change: Option<RouterChange>,
}

#[derive(SimpleObject)]
pub struct RouterChange {
    pub router: String,
    pub commands: Vec<String>,
    /// `sha256:<hex>` of the commands, one per line: what evidence seals.
    pub sha256: String,
}

impl From<&domain::TrafficStep> for TrafficStep {
    fn from(s: &domain::TrafficStep) -> Self {
        Self {
            weight: s.weight,
            at: s.at,
            verdict: s.verdict.into(),
            detail: s.detail.clone(),
            change: s.change.as_ref().map(|c| RouterChange {
                router: c.router.clone(),
                commands: c.commands.clone(),
                sha256: c.sha256.clone(),
            }),
        }
    }
}
