//! Gantry's domain: release-management types, their rules, and the use cases that apply them.
//! Nothing here knows about AWS or HTTP; storage comes in through [`ports::Repository`].

pub mod access;
pub mod accounts;
pub mod agents;
pub mod analysis;
pub mod artifacts;
pub mod budget;
pub mod chatops;
pub mod ci;
pub mod compose;
pub mod deployer;
pub mod deployments;
pub mod engines;
pub mod environments;
pub mod events;
pub mod evidence;
#[cfg(test)]
mod fixtures;
pub mod integrations;
pub mod notifications;
pub mod notifier;
pub mod outbound;
pub mod promotions;
pub mod reports;
pub mod sessions;
pub mod steps;
pub mod sync;
pub mod targets;

pub use gantry_catalog::{builds, manifest};
pub use gantry_kernel::{DomainError, Result, error, ids, kept, values};

/// The catalogue's types and the environments' (which delivery owns), under the one path
/// the adapters know.
pub mod model {
    pub use crate::environments::freeze;
    pub use crate::environments::{
        Environment, EnvironmentPolicy, EnvironmentState, FreezeWindow, PolicyPatch, release_state, slack_channel,
    };
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
