//! Gantry's domain: release-management types, their rules, and the use cases that apply them.
//! Nothing here knows about AWS or HTTP; storage comes in through [`ports::Repository`].

pub mod access;
pub mod accounts;
pub mod agents;
pub mod analysis;
pub mod artifacts;
pub mod budget;
pub mod builds;
pub mod chatops;
pub mod ci;
pub mod compose;
pub mod deployer;
pub mod deployments;
pub mod engines;
pub mod events;
pub mod evidence;
#[cfg(test)]
mod fixtures;
pub mod integrations;
pub mod manifest;
pub mod model;
pub mod notifications;
pub mod notifier;
pub mod outbound;
pub mod ports;
pub mod promotions;
pub mod reports;
pub mod service;
pub mod sessions;
pub mod steps;
pub mod sync;
pub mod targets;

pub use gantry_kernel::{DomainError, Result, error, ids, kept, values};

#[doc(hidden)]
pub use uuid;
