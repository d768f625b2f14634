//! Cosign's key-based image signatures, as its SIGNATURE_SPEC describes them: a signature of
//! the image at `sha256:<hex>` is stored in the same repository under the tag
//! `sha256-<hex>.sig`, as an OCI image manifest whose layers are simple-signing payloads
//! (JSON naming the image's manifest digest), each with its base64 signature in the
//! `dev.cosignproject.cosign/signature` annotation. The signature is ECDSA P-256 over the
//! payload's SHA-256, ASN.1 DER. Nothing here fetches; the registry adapter does.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::PublicKey;

/// The media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation that holds the payload's signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// What `critical.type` says of a cosign signature payload.
const PAYLOAD_TYPE: &str = "cosign container image signature";
/// Payloads are small JSON documents; anything larger is not one.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// The tag cosign stores the signatures of the image at `digest` (`sha256:<hex>`) under.
pub fn signature_tag(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("sha256-{hex}.sig"))
}

/// Why a stored signature does not stand for the image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("its signature is not base64")]
    NotBase64,
    #[error("no trusted key verifies it")]
    DoesNotVerify,
    #[error("its payload is not a cosign signature payload")]
    NotAPayload,
    #[error("it signs another image ({0})")]
    OtherImage(String),
}

/// Checks one stored signature of the image at `digest`: `signature` (base64) must verify
/// `payload` with `key`, and the payload must be a cosign payload naming `digest`.
pub fn check(payload: &[u8], signature: &str, key: &PublicKey, digest: &str) -> Result<(), Refusal> {
    let signature = STANDARD.decode(signature.trim()).map_err(|_| Refusal::NotBase64)?;
    if payload.len() > MAX_PAYLOAD || !key.verify(payload, &signature) {
        return Err(Refusal::DoesNotVerify);
    }
    let signed = signed_digest(payload).ok_or(Refusal::NotAPayload)?;
    if signed != digest {
        return Err(Refusal::OtherImage(signed));
    }
    Ok(())
}

/// The manifest digest a simple-signing payload names (`critical.image.docker-manifest-digest`,
/// whose key simple signing reads without regard to case), when it is a cosign payload.
pub fn signed_digest(payload: &[u8]) -> Option<String> {
    let json: Value = serde_json::from_slice(payload).ok()?;
    let critical = json.get("critical")?;
    if critical.get("type")?.as_str()? != PAYLOAD_TYPE {
        return None;
    }
    let image = critical.get("image")?.as_object()?;
    let digest = image.iter().find(|(k, _)| k.eq_ignore_ascii_case("docker-manifest-digest"))?.1;
    Some(digest.as_str()?.to_owned())
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    use super::*;

    fn payload(digest: &str) -> Vec<u8> {
        serde_json::json!({
            "critical": { "identity": { "docker-reference": "reg/app" },
                "image": { "docker-manifest-digest": digest }, "type": PAYLOAD_TYPE },
            "optional": null
        })
        .to_string()
        .into_bytes()
    }

    /// A fresh P-256 key: its signer, and its public key as cosign's PEM names it.
    fn key() -> (EcdsaKeyPair, PublicKey) {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, doc.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let spki = [&crate::P256_SPKI_PREFIX[..], &point].concat();
        let pem = crate::pem_encode(&spki, "PUBLIC KEY");
        (pair, PublicKey::from_pem(&pem).unwrap())
    }

    fn sign(pair: &EcdsaKeyPair, payload: &[u8]) -> String {
        STANDARD.encode(pair.sign(&SystemRandom::new(), payload).unwrap().as_ref())
    }

    #[test]
    fn a_signature_stands_for_its_image_only_under_its_key() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let (pair, public) = key();
        let signed = payload(&digest);
        let signature = sign(&pair, &signed);
        assert_eq!(check(&signed, &signature, &public, &digest), Ok(()));
        let (_, other) = key();
        assert_eq!(check(&signed, &signature, &other, &digest), Err(Refusal::DoesNotVerify));
        let mut tampered = signed.clone();
        tampered[10] ^= 1;
        assert_eq!(check(&tampered, &signature, &public, &digest), Err(Refusal::DoesNotVerify));
        let elsewhere = format!("sha256:{}", "b".repeat(64));
        let other_image = payload(&elsewhere);
        assert_eq!(
            check(&other_image, &sign(&pair, &other_image), &public, &digest),
            Err(Refusal::OtherImage(elsewhere))
        );
        assert_eq!(check(b"{}", &sign(&pair, b"{}"), &public, &digest), Err(Refusal::NotAPayload));
        assert_eq!(check(&signed, "not base64!", &public, &digest), Err(Refusal::NotBase64));
    }

    #[test]
    fn signature_tags_follow_the_digest() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(signature_tag(&format!("sha256:{hex}")), Some(format!("sha256-{hex}.sig")));
        assert_eq!(signature_tag("sha256:short"), None);
        assert_eq!(signature_tag(&format!("sha512:{hex}")), None);
    }
}
