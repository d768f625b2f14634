//! An ECS target behind an ALB: two services, one per slot (each registered with its target
//! group), take turns. The new revision is registered from the stable service's task
//! definition, runs in the idle service at the stable one's size, and requests move to its
//! target group by the strategy ([`crate::routed`]); once it takes every request the stable
//! service is scaled to zero, and when requests go back the new one is.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use gantry_domain::artifacts::{Applied, ArtifactKind};
use gantry_domain::deployments::{Attempt, DriverOutcome};
use gantry_domain::ids::ComponentId;
use gantry_domain::model::Release;
use gantry_domain::traffic::{Slot, Traffic};
use gantry_domain::{DomainError, Result};

use crate::ecs::{EcsDriver, ecs, pin, task_definition_json};
use crate::routed::Sides;

struct Services<'a> {
    driver: &'a EcsDriver,
    cluster: &'a str,
    traffic: &'a Traffic,
    containers: &'a BTreeMap<String, ComponentId>,
    release: &'a Release,
    /// The slot whose service runs now, and its desired count, once read.
    stable: Mutex<Option<(usize, i32)>>,
    /// The slot the new revision runs in, and what was registered for it.
    started: Mutex<Option<(usize, Applied)>>,
}

impl Services<'_> {
    fn service(&self, slot: usize) -> &str {
        self.traffic.slots()[slot].workload.as_deref().unwrap_or_default()
    }

    async fn scale(&self, slot: usize, count: i32) -> Result<()> {
        let update = self.driver.client.update_service().cluster(self.cluster).service(self.service(slot));
        update.desired_count(count).send().await.map_err(ecs).map(drop)
    }

    /// Starts `next` in the service of `slot` at `count` tasks and follows it.
    async fn run(&self, slot: usize, next: &str, count: i32) -> Result<std::result::Result<(), String>> {
        let service = self.service(slot);
        let update = self.driver.client.update_service().cluster(self.cluster).service(service);
        update.task_definition(next).desired_count(count).send().await.map_err(ecs)?;
        self.driver.rollout(self.cluster, service, next).await
    }
}

#[async_trait]
impl Sides for Services<'_> {
    async fn stable(&self) -> (bool, Option<String>) {
        let names = [self.service(0), self.service(1)];
        let described =
            self.driver.client.describe_services().cluster(self.cluster).services(names[0]).services(names[1]);
        let Ok(described) = described.send().await else { return (false, None) };
        let running = described.services().iter().filter(|s| s.desired_count() > 0).find_map(|s| {
            let slot = names.iter().position(|n| Some(*n) == s.service_name())?;
            Some((slot, s.desired_count()))
        });
        if let Ok(mut stable) = self.stable.lock() {
            *stable = running;
        }
        match running {
            Some((slot, _)) => (true, Some(self.traffic.slots()[slot].server.clone())),
            None => (false, None),
        }
    }

    async fn start(&self, slot: &Slot) -> Result<Option<String>> {
        let index = self.traffic.slots().iter().position(|s| s.server == slot.server).unwrap_or(0);
        let stable = self.stable.lock().ok().and_then(|s| *s);
        // The revision is made from what runs now (the slot's own service before any did).
        let source = self.service(stable.map_or(index, |(s, _)| s)).to_owned();
        let (_, td) = match self.driver.current(self.cluster, &source).await? {
            Ok(found) => found,
            Err(why) => return Ok(Some(why)),
        };
        let definitions = match pin(&td, self.containers, self.release) {
            Ok(definitions) => definitions,
            Err(why) => return Ok(Some(why)),
        };
        let service = self.service(index).to_owned();
        let applied =
            Applied::json(ArtifactKind::EcsTaskDefinition, &task_definition_json(&td, &definitions, &service));
        let next = self.driver.register(&td, definitions, &service).await?;
        if let Ok(mut started) = self.started.lock() {
            *started = Some((index, applied));
        }
        let count = stable.map_or(1, |(_, count)| count.max(1));
        match self.run(index, &next, count).await? {
            Ok(()) => Ok(None),
            Err(why) => {
                self.scale(index, 0).await?;
                Ok(Some(format!("{service} did not run {next}: {why}")))
            }
        }
    }

    async fn discard(&self) {
        let started = self.started.lock().ok().and_then(|s| s.as_ref().map(|(slot, _)| *slot));
        if let Some(slot) = started
            && let Err(err) = self.scale(slot, 0).await
        {
            tracing::warn!(error = %err, "the new revision's service was not scaled to zero");
        }
    }

    async fn take_over(&self) -> Result<()> {
        match self.stable.lock().ok().and_then(|s| *s) {
            Some((slot, _)) => self.scale(slot, 0).await,
            None => Ok(()),
        }
    }
}

impl EcsDriver {
    /// Rolls `release` out to the idle one of two services behind an ALB.
    pub(crate) async fn deploy_routed(
        &self,
        cluster: &str,
        (containers, release): (&BTreeMap<String, ComponentId>, &Release),
        traffic: &Traffic,
        attempt: &dyn Attempt,
    ) -> Result<DriverOutcome> {
        let Some(router) = &self.router else {
            return Err(DomainError::internal("the ECS driver has no load balancer client"));
        };
        let services = Services {
            driver: self,
            cluster,
            traffic,
            containers,
            release,
            stable: Mutex::new(None),
            started: Mutex::new(None),
        };
        let rolled = crate::routed::roll_out(&services, router, traffic, attempt).await?;
        let started = services.started.lock().ok().and_then(|s| s.clone());
        let (applied, service) = match started {
            Some((slot, applied)) => (Some(applied), services.service(slot).to_owned()),
            None => (None, String::new()),
        };
        Ok(crate::routed::outcome(rolled, applied, &format!("{service} runs the release")))
    }
}
