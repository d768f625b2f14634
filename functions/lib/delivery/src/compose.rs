//! Compose targets: a compose file (parsed and validated with `compose_spec`) whose services
//! map to components. A deployment pins each mapped service's image to `repo@sha256:…`, and
//! the rendered file is what it applies and keeps as its artifact.
//!
//! The engines Gantry deploys to run without a bridge network (as Docker targets do), so a
//! service runs with `network_mode: host` (the default here) or `none`. What a service may
//! say: `image`, `command`, `environment`, `network_mode`, `healthcheck`, `depends_on` (the
//! start order) and `labels`; anything else is refused when the target is added, rather than
//! deployed differently from what the file says.

use std::collections::BTreeMap;

use compose_spec::service::healthcheck::{Healthcheck, Test};
use compose_spec::service::network_config::NetworkMode;
use compose_spec::service::{Command, Image, NetworkConfig};
use compose_spec::{Compose, Service};

use crate::error::{DomainError, Result};
use crate::ids::ComponentId;
use crate::model::Release;

/// The largest compose file a target keeps.
pub const MAX_FILE: usize = 16 * 1024;
/// Services per stack, at most.
pub const MAX_SERVICES: usize = 20;

/// One service as the driver runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub environment: Vec<String>,
    /// `host` or `none`.
    pub network_mode: String,
    /// The Engine's health test (`CMD …` or `CMD-SHELL …`), interval, timeout (seconds) and retries.
    pub healthcheck: Option<(Vec<String>, u64, u64, u64)>,
    pub labels: BTreeMap<String, String>,
}

/// A rendered stack: its services in start order, and the file as deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    pub services: Vec<ServiceSpec>,
    pub rendered: String,
}

fn invalid(why: impl Into<String>) -> DomainError {
    DomainError::validation(why.into())
}

/// Parses a compose file and checks it keeps to what Gantry deploys.
pub fn parse(file: &str) -> Result<Compose> {
    if file.len() > MAX_FILE {
        return Err(invalid(format!("a compose file is at most {MAX_FILE} bytes")));
    }
    let compose = Compose::options()
        .from_yaml_str(file)
        .map_err(|e| invalid(format!("the compose file does not parse: {}", first_line(&e.to_string()))))?;
    compose.validate_all().map_err(|e| invalid(format!("the compose file is not valid: {e}")))?;
    if !compose.networks.is_empty() || !compose.volumes.is_empty() || !compose.configs.is_empty() {
        return Err(invalid("top-level networks, volumes and configs are not deployed by Gantry"));
    }
    if compose.services.is_empty() || compose.services.len() > MAX_SERVICES {
        return Err(invalid(format!("a compose file has 1 to {MAX_SERVICES} services")));
    }
    for (name, service) in &compose.services {
        let mut rest = service.clone();
        rest.image = None;
        rest.command = None;
        rest.environment = Default::default();
        rest.network_config = None;
        rest.healthcheck = None;
        rest.depends_on = Default::default();
        rest.labels = Default::default();
        if rest != Service::default() {
            // The keys left are what Gantry would silently drop: named, so the file can be fixed.
            let keys = match serde_json::to_value(&rest) {
                Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect::<Vec<_>>().join(", "),
                _ => String::new(),
            };
            return Err(invalid(format!(
                "service {name} uses {keys}, which Gantry does not deploy (it deploys image, command, environment, \
                 network_mode, healthcheck, depends_on and labels)"
            )));
        }
        if service.image.is_none() {
            return Err(invalid(format!("service {name} needs an image")));
        }
        network_mode(name.as_str(), service)?;
    }
    start_order(&compose)?;
    Ok(compose)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().chars().take(200).collect()
}

fn network_mode(name: &str, service: &Service) -> Result<&'static str> {
    match &service.network_config {
        None | Some(NetworkConfig::NetworkMode(NetworkMode::Host)) => Ok("host"),
        Some(NetworkConfig::NetworkMode(NetworkMode::None)) => Ok("none"),
        _ => Err(invalid(format!("service {name}: network_mode must be host or none (the engine has no bridge)"))),
    }
}

/// Service names so that each comes after what it depends on.
fn start_order(compose: &Compose) -> Result<Vec<String>> {
    let depends = |s: &Service| -> Vec<String> {
        match &s.depends_on {
            compose_spec::ShortOrLong::Short(names) => names.iter().map(ToString::to_string).collect(),
            compose_spec::ShortOrLong::Long(map) => map.keys().map(ToString::to_string).collect(),
        }
    };
    let mut order: Vec<String> = Vec::new();
    while order.len() < compose.services.len() {
        let next = compose.services.iter().find(|(name, service)| {
            !order.contains(&name.to_string()) && depends(service).iter().all(|d| order.contains(d))
        });
        match next {
            Some((name, _)) => order.push(name.to_string()),
            None => return Err(invalid("the services' depends_on make a cycle or name a missing service")),
        }
    }
    Ok(order)
}

