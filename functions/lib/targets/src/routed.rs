//! A target behind a router: the new version starts in the free slot beside the stable one
//! (its own port, from the slot's environment), the router moves requests to it by the
//! target's strategy ([`crate::steer`]), and the stable version is stopped only once the new
//! one takes every request and the requests in flight to the old one have ended (as far as
//! the router tells), so a rollout has no downtime. When traffic goes back to the stable
//! version, the new one is removed once its requests in flight have ended, and the stable
//! one was never stopped.
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
            if stable.running {
                drain(router, traffic, stable.slot).await;
            }
            sides.take_over().await?;
            Ok(Ok(format!("{summary} (slot {})", slot.server)))
        }
        Ok(Err(why)) => {
            drain(router, traffic, new).await;
            sides.discard().await;
            Ok(Err(format!("{why}; the new version is removed")))
        }
        Err(err) => {
            let _ = router.shift(&traffic.router, new, 0).await;
            drain(router, traffic, new).await;
            sides.discard().await;
            Err(err)
        }
    }
}

/// How often a drain asks the router, and the longest it waits.
const DRAIN_TICK: std::time::Duration = std::time::Duration::from_millis(200);
pub(crate) const DRAIN_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits, once the router gives `slot` no more requests, until the requests in flight to it
/// have ended (at most [`DRAIN_WITHIN`]), so stopping its version cuts none. A router that
/// does not tell (or does not answer) is not waited for.
async fn drain(router: &dyn Router, traffic: &Traffic, slot: usize) {
    let deadline = tokio::time::Instant::now() + DRAIN_WITHIN;
    loop {
        match router.in_flight(&traffic.router, slot).await {
            Ok(Some(0)) | Ok(None) => return,
            Ok(Some(n)) if tokio::time::Instant::now() >= deadline => {
                tracing::warn!(slot, in_flight = n, "requests still in flight as the drain ends");
                return;
            }
            Ok(Some(_)) => tokio::time::sleep(DRAIN_TICK).await,
            Err(err) => {
                tracing::warn!(slot, error = %err, "the router did not say what is in flight; not draining");
                return;
            }
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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use gantry_domain::traffic::{Control, Matcher, RouterChange, RouterConfig, Strategy, TrafficStep};

    use super::*;

    /// Both sides, the router and the attempt, writing down what is done to them in order;
    /// the router answers `in_flight` from `answers` (then 0).
    #[derive(Default)]
    struct Fake {
        log: Mutex<Vec<String>>,
        answers: Mutex<VecDeque<Option<u64>>>,
    }

    impl Fake {
        fn answering(answers: impl IntoIterator<Item = Option<u64>>) -> Self {
            Self { log: Mutex::default(), answers: Mutex::new(answers.into_iter().collect()) }
        }

        fn did(&self, what: String) {
            self.log.lock().unwrap().push(what);
        }

        fn log(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Sides for Fake {
        async fn stable(&self) -> (bool, Option<String>) {
            (true, Some("blue".into()))
        }
        async fn start(&self, slot: &Slot) -> Result<Option<String>> {
            self.did(format!("start {}", slot.server));
            Ok(None)
        }
        async fn discard(&self) {
            self.did("discard".into());
        }
        async fn take_over(&self) -> Result<()> {
            self.did("take over".into());
            Ok(())
        }
    }

    #[async_trait]
    impl Router for Fake {
        async fn shift(&self, _: &RouterConfig, to: usize, weight: u8) -> Result<RouterChange> {
            self.did(format!("shift {to} {weight}"));
            Ok(RouterChange::new("fake", Vec::new()))
        }
        async fn route_matching(&self, _: &RouterConfig, _: &Matcher, _: Option<usize>) -> Result<RouterChange> {
            Err(DomainError::internal("no A/B test here"))
        }
        async fn ready(&self, _: &RouterConfig, _: usize) -> Result<bool> {
            Ok(true)
        }
        async fn in_flight(&self, _: &RouterConfig, slot: usize) -> Result<Option<u64>> {
            let answer = self.answers.lock().unwrap().pop_front().unwrap_or(Some(0));
            self.did(format!("in flight {slot}: {answer:?}"));
            Ok(answer)
        }
    }

    #[async_trait]
    impl Attempt for Fake {
        fn prior(&self) -> Option<&str> {
            None
        }
        async fn remember(&self, prior: &str) -> Result<String> {
            Ok(prior.to_owned())
        }
        async fn traffic(&self, _: &TrafficStep) -> Result<Control> {
            Ok(Control::Continue)
        }
        async fn control(&self) -> Result<Control> {
            Ok(Control::Continue)
        }
    }

    fn blue_green() -> Traffic {
        let slot = |server: &str| Slot { server: server.into(), env: Default::default(), workload: None };
        let router = RouterConfig::Haproxy {
            admin: "unix:///run/haproxy.sock".into(),
            backend: "web".into(),
            slots: vec![slot("blue"), slot("green")],
            ab_map: None,
        };
        Traffic { router, strategy: Strategy::BlueGreen }
    }

    const SWITCH: [&str; 4] = ["shift 1 0", "discard", "start green", "shift 1 100"];

    #[tokio::test(start_paused = true)]
    async fn the_old_version_stops_once_its_requests_in_flight_have_ended() {
        let fake = Fake::answering([Some(2), Some(1), Some(0)]);
        let rolled = roll_out(&fake, &fake, &blue_green(), &fake).await.unwrap();
        assert!(rolled.is_ok(), "{rolled:?}");
        let drained = ["in flight 0: Some(2)", "in flight 0: Some(1)", "in flight 0: Some(0)", "take over"];
        assert_eq!(fake.log(), [&SWITCH[..], &drained[..]].concat());
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_ends_after_its_limit_and_a_router_that_does_not_tell_is_not_waited_for() {
        let fake = Fake::answering(std::iter::repeat_n(Some(1), 1000));
        let started = tokio::time::Instant::now();
        roll_out(&fake, &fake, &blue_green(), &fake).await.unwrap().unwrap();
        assert!(started.elapsed() >= DRAIN_WITHIN, "waited the whole limit");
        assert!(started.elapsed() < DRAIN_WITHIN + std::time::Duration::from_secs(1));
        assert_eq!(fake.log().last().map(String::as_str), Some("take over"), "and then stopped it");

        let fake = Fake::answering([None]);
        roll_out(&fake, &fake, &blue_green(), &fake).await.unwrap().unwrap();
        assert_eq!(fake.log(), [&SWITCH[..], &["in flight 0: None", "take over"]].concat());
    }
}
