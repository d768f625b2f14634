//! Public keys as JSON Web Keys (RFC 7517/8037): Ed25519 as an `OKP` key (`EdDSA`), P-256 as
//! an `EC` key (`ES256`), each named by its RFC 7638 thumbprint, the `kid` signatures carry.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::{P256_SPKI_PREFIX, PublicKey, SigningError};

/// The JWK of `key`, with its `kid`, `alg` and `use`.
pub fn to_jwk(key: &PublicKey) -> Value {
    let mut jwk = members(key);
    jwk["kid"] = json!(thumbprint(key));
    jwk["alg"] = json!(algorithm(key));
    jwk["use"] = json!("sig");
    jwk
}

/// The JWS algorithm name a key signs with: `EdDSA` or `ES256`.
pub fn algorithm(key: &PublicKey) -> &'static str {
    match key {
        PublicKey::Ed25519(_) => "EdDSA",
        PublicKey::P256(_) => "ES256",
    }
}

/// The RFC 7638 thumbprint: base64url of the SHA-256 of the required members, in
/// lexicographic order with no whitespace.
pub fn thumbprint(key: &PublicKey) -> String {
    let canonical = match key {
        PublicKey::Ed25519(x) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(x)),
        PublicKey::P256(spki) => {
            let (x, y) = point(spki);
            format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(x),
                URL_SAFE_NO_PAD.encode(y)
            )
        }
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn members(key: &PublicKey) -> Value {
    match key {
        PublicKey::Ed25519(x) => json!({ "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(x) }),
        PublicKey::P256(spki) => {
            let (x, y) = point(spki);
            json!({ "kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y) })
        }
    }
}

/// The coordinates of a P-256 SubjectPublicKeyInfo's uncompressed point.
fn point(spki: &[u8]) -> (&[u8], &[u8]) {
    let point = &spki[P256_SPKI_PREFIX.len() + 1..];
    point.split_at(32)
}

/// The key a JWK holds: `OKP`/`Ed25519` or `EC`/`P-256`.
pub fn from_jwk(jwk: &Value) -> Result<PublicKey, SigningError> {
    let member = |name: &str| {
        let text = jwk.get(name).and_then(Value::as_str).ok_or(SigningError::BadPublicKey)?;
        URL_SAFE_NO_PAD.decode(text).map_err(|_| SigningError::BadPublicKey)
    };
    let text = |name: &str| jwk.get(name).and_then(Value::as_str).unwrap_or_default();
    match (text("kty"), text("crv")) {
        ("OKP", "Ed25519") => PublicKey::ed25519(&member("x")?),
        ("EC", "P-256") => {
            let (x, y) = (member("x")?, member("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err(SigningError::BadPublicKey);
            }
            PublicKey::p256(&[&P256_SPKI_PREFIX[..], &[0x04], &x, &y].concat())
        }
        _ => Err(SigningError::BadPublicKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_8037_example_key_has_its_published_thumbprint() {
        // RFC 8037, appendix A.3: the thumbprint of the example Ed25519 key.
        let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" });
        let key = from_jwk(&jwk).unwrap();
        assert_eq!(thumbprint(&key), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        assert_eq!(to_jwk(&key)["alg"], "EdDSA");
    }

    #[test]
    fn keys_round_trip_and_bad_ones_are_refused() {
        let (signing, _) = crate::SigningKey::generate();
        let ed = signing.public();
        assert_eq!(from_jwk(&to_jwk(&ed)).unwrap(), ed);
        let spki = [&P256_SPKI_PREFIX[..], &[0x04], &[7; 64]].concat();
        let p256 = PublicKey::p256(&spki).unwrap();
        let jwk = to_jwk(&p256);
        assert_eq!((jwk["kty"].as_str(), jwk["alg"].as_str()), (Some("EC"), Some("ES256")));
        assert_eq!(from_jwk(&jwk).unwrap(), p256);
        assert_ne!(thumbprint(&ed), thumbprint(&p256));
        for bad in [
            json!({ "kty": "RSA", "n": "AQAB", "e": "AQAB" }),
            json!({ "kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA" }),
            json!({ "kty": "OKP", "crv": "Ed25519", "x": "not base64url!" }),
        ] {
            assert!(from_jwk(&bad).is_err(), "{bad}");
        }
    }
}
