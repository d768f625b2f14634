//! The release catalogue, the lowest bounded context above the kernel: components, their
//! version maps (tag → digest), releases of pinned digests, the release manifest, CI builds,
//! and the records of where each release runs. Its ports are what storage must do for it.
//! It names no other context: environments, promotions, integrations and trust all sit
//! above it and name it.

pub mod builds;
#[doc(hidden)]
pub mod fixtures;
pub mod manifest;
pub mod model;
pub mod ports;
pub mod service;

pub use gantry_kernel::{DomainError, Result, error, ids, kept, values};
