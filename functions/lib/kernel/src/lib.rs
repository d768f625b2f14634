//! Gantry's shared kernel: the ids of every aggregate, values validated when they are built
//! (digests, names, channels, image repositories), the one `DomainError`, and pages. Every
//! bounded context builds on it; it names none of them.

pub mod error;
pub mod ids;
pub mod pagination;
pub mod values;

pub use error::{DomainError, Result};

#[doc(hidden)]
pub use uuid;
