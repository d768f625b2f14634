//! An AWS Application Load Balancer as a router: the two slots are target groups, weighted
//! on the listener's default forward action (`ModifyListener`) or on one of its rules
//! (`ModifyRule`), `ForwardConfig.TargetGroups[].Weight` each. A slot is up when its target
//! group has a healthy target (`DescribeTargetHealth`).
//!
//! The SDK retries throttling (`Throttling`, 400) with its standard backoff; ELB refusing the
//! change (a listener, rule or target group that does not exist, a configuration it does not
//! accept) is a `Validation` error: the rollout fails and traffic stays where it was.

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple, TargetHealthStateEnum,
};
use gantry_domain::traffic::{Matcher, Router, RouterChange, RouterConfig};
use gantry_domain::{DomainError, Result};
use tracing::instrument;

#[derive(Clone)]
pub struct Alb {
    pub client: Client,
}

/// An ELB error: ELB refusing the request is a `Validation` error the rollout fails with;
/// anything else (throttling past the SDK's retries, no answer) is `Internal`.
fn elb<E, R>(err: aws_sdk_elasticloadbalancingv2::error::SdkError<E, R>) -> DomainError
where
    E: aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let refused = err.as_service_error().and_then(|e| e.code().map(|code| (code.to_owned(), e.message())));
    match refused {
        Some((code, message)) if !matches!(code.as_str(), "Throttling" | "InternalFailure" | "ServiceUnavailable") => {
            let message: String = message.unwrap_or_default().chars().take(300).collect();
            DomainError::validation(format!("the load balancer refused ({code}): {message}"))
        }
        _ => DomainError::internal(format!("Elastic Load Balancing: {err:?}")),
    }
}

fn alb(config: &RouterConfig) -> Result<(&str, Option<&str>, [&str; 2])> {
    match config {
        RouterConfig::Alb { listener_arn, rule_arn, slots } if slots.len() == 2 => {
            Ok((listener_arn, rule_arn.as_deref(), [&slots[0].server, &slots[1].server]))
        }
        _ => Err(DomainError::internal("the ALB router got another router's configuration")),
    }
}

#[async_trait]
impl Router for Alb {
    #[instrument(skip_all, fields(slot = to, weight), err(level = "info"))]
    async fn shift(&self, config: &RouterConfig, to: usize, weight: u8) -> Result<RouterChange> {
        let (listener, rule, groups) = alb(config)?;
        let weights = [(groups[to % 2], i32::from(weight)), (groups[(to + 1) % 2], 100 - i32::from(weight))];
        let tuples =
            weights.iter().map(|(arn, w)| TargetGroupTuple::builder().target_group_arn(*arn).weight(*w).build());
        let forward = ForwardActionConfig::builder().set_target_groups(Some(tuples.collect())).build();
        let action = Action::builder().r#type(ActionTypeEnum::Forward).forward_config(forward).build();
        let shown = weights.iter().map(|(arn, w)| format!("{arn}={w}")).collect::<Vec<_>>().join(" ");
        let command = match rule {
            Some(rule) => {
                self.client.modify_rule().rule_arn(rule).actions(action).send().await.map_err(elb)?;
                format!("ModifyRule {rule} forward {shown}")
            }
            None => {
                self.client
                    .modify_listener()
                    .listener_arn(listener)
                    .default_actions(action)
                    .send()
                    .await
                    .map_err(elb)?;
                format!("ModifyListener {listener} forward {shown}")
            }
        };
        Ok(RouterChange::new("alb", vec![command]))
    }

    async fn route_matching(&self, _: &RouterConfig, _: &Matcher, _: Option<usize>) -> Result<RouterChange> {
        Err(DomainError::validation("an abTest routes through HAProxy"))
    }

    #[instrument(skip_all, fields(slot), err(level = "info"))]
    async fn ready(&self, config: &RouterConfig, slot: usize) -> Result<bool> {
        let (_, _, groups) = alb(config)?;
        let health =
            self.client.describe_target_health().target_group_arn(groups[slot % 2]).send().await.map_err(elb)?;
        Ok(health
            .target_health_descriptions()
            .iter()
            .any(|t| t.target_health().and_then(|h| h.state()) == Some(&TargetHealthStateEnum::Healthy)))
    }
}
