//! The cosign signatures stored for a digest, found by cosign's tag scheme
//! (`sha256-<hex>.sig` in the image's repository) and checked with `gantry-signing`: each
//! simple-signing layer's payload is pulled (bounded, and checked against its descriptor's
//! digest) and must verify under a trusted key and name the image's digest. A layer that
//! carries a Fulcio certificate is a keyless signature: it stands when the certificate
//! chains to the environment's trust root, names a trusted identity, and its key verifies
//! the payload (`gantry_signing::keyless`, with the Rekor bundle checked offline).

use async_trait::async_trait;
use gantry_domain::attestations::Attestations;
use gantry_domain::integrations::RegistryAccess;
use gantry_domain::signatures::{ImageSignatures, SignatureVerdict, Signers};
use gantry_domain::values::Digest;
use gantry_domain::{DomainError, Result};
use gantry_signing::cosign::{self, MAX_PAYLOAD, SIGNATURE_ANNOTATION, SIMPLE_SIGNING};
use gantry_signing::keyless::{self, BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION};
use oci_client::Reference;
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciImageManifest};
use sha2::{Digest as _, Sha256};
use tracing::instrument;

use crate::judge::Judge;
use crate::{OciRegistry, auth, failure, not_found};

/// Signatures one image's signature manifest may hold that are read.
const MAX_SIGNATURES: usize = 16;
/// A signature manifest is small; a larger one is not read.
const MAX_MANIFEST: usize = 256 * 1024;

#[async_trait]
impl ImageSignatures for OciRegistry {
    #[instrument(skip_all, fields(otel.kind = "client", url = %access.url, repository = repository, digest = %digest), err(level = "info"))]
    async fn verify(
        &self,
        access: &RegistryAccess,
        repository: &str,
        digest: &Digest,
        signers: &Signers,
    ) -> Result<SignatureVerdict> {
        let keyset = signers.digest();
        let tag = cosign::signature_tag(digest.as_str())
            .ok_or_else(|| DomainError::validation(format!("{digest} is not a sha256 digest")))?;
        let (host, client) = self.connect(access)?;
        let host = host.as_str();
        let Some(stored) = self.tag_digest((access, &client, host), repository, digest, &tag).await? else {
            return Ok(SignatureVerdict::Unsigned);
        };
        // A manifest is named by its digest: what it said under these keys, it says again.
        let kept = (format!("{stored} {digest}"), keyset);
        if let Some(verdict) = self.kept_signatures.get(&kept) {
            return Ok(verdict);
        }
        let reference = Reference::with_digest(host.to_owned(), repository.to_owned(), stored);
        let judge = Judge::new(signers)?;
        let verdict = judge_manifest(&client, access, &reference, digest, &judge).await?;
        self.kept_signatures.keep(kept, verdict.clone());
        Ok(verdict)
    }

    #[instrument(skip_all, fields(otel.kind = "client", url = %access.url, repository = repository, digest = %digest), err(level = "info"))]
    async fn attestations(
        &self,
        access: &RegistryAccess,
        repository: &str,
        digest: &Digest,
        signers: &Signers,
    ) -> Result<Attestations> {
        crate::attestations::read(self, access, repository, digest, signers).await
    }
}

/// The verdict of the signature manifest at `reference` on the image at `digest`.
async fn judge_manifest(
    client: &oci_client::Client,
    access: &RegistryAccess,
    reference: &Reference,
    digest: &Digest,
    judge: &Judge<'_>,
) -> Result<SignatureVerdict> {
    let raw = match client.pull_manifest_raw(reference, &auth(access), &[OCI_IMAGE_MEDIA_TYPE]).await {
        Ok((raw, _)) => raw,
        Err(err) if not_found(&err) => return Ok(SignatureVerdict::Unsigned),
        Err(err) => return Err(failure(err)),
    };
    if raw.len() > MAX_MANIFEST {
        return Ok(refused("its signature manifest is too large to read".into()));
    }
    let manifest: OciImageManifest = serde_json::from_slice(&raw)
        .map_err(|e| DomainError::Unresolvable(format!("the signature manifest of {digest} does not parse: {e}")))?;
    let layers: Vec<_> = manifest.layers.iter().filter(|l| l.media_type == SIMPLE_SIGNING).collect();
    if layers.is_empty() {
        return Ok(SignatureVerdict::Unsigned);
    }
    let mut reasons = Vec::new();
    for layer in layers.into_iter().take(MAX_SIGNATURES) {
        let Some(signature) = layer.annotations.as_ref().and_then(|a| a.get(SIGNATURE_ANNOTATION)) else {
            reasons.push("a payload carries no signature".to_owned());
            continue;
        };
        if usize::try_from(layer.size).map_or(true, |size| size > MAX_PAYLOAD) {
            reasons.push("a payload is too large to be a signature payload".to_owned());
            continue;
        }
        let mut payload = Vec::new();
        client.pull_blob(reference, layer, &mut payload).await.map_err(failure)?;
        if format!("sha256:{}", hex::encode(Sha256::digest(&payload))) != layer.digest {
            reasons.push("a payload does not match its digest".to_owned());
            continue;
        }
        let annotations = layer.annotations.as_ref();
        let annotation = |name: &str| annotations.and_then(|a| a.get(name)).map(String::as_str);
        let judged = match annotation(CERTIFICATE_ANNOTATION) {
            None => judge.keyed(&payload, signature, digest.as_str()),
            Some(certificate) => {
                let signed = keyless::Signed {
                    payload: &payload,
                    signature,
                    certificate,
                    chain: annotation(CHAIN_ANNOTATION),
                    bundle: annotation(BUNDLE_ANNOTATION),
                };
                judge.keyless(&signed, digest.as_str())
            }
        };
        match judged {
            Ok(verdict) => return Ok(verdict),
            Err(reason) => reasons.push(reason),
        }
    }
    Ok(SignatureVerdict::Refused { reasons })
}

fn refused(reason: String) -> SignatureVerdict {
    SignatureVerdict::Refused { reasons: vec![reason] }
}
