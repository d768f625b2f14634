//! HTTP Message Signatures (RFC 9421) as the agent uses them: Ed25519 (`alg="ed25519"`)
//! over `@method`, `@path` and `content-digest` (RFC 9530, `sha-256`), with `created`,
//! `keyid` (the agent's id) and a `nonce`. The verifier rebuilds the signature base from the
//! request it received, so a signature is good for that method, path and body only; the
//! caller judges `created` (a time window) and `nonce` (replays).
//!
//! Only this profile is parsed: one signature labelled `sig1`, exactly these components, and
//! string or integer parameters. Anything else is refused, which keeps the parser small
//! (a general Structured Fields parser would accept far more than is ever sent here).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::{PublicKey, SigningError, SigningKey};

pub const COMPONENTS: [&str; 3] = ["@method", "@path", "content-digest"];
const LABEL: &str = "sig1";

/// `sha-256=:<base64>:` of `body`.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(body)))
}

/// The signature parameters a request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub created: i64,
    pub keyid: String,
    pub nonce: String,
}

/// The three headers a signed request carries.
#[derive(Debug, Clone)]
pub struct Signed {
    pub content_digest: String,
    pub signature_input: String,
    pub signature: String,
}

fn params_value(params: &Params) -> String {
    let components: Vec<String> = COMPONENTS.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        "({});created={};keyid=\"{}\";alg=\"ed25519\";nonce=\"{}\"",
        components.join(" "),
        params.created,
        params.keyid,
        params.nonce
    )
}

/// The signature base (RFC 9421 §2.5) of the covered components and the parameters.
pub fn base(method: &str, path: &str, digest: &str, params_value: &str) -> String {
    format!(
        "\"@method\": {method}\n\"@path\": {path}\n\"content-digest\": {digest}\n\"@signature-params\": {params_value}"
    )
}

/// Signs a request. `keyid` and `nonce` must be plain (letters, digits, `-`, `_`, `.`).
pub fn sign(key: &SigningKey, method: &str, path: &str, body: &[u8], params: &Params) -> Signed {
    let digest = content_digest(body);
    let value = params_value(params);
    let signature = key.sign(base(&method.to_ascii_uppercase(), path, &digest, &value).as_bytes());
    Signed {
        content_digest: digest,
        signature_input: format!("{LABEL}={value}"),
        signature: format!("{LABEL}=:{}:", STANDARD.encode(signature)),
    }
}

/// What a request to verify carries.
pub struct Received<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub body: &'a [u8],
    pub content_digest: Option<&'a str>,
    pub signature_input: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// The parameters of a request's signature, once it verifies with the key `key_of` gives
/// for its `keyid`.
pub fn verify(request: &Received<'_>, key_of: impl FnOnce(&str) -> Option<PublicKey>) -> Result<Params, SigningError> {
    let refuse = |why: &str| SigningError::Refused(why.to_owned());
    let (Some(digest), Some(input), Some(signature)) =
        (request.content_digest, request.signature_input, request.signature)
    else {
        return Err(refuse("the request is not signed: content-digest, signature-input and signature are required"));
    };
    if digest != content_digest(request.body) {
        return Err(refuse("content-digest does not match the body"));
    }
    let value = input.strip_prefix("sig1=").ok_or_else(|| refuse("signature-input must hold one signature, sig1"))?;
    let params = parse_params(value).ok_or_else(|| refuse("signature-input is not in the expected form"))?;
    let encoded = signature
        .strip_prefix("sig1=:")
        .and_then(|s| s.strip_suffix(':'))
        .ok_or_else(|| refuse("signature must be sig1=:<base64>:"))?;
    let bytes = STANDARD.decode(encoded).map_err(|_| refuse("signature is not base64"))?;
    let key = key_of(&params.keyid).ok_or_else(|| refuse("unknown keyid"))?;
    let base = base(request.method, request.path, digest, value);
    if !key.verify(base.as_bytes(), &bytes) {
        return Err(refuse("the signature does not verify"));
    }
    Ok(params)
}

/// The `keyid` a `signature-input` names, to look the key up before verifying.
pub fn keyid(signature_input: &str) -> Option<String> {
    parse_params(signature_input.strip_prefix("sig1=")?).map(|p| p.keyid)
}

