//! Steering a rollout's traffic by hand: `abortPromotion` puts every request back on the
//! stable version at once and removes the new one; `promoteFull` skips the remaining canary
//! steps (or ends an A/B test) and gives the new version every request. The deployments'
//! drivers read the request between and during their steps (see [`crate::traffic`]).

use super::*;
use crate::traffic::Control;

impl Promotions {
    /// Asks the running rollouts of a deploying promotion that steer traffic to abort or to
    /// promote in full; by whoever may approve in its environment. The request is sealed in
    /// evidence (`traffic_abort`, `traffic_promote_full`) before any driver acts on it.
    #[instrument(skip_all, fields(promotion_id = %id, ?control), err(level = "info"))]
    pub async fn steer(&self, id: PromotionId, control: Control, who: &Principal) -> Result<Promotion> {
        let kind = match control {
            Control::Abort => "traffic_abort",
            Control::PromoteFull => "traffic_promote_full",
            Control::Continue => return Err(DomainError::validation("ask for abort or promoteFull")),
        };
        let before = self.get(id).await?;
        let environment = self.environment(before.environment_id).await?;
        gates::check_approver(&environment, who)?;
        if before.status != PromotionStatus::Deploying {
            return Err(DomainError::conflict(format!(
                "promotion {id} is {}: only a deploying promotion's traffic can be steered",
                before.status.as_str()
            )));
        }
        let targets = self.rollout.targets.targets_of(before.environment_id).await?;
        let steered: Vec<_> =
            targets.iter().filter(|t| t.config.traffic().is_some()).map(|t| (t.id, t.name.to_string())).collect();
        if steered.is_empty() {
            return Err(DomainError::conflict(format!("promotion {id} deploys to no target steered through a router")));
        }
        let running = self.rollout.deployments.deployments_of(id).await?;
        let ids: Vec<_> = steered
            .iter()
            .map(|(id, _)| *id)
            .filter(|t| running.iter().any(|d| d.target_id == *t && !d.state.is_terminal()))
            .collect();
        if ids.is_empty() {
            return Err(DomainError::conflict(format!("promotion {id}'s steered rollouts have ended")));
        }
        // Sealed first: a driver may act on the request as soon as it is set.
        let names: Vec<&str> = steered.iter().filter(|(t, _)| ids.contains(t)).map(|(_, name)| name.as_str()).collect();
        let payload = who.stamp(json!({ "targets": names }));
        let saved = self.save(&before, before.clone(), kind, &who.subject, payload).await?;
        let reached = self.rollout.deployments.steer(id, &ids, control).await?;
        if reached.is_empty() {
            return Err(DomainError::conflict(format!("promotion {id}'s steered rollouts have ended")));
        }
        tracing::info!(targets = reached.len(), "rollout steered");
        Ok(saved)
    }
}
