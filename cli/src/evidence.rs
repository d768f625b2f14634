//! `gantry evidence export` and `gantry evidence verify --bundle`: a bundle fetched (an
//! environment's chain page by page, joined into one file), and a bundle checked offline,
//! without the server, by `gantry_signing::bundle`.

use std::path::Path;

use crate::client::Client;
use crate::error::{CliError, Exit, Result};
use crate::ops::*;
use crate::output::Out;
use crate::resolve::{environment_id, release_id};

/// Records asked for per page of an environment's chain.
const PAGE: i64 = 1000;
/// A bundle file larger than this is not read.
const MAX_BUNDLE_BYTES: u64 = 512 * 1024 * 1024;

/// What to export: exactly one of an environment, a release or a promotion.
pub struct Scope {
    pub env: Option<String>,
    pub release: Option<String>,
    pub promotion: Option<String>,
}

pub async fn export(c: &Client, scope: Scope, output: Option<&Path>) -> Result<()> {
    let bundle = match (scope.env, scope.release, scope.promotion) {
        (Some(env), None, None) => environment(c, &environment_id(c, &env).await?).await?,
        (None, Some(release), None) => {
            let release_id = Some(release_id(c, &release).await?);
            page(
                c,
                evidence_bundle::Variables { environment_id: None, release_id, promotion_id: None, after: 0, first: 1 },
            )
            .await?
        }
        (None, None, Some(promotion)) => {
            let vars = evidence_bundle::Variables {
                environment_id: None,
                release_id: None,
                promotion_id: Some(promotion),
                after: 0,
                first: 1,
            };
            page(c, vars).await?
        }
        _ => return Err(CliError::new(Exit::BadInput, "give exactly one of --env, --release and --promotion")),
    };
    let text = serde_json::to_string_pretty(&bundle).map_err(|e| CliError::new(Exit::Failure, e.to_string()))?;
    match output {
        Some(path) => std::fs::write(path, text + "\n")
            .map_err(|e| CliError::new(Exit::BadInput, format!("cannot write {}: {e}", path.display()))),
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

async fn page(c: &Client, vars: evidence_bundle::Variables) -> Result<serde_json::Value> {
    Ok(c.run::<EvidenceBundle>(vars).await?.evidence_bundle)
}

/// An environment's whole chain, a page at a time, as one bundle: the last page's head and
/// keys (the head read before its records, so it covers every record fetched).
async fn environment(c: &Client, environment_id: &str) -> Result<serde_json::Value> {
    let mut records = Vec::new();
    loop {
        let vars = evidence_bundle::Variables {
            environment_id: Some(environment_id.to_owned()),
            release_id: None,
            promotion_id: None,
            after: records.len() as i64,
            first: PAGE,
        };
        let mut bundle = page(c, vars).await?;
        let chain = &mut bundle["chains"][0];
        let got = chain["records"].as_array().cloned().unwrap_or_default();
        let last = (got.len() as i64) < PAGE;
        records.extend(got);
        if last {
            chain["records"] = serde_json::Value::Array(records);
            bundle["scope"] = serde_json::json!({ "environmentId": environment_id });
            return Ok(bundle);
        }
    }
}

fn read_json(path: &Path, what: &str) -> Result<serde_json::Value> {
    let bad = |why: String| CliError::new(Exit::BadInput, format!("{what} {}: {why}", path.display()));
    let size = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?.len();
    if size > MAX_BUNDLE_BYTES {
        return Err(bad(format!("larger than {} MiB", MAX_BUNDLE_BYTES / 1024 / 1024)));
    }
    let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    serde_json::from_slice(&text).map_err(|e| bad(format!("not JSON ({e})")))
}

/// Checks a bundle file offline under `keys` (a JWKS file), or the keys it carries. Exits 4
/// when it does not verify.
pub fn verify(out: &Out, bundle: &Path, keys: Option<&Path>) -> Result<()> {
    let document = read_json(bundle, "bundle")?;
    let jwks = match keys {
        Some(path) => read_json(path, "key set")?,
        None => document["keys"].clone(),
    };
    let check = gantry_signing::bundle::verify(&document, &jwks);
    let raw = serde_json::to_value(&check).unwrap_or_default();
    out.print(&raw, &check, |c| {
        let mut lines =
            vec![if c.valid { "the bundle verifies".to_owned() } else { "the bundle does NOT verify".to_owned() }];
        for chain in &c.chains {
            lines.push(format!(
                "environment {}: {} records, {} signed by a published key, {} HS256 before the crossing; {}",
                chain.environment_id,
                chain.records,
                chain.verified,
                chain.legacy,
                if chain.complete { "complete to its signed head" } else { "NOT complete" }
            ));
        }
        for (release, ok) in &c.manifests {
            lines.push(format!("manifest of release {release}: {}", if *ok { "signed and intact" } else { "BROKEN" }));
        }
        lines.extend(c.problems.iter().map(|p| format!("problem: {p}")));
        lines
    });
    if check.valid {
        Ok(())
    } else {
        Err(CliError::new(Exit::Refused, format!("{} does not verify", bundle.display())))
    }
}
