//! The production release manifest: a JSON document that pins every service of a release
//! by digest, sealed with the sha256 of its RFC 8785 canonical form.

use serde_json::{Value, json};

use crate::error::{DomainError, Result};
use crate::model::Release;
use crate::values::{Digest, parse_semver};

/// What the supply chain adds to a manifest: where each service's SBOM and attestations are
/// stored, and the image signatures that verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SupplyChainRefs {
    pub services: Vec<ServiceRefs>,
    pub signatures: Vec<ReleaseSignature>,
}

/// Where the SBOM and attestations of the image at `digest` are (URIs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRefs {
    pub digest: Digest,
    pub sbom_ref: Option<String>,
    pub attestation_ref: Option<String>,
}

/// A verified signature of one of the release's images: `cosign`, its base64 signature, and
/// the sha256 of the key it verified under (or the identity a keyless certificate names);
/// for a logged signature, when and where the transparency log says it logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseSignature {
    pub signature_type: &'static str,
    pub signature: String,
    pub key_id: String,
    pub signed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub rekor_log_index: Option<u64>,
}

/// Builds `{"manifest": {...}}` for a release, as `production-release-manifest.schema.json` describes.
pub fn release_manifest(release: &Release) -> Result<Value> {
    release_manifest_with(release, &SupplyChainRefs::default())
}

/// As [`release_manifest`], with the supply chain's references and signatures.
pub fn release_manifest_with(release: &Release, refs: &SupplyChainRefs) -> Result<Value> {
    let services: Vec<Value> = release
        .components
        .iter()
        .map(|c| {
            let mut service = json!({
                "service_id": c.component_id.to_string(),
                "name": c.component_name,
                "image": c.image,
                "tag": c.tag,
                "digest": c.digest.as_str(),
                "version": c.version.to_string(),
            });
            if let Some(found) = refs.services.iter().find(|s| s.digest == c.digest) {
                if let Some(sbom) = &found.sbom_ref {
                    service["sbom_ref"] = json!(sbom);
                }
                if let Some(attestations) = &found.attestation_ref {
                    service["attestation_ref"] = json!(attestations);
                }
            }
            service
        })
        .collect();
    let mut manifest = json!({
        "release_id": release.id.to_string(),
        "version": manifest_version(release),
        "released_at": release.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "services": services,
    });
    if !refs.signatures.is_empty() {
        let signatures = refs.signatures.iter().map(|s| {
            let mut signature =
                json!({ "signature_type": s.signature_type, "signature": s.signature, "key_id": s.key_id });
            if let Some(at) = s.signed_at {
                signature["signed_at"] = json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
            if let Some(index) = s.rekor_log_index {
                signature["rekor_log_index"] = json!(index);
            }
            signature
        });
        manifest["signatures"] = Value::Array(signatures.collect());
    }
    if let Some(display_name) = &release.display_name {
        manifest["codename"] = Value::String(display_name.clone());
    }
    let digest = canonical_digest(&manifest)?;
    manifest["manifest_digest"] = Value::String(digest.to_string());
    Ok(json!({ "manifest": manifest }))
}

/// `sha256:` plus the hex sha256 of a value's RFC 8785 canonical JSON.
pub fn canonical_digest(value: &Value) -> Result<Digest> {
    let canonical = serde_json_canonicalizer::to_vec(value).map_err(DomainError::internal)?;
    Ok(Digest::of(&canonical))
}

/// The release's version for the manifest: the semver its name carries
/// (`2.3.1`, `v2.3.1`, `myapp-v2.3.1`), or `0.0.0-<id>` when it carries none.
/// The schema allows only `MAJOR.MINOR.PATCH(-[a-z0-9.]+)?`, so build metadata is dropped.
pub fn manifest_version(release: &Release) -> String {
    let name = release.name.as_str();
    let starts = std::iter::once(0).chain(name.match_indices(['-', '_', '@']).map(|(i, _)| i + 1));
    let found = starts
        .filter_map(|i| parse_semver(&name[i..]).ok())
        .map(|v| {
            let core = format!("{}.{}.{}", v.major, v.minor, v.patch);
            if v.pre.is_empty() { core } else { format!("{core}-{}", v.pre.as_str().to_ascii_lowercase()) }
        })
        .find(|v| schema_version_ok(v));
    found.unwrap_or_else(|| format!("0.0.0-{}", release.id.0.simple()))
}

fn schema_version_ok(v: &str) -> bool {
    match v.split_once('-') {
        None => true,
        Some((_, pre)) => pre.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn release(name: &str) -> Release {
        fixtures::release(name, vec![fixtures::component(crate::ids::ComponentId::new(), "api", "api", "2.3.1")])
    }

    #[test]
    fn version_comes_from_the_name() {
        assert_eq!(manifest_version(&release("2.3.1")), "2.3.1");
        assert_eq!(manifest_version(&release("v2.3.1")), "2.3.1");
        assert_eq!(manifest_version(&release("myapp-v2.3.1")), "2.3.1");
        assert_eq!(manifest_version(&release("myapp-2.4.0-RC.1")), "2.4.0-rc.1");
        assert_eq!(manifest_version(&release("my-app_1.0.0")), "1.0.0");
    }

    #[test]
    fn version_falls_back_to_the_id() {
        let r = release("nightly");
        assert_eq!(manifest_version(&r), format!("0.0.0-{}", r.id.0.simple()));
        let r = release("app-1.0.0-rc-1");
        assert_eq!(
            manifest_version(&r),
            format!("0.0.0-{}", r.id.0.simple()),
            "'-' in a pre-release is outside the schema"
        );
    }

    #[test]
    fn manifest_digest_seals_the_canonical_form() {
        let r = release("myapp-v2.3.1");
        let doc = release_manifest(&r).unwrap();
        let mut manifest = doc["manifest"].clone();
        let sealed = manifest.as_object_mut().unwrap().remove("manifest_digest").unwrap();
        let canonical = serde_json_canonicalizer::to_string(&manifest).unwrap();
        assert!(canonical.starts_with("{\"release_id\":"), "keys are sorted: {canonical}");
        assert_eq!(sealed.as_str().unwrap(), Digest::of(canonical.as_bytes()).as_str());
        assert_eq!(doc["manifest"]["services"][0]["digest"], r.components[0].digest.as_str());
        // Any change to the content changes the seal.
        let mut other = r.clone();
        other.components[0].digest = Digest::of(b"other");
        assert_ne!(release_manifest(&other).unwrap()["manifest"]["manifest_digest"], sealed);
    }
}