/// Checks a target's file and that every mapped service is in it.
pub fn check(file: &str, services: &BTreeMap<String, ComponentId>) -> Result<()> {
    let compose = parse(file)?;
    if services.is_empty() {
        return Err(invalid("a COMPOSE target maps at least one service to a component"));
    }
    match services.keys().find(|name| !compose.services.keys().any(|s| s.as_str() == name.as_str())) {
        Some(missing) => Err(invalid(format!("the compose file has no service {missing}"))),
        None => Ok(()),
    }
}

/// The stack with each mapped service's image pinned to the release's digest.
pub fn render(file: &str, services: &BTreeMap<String, ComponentId>, release: &Release) -> Result<Stack> {
    let mut compose = parse(file)?;
    for (name, component) in services {
        let Some(pinned) = release.components.iter().find(|c| c.component_id == *component) else { continue };
        let service = compose
            .services
            .iter_mut()
            .find(|(s, _)| s.as_str() == name.as_str())
            .map(|(_, s)| s)
            .ok_or_else(|| invalid(format!("the compose file has no service {name}")))?;
        let image = format!("{}@{}", pinned.image, pinned.digest);
        service.image = Some(Image::parse(image).map_err(|e| invalid(format!("service {name}: {e}")))?);
    }
    let rendered = serde_yaml_ng::to_string(&compose).map_err(DomainError::internal)?;
    let services = start_order(&compose)?
        .into_iter()
        .map(|name| {
            let service = compose.services.iter().find(|(s, _)| s.as_str() == name).map(|(_, s)| s).cloned();
            spec(name, &service.unwrap_or_default())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Stack { services, rendered })
}

fn spec(name: String, service: &Service) -> Result<ServiceSpec> {
    let command = service.command.as_ref().map(|c| match c {
        Command::String(line) => vec!["/bin/sh".to_owned(), "-c".to_owned(), line.clone()],
        Command::List(args) => args.clone(),
    });
    let healthcheck = match &service.healthcheck {
        Some(Healthcheck::Command(check)) => check.test.as_ref().map(|test| {
            let test = match test {
                Test::Command(args) => std::iter::once("CMD".to_owned()).chain(args.iter().cloned()).collect(),
                Test::ShellCommand(line) => vec!["CMD-SHELL".to_owned(), line.clone()],
            };
            let seconds = |d: Option<std::time::Duration>, default: u64| d.map_or(default, |d| d.as_secs().max(1));
            (test, seconds(check.interval, 5), seconds(check.timeout, 5), check.retries.unwrap_or(3).max(1))
        }),
        _ => None,
    };
    let labels = service.labels.clone().into_list().into_iter().map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair.as_str(), ""));
        (k.to_owned(), v.to_owned())
    });
    Ok(ServiceSpec {
        network_mode: network_mode(&name, service)?.to_owned(),
        image: service.image.as_ref().map(ToString::to_string).unwrap_or_default(),
        environment: service.environment.clone().into_list().into_iter().collect(),
        labels: labels.collect(),
        command,
        healthcheck,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "services:
  web:
    image: registry.example.com/shop/web:latest
    command: [httpd, -f, -p, '8080']
    healthcheck:
      test: [CMD, wget, -q, -O-, http://127.0.0.1:8080/]
      interval: 1s
      retries: 3
  worker:
    image: registry.example.com/shop/worker:latest
    environment:
      MODE: batch
    depends_on: [web]
";

    #[test]
    fn a_stack_starts_in_dependency_order_with_its_checks() {
        let compose = parse(FILE).unwrap();
        assert_eq!(start_order(&compose).unwrap(), ["web", "worker"]);
        let web = spec("web".into(), &compose.services[0]).unwrap();
        assert_eq!(web.healthcheck.as_ref().unwrap().0[..2], ["CMD".to_owned(), "wget".to_owned()]);
        assert_eq!((web.network_mode.as_str(), web.healthcheck.unwrap().1), ("host", 1));
        let worker = spec("worker".into(), &compose.services[1]).unwrap();
        assert_eq!(worker.environment, ["MODE=batch"]);
    }

    #[test]
    fn what_gantry_does_not_deploy_is_refused() {
        let with = |extra: &str| format!("services:\n  web:\n    image: x\n{extra}");
        for (file, why) in [
            (with("    ports: ['80:80']\n"), "uses ports, which Gantry does not deploy"),
            (with("    volumes: ['/data:/data']\n"), "uses volumes,"),
            (with("    network_mode: bridge\n"), "host or none"),
            (with("    build: .\n"), "uses build,"),
            (
                "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n"
                    .to_owned(),
                "cycle",
            ),
            ("services:\n  web:\n    command: x\n".to_owned(), "needs an image"),
            ("services: [".to_owned(), "does not parse"),
            (format!("{}\nvolumes:\n  data:\n", with("")), "volumes"),
        ] {
            let err = parse(&file).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
        let mapped = BTreeMap::from([("api".to_owned(), ComponentId::new())]);
        assert!(check(FILE, &mapped).unwrap_err().to_string().contains("no service api"));
    }
}
