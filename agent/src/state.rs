//! What the agent keeps on its host, in its state directory: `agent.key` (its Ed25519
//! private key, mode 0600, never sent anywhere), `agent.json` (the API's URL, its id and the
//! job-signing key it pinned at enrollment) and `jobs/` (a journal entry per job it started,
//! so a restart never applies a job twice).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub url: String,
    pub agent_id: String,
    /// Gantry's job-signing public key (base64url), pinned at enrollment.
    pub job_signing_key: String,
}

/// A job the agent started: what it wrote down before changing anything, and its result
/// once it has one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journal {
    pub prior: Option<String>,
    pub result: Option<gantry_domain::agents::jobs::JobResult>,
}

pub struct StateDir(pub PathBuf);

impl StateDir {
    pub fn key_path(&self) -> PathBuf {
        self.0.join("agent.key")
    }

    /// Writes the private key with mode 0600 from the start, refusing to replace one.
    pub fn write_key(&self, pem: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.0)?;
        std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700))?;
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(self.key_path())?;
        file.write_all(pem.as_bytes())
    }

    pub fn read_key(&self) -> Result<gantry_signing::SigningKey, String> {
        let path = self.key_path();
        let mode =
            std::fs::metadata(&path).map_err(|e| format!("{}: {e} (run gantry-agent enroll)", path.display()))?;
        if mode.permissions().mode() & 0o077 != 0 {
            return Err(format!("{} must be readable by its owner only (chmod 600)", path.display()));
        }
        let pem = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        gantry_signing::SigningKey::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn write_identity(&self, identity: &Identity) -> std::io::Result<()> {
        write_json(&self.0.join("agent.json"), identity)
    }

    pub fn read_identity(&self) -> Result<Identity, String> {
        let path = self.0.join("agent.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e} (run gantry-agent enroll)", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn journal_path(&self, job: &str) -> PathBuf {
        self.0.join("jobs").join(format!("{job}.json"))
    }

    pub fn journal(&self, job: &str) -> Option<Journal> {
        let text = std::fs::read_to_string(self.journal_path(job)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn write_journal(&self, job: &str, journal: &Journal) -> std::io::Result<()> {
        std::fs::create_dir_all(self.0.join("jobs"))?;
        write_json(&self.journal_path(job), journal)
    }

    pub fn forget(&self, job: &str) {
        let _ = std::fs::remove_file(self.journal_path(job));
    }
}

/// Writes through a temporary file and a rename, so a crash leaves the old or the new file.
fn write_json(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value).unwrap_or_default())?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(tmp, path)
}
