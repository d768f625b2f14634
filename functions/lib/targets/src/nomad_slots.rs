//! A Nomad target behind Consul: two jobs, one per slot, take turns. The new version's job
//! is made from the stable job's spec (images pinned, every service's meta `gantry_slot`
//! naming the slot's subset), registered under the idle slot's job id and followed to a
//! successful deployment; requests move to its subset by the strategy ([`crate::routed`]).
//! Once it takes every request the stable job is stopped, and when requests go back the new
//! one is.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use gantry_domain::artifacts::{Applied, ArtifactKind};
use gantry_domain::deployments::{Attempt, DriverOutcome};
use gantry_domain::ids::ComponentId;
use gantry_domain::model::Release;
use gantry_domain::traffic::{Slot, Traffic};
use gantry_domain::{DomainError, Result};
use serde_json::{Value, json};

use crate::consul::SLOT_META;
use crate::nomad::{Job, NomadDriver, pin};
use crate::routed::Sides;

struct Jobs<'a> {
    driver: &'a NomadDriver,
    nomad: Job<'a>,
    traffic: &'a Traffic,
    tasks: &'a BTreeMap<String, ComponentId>,
    release: &'a Release,
    /// The slot whose job runs now, and its spec, once read.
    stable: Mutex<Option<(usize, Value)>>,
    /// The slot the new version runs in, and the job registered for it.
    started: Mutex<Option<(usize, Applied)>>,
}

/// Fields Nomad sets on a job, which a new registration leaves out.
const SET_BY_NOMAD: [&str; 9] = [
    "Version",
    "JobModifyIndex",
    "ModifyIndex",
    "CreateIndex",
    "SubmitTime",
    "Stable",
    "Status",
    "StatusDescription",
    "Stop",
];

