//! Evidence bundles and the signed release manifest: what a third party checks offline
//! with Gantry's public keys (`gantry_signing::bundle`).

use serde_json::{Value, json};
use tracing::instrument;

use super::*;
use crate::bundles::{bundle, chain, signed_head};
use gantry_signing::bundle::MANIFEST_TYPE;

/// What a bundle is about.
#[derive(Debug, Clone, Copy)]
pub enum BundleScope {
    /// A page of an environment's chain: `first` records after sequence number `after`.
    Environment { id: EnvironmentId, after: u64, first: usize },
    /// The chains of every environment the release was promoted into, and its manifest.
    Release(ReleaseId),
    /// The chain of the promotion's environment, and its release's manifest.
    Promotion(PromotionId),
}

/// Records one bundle (or page) may hold: a response stays under Lambda's 6 MB.
pub const MAX_BUNDLE_RECORDS: usize = 2000;

impl Promotions {
    /// The release's production manifest, signed (DSSE) by the evidence key when one is
    /// configured: the signature covers the manifest as built (its `manifest_digest`
    /// included), then joins its `signatures` as `dsse`. The manifest and the envelope.
    #[instrument(skip_all, fields(release_id = %release.id), err(level = "info"))]
    pub async fn signed_manifest(&self, release: &Release) -> Result<(Value, Option<Value>)> {
        let mut document = self.unsigned_manifest(release).await?;
        let payload = serde_json_canonicalizer::to_vec(&document).map_err(DomainError::internal)?;
        let Some((key_id, signature)) = self.signer.sign_envelope(MANIFEST_TYPE, &payload).await? else {
            return Ok((document, None));
        };
        let envelope = gantry_signing::bundle::envelope(MANIFEST_TYPE, &payload, &key_id, &signature);
        let entry = json!({ "signature_type": "dsse", "signature": envelope["signatures"][0]["sig"], "key_id": key_id,
            "signed_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true) });
        match document["manifest"]["signatures"].as_array_mut() {
            Some(signatures) => signatures.push(entry),
            None => document["manifest"]["signatures"] = json!([entry]),
        }
        Ok((document, Some(envelope)))
    }

    /// The release's production manifest, signed when an evidence key is configured.
    pub async fn release_manifest(&self, release: &Release) -> Result<Value> {
        Ok(self.signed_manifest(release).await?.0)
    }

    /// A bundle of `scope`'s evidence, manifests and keys; `Validation` when the scope holds
    /// more than [`MAX_BUNDLE_RECORDS`] records (export the environment in pages).
    #[instrument(skip_all, err(level = "info"))]
    pub async fn evidence_bundle(&self, scope: BundleScope) -> Result<Value> {
        // A release's chains are those of the environments it went to: each chain is read
        // once, and kept when it holds one of its records.
        let (environments, release, about) = match scope {
            BundleScope::Environment { id, after, first } => {
                self.environment(id).await?;
                let page = self.chain_page(id, after, first.min(MAX_BUNDLE_RECORDS)).await?;
                let keys = self.key_set.jwks().await?;
                let about = json!({ "environmentId": id, "after": after, "first": first });
                return Ok(bundle(about, vec![page], Vec::new(), keys));
            }
            BundleScope::Promotion(id) => {
                let p = self.get(id).await?;
                (vec![p.environment_id], p.release_id, json!({ "promotionId": id }))
            }
            BundleScope::Release(id) => {
                let environments = self.repo.list_environments().await?.into_iter().map(|e| e.id).collect();
                (environments, id, json!({ "releaseId": id }))
            }
        };
        let scoped_to_release = matches!(scope, BundleScope::Release(_));
        let mut chains = Vec::new();
        let mut total = 0;
        for environment in environments {
            // The head first: records appended after it are left for the next export.
            let head = self.evidence.chain_head(environment).await?;
            let upto = head.as_ref().map_or(0, |h| h.seq);
            let mut records = self.evidence.evidence_chain(environment).await?;
            records.retain(|r| r.seq <= upto);
            if scoped_to_release && !records.iter().any(|r| r.release_id == Some(release)) {
                continue;
            }
            total += records.len();
            if total > MAX_BUNDLE_RECORDS {
                return Err(DomainError::validation(format!(
                    "the bundle would hold more than {MAX_BUNDLE_RECORDS} records: export environment {environment} in pages"
                )));
            }
            chains.push(chain(
                environment,
                &records,
                signed_head(environment, head.as_ref(), self.signer.as_ref()).await?,
            )?);
        }
        let mut manifests = Vec::new();
        let stored = self.release(release).await?;
        if let (_, Some(envelope)) = self.signed_manifest(&stored).await? {
            manifests.push(json!({ "releaseId": release, "envelope": envelope }));
        }
        Ok(bundle(about, chains, manifests, self.key_set.jwks().await?))
    }

    /// Records `after+1 ..= after+first` of an environment's chain, with the head signed now.
    async fn chain_page(&self, environment: EnvironmentId, after: u64, first: usize) -> Result<Value> {
        let head = self.evidence.chain_head(environment).await?;
        let upto = head.as_ref().map_or(0, |h| h.seq);
        let mut records = self.evidence.evidence_after(environment, after, first).await?;
        records.retain(|r| r.seq <= upto);
        chain(environment, &records, signed_head(environment, head.as_ref(), self.signer.as_ref()).await?)
    }
}

impl Promotions {
    /// Checks a bundle as a third party would, under Gantry's own key set (not the keys the
    /// bundle carries).
    #[instrument(skip_all, err(level = "info"))]
    pub async fn verify_bundle(&self, bundle: &Value) -> Result<gantry_signing::bundle::BundleCheck> {
        Ok(gantry_signing::bundle::verify(bundle, &self.key_set.jwks().await?))
    }
}
