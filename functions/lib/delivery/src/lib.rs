//! Delivery, above the catalogue, trust and integrations: environments (the promotion path
//! and each stage's policy), deployment targets and the engines they name, compose stacks,
//! steps and analyses, deployments with the artifacts they applied, and pull agents with
//! their signed jobs. Promotions, which drive all of it, sit above in `gantry-domain`; no
//! module here names them.

pub mod agents;
pub mod analysis;
pub mod artifacts;
pub mod budget;
pub mod compose;
pub mod dead_letters;
pub mod deployments;
pub mod engines;
pub mod environments;
pub mod insights;
pub mod steps;
pub mod targets;
pub mod traffic;

pub use gantry_catalog::{builds, manifest};
pub use gantry_integrations::{
    admission, attestations, ci, events, integrations, notifications, outbound, reports, signatures, supply_chain, sync,
};
pub use gantry_kernel::{DomainError, Result, error, ids, kept, values};
pub use gantry_trust::{access, accounts, bundles, evidence, sessions};

/// The catalogue's types and the environments', under the one path the adapters know.
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
    pub use crate::environments::{EnvironmentPatch, Environments, NewEnvironment, PolicySource};
    pub use gantry_catalog::service::*;
}