/// `("@method" "@path" "content-digest");created=…;keyid="…";alg="ed25519";nonce="…"`, in
/// any parameter order, every component exactly once.
fn parse_params(value: &str) -> Option<Params> {
    if value.len() > 512 {
        return None;
    }
    let (list, rest) = value.strip_prefix('(')?.split_once(')')?;
    let mut components: Vec<&str> =
        list.split(' ').map(|c| c.strip_prefix('"')?.strip_suffix('"')).collect::<Option<_>>()?;
    components.sort_unstable();
    let mut wanted = COMPONENTS.to_vec();
    wanted.sort_unstable();
    if components != wanted {
        return None;
    }
    let (mut created, mut keyid, mut nonce, mut alg) = (None, None, None, None);
    for param in rest.strip_prefix(';')?.split(';') {
        let (name, raw) = param.split_once('=')?;
        let string = || raw.strip_prefix('"')?.strip_suffix('"').filter(|s| plain(s)).map(str::to_owned);
        match name {
            "created" => created = Some(raw.parse::<i64>().ok()?),
            "keyid" => keyid = Some(string()?),
            "nonce" => nonce = Some(string()?),
            "alg" => alg = Some(string()?),
            _ => return None,
        }
    }
    if alg.as_deref() != Some("ed25519") {
        return None;
    }
    Some(Params { created: created?, keyid: keyid?, nonce: nonce? })
}

fn plain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9421 Appendix B.1.4's test-key-ed25519 and B.2.6's signature: the Ed25519
    /// signature of a signature base built as §2.5 says.
    #[test]
    fn the_rfc_example_signature_is_reproduced() {
        let key = SigningKey::from_pem(
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----",
        )
        .unwrap();
        let base = "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\"@method\": POST\n\"@path\": /foo\n\"@authority\": example.com\n\"content-type\": application/json\n\"content-length\": 18\n\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
        assert_eq!(
            STANDARD.encode(key.sign(base.as_bytes())),
            "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="
        );
        // RFC 9530's example: the digest of {"hello": "world"}.
        assert_eq!(content_digest(b"{\"hello\": \"world\"}"), "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:");
    }

    fn signed(key: &SigningKey, body: &[u8]) -> Signed {
        sign(
            key,
            "POST",
            "/agent/v1/jobs/claim",
            body,
            &Params { created: 1_800_000_000, keyid: "agent-1".into(), nonce: "n-1".into() },
        )
    }

    #[test]
    fn a_request_verifies_for_its_method_path_and_body_only() {
        let (key, _) = SigningKey::generate();
        let headers = signed(&key, b"{}");
        let received = |method, path, body| Received {
            method,
            path,
            body,
            content_digest: Some(&headers.content_digest),
            signature_input: Some(&headers.signature_input),
            signature: Some(&headers.signature),
        };
        let public = key.public();
        let params =
            verify(&received("POST", "/agent/v1/jobs/claim", b"{}"), |id| (id == "agent-1").then(|| public.clone()))
                .unwrap();
        assert_eq!(params, Params { created: 1_800_000_000, keyid: "agent-1".into(), nonce: "n-1".into() });
        for (method, path, body, why) in [
            ("GET", "/agent/v1/jobs/claim", &b"{}"[..], "does not verify"),
            ("POST", "/agent/v1/jobs/other", b"{}", "does not verify"),
            ("POST", "/agent/v1/jobs/claim", b"{\"x\":1}", "content-digest does not match"),
        ] {
            let err = verify(&received(method, path, body), |_| Some(key.public())).unwrap_err().to_string();
            assert!(err.contains(why), "{method} {path}: {err}");
        }
        let (other, _) = SigningKey::generate();
        assert!(verify(&received("POST", "/agent/v1/jobs/claim", b"{}"), |_| Some(other.public())).is_err());
        assert!(
            verify(&received("POST", "/agent/v1/jobs/claim", b"{}"), |_| None)
                .unwrap_err()
                .to_string()
                .contains("unknown keyid")
        );
    }

    #[test]
    fn only_the_profile_is_parsed() {
        for bad in [
            "(\"@method\" \"@path\");created=1;keyid=\"a\";alg=\"ed25519\";nonce=\"n\"",
            "(\"@method\" \"@path\" \"content-digest\");created=1;keyid=\"a\";alg=\"rsa-pss-sha512\";nonce=\"n\"",
            "(\"@method\" \"@path\" \"content-digest\");created=x;keyid=\"a\";alg=\"ed25519\";nonce=\"n\"",
            "(\"@method\" \"@path\" \"content-digest\");created=1;keyid=\"a b\";alg=\"ed25519\";nonce=\"n\"",
            "(\"@method\" \"@path\" \"content-digest\");created=1;keyid=\"a\";alg=\"ed25519\"",
            "(\"@method\" \"@path\" \"content-digest\");created=1;keyid=\"a\";alg=\"ed25519\";nonce=\"n\";expires=2",
        ] {
            assert!(parse_params(bad).is_none(), "{bad}");
        }
        let ok = "(\"content-digest\" \"@path\" \"@method\");nonce=\"n\";alg=\"ed25519\";keyid=\"a\";created=7";
        assert_eq!(parse_params(ok), Some(Params { created: 7, keyid: "a".into(), nonce: "n".into() }));
    }
}
