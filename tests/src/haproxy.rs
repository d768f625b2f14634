//! A real HAProxy (Debian's `haproxy`, which `make test` installs) in front of two slots on
//! loopback, steered by Gantry through its Runtime API on a private socket.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;

use crate::registry::free_port;

pub struct Haproxy {
    child: Child,
    dir: PathBuf,
    /// Where clients send requests.
    pub port: u16,
    /// The two slots' ports: `blue`, then `green`.
    pub slots: [u16; 2],
}

impl Haproxy {
    /// Starts HAProxy with backend `web` (balanced by `balance`) over servers `blue` and
    /// `green`, health-checked every 300 ms (up after one passed check, down after two failed
    /// ones, so one check that a busy machine delays does not take a server out), and
    /// `use-server` rules reading the A/B map for header `X-Canary` and cookie `canary`.
    pub fn start(balance: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("gantry-haproxy-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let (port, slots) = (free_port(), [free_port(), free_port()]);
        let map = dir.join("ab.map");
        std::fs::write(&map, "").unwrap();
        let map = map.display();
        let config = format!(
            "global\n  stats socket {admin} mode 600 level admin\n\
             defaults\n  mode http\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n  retries 3\n  option redispatch\n  retry-on all-retryable-errors\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  default_backend web\n\
             backend web\n  balance {balance}\n\
             \x20 use-server blue if {{ req.hdr(X-Canary),map({map}) -m str blue }}\n\
             \x20 use-server green if {{ req.hdr(X-Canary),map({map}) -m str green }}\n\
             \x20 use-server blue if {{ req.cook(canary),map({map}) -m str blue }}\n\
             \x20 use-server green if {{ req.cook(canary),map({map}) -m str green }}\n\
             \x20 server blue 127.0.0.1:{blue} weight 100 check inter 300 rise 1 fall 2\n\
             \x20 server green 127.0.0.1:{green} weight 0 check inter 300 rise 1 fall 2\n",
            admin = dir.join("admin.sock").display(),
            blue = slots[0],
            green = slots[1],
        );
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, config).unwrap();
        let child = Command::new("haproxy")
            .arg("-f")
            .arg(&file)
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("haproxy.log")).unwrap())
            .spawn()
            .expect("haproxy is installed (make test installs it)");
        for _ in 0..100 {
            if dir.join("admin.sock").exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, dir, port, slots }
    }

    /// The Runtime API's address, as a target names it.
    pub fn admin(&self) -> String {
        format!("unix://{}", self.dir.join("admin.sock").display())
    }

    /// Sends one command to the Runtime API; its answer.
    pub fn command(&self, command: &str) -> String {
        use std::io::{Read, Write};
        let mut socket = std::os::unix::net::UnixStream::connect(self.dir.join("admin.sock")).unwrap();
        socket.write_all(format!("{command}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).unwrap();
        answer
    }

    pub fn ab_map(&self) -> String {
        self.dir.join("ab.map").display().to_string()
    }

    /// The router and slots of a target's `traffic`, each slot's container listening on
    /// `PORT`.
    pub fn router(&self) -> serde_json::Value {
        serde_json::json!({ "haproxy": { "admin": self.admin(), "backend": "web", "abMap": self.ab_map(),
            "slots": [
                { "server": "blue", "env": [{ "key": "PORT", "value": self.slots[0].to_string() }] },
                { "server": "green", "env": [{ "key": "PORT", "value": self.slots[1].to_string() }] }] } })
    }

    /// The router as the domain holds it.
    pub fn config(&self) -> gantry_domain::traffic::RouterConfig {
        let slot = |server: &str, port: u16| gantry_domain::traffic::Slot {
            server: server.into(),
            env: [("PORT".to_owned(), port.to_string())].into(),
            workload: None,
        };
        gantry_domain::traffic::RouterConfig::Haproxy {
            admin: self.admin(),
            backend: "web".into(),
            slots: vec![slot("blue", self.slots[0]), slot("green", self.slots[1])],
            ab_map: Some(self.ab_map()),
        }
    }

    /// One request for the slow page (answered after three seconds), with `header` when
    /// given: the body, or `"error"`.
    pub async fn slow(&self, header: Option<(&str, &str)>) -> String {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        answer(http.get(format!("http://127.0.0.1:{}/cgi-bin/slow", self.port)), header).await
    }

    /// Sends `n` requests through HAProxy, 16 at a time, with `header` when given; how many
    /// answers each body got (failures count under `"error"`).
    pub async fn split(&self, n: usize, header: Option<(&str, &str)>) -> BTreeMap<String, usize> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let url = format!("http://127.0.0.1:{}/gantry-build", self.port);
        let answers = futures::stream::iter(0..n)
            .map(|_| answer(http.get(&url), header))
            .buffer_unordered(16)
            .collect::<Vec<String>>()
            .await;
        let mut counts = BTreeMap::new();
        for answer in answers {
            *counts.entry(answer).or_insert(0) += 1;
        }
        counts
    }
}

/// The body `req` (with `header`, when given) is answered with, or `"error"` when it fails.
async fn answer(mut req: reqwest::RequestBuilder, header: Option<(&str, &str)>) -> String {
    if let Some((name, value)) = header {
        req = req.header(name, value);
    }
    match req.send().await {
        Ok(res) if res.status().is_success() => res.text().await.unwrap_or_else(|_| "error".into()),
        _ => "error".to_owned(),
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
