//! The in-toto attestations stored for a digest: the OCI 1.1 referrers of the image (the
//! registry's referrers API, or the referrers tag schema where it has none), then cosign's
//! tag scheme (`sha256-<hex>.att`). Every DSSE envelope (alone, or inside a Sigstore bundle)
//! is pulled bounded, checked against its descriptor's digest, and must verify under a
//! trusted key and name the image (`gantry_signing::dsse`). A Sigstore bundle whose
//! verification material is a certificate is keyless: it stands when the certificate, its
//! log entry and the envelope check out under the environment's trust root and the
//! certificate names a trusted identity (`gantry_signing::keyless`).

use gantry_domain::attestations::{Attestations, VerifiedStatement};
use gantry_domain::integrations::RegistryAccess;
use gantry_domain::signatures::Signers;
use gantry_domain::values::Digest;
use gantry_domain::{DomainError, Result};
use gantry_signing::dsse::{self, ENVELOPE, MAX_ENVELOPE};
use gantry_signing::keyless;
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};

use crate::judge::Judge;
use crate::{OciRegistry, auth, failure, not_found};

/// A Sigstore bundle layer, which may hold a DSSE envelope.
const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Referrer manifests read for one image, and envelopes of one manifest, at most.
const MAX_MANIFESTS: usize = 8;
const MAX_ENVELOPES: usize = 32;
const MAX_MANIFEST: usize = 256 * 1024;

/// What one attestation manifest holds that stands, and why the rest does not.
#[derive(Debug, Clone, Default)]
pub(crate) struct Verified {
    statements: Vec<VerifiedStatement>,
    refused: Vec<String>,
    envelopes: usize,
}

/// Reads and checks the attestations of the image at `digest` in `repository`: the
/// referrers index and the tag's digest are asked each time; each manifest's envelopes are
/// read and verified once per process (manifests are named by their digests).
pub(crate) async fn read(
    registry: &OciRegistry,
    access: &RegistryAccess,
    repository: &str,
    digest: &Digest,
    signers: &Signers,
) -> Result<Attestations> {
    let keyset = signers.digest();
    let tag = dsse::attestation_tag(digest.as_str())
        .ok_or_else(|| DomainError::validation(format!("{digest} is not a sha256 digest")))?;
    let (host, client) = registry.connect(access)?;
    let host = host.as_str();
    client.store_auth_if_needed(host, &auth(access)).await;
    // The referrers and the tag are asked at once.
    let reached = (access, &client, host);
    let (referrers, at) = futures::join!(
        registry.referrers(reached, repository, digest),
        registry.tag_digest(reached, repository, digest, &tag)
    );
    let mut stored: Vec<(String, String)> = referrers?
        .manifests
        .iter()
        .take(MAX_MANIFESTS)
        .map(|e| (e.digest.clone(), format!("oci://{host}/{repository}@{}", e.digest)))
        .collect();
    if let Some(at) = at? {
        stored.push((at, format!("oci://{host}/{repository}:{tag}")));
    }
    let mut found = Attestations::default();
    // Keys and the trust root are read once, and only when a manifest is new.
    let mut judge = None;
    for (manifest, name) in stored {
        let kept = (format!("{manifest} {digest}"), keyset.clone());
        let verified = match registry.kept_attestations.get(&kept) {
            Some(verified) => verified,
            None => {
                let reference = Reference::with_digest(host.to_owned(), repository.to_owned(), manifest);
                let judge = match &judge {
                    Some(judge) => judge,
                    None => judge.insert(Judge::new(signers)?),
                };
                let verified = verify_manifest(&client, access, &reference, digest, judge).await?;
                registry.kept_attestations.keep(kept, verified.clone());
                verified
            }
        };
        if verified.envelopes > 0 && found.reference.is_none() {
            found.reference = Some(name);
        }
        found.statements.extend(verified.statements);
        found.refused.extend(verified.refused);
    }
    Ok(found)
}

/// Every envelope of the manifest at `reference`, verified.
async fn verify_manifest(
    client: &Client,
    access: &RegistryAccess,
    reference: &Reference,
    digest: &Digest,
    judge: &Judge<'_>,
) -> Result<Verified> {
    let mut verified = Verified::default();
    let Some(manifest) = manifest(client, access, reference).await? else { return Ok(verified) };
    let layers = manifest.layers.iter().filter(|l| l.media_type == ENVELOPE || l.media_type == BUNDLE);
    for layer in layers.take(MAX_ENVELOPES) {
        verified.envelopes += 1;
        let judged = match envelope(client, reference, layer).await? {
            Err(reason) => Err(format!("an attestation: {reason}")),
            Ok(Layer::Keyless(bundle)) => judge.keyless_statement(&bundle, digest.as_str()),
            Ok(Layer::Envelope(raw)) => match dsse::check(&raw, &judge.keys, digest.as_str()) {
                Ok((key, s)) => Ok(VerifiedStatement {
                    key: key.to_owned(),
                    predicate_type: s.predicate_type,
                    predicate: s.predicate,
                }),
                Err(refusal) => Err(format!("an attestation: {refusal}")),
            },
        };
        match judged {
            Ok(statement) => verified.statements.push(statement),
            Err(reason) => verified.refused.push(reason),
        }
    }
    Ok(verified)
}

/// The image manifest at `reference`, if there is one.
async fn manifest(client: &Client, access: &RegistryAccess, reference: &Reference) -> Result<Option<OciImageManifest>> {
    let raw = match client.pull_manifest_raw(reference, &auth(access), &[OCI_IMAGE_MEDIA_TYPE]).await {
        Ok((raw, _)) => raw,
        Err(err) if not_found(&err) => return Ok(None),
        Err(err) => return Err(failure(err)),
    };
    if raw.len() > MAX_MANIFEST {
        return Ok(None);
    }
    Ok(serde_json::from_slice(&raw).ok())
}

/// What an attestation layer holds: a DSSE envelope to check under keys, or a keyless
/// Sigstore bundle.
enum Layer {
    Envelope(Vec<u8>),
    Keyless(serde_json::Value),
}

/// A layer's DSSE envelope, pulled bounded and checked against its digest; why not, else.
async fn envelope(
    client: &Client,
    reference: &Reference,
    layer: &OciDescriptor,
) -> Result<std::result::Result<Layer, String>> {
    if usize::try_from(layer.size).map_or(true, |size| size > MAX_ENVELOPE) {
        return Ok(Err("it is too large to read".into()));
    }
    let mut raw = Vec::new();
    client.pull_blob(reference, layer, &mut raw).await.map_err(failure)?;
    if format!("sha256:{}", hex::encode(Sha256::digest(&raw))) != layer.digest {
        return Ok(Err("it does not match its digest".into()));
    }
    if layer.media_type != BUNDLE {
        return Ok(Ok(Layer::Envelope(raw)));
    }
    let bundle: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
    if keyless::is_keyless_bundle(&bundle) {
        return Ok(Ok(Layer::Keyless(bundle)));
    }
    Ok(match bundle.get("dsseEnvelope") {
        Some(envelope) => Ok(Layer::Envelope(serde_json::to_vec(envelope).map_err(DomainError::internal)?)),
        None => Err("a Sigstore bundle that holds no DSSE envelope".into()),
    })
}
