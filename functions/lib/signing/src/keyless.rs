//! Cosign's keyless signatures, checked offline. The signer holds a short-lived certificate
//! from a Fulcio CA naming its OIDC identity (a SAN: an email or a URI) and the issuer that
//! vouched for it (Fulcio's extension `1.3.6.1.4.1.57264.1.8`, or `.1.1` in older
//! certificates). The signature layer carries that certificate, its chain, and optionally
//! the Rekor bundle: the log's signed promise (SET) that it logged the signature at a time.
//!
//! Everything is judged against a Sigstore `trusted_root.json` held in configuration: the
//! certificate must chain to one of its CAs for code signing at the time the log says it
//! signed (now, without a log entry), and a SET must verify under one of its logs' keys and
//! describe this very signature. Nothing here fetches. Chains are verified with
//! `rustls-webpki`, certificates read with `x509-parser`, the SET's payload canonicalised
//! (RFC 8785) with `serde_json_canonicalizer`; the `sigstore` crate would bring an HTTP
//! stack and OpenSSL-era dependencies for these few checks.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::PublicKey;

/// The layer annotations cosign stores a keyless signature's material under.
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// A trust root larger than this is not one (Sigstore's public one is about 8 KiB).
pub const MAX_TRUST_ROOT: usize = 256 * 1024;

/// Extended key usage `codeSigning` (1.3.6.1.5.5.7.3.3), DER content octets.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
const ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
const ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";

/// A CA or log's validity, in seconds since the epoch.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    start: Option<i64>,
    end: Option<i64>,
}

impl Window {
    fn holds(&self, at: i64) -> bool {
        self.start.is_none_or(|s| s <= at) && self.end.is_none_or(|e| at <= e)
    }
}

#[derive(Debug, Clone)]
struct Authority {
    /// DER certificates, the issuing one first and the root last.
    chain: Vec<Vec<u8>>,
    valid: Window,
}

#[derive(Debug, Clone)]
struct Log {
    key_id: Vec<u8>,
    key: PublicKey,
    valid: Window,
}

/// The CAs and transparency logs a Sigstore `trusted_root.json` names.
#[derive(Debug, Clone)]
pub struct TrustRoot {
    authorities: Vec<Authority>,
    logs: Vec<Log>,
}

/// Who signed, as the certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The SAN: an email address or a URI (a CI workflow's).
    pub subject: String,
    /// The OIDC issuer that vouched for it.
    pub issuer: String,
}

/// Where the transparency log says it logged the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub log_index: u64,
    pub integrated_time: i64,
    /// The log's id: the hex sha256 of its key.
    pub log_id: String,
}

/// A keyless signature as stored: the payload, its base64 signature, the certificate
/// (PEM), and the chain and Rekor bundle when stored.
pub struct Signed<'a> {
    pub payload: &'a [u8],
    pub signature: &'a str,
    pub certificate: &'a str,
    pub chain: Option<&'a str>,
    pub bundle: Option<&'a str>,
}

