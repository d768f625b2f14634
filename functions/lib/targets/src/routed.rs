//! A target behind a router: the new version starts in the free slot beside the stable one
//! (its own port, from the slot's environment), the router moves requests to it by the
//! target's strategy ([`crate::steer`]), and the stable version is stopped only once the new
//! one takes every request, so a rollout has no downtime. When traffic goes back to the
//! stable version, the new one is removed and the stable one was never stopped.
//!
//! What runs in a slot ([`Sides`]) is a container (Docker targets) or a whole stack
//! (Compose targets). The version taking over is labelled `gantry.slot` with its server,
//! and the next rollout starts in the other slot; a stable version without the label
//! counts as the first slot's.

use async_trait::async_trait;
use gantry_domain::artifacts::Applied;
use gantry_domain::deployments::{Attempt, DriverOutcome, prior_or_remember};
use gantry_domain::traffic::{Router, Slot, Traffic};
use gantry_domain::{DomainError, Result};
use serde::{Deserialize, Serialize};

use crate::steer::Steer;

/// The two versions of a target's workload.
#[async_trait]
pub(crate) trait Sides: Send + Sync {
    /// Whether the stable version runs, and the server its `gantry.slot` label names.
    async fn stable(&self) -> (bool, Option<String>);
    /// Starts the new version in `slot`: `None` once it is up, or why it did not come up
    /// (and it is removed).
    async fn start(&self, slot: &Slot) -> Result<Option<String>>;
    /// Removes the new version.
    async fn discard(&self);
    /// Stops and removes the stable version, and gives the new one its names.
    async fn take_over(&self) -> Result<()>;
}

/// What ran before the rollout: whether the stable version ran, and its slot.
#[derive(Serialize, Deserialize)]
struct Stable {
    running: bool,
    slot: usize,
}

/// Rolls the new version out beside the stable one and steers requests to it: `Ok(summary)`
/// once it took over, `Err(why)` when the stable version keeps every request.
pub(crate) async fn roll_out(
    sides: &dyn Sides,
    router: &dyn Router,
    traffic: &Traffic,
    attempt: &dyn Attempt,
) -> Result<std::result::Result<String, String>> {
    let (running, label) = sides.stable().await;
    let slot = traffic.slots().iter().position(|s| Some(&s.server) == label.as_ref()).unwrap_or(0);
    // A worker taking over keeps the first attempt's slots: the stable one never moves.
    let (stable, _) = prior_or_remember(attempt, Stable { running, slot }).await?;
    let new = if stable.running { 1 - stable.slot } else { stable.slot };
    if stable.running {
        // Whatever an earlier attempt moved goes back before its version is replaced.
        match router.shift(&traffic.router, new, 0).await {
            Ok(_) => {}
            Err(DomainError::Validation(why)) => {
                return Ok(Err(format!("the router refused a change: {why}; nothing was changed")));
            }
            Err(err) => return Err(err),
        }
    }
    sides.discard().await;
    let slot = &traffic.slots()[new];
    if let Some(why) = sides.start(slot).await? {
        return Ok(Err(format!("{why}; the stable version keeps every request")));
    }
    let prober = gantry_ci::HttpProber::default();
    let steer = Steer { router, traffic, attempt, prober: &prober, new };
    let steered = if stable.running { steer.run().await } else { steer.first().await };
    match steered {
        Ok(Ok(summary)) => {
            sides.take_over().await?;
            Ok(Ok(format!("{summary} (slot {})", slot.server)))
        }
        Ok(Err(why)) => {
            sides.discard().await;
            Ok(Err(format!("{why}; the new version is removed")))
        }
        Err(err) => {
            let _ = router.shift(&traffic.router, new, 0).await;
            sides.discard().await;
            Err(err)
        }
    }
}

/// The deployment's outcome from [`roll_out`]'s: `runs` says what runs once it succeeded.
pub(crate) fn outcome(
    rolled: std::result::Result<String, String>,
    applied: Option<Applied>,
    runs: &str,
) -> DriverOutcome {
    match rolled {
        Ok(summary) => DriverOutcome { succeeded: true, applied, message: format!("{summary}; {runs}") },
        Err(why) => DriverOutcome { succeeded: false, applied, message: why },
    }
}

/// A slot's environment as `NAME=value` entries.
pub(crate) fn slot_env(slot: &Slot) -> impl Iterator<Item = String> + '_ {
    slot.env.iter().map(|(k, v)| format!("{k}={v}"))
}
