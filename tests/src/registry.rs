//! A real CNCF distribution registry (Debian `docker-registry`) on loopback whose push
//! notifications go where a test says, and images built from busybox-static (no pulls)
//! pushed to it with skopeo.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    child: Child,
    port: u16,
    dir: PathBuf,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Registry {
    /// Starts a registry on loopback `port` that notifies `notify_url` with `secret`.
    pub fn start(port: u16, notify_url: &str, secret: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("gantry-registry-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            r#"version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
notifications:
  events:
    includereferences: true
  endpoints:
    - name: gantry
      url: {notify_url}
      headers:
        Authorization: [Bearer {secret}]
      timeout: 2s
      threshold: 5
      backoff: 500ms
      ignoredmediatypes:
        - application/octet-stream
"#,
            data = dir.join("data").display()
        );
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry is installed (make test installs it)");
        let registry = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// Every request the registry has answered, as `METHOD /path` (its access log).
    pub fn requests(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default();
        log.lines()
            .filter_map(|line| line.split('"').nth(1))
            .filter_map(|request| request.strip_suffix(" HTTP/1.1"))
            .map(str::to_owned)
            .collect()
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Builds an image whose content is `content` and pushes it as `repo:tag`; returns its digest.
    pub fn push(&self, repo: &str, tag: &str, content: &str) -> String {
        self.push_with_command(repo, tag, content, &[])
    }

    /// As `push`, with the image's command.
    pub fn push_with_command(&self, repo: &str, tag: &str, content: &str, cmd: &[&str]) -> String {
        let layout = self.dir.join(format!("img-{}", uuid::Uuid::new_v4().simple()));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/oci-image.py");
        let out = Command::new("python3").arg(script).arg(&layout).arg(content).args(cmd).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let digest = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let status = Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.host()))
            .stdout(Stdio::null())
            .status()
            .expect("skopeo is installed (make test installs it)");
        assert!(status.success(), "skopeo copy failed");
        digest
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