/// Why a keyless signature does not stand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("its certificate does not parse")]
    BadCertificate,
    #[error("its certificate does not chain to a trusted CA for code signing at {0} ({1})")]
    Untrusted(i64, String),
    #[error("its certificate is not for code signing, or names no identity and issuer")]
    NoIdentity,
    #[error("its certificate's key does not verify it")]
    DoesNotVerify,
    #[error("its transparency-log bundle does not verify: {0}")]
    BadBundle(&'static str),
    #[error("it holds no DSSE envelope of an in-toto statement")]
    NotAnEnvelope,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootDoc {
    #[serde(default)]
    tlogs: Vec<LogDoc>,
    #[serde(default)]
    certificate_authorities: Vec<AuthorityDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogDoc {
    public_key: KeyDoc,
    log_id: LogIdDoc,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyDoc {
    raw_bytes: String,
    #[serde(default)]
    valid_for: Option<WindowDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogIdDoc {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorityDoc {
    cert_chain: ChainDoc,
    #[serde(default)]
    valid_for: Option<WindowDoc>,
}

#[derive(Deserialize)]
struct ChainDoc {
    certificates: Vec<RawDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDoc {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct WindowDoc {
    start: Option<String>,
    end: Option<String>,
}

fn window(doc: Option<&WindowDoc>) -> Result<Window, String> {
    let at = |t: &Option<String>| {
        t.as_deref()
            .map(|t| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .map(|t| t.timestamp())
                    .map_err(|_| format!("validFor holds {t:?}, not an RFC 3339 time"))
            })
            .transpose()
    };
    Ok(match doc {
        None => Window::default(),
        Some(doc) => Window { start: at(&doc.start)?, end: at(&doc.end)? },
    })
}

impl TrustRoot {
    /// A trust root from a Sigstore `trusted_root.json`: at least one CA whose certificates
    /// parse, and logs whose keys are ECDSA P-256 (as Rekor's are); why not, else.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        if json.len() > MAX_TRUST_ROOT {
            return Err(format!("it is larger than {} KiB", MAX_TRUST_ROOT / 1024));
        }
        let doc: RootDoc = serde_json::from_slice(json).map_err(|e| format!("it is not a trusted_root.json ({e})"))?;
        let b64 = |what: &str, raw: &str| STANDARD.decode(raw).map_err(|_| format!("{what} is not base64"));
        let mut authorities = Vec::new();
        for ca in &doc.certificate_authorities {
            let chain = ca
                .cert_chain
                .certificates
                .iter()
                .map(|c| b64("a CA certificate", &c.raw_bytes))
                .collect::<Result<Vec<_>, _>>()?;
            for der in &chain {
                X509Certificate::from_der(der).map_err(|_| "a CA certificate does not parse".to_owned())?;
            }
            if chain.is_empty() {
                return Err("a certificate authority has no certificates".into());
            }
            authorities.push(Authority { chain, valid: window(ca.valid_for.as_ref())? });
        }
        if authorities.is_empty() {
            return Err("it names no certificate authority".into());
        }
        let mut logs = Vec::new();
        for log in &doc.tlogs {
            let der = b64("a log's key", &log.public_key.raw_bytes)?;
            let key = PublicKey::p256(&der).map_err(|_| "a log's key is not an ECDSA P-256 key".to_owned())?;
            let key_id = b64("a log's keyId", &log.log_id.key_id)?;
            logs.push(Log { key_id, key, valid: window(log.public_key.valid_for.as_ref())? });
        }
        Ok(Self { authorities, logs })
    }
}

/// Checks a keyless signature of `signed.payload` as cosign's `.sig` layers store it: with
/// a bundle, its SET must verify under a trusted log and describe this signature (a
/// `hashedrekord` entry), and fixes the time the certificate is judged at; without one, the
/// certificate is judged now. The certificate must chain to a trusted CA for code signing,
/// name an identity, and its key verify the signature.
pub fn check(root: &TrustRoot, signed: &Signed<'_>) -> Result<(Identity, Option<LogEntry>), Refusal> {
    let leaf = CertificateDer::from_pem_slice(signed.certificate.as_bytes()).map_err(|_| Refusal::BadCertificate)?;
    let signature = STANDARD.decode(signed.signature.trim()).map_err(|_| Refusal::DoesNotVerify)?;
    let entry = match signed.bundle {
        Some(bundle) => {
            let (body, entry) = logged(root, Claim::legacy(bundle)?)?;
            hashedrekord(&body, signed.payload, &signature, &leaf)?;
            Some(entry)
        }
        None => None,
    };
    let extra: Vec<CertificateDer<'static>> = signed
        .chain
        .map(|pem| CertificateDer::pem_slice_iter(pem.as_bytes()).filter_map(Result::ok).collect())
        .unwrap_or_default();
    let at = entry.as_ref().map_or_else(now, |e| e.integrated_time);
    let identity = certified(root, &leaf, &extra, at, signed.payload, std::slice::from_ref(&signature))?;
    Ok((identity, entry))
}

/// What a keyless Sigstore bundle (v0.1 to v0.3) holding a DSSE envelope vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleVerdict {
    pub identity: Identity,
    pub entry: Option<LogEntry>,
    /// The envelope's payload (an in-toto Statement, to be read).
    pub payload: Vec<u8>,
}

/// Whether a Sigstore bundle's verification material is a certificate (keyless).
pub fn is_keyless_bundle(bundle: &Value) -> bool {
    let material = bundle.get("verificationMaterial");
    material.is_some_and(|m| m.get("certificate").is_some() || m.get("x509CertificateChain").is_some())
}

/// Checks a keyless Sigstore bundle holding a DSSE envelope: its first log entry, when it
/// has one, must verify under a trusted log and describe this envelope (a `dsse` entry);
/// its certificate must chain, for code signing at the entry's time (now, without one),
/// name an identity, and its key verify the envelope's PAE.
pub fn check_bundle(root: &TrustRoot, bundle: &Value) -> Result<BundleVerdict, Refusal> {
    let material = bundle.get("verificationMaterial").ok_or(Refusal::BadCertificate)?;
    let raw = |v: &Value| v.get("rawBytes").and_then(Value::as_str).and_then(|b| STANDARD.decode(b).ok());
    let mut certificates: Vec<Vec<u8>> = match material.get("certificate") {
        Some(cert) => raw(cert).into_iter().collect(),
        None => material
            .pointer("/x509CertificateChain/certificates")
            .and_then(Value::as_array)
            .map(|certs| certs.iter().filter_map(raw).collect())
            .unwrap_or_default(),
    };
    if certificates.is_empty() {
        return Err(Refusal::BadCertificate);
    }
    let leaf = CertificateDer::from(certificates.remove(0));
    let extra: Vec<CertificateDer<'static>> = certificates.into_iter().map(CertificateDer::from).collect();
    let envelope = bundle.get("dsseEnvelope").ok_or(Refusal::NotAnEnvelope)?;
    let opened = crate::dsse::open(&serde_json::to_vec(envelope).map_err(|_| Refusal::NotAnEnvelope)?)
        .map_err(|_| Refusal::NotAnEnvelope)?;
    let entry = match material.pointer("/tlogEntries/0") {
        Some(entry) => {
            let (body, entry) = logged(root, Claim::entry(entry)?)?;
            dsse_entry(&body, &opened, &leaf)?;
            Some(entry)
        }
        None => None,
    };
    let at = entry.as_ref().map_or_else(now, |e| e.integrated_time);
    let identity = certified(root, &leaf, &extra, at, &opened.signed(), &opened.signatures)?;
    Ok(BundleVerdict { identity, entry, payload: opened.payload })
}

/// The identity `leaf` names, once it chains to the trust root at `at` and its key
/// verifies `message` by one of `signatures`.
fn certified(
    root: &TrustRoot,
    leaf: &CertificateDer<'_>,
    extra: &[CertificateDer<'static>],
    at: i64,
    message: &[u8],
    signatures: &[Vec<u8>],
) -> Result<Identity, Refusal> {
    let cert = EndEntityCert::try_from(leaf).map_err(|_| Refusal::BadCertificate)?;
    chains(root, &cert, extra, at)?;
    let algorithms = [webpki::aws_lc_rs::ECDSA_P256_SHA256, webpki::aws_lc_rs::ECDSA_P384_SHA384];
    let verifies = signatures
        .iter()
        .any(|signature| algorithms.iter().any(|alg| cert.verify_signature(*alg, message, signature).is_ok()));
    if !verifies {
        return Err(Refusal::DoesNotVerify);
    }
    identity(leaf).ok_or(Refusal::NoIdentity)
}

fn now() -> i64 {
    UnixTime::now().as_secs().try_into().unwrap_or(i64::MAX)
}

/// The certificate chains, at `at`, through `extra` and a CA's intermediates to its root.
fn chains(
    root: &TrustRoot,
    cert: &EndEntityCert<'_>,
    extra: &[CertificateDer<'static>],
    at: i64,
) -> Result<(), Refusal> {
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(at.max(0).unsigned_abs()));
    let mut why = "no CA of the trust root was valid then".to_owned();
    for ca in root.authorities.iter().filter(|ca| ca.valid.holds(at)) {
        let Some((anchor, intermediates)) = ca.chain.split_last() else { continue };
        let anchor = CertificateDer::from(anchor.as_slice());
        let Ok(anchor) = webpki::anchor_from_trusted_cert(&anchor) else { continue };
        let mut between: Vec<CertificateDer<'_>> =
            intermediates.iter().map(|c| CertificateDer::from(c.as_slice())).collect();
        between.extend(extra.iter().cloned());
        match cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &between,
            time,
            // CAs may name no usage; the leaf's is checked on its own (`identity`).
            KeyUsage::required_if_present(CODE_SIGNING),
            None,
            None,
        ) {
            Ok(_) => return Ok(()),
            Err(err) => why = format!("{err:?}"),
        }
    }
    Err(Refusal::Untrusted(at, why))
}

/// The identity and issuer a code-signing certificate names.
fn identity(leaf: &[u8]) -> Option<Identity> {
    let (_, cert) = X509Certificate::from_der(leaf).ok()?;
    if !cert.extended_key_usage().ok()??.value.code_signing {
        return None;
    }
    let san = cert.subject_alternative_name().ok()??;
    let subject = san.value.general_names.iter().find_map(|name| match name {
        GeneralName::RFC822Name(s) | GeneralName::URI(s) => Some((*s).to_owned()),
        _ => None,
    })?;
    let extension = |oid: &str| cert.iter_extensions().find(|e| e.oid.to_id_string() == oid).map(|e| e.value);
    let issuer = match (extension(ISSUER_V2), extension(ISSUER_V1)) {
        (Some(der), _) => utf8_string(der)?,
        (None, Some(raw)) => std::str::from_utf8(raw).ok()?.to_owned(),
        (None, None) => return None,
    };
    Some(Identity { subject, issuer })
}

/// The text of a DER UTF8String.
fn utf8_string(der: &[u8]) -> Option<String> {
    let (_, object) = x509_parser::der_parser::der::parse_der_utf8string(der).ok()?;
    object.as_str().ok().map(str::to_owned)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyBundle {
    signed_entry_timestamp: String,
    payload: SetPayload,
}

/// What a log's SET signs, as Rekor gives it.
#[derive(Deserialize, serde::Serialize)]
struct SetPayload {
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logIndex")]
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// A log's promise as a bundle carries it: what it signed, and its signature (the SET).
struct Claim {
    payload: SetPayload,
    set: Vec<u8>,
}

impl Claim {
    /// From cosign's `dev.sigstore.cosign/bundle` annotation.
    fn legacy(bundle: &str) -> Result<Self, Refusal> {
        let bundle: LegacyBundle = serde_json::from_str(bundle).map_err(|_| Refusal::BadBundle("it does not parse"))?;
        let set = STANDARD.decode(bundle.signed_entry_timestamp.trim()).map_err(|_| Refusal::BadBundle("no SET"))?;
        Ok(Self { payload: bundle.payload, set })
    }

    /// From a Sigstore bundle's `tlogEntries` item (protobuf JSON: 64-bit numbers as strings).
    fn entry(entry: &Value) -> Result<Self, Refusal> {
        let bad = || Refusal::BadBundle("its log entry does not parse");
        let number = |key: &str| match entry.get(key) {
            Some(Value::String(s)) => s.parse::<i64>().ok(),
            Some(n) => n.as_i64(),
            None => None,
        };
        let text = |pointer: &str| entry.pointer(pointer).and_then(Value::as_str);
        let key_id = STANDARD.decode(text("/logId/keyId").ok_or_else(bad)?).map_err(|_| bad())?;
        let set = text("/inclusionPromise/signedEntryTimestamp").ok_or(Refusal::BadBundle("no SET"))?;
        Ok(Self {
            payload: SetPayload {
                body: text("/canonicalizedBody").ok_or_else(bad)?.to_owned(),
                integrated_time: number("integratedTime").ok_or_else(bad)?,
                log_index: number("logIndex").ok_or_else(bad)?,
                log_id: hex::encode(key_id),
            },
            set: STANDARD.decode(set).map_err(|_| Refusal::BadBundle("no SET"))?,
        })
    }
}

/// Checks a log's promise offline: the SET verifies under the trust root's log named by
/// `logID` (valid at the entry's time) over the RFC 8785 form of what it signed. The
/// logged body, decoded, and the entry.
fn logged(root: &TrustRoot, claim: Claim) -> Result<(Value, LogEntry), Refusal> {
    let p = &claim.payload;
    let log = root
        .logs
        .iter()
        .find(|l| hex::encode(&l.key_id).eq_ignore_ascii_case(&p.log_id))
        .ok_or(Refusal::BadBundle("its log is not in the trust root"))?;
    if !log.valid.holds(p.integrated_time) {
        return Err(Refusal::BadBundle("its log's key was not valid then"));
    }
    let canonical = serde_json_canonicalizer::to_vec(p).map_err(|_| Refusal::BadBundle("it does not parse"))?;
    if !log.key.verify(&canonical, &claim.set) {
        return Err(Refusal::BadBundle("its SET is not the log's signature"));
    }
    let body = STANDARD.decode(&p.body).map_err(|_| Refusal::BadBundle("its body is not base64"))?;
    let body: Value = serde_json::from_slice(&body).map_err(|_| Refusal::BadBundle("its body does not parse"))?;
    let entry = LogEntry {
        log_index: u64::try_from(p.log_index).map_err(|_| Refusal::BadBundle("its log index is negative"))?,
        integrated_time: p.integrated_time,
        log_id: p.log_id.to_ascii_lowercase(),
    };
    Ok((body, entry))
}

fn text<'v>(body: &'v Value, pointer: &str) -> &'v str {
    body.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// A logged certificate (base64 of its PEM), as DER.
fn logged_certificate(b64_pem: &str) -> Option<Vec<u8>> {
    let pem = STANDARD.decode(b64_pem).ok()?;
    CertificateDer::from_pem_slice(&pem).ok().map(|c| c.to_vec())
}

/// The logged entry is a `hashedrekord` of this payload, signature and certificate.
fn hashedrekord(body: &Value, payload: &[u8], signature: &[u8], leaf: &[u8]) -> Result<(), Refusal> {
    if text(body, "/kind") != "hashedrekord" {
        return Err(Refusal::BadBundle("its entry is not a hashedrekord"));
    }
    let hash_ok = text(body, "/spec/data/hash/algorithm") == "sha256"
        && text(body, "/spec/data/hash/value").eq_ignore_ascii_case(&hex::encode(Sha256::digest(payload)));
    if !hash_ok {
        return Err(Refusal::BadBundle("its entry logs another payload"));
    }
    let logged_signature = STANDARD.decode(text(body, "/spec/signature/content")).unwrap_or_default();
    let logged_cert = logged_certificate(text(body, "/spec/signature/publicKey/content"));
    if logged_signature != signature || logged_cert.as_deref() != Some(leaf) {
        return Err(Refusal::BadBundle("its entry logs another signature or certificate"));
    }
    Ok(())
}

/// The logged entry is a `dsse` entry of this envelope's payload, one of its signatures and
/// this certificate.
fn dsse_entry(body: &Value, opened: &crate::dsse::Opened, leaf: &[u8]) -> Result<(), Refusal> {
    if text(body, "/kind") != "dsse" {
        return Err(Refusal::BadBundle("its entry is not a dsse entry"));
    }
    let hash_ok = text(body, "/spec/payloadHash/algorithm") == "sha256"
        && text(body, "/spec/payloadHash/value").eq_ignore_ascii_case(&hex::encode(Sha256::digest(&opened.payload)));
    if !hash_ok {
        return Err(Refusal::BadBundle("its entry logs another payload"));
    }
    let signatures = body.pointer("/spec/signatures").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let ours = signatures.iter().any(|s| {
        let signature = STANDARD.decode(text(s, "/signature")).unwrap_or_default();
        opened.signatures.contains(&signature) && logged_certificate(text(s, "/verifier")).as_deref() == Some(leaf)
    });
    if !ours {
        return Err(Refusal::BadBundle("its entry logs another signature or certificate"));
    }
    Ok(())
}

#[cfg(test)]
#[path = "keyless_tests.rs"]
mod tests;
