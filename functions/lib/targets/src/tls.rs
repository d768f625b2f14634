//! TLS to an engine: a rustls client configuration that trusts only the target's CA,
//! presents its client certificate, and checks the server's certificate against the
//! address's host or the configured server name. Verification is never turned off. A
//! handshake the engine or Gantry refuses is a deployment failure that names the cause.

use std::sync::Arc;

use gantry_domain::targets::EngineTls;
use gantry_domain::{DomainError, Result};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use crate::secrets::Secrets;

/// The PEM material a connection needs, read through the target's references.
pub struct Material {
    pub ca: String,
    pub identity: Option<(String, String)>,
    pub server_name: Option<String>,
}

impl Material {
    pub async fn read(tls: &EngineTls, secrets: &Secrets) -> Result<Self> {
        let ca = secrets.resolve("tls.caRef", &tls.ca_ref).await?;
        let identity = match (&tls.cert_ref, &tls.key_ref) {
            (Some(cert), Some(key)) => {
                Some((secrets.resolve("tls.certRef", cert).await?, secrets.resolve("tls.keyRef", key).await?))
            }
            _ => None,
        };
        Ok(Self { ca, identity, server_name: tls.server_name.clone() })
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A client configuration from `material`: only its CA is trusted.
pub fn client_config(material: &Material) -> Result<rustls::ClientConfig> {
    let bad = |what: &str| DomainError::validation(format!("TLS: {what}"));
    let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(material.ca.as_bytes())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad("tls.caRef does not hold PEM certificates"))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(cas);
    if added == 0 {
        return Err(bad("tls.caRef holds no usable CA certificate"));
    }
    let roots = Arc::new(roots);
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| DomainError::internal(format!("TLS setup: {e}")))?;
    let builder = match &material.server_name {
        None => builder.with_root_certificates(roots),
        Some(name) => {
            let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| DomainError::internal(format!("TLS setup: {e}")))?;
            let name = ServerName::try_from(name.clone()).map_err(|_| bad("tls.serverName is not a DNS name"))?;
            builder.dangerous().with_custom_certificate_verifier(Arc::new(Named { inner, name }))
        }
    };
    match &material.identity {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| bad("tls.certRef does not hold a PEM certificate"))?;
            if chain.is_empty() {
                return Err(bad("tls.certRef holds no certificate"));
            }
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|_| bad("tls.keyRef does not hold a PEM private key"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad(&format!("the client certificate and key do not go together ({e})")))
        }
    }
}

/// Verifies the server's certificate as WebPKI does, against a configured name instead of
/// the address's host (an engine reached by IP whose certificate names its role).
#[derive(Debug)]
struct Named {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for Named {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// When `err` (or an error it wraps) is a TLS failure, what it means for the operator: a
/// configuration problem no retry cures, so the deployment fails with it.
pub fn refusal(engine: &str, err: &(dyn std::error::Error + 'static)) -> Option<DomainError> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(DomainError::validation(format!("TLS to the {engine} failed: {}", explain(tls))));
        }
        // An `io::Error`'s `source()` skips the error it wraps (the TLS library's), so the
        // wrapped error is the next link.
        next = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

fn explain(err: &rustls::Error) -> String {
    use rustls::AlertDescription as A;
    match err {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
            "the engine's certificate is not signed by the CA in tls.caRef".into()
        }
        rustls::Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            "the engine's certificate has expired".into()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "the engine's certificate does not name this host (set tls.serverName to the name it carries)".into(),
        rustls::Error::InvalidCertificate(other) => format!("the engine's certificate is not valid ({other:?})"),
        rustls::Error::AlertReceived(A::CertificateRequired) => {
            "the engine requires a client certificate (set tls.certRef and tls.keyRef)".into()
        }
        rustls::Error::AlertReceived(A::CertificateExpired) => {
            "the engine refused the client certificate: it has expired".into()
        }
        rustls::Error::AlertReceived(alert @ (A::BadCertificate | A::UnknownCA | A::CertificateUnknown)) => {
            format!(
                "the engine refused the client certificate ({alert:?}): is it expired, or signed by a CA the engine does not trust?"
            )
        }
        other => other.to_string(),
    }
}
