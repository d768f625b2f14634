//! Target drivers. Each rolls a release's digests out to one kind of target and, when the
//! rollout fails, restores what ran before.

mod canary;
pub mod compose;
pub mod docker;
pub mod ecs;
pub mod nomad;

use std::sync::Arc;

use gantry_domain::deployments::{DriverSettings, Drivers, TargetDriver};
use gantry_domain::targets::TargetKind;

/// Every driver, with an ECS client from the shared AWS configuration: what the deployer's
/// `main` hands to `AppState::from_config`.
pub fn from_sdk(sdk: &aws_config::SdkConfig, settings: DriverSettings) -> Drivers {
    all(aws_sdk_ecs::Client::new(sdk), settings)
}

/// Every driver, for the deployer: ECS through `ecs`, and Nomad and ECS rollouts bounded by
/// `deadline`.
pub fn all(ecs: aws_sdk_ecs::Client, settings: DriverSettings) -> Drivers {
    let deadline = settings.deadline;
    let nomad = nomad::NomadDriver { deadline, tokens: settings.nomad_tokens, ..Default::default() };
    Drivers::from([
        (TargetKind::Nomad, Arc::new(nomad) as Arc<dyn TargetDriver>),
        (TargetKind::Docker, Arc::new(docker::DockerDriver) as Arc<dyn TargetDriver>),
        (TargetKind::Compose, Arc::new(compose::ComposeDriver) as Arc<dyn TargetDriver>),
        (TargetKind::Ecs, Arc::new(ecs::EcsDriver { deadline, ..ecs::EcsDriver::new(ecs) }) as Arc<dyn TargetDriver>),
    ])
}
