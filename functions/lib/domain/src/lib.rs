//! Gantry's domain, at the top of the bounded contexts: promotions (request, gates,
//! decisions, rollout, steps, rollback) and the deployer that runs their jobs, and ChatOps
//! and the notifier, which drive and announce them. Below sit, each a crate naming only those
//! under it: `gantry-kernel`, `gantry-catalog`, `gantry-trust`, `gantry-integrations` and
//! `gantry-delivery`, whose modules this crate re-exports under the paths the adapters use.
//! Nothing here knows about AWS or HTTP; storage comes in through [`ports::Repository`].

pub mod chatops;
pub mod deployer;
#[cfg(test)]
mod fixtures;
pub mod notifier;
pub mod promotions;

pub use gantry_delivery::{
    access, accounts, admission, agents, analysis, artifacts, attestations, budget, builds, bundles, ci, compose,
    dead_letters, deployments, engines, environments, events, evidence, insights, integrations, manifest, model,
    notifications, outbound, ports, reports, service, sessions, signatures, steps, supply_chain, sync, targets,
    traffic,
};
pub use gantry_kernel::{DomainError, Result, error, ids, kept, values};

#[doc(hidden)]
pub use uuid;
