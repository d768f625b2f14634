//! Where `gantry login` keeps the API URL and token: `$GANTRY_CONFIG`, or
//! `$XDG_CONFIG_HOME/gantry/config.json` (`~/.config/gantry/config.json`), readable by its
//! owner only. `--url`/`GANTRY_URL` and `--token`/`GANTRY_TOKEN` take precedence.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Exit, Result};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Saved {
    pub url: Option<String>,
    pub token: Option<String>,
}

pub fn path() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os("GANTRY_CONFIG") {
        return Some(PathBuf::from(explicit));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("gantry").join("config.json"))
}

pub fn load() -> Saved {
    path().and_then(|p| std::fs::read(p).ok()).and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

pub fn save(saved: &Saved) -> Result<PathBuf> {
    let path =
        path().ok_or_else(|| CliError::new(Exit::Failure, "no place for the config: set GANTRY_CONFIG or HOME"))?;
    let fail = |e: std::io::Error| CliError::new(Exit::Failure, format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let body = serde_json::to_vec_pretty(saved).map_err(|e| CliError::new(Exit::Failure, e.to_string()))?;
    write_private(&path, &body).map_err(fail)?;
    Ok(path)
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(body)
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, body: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, body)
}
