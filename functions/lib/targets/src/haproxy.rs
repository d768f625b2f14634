//! HAProxy through its Runtime API (the `stats socket ... level admin` of its global
//! section), on a local socket or a loopback port: weights move with
//! `set server <backend>/<server> weight <n>` and A/B entries with `add map` / `del map`,
//! so nothing reloads and no connection drops.
//!
//! Each command goes on a connection of its own (the API answers one and closes), so a
//! refusal is pinned to the command that caused it. The API answers nothing but a blank
//! line to a command it carried out, and a sentence to one it refused ("No such server.").

use std::time::Duration;

use async_trait::async_trait;
use gantry_domain::traffic::{Matcher, Router, RouterChange, RouterConfig};
use gantry_domain::{DomainError, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::instrument;

/// The longest a command may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an answer read.
const MAX_ANSWER: u64 = 64 * 1024;

#[derive(Debug, Default, Clone)]
pub struct Haproxy;

struct Target<'a> {
    admin: &'a str,
    backend: &'a str,
    servers: [&'a str; 2],
    ab_map: Option<&'a str>,
}

fn target(config: &RouterConfig) -> Result<Target<'_>> {
    let RouterConfig::Haproxy { admin, backend, slots, ab_map } = config else {
        return Err(DomainError::internal("the HAProxy router got another router's configuration"));
    };
    let [a, b] = slots.as_slice() else { return Err(DomainError::internal("a router without two slots passed")) };
    Ok(Target { admin, backend, servers: [&a.server, &b.server], ab_map: ab_map.as_deref() })
}

impl Haproxy {
    /// Sends one command and returns the API's answer, trimmed.
    async fn send(&self, admin: &str, command: &str) -> Result<String> {
        let url = url::Url::parse(admin).map_err(|_| DomainError::internal("an admin address passed its check"))?;
        let exchange = async {
            match url.scheme() {
                "unix" => exchange(tokio::net::UnixStream::connect(url.path()).await?, command).await,
                _ => {
                    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_owned();
                    let port = url.port().unwrap_or_default();
                    exchange(tokio::net::TcpStream::connect((host.as_str(), port)).await?, command).await
                }
            }
        };
        match tokio::time::timeout(TIMEOUT, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(err)) => Err(DomainError::internal(format!("HAProxy's Runtime API at {admin}: {err}"))),
            Err(_) => Err(DomainError::internal(format!("HAProxy's Runtime API at {admin} did not answer in time"))),
        }
    }

    /// Runs commands in order, stopping at the first the API refuses: what it carried out.
    async fn run(&self, admin: &str, commands: Vec<String>) -> Result<RouterChange> {
        let mut done = Vec::new();
        for command in commands {
            let answer = self.send(admin, &command).await?;
            if !answer.is_empty() && !tolerated(&command, &answer) {
                let said: String = answer.chars().take(200).collect();
                let undone = if done.is_empty() { String::new() } else { format!(" (after {})", done.join("; ")) };
                return Err(DomainError::validation(format!("HAProxy refused `{command}`: {said}{undone}")));
            }
            done.push(command);
        }
        Ok(RouterChange::new("haproxy", done))
    }
}

/// Removing an A/B entry that is not there is no refusal.
fn tolerated(command: &str, answer: &str) -> bool {
    command.starts_with("del map ") && answer == "Key not found."
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, command: &str) -> std::io::Result<String> {
    stream.write_all(format!("{command}\n").as_bytes()).await?;
    let mut answer = String::new();
    (&mut stream).take(MAX_ANSWER).read_to_string(&mut answer).await?;
    Ok(answer.trim().to_owned())
}

