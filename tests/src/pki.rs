//! Certificates a test generates: a private CA, and server and client certificates it signs
//! (valid now, or expired), as PEM; and rustls server configurations made of them.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A private certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM.
#[derive(Clone)]
pub struct Leaf {
    pub cert: String,
    pub key: String,
}

/// What a leaf certificate is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a CA key");
        Self { issuer: CertifiedIssuer::self_signed(params, key).expect("a self-signed CA") }
    }

    /// The CA's certificate.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `names` (DNS names or IP addresses), valid from a day ago for a year.
    pub fn issue(&self, role: Role, names: &[&str]) -> Leaf {
        self.issue_valid(role, names, false)
    }

    /// A certificate that expired last year.
    pub fn issue_expired(&self, role: Role, names: &[&str]) -> Leaf {
        self.issue_valid(role, names, true)
    }

    fn issue_valid(&self, role: Role, names: &[&str], expired: bool) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("leaf parameters");
        params.distinguished_name.push(DnType::CommonName, names.first().cloned().unwrap_or_else(|| "client".into()));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![match role {
            Role::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Role::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        let now = time_now_year();
        if expired {
            params.not_before = rcgen::date_time_ymd(now - 3, 1, 1);
            params.not_after = rcgen::date_time_ymd(now - 1, 1, 1);
        } else {
            params.not_before = rcgen::date_time_ymd(now - 1, 1, 1);
            params.not_after = rcgen::date_time_ymd(now + 2, 1, 1);
        }
        let key = KeyPair::generate().expect("a leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("a signed leaf");
        Leaf { cert: cert.pem(), key: key.serialize_pem() }
    }
}

fn time_now_year() -> i32 {
    use chrono::Datelike;
    chrono::Utc::now().year()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A server configuration presenting `server`; when `clients` is given, it demands a client
/// certificate signed by that CA.
pub fn server_config(server: &Leaf, clients: Option<&Ca>) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(server.cert.as_bytes()).collect::<Result<_, _>>().expect("server chain");
    let key = PrivateKeyDer::from_pem_slice(server.key.as_bytes()).expect("server key");
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions");
    let builder = match clients {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca.pem().as_bytes()) {
                roots.add(cert.expect("CA PEM")).expect("a CA root");
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .expect("a client verifier");
            builder.with_client_cert_verifier(verifier)
        }
    };
    Arc::new(builder.with_single_cert(chain, key).expect("server certificate and key"))
}
