//! Admission policies: Rego an environment sets (or the default shipped here) that decides
//! whether a release may enter it, given the facts verified about its images. The policy is
//! evaluated in-process by an [`AdmissionEngine`]; its `data.gantry.admission.deny` set holds
//! the reasons to refuse, and an empty set admits.

use serde_json::Value;

use crate::error::{DomainError, Result};
use crate::values::Digest;

/// The policy environments use unless they set their own.
pub const DEFAULT_POLICY: &str = include_str!("default.rego");
/// The rule whose set of reasons refuses a release.
pub const DENY_RULE: &str = "data.gantry.admission.deny";
/// A policy is at most this long.
pub const MAX_POLICY: usize = 64 * 1024;

/// Compiles and evaluates Rego.
pub trait AdmissionEngine: Send + Sync {
    /// `Validation` with the compiler's message when `rego` does not compile, or defines no
    /// `deny` rule in package `gantry.admission`.
    fn check(&self, rego: &str) -> Result<()>;
    /// The reasons `rego` gives to refuse `input`, in order; an error when it cannot be
    /// evaluated (within its time limit).
    fn denials(&self, rego: &str, input: &Value) -> Result<Vec<String>>;
}

/// A policy checked for length and by the engine; `None` for a blank one (the default).
pub fn checked_policy(engine: &dyn AdmissionEngine, raw: &str) -> Result<Option<String>> {
    let rego = raw.trim();
    if rego.is_empty() {
        return Ok(None);
    }
    if rego.len() > MAX_POLICY {
        return Err(DomainError::validation(format!("admissionPolicy must be at most {MAX_POLICY} bytes")));
    }
    engine.check(rego)?;
    Ok(Some(rego.to_owned()))
}

/// The sha256 evidence names a policy by.
pub fn policy_digest(rego: &str) -> Digest {
    Digest::of(rego.as_bytes())
}
