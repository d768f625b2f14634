//! A Fulcio-like CA (a root and an intermediate), a Rekor-like log key and the trust root
//! naming them, all made here with `rcgen` and aws-lc-rs; then each way a keyless
//! signature can fail to stand.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P384_SHA384, SanType, SigningKey as _, date_time_ymd,
};
use serde_json::{Value, json};

use super::*;

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const SUBJECT: &str = "release@acme.example";
const LOGGED_AT: i64 = 1_767_268_800; // 2026-01-01T12:00:00Z

struct Fulcio {
    root: CertifiedIssuer<'static, KeyPair>,
    intermediate: CertifiedIssuer<'static, KeyPair>,
}

fn ca(name: &str, parent: Option<&CertifiedIssuer<'static, KeyPair>>) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    match parent {
        None => CertifiedIssuer::self_signed(params, key).unwrap(),
        Some(parent) => CertifiedIssuer::signed_by(params, key, parent).unwrap(),
    }
}

impl Fulcio {
    fn new() -> Self {
        let root = ca("sigstore", None);
        let intermediate = ca("sigstore-intermediate", Some(&root));
        Self { root, intermediate }
    }

    /// A signing certificate for `subject` (with the issuer extension unless `issuer` is
    /// None) valid on 2026-01-01 (or from last year to next, `now`); its key.
    fn leaf(&self, issuer: Option<&str>, now: bool) -> (String, KeyPair) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![SanType::Rfc822Name(SUBJECT.try_into().unwrap())];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if let Some(issuer) = issuer {
            let der = [&[0x0c, u8::try_from(issuer.len()).unwrap()][..], issuer.as_bytes()].concat();
            params.custom_extensions = vec![CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 8], der)];
        }
        (params.not_before, params.not_after) = if now {
            (date_time_ymd(2025, 1, 1), date_time_ymd(2099, 1, 1))
        } else {
            (date_time_ymd(2026, 1, 1), date_time_ymd(2026, 1, 2))
        };
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.intermediate).unwrap();
        (cert.pem(), key)
    }
}

struct Rekor {
    pair: EcdsaKeyPair,
    spki: Vec<u8>,
}

impl Rekor {
    fn new() -> Self {
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, doc.as_ref()).unwrap();
        let spki = [&crate::P256_SPKI_PREFIX[..], pair.public_key().as_ref()].concat();
        Self { pair, spki }
    }

    fn log_id(&self) -> String {
        hex::encode(Sha256::digest(&self.spki))
    }

    /// A bundle logging `body` at `at`, its SET signed by this log.
    fn bundle(&self, body: &serde_json::Value, at: i64) -> String {
        let payload = json!({ "body": STANDARD.encode(body.to_string()), "integratedTime": at,
            "logIndex": 42, "logID": self.log_id() });
        let canonical = serde_json_canonicalizer::to_vec(&payload).unwrap();
        let set = self.pair.sign(&SystemRandom::new(), &canonical).unwrap();
        json!({ "SignedEntryTimestamp": STANDARD.encode(set.as_ref()), "Payload": payload }).to_string()
    }
}

fn trust_root(fulcio: &Fulcio, rekor: &Rekor) -> TrustRoot {
    let doc = json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{ "baseUrl": "https://rekor.example", "hashAlgorithm": "SHA2_256",
            "publicKey": { "rawBytes": STANDARD.encode(&rekor.spki), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": { "start": "2021-01-01T00:00:00Z" } },
            "logId": { "keyId": STANDARD.encode(Sha256::digest(&rekor.spki)) } }],
        "certificateAuthorities": [{ "uri": "https://fulcio.example", "certChain": { "certificates": [
            { "rawBytes": STANDARD.encode(fulcio.intermediate.der()) },
            { "rawBytes": STANDARD.encode(fulcio.root.der()) }] },
            "validFor": { "start": "2021-01-01T00:00:00Z" } }],
    });
    TrustRoot::parse(doc.to_string().as_bytes()).unwrap()
}

fn hashedrekord(payload: &[u8], signature: &[u8], cert: &str) -> serde_json::Value {
    json!({ "apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "data": { "hash": { "algorithm": "sha256", "value": hex::encode(Sha256::digest(payload)) } },
        "signature": { "content": STANDARD.encode(signature), "publicKey": { "content": STANDARD.encode(cert) } } } })
}

const PAYLOAD: &[u8] = br#"{"critical":{"identity":{"docker-reference":"reg/app"},"image":{"docker-manifest-digest":"sha256:aa"},"type":"cosign container image signature"},"optional":null}"#;

