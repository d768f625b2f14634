//! Names to ids: components, environments and releases, as commands take them.

use crate::client::Client;
use crate::error::{CliError, Exit, Result};
use crate::ops::*;

pub(crate) async fn component_id(c: &Client, raw: &str) -> Result<String> {
    let all = c.run::<Components>(components::Variables).await?.components;
    all.into_iter()
        .find(|x| x.name == raw || x.id == raw)
        .map(|x| x.id)
        .ok_or_else(|| CliError::new(Exit::NotFound, format!("no component {raw:?}")))
}

pub(crate) async fn environment_id(c: &Client, raw: &str) -> Result<String> {
    let all = c.run::<Environments>(environments::Variables).await?.environments;
    all.into_iter()
        .find(|x| x.name == raw || x.id == raw)
        .map(|x| x.id)
        .ok_or_else(|| CliError::new(Exit::NotFound, format!("no environment {raw:?}")))
}

/// A release by id, or by name among the newest 100.
pub(crate) async fn release_id(c: &Client, raw: &str) -> Result<String> {
    if raw.len() == 36 && raw.chars().all(|ch| ch.is_ascii_hexdigit() || ch == '-') {
        return Ok(raw.to_owned());
    }
    let page = c.run::<Releases>(releases::Variables { status: None, first: Some(100) }).await?.releases;
    page.edges.into_iter().map(|e| e.node).find(|r| r.name == raw).map(|r| r.id).ok_or_else(|| {
        CliError::new(Exit::NotFound, format!("no release named {raw:?} among the newest 100; give its id"))
    })
}
