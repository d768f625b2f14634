//! Integrations, above the catalogue and trust: registries and their webhook events
//! (`integrations`, `events`), the version sync that turns a pushed tag into a version map
//! (`sync`), CI systems and the deployment reports sent to them (`ci`, `reports`),
//! notifications to Slack and signed webhooks (`notifications`), and the rules for every URL
//! Gantry calls (`outbound`), and the supply-chain facts of an image by digest, its cosign
//! signatures first (`signatures`). Delivery sits above and names them; they learn what they need
//! of promotions and environments through their own ports (`ReportedPromotions`, events).

pub mod admission;
pub mod attestations;
pub mod ci;
pub mod events;
pub mod integrations;
pub mod keyless;
pub mod notifications;
pub mod outbound;
pub mod reports;
pub mod signatures;
pub mod supply_chain;
pub mod sync;

pub use gantry_catalog::{model, ports, service};
pub use gantry_kernel::{DomainError, Result, error, ids, values};
pub use gantry_trust::access;
