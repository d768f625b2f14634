//! Target drivers. Each rolls a release's digests out to one kind of target and, when the
//! rollout fails, restores what ran before.

pub mod docker;
pub mod ecs;
pub mod nomad;