impl Jobs<'_> {
    fn id(&self, slot: usize) -> &str {
        self.traffic.slots()[slot].workload.as_deref().unwrap_or_default()
    }

    /// A job's spec, or `None` when Nomad has no such job.
    async fn read(&self, slot: usize) -> Result<Option<Value>> {
        match self.nomad.call(reqwest::Method::GET, &format!("/job/{}", self.id(slot)), None).await {
            Ok(job) => Ok(Some(job)),
            Err(DomainError::Validation(why)) if why.contains("(404") => Ok(None),
            Err(err) => Err(err),
        }
    }

    async fn stop(&self, slot: usize) -> Result<()> {
        self.nomad.call(reqwest::Method::DELETE, &format!("/job/{}", self.id(slot)), None).await.map(drop)
    }

    /// The spec the new version registers in `slot`: `source` with the release's images,
    /// the slot's job id, and the subset on every service's meta; or why not.
    fn spec(&self, source: &Value, slot: usize) -> std::result::Result<Value, String> {
        let mut job = source.clone();
        if let Some(fields) = job.as_object_mut() {
            for key in SET_BY_NOMAD {
                fields.remove(key);
            }
        }
        job["ID"] = json!(self.id(slot));
        job["Name"] = json!(self.id(slot));
        let (missing, _) = pin(&mut job, self.tasks, self.release);
        if !missing.is_empty() {
            return Err(format!("job {} has no task {}", self.id(slot), missing.join(", ")));
        }
        let subset = &self.traffic.slots()[slot].server;
        let mark = |owner: &mut Value| {
            // `get_mut`: indexing would add `"Services": null` where there are none.
            for service in owner.get_mut("Services").and_then(Value::as_array_mut).into_iter().flatten() {
                service["Meta"][SLOT_META] = json!(subset);
            }
        };
        for group in job.get_mut("TaskGroups").and_then(Value::as_array_mut).into_iter().flatten() {
            mark(group);
            group.get_mut("Tasks").and_then(Value::as_array_mut).into_iter().flatten().for_each(mark);
        }
        Ok(job)
    }

    /// Follows a registration's evaluation to its deployment, and that to success.
    async fn deployed(&self, eval_id: &str) -> Result<std::result::Result<(), String>> {
        let get = reqwest::Method::GET;
        let deadline = tokio::time::Instant::now() + self.driver.deadline;
        let mut deployment = None;
        loop {
            if tokio::time::Instant::now() > deadline {
                return Ok(Err("the job's deployment did not finish in time".into()));
            }
            match &deployment {
                None => {
                    let eval = self.nomad.call(get.clone(), &format!("/evaluation/{eval_id}"), None).await?;
                    match (eval["Status"].as_str(), eval["DeploymentID"].as_str()) {
                        (Some("complete"), Some(id)) if !id.is_empty() => deployment = Some(id.to_owned()),
                        (Some("failed" | "canceled"), _) => return Ok(Err(format!("evaluation {eval_id} ended"))),
                        _ => tokio::time::sleep(self.driver.poll).await,
                    }
                }
                Some(id) => {
                    let d = self.nomad.call(get.clone(), &format!("/deployment/{id}"), None).await?;
                    match d["Status"].as_str() {
                        Some("successful") => return Ok(Ok(())),
                        Some("failed" | "cancelled") => {
                            let why = d["StatusDescription"].as_str().unwrap_or("failed");
                            return Ok(Err(format!("deployment {id}: {why}")));
                        }
                        _ => tokio::time::sleep(self.driver.poll).await,
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Sides for Jobs<'_> {
    async fn stable(&self) -> (bool, Option<String>) {
        for slot in 0..2 {
            let Ok(Some(job)) = self.read(slot).await else { continue };
            if job["Stop"] != true && job["Status"] != "dead" {
                let server = self.traffic.slots()[slot].server.clone();
                if let Ok(mut stable) = self.stable.lock() {
                    *stable = Some((slot, job));
                }
                return (true, Some(server));
            }
        }
        (false, None)
    }

    async fn start(&self, slot: &Slot) -> Result<Option<String>> {
        let index = self.traffic.slots().iter().position(|s| s.server == slot.server).unwrap_or(0);
        let stable = self.stable.lock().ok().and_then(|s| s.as_ref().map(|(_, job)| job.clone()));
        let source = match stable {
            Some(job) => job,
            None => match self.read(index).await? {
                Some(job) => job,
                None => return Ok(Some(format!("neither slot's job exists: register {} first", self.id(index)))),
            },
        };
        let job = match self.spec(&source, index) {
            Ok(job) => job,
            Err(why) => return Ok(Some(why)),
        };
        if let Ok(mut started) = self.started.lock() {
            *started = Some((index, Applied::json(ArtifactKind::NomadJob, &job)));
        }
        let path = format!("/job/{}", self.id(index));
        let registered = self.nomad.call(reqwest::Method::POST, &path, Some(&json!({ "Job": job }))).await?;
        let eval_id = registered["EvalID"].as_str().unwrap_or_default().to_owned();
        match self.deployed(&eval_id).await? {
            Ok(()) => Ok(None),
            Err(why) => {
                self.stop(index).await?;
                Ok(Some(format!("job {} did not deploy: {why}", self.id(index))))
            }
        }
    }

    async fn discard(&self) {
        let started = self.started.lock().ok().and_then(|s| s.as_ref().map(|(slot, _)| *slot));
        if let Some(slot) = started
            && let Err(err) = self.stop(slot).await
        {
            tracing::warn!(error = %err, "the new version's job was not stopped");
        }
    }

    async fn take_over(&self) -> Result<()> {
        match self.stable.lock().ok().and_then(|s| s.as_ref().map(|(slot, _)| *slot)) {
            Some(slot) => self.stop(slot).await,
            None => Ok(()),
        }
    }
}

impl NomadDriver {
    /// Rolls `release` out to the idle one of two jobs behind Consul.
    pub(crate) async fn deploy_routed(
        &self,
        nomad: Job<'_>,
        (tasks, release): (&BTreeMap<String, ComponentId>, &Release),
        traffic: &Traffic,
        attempt: &dyn Attempt,
    ) -> Result<DriverOutcome> {
        let jobs =
            Jobs { driver: self, nomad, traffic, tasks, release, stable: Mutex::new(None), started: Mutex::new(None) };
        let router = crate::consul::Consul::new(self.secrets.clone());
        let rolled = crate::routed::roll_out(&jobs, &router, traffic, attempt).await?;
        let started = jobs.started.lock().ok().and_then(|s| s.clone());
        let (applied, job) = match started {
            Some((slot, applied)) => (Some(applied), jobs.id(slot).to_owned()),
            None => (None, String::new()),
        };
        Ok(crate::routed::outcome(rolled, applied, &format!("job {job} runs the release")))
    }
}
