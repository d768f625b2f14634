//! Target drivers. Each rolls a release's digests out to one kind of target and, when the
//! rollout fails, restores what ran before. Drivers know their engine's API; leases,
//! jobs and promotions are the deployer's.

pub mod alb;
mod canary;
pub mod compose;
pub mod consul;
pub mod docker;
pub mod ecs;
mod ecs_slots;
pub mod haproxy;
pub mod nomad;
mod nomad_slots;
mod routed;
mod sides;
pub use gantry_secrets as secrets;
mod steer;
pub mod tls;

use std::sync::Arc;

use gantry_domain::deployments::{DriverSettings, Drivers, TargetDriver};
use gantry_domain::targets::TargetKind;

/// Every driver, with ECS, Elastic Load Balancing, SSM and Secrets Manager clients from the
/// shared AWS configuration (ELB's endpoint replaced where the settings name one): what the
/// deployer's `main` hands to `AppState::from_config`.
pub fn from_sdk(sdk: &aws_config::SdkConfig, settings: DriverSettings) -> Drivers {
    let secrets = Arc::new(secrets::Secrets::new(settings.secret_env.clone(), sdk));
    let mut elb = aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk);
    if let Some(endpoint) = &settings.elb_endpoint {
        elb = elb.endpoint_url(endpoint);
    }
    let elb = aws_sdk_elasticloadbalancingv2::Client::from_conf(elb.build());
    all((aws_sdk_ecs::Client::new(sdk), elb), secrets, settings)
}

/// Every driver, for the deployer: ECS and its load balancers through `ecs` and `elb`,
/// secret references read through `secrets`, and Nomad and ECS rollouts bounded by
/// `deadline`.
pub fn all(
    (ecs, elb): (aws_sdk_ecs::Client, aws_sdk_elasticloadbalancingv2::Client),
    secrets: Arc<secrets::Secrets>,
    settings: DriverSettings,
) -> Drivers {
    let deadline = settings.deadline;
    let ecs = ecs::EcsDriver { deadline, router: Some(alb::Alb { client: elb }), ..ecs::EcsDriver::new(ecs) };
    let nomad = nomad::NomadDriver { deadline, secrets: secrets.clone(), ..Default::default() };
    Drivers::from([
        (TargetKind::Nomad, Arc::new(nomad) as Arc<dyn TargetDriver>),
        (TargetKind::Docker, Arc::new(docker::DockerDriver { secrets: secrets.clone() }) as Arc<dyn TargetDriver>),
        (TargetKind::Compose, Arc::new(compose::ComposeDriver { secrets }) as Arc<dyn TargetDriver>),
        (TargetKind::Ecs, Arc::new(ecs) as Arc<dyn TargetDriver>),
    ])
}
