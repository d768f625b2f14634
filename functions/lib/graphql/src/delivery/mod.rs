//! The delivery context: environments, promotions with their evidence, steps and freeze
//! windows. The types here name each other freely (an environment lists its promotions, a
//! promotion names its environment); nothing outside names delivery but the schema's roots.

pub mod bundles;
pub mod environments;
pub mod freeze;
pub mod keyless;
pub mod promotions;
pub mod signatures;
pub mod steering;
pub mod steps;

pub use environments::Environment;
