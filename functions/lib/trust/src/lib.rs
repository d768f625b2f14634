//! Trust, above the catalogue: roles and principals (`access`), service accounts and their
//! tokens (`accounts`), browser sessions (`sessions`), and evidence, the hash-chained and
//! signed record of every decision, which delivery calls to seal what it decided, and the
//! bundles that carry it to anyone who checks it offline (`bundles`). It names
//! the catalogue (a release's manifest digest) and nothing above it.

pub mod access;
pub mod accounts;
pub mod bundles;
pub mod evidence;
pub mod sessions;

pub use gantry_catalog::{manifest, ports};
pub use gantry_kernel::{DomainError, Result, error, ids, values};
