//! Gantry's domain: release-management types, their rules, and the use cases that apply them.
//! Nothing here knows about AWS or HTTP; storage comes in through [`ports::Repository`].

pub mod agents;
pub mod analysis;
pub mod artifacts;
pub mod budget;
pub mod chatops;
pub mod compose;
pub mod deployer;
pub mod deployments;
pub mod engines;
pub mod environments;
#[cfg(test)]
mod fixtures;
pub mod notifier;
pub mod promotions;
pub mod steps;
pub mod targets;

pub use gantry_catalog::{builds, manifest};
pub use gantry_integrations::{ci, events, integrations, notifications, outbound, reports, sync};
pub use gantry_kernel::{DomainError, Result, error, ids, kept, values};
pub use gantry_trust::{access, accounts, evidence, sessions};

/// The catalogue's types and the environments' (which delivery owns), under the one path
/// the adapters know.
pub mod model {
    pub use crate::environments::freeze;
    pub use crate::environments::{
        Environment, EnvironmentPolicy, EnvironmentState, FreezeWindow, PolicyPatch, release_state,
    };
    pub use crate::notifications::slack_channel;
    pub use gantry_catalog::model::*;
}

/// The catalogue's ports, and storage for the catalogue and its environments together.
pub mod ports {
    pub use crate::environments::{EnvironmentRepository, Repository};
    pub use gantry_catalog::ports::*;
}

/// The catalogue's use cases, and the environments'.
pub mod service {
    pub use crate::environments::{EnvironmentPatch, Environments, NewEnvironment};
    pub use gantry_catalog::service::*;
}

#[doc(hidden)]
pub use uuid;