#[async_trait]
impl Router for Haproxy {
    #[instrument(skip_all, fields(slot = to, weight), err(level = "info"))]
    async fn shift(&self, config: &RouterConfig, to: usize, weight: u8) -> Result<RouterChange> {
        let t = target(config)?;
        let (new, old) = (t.servers[to % 2], t.servers[(to + 1) % 2]);
        // The side gaining weight moves first, so no moment has both at nothing.
        let commands = [(new, weight), (old, 100 - weight)]
            .map(|(server, w)| format!("set server {}/{server} weight {w}", t.backend));
        let ordered = if weight >= 50 { commands.to_vec() } else { commands.into_iter().rev().collect() };
        self.run(t.admin, ordered).await
    }

    #[instrument(skip_all, err(level = "info"))]
    async fn route_matching(
        &self,
        config: &RouterConfig,
        matcher: &Matcher,
        to: Option<usize>,
    ) -> Result<RouterChange> {
        let t = target(config)?;
        let Some(map) = t.ab_map else { return Err(DomainError::validation("the router has no abMap")) };
        let mut commands = vec![format!("del map {map} {}", matcher.value)];
        if let Some(slot) = to {
            commands.push(format!("add map {map} {} {}", matcher.value, t.servers[slot % 2]));
        }
        self.run(t.admin, commands).await
    }

    /// `show servers state` lists `srv_op_state` 2 for a server that is up.
    async fn ready(&self, config: &RouterConfig, slot: usize) -> Result<bool> {
        let t = target(config)?;
        let answer = self.send(t.admin, &format!("show servers state {}", t.backend)).await?;
        let server = t.servers[slot % 2];
        let line = answer.lines().map(|l| l.split(' ').collect::<Vec<_>>()).find(|f| f.get(3) == Some(&server));
        match line {
            Some(fields) => Ok(fields.get(5) == Some(&"2")),
            None if answer.lines().next().is_some_and(|l| l.starts_with(|c: char| c.is_ascii_digit())) => {
                Err(DomainError::validation(format!("HAProxy's backend {} has no server {server}", t.backend)))
            }
            None => Err(DomainError::validation(format!("HAProxy refused `show servers state`: {answer}"))),
        }
    }

    /// `show stat <backend> 4 -1` gives each server's current sessions (`scur`) and the
    /// requests queued for it (`qcur`), in CSV under a `# ` header.
    async fn in_flight(&self, config: &RouterConfig, slot: usize) -> Result<Option<u64>> {
        let t = target(config)?;
        let answer = self.send(t.admin, &format!("show stat {} 4 -1", t.backend)).await?;
        let server = t.servers[slot % 2];
        sessions(&answer, server).map(Some).ok_or_else(|| {
            let said: String = answer.chars().take(200).collect();
            DomainError::validation(format!("HAProxy gave no sessions of {}/{server}: {said}", t.backend))
        })
    }
}

/// The sessions and queued requests of `server` in a `show stat` answer.
fn sessions(answer: &str, server: &str) -> Option<u64> {
    let mut lines = answer.lines();
    let header: Vec<&str> = lines.next()?.strip_prefix("# ")?.split(',').collect();
    let column = |name: &str| header.iter().position(|c| *c == name);
    let (name, scur, qcur) = (column("svname")?, column("scur")?, column("qcur")?);
    let row: Vec<&str> = lines.map(|l| l.split(',').collect::<Vec<_>>()).find(|r| r.get(name) == Some(&server))?;
    let number = |i: usize| row.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(number(scur)? + number(qcur).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::sessions;

    /// The start of a `show stat` answer: its columns in HAProxy's documented order.
    const STAT: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout\n\
        web,blue,0,0,3,5,,120,0,0\n\
        web,green,1,1,0,2,,7,0,0\n";

    #[test]
    fn a_servers_sessions_and_queue_are_read_from_its_row() {
        assert_eq!(sessions(STAT, "blue"), Some(3));
        assert_eq!(sessions(STAT, "green"), Some(1), "a queued request is in flight too");
        assert_eq!(sessions(STAT, "red"), None);
        assert_eq!(sessions("Unknown command.", "blue"), None);
        assert_eq!(sessions("# pxname,svname\nweb,blue\n", "blue"), None, "no scur column");
    }
}