#[test]
fn a_logged_keyless_signature_names_its_identity_and_entry() {
    let (fulcio, rekor) = (Fulcio::new(), Rekor::new());
    let root = trust_root(&fulcio, &rekor);
    let (cert, key) = fulcio.leaf(Some(ISSUER), false);
    let signature = key.sign(PAYLOAD).unwrap();
    let sig = STANDARD.encode(&signature);
    let bundle = rekor.bundle(&hashedrekord(PAYLOAD, &signature, &cert), LOGGED_AT);
    let signed = Signed { payload: PAYLOAD, signature: &sig, certificate: &cert, chain: None, bundle: Some(&bundle) };
    let (identity, entry) = check(&root, &signed).unwrap();
    assert_eq!(identity, Identity { subject: SUBJECT.into(), issuer: ISSUER.into() });
    let entry = entry.unwrap();
    assert_eq!((entry.log_index, entry.integrated_time, entry.log_id), (42, LOGGED_AT, rekor.log_id()));

    // Each way it can fail.
    let mut tampered: serde_json::Value = serde_json::from_str(&bundle).unwrap();
    tampered["Payload"]["logIndex"] = json!(43);
    let tampered = tampered.to_string();
    let outside = rekor.bundle(&hashedrekord(PAYLOAD, &signature, &cert), LOGGED_AT + 86_400 * 3);
    let other_payload = rekor.bundle(&hashedrekord(b"other", &signature, &cert), LOGGED_AT);
    let (other_cert, _) = fulcio.leaf(Some(ISSUER), false);
    let other_signer = rekor.bundle(&hashedrekord(PAYLOAD, &signature, &other_cert), LOGGED_AT);
    let unknown_log = Rekor::new().bundle(&hashedrekord(PAYLOAD, &signature, &cert), LOGGED_AT);
    let cases: [(&str, Refusal); 5] = [
        (&tampered, Refusal::BadBundle("its SET is not the log's signature")),
        (&outside, Refusal::Untrusted(LOGGED_AT + 86_400 * 3, String::new())),
        (&other_payload, Refusal::BadBundle("its entry logs another payload")),
        (&other_signer, Refusal::BadBundle("its entry logs another signature or certificate")),
        (&unknown_log, Refusal::BadBundle("its log is not in the trust root")),
    ];
    for (bundle, expected) in cases {
        let signed = Signed { bundle: Some(bundle), ..signed };
        match (check(&root, &signed).unwrap_err(), expected) {
            (Refusal::Untrusted(at, _), Refusal::Untrusted(want, _)) => assert_eq!(at, want),
            (got, want) => assert_eq!(got, want),
        }
    }
}

#[test]
fn a_certificate_must_chain_name_an_issuer_and_verify_the_payload() {
    let (fulcio, rekor) = (Fulcio::new(), Rekor::new());
    let root = trust_root(&fulcio, &rekor);
    // Without a bundle the certificate is judged now.
    let (cert, key) = fulcio.leaf(Some(ISSUER), true);
    let sig = STANDARD.encode(key.sign(PAYLOAD).unwrap());
    let signed = Signed { payload: PAYLOAD, signature: &sig, certificate: &cert, chain: None, bundle: None };
    let (identity, entry) = check(&root, &signed).unwrap();
    assert_eq!((identity.subject.as_str(), entry), (SUBJECT, None));
    assert_eq!(check(&root, &Signed { payload: b"changed", ..signed }).unwrap_err(), Refusal::DoesNotVerify);
    // A day-long certificate, judged now, has expired.
    let (expired, key) = fulcio.leaf(Some(ISSUER), false);
    let sig2 = STANDARD.encode(key.sign(PAYLOAD).unwrap());
    let late = Signed { signature: &sig2, certificate: &expired, ..signed };
    assert!(matches!(check(&root, &late), Err(Refusal::Untrusted(..))));
    // Another CA's certificate does not chain.
    let (stranger, key) = Fulcio::new().leaf(Some(ISSUER), true);
    let sig3 = STANDARD.encode(key.sign(PAYLOAD).unwrap());
    let foreign = Signed { signature: &sig3, certificate: &stranger, ..signed };
    assert!(matches!(check(&root, &foreign), Err(Refusal::Untrusted(..))));
    // A certificate without Fulcio's issuer extension names no identity.
    let (anonymous, key) = fulcio.leaf(None, true);
    let sig4 = STANDARD.encode(key.sign(PAYLOAD).unwrap());
    let nameless = Signed { signature: &sig4, certificate: &anonymous, ..signed };
    assert_eq!(check(&root, &nameless).unwrap_err(), Refusal::NoIdentity);
    assert_eq!(check(&root, &Signed { certificate: "junk", ..signed }).unwrap_err(), Refusal::BadCertificate);
}

