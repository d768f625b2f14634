//! Gantry's shared kernel: the ids of every aggregate, values validated when they are built
//! (digests, names, channels, image repositories), the one `DomainError`, pages, secrets at
//! rest (`Sealed`, `SecretBox`) and their randomness, and the bounded map a process keeps
//! between requests (`Kept`). Every
//! bounded context builds on it; it names none of them.

pub mod error;
pub mod ids;
pub mod kept;
pub mod pagination;
pub mod secrets;
pub mod values;

pub use error::{DomainError, Result};

#[doc(hidden)]
pub use uuid;
