//! A private Docker Engine a test starts for itself: its own socket, data root and exec root
//! under `.run/`, optionally also listening on loopback TCP with `--tlsverify` and the test's
//! certificates. It never reaches beyond loopback (pulls go through a dead proxy, except to
//! 127.0.0.1), and it stops, taking its containers with it, when the value is dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::pki::Leaf;

pub struct PrivateDockerd {
    dir: PathBuf,
    child: Child,
    /// `unix://…/docker.sock`.
    pub socket: String,
    /// The loopback port of the TLS listener, when there is one.
    pub tls_port: Option<u16>,
}

impl PrivateDockerd {
    /// A dockerd on its own socket; with `tls` (the CA's PEM and the server's certificate),
    /// also on `tcp://127.0.0.1:<port>` demanding client certificates signed by that CA.
    pub fn start(tls: Option<(&str, &Leaf)>) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.run").join(format!("dockerd-{}", &id[..8]));
        std::fs::create_dir_all(&dir).expect("the dockerd directory");
        let socket = format!("unix://{}/docker.sock", dir.display());
        let mut args: Vec<String> = vec![
            format!("--host={socket}"),
            format!("--data-root={}/data", dir.display()),
            format!("--exec-root={}/exec", dir.display()),
            format!("--pidfile={}/dockerd.pid", dir.display()),
            "--iptables=false".into(),
            "--ip6tables=false".into(),
            "--bridge=none".into(),
        ];
        let tls_port = tls.map(|(ca, server)| {
            let port = crate::registry::free_port();
            for (name, pem) in [("ca.pem", ca), ("server.pem", &server.cert), ("server-key.pem", &server.key)] {
                std::fs::write(dir.join(name), pem).expect("a TLS file");
            }
            args.extend([
                format!("--host=tcp://127.0.0.1:{port}"),
                "--tlsverify".into(),
                format!("--tlscacert={}/ca.pem", dir.display()),
                format!("--tlscert={}/server.pem", dir.display()),
                format!("--tlskey={}/server-key.pem", dir.display()),
            ]);
            port
        });
        let log = std::fs::File::create(dir.join("dockerd.log")).expect("the dockerd log");
        let child = Command::new("dockerd")
            .args(&args)
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the dockerd log"))
            .stderr(log)
            .spawn()
            .expect("dockerd starts (make test installs docker.io)");
        let engine = Self { dir, child, socket, tls_port };
        engine.wait_ready();
        engine
    }

    fn wait_ready(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            let up = Command::new("docker")
                .args(["-H", &self.socket, "version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if up {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        panic!("the private dockerd did not start:\n{log}");
    }

    /// `docker -H <socket> <args>`: its stdout, trimmed.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("docker").args(["-H", &self.socket]).args(args).output().expect("the docker CLI");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        // SIGTERM lets dockerd stop its containers and its containerd.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // dockerd mounts its network namespace and its data root; neither outlives it.
        for mount in ["exec/netns/default", "data"] {
            let _ = Command::new("umount").arg("-l").arg(self.dir.join(mount)).stderr(Stdio::null()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