#[test]
fn a_trust_root_is_checked_when_read() {
    for (doc, why) in [
        ("{}", "no certificate authority"),
        ("\"root\"", "not a trusted_root.json"),
        (r#"{"certificateAuthorities":[{"certChain":{"certificates":[{"rawBytes":"!"}]}}]}"#, "not base64"),
        (r#"{"certificateAuthorities":[{"certChain":{"certificates":[{"rawBytes":"AAAA"}]}}]}"#, "does not parse"),
        (r#"{"certificateAuthorities":[{"certChain":{"certificates":[]}}]}"#, "no certificates"),
    ] {
        let err = TrustRoot::parse(doc.as_bytes()).unwrap_err();
        assert!(err.contains(why), "{doc}: {err}");
    }
    assert!(TrustRoot::parse(&vec![b' '; MAX_TRUST_ROOT + 1]).unwrap_err().contains("larger"));
}

/// A Sigstore bundle v0.3 holding a DSSE envelope of `statement`, signed with `key` whose
/// certificate is `cert`, logged as a `dsse` entry of `logged_payload` when `rekor` is given.
fn dsse_bundle(cert: &str, key: &KeyPair, statement: &[u8], logged_payload: &[u8], rekor: Option<&Rekor>) -> Value {
    let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
    let signature = key.sign(&crate::dsse::pae(crate::dsse::IN_TOTO, statement)).unwrap();
    let mut material = json!({ "certificate": { "rawBytes": STANDARD.encode(&der) } });
    if let Some(rekor) = rekor {
        let body = json!({ "apiVersion": "0.0.1", "kind": "dsse", "spec": {
            "payloadHash": { "algorithm": "sha256", "value": hex::encode(Sha256::digest(logged_payload)) },
            "signatures": [{ "signature": STANDARD.encode(&signature), "verifier": STANDARD.encode(cert) }] } });
        let legacy: Value = serde_json::from_str(&rekor.bundle(&body, LOGGED_AT)).unwrap();
        let p = &legacy["Payload"];
        material["tlogEntries"] = json!([{ "logIndex": p["logIndex"].to_string(), "integratedTime": p["integratedTime"].to_string(),
            "logId": { "keyId": STANDARD.encode(hex::decode(p["logID"].as_str().unwrap()).unwrap()) },
            "kindVersion": { "kind": "dsse", "version": "0.0.1" },
            "inclusionPromise": { "signedEntryTimestamp": legacy["SignedEntryTimestamp"] },
            "canonicalizedBody": p["body"] }]);
    }
    json!({ "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": material,
        "dsseEnvelope": { "payloadType": crate::dsse::IN_TOTO, "payload": STANDARD.encode(statement),
            "signatures": [{ "keyid": "", "sig": STANDARD.encode(&signature) }] } })
}

#[test]
fn a_keyless_bundle_vouches_for_its_envelope() {
    let (fulcio, rekor) = (Fulcio::new(), Rekor::new());
    let root = trust_root(&fulcio, &rekor);
    let statement = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}"#;
    let (cert, key) = fulcio.leaf(Some(ISSUER), false);
    let bundle = dsse_bundle(&cert, &key, statement, statement, Some(&rekor));
    assert!(is_keyless_bundle(&bundle));
    let verdict = check_bundle(&root, &bundle).unwrap();
    assert_eq!((verdict.identity.subject.as_str(), verdict.payload.as_slice()), (SUBJECT, &statement[..]));
    assert_eq!(verdict.entry.unwrap().log_index, 42);

    let other = dsse_bundle(&cert, &key, statement, b"another statement", Some(&rekor));
    assert_eq!(check_bundle(&root, &other).unwrap_err(), Refusal::BadBundle("its entry logs another payload"));
    let mut tampered = bundle.clone();
    tampered["dsseEnvelope"]["payload"] = json!(STANDARD.encode(b"{}"));
    assert_eq!(check_bundle(&root, &tampered).unwrap_err(), Refusal::BadBundle("its entry logs another payload"));
    // Unlogged, a day-long certificate judged now has expired; a current one stands.
    let unlogged = dsse_bundle(&cert, &key, statement, statement, None);
    assert!(matches!(check_bundle(&root, &unlogged), Err(Refusal::Untrusted(..))));
    let (current, key) = fulcio.leaf(Some(ISSUER), true);
    let verdict = check_bundle(&root, &dsse_bundle(&current, &key, statement, statement, None)).unwrap();
    assert_eq!(verdict.entry, None);
    let mut keyed = bundle;
    keyed["verificationMaterial"] = json!({ "publicKey": { "hint": "release" } });
    assert!(!is_keyless_bundle(&keyed));
}
